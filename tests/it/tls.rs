//! TLS: the mock server and the recorder answer SSLRequest with `S` when
//! given a certificate (one generated at start, its CA written where a
//! client can trust it), `N` otherwise, as a PostgreSQL with `ssl` on or
//! off; psql verifies the certificate (`sslmode=verify-full`) and binds
//! SCRAM to the channel (`channel_binding=require`); the toolkit's
//! connections do what `sslmode` says through rustls.

use std::path::Path;
use std::process::Command;

use pgsim::{AuthMethod, Client, MockServer, Mode, SslMode, TlsSource};

use crate::support::{demo_dir, DEMO_PIN};

async fn tls_server(root: &Path) -> MockServer {
    MockServer::builder()
        .fixtures(demo_dir())
        .password("tls-secret")
        .auth_method(AuthMethod::ScramSha256)
        .tls(TlsSource::Generated {
            root_cert: Some(root.to_owned()),
        })
        .start()
        .await
        .expect("the mock server starts with TLS")
}

/// psql with `conninfo` and `-c` for each of `commands`: (ok, stdout, stderr).
async fn psql(conninfo: String, commands: &[&str]) -> (bool, String, String) {
    let commands: Vec<String> = commands.iter().map(|c| (*c).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("psql");
        cmd.arg(conninfo)
            .args(["-X", "-At"])
            .env("PGPASSWORD", "tls-secret");
        for c in &commands {
            cmd.args(["-c", c]);
        }
        let out = cmd.output().expect("psql runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("psql")
}

#[tokio::test]
async fn psql_verifies_the_generated_certificate_and_binds_scram_to_the_channel() {
    let dir = tempfile::tempdir().expect("a directory");
    let root = dir.path().join("root.pem");
    let server = tls_server(&root).await;
    assert_eq!(
        server.tls_root_cert().map(<[u8]>::to_vec),
        Some(std::fs::read(&root).expect("the CA certificate was written"))
    );
    let port = server.addr().port();
    let (ok, out, err) = psql(
        format!(
            "host=localhost port={port} user=postgres dbname=pgsim_demo sslmode=verify-full sslrootcert={} channel_binding=require",
            root.display()
        ),
        &[DEMO_PIN, "\\conninfo"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.starts_with("1|apple|"), "{out}");
    assert!(out.contains("SSL connection (protocol: TLSv1.3"), "{out}");

    // Another CA does not vouch for it.
    let other = dir.path().join("other.pem");
    let _unrelated = tls_server(&other).await;
    let (ok, _, err) = psql(
        format!(
            "host=localhost port={port} user=postgres dbname=pgsim_demo sslmode=verify-full sslrootcert={}",
            other.display()
        ),
        &["select 1"],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("certificate verify failed") || err.contains("SSL error"),
        "{err}"
    );
}

#[tokio::test]
async fn without_a_certificate_the_server_answers_n_as_postgresql_with_ssl_off() {
    let server = MockServer::builder()
        .fixtures(demo_dir())
        .start()
        .await
        .expect("starts");
    let port = server.addr().port();
    let (ok, _, err) = psql(
        format!("host=127.0.0.1 port={port} user=postgres dbname=pgsim_demo sslmode=require"),
        &["select 1"],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("server does not support SSL, but SSL was required"),
        "{err}"
    );
    let (ok, out, err) = psql(
        format!("host=127.0.0.1 port={port} user=postgres dbname=pgsim_demo sslmode=prefer"),
        &[DEMO_PIN],
    )
    .await;
    assert!(ok && out.starts_with("1|apple|"), "{out}{err}");
}

#[tokio::test]
async fn the_toolkit_does_what_sslmode_says() {
    let dir = tempfile::tempdir().expect("a directory");
    let root = dir.path().join("root.pem");
    let server = tls_server(&root).await;
    let port = server.addr().port();
    let url =
        |query: &str| format!("postgres://postgres:tls-secret@localhost:{port}/pgsim_demo?{query}");
    // verify-full with the CA: connected, over TLS.
    let client = Client::builder()
        .url(url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            root.display()
        )))
        .mode(Mode::Live)
        .build()
        .await
        .expect("verify-full with the right CA connects");
    let rows = client.query(DEMO_PIN, &[]).await.expect("answered");
    assert_eq!(rows[0].get::<_, String>("name"), "apple");
    drop(client);
    // verify-full without it: the webpki roots do not know this CA.
    let e = Client::builder()
        .url(url("sslmode=verify-full"))
        .mode(Mode::Live)
        .min_idle(1)
        .build()
        .await;
    assert!(e.is_err(), "an unverifiable certificate is refused");
    // require: encrypted, not verified (libpq's meaning).
    let client = Client::builder()
        .url(url("sslmode=require"))
        .mode(Mode::Live)
        .build()
        .await
        .expect("require connects");
    client.query(DEMO_PIN, &[]).await.expect("answered");
    // The connector on its own, as a test with tokio-postgres uses it.
    let connector =
        pgsim::tls_connector(SslMode::VerifyFull, server.tls_root_cert()).expect("a connector");
    let (c, conn) = pgsim::tokio_postgres::connect(&url("sslmode=require"), connector)
        .await
        .expect("tokio-postgres over verified TLS");
    tokio::spawn(conn);
    c.simple_query(DEMO_PIN).await.expect("answered");
    assert_eq!(
        "verify-ca".parse::<SslMode>(),
        Ok(SslMode::VerifyCa),
        "every libpq mode parses"
    );
    assert!("verify".parse::<SslMode>().is_err());
}

#[tokio::test]
async fn the_recorder_speaks_tls_to_its_clients_and_to_its_upstream() {
    let dir = tempfile::tempdir().expect("a directory");
    let upstream_root = dir.path().join("upstream.pem");
    let upstream = tls_server(&upstream_root).await;
    let fixtures = dir.path().join("recorded");
    let client_root = dir.path().join("recorder.pem");
    let recorder = pgsim::Recorder::builder()
        .upstream(
            upstream
                .addr()
                .to_string()
                .replace("127.0.0.1", "localhost"),
        )
        .upstream_tls(SslMode::VerifyFull, Some(upstream_root.clone()))
        .tls(TlsSource::Generated {
            root_cert: Some(client_root.clone()),
        })
        .fixtures(&fixtures)
        .start()
        .await
        .expect("the recorder starts");
    let port = recorder.addr().port();
    let (ok, out, err) = psql(
        format!(
            // A proxy that terminates TLS cannot pass channel binding on:
            // the client's channel is with the proxy, the server's with it.
            "host=localhost port={port} user=postgres dbname=pgsim_demo sslmode=verify-full sslrootcert={} channel_binding=disable",
            client_root.display()
        ),
        &[DEMO_PIN, "\\conninfo"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("SSL connection"), "{out}");
    let summary = recorder.shutdown().await;
    assert!(
        summary.lost.is_empty() && summary.errors.is_empty(),
        "{summary}"
    );
    assert_eq!(summary.exchanges, 1, "{summary}");
    // What was recorded over two TLS links replays in plaintext.
    let replay = MockServer::builder()
        .fixtures(&fixtures)
        .start()
        .await
        .expect("the recording loads");
    let c = crate::support::connect(&replay.url_for("pgsim_demo")).await;
    c.simple_query(DEMO_PIN).await.expect("replayed");
}
