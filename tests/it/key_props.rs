//! Property tests for the lexer and normalization.

use pgsim::key::lexer::block_comment_is_closed;
use pgsim::key::{normalize, query_key, scan, TokenKind};
use proptest::prelude::*;

/// A generated token with predictable lexing.
#[derive(Clone, Debug)]
enum Tok {
    Code(String),
    /// A whole single-quoted literal.
    Str(String),
    /// Quoted identifier or dollar quote: (open delimiter, body, close).
    Quoted(String, String, String),
    Ws(String),
    Line(String),
    Block(String),
}

impl Tok {
    fn is_trivia(&self) -> bool {
        matches!(self, Tok::Ws(_) | Tok::Line(_) | Tok::Block(_))
    }

    fn is_str(&self) -> bool {
        matches!(self, Tok::Str(_))
    }

    fn text(&self) -> String {
        match self {
            Tok::Code(s) | Tok::Str(s) | Tok::Ws(s) | Tok::Line(s) | Tok::Block(s) => s.clone(),
            Tok::Quoted(open, body, close) => format!("{open}{body}{close}"),
        }
    }
}

fn code() -> impl Strategy<Value = Tok> {
    prop_oneof![
        prop::sample::select(vec![
            "SELECT", "x", "1", "+", ",", "(", ")", "$1", "$2", "=", "E", "a$b", "U&", "é", ";",
            "*", "1.5e3", "_t",
        ])
        .prop_map(|s| Tok::Code(s.to_owned())),
        "[a-zA-Z_][a-zA-Z0-9_]{0,4}".prop_map(Tok::Code),
    ]
}

/// Content deliberately full of comment markers, quotes and whitespace.
/// No backslashes, so an `E` prefix cannot change where a string ends.
fn quoted() -> impl Strategy<Value = Tok> {
    prop_oneof![
        "([a-z0-9 \t\n\"$*/-]|''){0,8}".prop_map(|c| Tok::Str(format!("'{c}'"))),
        "([a-z0-9 \t\n'$*/-]|\"\"){0,8}".prop_map(|c| Tok::Quoted("\"".into(), c, "\"".into())),
        (
            prop::sample::select(vec!["", "q", "fn_1", "é"]),
            "[a-z0-9 \t\n'\"*/-]{0,8}"
        )
            .prop_map(|(tag, c)| {
                let d = format!("${tag}$");
                Tok::Quoted(d.clone(), c, d)
            }),
    ]
}

fn trivia() -> impl Strategy<Value = Tok> {
    prop_oneof![
        "[ \t\n\r\x0c]{1,3}".prop_map(Tok::Ws),
        "[a-z '\"$*/-]{0,6}".prop_map(|c| Tok::Line(format!("--{c}\n"))),
        prop::sample::select(vec!["/* c */", "/**/", "/* a /* ' */ $$ */", "/*--*/"])
            .prop_map(|s| Tok::Block(s.to_owned())),
    ]
}

fn any_tok() -> impl Strategy<Value = Tok> {
    prop_oneof![3 => code(), 3 => quoted(), 3 => trivia()]
}

/// Inserts a space between a code token and a directly following dollar
/// quote (`x$q$` would be one identifier).
fn fix_up(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    for t in toks {
        let dollar = matches!(&t, Tok::Quoted(open, ..) if open.starts_with('$'));
        if dollar && matches!(out.last(), Some(Tok::Code(_))) {
            out.push(Tok::Ws(" ".into()));
        }
        out.push(t);
    }
    out
}

fn tokens() -> impl Strategy<Value = Vec<Tok>> {
    prop::collection::vec(any_tok(), 0..24).prop_map(fix_up)
}

fn render(toks: &[Tok]) -> String {
    toks.iter().map(Tok::text).collect()
}

/// Token-wise reference: drop trivia runs at the ends, replace each inner
/// run by one space, or by a newline when it continues a string literal.
fn reference(toks: &[Tok]) -> String {
    // Semicolons that end the text are dropped, with the trivia around them.
    let mut toks = toks;
    while let Some((last, rest)) = toks.split_last() {
        if last.is_trivia() || matches!(last, Tok::Code(c) if c == ";") {
            toks = rest;
        } else {
            break;
        }
    }
    let mut out = String::new();
    let mut run: Option<(bool, bool)> = None; // (has newline, has block)
    let mut prev_str = false;
    let mut any = false;
    for t in toks {
        if t.is_trivia() {
            let (nl, block) = run.unwrap_or((false, false));
            let text = t.text();
            run = Some((
                nl || text.contains(['\n', '\r']),
                block || matches!(t, Tok::Block(_)),
            ));
            continue;
        }
        if let Some((nl, block)) = run.take() {
            if any {
                let cont = prev_str && t.is_str() && nl && !block;
                out.push_str(if cont { "\n" } else { " " });
            }
        }
        out.push_str(&t.text());
        any = true;
        prev_str = t.is_str();
    }
    out
}

