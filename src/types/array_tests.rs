//! Unit tests for `array.rs` (bytes and texts taken from PostgreSQL 15).

use super::*;
use crate::types::{binary_to_text as b2t, text_to_binary as t2b};

fn rt(oid: u32, text: &str) -> String {
    b2t(oid, &t2b(oid, text).unwrap()).unwrap()
}

#[test]
fn pg_binary_pairs() {
    for (oid, text, hex) in [
        (
            INT4_ARRAY,
            "[0:1]={1,2}",
            "000000010000000000000017000000020000000000000004000000010000000400000002",
        ),
        (INT4_ARRAY, "{}", "000000000000000000000017"),
        (
            INT4_ARRAY,
            "{1,NULL}",
            "00000001000000010000001700000002000000010000000400000001ffffffff",
        ),
        (
            INT2_ARRAY,
            "{1,2}",
            "0000000100000000000000150000000200000001000000020001000000020002",
        ),
    ] {
        assert_eq!(hex::encode(t2b(oid, text).unwrap()), hex, "{text}");
        assert_eq!(b2t(oid, &hex::decode(hex).unwrap()).unwrap(), text);
    }
}

#[test]
fn quoting_like_pg() {
    assert_eq!(
        rt(
            TEXT_ARRAY,
            r#"{a,NULL,"","null","b c","x\"y","\\z","{"," ","	",v,"a,b",NULLx}"#
        ),
        r#"{a,NULL,"","null","b c","x\"y","\\z","{"," ","	",v,"a,b",NULLx}"#
    );
    for (input, want) in [
        ("{a b}", r#"{"a b"}"#),
        ("{ a , b }", "{a,b}"),
        (r"{a\,b}", r#"{"a,b"}"#),
        (r#"{"a" }"#, "{a}"),
        (r"{a\ }", r#"{"a "}"#),
        (r"{ \ a}", r#"{" a"}"#),
        (r#"{NULL, "NULL", N\ULL}"#, r#"{NULL,"NULL","NULL"}"#),
        (" {a} ", "{a}"),
        ("{ }", "{}"),
        ("{é,\"ü\"}", "{é,ü}"),
    ] {
        assert_eq!(rt(TEXT_ARRAY, input), want, "{input}");
    }
}

#[test]
fn element_types() {
    assert_eq!(rt(BYTEA_ARRAY, r#"{"\\x01"}"#), r#"{"\\x01"}"#);
    assert_eq!(
        rt(TIMESTAMP_ARRAY, r#"{"2024-01-01 00:00"}"#),
        r#"{"2024-01-01 00:00:00"}"#
    );
    assert_eq!(rt(JSON_ARRAY, r#"{"{\"a\":1}"}"#), r#"{"{\"a\":1}"}"#);
    assert_eq!(
        rt(JSONB_ARRAY, r#"{"{\"a\":1}",null}"#),
        r#"{"{\"a\": 1}",NULL}"#
    );
    assert_eq!(rt(CHAR_ARRAY, "{a,b}"), "{a,b}");
    assert_eq!(rt(NUMERIC_ARRAY, "{1.50,NaN,-0}"), "{1.50,NaN,0}");
    assert_eq!(
        rt(FLOAT8_ARRAY, "{1e15,-0,Infinity}"),
        "{1e+15,-0,Infinity}"
    );
    assert_eq!(rt(BOOL_ARRAY, "{true,f}"), "{t,f}");
    assert_eq!(
        rt(INTERVAL_ARRAY, r#"{"1 day",@ 1 hour}"#),
        r#"{"1 day",01:00:00}"#
    );
    assert_eq!(
        rt(DATE_ARRAY, r#"{"0001-01-01 BC",infinity}"#),
        r#"{"0001-01-01 BC",infinity}"#
    );
    assert_eq!(
        rt(UUID_ARRAY, "{A0EEBC999C0B4EF8BB6D6BB9BD380A11}"),
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"
    );
}

#[test]
fn dimensions() {
    assert_eq!(rt(INT4_ARRAY, "{{1,2},{3,4}}"), "{{1,2},{3,4}}");
    assert_eq!(
        rt(INT4_ARRAY, "[0:1][1:2]={{1,2},{3,4}}"),
        "[0:1][1:2]={{1,2},{3,4}}"
    );
    assert_eq!(rt(INT4_ARRAY, "[2]={1,2}"), "{1,2}");
    assert_eq!(rt(INT4_ARRAY, "[-5:-4]={1,2}"), "[-5:-4]={1,2}");
    assert_eq!(rt(INT4_ARRAY, "{{{{{{1}}}}}}"), "{{{{{{1}}}}}}");
    // a 1-D array of length 0 sent in binary prints as {} like PG's array_recv
    let zero_len = hex::decode("000000010000000000000017000000000000000a").unwrap();
    assert_eq!(b2t(INT4_ARRAY, &zero_len).unwrap(), "{}");
}

#[test]
fn text_errors() {
    for bad in [
        "",
        "{",
        "}",
        "{a",
        "{a,}",
        "{,}",
        "{,a}",
        "{}}",
        "{a}x",
        r#"{"a" b}"#,
        r#"{a"b"}"#,
        "{{1},{2,3}}",
        "{{},{}}",
        "{1,{2}}",
        "{{1},2}",
        "[1:2]={1}",
        "[1:2]{1,2}",
        "[2:1]={1}",
        "[1:1]={}",
        "{{{{{{{1}}}}}}}",
        "[a]={1}",
        "[1:2={1,2}",
        "{1,x}",
        "{\"1}",
        "{\\",
        "[2147483647:2147483647]={1}",
    ] {
        assert!(
            matches!(
                t2b(INT4_ARRAY, bad),
                Err(CodecError::InvalidText {
                    oid: INT4_ARRAY,
                    ..
                })
            ),
            "{bad}"
        );
    }
}

#[test]
fn binary_errors() {
    let one = "00000001000000000000001700000001000000010000000400000001";
    assert_eq!(
        b2t(INT4_ARRAY, &hex::decode(one).unwrap()).as_deref(),
        Ok("{1}")
    );
    for (hex, why) in [
        ("", "empty"),
        ("000000070000000000000017", "ndim 7"),
        ("ffffffff0000000000000017", "ndim -1"),
        ("000000000000000200000017", "flags 2"),
        ("000000000000000000000019", "wrong element oid"),
        (
            "0000000100000000000000170000000100000001fffffffe",
            "element length -2",
        ),
        (
            "00000001000000000000001700000001000000010000000300000001",
            "3-byte int4",
        ),
        (
            "0000000100000000000000170000000100000001000000040000000100",
            "trailing byte",
        ),
        (
            "00000001000000000000001700000002000000010000000400000001",
            "missing element",
        ),
        (
            "000000010000000000000017ffffffff00000001",
            "negative dimension",
        ),
        (
            "0000000100000000000000170000000100000000fffffffe",
            "lower bound only",
        ),
        (
            "0000000100000000000000170000000a7ffffffa0000000400000001",
            "bound overflow",
        ),
        (
            "0000000200000000000000170fffffff000000010fffffff00000001",
            "too many items",
        ),
    ] {
        let r = b2t(INT4_ARRAY, &hex::decode(hex).unwrap());
        let ok = matches!(
            r,
            Err(CodecError::InvalidBinary {
                oid: INT4_ARRAY,
                ..
            })
        );
        assert!(ok, "{why}: {r:?}");
    }
}
