//! SCRAM-SHA-256 on the server side: pgwire's implementation (RFC 5802 and
//! 7677, as PostgreSQL speaks it), behind pgsim's own types so pgwire stays
//! in `wire/`. No cryptography is written here.

use pgwire::api::auth::sasl::scram::{
    gen_salted_password, random_nonce, ScramSecret, ScramServerAuth,
    ScramServerAuthWaitingForClientFinal,
};
use pgwire::error::PgWireError;

/// The mechanism name, as AuthenticationSASL lists it.
pub(crate) const MECHANISM: &str = "SCRAM-SHA-256";
/// With channel binding (over TLS).
pub(crate) const MECHANISM_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// PostgreSQL's iteration count (`scram_iterations` default).
const ITERATIONS: usize = 4096;

/// A role's SCRAM secret: its salt and salted password, derived once.
#[derive(Clone)]
pub(crate) struct ScramKey {
    salt: Vec<u8>,
    salted: Vec<u8>,
}

impl std::fmt::Debug for ScramKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramKey(..)")
    }
}

impl ScramKey {
    /// Derives the key of `password` with a fresh random salt.
    pub(crate) fn new(password: &str) -> Self {
        let salt = random_nonce().into_bytes();
        let salted = gen_salted_password(password, &salt, ITERATIONS);
        ScramKey { salt, salted }
    }
}

/// Why a SCRAM exchange failed.
#[derive(Debug)]
pub(crate) enum ScramError {
    /// The proof does not match: a wrong password.
    WrongPassword,
    /// The client's message is not SCRAM as the server expects it.
    Malformed(String),
}

fn failed(e: PgWireError) -> ScramError {
    match e {
        PgWireError::InvalidPassword(_) => ScramError::WrongPassword,
        other => ScramError::Malformed(other.to_string()),
    }
}

/// A SCRAM exchange waiting for the client's final message.
pub(crate) struct ScramServer(ScramServerAuthWaitingForClientFinal);

/// Answers the client-first message: the server-first message to send.
/// `tls_cert` (the server's certificate, PEM) on a TLS connection: the
/// client may bind the channel to it, and one that could but says the
/// server cannot is refused (a downgrade).
pub(crate) fn server_first(
    key: &ScramKey,
    client_first: &[u8],
    tls_cert: Option<&[u8]>,
) -> Result<(String, ScramServer), ScramError> {
    let mut auth = ScramServerAuth::new();
    auth.set_iterations(ITERATIONS);
    if let Some(pem) = tls_cert {
        auth.configure_certificate(pem)
            .map_err(|e| ScramError::Malformed(format!("the server certificate: {e}")))?;
    }
    let secret = ScramSecret::SaltedPassword {
        salt: key.salt.clone(),
        salted_password: key.salted.clone(),
    };
    let (first, waiting) = auth
        .on_client_first_message_with_secret(client_first, secret)
        .map_err(failed)?;
    Ok((first, ScramServer(waiting)))
}

impl ScramServer {
    /// Checks the client-final message: the server-final message to send.
    pub(crate) fn server_final(&self, client_final: &[u8]) -> Result<String, ScramError> {
        self.0.on_client_final_message(client_final).map_err(failed)
    }
}

/// Random bytes for a salt (MD5's 4).
pub(crate) fn random_salt<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(random_nonce().bytes().cycle()) {
        *o = b;
    }
    out
}
