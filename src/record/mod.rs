//! The recording proxy: clients connect to it as to PostgreSQL; it forwards
//! every byte to the upstream server unchanged (authentication included, so
//! it never needs or keeps a password) and writes each exchange to fixtures.

mod metrics;
mod mode;
mod tap;
mod writer;

pub use mode::{Plan, RecordMode};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::Instrument;

use self::tap::{Tap, TapEvent};
use self::writer::{Writer, WriterMsg};
use crate::fixture::{validate_exchange, Session, FORMAT_VERSION};
use crate::listen::listen;
use crate::protocol::names::startup_name;
use crate::wire::{self, Frontend};
use crate::Error;

/// What a recording wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Client sessions proxied.
    pub sessions: u64,
    /// Exchanges written.
    pub exchanges: u64,
    /// Fixture files written.
    pub files: Vec<PathBuf>,
    /// Problems writing fixtures (nothing is silently dropped).
    pub errors: Vec<String>,
    /// Requests the client started that were not written, each with the
    /// session, the SQL and the reason.
    pub lost: Vec<String>,
    /// What the record mode did with the directory (sessions already
    /// recorded and not written again, the old set replaced...).
    pub notes: Vec<String>,
}

impl std::fmt::Display for RecordSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "pgsim record: {} sessions, {} exchanges, {} fixture files",
            self.sessions,
            self.exchanges,
            self.files.len()
        )?;
        if !self.lost.is_empty() {
            writeln!(f, "  {} requests not written:", self.lost.len())?;
        }
        for l in &self.lost {
            writeln!(f, "  not written: {l}")?;
        }
        for n in &self.notes {
            writeln!(f, "  {n}")?;
        }
        for e in &self.errors {
            writeln!(f, "  error: {e}")?;
        }
        Ok(())
    }
}

/// Builds a [`Recorder`].
#[derive(Debug, Default)]
pub struct RecorderBuilder {
    upstream: Option<String>,
    fixtures: Option<PathBuf>,
    listen: Option<SocketAddr>,
    /// `None`: [`RecordMode::All`].
    mode: Option<RecordMode>,
    upstream_tls: Option<(crate::SslMode, Option<PathBuf>)>,
    tls: Option<crate::TlsSource>,
    metrics_listen: Option<SocketAddr>,
}

impl RecorderBuilder {
    /// The real server, as `host:port` or a `postgres://` URL. The proxy
    /// connects to its host and port; clients authenticate themselves,
    /// through the proxy. The URL's user and password are only what
    /// [`Recorder::url_for`] puts in the URLs it gives (default user
    /// `postgres`, no password).
    pub fn upstream(mut self, upstream: impl Into<String>) -> Self {
        self.upstream = Some(upstream.into());
        self
    }

    /// How the proxy connects to the upstream, as libpq's `sslmode` and
    /// `sslrootcert` (also read from the upstream URL's own `sslmode` and
    /// `sslrootcert`); without either, in plaintext. Over TLS the upstream
    /// offers SCRAM with channel binding, which a client of the proxy cannot
    /// bind to (its TLS channel ends at the proxy): the proxy offers its
    /// clients plain SCRAM-SHA-256 only, which libpq's default
    /// `channel_binding=prefer` accepts over a plaintext link; a client
    /// whose own link is TLS needs `channel_binding=disable`.
    pub fn upstream_tls(mut self, mode: crate::SslMode, root_cert: Option<PathBuf>) -> Self {
        self.upstream_tls = Some((mode, root_cert));
        self
    }

    /// Answers clients' SSLRequest with `S` and speaks TLS to them with this
    /// certificate (the recording is of the decrypted protocol); without
    /// it the proxy answers `N`.
    pub fn tls(mut self, source: crate::TlsSource) -> Self {
        self.tls = Some(source);
        self
    }

    /// The directory fixtures are written to (created if missing).
    pub fn fixtures(mut self, dir: impl Into<PathBuf>) -> Self {
        self.fixtures = Some(dir.into());
        self
    }

