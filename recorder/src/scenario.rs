//! The demo scenario: the world it builds on a real server and the client
//! workloads that run through the recorder (to make `fixtures/demo`) and,
//! unchanged, against the mock server (to prove replay gives what live gave).
//!
//! Used by the `pgsim-recorder` binary and pgsim's integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgsim::tokio_postgres::types::{FromSql, Type};
use pgsim::tokio_postgres::{self, Client, Config, NoTls, SimpleQueryMessage};

/// The database the demo scenario records.
pub const DEMO_DB: &str = "pgsim_demo";

/// pgbench runs recorded by the scenario: (mode, clients, transactions per client).
pub const PGBENCH_RUNS: [(&str, u32, u32); 3] = [
    ("simple", 1, 200),
    ("extended", 2, 100),
    ("prepared", 2, 100),
];

/// The seed every recorded pgbench run uses.
pub const PGBENCH_SEED: u32 = 7;

/// Directory of the scenario's SQL files.
pub fn scenario_dir() -> PathBuf {
    repo_root().join("recorder/scenarios/demo")
}

/// The repository's root: the recorder's manifest is `recorder/`.
pub fn repo_root() -> PathBuf {
    let recorder = Path::new(env!("CARGO_MANIFEST_DIR"));
    recorder.parent().unwrap_or(recorder).to_owned()
}

/// Where a server (real, proxy or mock) can be reached, with the live
/// credentials.
#[derive(Clone)]
pub struct Target {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Role.
    pub user: String,
    /// Password (never printed).
    pub password: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({}@{}:{})", self.user, self.host, self.port)
    }
}

impl Target {
    /// Reads host, port, user and password from a live URL.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let config: Config = url.parse().map_err(|e| format!("invalid live URL: {e}"))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        Ok(Target {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().unwrap_or("postgres").to_owned(),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
        })
    }

    /// The same credentials at another address (the proxy or the mock).
    pub fn at(&self, addr: std::net::SocketAddr) -> Self {
        Target {
            host: addr.ip().to_string(),
            port: addr.port(),
            ..self.clone()
        }
    }

    fn libpq(&self, db: &str) -> String {
        format!(
            "host={} port={} user={} dbname={db} sslmode=disable",
            self.host, self.port, self.user
        )
    }

    /// Connects with tokio-postgres.
    pub async fn connect(&self, db: &str) -> Result<Client, String> {
        let mut config = Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(db)
            .password(&self.password);
        let (client, conn) = config
            .connect(NoTls)
            .await
            .map_err(|e| format!("connect to {db}: {}", pg_error(&e)))?;
        tokio::spawn(conn);
        Ok(client)
    }
}

/// Drops and recreates the demo database on the live server and loads it
/// (schema, rows, pgbench tables). Not recorded.
pub async fn setup(live: &Target) -> Result<(), String> {
    let admin = live.connect("postgres").await?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {DEMO_DB} WITH (FORCE)"),
        format!("CREATE DATABASE {DEMO_DB}"),
    ] {
        admin
            .batch_execute(&sql)
            .await
            .map_err(|e| format!("{sql}: {}", pg_error(&e)))?;
    }
    let sql = std::fs::read_to_string(scenario_dir().join("setup.sql"))
        .map_err(|e| format!("setup.sql: {e}"))?;
    let db = live.connect(DEMO_DB).await?;
    db.batch_execute(&sql)
        .await
        .map_err(|e| format!("setup.sql: {}", pg_error(&e)))?;
    let out = Command::new("pgbench")
        .args(["-i", "-s", "1", "-q", &live.libpq(DEMO_DB)])
        .env("PGPASSWORD", &live.password)
        .output()
        .map_err(|e| format!("pgbench -i: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A client error with the server's message when there is one.
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Any value, as the raw bytes the server sent (binary format).
pub struct Raw(pub Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn render_rows(rows: &[tokio_postgres::Row]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(first) = rows.first() {
        let cols: Vec<String> = first
            .columns()
            .iter()
            .map(|c| format!("{}:{}", c.name(), c.type_().name()))
            .collect();
        out.push(format!("  columns {}", cols.join(", ")));
    }
    for row in rows {
        let values: Vec<String> = (0..row.len())
            .map(|i| match row.try_get::<_, Option<Raw>>(i) {
                Ok(Some(Raw(b))) => hex::encode(b),
                Ok(None) => "NULL".into(),
                Err(e) => format!("<{e}>"),
            })
            .collect();
        out.push(format!("  row {}", values.join(" | ")));
    }
    out
}

fn render_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "  ERROR {} {}: {}{}",
            db.severity(),
            db.code().code(),
            db.message(),
            db.position()
                .map(|p| format!(" (position {p:?})"))
                .unwrap_or_default()
        ),
        None => format!("  client error: {e}"),
    }
}

