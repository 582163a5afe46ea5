use proptest::prelude::*;

use super::*;

#[test]
fn whitespace_and_comments_collapse() {
    assert_eq!(normalize("  select\n\t1  -- one\n"), "select 1");
    assert_eq!(normalize("select/* c */1"), "select 1");
    assert_eq!(normalize("select 'a  b'"), "select 'a  b'");
    assert!(matches!(normalize("select 1"), Cow::Borrowed(_)));
}

#[test]
fn keys_separate_null_text_and_boundaries() {
    let k = |p: &[ParamValue<'_>]| query_key("select $1, $2", p);
    assert_ne!(k(&[ParamValue::Null]), k(&[ParamValue::Text("NULL")]));
    assert_ne!(k(&[ParamValue::Text("")]), k(&[ParamValue::Null]));
    assert_ne!(
        k(&[ParamValue::Text("ab"), ParamValue::Text("c")]),
        k(&[ParamValue::Text("a"), ParamValue::Text("bc")])
    );
    assert_eq!(query_key("select  1", &[]), query_key("select 1 -- x", &[]));
    assert_eq!(format!("{}", query_key("x", &[])).len(), 64);
}

#[test]
fn nearest_names_the_difference() {
    let rec = [
        Candidate {
            sql: "select * from t where id = $1",
            params: vec![ParamValue::Text("10")],
        },
        Candidate {
            sql: "select name from users",
            params: vec![],
        },
    ];
    let n = nearest(
        "select * from t where id = $1",
        &[ParamValue::Text("11")],
        &rec,
    )
    .unwrap();
    assert_eq!(n.index, 0);
    assert_eq!(
        n.description,
        "same SQL; parameter $1 differs: recorded '10', got '11'"
    );
    let n = nearest("select nam from users", &[], &rec).unwrap();
    assert_eq!(n.index, 1);
    assert!(
        n.description.starts_with("SQL differs at character 11"),
        "{}",
        n.description
    );
    let n = nearest("select * from t where id = $1", &[], &rec).unwrap();
    assert_eq!(n.description, "same SQL; recorded 1 parameters, got 0");
    assert!(nearest("x", &[], &[]).is_none());
}

/// Tokens that carry meaning, and filler that does not.
fn meaningful() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,6}",
        "[0-9]{1,4}",
        "[-+*/<>=,.()]",
        "'[a-z -]{0,6}'",
        "\"[A-Za-z ]{1,5}\"",
        "\\$[a-z]{0,2}\\$[a-z /*-]{0,6}\\$".prop_map(|s| {
            // close the dollar quote with the same tag
            let tag_end = s[1..].find('$').map_or(1, |i| i + 2);
            format!("{s}{}", &s[..tag_end])
        }),
        "\\$[1-9]",
    ]
}

fn filler() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" ".to_owned()),
        Just("\n\t ".to_owned()),
        Just(" -- note\n".to_owned()),
        Just("/* c /* n */ */".to_owned())
    ]
}

proptest! {
    #[test]
    fn normalize_is_idempotent(sql in ".{0,80}") {
        let once = normalize(&sql).into_owned();
        prop_assert_eq!(normalize(&once).into_owned(), once);
    }

    #[test]
    fn scan_loses_nothing(sql in ".{0,80}") {
        let joined: String = scan(&sql).iter().map(|s| s.1).collect();
        prop_assert_eq!(joined, sql);
    }

    #[test]
    fn filler_never_matters(tokens in proptest::collection::vec((meaningful(), filler(), filler()), 1..8)) {
        let a: String = tokens.iter().map(|(t, f, _)| format!("{t}{f}")).collect();
        let b: String = tokens.iter().map(|(t, _, g)| format!("{g}{t}")).collect();
        prop_assert_eq!(normalize(&a), normalize(&b));
    }

    #[test]
    fn different_tokens_never_merge(
        tokens in proptest::collection::vec(meaningful(), 1..6),
        other in meaningful(),
        at in 0usize..6,
    ) {
        let at = at % tokens.len();
        prop_assume!(tokens[at] != other);
        let mut changed = tokens.clone();
        changed[at] = other;
        let a = tokens.join(" ");
        let b = changed.join(" ");
        prop_assert_ne!(normalize(&a), normalize(&b));
        prop_assert_ne!(query_key(&a, &[]), query_key(&b, &[]));
    }
}