    /// The address to listen on (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// What to do with fixtures already in the directory (default
    /// [`RecordMode::All`]: the run's recording replaces them when it ends).
    /// `New` adds only sessions the directory does not already answer;
    /// `Once` records only into an empty directory; `None` is refused (a
    /// recorder records).
    pub fn record_mode(mut self, mode: RecordMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Answers `GET /metrics` on `addr` (port 0: any free one; see
    /// [`Recorder::metrics_addr`]) in the Prometheus text format: sessions,
    /// exchanges recorded and lost, write errors, upstream latency
    /// (docs/LIMITS.md, "Metrics"). Without it the same text is still had
    /// from [`Recorder::metrics_text`].
    pub fn metrics_listen(mut self, addr: SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }

    /// Binds and starts proxying.
    pub async fn start(self) -> Result<Recorder, Error> {
        let upstream = Upstream::parse(self.upstream.as_deref().unwrap_or("127.0.0.1:5432"))?;
        let dir = self
            .fixtures
            .ok_or_else(|| Error::Config("the recorder needs a fixtures directory".into()))?;
        let asked = self.mode.unwrap_or(RecordMode::All);
        let mode = match asked.plan(&dir, false)? {
            Plan::Record(mode) => mode,
            Plan::Replay if asked == RecordMode::Once => {
                return Err(Error::Config(format!(
                    "record mode once: {} already holds fixtures; nothing to record (replay them)",
                    dir.display()
                )))
            }
            Plan::Replay => {
                return Err(Error::Config(
                    "record mode none records nothing: a recorder needs all, new or once".into(),
                ))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| crate::fixture::FixtureError::io(&dir, e))?;
        crate::fixture::finish_replacement(&dir)?;
        let has_fixtures = !crate::fixture::fixture_files(&dir)?.is_empty();
        let staging = (has_fixtures).then(|| dir.join(STAGING));
        if let Some(s) = &staging {
            if s.exists() {
                return Err(Error::Config(format!(
                    "{} holds an earlier run's unfinished recording: look at it, then delete it (pgsim never deletes a recording it did not apply)",
                    s.display()
                )));
            }
            std::fs::create_dir_all(s).map_err(|e| crate::fixture::FixtureError::io(s, e))?;
        }
        // `new` numbers sessions and exchanges after the directory's own
        // (its files join them); `all` starts a fresh set.
        let known = match (mode, has_fixtures) {
            (RecordMode::New, true) => Some(mode::Known::new(&crate::fixture::load_dir(&dir)?)),
            _ => None,
        };
        let numbering = if mode == RecordMode::New {
            &dir
        } else {
            staging.as_ref().unwrap_or(&dir)
        };
        let (writer, next_seq) =
            Writer::start(staging.clone().unwrap_or_else(|| dir.clone()), numbering)?;
        let finish = Finish {
            dir: dir.clone(),
            staging,
            mode,
            known,
        };
        let (upstream_ssl, root) = match self.upstream_tls {
            Some((mode, root)) => (Some(mode), root),
            None => (upstream.ssl, upstream.root_cert.clone()),
        };
        let upstream_tls = match upstream_ssl {
            None | Some(crate::SslMode::Disable) => None,
            Some(mode) => {
                let root_pem = match &root {
                    Some(path) => Some(std::fs::read(path).map_err(|e| {
                        Error::Config(format!("upstream sslrootcert {}: {e}", path.display()))
                    })?),
                    None => None,
                };
                Some(Arc::new(crate::tls::client_config(
                    mode,
                    root_pem.as_deref(),
                )?))
            }
        };
        let client_tls = self.tls.as_ref().map(crate::tls::Tls::new).transpose()?;
        let shared = Arc::new(Shared {
            closing: watch::channel(None).0,
            upstream_ssl,
            upstream_tls,
            client_tls,
            upstream: upstream.addr,
            writer,
            seq: AtomicU64::new(next_seq),
            rules: crate::fixture::Rules::load(&dir)?,
            sessions: AtomicU64::new(0),
            active: AtomicU64::new(0),
            upstream_latency: crate::metrics::Histogram::default(),
            exchanges: AtomicU64::new(0),
            redacted: AtomicU64::new(0),
            lost: Mutex::new(Vec::new()),
        });
        let collector = metrics::Collector {
            shared: Arc::clone(&shared),
        };
        let metrics = crate::metrics::Endpoint::start(collector, self.metrics_listen).await?;
        let for_sessions = Arc::clone(&shared);
        let listening = listen(self.listen, move |stream| {
            proxy(stream, Arc::clone(&for_sessions))
        })
        .await?;
        Ok(Recorder {
            addr: listening.addr,
            user: upstream.user,
            password: upstream.password,
            finish,
            shared,
            stop: listening.stop,
            task: Some(listening.task),
            metrics,
        })
    }
}

/// Where a run that must not mix with the directory's fixtures records
/// (the loader skips dot directories).
const STAGING: &str = ".pgsim-recording";

/// What happens to a staged recording when the run ends.
struct Finish {
    dir: PathBuf,
    /// `None`: the directory was empty and is written directly.
    staging: Option<PathBuf>,
    mode: RecordMode,
    /// `new`: what the directory already answers.
    known: Option<mode::Known>,
}

impl Finish {
    fn apply(&self, summary: &mut RecordSummary) {
        let Some(staging) = &self.staging else {
            return;
        };
        let moved = |p: &PathBuf| self.dir.join(p.strip_prefix(staging).unwrap_or(p));
        if self.mode == RecordMode::All {
            if !summary.errors.is_empty() || !summary.lost.is_empty() {
                summary.errors.push(format!(
                    "record mode all: the old fixtures of {} were kept, since this run did not record everything; its recording is in {}",
                    self.dir.display(),
                    staging.display()
                ));
                return;
            }
            match crate::fixture::replace_set(&self.dir, staging) {
                Ok(()) => {
                    summary.files = summary.files.iter().map(moved).collect();
                    summary.notes.push(format!(
                        "record mode all: the new recording replaced the fixtures of {}",
                        self.dir.display()
                    ));
                }
                Err(e) => summary.errors.push(format!(
                    "record mode all: replacing the fixtures of {} failed, the old set is in place and the new one in {}: {e}",
                    self.dir.display(),
                    staging.display()
                )),
            }
            return;
        }
        // `new`: sessions the directory already answered the same way are
        // not added a second time.
        let mut added = Vec::new();
        let mut known = 0usize;
        for path in &summary.files {
            let holds = match (&self.known, crate::fixture::load_file(path)) {
                (Some(k), Ok((session, _))) => k.holds(&session),
                _ => false,
            };
            let result = if holds {
                known += 1;
                std::fs::remove_file(path)
            } else {
                let to = moved(path);
                std::fs::rename(path, &to).map(|()| added.push(to))
            };
            if let Err(e) = result {
                summary.errors.push(format!(
                    "record mode new: {} stays where it was recorded: {e}",
                    path.display()
                ));
            }
        }
        summary.files = added;
        summary.notes.push(format!(
            "record mode new: {} new session(s) added to {}; {known} already recorded there the same way, not written again",
            summary.files.len(),
            self.dir.display()
        ));
        if summary.errors.is_empty() {
            let _ = std::fs::remove_dir(staging);
        }
    }
}

/// The real server: where to connect, and the credentials for the URLs
/// [`Recorder::url_for`] gives.
struct Upstream {
    addr: String,
    user: String,
    password: Option<String>,
    /// The URL's `sslmode` and `sslrootcert`, when it gives them.
    ssl: Option<crate::SslMode>,
    root_cert: Option<PathBuf>,
}

impl Upstream {
    fn parse(s: &str) -> Result<Self, Error> {
        if !(s.starts_with("postgres://") || s.starts_with("postgresql://") || s.contains('=')) {
            return Ok(Upstream {
                addr: s.to_owned(),
                user: "postgres".to_owned(),
                password: None,
                ssl: None,
                root_cert: None,
            });
        }
        let (s, ssl, root_cert) = crate::client::url::take_tls_settings(s);
        let ssl = ssl
            .map(|m| m.parse::<crate::SslMode>())
            .transpose()
            .map_err(|e| Error::Config(format!("invalid upstream URL: {e}")))?;
        let config: tokio_postgres::Config = s
            .parse()
            .map_err(|e| Error::Config(format!("invalid upstream URL: {e}")))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        Ok(Upstream {
            addr: format!("{host}:{port}"),
            user: config.get_user().unwrap_or("postgres").to_owned(),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            ssl,
            root_cert: root_cert.map(PathBuf::from),
        })
    }
}

struct Shared {
    upstream: String,
    /// How to connect upstream: the `sslmode` given (`None`: as the
    /// client asked), and the TLS configuration it means.
    upstream_ssl: Option<crate::SslMode>,
    /// Built only when the upstream link may be TLS.
    upstream_tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// TLS towards clients, when on.
    client_tls: Option<crate::tls::Tls>,
    /// Set by shutdown: when sessions still open are ended with 57P01.
    closing: watch::Sender<Option<tokio::time::Instant>>,
    writer: Writer,
    seq: AtomicU64,
    sessions: AtomicU64,
    /// Sessions recorded and not yet closed.
    active: AtomicU64,
    /// From a Query or Sync forwarded to the upstream's ReadyForQuery.
    upstream_latency: crate::metrics::Histogram,
    exchanges: AtomicU64,
    /// Secret values replaced before they were written.
    redacted: AtomicU64,
    lost: Mutex<Vec<String>>,
    rules: crate::fixture::Rules,
}

impl Shared {
    fn lose(&self, what: String) {
        if let Ok(mut lost) = self.lost.lock() {
            lost.push(what);
        }
    }
}

/// A running recording proxy: clients connect to it as to PostgreSQL,
/// it forwards everything to the real server and writes what the server
/// answered as fixtures that [`MockServer`](crate::MockServer) replays.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let Ok(live) = std::env::var("PGSIM_LIVE_URL") else {
/// #     assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI needs PGSIM_LIVE_URL");
/// #     return Ok(());
/// # };
/// use pgsim::tokio_postgres::{self, NoTls};
///
/// let dir = tempfile::tempdir()?;
/// // `live` is a real server's URL (PGSIM_LIVE_URL in this crate's tests).
/// let recorder = pgsim::Recorder::builder().upstream(live).fixtures(dir.path()).start().await?;
/// let (client, connection) = tokio_postgres::connect(&recorder.url(), NoTls).await?;
/// let task = tokio::spawn(connection);
/// client.simple_query("select 'recorded' as what").await?;
/// drop(client);
/// task.await??;
/// let summary = recorder.shutdown().await;
/// assert_eq!((summary.sessions, summary.exchanges), (1, 1), "{summary}");
/// assert!(summary.lost.is_empty(), "nothing dropped: {summary}");
/// # Ok(()) }
/// ```
pub struct Recorder {
    addr: SocketAddr,
    /// The upstream URL's credentials, for [`Recorder::url_for`].
    user: String,
    password: Option<String>,
    finish: Finish,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    metrics: crate::metrics::Endpoint,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts configuring a recorder.
    pub fn builder() -> RecorderBuilder {
        RecorderBuilder::default()
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection URL for database `postgres`, through the recorder.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// A connection URL for `database` through the recorder, with the
    /// upstream URL's user and password (the real server checks them; the
    /// proxy passes authentication through) and no TLS, for any pool or
    /// driver. The same shape as [`MockServer::url_for`](crate::MockServer::url_for),
    /// so a test records and replays with one line changed.
    pub fn url_for(&self, database: &str) -> String {
        crate::server::local_url(
            self.addr,
            &self.user,
            self.password.as_deref(),
            database,
            None,
        )
    }

    /// [`Recorder::url_for`] with connections in `scope`
    /// (`options=-c pgsim.scope=...`): what they send is recorded in that
    /// scope and replayed only to connections in it
    /// ([`MockServer::scoped_url`](crate::MockServer::scoped_url)).
    pub fn scoped_url(&self, database: &str, scope: &str) -> String {
        crate::server::local_url(
            self.addr,
            &self.user,
            self.password.as_deref(),
            database,
            Some(scope),
        )
    }

    /// Where `GET /metrics` is answered, when
    /// [`RecorderBuilder::metrics_listen`] asked for it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.addr()
    }

    /// The metrics `GET /metrics` answers, now, in the Prometheus text
    /// format (version 0.0.4); with or without the endpoint.
    pub fn metrics_text(&self) -> String {
        self.metrics.text()
    }

    /// Stops accepting, lets open sessions finish (2 s at most), closes
    /// every fixture file, reloads what it wrote the way `pgsim serve` will
    /// (any problem goes to `errors`) and reports what was written.
    pub async fn shutdown(mut self) -> RecordSummary {
        // Sessions get most of the drain to end by themselves; those still
        // open are then told, as PostgreSQL's shutdown tells its clients.
        let _ = self
            .shared
            .closing
            .send(Some(tokio::time::Instant::now() + SHUTDOWN_GRACE));
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.metrics.stop().await;
        let (files, mut errors) = self.shared.writer.finish();
        for path in &files {
            if let Err(e) = crate::fixture::load_file(path) {
                errors.push(format!("the loader refuses what was written: {e}"));
            }
        }
        let mut summary = RecordSummary {
            sessions: self.shared.sessions.load(Ordering::Relaxed),
            exchanges: self.shared.exchanges.load(Ordering::Relaxed),
            files,
            errors,
            lost: self
                .shared
                .lost
                .lock()
                .map(|l| l.clone())
                .unwrap_or_default(),
            notes: Vec::new(),
        };
        let redacted = self.shared.redacted.load(Ordering::Relaxed);
        if redacted > 0 {
            summary.notes.push(format!(
                "{redacted} secret value(s) written as '{}' (passwords, verifiers, the rules' \"redact\" entries; docs/FIXTURES.md, \"Secrets\")",
                crate::fixture::redact::REDACTED
            ));
        }
        self.finish.apply(&mut summary);
        summary
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            self.shared.writer.finish();
        }
    }
}

/// One proxied connection, in a `pgsim.session` span (upstream, database,
/// user); each exchange it records is a `pgsim.exchange` span inside it.
async fn proxy(client: TcpStream, shared: Arc<Shared>) {
    let span = tracing::info_span!(
        "pgsim.session",
        upstream = shared.upstream.as_str(),
        database = tracing::field::Empty,
        user = tracing::field::Empty,
    );
    proxy_in(client, shared).instrument(span).await;
}

async fn proxy_in(client: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let mut client = crate::tls::Stream::Plain(client);
    let mut inbuf = BytesMut::with_capacity(8192);
    // Startup phase: TLS if on, cancel requests passed through, Startup read.
    let (startup_frame, startup) = loop {
        let frame = match read_frame(&mut client, &mut inbuf, true).await {
            Ok(Some(f)) => f,
            _ => return,
        };
        match wire::decode_startup(frame.clone().freeze()) {
            Ok(Frontend::SslRequest) if shared.client_tls.is_some() && !client.is_tls() => {
                if !inbuf.is_empty() || client.write_all(b"S").await.is_err() {
                    return;
                }
                if let Some(tls) = &shared.client_tls {
                    if client.upgrade(tls).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Frontend::SslRequest | Frontend::GssEncRequest) => {
                if client.write_all(b"N").await.is_err() {
                    return;
                }
            }
            Ok(Frontend::Cancel { .. }) => {
                if let Ok(mut up) = TcpStream::connect(&shared.upstream).await {
                    let _ = up.write_all(&frame).await;
                }
                return;
            }
            Ok(Frontend::Startup { parameters, .. }) => break (frame, parameters),
            _ => return,
        }
    };
    // Plaintext unless the upstream URL or the builder says otherwise:
    // over TLS the server offers SCRAM channel binding, which a client of
    // the proxy cannot bind to (its channel ends at the proxy).
    let mode = shared.upstream_ssl.unwrap_or(crate::SslMode::Disable);
    let mut upstream =
        match crate::tls::connect_upstream(&shared.upstream, mode, shared.upstream_tls.as_ref())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                let f = crate::fixture::ErrorFields::fatal(
                    "08006",
                    format!(
                        "pgsim record: cannot reach upstream server {}: {e}",
                        shared.upstream
                    ),
                );
                let mut out = BytesMut::new();
                let _ = wire::put_error(&mut out, f.to_wire());
                let _ = client.write_all(&out).await;
                return;
            }
        };
    if upstream.write_all(&startup_frame).await.is_err() {
        return;
    }
    // The names PostgreSQL used (cut to 63 bytes), which replay looks up.
    let user = startup_name(startup.get("user").map_or("", String::as_str));
    let database = startup
        .get("database")
        .filter(|d| !d.is_empty())
        .map_or_else(|| user.clone(), |d| startup_name(d));
    let span = tracing::Span::current();
    span.record("database", database.as_str());
    span.record("user", user.as_str());
    let session = SessionRec {
        shared: Arc::clone(&shared),
        database,
        user,
        id: None,
        round_trips: metrics::RoundTrips::default(),
    };
    let scope = crate::protocol::scope::at_startup(&startup);
    let tap = Arc::new(Mutex::new((Tap::new(scope), session)));

    let (client_rd, client_wr) = tokio::io::split(client);
    let (up_rd, up_wr) = tokio::io::split(upstream);
    let t1 = Arc::clone(&tap);
    let to_server = pump(client_rd, inbuf, up_wr, move |frame| {
        if let Ok(mut guard) = t1.lock() {
            let (tap, session) = &mut *guard;
            if let Some(&kind) = frame.first() {
                session.round_trips.client_frame(kind);
            }
            match wire::decode_frontend(frame.freeze()) {
                Ok(msg) => tap.frontend(&msg),
                Err(e) => tap.undecodable(e.to_string()),
            }
            for event in tap.drain() {
                session.handle(event);
            }
        }
    });
    let t2 = Arc::clone(&tap);
    let mut goodbye = BytesMut::new();
    let fields = crate::fixture::ErrorFields::fatal(
        "57P01",
        "terminating connection due to administrator command".into(),
    );
    let _ = wire::put_error(&mut goodbye, fields.to_wire());
    let to_client = pump_until(
        up_rd,
        BytesMut::with_capacity(8192),
        client_wr,
        Some((shared.closing.subscribe(), goodbye)),
        move |frame| {
            if let Ok(mut guard) = t2.lock() {
                let (tap, session) = &mut *guard;
                if let Some(&kind) = frame.first() {
                    session.round_trips.server_frame(kind, &session.shared);
                }
                match wire::decode_backend(frame.freeze()) {
                    Ok(msg) => tap.backend(&msg),
                    Err(e) => session
                        .shared
                        .lose(format!("undecodable server message: {e}")),
                }
                for event in tap.drain() {
                    session.handle(event);
                }
            }
        },
    );
    tokio::select! {
        _ = to_server => {}
        _ = to_client => {}
    }
    if let Ok(mut guard) = tap.lock() {
        let (tap, session) = &mut *guard;
        tap.close();
        for event in tap.drain() {
            session.handle(event);
        }
        session.close();
    };
}

/// How long open sessions may go on after shutdown began before they are
/// ended with 57P01 (the accept loop drains for 2 s at most).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(1500);

/// Copies frames from `rd` to `wr`, showing each complete frame to `tap`
/// before it is forwarded.
async fn pump(
    rd: impl tokio::io::AsyncRead + Unpin,
    buf: BytesMut,
    wr: impl tokio::io::AsyncWrite + Unpin,
    tap: impl FnMut(BytesMut),
) {
    pump_until(rd, buf, wr, None, tap).await;
}

/// Waits until the shutdown deadline `closing` announces has passed.
async fn past(closing: &mut watch::Receiver<Option<tokio::time::Instant>>) {
    let at = match closing.wait_for(Option::is_some).await {
        Ok(at) => *at,
        Err(_) => None,
    };
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        // The recorder is gone without a shutdown: nothing to announce.
        None => std::future::pending().await,
    }
}