fn outcome(
    log: &mut Vec<String>,
    label: &str,
    r: Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>,
) {
    log.push(label.to_owned());
    match r {
        Ok(rows) => log.extend(render_rows(&rows)),
        Err(e) => log.push(render_error(&e)),
    }
}

fn affected(log: &mut Vec<String>, label: &str, r: Result<u64, tokio_postgres::Error>) {
    log.push(label.to_owned());
    match r {
        Ok(n) => log.push(format!("  {n} rows affected")),
        Err(e) => log.push(render_error(&e)),
    }
}

/// Read-only queries over the extended protocol with binary results,
/// parameters of several types and a prepared statement. Safe to run on
/// many connections at once.
pub async fn tokio_reads(client: &Client) -> Vec<String> {
    let mut log = Vec::new();
    outcome(
        &mut log,
        "all items",
        client.query("select * from items order by id", &[]).await,
    );
    outcome(
        &mut log,
        "filter by int4 and bool",
        client
            .query(
                "select id, name from items where id = $1 and active = $2",
                &[&1i32, &true],
            )
            .await,
    );
    outcome(
        &mut log,
        "parameters of several types",
        client
            .query(
                "select $1::int8 + 1 as n, $2::text || '!' as t, $3::float8 * 2 as f, $4::bytea as b, $5::int4[] as a, $6::bool as yes, $7::int2 as s",
                &[&41i64, &"hi", &1.25f64, &vec![1u8, 2, 3], &vec![1i32, 2], &false, &-3i16],
            )
            .await,
    );
    outcome(
        &mut log,
        "text array parameter",
        client
            .query(
                "select name from items where name = any($1) order by name",
                &[&vec!["apple", "pear"]],
            )
            .await,
    );
    outcome(
        &mut log,
        "null parameter",
        client
            .query("select $1::text is null as isnull", &[&None::<String>])
            .await,
    );
    match client
        .prepare("select name, price, scores from items where id = $1")
        .await
    {
        Ok(st) => {
            for id in [1i32, 2, 3, 99] {
                outcome(
                    &mut log,
                    &format!("prepared id {id}"),
                    client.query(&st, &[&id]).await,
                );
            }
        }
        Err(e) => log.push(render_error(&e)),
    }
    outcome(&mut log, "syntax error", client.query("selec 1", &[]).await);
    outcome(
        &mut log,
        "unknown table",
        client.query("select * from no_such_table", &[]).await,
    );
    outcome(
        &mut log,
        "division by zero",
        client.query("select 1 / $1::int4", &[&0i32]).await,
    );
    outcome(
        &mut log,
        "invalid input",
        client.query("select $1::text::int4", &[&"abc"]).await,
    );
    outcome(&mut log, "join", client.query("select i.name, e.note from items i join events e on e.item_id = i.id where e.id <= 3 order by e.id", &[]).await);
    log
}

