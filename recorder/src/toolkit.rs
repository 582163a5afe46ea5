//! The toolkit scenario: one case per capability of [`pgsim::Client`], each
//! run through the same code in Record mode (to make `fixtures/toolkit/<case>`)
//! and in Replay mode (the tests). A case asserts what must hold in every
//! mode and returns a transcript of what it saw; replay must see exactly
//! what the live server gave.
//!
//! Used by the `pgsim-recorder` binary and pgsim's integration tests.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use futures_util::{FutureExt, StreamExt};
use pgsim::client::{
    AcquireEvent, Closed, Hook, HookResult, IsolationLevel, Keyset, PageToken, QueryDone,
    QueryEvent, ReleaseEvent, TransactionOptions,
};
use pgsim::tokio_postgres::NoTls;
use pgsim::validate::StatementKind;
use pgsim::{Client, ClientBuilder, Error, Mode};

mod backup;
mod migrations;
pub use migrations::migrations_dir;

/// The database every toolkit case runs in.
pub const TOOLKIT_DB: &str = "pgsim_toolkit";

/// What a case saw, one line per observation.
pub type Lines = Vec<String>;

type CaseFuture<'a> = Pin<Box<dyn Future<Output = Lines> + 'a>>;

/// One capability, its pool settings and its body.
pub struct Case {
    /// Also the fixture directory's name.
    pub name: &'static str,
    /// Pool settings the case needs.
    pub configure: fn(ClientBuilder) -> ClientBuilder,
    /// The body: asserts, and returns its transcript.
    pub run: for<'a> fn(&'a Client) -> CaseFuture<'a>,
}

/// Every case, in recording order.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "queries",
            configure: |b| b.max_connections(2),
            run: |c| Box::pin(queries(c)),
        },
        Case {
            name: "readme",
            configure: |b| {
                b.max_connections(4)
                    .acquire_timeout(Duration::from_millis(200))
            },
            run: |c| Box::pin(readme(c)),
        },
        Case {
            name: "values",
            configure: |b| b.max_connections(1),
            run: |c| Box::pin(values(c)),
        },
        Case {
            name: "pool_exhaustion",
            configure: |b| b.max_connections(2).acquire_timeout(ACQUIRE_TIMEOUT),
            run: |c| Box::pin(pool_exhaustion(c)),
        },
        Case {
            name: "pool_lifecycle",
            configure: |b| {
                b.max_connections(4)
                    .min_idle(2)
                    .idle_timeout(SHORT)
                    .max_lifetime(None)
                    .maintenance_interval(Duration::from_secs(3600))
            },
            run: |c| Box::pin(pool_lifecycle(c)),
        },
        Case {
            name: "pool_max_lifetime",
            configure: |b| b.max_connections(1).max_lifetime(SHORT).idle_timeout(None),
            run: |c| Box::pin(pool_max_lifetime(c)),
        },
        Case {
            name: "statement_timeout",
            configure: |b| b.max_connections(1).statement_timeout(SHORT),
            run: |c| Box::pin(statement_timeout(c)),
        },
        Case {
            name: "transactions",
            configure: |b| b.max_connections(2),
            run: |c| Box::pin(transactions(c)),
        },
        Case {
            name: "transaction_retry",
            configure: |b| b.max_connections(2),
            run: |c| Box::pin(transaction_retry(c)),
        },
        Case {
            name: "pagination",
            configure: |b| b.max_connections(1),
            run: |c| Box::pin(pagination(c)),
        },
        Case {
            name: "batches",
            configure: |b| b.max_connections(1),
            run: |c| Box::pin(batches(c)),
        },
        Case {
            name: "observability",
            configure: |b| {
                b.max_connections(1)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .hook(Transcript)
                    .hook(Faulty)
            },
            run: |c| Box::pin(observability(c)),
        },
        Case {
            name: "tenancy",
            configure: |b| b.max_connections(1).max_tenant_pools(1),
            run: |c| Box::pin(tenancy(c)),
        },
        Case {
            name: "credentials",
            configure: |b| {
                b.max_connections(2)
                    .password_provider(|| async { live_password() })
            },
            run: |c| Box::pin(credentials(c)),
        },
        Case {
            name: "migrations",
            configure: |b| b.max_connections(2),
            run: |c| Box::pin(migrations::migrations(c)),
        },
        Case {
            name: "backup_restore",
            configure: |b| b.max_connections(2),
            run: |c| Box::pin(backup::backup_restore(c)),
        },
    ]
}

/// The case called `name`; the error lists the cases there are.
pub fn case(name: &str) -> Result<Case, String> {
    let all = cases();
    let names: Vec<&str> = all.iter().map(|c| c.name).collect();
    let names = names.join(", ");
    all.into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("no toolkit case {name:?}; the cases are {names}"))
}

const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(150);
/// Idle timeout, max lifetime and statement timeout of the cases that
/// test them; they wait `SHORT * 3 / 2` to pass one.
const SHORT: Duration = Duration::from_millis(300);

/// Where the bundled toolkit fixtures live.
pub fn fixtures_dir() -> PathBuf {
    crate::scenario::repo_root().join("fixtures/toolkit")
}

