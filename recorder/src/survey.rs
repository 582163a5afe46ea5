//! The survey scenario: a server with several databases (awkward names, a
//! locked one, tables for every ordering strategy) surveyed by a
//! non-superuser role, recorded into `fixtures/survey` with the survey it
//! produced in `expected/survey.json`.
//!
//! Used by the `pgsim-recorder` binary and pgsim's integration tests.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use pgsim::client::Closed;
use pgsim::survey::{Clock, ListOptions, MultiDatabaseConfig, SamplingConfig, Survey};
use pgsim::tokio_postgres::{self, NoTls};
use pgsim::validate::{quote_identifier, quote_literal};
use pgsim::{Client, ConnectionString, Mode};

/// The role that surveys (not a superuser).
pub const SURVEYOR: &str = "pgsim_surveyor";
const SURVEYOR_PASSWORD: &str = "surveyor";

/// The scenario's databases besides `postgres`: the main one, two awkward
/// names, and one the surveyor may not connect to.
pub const SHOP_DB: &str = "survey_shop";
/// Databases created with a small table each (names that need quoting and
/// URL-encoding).
pub const AWKWARD_DBS: [&str; 3] = ["sales-eu", "café", "it's \"quoted\" db"];
/// The database the surveyor may not connect to.
pub const LOCKED_DB: &str = "survey_locked";

/// Databases other scenarios and tests create on the same server, left out
/// of the survey so its result depends only on this scenario.
pub const EXCLUDE: &str = "pgsim_*";

/// Where the bundled survey fixtures live.
pub fn fixtures_dir() -> PathBuf {
    crate::scenario::repo_root().join("fixtures/survey")
}

fn shop_sql() -> Result<String, String> {
    let path = crate::scenario::repo_root().join("recorder/scenarios/survey/shop.sql");
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

async fn connect(live_url: &str, db: &str) -> Result<tokio_postgres::Client, String> {
    let mut config: tokio_postgres::Config = live_url.parse().map_err(|e| format!("{e}"))?;
    config.dbname(db);
    let (client, conn) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("connecting to {db}: {e}"))?;
    tokio::spawn(conn);
    Ok(client)
}

async fn exec(client: &tokio_postgres::Client, sql: &str) -> Result<(), String> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| format!("{sql}: {}", crate::scenario::pg_error(&e)))
}

/// Builds the scenario's world on the live server, as the superuser in
/// `live_url`; drops and recreates its databases.
pub async fn setup(live_url: &str) -> Result<(), String> {
    let admin = connect(live_url, "postgres").await?;
    let role_exists = admin
        .query_opt("select 1 from pg_roles where rolname = $1", &[&SURVEYOR])
        .await
        .map_err(|e| crate::scenario::pg_error(&e))?
        .is_some();
    let verb = if role_exists { "alter" } else { "create" };
    exec(
        &admin,
        &format!(
            "{verb} role {SURVEYOR} login nosuperuser password {}",
            quote_literal(SURVEYOR_PASSWORD)
        ),
    )
    .await?;
    let mut all = vec![SHOP_DB, LOCKED_DB];
    all.extend(AWKWARD_DBS);
    for db in &all {
        exec(
            &admin,
            &format!(
                "drop database if exists {} with (force)",
                quote_identifier(db)
            ),
        )
        .await?;
        exec(&admin, &format!("create database {}", quote_identifier(db))).await?;
    }
    exec(
        &admin,
        &format!(
            "revoke connect on database {} from public",
            quote_identifier(LOCKED_DB)
        ),
    )
    .await?;
    let shop = connect(live_url, SHOP_DB).await?;
    exec(&shop, &shop_sql()?).await?;
    for (i, db) in AWKWARD_DBS.iter().enumerate() {
        let c = connect(live_url, db).await?;
        exec(
            &c,
            &format!(
                "create table invoices (id int primary key, amount numeric(10, 2), issued_at timestamptz);
                 insert into invoices select g, g * {}.5, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 day'
                   from generate_series(1, 4) g;
                 analyze invoices;
                 grant select on invoices to {SURVEYOR};",
                i + 1
            ),
        )
        .await?;
    }
    Ok(())
}

/// The survey the scenario records: everything but [`EXCLUDE`], 3 rows per
/// table, on a fixed clock so it is reproducible byte for byte.
pub fn config(max_concurrency: usize) -> MultiDatabaseConfig {
    MultiDatabaseConfig {
        list: ListOptions::default().exclude(EXCLUDE),
        sampling: SamplingConfig {
            rows: 3,
            ..SamplingConfig::default()
        },
        max_concurrency,
        clock: Clock::Fixed(UNIX_EPOCH),
        ..MultiDatabaseConfig::default()
    }
}

/// The surveyor's URL on the live server.
pub fn surveyor_url(live_url: &str) -> Result<String, String> {
    let url = ConnectionString::parse(live_url).map_err(|e| e.to_string())?;
    Ok(format!(
        "postgres://{SURVEYOR}:{SURVEYOR_PASSWORD}@{}/postgres",
        url.address()
    ))
}

/// Surveys through a client in `mode`; returns the survey and what closing
/// found.
pub async fn run(
    url: &str,
    mode: Mode,
    config: &MultiDatabaseConfig,
) -> Result<(Survey, Closed), String> {
    let client = Client::builder()
        .url(url)
        .mode(mode)
        .survey_settings()
        .build()
        .await
        .map_err(|e| format!("survey client: {e}"))?;
    let survey = client
        .collect_all_databases(config)
        .await
        .map_err(|e| format!("survey: {e}"))?;
    let closed = client.close().await.map_err(|e| format!("closing: {e}"))?;
    Ok((survey, closed))
}

/// The survey as the CLI prints it.
pub fn to_json(survey: &Survey) -> String {
    serde_json::to_string_pretty(survey).unwrap_or_default() + "\n"
}

/// Builds the world, records the survey into `dir` (emptied first) and
/// writes `dir/expected/survey.json`.
pub async fn record(live_url: &str, dir: &Path) -> Result<Survey, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    setup(live_url).await?;
    let (survey, _) = run(
        &surveyor_url(live_url)?,
        Mode::Record {
            fixtures: dir.to_owned(),
        },
        &config(4),
    )
    .await?;
    let path = dir.join("expected/survey.json");
    std::fs::create_dir_all(dir.join("expected")).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(&path, to_json(&survey)).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(survey)
}
