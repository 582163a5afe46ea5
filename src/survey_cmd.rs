//! `pgsim survey` and the survey half of `pgsim demo`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use pgsim::survey::{Clock, ListOptions, MultiDatabaseConfig, Progress, SamplingConfig, Survey};
use pgsim::{Client, Mode};

/// `pgsim survey`'s options.
#[derive(Debug, clap::Args)]
pub(crate) struct SurveyArgs {
    /// The server (any database on it; `postgres` is usual).
    #[arg(long, env = "PGSIM_URL", hide_env_values = true)]
    url: String,
    /// Rows sampled per table (0: catalog only).
    #[arg(long, default_value_t = 10)]
    sample: usize,
    /// Seed of the random order of tables with no primary key, timestamp
    /// or serial column: the same seed samples the same rows.
    #[arg(long, default_value_t = pgsim::survey::DEFAULT_SEED)]
    seed: u64,
    /// Queries per second for the whole survey, across databases (0: no
    /// limit; at least one a day otherwise).
    #[arg(long, default_value_t = 0.0, value_parser = parse_qps, allow_negative_numbers = true)]
    qps: f64,
    /// Databases collected at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    max_concurrency: u16,
    /// Leave out databases matching this glob (`*`, `?`, `[...]`); repeatable.
    #[arg(long)]
    exclude: Vec<String>,
    /// Include template0 and template1.
    #[arg(long)]
    include_system: bool,
    /// Include pg_* and information_schema schemas.
    #[arg(long)]
    include_system_schemas: bool,
    /// Stop at the first database that fails instead of listing it.
    #[arg(long)]
    fail_fast: bool,
    /// `fixed` sets collected_at to 1970-01-01T00:00:00Z and durations to 0,
    /// so two surveys of the same server are identical byte for byte.
    #[arg(long, value_enum, default_value = "system")]
    clock: ClockArg,
}

