//! Matching rules (`pgsim-rules.json`): a parameter that differs on every
//! run (a timestamp taken from the clock) matches once a rule says so, the
//! report names the rule and the exchange, the recorder keys with the same
//! rules, and rules that merge differently answered queries are said at load.

use crate::support::{connect, live_url, recording};

const RULES: &str = r#"{"rules": [
  {"name": "sent_at is the clock", "query": "^insert into pgsim_rule_events", "param": 2,
   "match": {"regex": "^\\d{4}-\\d\\d-\\d\\d "}}
]}"#;

/// What a test suite does: it stamps each row with the time it runs.
async fn workload(url: &str, now: &str) -> Result<String, tokio_postgres::Error> {
    let c = connect(url).await;
    let n = c
        .execute(
            "insert into pgsim_rule_events (note, sent_at) values ($1, $2::text::timestamptz)",
            &[&"hello", &now],
        )
        .await?;
    Ok(format!("inserted {n}"))
}

#[tokio::test]
async fn a_clock_parameter_matches_through_a_rule_and_the_report_says_so() {
    let Some(live) = live_url() else { return };
    let _guard = crate::support::LIVE_LOCK.lock().await;
    let setup = connect(&live).await;
    setup
        .batch_execute(
            "drop table if exists pgsim_rule_events; \
             create table pgsim_rule_events (note text, sent_at timestamptz)",
        )
        .await
        .unwrap();
    let (dir, recorder, rec_url) = recording(&live).await;
    let live_out = workload(&rec_url, "2026-12-02 10:00:00.123+00")
        .await
        .unwrap();
    // Two selects a too-wide rule will merge, answered differently.
    let c = connect(&rec_url).await;
    for v in ["2026-a", "2026-b"] {
        c.query_one("select $1::text || '!' as v", &[&v])
            .await
            .unwrap();
    }
    drop(c);
    assert!(recorder.shutdown().await.lost.is_empty());

    // Without a rule the new time is a miss.
    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    let later = "2026-12-03 08:30:00.5+00";
    let err = workload(&server.url(), later)
        .await
        .expect_err("another time");
    assert_eq!(
        err.as_db_error().map(|d| d.code().code()),
        Some(pgsim::SQLSTATE_NO_RECORDING)
    );
    drop(server);

    // With the rule it matches, and the report names the rule.
    std::fs::write(dir.path().join(pgsim::fixture::RULES_FILE), RULES).unwrap();
    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    assert_eq!(workload(&server.url(), later).await.unwrap(), live_out);
    // A value the rule does not cover still matches exactly: a miss.
    let err = workload(&server.url(), "yesterday")
        .await
        .expect_err("not a timestamp");
    assert!(err.as_db_error().is_some(), "{err}");
    let report = server.shutdown().await;
    assert_eq!(report.relaxed.len(), 1, "{report}");
    assert_eq!(report.relaxed[0].rule, "sent_at is the clock");
    assert_eq!(report.relaxed[0].param, 2);
    assert!(report.relaxed[0]
        .origin
        .sql
        .starts_with("insert into pgsim_rule_events"));
    assert!(report.to_string().contains("relaxed by rule"), "{report}");

    // A too-wide rule merging two differently answered queries is said.
    std::fs::write(
        dir.path().join(pgsim::fixture::RULES_FILE),
        r#"{"rules": [{"query": "^select", "param": 1, "match": {"regex": "^2026"}}]}"#,
    )
    .unwrap();
    let replay = pgsim::Replay::load(dir.path()).unwrap();
    assert!(
        replay
            .warnings()
            .iter()
            .any(|w| w.contains("makes two recorded queries one")),
        "{:?}",
        replay.warnings()
    );

    // The recorder keys with the directory's rules: two runs at different
    // times record the same key.
    std::fs::write(dir.path().join(pgsim::fixture::RULES_FILE), RULES).unwrap();
    let again = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join(pgsim::fixture::RULES_FILE),
        again.path().join(pgsim::fixture::RULES_FILE),
    )
    .unwrap();
    let rec = pgsim::Recorder::builder()
        .upstream(&live)
        .fixtures(again.path())
        .start()
        .await
        .unwrap();
    let url = format!(
        "postgres://postgres:{}@{}/postgres",
        crate::support::url_password(&live),
        rec.addr()
    );
    workload(&url, "2026-12-02 10:00:00+00").await.unwrap();
    workload(&url, "2027-01-01 00:00:00+00").await.unwrap();
    assert!(rec.shutdown().await.lost.is_empty());
    let set = pgsim::fixture::load_dir(again.path()).unwrap();
    let keys: Vec<&str> = set
        .sessions
        .iter()
        .flat_map(|s| &s.session.exchanges)
        .filter(|e| e.sql.starts_with("insert"))
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "one key for both times");
    let values: Vec<String> = set
        .sessions
        .iter()
        .flat_map(|s| &s.session.exchanges)
        .filter(|e| e.sql.starts_with("insert"))
        .map(|e| format!("{:?}", e.params))
        .collect();
    assert_ne!(values[0], values[1], "the recorded values are kept as sent");
    setup
        .batch_execute("drop table pgsim_rule_events")
        .await
        .unwrap();
}
