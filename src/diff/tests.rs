use std::path::Path;

use super::answer::align_for_tests as align;
use super::*;
use crate::fixture::{
    Column, ErrorFields, Exchange, FixtureSet, LoadedSession, QueryResult, ServerInfo, Session,
};

pub(crate) fn col(name: &str, type_oid: u32) -> Column {
    Column {
        name: name.into(),
        type_oid,
        typmod: -1,
        type_size: -1,
        table_oid: 0,
        column_id: 0,
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn rows(columns: &[(&str, u32)], rows: &[&[&str]]) -> QueryResult {
    QueryResult {
        columns: Some(columns.iter().map(|(n, t)| col(n, *t)).collect()),
        rows: rows
            .iter()
            .map(|r| r.iter().map(|v| text(v)).collect())
            .collect(),
        tag: Some(format!("SELECT {}", rows.len())),
        ..Default::default()
    }
}

fn tag(t: &str) -> QueryResult {
    QueryResult {
        tag: Some(t.into()),
        ..Default::default()
    }
}

fn error(code: &str) -> QueryResult {
    QueryResult {
        error: Some(ErrorFields::error(code, "boom".into(), None)),
        ..Default::default()
    }
}

fn shown(recorded: QueryResult, now: QueryResult) -> Vec<String> {
    compare_results(&[recorded], &[now])
        .iter()
        .map(ToString::to_string)
        .collect()
}

const ACCOUNTS: [(&str, u32); 2] = [("id", 23), ("balance", 23)];

#[test]
fn the_same_answer_has_no_differences() {
    let r = rows(&ACCOUNTS, &[&["1", "10"], &["2", "10"]]);
    assert!(compare_results(std::slice::from_ref(&r), std::slice::from_ref(&r)).is_empty());
}

#[test]
fn a_changed_value_names_its_row_and_column() {
    let was = rows(&ACCOUNTS, &[&["1", "10"], &["2", "10"]]);
    let now = rows(&ACCOUNTS, &[&["1", "10"], &["2", "12"]]);
    let d = compare_results(std::slice::from_ref(&was), std::slice::from_ref(&now));
    assert_eq!(
        d[0].change,
        Change::Value {
            row: 1,
            column: "balance".into(),
            recorded: text("10"),
            now: text("12")
        }
    );
    assert_eq!(
        shown(was, now),
        ["row 2 column balance: recorded '10', now '12'"]
    );
}

#[test]
fn a_changed_tag_and_sqlstates_read_as_such() {
    assert_eq!(
        shown(tag("UPDATE 1"), tag("UPDATE 0")),
        ["tag UPDATE 1 -> UPDATE 0"]
    );
    assert_eq!(
        shown(rows(&ACCOUNTS, &[&["1", "10"]]), error("42P01")),
        ["SQLSTATE 42P01 (was ok)"]
    );
    assert_eq!(
        shown(error("42P01"), error("23505")),
        ["SQLSTATE 23505 (was 42P01)"]
    );
    assert_eq!(
        shown(error("42P01"), tag("SELECT 0")),
        ["ok: SELECT 0 (was SQLSTATE 42P01)"]
    );
    // The same SQLSTATE with another message is the same answer.
    let mut other = error("42P01");
    other.error = Some(ErrorFields::error("42P01", "other text".into(), None));
    assert!(shown(error("42P01"), other).is_empty());
}

#[test]
fn a_dropped_column_is_one_change_and_the_other_values_still_compare() {
    let was = rows(
        &[("id", 23), ("email", 25), ("balance", 23)],
        &[&["1", "a@x", "10"]],
    );
    let now = rows(&ACCOUNTS, &[&["1", "11"]]);
    assert_eq!(
        shown(was, now),
        [
            "column email dropped (was text (25))",
            "row 1 column balance: recorded '10', now '11'"
        ]
    );
}

#[test]
fn added_retyped_and_reordered_columns() {
    let was = rows(&ACCOUNTS, &[&["1", "10"]]);
    let now = rows(
        &[("balance", 20), ("id", 23), ("note", 25)],
        &[&["10", "1", "x"]],
    );
    assert_eq!(
        shown(was, now),
        [
            "column balance: type int4 (23) -> int8 (20)",
            "column note added (text (25))",
            "columns reordered: id, balance -> balance, id"
        ]
    );
}

#[test]
fn repeated_column_names_pair_in_order() {
    let was = rows(&[("?column?", 23), ("?column?", 23)], &[&["1", "2"]]);
    let now = rows(&[("?column?", 23), ("?column?", 23)], &[&["1", "3"]]);
    assert_eq!(
        shown(was, now),
        ["row 1 column ?column? #2: recorded '2', now '3'"]
    );
}

#[test]
fn catalog_details_and_notices_are_not_part_of_the_answer() {
    let was = rows(&ACCOUNTS, &[&["1", "10"]]);
    let mut now = was.clone();
    for c in now.columns.iter_mut().flatten() {
        c.table_oid = 99_999;
        c.column_id = 7;
        c.typmod = 4;
    }
    now.notices
        .push(ErrorFields::error("01000", "hello".into(), None));
    assert!(shown(was, now).is_empty());
}

#[test]
fn a_row_removed_in_the_middle_is_one_change_not_a_shift() {
    let was = rows(&ACCOUNTS, &[&["1", "10"], &["2", "20"], &["3", "30"]]);
    let now = rows(&ACCOUNTS, &[&["1", "10"], &["3", "30"]]);
    assert_eq!(
        shown(was, now),
        ["tag SELECT 3 -> SELECT 2", "row 2 removed: ('2', '20')"]
    );
    let was = rows(&ACCOUNTS, &[&["1", "10"]]);
    let mut now = rows(&ACCOUNTS, &[&["1", "10"]]);
    now.rows.push(vec![text("2"), Value::Null]);
    now.tag = Some("SELECT 2".into());
    assert_eq!(
        shown(was, now),
        ["tag SELECT 1 -> SELECT 2", "row 2 added: ('2', NULL)"]
    );
}

#[test]
fn align_pairs_shared_ends_and_equal_middles() {
    assert_eq!(
        align(&[1, 2, 3], &[1, 9, 3]),
        [(Some(0), Some(0)), (Some(1), Some(1)), (Some(2), Some(2))]
    );
    assert_eq!(
        align(&[1, 2, 3], &[1, 3]),
        [(Some(0), Some(0)), (Some(1), None), (Some(2), Some(1))]
    );
    assert_eq!(align::<i32>(&[], &[5]), [(None, Some(0))]);
    assert_eq!(align(&[1, 1], &[1]), [(Some(0), Some(0)), (Some(1), None)]);
}

#[test]
fn several_results_are_numbered_and_a_missing_one_is_named() {
    let d: Vec<String> = compare_results(
        &[tag("CREATE TABLE"), tag("INSERT 0 1")],
        &[tag("CREATE TABLE"), tag("INSERT 0 2"), tag("INSERT 0 1")],
    )
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        d,
        [
            "result 2: tag INSERT 0 1 -> INSERT 0 2",
            "result 3: added (ok: INSERT 0 1)"
        ]
    );
}

#[test]
fn long_values_are_shown_around_their_first_difference() {
    let long = "x".repeat(300);
    let mut changed = long.clone();
    changed.replace_range(200..201, "Y");
    let was = rows(&[("doc", 25)], &[&[&long]]);
    let now = rows(&[("doc", 25)], &[&[&changed]]);
    let line = &shown(was, now)[0];
    assert!(line.contains("now '...xxxxxxxxxxxxxxxxxxxxY"), "{line}");
    assert!(line.len() < 250, "{line}");
}

#[test]
fn the_phase_an_error_was_raised_at_is_part_of_the_answer() {
    let mut was = exchange(1, "k", "select x", vec![error("42703")]);
    was.phase = Phase::Parse;
    let now = exchange(1, "k", "select x", vec![error("42703")]);
    let d = compare_exchanges(&was, &now);
    assert_eq!(
        d.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["raised at execute (was parse)"]
    );
}

fn exchange(seq: u64, key: &str, sql: &str, results: Vec<QueryResult>) -> Exchange {
    Exchange {
        seq,
        key: key.into(),
        sql: sql.into(),
        params: None,
        param_types: None,
        phase: Phase::Execute,
        before: Vec::new(),
        copy_in: None,
        scope: None,
        results,
    }
}

fn set(dir: &str, files: &[(&str, &str, Vec<Exchange>)]) -> FixtureSet {
    FixtureSet {
        sessions: files
            .iter()
            .map(|(file, db, exchanges)| LoadedSession {
                path: Path::new(dir).join(file),
                session: Session {
                    format_version: 2,
                    pgsim_version: "0.1.0".into(),
                    database: (*db).into(),
                    user: "postgres".into(),
                    server: ServerInfo::default(),
                    startup_error: None,
                    exchanges: exchanges.clone(),
                },
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn sets_match_by_database_and_key_in_recorded_order_ignoring_seq_and_files() {
    let count = |n: &str| rows(&[("count", 20)], &[&[n]]);
    let a = set(
        "a",
        &[(
            "session-0001.json",
            "shop",
            vec![
                exchange(0, "count", "select count(*) from t", vec![count("3")]),
                exchange(
                    1,
                    "ins",
                    "insert into t values (4)",
                    vec![tag("INSERT 0 1")],
                ),
                exchange(2, "count", "select count(*) from t", vec![count("4")]),
                exchange(3, "gone", "select 'gone'", vec![tag("SELECT 0")]),
            ],
        )],
    );
    // Recorded again: other seqs, another file name, the second count
    // differs, one exchange gone and one new.
    let b = set(
        "b",
        &[(
            "session-0007.json",
            "shop",
            vec![
                exchange(10, "count", "select count(*) from t", vec![count("3")]),
                exchange(
                    11,
                    "ins",
                    "insert into t values (4)",
                    vec![tag("INSERT 0 1")],
                ),
                exchange(12, "count", "select count(*) from t", vec![count("5")]),
                exchange(13, "new", "select 'new'", vec![tag("SELECT 0")]),
            ],
        )],
    );
    let d = compare_sets(
        Side {
            dir: Path::new("a"),
            set: &a,
        },
        Side {
            dir: Path::new("b"),
            set: &b,
        },
    );
    assert_eq!(d.same, 2);
    assert_eq!(d.counts(), (1, 1, 1));
    let text = d.to_string();
    assert_eq!(
        text,
        "database \"shop\":\n\
         \x20 changed: select count(*) from t\n\
         \x20     at session-0001.json seq 2, now at session-0007.json seq 12\n\
         \x20     row 1 column count: recorded '4', now '5'\n\
         \x20 removed: select 'gone'\n\
         \x20     was at session-0001.json seq 3\n\
         \x20 added: select 'new'\n\
         \x20     now at session-0007.json seq 13\n\
         3 exchanges differ: 1 changed, 1 removed, 1 added; 2 the same\n"
    );
    let same = compare_sets(
        Side {
            dir: Path::new("a"),
            set: &a,
        },
        Side {
            dir: Path::new("a"),
            set: &a,
        },
    );
    assert!(same.is_empty());
    assert_eq!(same.to_string(), "no differences: 4 exchanges the same\n");
}

#[test]
fn subdirectories_and_databases_are_compared_apart() {
    let one = |db: &str, file: &str, n: &str| {
        (
            file.to_owned(),
            db.to_owned(),
            vec![exchange(
                0,
                "k",
                "select 1",
                vec![rows(&[("x", 23)], &[&[n]])],
            )],
        )
    };
    let build = |dir: &str, items: Vec<(String, String, Vec<Exchange>)>| {
        let refs: Vec<(&str, &str, Vec<Exchange>)> = items
            .iter()
            .map(|(f, d, e)| (f.as_str(), d.as_str(), e.clone()))
            .collect();
        set(dir, &refs)
    };
    let a = build(
        "a",
        vec![
            one("db", "primary/session-0001.json", "1"),
            one("db", "replica-1/session-0001.json", "1"),
            one("other", "primary/session-0002.json", "1"),
        ],
    );
    let b = build(
        "b",
        vec![
            one("db", "primary/session-0001.json", "1"),
            one("db", "replica-1/session-0001.json", "2"),
            one("other", "primary/session-0002.json", "1"),
        ],
    );
    let d = compare_sets(
        Side {
            dir: Path::new("a"),
            set: &a,
        },
        Side {
            dir: Path::new("b"),
            set: &b,
        },
    );
    assert_eq!((d.same, d.entries.len()), (2, 1));
    assert_eq!(d.entries[0].dir, Path::new("replica-1"));
    assert!(
        d.to_string().starts_with("database \"db\" in replica-1:\n"),
        "{d}"
    );
}