/// A rate the survey's limiter takes, refused here before anything
/// connects.
fn parse_qps(value: &str) -> Result<f64, String> {
    let qps: f64 = value
        .trim()
        .parse()
        .map_err(|e| format!("not a number: {e}"))?;
    match pgsim::survey::RateLimiter::new(qps) {
        Ok(_) => Ok(qps),
        Err(pgsim::Error::Setting { reason, .. }) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ClockArg {
    System,
    Fixed,
}

impl SurveyArgs {
    fn config(&self) -> MultiDatabaseConfig {
        let progress = std::io::stderr().is_terminal().then(|| {
            Progress(Arc::new(
                |name: &str, took, failed: Option<&pgsim::survey::Failure>| match failed {
                    None => eprintln!("survey: {name} done in {} ms", took.as_millis()),
                    Some(f) => eprintln!(
                        "survey: {name} failed: {} {}",
                        f.sqlstate.as_deref().unwrap_or("-"),
                        f.message
                    ),
                },
            ))
        });
        MultiDatabaseConfig {
            list: self.exclude.iter().fold(
                ListOptions {
                    include_system: self.include_system,
                    ..ListOptions::default()
                },
                |o, p| o.exclude(p),
            ),
            include_system_schemas: self.include_system_schemas,
            sampling: SamplingConfig {
                rows: self.sample,
                seed: self.seed,
            },
            queries_per_second: self.qps,
            max_concurrency: usize::from(self.max_concurrency),
            continue_on_error: !self.fail_fast,
            clock: match self.clock {
                ClockArg::System => Clock::System,
                ClockArg::Fixed => Clock::Fixed(UNIX_EPOCH),
            },
            progress,
        }
    }
}

/// Prints the survey as JSON on stdout.
pub(crate) async fn run(args: SurveyArgs) -> Result<(), String> {
    let client = Client::builder()
        .url(&args.url)
        .max_connections(2)
        .survey_settings()
        .build()
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "survey: tables with nothing to order by are sampled in random order, seed {} (--seed)",
        args.seed
    );
    let survey = client
        .collect_all_databases(&args.config())
        .await
        .map_err(|e| e.to_string())?;
    let _ = client.close().await;
    println!("{}", to_json(&survey)?);
    Ok(())
}

fn to_json(survey: &Survey) -> Result<String, String> {
    serde_json::to_string_pretty(survey).map_err(|e| format!("cannot print the survey: {e}"))
}

/// What the survey half of `pgsim demo` found.
pub(crate) struct SurveyCheck {
    /// Per database, tables and rows sampled, failures and warnings.
    pub(crate) summary: String,
    /// Databases surveyed, collected, failed.
    pub(crate) databases: (usize, usize, usize),
    /// Queries the mock server answered.
    pub(crate) queries: u64,
    /// The replay's report (misses, unused answers).
    pub(crate) report: pgsim::Report,
    /// The replayed JSON is byte for byte `expected/survey.json`.
    pub(crate) identical: bool,
    /// The file compared with.
    pub(crate) expected: std::path::PathBuf,
}

/// Surveys the bundled survey fixtures through an in-process mock server
/// and compares the JSON with the one recorded. `Err` when it could not
/// run at all.
pub(crate) async fn demo(dir: &Path) -> Result<SurveyCheck, String> {
    let client = Client::builder()
        .url("postgres://pgsim_surveyor@127.0.0.1:5432/postgres")
        .mode(Mode::Replay {
            fixtures: dir.to_owned(),
        })
        .survey_settings()
        .build()
        .await
        .map_err(|e| e.to_string())?;
    // The settings the scenario recorded with (recorder/src/survey.rs).
    let config = MultiDatabaseConfig {
        list: ListOptions::default().exclude("pgsim_*"),
        sampling: SamplingConfig {
            rows: 3,
            ..SamplingConfig::default()
        },
        clock: Clock::Fixed(UNIX_EPOCH),
        ..MultiDatabaseConfig::default()
    };
    let survey = client
        .collect_all_databases(&config)
        .await
        .map_err(|e| e.to_string())?;
    let report = match client.close().await.map_err(|e| e.to_string())? {
        pgsim::client::Closed::Replayed(report) => report,
        other => return Err(format!("expected a replay, got {other:?}")),
    };
    let json = to_json(&survey)? + "\n";
    let expected = dir.join("expected/survey.json");
    let recorded =
        std::fs::read_to_string(&expected).map_err(|e| format!("{}: {e}", expected.display()))?;
    Ok(SurveyCheck {
        summary: summary(&survey),
        databases: (
            survey.summary.total,
            survey.summary.collected,
            survey.summary.failed,
        ),
        queries: report.queries,
        report,
        identical: json == recorded,
        expected,
    })
}

/// A few lines a person reads: per database, tables and rows sampled, then
/// failures and warnings.
fn summary(s: &Survey) -> String {
    let mut out = format!(
        "server: {}\nrole: {} ({})\n",
        s.server
            .version
            .split(" on ")
            .next()
            .unwrap_or(&s.server.version),
        s.server.user,
        if s.server.superuser {
            "superuser"
        } else {
            "not a superuser"
        }
    );
    out += &format!(
        "databases: {} surveyed, {} collected, {} failed; excluded {} system, {} by pattern\n",
        s.summary.total,
        s.summary.collected,
        s.summary.failed,
        s.summary.excluded_system,
        s.summary.excluded_by_pattern
    );
    let mut warnings = 0;
    let mut unreadable = Vec::new();
    for db in &s.databases {
        let tables: Vec<_> = db
            .schemas
            .iter()
            .flat_map(|sc| sc.tables.iter().map(move |t| (sc, t)))
            .collect();
        let rows: usize = tables
            .iter()
            .filter_map(|(_, t)| t.sample.as_ref())
            .map(|x| x.rows.len())
            .sum();
        for (schema, t) in &tables {
            warnings += t.sample.as_ref().map_or(0, |x| x.warnings.len());
            if let Some(e) = &t.error {
                unreadable.push(format!(
                    "{}.{}.{} ({})",
                    db.info.name,
                    schema.name,
                    t.name,
                    e.sqlstate.as_deref().unwrap_or("-")
                ));
            }
        }
        out += &format!(
            "  {:<20} {} schemas, {:>2} tables, {:>3} rows sampled\n",
            db.info.name,
            db.schemas.len(),
            tables.len(),
            rows
        );
    }
    for f in &s.failures {
        out += &format!(
            "  {:<20} failed: {} {}\n",
            f.database,
            f.sqlstate.as_deref().unwrap_or("-"),
            f.message
        );
    }
    out += &format!(
        "warnings: {warnings}; unreadable tables: {}\n",
        if unreadable.is_empty() {
            "none".to_owned()
        } else {
            unreadable.join(", ")
        }
    );
    out
}
