//! The driver matrix: real clients nobody on this project wrote (psql,
//! pgbench, psycopg 3, asyncpg, node-postgres, pgjdbc, tokio-postgres), each
//! run once live through the recording proxy and once against a mock server
//! replaying that recording. What the client printed must be the same, byte
//! for byte, and the mock must have missed nothing.
//!
//! The workloads live in `tests/drivers/` (tokio-postgres's is below). Each
//! prints a transcript of every result and creates its own tables, prefixed
//! with the client's name, in the database [`DB`], which is dropped and
//! recreated before every recording. `.ci/run` installs the clients; a
//! client that is missing skips its test locally and fails it in CI.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, TryStreamExt};
use pgsim::tokio_postgres::types::Type;
use pgsim::tokio_postgres::{self, NoTls, Row, SimpleQueryMessage};
use pgsim::{MockServer, Recorder};

use crate::support::live_url;
use pgsim_recorder::scenario::{Raw, Target};

/// The database every workload runs in (live, through the recorder, and as
/// recorded in the fixtures the mock replays).
const DB: &str = "pgsim_drivers";

/// How long one client run may take before it is killed (a replay that
/// leaves a client waiting for an answer must fail, not hang the suite).
const RUN_TIMEOUT: Duration = Duration::from_secs(45);

/// The matrix tests all rebuild [`DB`]: one at a time.
static MATRIX_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    Psql,
    Pgbench,
    Psycopg,
    Asyncpg,
    Node,
    Jdbc,
    TokioPostgres,
}

const ALL: [Driver; 7] = [
    Driver::Psql,
    Driver::Pgbench,
    Driver::Psycopg,
    Driver::Asyncpg,
    Driver::Node,
    Driver::Jdbc,
    Driver::TokioPostgres,
];

/// What one run of a client printed.
#[derive(Debug)]
struct Output {
    text: String,
    /// Exited 0 within [`RUN_TIMEOUT`] (the text says how it ended).
    ok: bool,
}

fn drivers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/drivers")
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

