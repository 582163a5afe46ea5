//! Passwords the toolkit holds: a [`Password`] never prints, never
//! serializes and is zeroized on drop; a [`PasswordProvider`] is asked for
//! one each time a new connection opens, so rotated passwords take effect
//! without a restart.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretSlice};

/// A password: `Debug` shows `Password(***)`, it implements neither
/// `Display` nor `Serialize`, and its bytes are zeroized when it is dropped
/// (a [`secrecy::SecretSlice`] inside).
///
/// ```
/// let p = pgsim::client::Password::new("hunter2");
/// assert_eq!(format!("{p:?}"), "Password(***)");
/// ```
#[derive(Clone)]
pub struct Password(SecretSlice<u8>);

impl Password {
    /// A password from its text (the `String` is moved in, not copied).
    pub fn new(password: impl Into<String>) -> Self {
        Password(SecretSlice::from(password.into().into_bytes()))
    }

    /// A password from raw bytes (PostgreSQL passwords need not be UTF-8).
    pub fn from_bytes(password: Vec<u8>) -> Self {
        Password(SecretSlice::from(password))
    }

    /// The password from environment variable `var` (read without an
    /// intermediate copy left behind); `None` when it is not set.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var_os(var).map(|v| Password::from_bytes(v.into_encoded_bytes()))
    }

    /// The bytes, for the driver's startup only.
    pub(crate) fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Password::new(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Password::new(password)
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// What a password provider may fail with: any error, shown by its
/// `Display` in [`Error::PasswordProvider`](crate::Error::PasswordProvider)
/// (so it should not contain the password).
pub type ProviderError = Box<dyn std::error::Error + Send + Sync>;

type ProviderFuture = Pin<Box<dyn Future<Output = Result<Password, ProviderError>> + Send>>;

/// A callback asked for the password each time a new connection opens (see
/// [`ClientBuilder::password_provider`](crate::ClientBuilder::password_provider)).
/// Cheap to clone; `Debug` shows only that it is there.
#[derive(Clone)]
pub struct PasswordProvider(Arc<dyn Fn() -> ProviderFuture + Send + Sync>);

impl PasswordProvider {
    /// Wraps `f`, an async function returning the current password.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Password, ProviderError>> + Send + 'static,
    {
        PasswordProvider(Arc::new(move || Box::pin(f())))
    }

    /// Asks for the current password.
    pub(crate) async fn get(&self) -> Result<Password, ProviderError> {
        (self.0)().await
    }
}

impl std::fmt::Debug for PasswordProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordProvider")
    }
}

/// Where a pool's connections get their password.
#[derive(Clone, Debug, Default)]
pub(crate) enum Credentials {
    /// None needed (trust, or the server never asks).
    #[default]
    None,
    /// The connection string's, or `PGPASSWORD`.
    Fixed(Password),
    /// Asked for each new connection.
    Provider(PasswordProvider),
}

impl Credentials {
    /// The password for a connection opening now.
    pub(crate) async fn current(&self) -> Result<Option<Password>, ProviderError> {
        match self {
            Credentials::None => Ok(None),
            Credentials::Fixed(p) => Ok(Some(p.clone())),
            Credentials::Provider(provider) => provider.get().await.map(Some),
        }
    }
}

/// The text of the driver error a [`Connector`] returns when the provider
/// failed: deadpool only carries the driver's errors, so the typed error is
/// kept aside and this marks where it applies (pgsim's configurations always
/// have a host, so the driver never says this of them by itself).
const PROVIDER_FAILED_MARK: &str = "host and hostaddr are missing";

/// The last password provider failure of a pool, turned back into
/// [`Error::PasswordProvider`](crate::Error::PasswordProvider) when the pool
/// reports the connection failed.
#[derive(Default)]
pub(crate) struct ProviderFailures {
    last: std::sync::Mutex<Option<String>>,
}

