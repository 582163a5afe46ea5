//! Collecting every database: a bounded number at once, one rate limit for
//! all of them, failures recorded per database.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::time::Instant;

use super::catalog::{self, Scope};
use super::limit::RateLimiter;
use super::model::*;
use super::sample;
use crate::{Client, Error, Result};

pub(super) async fn collect_all(c: &Client, config: &MultiDatabaseConfig) -> Result<Survey> {
    let limiter = RateLimiter::new(config.queries_per_second)?;
    let started = Instant::now();
    let collected_at = rfc3339(match config.clock {
        Clock::System => SystemTime::now(),
        Clock::Fixed(at) => at,
    });
    let server = catalog::server_info(c, &limiter).await?;
    let list = catalog::list_databases(c, &limiter, &config.list).await?;
    let mut summary = Summary {
        total: list.databases.len(),
        excluded_system: list.excluded_system,
        excluded_by_pattern: list.excluded_by_pattern,
        ..Summary::default()
    };
    let limiter = &limiter;
    let mut results = futures_util::stream::iter(list.databases)
        .map(|info| async move {
            let name = info.name.clone();
            let started = Instant::now();
            let result = collect_one(c, limiter, config, info).await;
            if let Some(Progress(report)) = &config.progress {
                let failed = result.as_ref().err().map(|e| failure(&name, e));
                report(&name, started.elapsed(), failed.as_ref());
            }
            (name, result)
        })
        .buffered(config.max_concurrency.max(1));
    let (mut databases, mut failures) = (Vec::new(), Vec::new());
    while let Some((name, result)) = results.next().await {
        match result {
            Ok(db) => databases.push(db),
            // Dropping the stream cancels the databases still in flight.
            Err(e) if !config.continue_on_error => return Err(e),
            Err(e) => failures.push(failure(&name, &e)),
        }
    }
    summary.collected = databases.len();
    summary.failed = failures.len();
    Ok(Survey {
        format: "pgsim-survey/1",
        collected_at,
        duration_ms: elapsed_ms(started, config.clock),
        server,
        summary,
        databases,
        failures,
    })
}

fn elapsed_ms(since: Instant, clock: Clock) -> u64 {
    match clock {
        Clock::System => u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
        Clock::Fixed(_) => 0,
    }
}

/// The failure as reported: the server's SQLSTATE and message when it
/// answered, else the error's text.
pub(super) fn failure(database: &str, e: &Error) -> Failure {
    Failure {
        database: database.to_owned(),
        sqlstate: e.code().map(str::to_owned),
        message: e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_owned()),
    }
}

async fn collect_one(
    c: &Client,
    limiter: &RateLimiter,
    config: &MultiDatabaseConfig,
    info: DatabaseInfo,
) -> Result<DatabaseSurvey> {
    let started = Instant::now();
    let db = c.connect_to_database(&info.name).await?;
    let schemas = survey_database(&db, limiter, config, &info.name).await;
    // The pool's connections close either way; a failure to close adds
    // nothing to the database's own result.
    let _ = db.close().await;
    Ok(DatabaseSurvey {
        schemas: schemas?,
        duration_ms: elapsed_ms(started, config.clock),
        info,
    })
}

async fn survey_database(
    db: &Client,
    limiter: &RateLimiter,
    config: &MultiDatabaseConfig,
    database: &str,
) -> Result<Vec<SchemaSurvey>> {
    let include_system = config.include_system_schemas;
    let scope = Scope {
        include_system,
        ..Scope::default()
    };
    let names = catalog::schemas(db, limiter, include_system).await?;
    let tables = catalog::tables(db, limiter, scope).await?;
    let mut columns = catalog::columns(db, limiter, scope).await?;
    let mut indexes = catalog::indexes(db, limiter, scope).await?;
    let mut foreign_keys = catalog::foreign_keys(db, limiter, scope).await?;
    let mut schemas: Vec<SchemaSurvey> = names
        .into_iter()
        .map(|name| SchemaSurvey {
            name,
            tables: Vec::new(),
        })
        .collect();
    for table in tables {
        let key = (table.schema.clone(), table.name.clone());
        let table_columns = columns.remove(&key).unwrap_or_default();
        let table_indexes = indexes.remove(&key).unwrap_or_default();
        let sampled = sample::sample(
            db,
            limiter,
            &table,
            &table_columns,
            &table_indexes,
            &config.sampling,
        )
        .await;
        let (sample, error) = match sampled {
            Ok(s) => (Some(s), None),
            // A table the role cannot read (42501) or that fails to read is
            // reported with its error; the survey goes on.
            Err(e) if e.as_db_error().is_some() => (None, Some(failure(database, &e))),
            Err(e) => return Err(e),
        };
        let surveyed = TableSurvey {
            name: table.name,
            kind: table.kind,
            columns: table_columns,
            indexes: table_indexes,
            foreign_keys: foreign_keys.remove(&key).unwrap_or_default(),
            sample,
            error,
        };
        match schemas.iter_mut().find(|s| s.name == table.schema) {
            Some(schema) => schema.tables.push(surveyed),
            None => schemas.push(SchemaSurvey {
                name: table.schema,
                tables: vec![surveyed],
            }),
        }
    }
    schemas.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(schemas)
}

/// `2024-01-02T03:04:05.123456Z`, through pgsim's own timestamptz codec.
pub fn rfc3339(at: SystemTime) -> String {
    // Microseconds since 2000-01-01, PostgreSQL's epoch.
    const PG_EPOCH: Duration = Duration::from_secs(946_684_800);
    let micros = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64 - PG_EPOCH.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64) - PG_EPOCH.as_micros() as i64,
    };
    let text = crate::types::binary_to_text(crate::types::oid::TIMESTAMPTZ, &micros.to_be_bytes())
        .unwrap_or_else(|_| "1970-01-01 00:00:00+00".to_owned());
    sample::iso8601(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let at = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(rfc3339(at), "2023-11-14T22:13:20.123456Z");
    }
}