impl Driver {
    fn name(self) -> &'static str {
        match self {
            Driver::Psql => "psql",
            Driver::Pgbench => "pgbench",
            Driver::Psycopg => "psycopg",
            Driver::Asyncpg => "asyncpg",
            Driver::Node => "node-postgres",
            Driver::Jdbc => "pgjdbc",
            Driver::TokioPostgres => "tokio-postgres",
        }
    }

    /// Why the client cannot run here, if it cannot.
    fn missing(self) -> Option<String> {
        let probe = |program: &str, args: &[&str]| -> Option<String> {
            match Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
            {
                Ok(s) if s.success() => None,
                Ok(s) => Some(format!("`{program} {}` exited with {s}", args.join(" "))),
                Err(e) => Some(format!("`{program}` cannot be run: {e}")),
            }
        };
        match self {
            Driver::Psql => probe("psql", &["--version"]),
            Driver::Pgbench => probe("pgbench", &["--version"]),
            Driver::Psycopg => probe("python3", &["-c", "import psycopg"]),
            Driver::Asyncpg => probe("python3", &["-c", "import asyncpg"]),
            Driver::Node => probe("node", &["--version"]).or_else(|| {
                let pg = drivers_dir().join("node/node_modules/pg-cursor");
                (!pg.exists()).then(|| {
                    format!(
                        "{} is missing: run `npm ci` in tests/drivers/node",
                        pg.display()
                    )
                })
            }),
            Driver::Jdbc => probe("java", &["-version"]).or_else(|| {
                (!Path::new(JDBC_JAR).exists()).then(|| {
                    format!("{JDBC_JAR} is missing: apt-get install libpostgresql-jdbc-java")
                })
            }),
            Driver::TokioPostgres => None,
        }
    }

    /// Runs the client's workload against `target` (the recorder or the mock).
    async fn run(self, target: &Target) -> Output {
        if self == Driver::TokioPostgres {
            return tokio_workload(target).await;
        }
        let t = target.clone();
        tokio::task::spawn_blocking(move || self.run_process(&t))
            .await
            .expect("client runner panicked")
    }

    fn run_process(self, t: &Target) -> Output {
        let libpq = format!(
            "host={} port={} user={} dbname={DB} sslmode=disable",
            t.host, t.port, t.user
        );
        let url = format!(
            "postgres://{}:{}@{}:{}/{DB}?sslmode=disable",
            t.user, t.password, t.host, t.port
        );
        let dir = drivers_dir();
        let command = |program: &str, args: &[&str]| {
            let mut c = Command::new(program);
            c.args(args)
                .current_dir(&dir)
                .env("PGPASSWORD", &t.password)
                .env("PYTHONDONTWRITEBYTECODE", "1");
            for var in [
                "PGSERVICE",
                "PGOPTIONS",
                "PGSSLMODE",
                "PGHOST",
                "PGPORT",
                "PGDATABASE",
            ] {
                c.env_remove(var);
            }
            c
        };
        match self {
            Driver::Psql => run_command(
                command(
                    "psql",
                    &["-X", "-e", "-v", "ON_ERROR_STOP=0", "-f", "-", &libpq],
                ),
                Some(&dir.join("psql.sql")),
            ),
            Driver::Pgbench => {
                let runs: [&[&str]; 4] = [
                    &["-S", "-M", "extended"],
                    &["-S", "-M", "prepared"],
                    &["-M", "extended", "-f", "pgbench_custom.sql"],
                    &["-M", "prepared", "-f", "pgbench_custom.sql"],
                ];
                let mut text = String::new();
                let mut ok = true;
                for run in runs {
                    let mut args = vec!["-n", "-t", "20", "-c", "1", "--random-seed=1"];
                    args.extend_from_slice(run);
                    args.push(&libpq);
                    let out = run_command(command("pgbench", &args), None);
                    let _ = writeln!(text, "== pgbench {}", run.join(" "));
                    text.push_str(&pgbench_deterministic(&out.text));
                    ok &= out.ok;
                }
                Output { text, ok }
            }
            Driver::Psycopg => run_command(
                command(
                    "python3",
                    &[
                        "-u",
                        "psycopg_matrix.py",
                        &format!("{libpq} password={}", t.password),
                    ],
                ),
                None,
            ),
            Driver::Asyncpg => {
                run_command(command("python3", &["-u", "asyncpg_matrix.py", &url]), None)
            }
            Driver::Node => run_command(command("node", &["node/matrix.js", &url]), None),
            Driver::Jdbc => {
                let jdbc = format!(
                    "jdbc:postgresql://{}:{}/{DB}?user={}&password={}&sslmode=disable&prepareThreshold=2",
                    t.host, t.port, t.user, t.password
                );
                run_command(
                    command("java", &["-cp", JDBC_JAR, "jdbc/Matrix.java", &jdbc]),
                    None,
                )
            }
            Driver::TokioPostgres => unreachable!("run in process"),
        }
    }
}

/// Runs a client with stdout and stderr into one file (so their order is
/// kept), killing it after [`RUN_TIMEOUT`]. The transcript ends with how the
/// process ended.
fn run_command(mut cmd: Command, stdin: Option<&Path>) -> Output {
    let what = format!("{cmd:?}");
    let fail = |e: std::io::Error| Output {
        text: format!("[could not run {what}: {e}]\n"),
        ok: false,
    };
    let file = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let (out, err) = match (file.try_clone(), file.try_clone()) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    cmd.stdout(out).stderr(err);
    match stdin.map(std::fs::File::open) {
        Some(Ok(f)) => cmd.stdin(f),
        Some(Err(e)) => return fail(e),
        None => cmd.stdin(Stdio::null()),
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let deadline = Instant::now() + RUN_TIMEOUT;
    let ended = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("[killed after {}s]", RUN_TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("[wait failed: {e}]")),
        }
    };
    let mut text = read_back(file);
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let ok = match &ended {
        Ok(status) => {
            let _ = writeln!(text, "[{status}]");
            status.success()
        }
        Err(why) => {
            let _ = writeln!(text, "{why}");
            false
        }
    };
    Output { text, ok }
}

fn read_back(mut file: std::fs::File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    match file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
    {
        Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("[could not read the output back: {e}]\n"),
    }
}