/// Writes, transactions, savepoints and errors inside transactions.
pub async fn tokio_writes(client: &mut Client) -> Vec<String> {
    let mut log = Vec::new();
    let count = "select count(*) from events";
    outcome(&mut log, "count before", client.query(count, &[]).await);
    affected(
        &mut log,
        "insert",
        client
            .execute(
                "insert into events (item_id, note) values ($1, $2)",
                &[&2i32, &"tokio"],
            )
            .await,
    );
    outcome(&mut log, "count after", client.query(count, &[]).await);

    log.push("transaction with an error, then rollback".into());
    match client.transaction().await {
        Ok(tx) => {
            affected(
                &mut log,
                "insert in tx",
                tx.execute(
                    "insert into events (item_id, note) values ($1, $2)",
                    &[&3i32, &"in tx"],
                )
                .await,
            );
            affected(
                &mut log,
                "duplicate key",
                tx.execute(
                    "insert into items (id, name) values ($1, $2)",
                    &[&1i32, &"dup"],
                )
                .await,
            );
            outcome(&mut log, "after the error", tx.query("select 1", &[]).await);
            log.push(format!(
                "  rollback: {:?}",
                tx.rollback().await.map_err(|e| e.to_string())
            ));
        }
        Err(e) => log.push(render_error(&e)),
    }
    outcome(
        &mut log,
        "count after rollback",
        client.query(count, &[]).await,
    );

    log.push("portal read two rows at a time".into());
    match client.transaction().await {
        Ok(tx) => {
            match tx.bind("select id, name from items order by id", &[]).await {
                Ok(portal) => {
                    for step in 1..=3 {
                        outcome(
                            &mut log,
                            &format!("portal step {step}"),
                            tx.query_portal(&portal, 2).await,
                        );
                    }
                }
                Err(e) => log.push(render_error(&e)),
            }
            log.push(format!(
                "  commit: {:?}",
                tx.commit().await.map_err(|e| e.to_string())
            ));
        }
        Err(e) => log.push(render_error(&e)),
    }

    log.push("savepoint rolled back, transaction committed".into());
    match client.transaction().await {
        Ok(mut tx) => {
            affected(
                &mut log,
                "insert before savepoint",
                tx.execute(
                    "insert into events (item_id, note) values ($1, $2)",
                    &[&1i32, &"kept"],
                )
                .await,
            );
            match tx.savepoint("sp1").await {
                Ok(sp) => {
                    affected(
                        &mut log,
                        "duplicate in savepoint",
                        sp.execute(
                            "insert into items (id, name) values ($1, $2)",
                            &[&2i32, &"dup"],
                        )
                        .await,
                    );
                    log.push(format!(
                        "  rollback to savepoint: {:?}",
                        sp.rollback().await.map_err(|e| e.to_string())
                    ));
                }
                Err(e) => log.push(render_error(&e)),
            }
            outcome(
                &mut log,
                "still in transaction",
                tx.query("select note from events where note = $1", &[&"kept"])
                    .await,
            );
            log.push(format!(
                "  commit: {:?}",
                tx.commit().await.map_err(|e| e.to_string())
            ));
        }
        Err(e) => log.push(render_error(&e)),
    }
    outcome(&mut log, "count at the end", client.query(count, &[]).await);
    log.push("simple protocol".into());
    match client
        .simple_query("select name, qty, labels from items order by id; select 'two statements'")
        .await
    {
        Ok(messages) => {
            for m in messages {
                match m {
                    SimpleQueryMessage::Row(r) => log.push(format!(
                        "  row {:?}",
                        (0..r.len()).map(|i| r.get(i)).collect::<Vec<_>>()
                    )),
                    SimpleQueryMessage::CommandComplete(n) => log.push(format!("  complete {n}")),
                    _ => {}
                }
            }
        }
        Err(e) => log.push(render_error(&e)),
    }
    log.push(format!(
        "  batch: {:?}",
        client.batch_execute("create temp table scratch (x int); insert into scratch values (1); drop table scratch").await.map_err(|e| e.to_string())
    ));
    log
}

/// The whole tokio-postgres workload on one connection.
pub async fn tokio_workload(target: &Target) -> Result<Vec<String>, String> {
    let mut client = target.connect(DEMO_DB).await?;
    let mut log = tokio_reads(&client).await;
    log.extend(tokio_writes(&mut client).await);
    Ok(log)
}

/// Runs the psql script (simple protocol, meta-commands) and returns what
/// psql printed, stdout and stderr interleaved.
pub fn psql_workload(target: &Target) -> Result<String, String> {
    let script = scenario_dir().join("psql.sql");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            // From stdin, so messages read `psql:<stdin>:N` wherever the checkout is.
            "psql -X -a -f - '{}' < '{}' 2>&1",
            target.libpq(DEMO_DB),
            script.display()
        ))
        .env("PGPASSWORD", &target.password)
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What a pgbench run reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgbenchOutcome {
    /// Transactions processed.
    pub processed: String,
    /// Failed transactions line.
    pub failed: String,
}

