//! Secrets never reach a fixture: planted in every place the recorder
//! sees (role passwords in SQL, a verifier read from pg_authid, a
//! connection string, a bound parameter, a result column, an inline token,
//! the application name), recorded live, then looked for in every file
//! written; the same client then replays with no miss. And no bundled
//! fixture holds what the default carriers would catch.

use std::path::Path;

use pgsim::tokio_postgres::SimpleQueryMessage;
use pgsim::MockServer;

use crate::support::{connect, live_url};

const RULES: &str = r#"{
  "redact": [
    { "name": "token parameter", "query": "^select length\\(\\$1::text\\) as token_length", "param": 1 },
    { "name": "token column", "query": "as api_token", "column": "api_token" },
    { "name": "inline key", "sql": "key=([a-z0-9-]+)" }
  ]
}"#;

/// What the client sends, recording and replaying alike.
async fn workload(client: &pgsim::tokio_postgres::Client) -> Vec<String> {
    let mut seen = Vec::new();
    for sql in [
        "drop role if exists pgsim_secret_role",
        "create role pgsim_secret_role login password 'planted-secret-1'",
        "alter role pgsim_secret_role with encrypted password E'planted-secret-2'",
        "select rolpassword from pg_authid where rolname = 'pgsim_secret_role'",
        "select 'host=db password=planted-secret-3 user=app' as conninfo",
        "select repeat('planted', 1) || '-secret-6' as api_token",
        "select 'key=planted-secret-7' is not null as ok",
        "drop role pgsim_secret_role",
    ] {
        for m in client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
        {
            if let SimpleQueryMessage::Row(r) = m {
                seen.push(r.get(0).unwrap_or("NULL").to_owned());
            }
        }
    }
    let rows = client
        .query(
            "select length($1::text) as token_length",
            &[&"planted-secret-5"],
        )
        .await
        .expect("a bound secret");
    seen.push(rows[0].get::<_, i32>(0).to_string());
    seen
}

fn every_file(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            every_file(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn no_planted_secret_reaches_a_fixture_and_replay_still_matches() {
    let Some(live) = live_url() else { return };
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join(pgsim::fixture::RULES_FILE), RULES).expect("rules");
    let recorder = pgsim::Recorder::builder()
        .upstream(live)
        .fixtures(dir.path())
        .start()
        .await
        .expect("the recorder starts");
    let url = format!(
        "{}&application_name=planted-secret-app",
        recorder.url_for("postgres")
    );
    let live_seen = workload(&connect(&url).await).await;
    let summary = recorder.shutdown().await;
    assert!(
        summary.lost.is_empty() && summary.errors.is_empty(),
        "{summary}"
    );
    assert!(
        summary
            .notes
            .iter()
            .any(|n| n.contains("secret value(s) written as 'pgsim:redacted'")),
        "the recorder says it redacted: {summary}"
    );
    assert!(
        live_seen.iter().any(|v| v.starts_with("SCRAM-SHA-256$")),
        "the live server returned the verifier: {live_seen:?}"
    );

    let mut files = Vec::new();
    every_file(dir.path(), &mut files);
    let mut fixtures = 0;
    for f in &files {
        if f.file_name()
            .is_some_and(|n| n == pgsim::fixture::RULES_FILE)
        {
            continue;
        }
        fixtures += 1;
        let text = std::fs::read_to_string(f).expect("a fixture");
        for secret in ["planted-secret", "SCRAM-SHA-256$"] {
            assert!(
                !text.contains(secret),
                "{} holds {secret:?}:\n{text}",
                f.display()
            );
        }
    }
    assert!(fixtures > 0, "something was written");

    // Replay: the client sends its secrets again and is answered.
    let server = MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .expect("starts");
    let url = format!(
        "{}&application_name=planted-secret-app",
        server.url_for("postgres")
    );
    let replayed = workload(&connect(&url).await).await;
    let report = server.report();
    assert!(report.misses.is_empty(), "{report}");
    let redacted: Vec<String> = live_seen
        .iter()
        .map(|v| {
            if v.starts_with("SCRAM-SHA-256$") || v == "planted-secret-6" {
                "pgsim:redacted".to_owned()
            } else {
                v.replace("planted-secret-3", "pgsim:redacted")
            }
        })
        .collect();
    assert_eq!(
        replayed, redacted,
        "replay answers what was recorded, secrets redacted"
    );
}

#[test]
fn no_bundled_fixture_holds_what_the_default_carriers_catch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files = Vec::new();
    every_file(&root, &mut files);
    let mut checked = 0;
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        let Ok((session, _)) = pgsim::fixture::load_file(f) else {
            continue; // expected/ transcripts and the survey JSON are not fixtures
        };
        for mut ex in session.exchanges.clone() {
            let before = ex.clone();
            let n =
                pgsim::fixture::redact::redact_exchange(&mut ex, &pgsim::fixture::Rules::default());
            assert_eq!(
                n,
                0,
                "{} seq {} holds a secret:\n{before:?}",
                f.display(),
                before.seq
            );
            checked += 1;
        }
    }
    assert!(checked > 800, "{checked} bundled exchanges checked");
}