/// Non-trivia tokens, which normalization must leave untouched (except
/// semicolons that end the text).
fn significant(sql: &str) -> Vec<(TokenKind, &str)> {
    let mut tokens: Vec<(TokenKind, &str)> = scan(sql)
        .filter(|(k, t)| match k {
            TokenKind::Whitespace | TokenKind::LineComment => false,
            TokenKind::BlockComment => !block_comment_is_closed(t),
            _ => true,
        })
        .collect();
    while let Some((TokenKind::Code, text)) = tokens.last().copied() {
        if !text.ends_with(';') {
            break;
        }
        let kept = text.trim_end_matches(';');
        tokens.pop();
        if !kept.is_empty() {
            tokens.push((TokenKind::Code, kept));
        }
    }
    tokens
}

fn check_any_input(sql: &str) -> Result<(), TestCaseError> {
    let spans: Vec<_> = scan(sql).collect();
    prop_assert!(spans.iter().all(|(_, t)| !t.is_empty()));
    prop_assert_eq!(spans.iter().map(|(_, t)| *t).collect::<String>(), sql);
    let once = normalize(sql);
    prop_assert_eq!(normalize(&once), once.clone());
    prop_assert!(once.len() <= sql.len());
    prop_assert_eq!(significant(&once), significant(sql));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_strings_never_panic(sql in any::<String>()) {
        check_any_input(&sql)?;
    }

    #[test]
    fn sql_like_strings_are_stable(
        sql in "[ \t\n\r\x0b\x0c'\"$\\\\/*aEe1_;é-]{0,48}"
    ) {
        check_any_input(&sql)?;
    }

    #[test]
    fn generated_sql_matches_reference(toks in tokens()) {
        let sql = render(&toks);
        let expected = reference(&toks);
        prop_assert_eq!(normalize(&sql), expected.as_str());
        check_any_input(&sql)?;
    }

    #[test]
    fn any_change_inside_a_token_changes_the_result(
        toks in (quoted(), tokens()).prop_map(|(q, mut t)| {
            t.push(q);
            fix_up(t)
        }),
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        ch in "[a-z0-9 \t\n]",
    ) {
        let sig: Vec<usize> = (0..toks.len()).filter(|&i| !toks[i].is_trivia()).collect();
        let i = sig[pick.index(sig.len())];
        let mut changed = toks.clone();
        match &mut changed[i] {
            Tok::Quoted(_, body, _) => {
                let pos = body.char_indices().map(|(p, _)| p).chain([body.len()]);
                let pos: Vec<usize> = pos.collect();
                body.insert_str(pos[at.index(pos.len())], &ch);
            }
            Tok::Str(s) => s.insert_str(1, &ch),
            Tok::Code(s) => s.push_str(if ch.trim().is_empty() { "z" } else { &ch }),
            _ => unreachable!(),
        }
        let (a, b) = (render(&toks), render(&changed));
        prop_assert_ne!(normalize(&a), normalize(&b));
        prop_assert_ne!(query_key(&a, &[]), query_key(&b, &[]));
    }

    #[test]
    fn whitespace_and_comment_variations_normalize_equal(
        toks in prop::collection::vec((prop_oneof![code(), quoted()], any::<bool>()), 0..16),
        gaps_a in prop::collection::vec(prop::collection::vec(trivia(), 1..4), 16),
        gaps_b in prop::collection::vec(prop::collection::vec(trivia(), 1..4), 16),
    ) {
        let build = |gaps: &[Vec<Tok>]| {
            let mut out = Vec::new();
            for (i, (t, gap)) in toks.iter().enumerate() {
                out.push(t.clone());
                // Newline vs no newline between two literals legitimately
                // differs (string continuation): keep those gaps as in `a`.
                let continues = t.is_str() && toks.get(i + 1).is_some_and(|n| n.0.is_str());
                if *gap {
                    out.extend(if continues { &gaps_a[i] } else { &gaps[i] }.iter().cloned());
                }
            }
            fix_up(out)
        };
        let (a, b) = (build(&gaps_a), build(&gaps_b));
        prop_assert_eq!(reference(&a), reference(&b));
        let (a, b) = (render(&a), render(&b));
        prop_assert_eq!(normalize(&a), normalize(&b));
        prop_assert_eq!(query_key(&a, &[]), query_key(&b, &[]));
    }
}
