//! How roles authenticate to the mock server: trust, cleartext password,
//! MD5 or SCRAM-SHA-256, per role, as `pg_hba.conf` methods do. Secrets come
//! from the builder, the environment or a file; never required on the
//! command line. See docs/LIMITS.md, "Authentication".
//!
//! The roles file (`pgsim serve --auth-file FILE`, `PGSIM_AUTH_FILE`):
//!
//! ```json
//! {
//!   "default": { "method": "scram-sha-256", "password_env": "PGSIM_PASSWORD" },
//!   "roles": {
//!     "app":    { "method": "md5", "password_file": "secrets/app" },
//!     "ci":     { "method": "trust" }
//!   }
//! }
//! ```
//!
//! `password_file` is relative to the roles file; a trailing newline is
//! not part of the password.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::wire::scram::ScramKey;
use crate::Error;

/// An authentication method, as `pg_hba.conf` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// No password (`trust`).
    Trust,
    /// The password in clear (`password`): only sensible over TLS.
    Password,
    /// `md5`: the MD5 of password, role and a per-connection salt.
    Md5,
    /// `scram-sha-256`, PostgreSQL's default since 14.
    ScramSha256,
}

impl std::str::FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "trust" => Ok(AuthMethod::Trust),
            "password" => Ok(AuthMethod::Password),
            "md5" => Ok(AuthMethod::Md5),
            "scram-sha-256" => Ok(AuthMethod::ScramSha256),
            other => Err(format!(
                "unknown authentication method {other:?}: expected trust, password, md5 or scram-sha-256"
            )),
        }
    }
}

/// How one role authenticates.
#[derive(Clone)]
pub(crate) struct RoleAuth {
    pub(crate) method: AuthMethod,
    /// The password (empty for trust).
    pub(crate) password: String,
    /// Its SCRAM key, derived once (for `ScramSha256`).
    pub(crate) scram: Option<ScramKey>,
}

impl std::fmt::Debug for RoleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleAuth")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl RoleAuth {
    pub(crate) fn new(method: AuthMethod, password: String) -> Self {
        let scram = (method == AuthMethod::ScramSha256).then(|| ScramKey::new(&password));
        RoleAuth {
            method,
            password,
            scram,
        }
    }
}

/// Every role's authentication: its own, else the default, else trust.
#[derive(Debug, Clone, Default)]
pub(crate) struct Auth {
    pub(crate) default: Option<RoleAuth>,
    pub(crate) roles: BTreeMap<String, RoleAuth>,
}

impl Auth {
    /// How `role` authenticates.
    pub(crate) fn of(&self, role: &str) -> Option<&RoleAuth> {
        self.roles.get(role).or(self.default.as_ref())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default: Option<EntryFile>,
    #[serde(default)]
    roles: BTreeMap<String, EntryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    method: String,
    password_env: Option<String>,
    password_file: Option<String>,
}

/// Reads a roles file (see the module doc).
pub(crate) fn load_file(path: &Path) -> Result<Auth, Error> {
    let bad = |what: String| Error::Config(format!("{}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let file: File = serde_json::from_str(&text)
        .map_err(|e| bad(format!("line {}, column {}: {e}", e.line(), e.column())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let entry = |who: &str, e: &EntryFile| -> Result<RoleAuth, Error> {
        let method: AuthMethod = e.method.parse().map_err(|m| bad(format!("{who}: {m}")))?;
        let password = match (&e.password_env, &e.password_file, method) {
            (_, _, AuthMethod::Trust) => String::new(),
            (Some(var), None, _) => std::env::var(var)
                .map_err(|_| bad(format!("{who}: environment variable {var} is not set")))?,
            (None, Some(file), _) => {
                let p = base.join(file);
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| bad(format!("{who}: password file {}: {e}", p.display())))?;
                text.strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text)
                    .to_owned()
            }
            _ => {
                return Err(bad(format!(
                    "{who}: method {} needs exactly one of password_env and password_file",
                    e.method
                )))
            }
        };
        Ok(RoleAuth::new(method, password))
    };
    let mut auth = Auth::default();
    if let Some(d) = &file.default {
        auth.default = Some(entry("default", d)?);
    }
    for (role, e) in &file.roles {
        auth.roles
            .insert(role.clone(), entry(&format!("role {role:?}"), e)?);
    }
    Ok(auth)
}