/// Runs `pgbench -S` with the recorded seed.
pub fn pgbench_workload(
    target: &Target,
    mode: &str,
    clients: u32,
    transactions: u32,
) -> Result<PgbenchOutcome, String> {
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-S",
            "-M",
            mode,
            "-c",
            &clients.to_string(),
            "-t",
            &transactions.to_string(),
            &format!("--random-seed={PGBENCH_SEED}"),
            &target.libpq(DEMO_DB),
        ])
        .env("PGPASSWORD", &target.password)
        .output()
        .map_err(|e| format!("pgbench: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_default()
            .to_owned()
    };
    if !out.status.success() {
        return Err(format!("pgbench -M {mode} failed:\n{text}"));
    }
    Ok(PgbenchOutcome {
        processed: line("number of transactions actually processed"),
        failed: line("number of failed transactions"),
    })
}

/// Everything the scenario observed, for comparison between live and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// tokio-postgres workload.
    pub tokio: Vec<String>,
    /// psql output.
    pub psql: String,
    /// pgbench outcomes, one per run in [`PGBENCH_RUNS`].
    pub pgbench: Vec<PgbenchOutcome>,
}

/// Runs every workload of the scenario against `target`.
pub async fn run_all(target: &Target) -> Result<Transcript, String> {
    let tokio = tokio_workload(target).await?;
    let t = target.clone();
    let psql = tokio::task::spawn_blocking(move || psql_workload(&t))
        .await
        .map_err(|e| e.to_string())??;
    let mut pgbench = Vec::new();
    for (mode, clients, tx) in PGBENCH_RUNS {
        let t = target.clone();
        pgbench.push(
            tokio::task::spawn_blocking(move || pgbench_workload(&t, mode, clients, tx))
                .await
                .map_err(|e| e.to_string())??,
        );
    }
    Ok(Transcript {
        tokio,
        psql,
        pgbench,
    })
}

/// Writes a transcript next to the fixtures it was recorded with.
pub fn save_transcript(dir: &Path, t: &Transcript) -> Result<(), String> {
    let exp = dir.join("expected");
    std::fs::create_dir_all(&exp).map_err(|e| e.to_string())?;
    let write = |name: &str, text: String| {
        std::fs::write(exp.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write("tokio.txt", t.tokio.join("\n") + "\n")?;
    write("psql.txt", t.psql.clone())?;
    write(
        "pgbench.txt",
        t.pgbench
            .iter()
            .map(|o| format!("{}\n{}\n", o.processed, o.failed))
            .collect(),
    )
}

/// Reads a transcript saved by [`save_transcript`].
pub fn load_transcript(dir: &Path) -> Result<Transcript, String> {
    let exp = dir.join("expected");
    let read = |name: &str| {
        std::fs::read_to_string(exp.join(name))
            .map_err(|e| format!("{}: {e}", exp.join(name).display()))
    };
    let tokio = read("tokio.txt")?.lines().map(str::to_owned).collect();
    let psql = read("psql.txt")?;
    let lines: Vec<String> = read("pgbench.txt")?.lines().map(str::to_owned).collect();
    let pgbench = lines
        .chunks(2)
        .map(|c| PgbenchOutcome {
            processed: c[0].clone(),
            failed: c.get(1).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(Transcript {
        tokio,
        psql,
        pgbench,
    })
}

/// A recording proxy in front of the live server, writing into `dir`.
pub async fn start_recorder(live: &Target, dir: &Path) -> Result<pgsim::Recorder, String> {
    pgsim::Recorder::builder()
        .upstream(format!("{}:{}", live.host, live.port))
        .fixtures(dir)
        .start()
        .await
        .map_err(|e| e.to_string())
}

/// Records the scenario into `dir` through an in-process recorder: the
/// directory is emptied first. Returns what the live server answered.
pub async fn record(live: &Target, dir: &Path) -> Result<Transcript, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    setup(live).await?;
    let recorder = start_recorder(live, dir).await?;
    let transcript = run_all(&live.at(recorder.addr())).await;
    let summary = recorder.shutdown().await;
    if !summary.errors.is_empty() {
        return Err(summary.to_string());
    }
    transcript
}
