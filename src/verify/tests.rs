use std::path::PathBuf;

use super::client::{sent_value, Describe};
use super::run::escape_option;
use super::send::{classify, Request};
use super::*;
use crate::diff::{Change, Difference, Entry, Located};
use crate::fixture::{
    CopyIn, CopyOut, CopyShape, ErrorFields, Exchange, Format, Param, Phase, QueryResult, Value,
};

fn exchange(sql: &str) -> Exchange {
    Exchange {
        seq: 3,
        key: String::new(),
        sql: sql.into(),
        params: None,
        param_types: None,
        phase: Phase::Execute,
        before: Vec::new(),
        copy_in: None,
        scope: None,
        results: vec![tagged("SELECT 1")],
    }
}

fn tagged(tag: &str) -> QueryResult {
    QueryResult {
        tag: Some(tag.into()),
        ..QueryResult::default()
    }
}

fn failed(code: &str) -> QueryResult {
    QueryResult {
        error: Some(ErrorFields::error(code, "boom".into(), None)),
        ..QueryResult::default()
    }
}

#[test]
fn each_exchange_is_sent_the_way_its_client_sent_it() {
    let simple = exchange("select 1; select 2");
    assert_eq!(classify(&simple), Ok(Request::Simple("select 1; select 2")));

    let mut parse_error = exchange("selec 1");
    parse_error.phase = Phase::Parse;
    parse_error.results = vec![failed("42601")];
    assert_eq!(classify(&parse_error), Ok(Request::Prepare("selec 1")));

    let mut extended = exchange("select $1::int");
    let params = vec![Param {
        type_oid: 0,
        value: Value::Text("1".into()),
    }];
    extended.params = Some(params.clone());
    assert_eq!(
        classify(&extended),
        Ok(Request::Extended {
            sql: "select $1::int",
            params: &params,
            describe: Describe::Portal,
            result_formats: vec![],
        })
    );

    let mut copy_in = exchange("copy t from stdin");
    copy_in.copy_in = Some(CopyIn {
        data: Value::Raw {
            hex: "0a0b".into(),
            format: Format::Binary,
        },
        failed: None,
    });
    copy_in.results[0].copy_in = Some(CopyShape {
        format: Format::Binary,
        columns: vec![],
    });
    assert_eq!(
        classify(&copy_in),
        Ok(Request::CopyIn {
            sql: "copy t from stdin",
            data: vec![0x0a, 0x0b]
        })
    );

    let mut copy_out = exchange("copy (select 1) to stdout");
    copy_out.results[0].copy_out = Some(CopyOut {
        shape: CopyShape {
            format: Format::Text,
            columns: vec![Format::Text],
        },
        data: vec![Value::Text("1\n".into())],
    });
    assert_eq!(
        classify(&copy_out),
        Ok(Request::CopyOut("copy (select 1) to stdout"))
    );
}

#[test]
fn a_copy_that_failed_before_it_started_is_still_sent_as_a_copy() {
    let mut copy = exchange("COPY missing (a)\n FROM STDIN");
    copy.results = vec![failed("42P01")];
    assert_eq!(
        classify(&copy),
        Ok(Request::CopyIn {
            sql: "COPY missing (a)\n FROM STDIN",
            data: vec![]
        })
    );
    let mut out = exchange("copy (select 1) TO stdout;");
    out.results = vec![failed("42P01")];
    assert_eq!(
        classify(&out),
        Ok(Request::CopyOut("copy (select 1) TO stdout;"))
    );
    // Not a COPY: a query that merely mentions the words.
    let query = exchange("select 'copy from stdin'");
    assert_eq!(
        classify(&query),
        Ok(Request::Simple("select 'copy from stdin'"))
    );
}

