//! Connection strings: parsed once, validated, and never printed with their
//! password.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};

use super::secret::Password;
use crate::server::percent_encode;
use crate::Error;

/// The longest database or role name PostgreSQL keeps (`NAMEDATALEN - 1`).
pub const MAX_NAME_BYTES: usize = 63;

/// A validated PostgreSQL connection string: one TCP host, a port, a user
/// and a database.
///
/// Accepts `postgres://` and `postgresql://` URLs and libpq `key=value`
/// strings, as tokio-postgres does. A missing port is 5432 and a missing
/// database is the user's name, as in libpq. Unix-socket and multi-host
/// strings are refused: pgsim records and replays one server per URL.
///
/// `Debug` and `Display` show the password as `***`; it is kept apart from
/// the driver configuration, as a [`Password`], and set only on the copy of
/// the configuration each new connection is opened with.
///
/// ```
/// let url: pgsim::ConnectionString = "postgres://app:s3cret@db:6432/shop".parse()?;
/// assert_eq!((url.host(), url.port(), url.user(), url.database()), ("db", 6432, "app", "shop"));
/// assert_eq!(url.to_string(), "postgres://app:***@db:6432/shop");
/// # Ok::<(), pgsim::Error>(())
/// ```
#[derive(Clone)]
pub struct ConnectionString {
    /// The driver configuration, without the password.
    config: tokio_postgres::Config,
    password: Option<Password>,
    host: String,
    port: u16,
    user: String,
    database: String,
    /// libpq's `sslmode` (default `prefer`).
    ssl: crate::SslMode,
    /// `sslrootcert`: the CA certificates trusted by `verify-ca` and
    /// `verify-full` (default: the webpki roots).
    root_cert: Option<std::path::PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of a connection string (URL query
/// or `key=value` form): tokio-postgres knows neither `verify-ca`,
/// `verify-full` nor `sslrootcert`; the toolkit's TLS connector does.
pub(crate) fn take_tls_settings(s: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    if let Some((base, query)) = s.split_once('?').filter(|_| s.contains("://")) {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                match k {
                    "sslmode" => mode = Some(percent_decode(v)),
                    "sslrootcert" => root = Some(percent_decode(v)),
                    _ => return true,
                }
                false
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (rest, mode, root);
    }
    if s.contains("://") {
        return (s.to_owned(), None, None);
    }
    static KV: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let kv = KV.get_or_init(|| {
        regex::Regex::new(r"(?:^|\s)(sslmode|sslrootcert)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")
            .unwrap_or_else(|_| unreachable!())
    });
    for c in kv.captures_iter(s) {
        let value = c[2].trim_matches('\'').to_owned();
        match &c[1] {
            "sslmode" => mode = Some(value),
            _ => root = Some(value),
        }
    }
    (kv.replace_all(s, "").into_owned(), mode, root)
}

/// `%XX` escapes of a URL query value decoded.
fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

impl ConnectionString {
    /// Parses and validates `s`. Errors name what is wrong and show `s` with
    /// its password hidden.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let fail = |reason: String| Error::Url {
            url: redact(s),
            reason,
        };
        if let Some((scheme, _)) = s.split_once("://") {
            if scheme != "postgres" && scheme != "postgresql" {
                return Err(fail(format!(
                    "unsupported scheme `{scheme}` (expected postgres:// or postgresql://)"
                )));
            }
        }
        let (rest, ssl, root_cert) = take_tls_settings(s);
        let ssl: crate::SslMode = match ssl {
            Some(m) => m.parse().map_err(fail)?,
            None => crate::SslMode::default(),
        };
        let parse = |s: &str| {
            tokio_postgres::Config::from_str(s).map_err(|e| {
                // The driver puts what is wrong in the source ("invalid value
                // for option `port`"); values are not echoed.
                match std::error::Error::source(&e) {
                    Some(why) => fail(format!("{e}: {why}")),
                    None => fail(e.to_string()),
                }
            })
        };
        let password = parse(&rest)?
            .get_password()
            .map(|p| Password::from_bytes(p.to_vec()));
        let config = parse(&strip_password(&rest))?;
        if config.get_password().is_some() {
            return Err(fail(
                "the password could not be told apart from the rest of the string".into(),
            ));
        }
        let host = match config.get_hosts() {
            [] => "localhost".to_owned(),
            [Host::Tcp(h)] if h.is_empty() => return Err(fail("the host is empty".into())),
            [Host::Tcp(h)] => h.clone(),
            [_] => {
                return Err(fail(
                    "a unix-socket host is not supported: give a TCP host name or address".into(),
                ))
            }
            _ => {
                return Err(fail(
                    "several hosts given: pgsim connects to one server per connection string"
                        .into(),
                ))
            }
        };
        let port = match config.get_ports() {
            [] => 5432,
            [0] => return Err(fail("port 0 is not a port a server listens on".into())),
            [p] => *p,
            _ => {
                return Err(fail(
                    "several ports given: pgsim connects to one server per connection string"
                        .into(),
                ))
            }
        };
        let user = match config.get_user() {
            Some(u) if !u.is_empty() => u.to_owned(),
            _ => {
                return Err(fail(
                    "no user name (postgres://USER@host/db or user=USER)".into(),
                ))
            }
        };
        let database = config.get_dbname().unwrap_or(&user).to_owned();
        check_name("database", &database).map_err(fail)?;
        check_name("user", &user).map_err(fail)?;
        let mut config = config;
        config.ssl_mode(ssl.negotiation());
        Ok(ConnectionString {
            config,
            password,
            host,
            port,
            user,
            database,
            ssl,
            root_cert: root_cert.map(std::path::PathBuf::from),
        })
    }

