//! Property tests for the `validate` module.

use proptest::prelude::*;
use proptest::sample::select;

use super::*;

const DANGER_WORDS: &[&str] = &["drop", "truncate", "delete", "update", "alter"];

/// Any string without NUL.
fn no_nul() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.replace('\0', ""))
}

/// `word` with each ASCII letter in a random case.
fn random_case(word: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), word.len()).prop_map(move |upper| {
        word.chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

/// A dangerous word, in random case.
fn danger_word() -> impl Strategy<Value = String> {
    select(DANGER_WORDS).prop_flat_map(random_case)
}

/// A lowercase word that is not one of the dangerous keywords.
fn harmless_word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,7}".prop_filter("dangerous", |w| !DANGER_WORDS.contains(&w.as_str()))
}

/// `word` hidden in a string, quoted identifier, comment or dollar quote.
fn hidden(word: String) -> impl Strategy<Value = String> {
    (0..6usize, "[a-z ]{0,5}", "[a-z]{0,3}").prop_map(move |(kind, fill, tag)| match kind {
        0 => format!("'{fill}{word}{fill}'"),
        1 => format!("\"{word}{fill}\""),
        2 => format!("-- {fill}{word}\n"),
        3 => format!("/* {word} {fill} */"),
        4 => format!("${tag}${fill}{word} ${tag}$"),
        _ => format!("E'\\' {word};{fill}'"),
    })
}

/// Whitespace and/or comments separating two words.
fn separator() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ \t\r\n]{1,3}",
        "/\\*[a-z ]{0,5}\\*/",
        " ?--[a-z ]{0,5}\n[ \t]?",
        "[ \n]/\\* /\\* nested \\*/ \\*/[ \t]",
    ]
}

/// An identifier that is not a keyword, bare or quoted.
fn table_name() -> impl Strategy<Value = String> {
    prop_oneof!["t_[a-z0-9_]{0,8}", "\"[A-Za-z ;]{1,8}\""]
}