/// [`pump`], and with `last_words`: once the shutdown deadline passed and
/// no message is half forwarded, writes those words (a FATAL error) and
/// ends the session.
async fn pump_until(
    mut rd: impl tokio::io::AsyncRead + Unpin,
    mut buf: BytesMut,
    mut wr: impl tokio::io::AsyncWrite + Unpin,
    mut last_words: Option<(watch::Receiver<Option<tokio::time::Instant>>, BytesMut)>,
    mut tap: impl FnMut(BytesMut),
) {
    let mut out = BytesMut::with_capacity(8192);
    loop {
        loop {
            match wire::split_frame(&mut buf, false) {
                Ok(Some(frame)) => {
                    let frame = without_channel_binding(frame);
                    out.extend_from_slice(&frame);
                    tap(frame);
                }
                Ok(None) => break,
                Err(_) => {
                    // Not ours to judge: forward the bytes as they are.
                    out.extend_from_slice(&buf);
                    buf.clear();
                    break;
                }
            }
        }
        if !out.is_empty() {
            if wr.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        let read = match &mut last_words {
            // Between messages: the words can go out whole.
            Some((closing, words)) if buf.is_empty() => tokio::select! {
                r = rd.read_buf(&mut buf) => r,
                () = past(closing) => {
                    let _ = wr.write_all(words).await;
                    let _ = wr.shutdown().await;
                    return;
                }
            },
            _ => rd.read_buf(&mut buf).await,
        };
        match read {
            Ok(0) | Err(_) => {
                let _ = wr.shutdown().await;
                return;
            }
            Ok(_) => {}
        }
    }
}

/// An AuthenticationSASL frame without `SCRAM-SHA-256-PLUS`; any other
/// frame (only a server sends `R`) as it is. Channel binding cannot cross
/// the proxy: the client's channel, plaintext or TLS, ends here. libpq
/// refuses outright a server that offers it over a plaintext link ("server
/// offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection",
/// whatever its `channel_binding`), which is what an upstream reached over
/// TLS does; offered plain SCRAM-SHA-256 instead, libpq (and pg_dump,
/// pg_restore, psql) authenticate without binding, which the server accepts.
fn without_channel_binding(frame: BytesMut) -> BytesMut {
    const PLUS: &str = "SCRAM-SHA-256-PLUS";
    if frame.first() != Some(&b'R') {
        return frame;
    }
    let Ok(wire::Backend::Authentication(wire::Auth::Sasl(mechanisms))) =
        wire::decode_backend(frame.clone().freeze())
    else {
        return frame;
    };
    if !mechanisms.iter().any(|m| m == PLUS) {
        return frame;
    }
    let kept: Vec<&str> = mechanisms
        .iter()
        .map(String::as_str)
        .filter(|m| *m != PLUS)
        .collect();
    let mut out = BytesMut::new();
    match wire::put_auth_sasl(&mut out, &kept) {
        Ok(()) => out,
        Err(_) => frame,
    }
}

async fn read_frame(
    s: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut BytesMut,
    startup: bool,
) -> std::io::Result<Option<BytesMut>> {
    loop {
        match wire::split_frame(buf, startup) {
            Ok(Some(f)) => return Ok(Some(f)),
            Ok(None) => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e.to_string(),
                ))
            }
        }
        if s.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// One proxied session's link to the fixture writer.
