//! `GET /metrics` on `pgsim serve` and `pgsim record` (and the library's
//! `metrics_listen` / `metrics_text`): Prometheus text, parsed with a
//! parser crate, whose counts are what the test just sent.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};
use tokio_postgres::NoTls;

use crate::cli::{start, Reap};
use crate::support::{demo_dir, live_url};

/// The query the demo's tokio-postgres session recorded first.
const RECORDED: &str = "select * from items order by id";

/// An HTTP/1.1 request for `path` (`GET` unless `method` says otherwise);
/// the status code and the body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the metrics endpoint accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("a whole response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// `GET /metrics`, checked to be 200 and parsed as Prometheus text.
fn scrape(addr: SocketAddr) -> Metrics {
    let (status, body) = http(addr, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    Metrics::parse(&body)
}

/// A parsed scrape, and the text it came from (for failure messages).
pub(crate) struct Metrics {
    scrape: Scrape,
    text: String,
}

impl Metrics {
    pub(crate) fn parse(text: &str) -> Self {
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"));
        // Every sample line became a sample (or a histogram bucket): the
        // parser skips what it cannot read, so count what it kept.
        let lines = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        let kept: usize = scrape
            .samples
            .iter()
            .map(|s| match &s.value {
                Value::Histogram(buckets) => buckets.len(),
                _ => 1,
            })
            .sum();
        assert_eq!(kept, lines, "lines the parser dropped:\n{text}");
        Metrics {
            scrape,
            text: text.to_owned(),
        }
    }

    pub(crate) fn sample(&self, name: &str, labels: &[(&str, &str)]) -> &Sample {
        self.scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{}", self.text))
    }

    /// A counter's or gauge's value.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match &self.sample(name, labels).value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is {other:?}"),
        }
    }

    /// A histogram's cumulative count at bucket `le`.
    fn bucket(&self, name: &str, le: f64) -> f64 {
        let Value::Histogram(buckets) = &self.sample(name, &[]).value else {
            panic!("{name} is no histogram in\n{}", self.text);
        };
        buckets
            .iter()
            .find(|b| b.less_than == le)
            .unwrap_or_else(|| panic!("{name} has no bucket le={le}"))
            .count
    }

    /// A histogram's observations (its `+Inf` bucket), checked to be
    /// cumulative.
    pub(crate) fn observations(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let Value::Histogram(buckets) = &self.sample(name, labels).value else {
            panic!("{name} is no histogram in\n{}", self.text);
        };
        assert!(
            buckets.windows(2).all(|w| w[0].count <= w[1].count),
            "{name} buckets are not cumulative:\n{}",
            self.text
        );
        let total = buckets
            .iter()
            .find(|b| b.less_than == f64::INFINITY)
            .unwrap_or_else(|| panic!("{name} has no +Inf bucket"));
        assert_eq!(
            self.value(&format!("{name}_count"), &[]),
            total.count,
            "{name}_count is its +Inf bucket"
        );
        total.count
    }
}

/// The address on the line `pgsim serve` / `pgsim record` prints after the
/// one saying where clients connect.
fn metrics_line(stdout: &mut impl BufRead) -> SocketAddr {
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a second line");
    line.trim()
        .rsplit_once("http://")
        .and_then(|(_, url)| url.strip_suffix("/metrics"))
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
}