impl ProviderFailures {
    fn note(&self, reason: String) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
    }

    /// The provider's failure, when `e` is the mark a [`Connector`] returned.
    pub(crate) fn explain(&self, e: &tokio_postgres::Error) -> Option<String> {
        let marked = std::error::Error::source(e)
            .is_some_and(|cause| cause.to_string().contains(PROVIDER_FAILED_MARK));
        if !marked {
            return None;
        }
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// deadpool's connect step with the password set on a copy of the driver
/// configuration for each new connection: the pool's own configuration
/// never holds it.
pub(crate) struct Connector<T> {
    pub(crate) tls: T,
    pub(crate) credentials: Credentials,
    pub(crate) failures: Arc<ProviderFailures>,
}

impl<T> deadpool_postgres::Connect for Connector<T>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> Pin<
        Box<
            dyn Future<
                    Output = Result<
                        (tokio_postgres::Client, tokio::task::JoinHandle<()>),
                        tokio_postgres::Error,
                    >,
                > + Send
                + '_,
        >,
    > {
        let mut config = pg_config.clone();
        Box::pin(async move {
            match self.credentials.current().await {
                Ok(Some(password)) => {
                    config.password(password.expose());
                }
                Ok(None) => {}
                Err(e) => {
                    self.failures.note(e.to_string());
                    let marked = tokio_postgres::Config::new()
                        .connect(tokio_postgres::NoTls)
                        .await;
                    match marked {
                        Err(e) => return Err(e),
                        Ok(_) => unreachable!("a configuration without a host connects nowhere"),
                    }
                }
            }
            let (client, connection) = config.connect(self.tls.clone()).await?;
            // The copy with the password goes now, not with the connection.
            drop(config);
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(target: "pgsim.connect", "connection error: {e}");
                }
            });
            Ok((client, task))
        })
    }
}

impl super::ClientBuilder {
    /// Where connections to `url` get their password: the provider when
    /// there is one, else the connection string's (or `PGPASSWORD`).
    pub(crate) fn credentials(&self, url: &super::ConnectionString) -> Credentials {
        match (&self.password_provider, url.password()) {
            (Some(provider), _) => Credentials::Provider(provider.clone()),
            (None, Some(password)) => Credentials::Fixed(password.clone()),
            (None, None) => Credentials::None,
        }
    }

    /// The password for a connection to `url` opening now, for what opens
    /// connections outside the pool (Record mode's upstream check, the
    /// backup tools); a provider's failure is [`Error::PasswordProvider`].
    pub(crate) async fn password_now(
        &self,
        url: &super::ConnectionString,
    ) -> crate::Result<Option<Password>> {
        self.credentials(url)
            .current()
            .await
            .map_err(|e| crate::Error::PasswordProvider {
                user: url.user().to_owned(),
                reason: e.to_string(),
            })
    }
}

/// A connection string as the builder keeps it: the text with any password
/// taken out, and the password on its own.
#[derive(Clone)]
pub(crate) struct SplitUrl {
    /// The connection string without its password.
    pub(crate) text: String,
    pub(crate) password: Option<Password>,
}

impl SplitUrl {
    /// Takes the password out of `url` (in the `user:password@` part, a URL
    /// query's `password=` or a `key=value` string's `password=`); the
    /// original string is zeroized.
    pub(crate) fn new(mut url: String) -> Self {
        let split = SplitUrl {
            text: super::url::strip_password(&url),
            password: super::url::password_of(&url),
        };
        url.zeroize();
        split
    }
}

impl std::fmt::Debug for SplitUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text has no password; show that one was given as redact does.
        let shown = match &self.password {
            Some(_) => format!("{} (password ***)", self.text),
            None => self.text.clone(),
        };
        f.write_str(&shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert_eq!(format!("{:?}", p.clone()), "Password(***)");
        assert_eq!(p.expose(), b"hunter2");
        let provider = PasswordProvider::new(|| async { Ok(Password::new("hunter2")) });
        assert_eq!(format!("{provider:?}"), "PasswordProvider");
    }

    #[test]
    fn split_takes_the_password_out_of_every_form() {
        for (given, text) in [
            ("postgres://app:hunter2@db/app", "postgres://app@db/app"),
            (
                "postgres://app@db/app?password=hunter2&sslmode=disable",
                "postgres://app@db/app?sslmode=disable",
            ),
            ("host=db password='hunter2' user=app", "host=db user=app"),
            ("host=db user=app password=hunter2", "host=db user=app"),
        ] {
            let split = SplitUrl::new(given.to_owned());
            assert_eq!(split.text, text, "{given}");
            let password = split.password.as_ref().map(Password::expose);
            assert_eq!(password, Some(&b"hunter2"[..]), "{given}");
            let shown = format!("{split:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let split = SplitUrl::new("postgres://app@db/app".into());
        assert!(split.password.is_none());
    }

    #[tokio::test]
    async fn a_provider_is_asked_each_time() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let provider = PasswordProvider::new(move || {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok(Password::new(format!("pw{n}"))) }
        });
        assert_eq!(provider.get().await.unwrap().expose(), b"pw0");
        assert_eq!(provider.get().await.unwrap().expose(), b"pw1");
    }
}
