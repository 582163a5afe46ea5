//! `ClientBuilder::from_env`: the `PGSIM_*`, `DATABASE_URL` and libpq `PG*`
//! variables, each checked and named when wrong.

use std::time::Duration;

use super::config::{ClientBuilder, Mode};
use super::secret::{Password, SplitUrl};
use crate::{Error, Result};

impl ClientBuilder {
    /// A builder from the process environment (the variables in
    /// [`ClientBuilder`]'s table).
    /// Invalid values are errors naming the variable and the value.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`
    /// (for tests, or a configuration source of your own).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let url = match (lookup("PGSIM_URL"), lookup("DATABASE_URL")) {
            (Some(url), _) | (None, Some(url)) => Some(url),
            (None, None) => libpq_url(&lookup)?,
        };
        let mut b = ClientBuilder {
            url: url.map(SplitUrl::new),
            default_password: lookup("PGPASSWORD").map(Password::new),
            ..ClientBuilder::default()
        };
        match (lookup("PGSIM_MODE"), lookup("PGSIM_RECORD_MODE")) {
            (Some(mode), None) => b.mode = parse_mode(&mode, lookup("PGSIM_FIXTURES"))?,
            (None, Some(record)) => {
                let setting = |reason: String| Error::Setting {
                    setting: "PGSIM_RECORD_MODE".into(),
                    value: record.clone(),
                    reason,
                };
                let fixtures = lookup("PGSIM_FIXTURES")
                    .ok_or_else(|| setting("needs PGSIM_FIXTURES, the fixture directory".into()))?;
                b.mode = Mode::Fixtures {
                    fixtures: fixtures.into(),
                    record: record.parse().map_err(|e: Error| setting(e.to_string()))?,
                };
            }
            (Some(mode), Some(record)) => {
                return Err(Error::Setting {
                    setting: "PGSIM_RECORD_MODE".into(),
                    value: record,
                    reason: format!("PGSIM_MODE={mode} is set too: set one of them"),
                })
            }
            (None, None) => {}
        }
        if let Some(n) = number(&lookup, "PGSIM_MAX_CONNECTIONS", "a number of connections")? {
            b.pool.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number(&lookup, "PGSIM_MIN_IDLE", "a number of connections")? {
            b.pool.min_idle = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = number(&lookup, "PGSIM_CONNECT_TIMEOUT_MS", "milliseconds")? {
            b.pool.connect_timeout = Duration::from_millis(ms);
        } else if let Some(s) = number(&lookup, "PGCONNECT_TIMEOUT", "seconds")? {
            b.pool.connect_timeout = Duration::from_secs(s);
        }
        if let Some(ms) = number(&lookup, "PGSIM_ACQUIRE_TIMEOUT_MS", "milliseconds")? {
            b.pool.acquire_timeout = Duration::from_millis(ms);
        }
        if let Some(s) = number(&lookup, "PGSIM_IDLE_TIMEOUT_S", "seconds")? {
            b.pool.idle_timeout = (s > 0).then(|| Duration::from_secs(s));
        }
        if let Some(s) = number(&lookup, "PGSIM_MAX_LIFETIME_S", "seconds")? {
            b.pool.max_lifetime = (s > 0).then(|| Duration::from_secs(s));
        }
        if let Some(ms) = number(&lookup, "PGSIM_STATEMENT_TIMEOUT_MS", "milliseconds")? {
            b.statement_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(n) = number(&lookup, "PGSIM_MAX_TENANT_POOLS", "a number of pools")? {
            b.max_tenant_pools = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(b)
    }
}

fn parse_mode(value: &str, fixtures: Option<String>) -> Result<Mode> {
    let needs_fixtures = |mode: &str| Error::Setting {
        setting: "PGSIM_MODE".into(),
        value: value.to_owned(),
        reason: format!("{mode} mode needs PGSIM_FIXTURES, the fixture directory"),
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "live" => Ok(Mode::Live),
        "record" => Ok(Mode::Record {
            fixtures: fixtures.ok_or_else(|| needs_fixtures("record"))?.into(),
        }),
        "replay" => Ok(Mode::Replay {
            fixtures: fixtures.ok_or_else(|| needs_fixtures("replay"))?.into(),
        }),
        _ => Err(Error::Setting {
            setting: "PGSIM_MODE".into(),
            value: value.to_owned(),
            reason: "expected live, record or replay".into(),
        }),
    }
}

fn number(lookup: &impl Fn(&str) -> Option<String>, var: &str, unit: &str) -> Result<Option<u64>> {
    let Some(value) = lookup(var) else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| Error::Setting {
            setting: var.to_owned(),
            value,
            reason: format!("expected a whole number of {unit}"),
        })
}

/// A `key=value` connection string from libpq's `PG*` variables, when any
/// is set.
fn libpq_url(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<String>> {
    let parts = [
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("dbname", "PGDATABASE"),
    ];
    if parts.iter().all(|(_, var)| lookup(var).is_none()) {
        return Ok(None);
    }
    number(lookup, "PGPORT", "a port")?;
    let mut url = String::new();
    for (key, var) in parts {
        if let Some(value) = lookup(var) {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            url.push_str(&format!("{key}='{quoted}' "));
        }
    }
    Ok(Some(url.trim_end().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Result<ClientBuilder> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ClientBuilder::from_lookup(|k| map.get(k).cloned())
    }

    fn setting_error(r: Result<ClientBuilder>) -> (String, String, String) {
        match r {
            Err(Error::Setting {
                setting,
                value,
                reason,
            }) => (setting, value, reason),
            other => panic!("expected a setting error, got {other:?}"),
        }
    }

    #[test]
    fn reads_every_pgsim_variable() {
        let b = env(&[
            ("PGSIM_URL", "postgres://app:pw@db/app"),
            ("DATABASE_URL", "postgres://other@elsewhere/x"),
            ("PGSIM_MODE", "Replay"),
            ("PGSIM_FIXTURES", "fixtures/app"),
            ("PGSIM_MAX_CONNECTIONS", "4"),
            ("PGSIM_MIN_IDLE", "2"),
            ("PGSIM_CONNECT_TIMEOUT_MS", "1500"),
            ("PGSIM_ACQUIRE_TIMEOUT_MS", "200"),
            ("PGSIM_IDLE_TIMEOUT_S", "0"),
            ("PGSIM_MAX_LIFETIME_S", "60"),
            ("PGSIM_STATEMENT_TIMEOUT_MS", "250"),
            ("PGSIM_MAX_TENANT_POOLS", "3"),
        ])
        .unwrap();
        let url = b.url.as_ref().unwrap();
        assert_eq!(url.text, "postgres://app@db/app");
        assert_eq!(url.password.as_ref().unwrap().expose(), b"pw");
        assert_eq!(
            b.mode,
            Mode::Replay {
                fixtures: "fixtures/app".into()
            }
        );
        assert_eq!((b.pool.max_connections, b.pool.min_idle), (4, 2));
        assert_eq!(b.pool.connect_timeout, Duration::from_millis(1500));
        assert_eq!(b.pool.acquire_timeout, Duration::from_millis(200));
        assert_eq!(b.pool.idle_timeout, None);
        assert_eq!(b.pool.max_lifetime, Some(Duration::from_secs(60)));
        assert_eq!(b.statement_timeout, Some(Duration::from_millis(250)));
        assert_eq!(b.max_tenant_pools, 3);
        assert!(b.pool_settings().is_ok());
    }

    #[test]
    fn falls_back_to_database_url_then_libpq_variables() {
        let b = env(&[("DATABASE_URL", "postgres://u@h/d")]).unwrap();
        assert_eq!(b.url.as_ref().unwrap().text, "postgres://u@h/d");
        let b = env(&[
            ("PGHOST", "db"),
            ("PGPORT", "6543"),
            ("PGUSER", "o'brien"),
            ("PGPASSWORD", "pw"),
            ("PGCONNECT_TIMEOUT", "3"),
        ])
        .unwrap();
        let url = super::super::ConnectionString::parse(&b.url.as_ref().unwrap().text).unwrap();
        assert_eq!(
            (url.host(), url.port(), url.user()),
            ("db", 6543, "o'brien")
        );
        assert_eq!(b.default_password.as_ref().unwrap().expose(), b"pw");
        assert_eq!(b.pool.connect_timeout, Duration::from_secs(3));
        assert!(env(&[]).unwrap().url.is_none());
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_value() {
        let (var, value, reason) = setting_error(env(&[("PGSIM_MAX_CONNECTIONS", "ten")]));
        assert_eq!(
            (var.as_str(), value.as_str()),
            ("PGSIM_MAX_CONNECTIONS", "ten")
        );
        assert!(reason.contains("whole number"), "{reason}");
        let (var, value, _) = setting_error(env(&[("PGSIM_ACQUIRE_TIMEOUT_MS", "-5")]));
        assert_eq!(
            (var.as_str(), value.as_str()),
            ("PGSIM_ACQUIRE_TIMEOUT_MS", "-5")
        );
        let (var, _, reason) = setting_error(env(&[("PGSIM_MODE", "replay")]));
        assert_eq!(var, "PGSIM_MODE");
        assert!(reason.contains("PGSIM_FIXTURES"), "{reason}");
        let (_, value, reason) = setting_error(env(&[("PGSIM_MODE", "mock")]));
        assert_eq!(value, "mock");
        assert!(reason.contains("live, record or replay"));
        let (var, ..) = setting_error(env(&[("PGHOST", "db"), ("PGPORT", "x")]));
        assert_eq!(var, "PGPORT");
        let e = setting_error(env(&[("PGSIM_MAX_CONNECTIONS", "0")]).and_then(|b| {
            b.pool_settings()?;
            Ok(ClientBuilder::default())
        }));
        assert_eq!(e.0, "max_connections");
    }
}