    /// Host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, an IPv6 address in brackets: what a TCP client or a
    /// URL takes.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Role name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// libpq's `sslmode` of this connection string (default `prefer`).
    pub fn ssl_mode(&self) -> crate::SslMode {
        self.ssl
    }

    /// The TLS connector for connecting to the server itself: `sslmode`'s
    /// verification, trusting `sslrootcert` (else the webpki roots);
    /// `None` for `disable`, which never negotiates.
    pub(crate) fn tls(&self) -> Result<Option<tokio_postgres_rustls::MakeRustlsConnect>, Error> {
        if self.ssl == crate::SslMode::Disable {
            return Ok(None);
        }
        let pem = match &self.root_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| Error::Url {
                url: self.to_string(),
                reason: format!("sslrootcert {}: {e}", path.display()),
            })?),
            None => None,
        };
        crate::tls_connector(self.ssl, pem.as_deref()).map(Some)
    }

    /// `sslmode` and `sslrootcert`, for a recorder that connects upstream
    /// as this connection string says.
    pub(crate) fn tls_settings(&self) -> (crate::SslMode, Option<std::path::PathBuf>) {
        (self.ssl, self.root_cert.clone())
    }

    /// Whether a password is set (the password itself is never exposed).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The password given (in the string, or as a default), for the
    /// connect step.
    pub(crate) fn password(&self) -> Option<&Password> {
        self.password.as_ref()
    }

    /// The same connection string with `password` (replacing any given).
    pub(crate) fn with_password(mut self, password: Option<Password>) -> Self {
        if password.is_some() {
            self.password = password;
        }
        self
    }

    /// The same server and credentials for another database. Any name
    /// PostgreSQL accepts works (spaces, quotes, non-ASCII); an empty or
    /// over-63-byte name is an error.
    pub fn with_database(&self, database: &str) -> Result<Self, Error> {
        check_name("database", database).map_err(|reason| Error::Url {
            url: self.to_string(),
            reason,
        })?;
        let mut next = self.clone();
        next.config.dbname(database);
        next.database = database.to_owned();
        Ok(next)
    }

    /// Sets the password when none was given (libpq's `PGPASSWORD` rule).
    pub(crate) fn default_password(&mut self, password: &Password) {
        if !self.has_password() {
            self.password = Some(password.clone());
        }
    }

    /// The driver configuration for the server itself, with pgsim's
    /// settings applied (and no password: see [`password`](Self::password)).
    pub(crate) fn driver_config(&self, settings: &DriverSettings) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        settings.apply(&mut config);
        config
    }

    /// The same user, database and options at another address: the
    /// recording proxy or the mock server, which speak plaintext (the
    /// password is set per connection, as for the server itself).
    pub(crate) fn driver_config_at(
        &self,
        addr: SocketAddr,
        settings: &DriverSettings,
    ) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(addr.ip().to_string())
            .port(addr.port())
            .user(&self.user)
            .dbname(&self.database)
            .ssl_mode(SslMode::Disable);
        if let Some(o) = self.config.get_options() {
            config.options(o);
        }
        if let Some(a) = self.config.get_application_name() {
            config.application_name(a);
        }
        settings.apply(&mut config);
        config
    }
}

/// What pgsim adds to every connection it opens.
#[derive(Clone, Debug, Default)]
pub(crate) struct DriverSettings {
    pub(crate) connect_timeout: Option<Duration>,
    /// Server settings sent in the startup packet, so they hold from the
    /// first query on and cost no round trip.
    pub(crate) settings: Vec<(String, String)>,
}