struct SessionRec {
    shared: Arc<Shared>,
    database: String,
    user: String,
    id: Option<u64>,
    /// Upstream latency (metrics).
    round_trips: metrics::RoundTrips,
}

impl SessionRec {
    fn handle(&mut self, event: TapEvent) {
        match event {
            TapEvent::Ready {
                server,
                startup_error,
            } => {
                if self.id.is_some() {
                    return;
                }
                let mut server = server;
                let n = crate::fixture::redact::redact_parameters(&mut server.parameters);
                self.shared.redacted.fetch_add(n as u64, Ordering::Relaxed);
                self.shared.sessions.fetch_add(1, Ordering::Relaxed);
                self.shared.active.fetch_add(1, Ordering::Relaxed);
                let header = Session {
                    format_version: FORMAT_VERSION,
                    pgsim_version: env!("CARGO_PKG_VERSION").to_owned(),
                    database: self.database.clone(),
                    user: self.user.clone(),
                    server,
                    startup_error,
                    exchanges: Vec::new(),
                };
                self.id = Some(self.shared.writer.open(header));
            }
            TapEvent::Lost { sql, reason } => self.lose(&sql, &reason),
            TapEvent::Exchange(mut ex) => {
                let span = tracing::debug_span!(
                    "pgsim.exchange",
                    kind = tracing::field::Empty,
                    sql = tracing::field::Empty,
                    seq = tracing::field::Empty,
                    outcome = tracing::field::Empty,
                );
                let _in_exchange = span.enter();
                let Some(id) = self.id else {
                    span.record("outcome", "lost");
                    return self.lose(&ex.sql, "the session never became ready");
                };
                ex.seq = self.shared.seq.fetch_add(1, Ordering::Relaxed);
                // Secrets never reach a fixture; replay redacts what
                // clients send alike, so the query still matches.
                let n = crate::fixture::redact::redact_exchange(&mut ex, &self.shared.rules);
                self.shared.redacted.fetch_add(n as u64, Ordering::Relaxed);
                span.record("kind", tracing::field::display(crate::trace::Kind(&ex.sql)));
                span.record("sql", tracing::field::display(crate::trace::Sql(&ex.sql)));
                span.record("seq", ex.seq);
                // The key under the directory's matching rules, as replay
                // computes it; the values themselves are kept as sent.
                ex.key = crate::replay::exchange_key(&ex, &self.shared.rules).to_string();
                if let Err((at, why)) = validate_exchange(&ex) {
                    span.record("outcome", "lost");
                    return self.lose(
                        &ex.sql,
                        &format!("not loadable (seq {}{at}): {why}", ex.seq),
                    );
                }
                self.shared.exchanges.fetch_add(1, Ordering::Relaxed);
                span.record("outcome", "recorded");
                self.shared.writer.send(WriterMsg::Append {
                    id,
                    exchange: Box::new(ex),
                });
            }
        }
    }

