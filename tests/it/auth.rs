//! Authentication in replay, per role and method, as PostgreSQL does it:
//! cleartext, MD5 and SCRAM-SHA-256 with tokio-postgres, psql and psycopg;
//! a wrong password, and an unknown role under a password method, refused
//! with PostgreSQL's `28P01` words (psql prints byte for byte what it
//! prints against the live server).

use std::process::Command;

use pgsim::tokio_postgres;
use pgsim::{AuthMethod, MockServer};

use crate::support::{demo_dir, live_url, refusal, DEMO_PIN};

async fn server(method: AuthMethod) -> MockServer {
    MockServer::builder()
        .fixtures(demo_dir())
        .password("demo-secret")
        .auth_method(method)
        .start()
        .await
        .expect("the mock server starts")
}

fn url(server: &MockServer, user: &str, password: &str) -> String {
    let addr = server.addr();
    format!(
        "postgres://{user}:{password}@{}:{}/pgsim_demo?sslmode=disable",
        addr.ip(),
        addr.port()
    )
}

#[tokio::test]
async fn each_method_lets_the_right_password_in_and_refuses_a_wrong_one_as_postgresql_does() {
    for method in [
        AuthMethod::Password,
        AuthMethod::Md5,
        AuthMethod::ScramSha256,
    ] {
        let server = server(method).await;
        let client = crate::support::connect(&url(&server, "postgres", "demo-secret")).await;
        client
            .simple_query(DEMO_PIN)
            .await
            .unwrap_or_else(|e| panic!("{method:?}: {e}"));
        assert_eq!(
            refusal(&url(&server, "postgres", "wrong")).await,
            (
                "28P01".to_owned(),
                "password authentication failed for user \"postgres\"".to_owned()
            ),
            "{method:?}"
        );
        // A role nobody recorded is asked for a password too, and refused
        // the same way: no telling which roles exist.
        assert_eq!(
            refusal(&url(&server, "nobody", "demo-secret")).await,
            (
                "28P01".to_owned(),
                "password authentication failed for user \"nobody\"".to_owned()
            ),
            "{method:?}"
        );
    }
}

#[tokio::test]
async fn roles_authenticate_each_their_own_way_from_a_roles_file() {
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::write(dir.path().join("postgres.secret"), "from-a-file\n").expect("a secret");
    let file = dir.path().join("roles.json");
    std::fs::write(
        &file,
        r#"{ "roles": { "postgres": { "method": "scram-sha-256", "password_file": "postgres.secret" } } }"#,
    )
    .expect("a roles file");
    let server = MockServer::builder()
        .fixtures(demo_dir())
        .auth_file(&file)
        .start()
        .await
        .expect("starts");
    let client = crate::support::connect(&url(&server, "postgres", "from-a-file")).await;
    client.simple_query(DEMO_PIN).await.expect("answered");
    assert_eq!(
        refusal(&url(&server, "postgres", "from-a-file\n")).await.0,
        "28P01"
    );

    // A roles file that names a variable nobody set says so.
    std::fs::write(
        &file,
        r#"{ "default": { "method": "md5", "password_env": "PGSIM_TEST_UNSET_VARIABLE" } }"#,
    )
    .expect("a roles file");
    let e = MockServer::builder()
        .fixtures(demo_dir())
        .auth_file(&file)
        .start()
        .await
        .expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("roles.json") && text.contains("PGSIM_TEST_UNSET_VARIABLE is not set"),
        "{text}"
    );
}

/// psql's output against `port` with `password`, the port written as PORT.
fn psql(port: u16, user: &str, password: &str) -> (bool, String) {
    let out = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={port} user={user} dbname=pgsim_demo sslmode=disable"
        ))
        .args(["-X", "-At", "-c", "select 1"])
        .env("PGPASSWORD", password)
        .env_remove("PGSERVICE")
        .output()
        .expect("psql runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).replace(&port.to_string(), "PORT"),
    )
}

#[tokio::test]
async fn psql_authenticates_with_md5_and_scram_and_prints_the_refusal_postgresql_prints() {
    for method in [AuthMethod::Md5, AuthMethod::ScramSha256] {
        let server = server(method).await;
        let port = server.addr().port();
        let ok = tokio::task::spawn_blocking(move || {
            Command::new("psql")
                .arg(format!(
                    "host=127.0.0.1 port={port} user=postgres dbname=pgsim_demo sslmode=disable"
                ))
                .args(["-X", "-At", "-c", DEMO_PIN])
                .env("PGPASSWORD", "demo-secret")
                .output()
                .expect("psql runs")
        })
        .await
        .expect("psql");
        assert!(
            ok.status.success(),
            "{method:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let (ok, refused) = tokio::task::spawn_blocking(move || psql(port, "postgres", "wrong"))
            .await
            .expect("psql");
        assert!(!ok);
        assert!(
            refused.contains("FATAL:  password authentication failed for user \"postgres\""),
            "{method:?}: {refused}"
        );
    }
    // The live server, with the same wrong password: the same bytes.
    let Some(live) = live_url() else { return };
    let config: tokio_postgres::Config = live.parse().expect("the live URL");
    let live_port = config.get_ports().first().copied().unwrap_or(5432);
    let server = server(AuthMethod::ScramSha256).await;
    let port = server.addr().port();
    let (live_out, mock_out) = tokio::task::spawn_blocking(move || {
        (
            psql(live_port, "postgres", "wrong"),
            psql(port, "postgres", "wrong"),
        )
    })
    .await
    .expect("psql");
    assert_eq!(mock_out, live_out, "psql prints the same refusal");
}

#[tokio::test]
async fn psycopg_authenticates_with_scram_and_md5() {
    let has_psycopg = Command::new("python3")
        .args(["-c", "import psycopg"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_psycopg {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but psycopg is missing (.ci/run installs it)"
        );
        eprintln!("psycopg missing: skipping (pip install 'psycopg[binary]')");
        return;
    }
    for method in [AuthMethod::Md5, AuthMethod::ScramSha256] {
        let server = server(method).await;
        let port = server.addr().port();
        let script = format!(
            r#"
import psycopg
conn = psycopg.connect("host=127.0.0.1 port={port} user=postgres dbname=pgsim_demo sslmode=disable password=demo-secret", autocommit=True)
print(conn.execute("{DEMO_PIN}").fetchone()[1])
try:
    psycopg.connect("host=127.0.0.1 port={port} user=postgres dbname=pgsim_demo sslmode=disable password=wrong")
except psycopg.OperationalError as e:
    print(e.sqlstate if hasattr(e, "sqlstate") and e.sqlstate else str(e).strip().splitlines()[-1])
"#
        );
        let out = tokio::task::spawn_blocking(move || {
            Command::new("python3")
                .args(["-c", &script])
                .output()
                .expect("python3 runs")
        })
        .await
        .expect("psycopg");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{method:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.first(), Some(&"apple"), "{method:?}: {stdout}");
        assert!(
            lines
                .get(1)
                .is_some_and(|l| *l == "28P01" || l.contains("password authentication failed")),
            "{method:?}: {stdout}"
        );
    }
}