/// pgbench's report less what depends on timing (latency, tps, connection
/// time).
fn pgbench_deterministic(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !(l.starts_with("latency ")
                || l.starts_with("initial connection time")
                || l.starts_with("tps ="))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Drops and recreates [`DB`] live (not recorded); with pgbench among the
/// clients, loads its tables too (`pgbench -i -s 1`, also not recorded).
async fn recreate_db(live: &Target, drivers: &[Driver]) {
    let admin = live
        .connect("postgres")
        .await
        .expect("connect to the live server");
    for sql in [
        format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"),
        format!("CREATE DATABASE {DB}"),
    ] {
        admin
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    if drivers.contains(&Driver::Pgbench) {
        let out = Command::new("pgbench")
            .args(["-i", "-s", "1", "-q"])
            .arg(format!(
                "host={} port={} user={} dbname={DB} sslmode=disable",
                live.host, live.port, live.user
            ))
            .env("PGPASSWORD", &live.password)
            .output()
            .expect("run pgbench -i");
        assert!(
            out.status.success(),
            "pgbench -i failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The clients that can run here; a missing one fails in CI and is skipped
/// loudly elsewhere.
fn available(drivers: &[Driver]) -> Vec<Driver> {
    let mut ok = Vec::new();
    for &d in drivers {
        match d.missing() {
            None => ok.push(d),
            Some(why) if ci() => panic!("CI=true but {} cannot run: {why} (see .ci/run)", d.name()),
            Some(why) => eprintln!(
                "!!! driver matrix: SKIPPING {} — {why} (.ci/run installs it)",
                d.name()
            ),
        }
    }
    ok
}

/// Records `drivers` one after another through one recorder into one fresh
/// directory, replays each against one mock server on that directory, and
/// panics with every difference found.
async fn record_and_replay(drivers: &[Driver]) {
    record_and_replay_with(drivers, Via::Library).await;
}

/// How the matrix records and replays: the in-process API, or the `pgsim
/// record` and `pgsim serve` binaries a user runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Library,
    Cli,
}

/// A running recorder or mock server, either way.
enum Running {
    Recorder(Recorder),
    Server(MockServer),
    Process(crate::cli::Reap, Box<dyn std::io::BufRead + Send>),
}

impl Running {
    /// Stops it and returns what it reported and whether that is clean
    /// (nothing lost or refused, no miss).
    async fn stop(self) -> (String, bool) {
        match self {
            Running::Recorder(r) => {
                let s = r.shutdown().await;
                let clean = s.errors.is_empty() && s.lost.is_empty() && s.exchanges > 0;
                (s.to_string(), clean)
            }
            Running::Server(m) => {
                let mut text = String::new();
                let clean = m.warnings().is_empty() && m.rejected().is_empty();
                for r in m.rejected() {
                    let _ = writeln!(text, "refused: {r}");
                }
                let report = m.shutdown().await;
                let _ = write!(text, "{report}");
                (text, clean && report.misses.is_empty())
            }
            Running::Process(mut child, mut out) => {
                let _ = Command::new("kill")
                    .args(["-INT", &child.0.id().to_string()])
                    .status();
                let status = child.0.wait().expect("pgsim exits");
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut out, &mut text);
                // `pgsim record` lists what it did not write and exits 1 for
                // it; `pgsim serve` prints "N misses" on exit.
                let misses_ok = !text.contains(" misses") || text.contains(" 0 misses");
                let clean = status.success()
                    && misses_ok
                    && !text.contains("not written")
                    && !text.contains("error:");
                (text, clean)
            }
        }
    }
}

fn spawn_pgsim(args: &[&str]) -> (Running, std::net::SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    command.args(args);
    let (child, port, out) = crate::cli::start(command);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    (Running::Process(child, Box::new(out)), addr)
}

async fn record_and_replay_with(drivers: &[Driver], via: Via) {
    let Some(url) = live_url() else { return };
    let drivers = available(drivers);
    if drivers.is_empty() {
        return;
    }
    let _lock = MATRIX_LOCK.lock().await;
    let live = Target::from_url(&url).expect("PGSIM_LIVE_URL must be a valid PostgreSQL URL");
    recreate_db(&live, &drivers).await;
    let names: Vec<_> = drivers.iter().map(|d| d.name()).collect();
    let names = names.join(", ");

    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let (recorder, rec_addr) = match via {
        Via::Library => {
            let r = Recorder::builder()
                .upstream(url.clone())
                .fixtures(dir.path())
                .start()
                .await
                .expect("start the recorder");
            let addr = r.addr();
            (Running::Recorder(r), addr)
        }
        Via::Cli => spawn_pgsim(&[
            "record",
            "--upstream",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--fixtures",
            &dir_arg,
        ]),
    };
    let proxied = live.at(rec_addr);
    let mut lives = Vec::new();
    for &d in &drivers {
        let out = d.run(&proxied).await;
        assert!(
            out.ok,
            "{}: the live run (through the recorder) failed:\n{}",
            d.name(),
            out.text
        );
        lives.push(out);
    }
    let (summary, clean) = recorder.stop().await;
    eprintln!("driver matrix [{names}]: {summary}");

    let mut problems = Vec::new();
    if !clean {
        problems.push(format!(
            "the recorder did not account for every exchange as written:\n{summary}"
        ));
    }
    let (server, addr) = match via {
        Via::Library => match MockServer::builder().fixtures(dir.path()).start().await {
            Ok(s) => {
                let addr = s.addr();
                (Running::Server(s), addr)
            }
            Err(e) => {
                problems.push(format!("the mock server could not load the recording: {e}"));
                panic!(
                    "driver matrix [{names}]: {} problem(s) (fixtures kept in {})\n{}",
                    problems.len(),
                    dir.keep().display(),
                    problems.join("\n")
                );
            }
        },
        Via::Cli => spawn_pgsim(&["serve", "--listen", "127.0.0.1:0", "--fixtures", &dir_arg]),
    };
    let mocked = live.at(addr);
    for (&d, live_out) in drivers.iter().zip(&lives) {
        let replay = d.run(&mocked).await;
        eprintln!(
            "driver matrix: {} replay {}",
            d.name(),
            if replay.text == live_out.text {
                "identical"
            } else {
                "DIFFERS"
            }
        );
        if replay.text != live_out.text {
            problems.push(format!(
                "{}: replay differs from live (--- live, +++ replay):\n{}",
                d.name(),
                line_diff(&live_out.text, &replay.text)
            ));
        }
    }
    let (report, clean) = server.stop().await;
    if !clean {
        problems.push(format!(
            "the mock missed queries or refused files:\n{report}"
        ));
    }
    if !problems.is_empty() {
        panic!(
            "driver matrix [{names}]: {} problem(s) (fixtures kept in {})\n{}",
            problems.len(),
            dir.keep().display(),
            problems.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_live_vs_replay() {
    record_and_replay(&[Driver::Psql]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_live_vs_replay() {
    record_and_replay(&[Driver::Pgbench]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_live_vs_replay() {
    record_and_replay(&[Driver::Psycopg]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncpg_live_vs_replay() {
    record_and_replay(&[Driver::Asyncpg]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_postgres_live_vs_replay() {
    record_and_replay(&[Driver::Node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgjdbc_live_vs_replay() {
    record_and_replay(&[Driver::Jdbc]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_live_vs_replay() {
    record_and_replay(&[Driver::TokioPostgres]).await;
}

/// Every client recorded in one `pgsim record` run into one directory,
/// then each replayed by one `pgsim serve` on it (the binaries a user
/// runs): each prints what it printed live, and the recorder's summary
/// accounts for every exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_clients_in_one_recording() {
    record_and_replay_with(&ALL, Via::Cli).await;
}

/// A line diff (longest common subsequence) with three lines of context,
/// `-` for live only and `+` for replay only.
fn line_diff(live: &str, replay: &str) -> String {
    let a: Vec<&str> = live.lines().collect();
    let b: Vec<&str> = replay.lines().collect();
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: the LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, usize, &str)> = Vec::new(); // (op, live line number, text)
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', i + 1, b[j]));
            j += 1;
        } else {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        }
    }
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = String::new();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k];
        while k < changed.len() && changed[k] <= end + 2 * CONTEXT {
            end = changed[k];
            k += 1;
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let _ = writeln!(out, "@@ live line {} @@", ops[start].1);
        for (op, _, text) in &ops[start..end] {
            let _ = writeln!(out, "{op}{text}");
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The tokio-postgres workload (always binary results), in process.

fn cell(row: &Row, i: usize) -> String {
    let ty = row.columns()[i].type_().clone();
    let shown = match ty {
        Type::INT2 => row.get::<_, Option<i16>>(i).map(|v| v.to_string()),
        Type::INT4 => row.get::<_, Option<i32>>(i).map(|v| v.to_string()),
        Type::INT8 => row.get::<_, Option<i64>>(i).map(|v| v.to_string()),
        Type::FLOAT8 => row.get::<_, Option<f64>>(i).map(|v| format!("{v:?}")),
        Type::BOOL => row.get::<_, Option<bool>>(i).map(|v| v.to_string()),
        Type::TEXT | Type::VARCHAR | Type::NAME => {
            row.get::<_, Option<String>>(i).map(|v| format!("{v:?}"))
        }
        Type::JSON | Type::JSONB => row
            .get::<_, Option<serde_json::Value>>(i)
            .map(|v| v.to_string()),
        Type::TEXT_ARRAY => row
            .get::<_, Option<Vec<Option<String>>>>(i)
            .map(|v| format!("{v:?}")),
        _ => row
            .get::<_, Option<Raw>>(i)
            .map(|v| format!("\\x{}", hex::encode(v.0))),
    };
    format!(
        "{}:{}={}",
        row.columns()[i].name(),
        ty.name(),
        shown.unwrap_or_else(|| "NULL".into())
    )
}

fn rows(rows: &[Row]) -> String {
    let shown: Vec<String> = rows
        .iter()
        .map(|r| {
            let cells: Vec<String> = (0..r.len()).map(|i| cell(r, i)).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    format!("[{}]", shown.join(", "))
}

fn pg_err(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

async fn tokio_workload(target: &Target) -> Output {
    let mut text = String::new();
    let ok = match tokio_steps(target, &mut text).await {
        Ok(()) => {
            text.push_str("done\n");
            true
        }
        Err(e) => {
            let _ = writeln!(text, "fatal: {e}");
            false
        }
    };
    Output { text, ok }
}

async fn tokio_steps(target: &Target, out: &mut String) -> Result<(), String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&target.host)
        .port(target.port)
        .user(&target.user)
        .password(&target.password)
        .dbname(DB);
    let (mut client, conn) = config.connect(NoTls).await.map_err(|e| pg_err(&e))?;
    let conn = tokio::spawn(conn);
    let e = |e: tokio_postgres::Error| pg_err(&e);
    macro_rules! show {
        ($($arg:tt)*) => {{ let _ = writeln!(out, $($arg)*); }};
    }

    client
        .batch_execute(
            "DROP TABLE IF EXISTS tokio_items, tokio_copy;
             CREATE TABLE tokio_items (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2),
                                       seen date, tags text[], data jsonb, ratio float8);",
        )
        .await
        .map_err(e)?;
    let insert = client
        .prepare("INSERT INTO tokio_items VALUES ($1, $2, $3::text::numeric, $4::text::date, $5, $6, $7)")
        .await
        .map_err(e)?;
    show!(
        "insert params: {:?}",
        insert.params().iter().map(|t| t.name()).collect::<Vec<_>>()
    );
    for i in 1..=9i32 {
        let price = (i % 4 != 0).then(|| format!("{}.{:02}", i, i * 7 % 100));
        let seen = (i % 3 != 0).then(|| format!("2024-02-{:02}", 20 + i));
        let tags = vec![Some(format!("t{i}")), None];
        let data = serde_json::json!({ "i": i, "even": i % 2 == 0 });
        let n = client
            .execute(
                &insert,
                &[
                    &i,
                    &format!("item{i}"),
                    &price,
                    &seen,
                    &tags,
                    &data,
                    &(f64::from(i) / 8.0),
                ],
            )
            .await
            .map_err(e)?;
        show!("insert {i}: {n}");
    }

    // binary results with parameters, typed and as raw bytes
    let all = client
        .query(
            "SELECT * FROM tokio_items WHERE id <= $1 ORDER BY id",
            &[&4i32],
        )
        .await
        .map_err(e)?;
    show!("query: {}", rows(&all));
    let one = client
        .query_one(
            "SELECT $1::int8 * 2 AS doubled, $2::text AS t, $3::bool AS b, NULL::int4 AS z, '\\x00ff'::bytea AS raw",
            &[&21i64, &"tokio", &true],
        )
        .await
        .map_err(e)?;
    show!("query_one: {}", rows(&[one]));
    let opt = client
        .query_opt("SELECT id FROM tokio_items WHERE id = $1", &[&99i32])
        .await
        .map_err(e)?;
    show!("query_opt none: {}", opt.is_none());

    // query_raw: a row stream
    let stream = client
        .query_raw(
            "SELECT id, name FROM tokio_items WHERE id > $1 ORDER BY id",
            [&5i32],
        )
        .await
        .map_err(e)?;
    let streamed: Vec<Row> = stream.try_collect().await.map_err(e)?;
    show!("query_raw: {}", rows(&streamed));

    // the simple protocol (text)
    for m in client
        .simple_query("SELECT id, name, price FROM tokio_items WHERE id IN (1, 4) ORDER BY id; SELECT 'x' AS x")
        .await
        .map_err(e)?
    {
        match m {
            SimpleQueryMessage::Row(r) => show!(
                "simple row: {:?}",
                (0..r.len()).map(|i| r.get(i)).collect::<Vec<_>>()
            ),
            SimpleQueryMessage::CommandComplete(n) => show!("simple complete: {n}"),
            _ => show!("simple other"),
        }
    }

    // a prepared statement executed repeatedly
    let by_id = client
        .prepare("SELECT name, ratio FROM tokio_items WHERE id = $1")
        .await
        .map_err(e)?;
    show!(
        "prepared columns: {:?}",
        by_id
            .columns()
            .iter()
            .map(|c| format!("{}:{}", c.name(), c.type_().name()))
            .collect::<Vec<_>>()
    );
    for id in [1i32, 2, 3, 2, 99] {
        let r = client.query(&by_id, &[&id]).await.map_err(e)?;
        show!("prepared {id}: {}", rows(&r));
    }

    // an error, then the session goes on
    match client
        .query("SELECT 1 / (id - id) FROM tokio_items", &[])
        .await
    {
        Ok(r) => show!("no error?: {}", rows(&r)),
        Err(err) => show!("error: {}", pg_err(&err)),
    }

    // portals with a row limit (Execute with max rows, PortalSuspended)
    {
        let tx = client.transaction().await.map_err(e)?;
        let portal = tx
            .bind(
                "SELECT id, name FROM tokio_items WHERE id > $1 ORDER BY id",
                &[&3i32],
            )
            .await
            .map_err(e)?;
        loop {
            let batch = tx.query_portal(&portal, 2).await.map_err(e)?; // 6 rows: an exact multiple
            show!("portal(2): {}", rows(&batch));
            if batch.is_empty() {
                break;
            }
        }
        let stmt = tx
            .prepare("SELECT g FROM generate_series(1, $1::int4) AS g ORDER BY g")
            .await
            .map_err(e)?;
        let portal = tx.bind(&stmt, &[&5i32]).await.map_err(e)?;
        loop {
            let batch = tx.query_portal(&portal, 2).await.map_err(e)?;
            show!("portal(2) of 5: {}", rows(&batch));
            if batch.len() < 2 {
                break;
            }
        }
        let portal = tx.bind(&stmt, &[&3i32]).await.map_err(e)?;
        let all = tx.query_portal(&portal, 0).await.map_err(e)?;
        show!("portal(0): {}", rows(&all));
        tx.execute("UPDATE tokio_items SET name = 'changed' WHERE id = 1", &[])
            .await
            .map_err(e)?;
        tx.rollback().await.map_err(e)?;
    }
    let name = client
        .query_one("SELECT name FROM tokio_items WHERE id = 1", &[])
        .await
        .map_err(e)?;
    show!("after rollback: {}", rows(&[name]));

    // a cancel from another task while a query runs (joined before going
    // on, so it can never hit a later query)
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await.map_err(|e| pg_err(&e))
    });
    match client.query("SELECT pg_sleep(5)", &[]).await {
        Ok(_) => show!("cancel: not cancelled?"),
        Err(err) => show!("cancel: {}", pg_err(&err)),
    }
    let sent = canceller.await.map_err(|e| e.to_string())?;
    show!(
        "cancel request: {}",
        if sent.is_ok() { "sent" } else { "failed" }
    );
    let still = client
        .query_one("SELECT 'still here' AS s", &[])
        .await
        .map_err(e)?;
    show!("after cancel: {}", rows(&[still]));

    // COPY in and out
    client
        .batch_execute("CREATE TABLE tokio_copy (id int, label text)")
        .await
        .map_err(e)?;
    {
        let sink = client
            .copy_in::<_, bytes::Bytes>("COPY tokio_copy FROM STDIN")
            .await
            .map_err(e)?;
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"1\tone\n2\t\\N\n"))
            .await
            .map_err(e)?;
        sink.send(bytes::Bytes::from_static(b"3\tthree\n"))
            .await
            .map_err(e)?;
        let n = sink.finish().await.map_err(e)?;
        show!("copy_in: {n}");
    }
    {
        let stream = client
            .copy_out("COPY (SELECT * FROM tokio_copy ORDER BY id) TO STDOUT WITH (FORMAT csv)")
            .await
            .map_err(e)?;
        let chunks: Vec<bytes::Bytes> = stream.try_collect().await.map_err(e)?;
        show!("copy_out: {:?}", String::from_utf8_lossy(&chunks.concat()));
    }
    client
        .batch_execute("DROP TABLE tokio_copy")
        .await
        .map_err(e)?;

    drop(client);
    let _ = conn.await;
    Ok(())
}