    fn lose(&self, sql: &str, reason: &str) {
        let sql: String = sql.chars().take(120).collect();
        self.shared.lose(format!(
            "database \"{}\", user \"{}\": {sql:?}: {reason}",
            self.database, self.user
        ));
    }

    fn close(&mut self) {
        if let Some(id) = self.id.take() {
            self.shared.active.fetch_sub(1, Ordering::Relaxed);
            self.shared.writer.send(WriterMsg::Close { id });
        }
    }
}

#[cfg(test)]
mod channel_binding_tests {
    use super::*;

    fn sasl(mechanisms: &[&str]) -> BytesMut {
        let mut frame = BytesMut::new();
        wire::put_auth_sasl(&mut frame, mechanisms).unwrap();
        frame
    }

    #[test]
    fn scram_plus_is_not_offered_through_the_proxy() {
        let rewritten = without_channel_binding(sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]));
        assert_eq!(rewritten, sasl(&["SCRAM-SHA-256"]));
    }

    #[test]
    fn other_frames_pass_unchanged() {
        let plain = sasl(&["SCRAM-SHA-256"]);
        assert_eq!(without_channel_binding(plain.clone()), plain);
        let mut ok = BytesMut::new();
        wire::put_auth_ok(&mut ok).unwrap();
        assert_eq!(without_channel_binding(ok.clone()), ok);
        let query = BytesMut::from(&b"Q\0\0\0\x0dselect 1\0"[..]);
        assert_eq!(without_channel_binding(query.clone()), query);
    }
}