impl DriverSettings {
    fn apply(&self, config: &mut tokio_postgres::Config) {
        if let Some(t) = self.connect_timeout {
            config.connect_timeout(t);
        }
        if self.settings.is_empty() {
            return;
        }
        let mut options = config.get_options().unwrap_or_default().to_owned();
        for (name, value) in &self.settings {
            if !options.is_empty() {
                options.push(' ');
            }
            // libpq's rule: backslash-escape spaces and backslashes.
            let value = value.replace('\\', "\\\\").replace(' ', "\\ ");
            options.push_str(&format!("-c {name}={value}"));
        }
        config.options(&options);
    }
}

impl FromStr for ConnectionString {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        ConnectionString::parse(s)
    }
}

impl std::fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let password = if self.has_password() { ":***" } else { "" };
        write!(
            f,
            "postgres://{}{password}@{}/{}",
            percent_encode(&self.user),
            self.address(),
            percent_encode(&self.database)
        )
    }
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnectionString({self})")
    }
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err(format!("the {what} name is empty"))
    } else if name.len() > MAX_NAME_BYTES {
        Err(format!(
            "the {what} name is {} bytes; PostgreSQL allows at most {MAX_NAME_BYTES}",
            name.len()
        ))
    } else if name.contains('\0') {
        Err(format!("the {what} name contains a NUL byte"))
    } else {
        Ok(())
    }
}

/// `s` with any password replaced by `***`: the `user:password@` part of a
/// URL, and `password=` in a URL query or a `key=value` string. Meant for
/// error messages about strings that may not even parse.
///
/// ```
/// assert_eq!(
///     pgsim::client::redact("postgres://app:hunter2@db/app?password=x&sslmode=disable"),
///     "postgres://app:***@db/app?password=***&sslmode=disable"
/// );
/// assert_eq!(pgsim::client::redact("host=db password='a b' user=app"), "host=db password=*** user=app");
/// ```
pub fn redact(s: &str) -> String {
    rewrite_password(s, Some("***"))
}

/// `s` with any password taken out (not masked): what the builder keeps of
/// a connection string, the password going into a [`Password`].
pub(crate) fn strip_password(s: &str) -> String {
    rewrite_password(s, None)
}

/// The password `s` gives, as the driver would read it (decoded); `None`
/// when it gives none or does not parse (then nothing connects with it).
pub(crate) fn password_of(s: &str) -> Option<Password> {
    let (rest, _, _) = take_tls_settings(s);
    let config = tokio_postgres::Config::from_str(&rest).ok()?;
    config
        .get_password()
        .map(|p| Password::from_bytes(p.to_vec()))
}

/// Each password in `s` replaced by `mask`, or removed with its key when
/// `mask` is `None`.
fn rewrite_password(s: &str, mask: Option<&str>) -> String {
    match s.split_once("://") {
        Some((scheme, rest)) => redact_url(scheme, rest, mask),
        None => redact_key_values(s, mask),
    }
}

fn redact_url(scheme: &str, rest: &str, mask: Option<&str>) -> String {
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match (userinfo.split_once(':'), mask) {
            (Some((user, _)), Some(mask)) => format!("{user}:{mask}@{hosts}"),
            (Some((user, _)), None) => format!("{user}@{hosts}"),
            (None, _) => format!("{userinfo}@{hosts}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .filter_map(|pair| match (pair.split_once('='), mask) {
                    (Some((k, _)), Some(mask)) if k.eq_ignore_ascii_case("password") => {
                        Some(format!("{k}={mask}"))
                    }
                    (Some((k, _)), None) if k.eq_ignore_ascii_case("password") => None,
                    _ => Some(pair.to_owned()),
                })
                .collect();
            if query.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", query.join("&"))
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Redacts `password=...` in a libpq `key=value` string, where a value is
/// either a run of non-spaces or a single-quoted string with `\` escapes.
fn redact_key_values(s: &str, mask: Option<&str>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq]
            .rfind(|c: char| c.is_whitespace())
            .map_or(0, |i| i + 1);
        let key = rest[key_start..eq].trim();
        let after = &rest[eq + 1..];
        let value_start = after.len() - after.trim_start().len();
        let value_end = value_start + value_len(&after[value_start..]);
        match mask {
            Some(mask) if key.eq_ignore_ascii_case("password") => {
                out.push_str(&rest[..=eq]);
                out.push_str(&after[..value_start]);
                out.push_str(mask);
            }
            None if key.eq_ignore_ascii_case("password") => {
                // The key goes too, and the space before it.
                out.push_str(rest[..key_start].trim_end());
            }
            _ => {
                out.push_str(&rest[..=eq]);
                out.push_str(&after[..value_end]);
            }
        }
        rest = &after[value_end..];
    }
    out.push_str(rest);
    if mask.is_none() {
        return out.trim().to_owned();
    }
    out
}

