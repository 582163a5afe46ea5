//! The startup phase: SSLRequest/GSSENCRequest refused with `N`, a
//! CancelRequest routed to its connection, the startup packet, password
//! authentication, then AuthenticationOk, ParameterStatus, BackendKeyData
//! and ReadyForQuery as the recorded server sent them.

use std::sync::Arc;

use super::{auth, ConnError, Io};
use crate::fixture::ErrorFields;
use crate::protocol::names::startup_name;
use crate::replay::DatabaseIndex;
use crate::server::limits::Slot;
use crate::server::Shared;
use crate::wire::{self, Frontend, TxStatus, WireError};

/// Runs the startup phase; `None` when the connection ends in it.
pub(super) async fn handshake<'a>(
    io: &mut Io,
    shared: &'a Arc<Shared>,
    secret: i32,
) -> Result<Option<Started<'a>>, ConnError> {
    let refuse = |io: &mut Io, f: ErrorFields| -> Result<Option<Started<'a>>, ConnError> {
        wire::put_error(&mut io.out, f.to_wire())?;
        Ok(None)
    };
    let (major, minor, parameters) = loop {
        let Some(frame) = io.frame(true, None).await? else {
            return Ok(None);
        };
        match wire::decode_startup(frame)? {
            Frontend::SslRequest if shared.tls.is_some() && !io.stream.is_tls() => {
                // As PostgreSQL: bytes pipelined after SSLRequest cannot be
                // trusted (they were sent before encryption began).
                if !io.inbuf.is_empty() {
                    return Err(WireError::Malformed {
                        kind: None,
                        reason: "received unencrypted data after SSL request".into(),
                    }
                    .into());
                }
                wire::put_ssl_accepted(&mut io.out)?;
                io.flush().await?;
                if let Some(tls) = &shared.tls {
                    if io.stream.upgrade(tls).await.is_err() {
                        // A failed handshake: nothing more can be said.
                        return Ok(None);
                    }
                }
            }
            Frontend::SslRequest | Frontend::GssEncRequest => wire::put_ssl_refused(&mut io.out)?,
            Frontend::Cancel { pid, secret } => {
                shared.cancels.cancel(pid, secret);
                return Ok(None);
            }
            Frontend::Startup {
                major,
                minor,
                parameters,
            } => break (major, minor, parameters),
            other => {
                return Err(WireError::Malformed {
                    kind: None,
                    reason: format!("unexpected {other:?} before startup"),
                }
                .into())
            }
        }
    };
    if major != 3 {
        let f = ErrorFields::fatal(
            "0A000",
            format!("unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"),
        );
        return refuse(io, f);
    }
    if let Some(refused) = shared.faults.on_connect() {
        return refuse(io, refused);
    }
    let unsupported: Vec<String> = parameters
        .keys()
        .filter(|k| k.starts_with("_pq_."))
        .cloned()
        .collect();
    if minor > 0 || !unsupported.is_empty() {
        wire::put_negotiate_protocol(&mut io.out, unsupported)?;
    }
    // As PostgreSQL, names are cut to 63 bytes before anything uses them.
    // An empty name counts as none (the database then defaults to the user).
    let Some(user) = parameters
        .get("user")
        .filter(|u| !u.is_empty())
        .map(|u| startup_name(u))
    else {
        let f = ErrorFields::fatal(
            "28000",
            "no PostgreSQL user name specified in startup packet".into(),
        );
        return refuse(io, f);
    };
    let database = parameters
        .get("database")
        .filter(|d| !d.is_empty())
        .map_or_else(|| user.clone(), |d| startup_name(d));
    // As max_connections: checked once the startup packet is read.
    let Some(slot) = shared.slots.take(shared.limits.max_connections) else {
        let f = ErrorFields::fatal("53300", "sorry, too many clients already".into());
        return refuse(io, f);
    };

    // A role exists when a recorded session connected as it. As in
    // PostgreSQL, a password method asks an unknown role for its password
    // and then refuses it as a wrong one; trust says it does not exist.
    let known = shared.any_role || shared.replay.has_role(&user);
    let cert = match &shared.tls {
        Some(tls) if io.stream.is_tls() => Some(tls.cert_pem.as_slice()),
        _ => None,
    };
    match auth::authenticate(io, &user, shared.auth.of(&user), known, cert).await? {
        auth::Outcome::Authenticated => {}
        auth::Outcome::Refused(f) => return refuse(io, f),
        auth::Outcome::Gone => return Ok(None),
    }
    if !known {
        return refuse(
            io,
            ErrorFields::fatal("28000", format!("role \"{user}\" does not exist")),
        );
    }
    let Some(db) = shared.replay.database(&database) else {
        return refuse(io, unknown_database(shared, &database));
    };
    if let Some(err) = &db.startup_error {
        return refuse(io, err.clone());
    }
    wire::put_auth_ok(&mut io.out)?;
    for (name, value) in &db.parameters {
        // As PostgreSQL does, application_name reports the client's own.
        let value = match name.as_str() {
            "application_name" => parameters.get(name).map_or("", String::as_str),
            _ => value.as_str(),
        };
        wire::put_parameter_status(&mut io.out, name, value)?;
    }
    wire::put_backend_key(&mut io.out, db.backend_pid, secret)?;
    wire::put_ready(&mut io.out, TxStatus::Idle)?;
    Ok(Some(Started {
        db,
        scope: crate::protocol::scope::at_startup(&parameters),
        role: (!shared.any_role).then(|| user.clone()),
        user,
        slot,
    }))
}

/// A connection past its startup.
pub(super) struct Started<'a> {
    pub(super) db: &'a DatabaseIndex,
    /// Its `pgsim.scope` from the startup packet.
    pub(super) scope: Option<String>,
    /// Its role, which answers are chosen by (`None`: any role's).
    pub(super) role: Option<String>,
    /// The role it logged in as (also under `any_role`), for its span.
    pub(super) user: String,
    /// Its connection slot (`max_connections`), held while it lives.
    pub(super) slot: Slot<'a>,
}

/// 3D000 as PostgreSQL words it; when the only recordings of that database
/// were refused at load, the error says so instead of pretending it never
/// existed.
fn unknown_database(shared: &Shared, database: &str) -> ErrorFields {
    let refused: Vec<&str> = shared
        .replay
        .rejected()
        .iter()
        .filter(|r| r.database.as_deref() == Some(database))
        .map(|r| r.error.as_str())
        .collect();
    if refused.is_empty() {
        return ErrorFields::fatal("3D000", format!("database \"{database}\" does not exist"));
    }
    let mut f = ErrorFields::fatal(
        crate::replay::SQLSTATE_NO_RECORDING,
        format!("pgsim: every recording of database \"{database}\" was refused at load"),
    );
    f.0.insert("detail".into(), refused.join("; "));
    f
}