fn sigterm(child: &mut Reap) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.0.wait().expect("pgsim exits");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn serve_metrics_show_the_queries_just_replayed_and_missed() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0", "--fixtures"])
        .arg(demo_dir());
    let (mut child, port, mut stdout) = start(command);
    let metrics = metrics_line(&mut stdout);

    let before = scrape(metrics);
    assert_eq!(before.value("pgsim_queries_total", &[]), 0.0);
    assert_eq!(
        before.observations("pgsim_query_duration_seconds", &[]),
        0.0
    );

    let url = format!("postgres://postgres@127.0.0.1:{port}/pgsim_demo?sslmode=disable");
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("connects to pgsim serve");
    let task = tokio::spawn(connection);
    for _ in 0..3 {
        let rows = client.query(RECORDED, &[]).await.expect("recorded");
        assert!(!rows.is_empty());
    }
    client.simple_query(RECORDED).await.expect("recorded");
    for _ in 0..2 {
        let e = client
            .simple_query("select 'never recorded'")
            .await
            .expect_err("a miss");
        assert_eq!(e.code().map(|c| c.code()), Some("PGS01"), "{e}");
    }

    let m = scrape(metrics);
    let db = [("database", "pgsim_demo")];
    assert_eq!(m.value("pgsim_sessions_started_total", &[]), 1.0);
    assert_eq!(m.value("pgsim_sessions_active", &db), 1.0);
    assert_eq!(m.value("pgsim_queries_total", &[]), 6.0);
    assert_eq!(m.value("pgsim_misses_total", &[]), 2.0);
    let answers = |source| {
        m.value(
            "pgsim_answers_total",
            &[("database", "pgsim_demo"), ("source", source)],
        )
    };
    assert_eq!(answers("recording"), 4.0);
    assert_eq!(answers("miss"), 2.0);
    assert_eq!(answers("fault"), 0.0);
    assert_eq!(m.observations("pgsim_query_duration_seconds", &[]), 6.0);
    assert!(m.value("pgsim_recorded_answers", &[]) > 0.0);

    drop(client);
    let _ = task.await;
    sigterm(&mut child);
}

#[tokio::test]
async fn metrics_text_counts_faults_by_position_and_answers_by_source() {
    let server = pgsim::MockServer::builder()
        .fixtures(demo_dir())
        .fault(format!(
            "match=^{},latency=30,times=1",
            regex_escape(RECORDED)
        ))
        .fault(format!(
            "match=^{},error=40001,times=1",
            regex_escape(RECORDED)
        ))
        .start()
        .await
        .expect("starts");
    assert_eq!(server.metrics_addr(), None, "no endpoint unless asked");
    let (client, connection) = tokio_postgres::connect(&server.url_for("pgsim_demo"), NoTls)
        .await
        .expect("connects");
    let task = tokio::spawn(connection);
    let e = client.simple_query(RECORDED).await.expect_err("injected");
    assert_eq!(e.code().map(|c| c.code()), Some("40001"), "{e}");
    client.simple_query(RECORDED).await.expect("then recorded");

    let m = Metrics::parse(&server.metrics_text());
    for fault in ["1", "2"] {
        let at = [("fault", fault)];
        assert_eq!(m.value("pgsim_faults_matched_total", &at), 2.0, "#{fault}");
        assert_eq!(m.value("pgsim_faults_fired_total", &at), 1.0, "#{fault}");
    }
    let source = |s| {
        m.value(
            "pgsim_answers_total",
            &[("database", "pgsim_demo"), ("source", s)],
        )
    };
    assert_eq!((source("fault"), source("recording")), (1.0, 1.0));
    assert_eq!(m.value("pgsim_queries_total", &[]), 2.0);
    assert_eq!(m.value("pgsim_misses_total", &[]), 0.0);
    assert_eq!(m.observations("pgsim_query_duration_seconds", &[]), 2.0);
    // The injected 30 ms is server-side time: that answer is above 25 ms.
    assert!(
        m.bucket("pgsim_query_duration_seconds", 0.025) <= 1.0,
        "{}",
        m.text
    );
    assert_eq!(server.report().queries, 2, "the report agrees");
    drop(client);
    let _ = task.await;
}

#[tokio::test]
async fn two_servers_in_one_process_count_apart() {
    let start = || pgsim::MockServer::builder().fixtures(demo_dir()).start();
    let (asked, idle) = (
        start().await.expect("starts"),
        start().await.expect("starts"),
    );
    let (client, connection) = tokio_postgres::connect(&asked.url_for("pgsim_demo"), NoTls)
        .await
        .expect("connects");
    let task = tokio::spawn(connection);
    client.simple_query(RECORDED).await.expect("recorded");
    let queries =
        |s: &pgsim::MockServer| Metrics::parse(&s.metrics_text()).value("pgsim_queries_total", &[]);
    assert_eq!((queries(&asked), queries(&idle)), (1.0, 0.0));
    drop(client);
    let _ = task.await;
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '*' | '.' | '+' | '(' | ')' | '?' | '[' | ']' | '^' | '$' | '|' | '\\' => {
                vec!['\\', c]
            }
            c => vec![c],
        })
        .collect()
}

