//! Unit tests for `json.rs` (outputs checked against PostgreSQL 15).

use super::*;
use crate::types::oid::JSON;

fn jsonb(text: &str) -> String {
    let bin = text_to_binary(JSONB, text).unwrap();
    assert_eq!(bin[0], 1);
    binary_to_text(JSONB, &bin).unwrap()
}

#[test]
fn json_is_verbatim() {
    for t in [
        r#" {"a":1,"a":2} "#,
        r#""\ud800""#,
        r#""\u0000""#,
        "[1, 2.50, -0, 1e5, true, false, null]",
    ] {
        assert_eq!(text_to_binary(JSON, t), Ok(t.as_bytes().to_vec()));
        assert_eq!(binary_to_text(JSON, t.as_bytes()).as_deref(), Ok(t));
    }
}

#[test]
fn jsonb_canonical_like_pg15() {
    for (input, want) in [
        (r#"{"b":1, "a":[1.0, 2e2]}"#, r#"{"a": [1.0, 200], "b": 1}"#),
        (r#""\u00e9\/""#, r#""é/""#),
        (r#"{"a":1,"a":2}"#, r#"{"a": 2}"#),
        (
            r#" [1, {"bb":1,"a":null, "c":true}]"#,
            r#"[1, {"a": null, "c": true, "bb": 1}]"#,
        ),
        ("1E-2", "0.01"),
        ("-0", "0"),
        ("-0.0", "0.0"),
        ("1.500", "1.500"),
        (r#""\t\u0001""#, r#""\t\u0001""#),
        (r#""\u00e9\/\b\f\u001f\u007f""#, "\"é/\\b\\f\\u001f\u{7f}\""),
        (r#"{"aa":1,"b":2,"ab":3}"#, r#"{"b": 2, "aa": 1, "ab": 3}"#),
        ("[[], {}, [1]]", "[[], {}, [1]]"),
        (r#""\ud83d\ude00""#, "\"😀\""),
        (
            r#"{"k": {"z": [], "y": {"x": "q\"\\"}}}"#,
            r#"{"k": {"y": {"x": "q\"\\"}, "z": []}}"#,
        ),
    ] {
        assert_eq!(jsonb(input), want, "{input}");
    }
    assert_eq!(text_to_binary(JSONB, "[]"), Ok(b"\x01[]".to_vec()));
}

#[test]
fn errors() {
    for bad in [
        "",
        "[1,]",
        "01",
        "1.",
        "{",
        "[",
        "{\"a\"}",
        "{\"a\":}",
        "tru",
        "truex",
        "nul",
        "\"abc",
        "\"\t\"",
        "[1 2]",
        "{1:2}",
        "1 2",
        "\"\\x\"",
        "\"\\u12\"",
        "-",
        "1e",
        ".5",
    ] {
        assert!(text_to_binary(JSON, bad).is_err(), "json {bad}");
        assert!(text_to_binary(JSONB, bad).is_err(), "jsonb {bad}");
    }
    for bad in [
        r#""\u0000""#,
        r#""\ud800""#,
        r#""\udc00""#,
        r#""\ud800x""#,
        r#""\ud800\u0041""#,
    ] {
        assert!(text_to_binary(JSONB, bad).is_err(), "{bad}");
    }
    assert!(matches!(
        binary_to_text(JSONB, b"\x02{}"),
        Err(CodecError::InvalidBinary { oid: JSONB, .. })
    ));
    assert!(binary_to_text(JSONB, b"").is_err());
    assert!(binary_to_text(JSON, &[0xff]).is_err());
}

#[test]
fn deep_nesting_does_not_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(jsonb(&deep).len(), 200_000);
    assert!(text_to_binary(JSONB, &"[".repeat(100_000)).is_err());
}