#[test]
fn what_cannot_be_sent_again_is_skipped_with_its_reason() {
    let cursor = exchange("pgsim:execute portal \"c\" max_rows 10");
    assert_eq!(classify(&cursor), Err(SkipReason::CursorPortal));

    let mut described = exchange("select 1");
    described.phase = Phase::Describe;
    assert_eq!(classify(&described), Err(SkipReason::DescribedOnly));

    let mut suspended = exchange("select * from t");
    suspended.results = vec![QueryResult {
        suspended: true,
        ..QueryResult::default()
    }];
    assert_eq!(classify(&suspended), Err(SkipReason::SuspendedPortal));

    let mut copy_fail = exchange("copy t from stdin");
    copy_fail.copy_in = Some(CopyIn {
        data: Value::Text("1\n".into()),
        failed: Some("client gave up".into()),
    });
    assert_eq!(classify(&copy_fail), Err(SkipReason::CopyFail));

    let mut batch = exchange("copy t to stdout; select 1");
    batch.results = vec![
        QueryResult {
            copy_out: Some(CopyOut {
                shape: CopyShape {
                    format: Format::Text,
                    columns: vec![],
                },
                data: vec![],
            }),
            ..tagged("COPY 0")
        },
        tagged("SELECT 1"),
    ];
    assert_eq!(classify(&batch), Err(SkipReason::CopyInBatch));
}

fn sent(value: &Value) -> (Format, Option<Vec<u8>>) {
    let (format, bytes) = sent_value(value).expect("a recorded value");
    (format, bytes.map(|b| b.to_vec()))
}

#[test]
fn recorded_values_are_sent_as_recorded_text_unconverted() {
    assert_eq!(
        sent(&Value::Text("00042".into())),
        (Format::Text, Some(b"00042".to_vec()))
    );
    assert_eq!(sent(&Value::Null), (Format::Text, None));
    let raw_binary = Value::Raw {
        hex: "0000002a".into(),
        format: Format::Binary,
    };
    assert_eq!(sent(&raw_binary), (Format::Binary, Some(vec![0, 0, 0, 42])));
    let raw_text = Value::Raw {
        hex: "ff41".into(),
        format: Format::Text,
    };
    assert_eq!(sent(&raw_text), (Format::Text, Some(vec![0xff, 0x41])));
}

#[test]
fn a_bound_query_is_described_the_way_its_client_described_it() {
    let mut ex = exchange("select name from items where id = $1");
    ex.params = Some(vec![Param {
        type_oid: 0,
        value: Value::Text("2".into()),
    }]);
    ex.results = vec![QueryResult {
        columns: Some(vec![crate::diff::tests::col("name", 25)]),
        rows: vec![vec![Value::Text("pear".into())]],
        ..tagged("SELECT 1")
    }];
    let how = |ex: &Exchange| match classify(ex) {
        Ok(Request::Extended {
            describe,
            result_formats,
            ..
        }) => (describe, result_formats),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        how(&ex),
        (Describe::Portal, vec![Format::Text]),
        "libpq (pgbench): the portal described, text results"
    );
    ex.param_types = Some(vec![23]);
    assert_eq!(
        how(&ex),
        (Describe::Statement, vec![Format::Binary]),
        "tokio-postgres: the statement described first, binary results"
    );
    ex.param_types = None;
    ex.results[0].columns = None;
    ex.results[0].columns_unknown = true;
    ex.results[0].rows = vec![vec![Value::Raw {
        hex: "00".into(),
        format: Format::Binary,
    }]];
    assert_eq!(
        how(&ex),
        (Describe::Nothing, vec![Format::Binary]),
        "nothing described: results in the format they were recorded in"
    );
}

#[test]
fn a_scope_with_spaces_survives_the_startup_options() {
    assert_eq!(escape_option("plain"), "plain");
    assert_eq!(escape_option(r"a b\c"), r"a\ b\\c");
}