#[tokio::test]
async fn other_paths_answer_404_and_other_methods_405() {
    let server = pgsim::MockServer::builder()
        .fixtures(demo_dir())
        .metrics_listen("127.0.0.1:0".parse().expect("an address"))
        .start()
        .await
        .expect("starts");
    let addr = server.metrics_addr().expect("the endpoint listens");
    let (status, body) = tokio::task::spawn_blocking(move || http(addr, "GET", "/"))
        .await
        .expect("joins");
    assert_eq!(status, 404);
    assert!(
        body.contains("/metrics"),
        "the 404 says where to look: {body}"
    );
    let (status, _) = tokio::task::spawn_blocking(move || http(addr, "GET", "/metricsx"))
        .await
        .expect("joins");
    assert_eq!(status, 404);
    let (status, _) = tokio::task::spawn_blocking(move || http(addr, "POST", "/metrics"))
        .await
        .expect("joins");
    assert_eq!(status, 405);
    let m = tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .expect("joins");
    assert_eq!(m.value("pgsim_sessions_started_total", &[]), 0.0);
    server.shutdown().await;
    assert!(
        TcpStream::connect(addr).is_err(),
        "the endpoint stops with the server"
    );
}

#[test]
fn a_bad_metrics_listen_value_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "localhost-ish", "--fixtures"])
        .arg(demo_dir())
        .output()
        .expect("pgsim runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--metrics-listen") && stderr.contains("localhost-ish"),
        "{stderr}"
    );

    // An address already taken: named in the error, nothing served.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address");
    let out = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen"])
        .arg(addr.to_string())
        .arg("--fixtures")
        .arg(demo_dir())
        .output()
        .expect("pgsim runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn record_metrics_count_sessions_exchanges_and_upstream_round_trips() {
    let Some(live) = live_url() else { return };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    command
        .args(["record", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(&live)
        .args(["--metrics-listen", "127.0.0.1:0", "--fixtures"])
        .arg(dir.path());
    let (mut child, port, mut stdout) = start(command);
    let metrics = metrics_line(&mut stdout);

    // The live URL's credentials, through the recorder.
    let upstream: tokio_postgres::Config = live.parse().expect("PGSIM_LIVE_URL parses");
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(upstream.get_user().unwrap_or("postgres"))
        .dbname(upstream.get_dbname().unwrap_or("postgres"));
    if let Some(password) = upstream.get_password() {
        config.password(password);
    }
    let (client, connection) = config.connect(NoTls).await.expect("connects through");
    let task = tokio::spawn(connection);
    for i in 0..3 {
        client
            .simple_query(&format!("select {i} as n"))
            .await
            .expect("the upstream answers");
    }
    let e = client
        .simple_query("select 1 / 0")
        .await
        .expect_err("division by zero");
    assert_eq!(e.code().map(|c| c.code()), Some("22012"), "{e}");

    let m = scrape(metrics);
    assert_eq!(m.value("pgsim_record_sessions_started_total", &[]), 1.0);
    assert_eq!(m.value("pgsim_record_sessions_active", &[]), 1.0);
    assert_eq!(m.value("pgsim_record_exchanges_total", &[]), 4.0);
    assert_eq!(m.value("pgsim_record_exchanges_lost_total", &[]), 0.0);
    assert_eq!(m.value("pgsim_record_write_errors_total", &[]), 0.0);
    assert_eq!(
        m.observations("pgsim_record_upstream_duration_seconds", &[]),
        4.0,
        "one round trip per query"
    );

    drop(client);
    let _ = task.await;
    sigterm(&mut child);
}
