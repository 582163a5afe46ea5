//! A role is answered only from what was recorded as it: only roles some
//! recorded session connected as may connect (`28000 role "..." does not
//! exist`, as PostgreSQL says it), and a query a role never sent misses
//! even when another role's answer to it is recorded.

use pgsim::MockServer;

use crate::support::{connect, demo_dir, live_url, refusal};

/// The demo set (recorded as `postgres`) and the survey set (recorded as
/// `pgsim_surveyor`) side by side: two recordings, two roles.
fn two_roles() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, from) in [
        ("demo", demo_dir()),
        ("survey", demo_dir().with_file_name("survey")),
    ] {
        crate::support::copy_tree(&from, &dir.path().join(name), &|p| {
            p.extension().is_some_and(|e| e == "json")
        });
    }
    dir
}

#[tokio::test]
async fn a_role_that_never_connected_while_recording_is_refused_as_postgresql_refuses_it() {
    let server = MockServer::builder()
        .fixtures(demo_dir())
        .start()
        .await
        .expect("starts");
    let (code, message) = refusal(&server.url_as("intruder", "pgsim_demo")).await;
    assert_eq!(code, "28000");
    assert_eq!(message, "role \"intruder\" does not exist");
    // The recorded role still gets in.
    let client = connect(&server.url_as("postgres", "pgsim_demo")).await;
    client
        .simple_query(crate::support::DEMO_PIN)
        .await
        .expect("answered");

    let open = MockServer::builder()
        .fixtures(demo_dir())
        .any_role()
        .start()
        .await
        .expect("starts");
    let client = connect(&open.url_as("intruder", "pgsim_demo")).await;
    client
        .simple_query(crate::support::DEMO_PIN)
        .await
        .expect("any_role: every role's recordings answer");
}

#[tokio::test]
async fn a_role_is_not_served_what_another_role_recorded() {
    let dir = two_roles();
    let server = MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .expect("starts");
    // pgsim_surveyor exists (it recorded the survey) but never queried
    // pgsim_demo: postgres's answers there are not its own.
    let surveyor = connect(&server.url_as("pgsim_surveyor", "pgsim_demo")).await;
    let e = surveyor
        .simple_query(crate::support::DEMO_PIN)
        .await
        .expect_err("another role's answer is not served");
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), pgsim::SQLSTATE_NO_RECORDING);
    assert!(
        db.message().contains("for this connection's role"),
        "{}",
        db.message()
    );
    assert_eq!(
        db.detail(),
        Some("It is recorded only for role(s) \"postgres\".")
    );
    let postgres = connect(&server.url_as("postgres", "pgsim_demo")).await;
    postgres
        .simple_query(crate::support::DEMO_PIN)
        .await
        .expect("its own recording answers");
}

/// Two roles recorded live sending the same query, answered differently
/// (`current_user`): in replay each gets its own answer, whichever
/// connects first and however many times.
#[tokio::test]
async fn two_roles_recorded_live_each_get_their_own_answer_in_replay() {
    let Some(live) = live_url() else { return };
    let admin = connect(&live).await;
    admin
        .batch_execute(
            "drop role if exists pgsim_role_b; create role pgsim_role_b login password 'role-b-secret'",
        )
        .await
        .expect("a second role");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let recorder = pgsim::Recorder::builder()
        .upstream(live.clone())
        .fixtures(dir.path())
        .start()
        .await
        .expect("the recorder starts");
    let as_b = {
        let a = recorder.url_for("postgres");
        // The same URL with role b's credentials.
        let (_, rest) = a.split_once('@').expect("a URL with credentials");
        format!("postgres://pgsim_role_b:role-b-secret@{rest}")
    };
    for url in [recorder.url_for("postgres"), as_b] {
        let client = connect(&url).await;
        client
            .simple_query("select current_user")
            .await
            .expect("live");
    }
    let summary = recorder.shutdown().await;
    assert!(
        summary.lost.is_empty() && summary.errors.is_empty(),
        "{summary}"
    );
    admin
        .batch_execute("drop role pgsim_role_b")
        .await
        .expect("dropped");

    let server = MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .expect("starts");
    for role in ["pgsim_role_b", "postgres", "pgsim_role_b", "postgres"] {
        let client = connect(&server.url_as(role, "postgres")).await;
        let rows = client
            .simple_query("select current_user")
            .await
            .expect("its own answer");
        let got = rows.iter().find_map(|m| match m {
            pgsim::tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        });
        assert_eq!(
            got.as_deref(),
            Some(role),
            "{role} got another role's answer"
        );
    }
    let report = server.report();
    assert!(report.misses.is_empty(), "{report}");
}