fn value_len(v: &str) -> usize {
    let mut chars = v.char_indices();
    match chars.next() {
        Some((_, '\'')) => {
            let mut escaped = false;
            for (i, c) in chars {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '\'' => return i + 1,
                    _ => {}
                }
            }
            v.len()
        }
        _ => v.find(char::is_whitespace).unwrap_or(v.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason(s: &str) -> String {
        match ConnectionString::parse(s) {
            Err(Error::Url { reason, .. }) => reason,
            other => panic!("{s}: expected a URL error, got {other:?}"),
        }
    }

    #[test]
    fn parses_urls_and_key_values_with_libpq_defaults() {
        let u = ConnectionString::parse("postgresql://app@db.example").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.user(), u.database()),
            ("db.example", 5432, "app", "app")
        );
        let k = ConnectionString::parse("host=10.0.0.2 port=6000 user=me dbname='my db'").unwrap();
        assert_eq!(
            (k.host(), k.port(), k.user(), k.database()),
            ("10.0.0.2", 6000, "me", "my db")
        );
        assert_eq!(k.to_string(), "postgres://me@10.0.0.2:6000/my%20db");
    }

    #[test]
    fn refuses_what_it_cannot_serve_and_says_why() {
        assert!(reason("mysql://app@db/app").contains("unsupported scheme `mysql`"));
        assert!(reason("postgres://db/app").contains("no user name"));
        assert!(reason("postgres://app@db:0/app").contains("port 0"));
        let r = reason("postgres://app@db:99999/app");
        assert!(r.contains("port"), "{r}");
        assert!(reason("postgres://app@a,b/app").contains("several hosts"));
        assert!(reason("host=/var/run/postgresql user=app").contains("unix-socket"));
        let long = "x".repeat(64);
        assert!(reason(&format!("postgres://app@db/{long}")).contains("64 bytes"));
    }

    #[test]
    fn errors_never_show_the_password() {
        let e = ConnectionString::parse("postgres://app:hunter2@db:notaport/app").unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app:***@db"), "{shown}");
    }

    #[test]
    fn other_databases_keep_credentials_and_take_any_name() {
        let u = ConnectionString::parse("postgres://app:pw@db/app").unwrap();
        let other = u.with_database("Ünïcode \"quoted\" - db").unwrap();
        assert_eq!(other.database(), "Ünïcode \"quoted\" - db");
        assert!(other.has_password());
        let config = other.driver_config(&DriverSettings::default());
        assert_eq!(config.get_dbname(), Some("Ünïcode \"quoted\" - db"));
        assert!(u.with_database("").is_err());
        assert!(u.with_database(&"d".repeat(64)).is_err());
        assert!(u.with_database(&"d".repeat(63)).is_ok());
    }

    #[test]
    fn statement_timeout_joins_the_startup_options() {
        let u =
            ConnectionString::parse("postgres://app@db/app?options=-c%20search_path%3Dx").unwrap();
        let settings = DriverSettings {
            connect_timeout: None,
            settings: vec![
                ("statement_timeout".into(), "250".into()),
                ("TimeZone".into(), "America/New York".into()),
            ],
        };
        let config = u.driver_config_at("127.0.0.1:7000".parse().unwrap(), &settings);
        assert_eq!(
            config.get_options(),
            Some("-c search_path=x -c statement_timeout=250 -c TimeZone=America/New\\ York")
        );
        assert_eq!(config.get_ports(), &[7000]);
    }

    proptest! {
        #[test]
        fn redaction_hides_any_password(
            password in "[A-Za-z0-9!$&'()*+,;=._~%-]{1,24}",
            user in "[a-z]{1,8}",
        ) {
            let in_url = format!("postgres://{user}:{password}@db:5432/app?sslmode=disable");
            let r = redact(&in_url);
            prop_assert!(!r.contains(&format!(":{password}@")), "{}", r);
            prop_assert!(r.starts_with(&format!("postgres://{user}:***@db:5432/app")), "{}", r);

            let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
            let kv = format!("host=db password='{quoted}' user={user}");
            let r = redact(&kv);
            prop_assert_eq!(r, format!("host=db password=*** user={user}"));
            let in_query = format!("postgres://{user}@db/app?password={}", percent_encode(&password));
            prop_assert_eq!(redact(&in_query), format!("postgres://{user}@db/app?password=***"));
        }

        #[test]
        fn display_never_contains_the_password(password in "Z[A-Za-z0-9]{5,23}") {
            let u = ConnectionString::parse(&format!("postgres://app:{password}@db/app")).unwrap();
            prop_assert!(!u.to_string().contains(&password));
            let debug = format!("{:?}", u);
            prop_assert!(!debug.contains(&password));
        }
    }
}