/// Creates the toolkit database on the live server when it is missing.
pub async fn setup(live_url: &str) -> Result<(), String> {
    let (client, conn) = pgsim::tokio_postgres::connect(live_url, NoTls)
        .await
        .map_err(|e| format!("connecting to the live server: {e}"))?;
    tokio::spawn(conn);
    let exists = client
        .query_opt(
            "select 1 from pg_database where datname = $1",
            &[&TOOLKIT_DB],
        )
        .await
        .map_err(|e| e.to_string())?;
    if exists.is_none() {
        client
            .batch_execute(&format!("create database {TOOLKIT_DB}"))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs `case` against `url` in `mode` and closes the client; returns the
/// transcript and what closing found.
pub async fn run_case(case: &Case, url: &str, mode: Mode) -> Result<(Lines, Closed), String> {
    // One scope per case: its pool's sessions are one client, replayed in
    // recorded order, whichever connection asks.
    let builder = Client::builder()
        .url(url)
        .database(TOOLKIT_DB)
        .mode(mode)
        .scope(case.name);
    let client = (case.configure)(builder)
        .build()
        .await
        .map_err(|e| format!("{}: building the client: {e}", case.name))?;
    let lines = (case.run)(&client).await;
    let closed = client
        .close()
        .await
        .map_err(|e| format!("{}: closing: {e}", case.name))?;
    Ok((lines, closed))
}

/// Records every case into `dir/<case>` (each emptied first) with its
/// transcript in `dir/<case>/expected.txt`.
pub async fn record_all(live_url: &str, dir: &Path) -> Result<usize, String> {
    setup(live_url).await?;
    let all = cases();
    for case in &all {
        record_into(case, live_url, dir).await?;
    }
    Ok(all.len())
}

/// Records the case called `name` into `dir/<name>` (emptied first) and
/// touches nothing else under `dir`; returns the case's directory.
pub async fn record_case(live_url: &str, dir: &Path, name: &str) -> Result<PathBuf, String> {
    let case = case(name)?;
    setup(live_url).await?;
    record_into(&case, live_url, dir).await
}

async fn record_into(case: &Case, live_url: &str, dir: &Path) -> Result<PathBuf, String> {
    let out = dir.join(case.name);
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let (lines, _) = run_case(
        case,
        live_url,
        Mode::Record {
            fixtures: out.clone(),
        },
    )
    .await?;
    save_lines(&out, &lines)?;
    Ok(out)
}

/// Writes a transcript next to its fixtures.
pub fn save_lines(dir: &Path, lines: &[String]) -> Result<(), String> {
    let path = dir.join("expected.txt");
    std::fs::write(&path, lines.join("\n") + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a transcript written by [`save_lines`].
pub fn load_lines(dir: &Path) -> Result<Lines, String> {
    let path = dir.join("expected.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// `Ok` as its value, errors by kind and SQLSTATE: what must be the same
/// live and replayed.
fn outcome<T: std::fmt::Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("error {}", kind(e)),
    }
}

fn kind(e: &Error) -> String {
    match e {
        Error::Query { .. } | Error::Postgres(_) => {
            format!("sqlstate {}", e.code().unwrap_or("none"))
        }
        Error::Params { source, .. } => format!("params: {source}"),
        Error::NoRows { .. } => "no rows".into(),
        Error::TooManyRows { expected, .. } => format!("too many rows (expected {expected})"),
        Error::AcquireTimeout { waited } => format!("acquire timeout after {waited:?}"),
        Error::TransactionAborted => "transaction aborted".into(),
        Error::RetriesExhausted { attempts, last } => {
            format!("gave up after {attempts} attempts: {}", kind(last))
        }
        other => format!("other: {other}"),
    }
}

async fn reset(c: &Client, ddl: &str) {
    c.batch_execute(ddl).await.expect("reset the case's tables");
}

async fn count(c: &Client, table: &str) -> i64 {
    c.query_one(&format!("select count(*) from {table}"), &[])
        .await
        .expect("count rows")
        .get(0)
}

async fn queries(c: &Client) -> Lines {
    let mut out = Lines::new();
    reset(
        c,
        "drop table if exists q_users; \
         create table q_users (id int primary key, name text not null, active bool not null)",
    )
    .await;
    for (id, name, active) in [(1, "ada", true), (2, "brian", false), (3, "cleo", true)] {
        let n = c
            .execute(
                "insert into q_users (id, name, active) values ($1, $2, $3)",
                &[&id, &name, &active],
            )
            .await;
        out.push(format!("insert {id}: {}", outcome(&n)));
    }
    let rows = c
        .query(
            "select id, name from q_users where active = $1 order by id",
            &[&true],
        )
        .await
        .expect("active users");
    let names: Vec<String> = rows.iter().map(|r| r.get::<_, String>("name")).collect();
    assert_eq!(names, ["ada", "cleo"]);
    out.push(format!("active: {names:?}"));

    let one = c
        .query_one("select name from q_users where id = $1", &[&2i32])
        .await;
    out.push(format!(
        "query_one id 2: {}",
        outcome(&one.map(|r| r.get::<_, String>(0)))
    ));
    let none = c
        .query_one("select name from q_users where id = $1", &[&9i32])
        .await;
    assert!(matches!(none, Err(Error::NoRows { .. })), "{none:?}");
    out.push(format!("query_one id 9: {}", outcome(&none.map(|_| ()))));
    let many = c.query_one("select name from q_users", &[]).await;
    assert!(matches!(many, Err(Error::TooManyRows { .. })), "{many:?}");
    out.push(format!("query_one all: {}", outcome(&many.map(|_| ()))));
    let opt = c
        .query_opt("select name from q_users where id = $1", &[&9i32])
        .await;
    out.push(format!(
        "query_opt id 9: {}",
        outcome(&opt.map(|r| r.is_some()))
    ));

    // Checked before any connection is taken: nothing reaches the server.
    let wrong = c
        .query(
            "select name from q_users where id = $1 and active = $2",
            &[&1i32],
        )
        .await;
    assert!(matches!(wrong, Err(Error::Params { .. })), "{wrong:?}");
    out.push(format!(
        "two placeholders, one value: {}",
        outcome(&wrong.map(|_| ()))
    ));

    let dup = c
        .execute(
            "insert into q_users (id, name, active) values ($1, $2, $3)",
            &[&1i32, &"again", &true],
        )
        .await;
    let e = dup.as_ref().expect_err("duplicate key");
    assert_eq!(e.code(), Some("23505"));
    assert!(!e.is_transient() && !e.is_timeout());
    out.push(format!("duplicate id: {}", outcome(&dup)));
    let missing = c.query("select * from q_nowhere", &[]).await;
    assert_eq!(missing.as_ref().err().and_then(Error::code), Some("42P01"));
    out.push(format!("missing table: {}", outcome(&missing.map(|_| ()))));

    let mut stream = c
        .query_stream("select g from generate_series(1, $1) g", &[&5000i32])
        .await
        .expect("stream");
    let (mut rows, mut sum) = (0u64, 0i64);
    while let Some(row) = stream.next().await {
        let g: i32 = row.expect("streamed row").get(0);
        rows += 1;
        sum += i64::from(g);
    }
    assert_eq!((rows, sum), (5000, 5000 * 5001 / 2));
    out.push(format!(
        "streamed {rows} rows, sum {sum}, rows_affected {:?}",
        stream.rows_affected()
    ));
    drop(stream);

    let batch = c
        .batch_execute("update q_users set active = true; delete from q_users where id = 2")
        .await;
    out.push(format!(
        "batch: {} then {} users",
        outcome(&batch),
        count(c, "q_users").await
    ));

    // The same query twice on one connection is prepared once.
    let conn = c.acquire().await.expect("a connection");
    let cached = "select upper(name) from q_users where id = $1";
    for id in [1i32, 3] {
        conn.query_one(cached, &[&id])
            .await
            .expect("cached statement");
    }
    let prepared: i64 = conn
        .query_one(
            "select count(*) from pg_prepared_statements where statement = $1",
            &[&cached],
        )
        .await
        .expect("prepared statements")
        .get(0);
    assert_eq!(
        prepared, 1,
        "the statement cache prepares a query once per connection"
    );
    out.push(format!("prepared once per connection: {prepared}"));
    out
}

/// The README's example, statement for statement: its doctest replays
/// what this case records.
async fn readme(c: &Client) -> Lines {
    let names = async {
        c.batch_execute(
            "drop table if exists users; create table users (id int primary key, name text, active bool)",
        )
        .await?;
        c.transaction(async |tx| {
            for (id, name, active) in [(1, "ada", true), (2, "brian", false)] {
                tx.execute("insert into users values ($1, $2, $3)", &[&id, &name, &active])
                    .await?;
            }
            Ok(())
        })
        .await?;
        let rows = c
            .query("select name from users where active = $1 order by id", &[&true])
            .await?;
        Ok::<Vec<String>, Error>(rows.iter().map(|r| r.get(0)).collect())
    }
    .await;
    assert_eq!(
        names.as_ref().ok().map(Vec::as_slice),
        Some(&["ada".to_owned()][..])
    );
    vec![format!("active names: {}", outcome(&names))]
}

async fn values(c: &Client) -> Lines {
    let mut out = Lines::new();
    let when = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
    let json = serde_json::json!({"a": [1, 2.5, null], "b": "é"});
    let row = c
        .query_one(
            "select $1::int2, $2::int4, $3::int8, $4::float4, $5::float8, $6::bool, $7::text, \
             $8::bytea, $9::jsonb, $10::timestamptz, $11::int4[], $12::text",
            &[
                &-7i16,
                &2_000_000_000i32,
                &-9_007_199_254_740_993i64,
                &1.5f32,
                &f64::MIN_POSITIVE,
                &true,
                &"snow ☃",
                &vec![0u8, 255, 10],
                &json,
                &when,
                &vec![Some(1i32), None, Some(-3)],
                &None::<String>,
            ],
        )
        .await
        .expect("typed values");
    let got = (
        row.get::<_, i16>(0),
        row.get::<_, i32>(1),
        row.get::<_, i64>(2),
        row.get::<_, f32>(3),
        row.get::<_, f64>(4),
        row.get::<_, bool>(5),
        row.get::<_, String>(6),
        row.get::<_, Vec<u8>>(7),
    );
    assert_eq!(
        got,
        (
            -7,
            2_000_000_000,
            -9_007_199_254_740_993,
            1.5,
            f64::MIN_POSITIVE,
            true,
            "snow ☃".to_owned(),
            vec![0, 255, 10]
        )
    );
    out.push(format!("scalars: {got:?}"));
    assert_eq!(row.get::<_, serde_json::Value>(8), json);
    assert_eq!(row.get::<_, SystemTime>(9), when);
    assert_eq!(
        row.get::<_, Vec<Option<i32>>>(10),
        [Some(1), None, Some(-3)]
    );
    assert_eq!(row.get::<_, Option<String>>(11), None);
    out.push(format!(
        "json {}, timestamptz {:?}, array {:?}, null {:?}",
        row.get::<_, serde_json::Value>(8),
        row.get::<_, SystemTime>(9)
            .duration_since(SystemTime::UNIX_EPOCH),
        row.get::<_, Vec<Option<i32>>>(10),
        row.get::<_, Option<String>>(11)
    ));
    // The server's text rendering of the same values, as psql would show.
    let text = c
        .query_one(
            "select ($1::timestamptz at time zone 'UTC')::text, $2::text::numeric(20,3)::text, $3::float8::text",
            &[&when, &"12345.6789", &0.1f64],
        )
        .await;
    out.push(format!(
        "text forms: {}",
        outcome(&text.map(|r| (
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2)
        )))
    ));
    out
}

async fn pool_exhaustion(c: &Client) -> Lines {
    let mut out = Lines::new();
    let stats = |c: &Client| {
        let s = c.pool_stats();
        format!(
            "idle {} in_use {} max {} waiting {}",
            s.idle, s.in_use, s.max, s.waiting
        )
    };
    out.push(format!("built: {}", stats(c)));
    let first = c.acquire().await.expect("first");
    let second = c.acquire().await.expect("second");
    first.query_one("select 1", &[]).await.expect("first works");
    out.push(format!("two held: {}", stats(c)));
    assert_eq!((c.pool_stats().in_use, c.pool_stats().idle), (2, 0));

    let started = tokio::time::Instant::now();
    let third = c.acquire().await;
    let elapsed = started.elapsed();
    let e = third.expect_err("max_connections are out");
    assert!(
        matches!(e, Error::AcquireTimeout { waited } if waited == ACQUIRE_TIMEOUT),
        "{e:?}"
    );
    assert!(
        elapsed >= ACQUIRE_TIMEOUT,
        "gave up after {elapsed:?}, before the timeout"
    );
    assert!(e.is_timeout() && e.is_transient());
    out.push(format!("third: error {}", kind(&e)));

    // A waiter is counted, and served as soon as a connection comes back.
    let waiter = {
        let c = c.clone();
        tokio::spawn(async move { c.acquire().await.map(|_| ()) })
    };
    while c.pool_stats().waiting == 0 {
        tokio::task::yield_now().await;
    }
    out.push(format!("one waiting: {}", stats(c)));
    drop(first);
    let served = waiter.await.expect("waiter task");
    out.push(format!("waiter after a release: {}", outcome(&served)));
    drop(second);
    out.push(format!("all returned: {}", stats(c)));
    assert_eq!(c.pool_stats().in_use, 0);
    out
}

async fn pool_lifecycle(c: &Client) -> Lines {
    let mut out = Lines::new();
    let stats = |c: &Client| {
        let s = c.pool_stats();
        format!(
            "idle {} in_use {} created {} retired {}",
            s.idle, s.in_use, s.created, s.retired
        )
    };
    // min_idle connections are opened by build.
    out.push(format!("built: {}", stats(c)));
    assert_eq!((c.pool_stats().idle, c.pool_stats().created), (2, 2));
    let held: Vec<_> = futures_util::future::join_all((0..4).map(|_| c.acquire()))
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("four connections");
    for conn in &held {
        conn.query_one("select 1", &[]).await.expect("each works");
    }
    out.push(format!("four held: {}", stats(c)));
    drop(held);
    c.maintain().await.expect("maintain");
    out.push(format!("returned, not yet idle long: {}", stats(c)));
    assert_eq!(c.pool_stats().idle, 4);
    tokio::time::sleep(SHORT + SHORT / 2).await;
    c.maintain().await.expect("maintain");
    out.push(format!("after the idle timeout: {}", stats(c)));
    assert_eq!(
        (c.pool_stats().idle, c.pool_stats().retired),
        (2, 2),
        "min_idle stay warm"
    );
    out
}

async fn pool_max_lifetime(c: &Client) -> Lines {
    let mut out = Lines::new();
    let pid = |c: &Client| {
        let c = c.clone();
        async move {
            let conn = c.acquire().await.expect("a connection");
            conn.query_one("select pg_backend_pid()", &[])
                .await
                .expect("pid")
                .get::<_, i32>(0)
        }
    };
    let first = pid(c).await;
    let again = pid(c).await;
    assert_eq!(first, again, "a young connection is reused");
    out.push("young connection reused: true".into());
    tokio::time::sleep(SHORT + SHORT / 2).await;
    let later = pid(c).await;
    assert_ne!(first, later, "an old connection is replaced");
    let s = c.pool_stats();
    out.push(format!(
        "after max lifetime: new backend {}, created {}, retired {}",
        first != later,
        s.created,
        s.retired
    ));
    assert_eq!((s.created, s.retired), (2, 1));
    out
}

async fn statement_timeout(c: &Client) -> Lines {
    let mut out = Lines::new();
    let slow = c.query("select pg_sleep(2)", &[]).await;
    let e = slow.as_ref().expect_err("cancelled by statement_timeout");
    assert_eq!(e.code(), Some("57014"));
    assert!(e.is_timeout() && !e.is_transient());
    out.push(format!(
        "pg_sleep(2) with a 300 ms statement_timeout: {}",
        outcome(&slow.map(|_| ()))
    ));
    let setting = c.query_one("show statement_timeout", &[]).await;
    out.push(format!(
        "show statement_timeout: {}",
        outcome(&setting.map(|r| r.get::<_, String>(0)))
    ));
    out
}

async fn transactions(c: &Client) -> Lines {
    let mut out = Lines::new();
    reset(
        c,
        "drop table if exists t_items; create table t_items (id int primary key, note text)",
    )
    .await;
    let notes = |c: &Client| {
        let c = c.clone();
        async move {
            c.query("select id from t_items order by id", &[])
                .await
                .expect("list")
                .iter()
                .map(|r| r.get::<_, i32>(0))
                .collect::<Vec<_>>()
        }
    };
    let insert = "insert into t_items (id, note) values ($1, $2)";

    let mut conn = c.acquire().await.expect("a connection");
    let tx = conn.begin().await.expect("begin");
    tx.execute(insert, &[&1i32, &"committed"])
        .await
        .expect("insert 1");
    tx.commit().await.expect("commit");
    let tx = conn.begin().await.expect("begin");
    tx.execute(insert, &[&2i32, &"rolled back"])
        .await
        .expect("insert 2");
    tx.rollback().await.expect("rollback");
    out.push(format!("commit then rollback: {:?}", notes(c).await));
    assert_eq!(notes(c).await, [1]);

    let mut tx = conn.begin().await.expect("begin");
    tx.execute(insert, &[&3i32, &"before savepoint"])
        .await
        .expect("insert 3");
    {
        let mut outer = tx.savepoint("outer").await.expect("savepoint");
        outer
            .execute(insert, &[&4i32, &"released"])
            .await
            .expect("insert 4");
        let inner = outer
            .savepoint("inner \"quoted\"")
            .await
            .expect("nested savepoint");
        inner
            .execute(insert, &[&5i32, &"undone"])
            .await
            .expect("insert 5");
        inner.rollback().await.expect("rollback to inner");
        outer.commit().await.expect("release outer");
    }
    let sp = tx.savepoint("after_error").await.expect("savepoint");
    let dup = sp.execute(insert, &[&3i32, &"duplicate"]).await;
    assert_eq!(dup.as_ref().err().and_then(Error::code), Some("23505"));
    assert!(sp.is_failed());
    sp.rollback()
        .await
        .expect("rollback to savepoint clears the error");
    assert!(!tx.is_failed());
    tx.execute(insert, &[&6i32, &"after savepoint"])
        .await
        .expect("insert 6");
    tx.commit().await.expect("commit");
    out.push(format!("savepoints: {:?}", notes(c).await));
    assert_eq!(notes(c).await, [1, 3, 4, 6]);

    let tx = conn.begin().await.expect("begin");
    let dup = tx.execute(insert, &[&1i32, &"duplicate"]).await;
    out.push(format!(
        "error in transaction: {}, failed {}",
        outcome(&dup),
        tx.is_failed()
    ));
    let next = tx.query("select 1", &[]).await;
    assert_eq!(next.as_ref().err().and_then(Error::code), Some("25P02"));
    out.push(format!("next statement: {}", outcome(&next.map(|_| ()))));
    let commit = tx.commit().await;
    assert!(
        matches!(commit, Err(Error::TransactionAborted)),
        "{commit:?}"
    );
    out.push(format!("commit: {}", outcome(&commit)));
    conn.query_one("select 1", &[])
        .await
        .expect("usable after the rollback");

    let options = TransactionOptions::new()
        .isolation(IsolationLevel::Serializable)
        .read_only(true);
    let tx = conn.begin_with(&options).await.expect("begin read only");
    let level = tx
        .query_one("show transaction_isolation", &[])
        .await
        .expect("isolation");
    let write = tx.execute(insert, &[&7i32, &"read only"]).await;
    assert_eq!(write.as_ref().err().and_then(Error::code), Some("25006"));
    out.push(format!(
        "serializable read only: {}, write {}",
        level.get::<_, String>(0),
        outcome(&write)
    ));
    tx.rollback().await.expect("rollback");
    drop(conn);

    let closure = c
        .transaction(async |tx| {
            tx.execute(insert, &[&8i32, &"closure"]).await?;
            tx.query_one("select count(*) from t_items", &[])
                .await
                .map(|r| r.get::<_, i64>(0))
        })
        .await;
    out.push(format!("closure commits: {}", outcome(&closure)));
    let failed = c
        .transaction(async |tx| {
            tx.execute(insert, &[&9i32, &"closure error"]).await?;
            tx.execute(insert, &[&9i32, &"closure error"]).await
        })
        .await;
    out.push(format!("closure error rolls back: {}", outcome(&failed)));
    let panicked = AssertUnwindSafe(c.transaction(async |tx| {
        tx.execute(insert, &[&10i32, &"closure panic"]).await?;
        if tx.attempt() > 0 {
            panic!("the closure panics");
        }
        Ok(())
    }))
    .catch_unwind()
    .await;
    assert!(panicked.is_err(), "the panic carries on to the caller");
    out.push(format!("after closures: {:?}", notes(c).await));
    assert_eq!(notes(c).await, [1, 3, 4, 6, 8]);
    out
}

async fn transaction_retry(c: &Client) -> Lines {
    let mut out = Lines::new();
    reset(
        c,
        "drop table if exists r_acct; create table r_acct (id int primary key, balance int); \
              insert into r_acct values (1, 100)",
    )
    .await;
    let options = TransactionOptions::new()
        .isolation(IsolationLevel::RepeatableRead)
        .max_attempts(3)
        .backoff(Duration::from_millis(5));
    // Another session changes the row between this transaction's read and
    // its write: a real 40001 on the first attempt only.
    let mut attempts = Vec::new();
    let moved = c
        .transaction_with(&options, async |tx| {
            attempts.push(tx.attempt());
            let balance: i32 = tx
                .query_one("select balance from r_acct where id = 1", &[])
                .await?
                .get(0);
            if tx.attempt() == 1 {
                c.execute("update r_acct set balance = balance + 1 where id = 1", &[])
                    .await?;
            }
            tx.execute(
                "update r_acct set balance = $1 where id = 1",
                &[&(balance - 10)],
            )
            .await
        })
        .await;
    assert_eq!(attempts, [1, 2]);
    out.push(format!(
        "one conflict: {}, attempts {attempts:?}",
        outcome(&moved)
    ));
    let balance: i32 = c
        .query_one("select balance from r_acct where id = 1", &[])
        .await
        .expect("balance")
        .get(0);
    assert_eq!(balance, 91);
    out.push(format!("balance {balance}"));

    // A conflict on every attempt: the closure gives up after the bound.
    let mut tries = 0;
    let gave_up = c
        .transaction_with(&options, async |tx| {
            tries += 1;
            tx.query_one("select balance from r_acct where id = 1", &[])
                .await?;
            c.execute("update r_acct set balance = balance + 1 where id = 1", &[])
                .await?;
            tx.execute("update r_acct set balance = 0 where id = 1", &[])
                .await
        })
        .await;
    assert!(
        matches!(&gave_up, Err(Error::RetriesExhausted { attempts: 3, .. })),
        "{gave_up:?}"
    );
    assert_eq!(gave_up.as_ref().err().and_then(Error::code), Some("40001"));
    assert_eq!(tries, 3);
    out.push(format!("always conflicting: {}", outcome(&gave_up)));
    let balance: i32 = c
        .query_one("select balance from r_acct where id = 1", &[])
        .await
        .expect("balance")
        .get(0);
    out.push(format!("balance {balance}"));
    out
}

/// Keyset pages over a table larger than a page, by an integer and by a
/// text key, both directions, with the token handed back as a string (as a
/// web client would), plus limit/offset pages.
async fn pagination(c: &Client) -> Lines {
    let mut out = Lines::new();
    reset(
        c,
        "drop table if exists p_items; \
         create table p_items (id int primary key, sku text unique not null, kind text not null); \
         insert into p_items select i, 'sku-' || lpad(i::text, 3, '0'), \
             case when i % 3 = 0 then 'red' else 'blue' end from generate_series(1, 25) i",
    )
    .await;
    let show = |rows: &[pgsim::tokio_postgres::Row]| {
        rows.iter()
            .map(|r| r.get::<_, i32>("id").to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    for (what, keyset) in [
        (
            "by id",
            Keyset::new("select id, sku from p_items", "id").and_then(|k| k.size(10)),
        ),
        (
            "by sku, descending",
            Keyset::new("select id, sku from p_items", "sku")
                .and_then(|k| k.size(7))
                .map(|k| k.descending()),
        ),
    ] {
        let keyset = keyset.expect("a valid keyset");
        let mut token: Option<String> = None;
        let mut seen = 0;
        loop {
            let after = token
                .as_deref()
                .map(|t| t.parse::<PageToken>().expect("our own token"));
            let page = c.page(&keyset, &[], after.as_ref()).await.expect("a page");
            seen += page.rows.len();
            out.push(format!(
                "{what}: [{}] next {:?}",
                show(&page.rows),
                page.next.as_ref().map(|t| t.to_string())
            ));
            match page.next {
                Some(next) => token = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, 25, "{what}: every row once");
    }
    // The query's own parameter comes first; the page's follow it.
    let red = Keyset::new("select id, sku from p_items where kind = $1", "id")
        .and_then(|k| k.size(4))
        .expect("a valid keyset");
    let first = c.page(&red, &[&"red"], None).await.expect("a page");
    out.push(format!(
        "red: [{}] next {:?}",
        show(&first.rows),
        first.next.as_ref().map(|t| t.to_string())
    ));
    let second = c
        .page(&red, &[&"red"], first.next.as_ref())
        .await
        .expect("a page");
    out.push(format!(
        "red: [{}] next {:?}",
        show(&second.rows),
        second.next.as_ref().map(|t| t.to_string())
    ));
    for page in 0..3 {
        let rows = c
            .page_offset("select id from p_items order by id", &[], page, 10)
            .await
            .expect("an offset page");
        out.push(format!("offset page {page}: [{}]", show(&rows)));
    }
    out.push(format!(
        "missing parameter: {}",
        outcome(&c.page(&red, &[], None).await.map(|p| p.rows.len()))
    ));
    out.push(format!(
        "bad token: {}",
        outcome(&"i.x".parse::<PageToken>().map(|t| t.to_string()))
    ));
    out
}

/// Pipelined statements (each result on its own, or the first error) and
/// a large result read through a portal in batches.
async fn batches(c: &Client) -> Lines {
    let mut out = Lines::new();
    reset(
        c,
        "drop table if exists b_events; \
         create table b_events (id int primary key, payload text not null); \
         insert into b_events select i, repeat('x', i % 7) from generate_series(1, 250) i",
    )
    .await;
    let first = |rows: &[pgsim::tokio_postgres::Row]| -> String {
        rows.first()
            .map(|r| format!("{:?}", r.try_get::<_, i64>(0).map_err(|e| e.to_string())))
            .unwrap_or_else(|| "no rows".into())
    };
    let results = c
        .pipeline(&[
            ("select count(*) from b_events", &[]),
            ("select count(*) from b_events where id > $1", &[&200i32]),
            ("select 1 / (count(*) - count(*)) from b_events", &[]),
            (
                "select count(*)::int8 from b_events where payload = $1",
                &[&"xxx"],
            ),
            ("select $1::int8", &[]),
        ])
        .await
        .expect("a connection");
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(rows) => out.push(format!("pipeline {i}: {}", first(rows))),
            Err(e) => out.push(format!("pipeline {i}: error {}", kind(e))),
        }
    }
    let all = c
        .pipeline_all(&[
            ("select count(*) from b_events where id <= $1", &[&10i32]),
            ("select 1 / (count(*) - count(*)) from b_events", &[]),
        ])
        .await;
    out.push(format!("pipeline_all: {}", outcome(&all.map(|r| r.len()))));
    let mut batches = Vec::new();
    let mut sum = 0i64;
    let read = c
        .query_cursor(
            "select id, payload from b_events where id > $1 order by id",
            &[&0i32],
            100,
            |rows| {
                batches.push(rows.len());
                sum += rows
                    .iter()
                    .map(|r| i64::from(r.get::<_, i32>(0)))
                    .sum::<i64>();
                Ok(())
            },
        )
        .await;
    out.push(format!(
        "cursor: {} in batches {batches:?}, ids sum to {sum}",
        outcome(&read)
    ));
    let stopped = c
        .query_cursor("select id from b_events order by id", &[], 100, |_| {
            Err(Error::Config("the caller stops".into()))
        })
        .await;
    out.push(format!(
        "cursor stopped by its caller: {}",
        outcome(&stopped)
    ));
    out.push(format!("after: {} rows", count(c, "b_events").await));
    out
}

tokio::task_local! {
    /// What [`Transcript`] saw in the `observability` case's task. Hooks
    /// run on the task that queries, so two runs of the case at once (the
    /// tests run in parallel) each see only their own events.
    static HOOK_EVENTS: std::cell::RefCell<Vec<String>>;
}

/// Notes one hook event in the running case's list (none outside it).
fn note(event: String) {
    let _ = HOOK_EVENTS.try_with(|events| events.borrow_mut().push(event));
}

/// The events noted so far, taken.
fn take_events() -> Vec<String> {
    HOOK_EVENTS
        .try_with(|events| events.take())
        .unwrap_or_default()
}

/// A hook writing down every event (no durations: they differ per run).
struct Transcript;

impl Hook for Transcript {
    fn before_query(&self, q: &QueryEvent<'_>) -> HookResult {
        note(format!("before {} on {}: {}", q.kind, q.node, q.sql()));
        Ok(())
    }

    fn after_query(&self, q: &QueryEvent<'_>, done: &QueryDone<'_>) -> HookResult {
        note(format!(
            "after {} on {}: {} rows {:?}",
            q.kind,
            q.node,
            done.outcome(),
            done.rows
        ));
        Ok(())
    }

    fn on_acquire(&self, a: &AcquireEvent<'_>) -> HookResult {
        let outcome = a.error.map_or_else(|| "ok".to_owned(), kind);
        note(format!("acquire on {}: {outcome}", a.node));
        Ok(())
    }

    fn on_release(&self, r: &ReleaseEvent<'_>) -> HookResult {
        note(format!("release on {}", r.node));
        Ok(())
    }
}

/// A hook with bugs: it fails before every delete and panics after every
/// update. Neither may change what the queries do.
struct Faulty;

impl Hook for Faulty {
    fn before_query(&self, q: &QueryEvent<'_>) -> HookResult {
        if q.kind == StatementKind::Delete {
            return Err("the hook refuses deletes".into());
        }
        Ok(())
    }

    fn after_query(&self, q: &QueryEvent<'_>, _: &QueryDone<'_>) -> HookResult {
        if q.kind == StatementKind::Update {
            panic!("a bug in a hook (the observability case's own, on purpose)");
        }
        Ok(())
    }
}

/// The lines of `metrics_text()` that are the same in every run: not the
/// latency buckets and sums.
pub fn stable_metrics(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| {
        let name = l.split(['{', ' ']).next().unwrap_or("");
        !(name.ends_with("_bucket") || name.ends_with("_sum") || *l == "# EOF")
    })
}

async fn observability(c: &Client) -> Lines {
    HOOK_EVENTS
        .scope(std::cell::RefCell::new(Vec::new()), observe_all(c))
        .await
}

async fn observe_all(c: &Client) -> Lines {
    let mut out = Lines::new();
    reset(
        c,
        "drop table if exists o_items; \
         create table o_items (id int primary key, name text not null)",
    )
    .await;
    take_events();
    for (id, name) in [(1, "one"), (2, "two"), (3, "three")] {
        c.execute(
            "insert into o_items (id, name) values ($1, $2)",
            &[&id, &name],
        )
        .await
        .expect("insert");
    }
    let rows = c
        .query("select id, name from o_items order by id", &[])
        .await;
    out.push(format!("select: {}", outcome(&rows.map(|r| r.len()))));
    let updated = c
        .execute(
            "update o_items set name = upper(name) where id = $1",
            &[&2i32],
        )
        .await;
    out.push(format!(
        "update under a panicking hook: {}",
        outcome(&updated)
    ));
    let deleted = c
        .execute("delete from o_items where id = $1", &[&3i32])
        .await;
    out.push(format!(
        "delete under a failing hook: {}",
        outcome(&deleted)
    ));
    let duplicate = c
        .execute(
            "insert into o_items (id, name) values ($1, $2)",
            &[&1i32, &"again"],
        )
        .await;
    out.push(format!("duplicate: {}", outcome(&duplicate)));
    let zero = c
        .query_one("select 1 / (count(*) - count(*)) from o_items", &[])
        .await;
    out.push(format!("division: {}", outcome(&zero.map(|_| ()))));
    let none = c
        .query_one("select id from o_items where id = $1", &[&42i32])
        .await;
    out.push(format!("no row: {}", outcome(&none.map(|_| ()))));
    let moved = c
        .transaction(async |tx| {
            tx.execute(
                "insert into o_items (id, name) values ($1, $2)",
                &[&4i32, &"four"],
            )
            .await
        })
        .await;
    out.push(format!("transaction: {}", outcome(&moved)));
    {
        let held = c.acquire().await.expect("the one connection");
        let second = c.acquire().await;
        out.push(format!(
            "acquire while held: {}",
            outcome(&second.map(|_| ()))
        ));
        drop(held);
    }
    out.push(format!("rows now: {}", count(c, "o_items").await));

    out.push("hook events:".into());
    out.extend(take_events().into_iter().map(|e| format!("  {e}")));

    let health = c.check_health().await;
    for h in &health {
        out.push(format!(
            "health {}: reachable {} healthy {} in recovery {:?} lag {:?} latency measured {} \
             pool idle {} in use {} max {} created {} recent {} queries {} errors (window {} s)",
            h.node,
            h.reachable,
            h.healthy,
            h.in_recovery,
            h.lag,
            h.latency.is_some(),
            h.pool.idle,
            h.pool.in_use,
            h.pool.max,
            h.pool.created,
            h.recent.queries,
            h.recent.errors,
            h.recent.window_s,
        ));
        let json = serde_json::to_value(h).expect("health serializes");
        let keys: Vec<&String> = json
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        out.push(format!("health json keys: {keys:?}"));
        let back: pgsim::client::NodeHealth =
            serde_json::from_value(json.clone()).expect("health deserializes");
        assert_eq!(&back, h, "the serialized form reads back the same");
    }
    take_events();

    out.push("metrics:".into());
    let text = c.metrics_text();
    out.extend(stable_metrics(&text).map(|l| format!("  {l}")));
    out
}

/// Schema per tenant on one pooled connection shared by both tenants, then
/// database per tenant with a bound of one pool.
async fn tenancy(c: &Client) -> Lines {
    let mut out = Lines::new();
    reset(
        c,
        "drop schema if exists t_acme cascade; drop schema if exists t_globex cascade; \
         create schema t_acme; create schema t_globex; \
         create table t_acme.items (id int primary key, name text not null); \
         create table t_globex.items (id int primary key, name text not null); \
         insert into t_acme.items values (1, 'anvil'), (2, 'rocket'); \
         insert into t_globex.items values (1, 'globe'), (2, 'laser'), (3, 'volcano')",
    )
    .await;
    let acme = c.tenant_schema("t_acme").expect("a valid tenant");
    let globex = c.tenant_schema("t_globex").expect("a valid tenant");
    let names = |t: pgsim::client::Tenant| async move {
        t.query("select name from items order by id", &[])
            .await
            .expect("the tenant's items")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    };
    for round in 1..=2 {
        for t in [&acme, &globex] {
            let seen = names(t.clone()).await;
            let own = if t.schema() == "t_acme" {
                vec!["anvil", "rocket"]
            } else {
                vec!["globe", "laser", "volcano"]
            };
            assert_eq!(seen, own, "{} sees only its own rows", t.schema());
            out.push(format!("round {round}: {} sees {seen:?}", t.schema()));
        }
    }
    let pid = |t: pgsim::client::Tenant| async move {
        t.query_one("select pg_backend_pid()", &[])
            .await
            .expect("a pid")
            .get::<_, i32>(0)
    };
    let (a, g) = (pid(acme.clone()).await, pid(globex.clone()).await);
    assert_eq!(a, g, "max_connections(1): one connection for both");
    out.push(format!("one connection served both tenants: {}", a == g));

    let inserted = acme
        .execute("insert into items (id, name) values (3, 'tnt')", &[])
        .await;
    out.push(format!("acme unqualified insert: {}", outcome(&inserted)));
    out.push(format!(
        "rows: t_acme.items {}, t_globex.items {}",
        count(c, "t_acme.items").await,
        count(c, "t_globex.items").await
    ));
    let in_tx = globex
        .transaction(async |tx| {
            tx.execute("insert into items (id, name) values (4, 'doomsday')", &[])
                .await?;
            let row = tx.query_one("select count(*) from items", &[]).await?;
            Ok(row.get::<_, i64>(0))
        })
        .await;
    out.push(format!(
        "globex transaction counts its own: {}",
        outcome(&in_tx)
    ));
    let rolled_back = acme
        .transaction(async |tx| {
            tx.execute("delete from items where id = 1", &[]).await?;
            tx.execute("insert into items (id, name) values (2, 'duplicate')", &[])
                .await
        })
        .await;
    out.push(format!(
        "acme transaction with a duplicate key: {}",
        outcome(&rolled_back)
    ));
    let after = names(acme.clone()).await;
    assert_eq!(after, ["anvil", "rocket", "tnt"]);
    out.push(format!("acme after the rollback: {after:?}"));
    out.push(format!(
        "globex after its commit: {:?}",
        names(globex.clone()).await
    ));
    let path = acme.query_one("show search_path", &[]).await;
    out.push(format!(
        "acme search_path: {}",
        outcome(&path.map(|r| r.get::<_, String>(0)))
    ));
    // Pointed elsewhere behind the tenant's back: the next checkout sets
    // the tenant's path again.
    let by_hand = acme.acquire().await.expect("a connection");
    by_hand
        .batch_execute("set search_path to t_globex")
        .await
        .expect("set by hand");
    drop(by_hand);
    let seen = names(acme.clone()).await;
    assert_eq!(seen, ["anvil", "rocket", "tnt"]);
    out.push(format!(
        "acme after its connection was pointed at t_globex: {seen:?}"
    ));
    globex
        .batch_execute("set search_path to t_acme")
        .await
        .expect("set through the tenant");
    let seen = names(globex.clone()).await;
    assert_eq!(seen, ["globe", "laser", "volcano", "doomsday"]);
    out.push(format!("globex after setting search_path itself: {seen:?}"));
    // The one connection was a tenant's last: the plain client gets it
    // back with the session's default path, not a tenant's.
    let plain = c.query_one("show search_path", &[]).await;
    let plain = plain.map(|r| r.get::<_, String>(0));
    assert!(plain.as_ref().is_ok_and(|p| !p.contains("t_")), "{plain:?}");
    out.push(format!(
        "the plain client's search_path after the tenants: {}",
        outcome(&plain)
    ));
    c.batch_execute("set search_path to t_globex")
        .await
        .expect("set by the plain client");
    let leaked = names(acme.clone()).await;
    assert_eq!(leaked, ["anvil", "rocket", "tnt"]);
    out.push(format!(
        "acme after the plain client set search_path: {leaked:?}"
    ));
    let missing = c.tenant_schema("t_initech").expect("a valid name");
    let none = missing.query("select name from items", &[]).await;
    out.push(format!(
        "tenant without a schema: {}",
        outcome(&none.map(|r| r.len()))
    ));
    let too_long = "t".repeat(64);
    for bad in [
        "",
        "Acme",
        "t_acme; drop schema t_globex cascade",
        "t_acme,t_globex",
        "pg_catalog",
        "public",
        "select",
        too_long.as_str(),
    ] {
        let refused = c.tenant_schema(bad).map(|t| t.schema().to_owned());
        assert!(matches!(refused, Err(Error::Tenant { .. })), "{bad:?}");
        let shown = if bad.len() > 40 { "<64 bytes>" } else { bad };
        out.push(format!("tenant_schema({shown:?}): {}", outcome(&refused)));
    }

    for db in ["pgsim_tenant_a", "pgsim_tenant_b"] {
        reset(c, &format!("drop database if exists {db} with (force)")).await;
        reset(c, &format!("create database {db}")).await;
    }
    let tenant_a = c.tenant_database("pgsim_tenant_a").await.expect("tenant a");
    reset(
        &tenant_a,
        "create table items (id int primary key, name text not null); \
         insert into items values (1, 'apple'), (2, 'apricot')",
    )
    .await;
    let db_names = |t: Client| async move {
        t.query("select name from items order by id", &[])
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
            })
    };
    out.push(format!(
        "pgsim_tenant_a sees {}",
        outcome(&db_names(tenant_a.clone()).await)
    ));
    out.push(format!("pools: {:?}", c.tenant_pools().await));
    let tenant_b = c.tenant_database("pgsim_tenant_b").await.expect("tenant b");
    reset(
        &tenant_b,
        "create table items (id int primary key, name text not null); \
         insert into items values (1, 'banana')",
    )
    .await;
    out.push(format!(
        "pgsim_tenant_b sees {}",
        outcome(&db_names(tenant_b.clone()).await)
    ));
    out.push(format!(
        "pools with a bound of 1: {:?}",
        c.tenant_pools().await
    ));
    let idle_after = tenant_a.pool_stats();
    out.push(format!(
        "the evicted pool: idle {} in use {} retired {}",
        idle_after.idle, idle_after.in_use, idle_after.retired
    ));
    let evicted = db_names(tenant_a).await;
    out.push(format!(
        "the evicted pool, still held, still serves: {}",
        outcome(&evicted)
    ));
    let again = c
        .tenant_database("pgsim_tenant_a")
        .await
        .expect("tenant a again");
    out.push(format!(
        "pgsim_tenant_a again sees {}",
        outcome(&db_names(again).await)
    ));
    out.push(format!("pools: {:?}", c.tenant_pools().await));
    out.push(format!(
        "the pool pgsim_tenant_b had: {}",
        outcome(&db_names(tenant_b).await)
    ));
    let bad = c.tenant_database("Tenant-A").await.map(|_| ());
    out.push(format!("tenant_database(\"Tenant-A\"): {}", outcome(&bad)));
    out
}

/// How often the `credentials` case's password provider was asked.
static PASSWORD_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The `credentials` case's password provider: the password of
/// `PGSIM_LIVE_URL` (the server recorded from), counted; none in Replay
/// without a live server (the mock server trusts).
fn live_password() -> Result<pgsim::client::Password, pgsim::client::ProviderError> {
    PASSWORD_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let Ok(url) = std::env::var("PGSIM_LIVE_URL") else {
        return Ok(pgsim::client::Password::new(""));
    };
    let config: pgsim::tokio_postgres::Config = url.parse()?;
    let password = config.get_password().unwrap_or_default().to_vec();
    Ok(pgsim::client::Password::from_bytes(password))
}

/// The password provider is asked once per new connection, in every mode.
async fn credentials(c: &Client) -> Lines {
    use std::sync::atomic::Ordering;
    let mut out = Lines::new();
    // Record mode asked once already, for the upstream check.
    PASSWORD_CALLS.store(0, Ordering::SeqCst);
    let calls = || PASSWORD_CALLS.load(Ordering::SeqCst);
    let who = |conn: pgsim::client::Connection| async move {
        let user = conn.query_one("select current_user::text", &[]).await;
        outcome(&user.map(|r| r.get::<_, String>(0)))
    };
    let first = c.acquire().await.expect("a connection");
    out.push(format!(
        "first connection: {}, provider calls {}",
        who(first).await,
        calls()
    ));
    let again = c.acquire().await.expect("the same connection");
    out.push(format!(
        "reused: {}, provider calls {}",
        who(again).await,
        calls()
    ));
    let held = c.acquire().await.expect("a connection");
    let second = c.acquire().await.expect("a second connection");
    assert_eq!(calls(), 2, "a new connection asks the provider again");
    out.push(format!(
        "two at once: {} and {}, provider calls {}",
        who(held).await,
        who(second).await,
        calls()
    ));
    out.push(format!("pool: created {}", c.pool_stats().created));
    out
}
