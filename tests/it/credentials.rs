//! Credentials: a password never prints (builder, connection string,
//! client), a password provider is asked once per new connection, so a
//! rotated password reaches connections opened after the rotation, and a
//! wrong password fails with the server's own 28P01. Live, Record (where
//! the provider also answers the upstream check, and no fixture holds the
//! password) and Replay.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgsim::client::{Closed, Password};
use pgsim::tokio_postgres::NoTls;
use pgsim::{Client, ClientBuilder, ConnectionString, Error, Mode};

use crate::support::{live_url, LIVE_LOCK};

const ROLE: &str = "pgsim_cred_user";
const FIRST: &str = "pgsim-cred-first-A1";
const SECOND: &str = "pgsim-cred-second-B2";

/// A provider that returns whatever `current` holds, counting its calls.
fn rotating(
    builder: ClientBuilder,
    current: &Arc<Mutex<String>>,
) -> (ClientBuilder, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let (counted, current) = (Arc::clone(&calls), Arc::clone(current));
    let builder = builder.password_provider(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let password = current.lock().expect("the password").clone();
        async move { Ok(Password::new(password)) }
    });
    (builder, calls)
}

async fn who(client: &Client) -> pgsim::Result<String> {
    Ok(client
        .query_one("select current_user::text", &[])
        .await?
        .get(0))
}

#[tokio::test]
async fn debug_output_never_holds_the_password() {
    let url = "postgres://postgres:hunter2-secret@127.0.0.1:5432/pgsim_toolkit";
    let builder = Client::builder()
        .url(url)
        .mode(Mode::Replay {
            fixtures: pgsim_recorder::toolkit::fixtures_dir().join("queries"),
        })
        .password_provider(|| async { Ok(Password::new("hunter3-secret")) });
    let parsed: ConnectionString = url.parse().expect("a connection string");
    assert!(parsed.has_password());
    let client = builder.clone().build().await.expect("a replay client");
    for shown in [
        format!("{builder:?}"),
        format!("{parsed:?} {parsed}"),
        format!("{client:?}"),
        format!("{:?}", Password::new("hunter2-secret")),
    ] {
        assert!(!shown.contains("hunter"), "{shown}");
    }
    assert!(format!("{client:?}").contains("postgres:***@127.0.0.1"));
    client.close().await.expect("close");
}

#[tokio::test]
async fn replay_asks_the_provider_once_per_new_connection() {
    let current = Arc::new(Mutex::new(FIRST.to_owned()));
    let builder = Client::builder()
        .url("postgres://postgres@127.0.0.1:5432/pgsim_toolkit")
        .mode(Mode::Replay {
            fixtures: pgsim_recorder::toolkit::fixtures_dir().join("queries"),
        })
        .max_connections(2);
    let (builder, calls) = rotating(builder, &current);
    let client = builder.build().await.expect("a replay client");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no connection opened yet");
    let first = client.acquire().await.expect("a connection");
    drop(first);
    let again = client.acquire().await.expect("the same connection");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "an idle connection is reused"
    );
    let other = client.acquire().await.expect("a second connection");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "a new connection asks again"
    );
    drop((again, other));
    client.close().await.expect("close");

    let failing = Client::builder()
        .url("postgres://postgres@127.0.0.1:5432/pgsim_toolkit")
        .mode(Mode::Replay {
            fixtures: pgsim_recorder::toolkit::fixtures_dir().join("queries"),
        })
        .password_provider(|| async { Err("the vault is sealed".into()) })
        .build()
        .await
        .expect("a replay client");
    let e = failing
        .acquire()
        .await
        .expect_err("no password, no connection");
    match &e {
        Error::PasswordProvider { user, reason } => {
            assert_eq!(
                (user.as_str(), reason.as_str()),
                ("postgres", "the vault is sealed")
            );
        }
        other => panic!("expected a password provider error, got {other:?}"),
    }
    assert!(e.to_string().contains("role postgres"), "{e}");
    failing.close().await.expect("close");
}

#[tokio::test]
async fn a_rotated_password_reaches_new_connections_live_and_recorded() {
    let Some(live) = live_url() else {
        return;
    };
    let _live = LIVE_LOCK.lock().await;
    let (admin, conn) = pgsim::tokio_postgres::connect(&live, NoTls)
        .await
        .expect("the live server");
    tokio::spawn(conn);
    admin
        .batch_execute(&format!(
            "drop role if exists {ROLE}; create role {ROLE} login password '{FIRST}'"
        ))
        .await
        .expect("create the role");
    let server: ConnectionString = live.parse().expect("PGSIM_LIVE_URL");
    let url = format!("postgres://{ROLE}@{}/postgres", server.address());

    // Live: connections last 1 s, so maintenance retires the old one.
    let current = Arc::new(Mutex::new(FIRST.to_owned()));
    let builder = Client::builder()
        .url(&url)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(Duration::from_secs(1))
        .maintenance_interval(Duration::from_secs(3600));
    let (builder, calls) = rotating(builder, &current);
    let client = builder.build().await.expect("a live client");
    assert_eq!(who(&client).await.expect("first query"), ROLE);
    assert_eq!(who(&client).await.expect("same connection"), ROLE);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    admin
        .batch_execute(&format!("alter role {ROLE} password '{SECOND}'"))
        .await
        .expect("rotate");
    *current.lock().expect("the password") = SECOND.to_owned();
    assert_eq!(
        who(&client).await.expect("an open connection carries on"),
        ROLE
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.maintain().await.expect("retire the old connection");
    assert_eq!(
        who(&client)
            .await
            .expect("a new connection, the new password"),
        ROLE
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(client.pool_stats().retired, 1);
    assert!(!format!("{client:?}").contains("pgsim-cred"));
    client.close().await.expect("close");

    // A stale password is refused by the server, with its own SQLSTATE.
    let stale = Client::builder()
        .url(&url)
        .password_provider(|| async { Ok(Password::new(FIRST)) })
        .build()
        .await
        .expect("a live client (connections open on demand)");
    let e = who(&stale).await.expect_err("the old password is refused");
    assert_eq!(e.code(), Some("28P01"), "{e}");
    assert!(!e.to_string().contains(FIRST), "{e}");
    stale.close().await.expect("close");

    // Record: the provider answers the upstream check and each connection
    // through the recorder, and no fixture holds the password.
    let dir = tempfile::tempdir().expect("a temp dir");
    let builder = Client::builder().url(&url).mode(Mode::Record {
        fixtures: dir.path().into(),
    });
    let (builder, calls) = rotating(builder, &current);
    let client = builder.build().await.expect("a recording client");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the upstream check");
    assert_eq!(who(&client).await.expect("through the recorder"), ROLE);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let closed = client.close().await.expect("close");
    assert!(
        matches!(closed, Closed::Recorded(ref s) if s.exchanges > 0),
        "{closed:?}"
    );
    for entry in std::fs::read_dir(dir.path()).expect("the fixtures") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("a fixture");
        assert!(
            !text.contains("pgsim-cred"),
            "{} holds the password",
            path.display()
        );
    }
    let e = Client::builder()
        .url(&url)
        .mode(Mode::Record {
            fixtures: dir.path().join("refused"),
        })
        .password_provider(|| async { Ok(Password::new("pgsim-cred-wrong")) })
        .build()
        .await
        .expect_err("the upstream check refuses a wrong password");
    assert!(matches!(e, Error::Upstream { .. }), "{e:?}");
    assert!(e.to_string().contains("28P01"), "{e}");

    admin
        .batch_execute(&format!("drop role {ROLE}"))
        .await
        .expect("drop the role");
}
