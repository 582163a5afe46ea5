//! Running pg_dump and pg_restore: the libpq environment that points them
//! where the client's connections go, and their failures.

use std::ffi::OsString;
use std::path::Path;

use super::BackupError;
use crate::client::Client;
use crate::Result;

/// `dbname='...'`: a connection-string fragment naming only the database,
/// so a name with `=` in it is not taken for a connection string.
pub(super) fn conninfo_dbname(database: &str) -> String {
    format!(
        "dbname='{}'",
        database.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// libpq's environment for `database` on the client's server (its
/// recorder or mock server in Record and Replay mode), with the client's
/// user, password (the connection string's, `PGPASSWORD`'s or the password
/// provider's, asked now), server settings (`PGOPTIONS`) and TLS mode.
async fn libpq_env(client: &Client, database: &str) -> Result<Vec<(&'static str, OsString)>> {
    let inner = &client.inner;
    let url = inner.url.with_database(database)?;
    let driver = inner.builder.driver_settings();
    let (config, (ssl, root)) = match inner.backend.addr() {
        None => (url.driver_config(&driver), url.tls_settings()),
        Some(addr) => (
            url.driver_config_at(addr, &driver),
            (crate::SslMode::Disable, None),
        ),
    };
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => url.host().to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(url.port());
    let mut env: Vec<(&'static str, OsString)> = vec![
        ("PGHOST", host.into()),
        ("PGPORT", port.to_string().into()),
        ("PGUSER", url.user().into()),
        ("PGDATABASE", database.into()),
        ("PGSSLMODE", ssl_mode_name(ssl).into()),
    ];
    if let Some(password) = inner.builder.password_now(&url).await? {
        env.push(("PGPASSWORD", os_string(password.expose())));
    }
    if let Some(root) = root {
        env.push(("PGSSLROOTCERT", root.into()));
    }
    if let Some(options) = config.get_options() {
        env.push(("PGOPTIONS", options.into()));
    }
    if let Some(name) = config.get_application_name() {
        env.push(("PGAPPNAME", name.into()));
    }
    if let Some(timeout) = config.get_connect_timeout() {
        // libpq takes whole seconds (and at least 2).
        let secs = timeout.as_secs_f64().ceil().max(2.0) as u64;
        env.push(("PGCONNECT_TIMEOUT", secs.to_string().into()));
    }
    Ok(env)
}

#[cfg(unix)]
fn os_string(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(bytes.to_vec())
}

#[cfg(not(unix))]
fn os_string(bytes: &[u8]) -> OsString {
    String::from_utf8_lossy(bytes).into_owned().into()
}

fn ssl_mode_name(mode: crate::SslMode) -> &'static str {
    match mode {
        crate::SslMode::Disable => "disable",
        crate::SslMode::Prefer => "prefer",
        crate::SslMode::Require => "require",
        crate::SslMode::VerifyCa => "verify-ca",
        crate::SslMode::VerifyFull => "verify-full",
    }
}

/// Runs `tool` with `args` and the libpq environment for `database` (the
/// caller's own `PG*` variables removed, so only the client's settings
/// apply); its stderr, redacted, is the error when it fails.
pub(super) async fn run_tool(
    client: &Client,
    tool: &Path,
    args: &[OsString],
    database: &str,
) -> Result<()> {
    let env = libpq_env(client, database).await?;
    let mut command = tokio::process::Command::new(tool);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            command.env_remove(name);
        }
    }
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = command
        .output()
        .await
        .map_err(|source| BackupError::Start {
            tool: tool.to_owned(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let password = env
        .iter()
        .find(|(k, _)| *k == "PGPASSWORD")
        .map(|(_, v)| v.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let redacted: Vec<String> = stderr
        .lines()
        .map(|line| {
            let line = crate::client::redact(line);
            match &password {
                Some(p) => line.replace(p.as_str(), "***"),
                None => line,
            }
        })
        .collect();
    Err(BackupError::Tool {
        tool: tool.to_owned(),
        status: output.status.to_string(),
        stderr: redacted.join("\n"),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_name_is_never_a_connection_string() {
        assert_eq!(conninfo_dbname("shop"), "dbname='shop'");
        assert_eq!(conninfo_dbname("a=b 'c'\\"), r"dbname='a=b \'c\'\\'");
    }
}