proptest! {
    #[test]
    fn quote_then_unquote_round_trips(s in no_nul()) {
        prop_assert_eq!(unquote_identifier(&quote_identifier(&s)), Some(s));
    }

    #[test]
    fn quote_if_needed_is_valid_and_round_trips(
        s in prop_oneof![
            no_nul(),
            "[a-zA-Z_é][a-zA-Z0-9_$é]{0,70}",
            select(&["select", "Select", "user", "join", "users", "type"][..]).prop_map(String::from),
        ]
    ) {
        let out = quote_identifier_if_needed(&s);
        if !out.starts_with('"') {
            prop_assert_eq!(validate_identifier(&out), Ok(()));
            prop_assert_eq!(&out, &s);
        } else {
            prop_assert!(validate_identifier(&s).is_err());
        }
        prop_assert_eq!(unquote_identifier(&out), Some(s));
    }

    #[test]
    fn hidden_danger_words_are_harmless(
        select_kw in random_case("select"),
        parts in proptest::collection::vec(
            prop_oneof![harmless_word(), danger_word().prop_flat_map(hidden)],
            1..6,
        ),
        hide in danger_word().prop_flat_map(hidden),
        glue in select(&[" ", " ; ", " ( ", ", ", "\n"][..]),
    ) {
        // Hidden words also land where a statement starts (first, after
        // `;`) or a subquery opens (after `(`).
        let sql = format!("{hide} {select_kw} {} {hide}", parts.join(glue));
        prop_assert!(!is_dangerous(&sql), "{}", sql);
        prop_assert!(dangerous_statements(&sql).is_empty(), "{}", sql);
    }

    #[test]
    fn destructive_statements_are_flagged(
        which in 0..3usize,
        words in (random_case("drop"), random_case("table"), random_case("truncate"),
                  random_case("delete"), random_case("from")),
        seps in proptest::collection::vec(separator(), 4),
        name in table_name(),
        tail in select(&["", ";", " ;", "; SELECT 1"][..]),
    ) {
        let (drop, table, truncate, delete, from) = words;
        let (sql, kind) = match which {
            0 => (format!("{}{drop}{}{table}{}{name}", seps[0], seps[1], seps[2]), DangerKind::Drop),
            1 => (format!("{}{truncate}{}{name}", seps[0], seps[1]), DangerKind::Truncate),
            _ => (
                format!("{}{delete}{}{from}{}{name}", seps[0], seps[1], seps[2]),
                DangerKind::DeleteWithoutWhere,
            ),
        };
        let sql = format!("{sql}{}{tail}", seps[3]);
        let found = dangerous_statements(&sql);
        prop_assert!(found.iter().any(|d| d.kind == kind && d.statement == 0), "{}: {:?}", sql, found);
        prop_assert!(is_dangerous(&sql));
    }

    #[test]
    fn placeholder_count_is_max_in_code(
        items in proptest::collection::vec(
            (1usize..300, select(&["${}", "f(${})", "${}::int", "x+${}", "${}$"][..])),
            1..6,
        ),
        noise in select(&[
            "'$9'", "-- $9\n", "/* $9 */", "\"$9\"", "$$ $9 $$", "$q$$9$q$", "E'\\' $9'", "a$9",
        ][..]),
    ) {
        let code: Vec<String> = items.iter().map(|(n, f)| f.replace("{}", &n.to_string())).collect();
        let max = items.iter().map(|(n, _)| *n).max().unwrap_or(0);
        let sql = format!("SELECT {} FROM t", code.join(", "));
        prop_assert_eq!(placeholder_count(&sql), max);
        let noisy = format!("SELECT {noise} {} {noise} FROM t {noise}", code.join(", "));
        prop_assert_eq!(placeholder_count(&noisy), max, "{}", noisy);
        prop_assert_eq!(check_params(&noisy, max), Ok(()));
    }

    #[test]
    fn sanitize_never_prints_secrets(
        secret in "Zq[A-Za-z0-9' \\\\\n-]{4,20}",
        digits in "9[0-9]{8,12}",
        which in 0..7usize,
        upper in any::<bool>(),
        ident in "[a-z]{1,8}",
    ) {
        let lit = quote_literal(&secret);
        let dollar = format!("$s${secret}$s$");
        let (template, params): (String, Vec<Option<&str>>) = match which {
            0 => (format!("ALTER ROLE {ident} PASSWORD \u{1}"), vec![]),
            1 => (format!("CREATE USER {ident} WITH ENCRYPTED PASSWORD \u{2}"), vec![]),
            2 => ("UPDATE accounts SET api_key = \u{1} WHERE id = $1".into(), vec![Some("7")]),
            3 => ("select * from users where password = $1".into(), vec![Some(secret.as_str())]),
            4 => ("INSERT INTO vault (id, Secret_Value) VALUES ($1, $2)".into(), vec![None, Some(secret.as_str())]),
            5 => ("SELECT set_config('app.token', \u{1}, false) -- x".into(), vec![]),
            _ => (format!("UPDATE people SET ssn = {digits} WHERE name = \u{1}"), vec![]),
        };
        let template = if upper { template.to_uppercase() } else { template };
        let sql = template.replace('\u{1}', &lit).replace('\u{2}', &dollar);
        let out = sanitize_for_log(&sql, &params);
        prop_assert!(!out.contains("Zq"), "{} -> {}", sql, out);
        prop_assert!(!out.contains(&digits), "{} -> {}", sql, out);
        prop_assert!(!out.contains('\n'));
    }

    #[test]
    fn no_panics_on_arbitrary_input(
        s in any::<String>(),
        params in proptest::collection::vec(proptest::option::of(any::<String>()), 0..4),
        given in 0usize..5,
    ) {
        let _ = validate_identifier(&s);
        let _ = quote_identifier_if_needed(&s);
        let _ = unquote_identifier(&s);
        let _ = quote_qualified(&s, &s);
        let _ = quote_literal(&s);
        let found = dangerous_statements(&s);
        prop_assert_eq!(is_dangerous(&s), !found.is_empty());
        for d in &found {
            prop_assert!(d.excerpt.chars().count() <= 80);
        }
        let _ = check_params(&s, given);
        let params: Vec<Option<&str>> = params.iter().map(Option::as_deref).collect();
        let out = sanitize_for_log(&s, &params);
        prop_assert!(!out.contains(['\n', '\r']), "{:?}", out);
    }

    #[test]
    fn no_panics_on_sql_like_input(
        s in "[a-zA-Z$_ ;()'\"\\\\\\-/*\n0-9EeUu&]{0,40}",
    ) {
        let _ = dangerous_statements(&s);
        let _ = placeholder_count(&s);
        let out = sanitize_for_log(&s, &[Some("x")]);
        prop_assert!(!out.contains('\n'));
        let _ = unquote_identifier(&s);
    }
}