#[test]
fn the_report_names_each_difference_what_was_skipped_and_counts() {
    let mut ex = exchange("select name\n  from items where id = $1");
    ex.params = Some(vec![Param {
        type_oid: 23,
        value: Value::Text("2".into()),
    }]);
    let changed = Entry {
        database: "shop".into(),
        dir: PathBuf::new(),
        kind: EntryKind::Changed {
            recorded: Located {
                file: "session-0001.json".into(),
                exchange: Box::new(ex.clone()),
            },
            now: Located {
                file: "session-0007.json".into(),
                exchange: Box::new(ex),
            },
            differences: vec![Difference {
                result: None,
                change: Change::Value {
                    row: 0,
                    column: "name".into(),
                    recorded: Value::Text("banana".into()),
                    now: Value::Text("pear".into()),
                },
            }],
        },
    };
    let report = Verification {
        fixtures: "fixtures/shop".into(),
        upstream: "db:5432".into(),
        diff: SetDiff {
            entries: vec![changed],
            same: 7,
        },
        rerun: 8,
        extra: vec![Extra {
            database: "shop".into(),
            file: "session-0001.json".into(),
            sql: "SELECT t.typname FROM pg_catalog.pg_type t WHERE t.oid = $1 with $1 = '16385'"
                .into(),
        }],
        skipped: vec![
            Skipped {
                file: "session-0001.json".into(),
                seq: 4,
                sql: "pgsim:describe portal \"c\"".into(),
                reason: SkipReason::CursorPortal,
            },
            Skipped {
                file: "session-0001.json".into(),
                seq: 5,
                sql: "pgsim:execute portal \"c\" max_rows 1".into(),
                reason: SkipReason::CursorPortal,
            },
        ],
        sessions: vec![SessionChange {
            file: "session-0002.json".into(),
            database: "gone".into(),
            recorded: None,
            now: Some("3D000".into()),
        }],
        pending: Some("fixtures/shop/.pgsim-pending".into()),
        notes: vec![],
    };
    assert!(report.drifted());
    let text = report.to_string();
    let want = "\
session session-0002.json (database \"gone\"): connection refused with SQLSTATE 3D000 (was accepted)
database \"shop\":
  changed: select name from items where id = $1 with $1 = '2'
      at session-0001.json seq 3
      row 1 column name: recorded 'banana', now 'pear'
recorded by the re-run only, not compared:
  database \"shop\": SELECT t.typname FROM pg_catalog.pg_type t WHERE t.oid = $1 with $1 = '16385'
not re-run, so not verified:
  2 cursor portal messages (sql pgsim:..., no SQL of their own to send)
pending set written to fixtures/shop/.pgsim-pending: `pgsim accept fixtures/shop` shows what it changes and puts it in place
  it lacks the 2 exchanges not re-run: accepting it drops them
verified 8 exchanges: 1 differ, 7 the same; 2 skipped (not verified); 1 session(s) connected differently
";
    assert_eq!(text, want);
}

#[test]
fn a_clean_run_is_not_drift_even_with_skips() {
    let report = Verification {
        fixtures: "f".into(),
        upstream: "db:5432".into(),
        diff: SetDiff {
            entries: vec![],
            same: 3,
        },
        rerun: 3,
        extra: vec![],
        skipped: vec![],
        sessions: vec![],
        pending: None,
        notes: vec!["a note".into()],
    };
    assert!(!report.drifted());
    assert_eq!(
        report.to_string(),
        "note: a note\nverified 3 exchanges: 0 differ, 3 the same; 0 skipped (not verified)\n"
    );
}

#[test]
fn errors_are_send_sync_and_static() {
    fn check<T: Send + Sync + 'static>() {}
    check::<VerifyError>();
}

#[tokio::test]
async fn a_bad_upstream_or_a_missing_directory_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let err = Verify::new(dir.path(), "postgres://u:hunter2@h1,h2/db")
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::Config { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = Verify::new(dir.path().join("missing"), "postgres://u@127.0.0.1:1/db")
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::Fixtures(_)), "{err}");
}
