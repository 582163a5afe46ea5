//! The authentication exchange of one connection, as PostgreSQL runs it
//! for each `pg_hba.conf` method (messages and errors worded alike).

use super::{ConnError, Io};
use crate::fixture::ErrorFields;
use crate::server::auth::{AuthMethod, RoleAuth};
use crate::wire::scram::{self, ScramError, ScramKey};
use crate::wire::{self, Frontend};

/// How authentication ended.
pub(super) enum Outcome {
    Authenticated,
    /// Refused with this FATAL error (already worded as PostgreSQL's).
    Refused(ErrorFields),
    /// The client went away.
    Gone,
}

fn wrong_password(user: &str) -> ErrorFields {
    ErrorFields::fatal(
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )
}

/// The next password-type message's body, or `None` when the client left.
async fn password_message(io: &mut Io) -> Result<Option<bytes::Bytes>, ConnError> {
    let Some(frame) = io.frame(false, None).await? else {
        return Ok(None);
    };
    match wire::decode_frontend(frame)? {
        Frontend::Password(p) => Ok(Some(p)),
        other => Err(wire::WireError::Malformed {
            kind: None,
            reason: format!("expected a password message, got {other:?}"),
        }
        .into()),
    }
}

/// Authenticates `user` the way `how` says (`None`: trust). A role that
/// does not exist (`known` false) is still asked for its password, as
/// PostgreSQL asks, and then refused as a wrong password.
pub(super) async fn authenticate(
    io: &mut Io,
    user: &str,
    how: Option<&RoleAuth>,
    known: bool,
    tls_cert: Option<&[u8]>,
) -> Result<Outcome, ConnError> {
    let Some(how) = how.filter(|h| h.method != AuthMethod::Trust) else {
        return Ok(Outcome::Authenticated);
    };
    let matches = |ok: bool| {
        if ok && known {
            Outcome::Authenticated
        } else {
            Outcome::Refused(wrong_password(user))
        }
    };
    match how.method {
        AuthMethod::Trust => Ok(Outcome::Authenticated),
        AuthMethod::Password => {
            wire::put_auth_cleartext(&mut io.out)?;
            let Some(p) = password_message(io).await? else {
                return Ok(Outcome::Gone);
            };
            // PasswordMessage: the password and its NUL.
            Ok(matches(
                p.strip_suffix(b"\0") == Some(how.password.as_bytes()),
            ))
        }
        AuthMethod::Md5 => {
            let salt = scram::random_salt::<4>();
            wire::put_auth_md5(&mut io.out, salt)?;
            let Some(p) = password_message(io).await? else {
                return Ok(Outcome::Gone);
            };
            let expected = postgres_protocol::authentication::md5_hash(
                user.as_bytes(),
                how.password.as_bytes(),
                salt,
            );
            Ok(matches(p.strip_suffix(b"\0") == Some(expected.as_bytes())))
        }
        AuthMethod::ScramSha256 => {
            // An unknown role gets a key nobody knows, as PostgreSQL's
            // mock authentication does: derived once per process, so a
            // stream of unknown roles costs no key derivation each.
            static UNKNOWN: std::sync::OnceLock<ScramKey> = std::sync::OnceLock::new();
            let key = match (&how.scram, known) {
                (Some(key), true) => key,
                _ => UNKNOWN.get_or_init(|| {
                    ScramKey::new(&String::from_utf8_lossy(&scram::random_salt::<24>()))
                }),
            };
            scram_exchange(io, user, key, tls_cert).await
        }
    }
}

/// SCRAM-SHA-256, and over TLS SCRAM-SHA-256-PLUS (channel binding to
/// the server's certificate, `tls-server-end-point`), as PostgreSQL offers.
async fn scram_exchange(
    io: &mut Io,
    user: &str,
    key: &ScramKey,
    tls_cert: Option<&[u8]>,
) -> Result<Outcome, ConnError> {
    let malformed = |why: String| {
        Outcome::Refused(ErrorFields::fatal(
            "08P01",
            format!("malformed SCRAM message ({why})"),
        ))
    };
    let offered: &[&str] = match tls_cert {
        Some(_) => &[scram::MECHANISM_PLUS, scram::MECHANISM],
        None => &[scram::MECHANISM],
    };
    wire::put_auth_sasl(&mut io.out, offered)?;
    let Some(initial) = password_message(io).await? else {
        return Ok(Outcome::Gone);
    };
    let (mechanism, first) = wire::sasl_initial(&initial)?;
    if !offered.contains(&mechanism.as_str()) {
        return Ok(Outcome::Refused(ErrorFields::fatal(
            "08P01",
            "client selected an invalid SASL authentication mechanism".into(),
        )));
    }
    let (server_first, waiting) = match scram::server_first(key, &first, tls_cert) {
        Ok(x) => x,
        Err(ScramError::WrongPassword) => return Ok(Outcome::Refused(wrong_password(user))),
        Err(ScramError::Malformed(why)) => return Ok(malformed(why)),
    };
    wire::put_auth_sasl_continue(&mut io.out, server_first.as_bytes())?;
    let Some(client_final) = password_message(io).await? else {
        return Ok(Outcome::Gone);
    };
    match waiting.server_final(&client_final) {
        Ok(server_final) => {
            wire::put_auth_sasl_final(&mut io.out, server_final.as_bytes())?;
            Ok(Outcome::Authenticated)
        }
        Err(ScramError::WrongPassword) => Ok(Outcome::Refused(wrong_password(user))),
        Err(ScramError::Malformed(why)) => Ok(malformed(why)),
    }
}
