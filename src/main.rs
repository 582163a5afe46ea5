//! The `pgsim` command line: argument parsing only; the work is in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// `println!` for what a command prints: when the reader has gone away
/// (`pgsim inspect ... | head`), the rest is dropped instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::emit(format_args!($($arg)*))
    };
}

mod demo;
mod diff_cmd;
mod inspect;
mod migrate_cmd;
mod survey_cmd;
mod verify_cmd;

/// Record PostgreSQL once, replay it forever over the real wire protocol.
#[derive(Debug, Parser)]
#[command(name = "pgsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing the serve flags buys nothing
enum Command {
    /// Replay a fixture set as a PostgreSQL server (or, with a record mode
    /// and an upstream, record it: see --record-mode).
    Serve {
        /// Fixture directory to replay.
        #[arg(long, env = "PGSIM_FIXTURES")]
        fixtures: PathBuf,
        /// none: replay only (misses are errors). once: record when the
        /// directory holds no fixtures, else replay (refused under CI=true
        /// for an empty directory). new: record every session through the
        /// upstream and add those the directory does not already answer.
        /// all: re-record, replacing the old set when the run ends.
        #[arg(long, env = "PGSIM_RECORD_MODE", default_value = "none")]
        record_mode: pgsim::RecordMode,
        /// The real server, for the modes that record (URL or host:port);
        /// DATABASE_URL is used when unset.
        #[arg(long, env = "PGSIM_UPSTREAM", hide_env_values = true)]
        upstream: Option<String>,
        /// Address to listen on.
        #[arg(long, env = "PGSIM_LISTEN", default_value = "127.0.0.1:6543")]
        listen: SocketAddr,
        /// Require this password of every role instead of trusting every
        /// client (prefer PGSIM_PASSWORD: a flag shows in `ps`).
        #[arg(long, env = "PGSIM_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// How --password is checked: password (cleartext), md5 or
        /// scram-sha-256.
        #[arg(long, env = "PGSIM_AUTH_METHOD", default_value = "password", value_parser = parse_auth_method)]
        auth_method: pgsim::AuthMethod,
        /// Each role's authentication method and where its password is read
        /// from (JSON; see docs/LIMITS.md, "Authentication").
        #[arg(long, env = "PGSIM_AUTH_FILE")]
        auth_file: Option<PathBuf>,
        /// TLS towards clients.
        #[command(flatten)]
        tls: TlsArgs,
        /// Inject a fault (repeatable; grammar in docs/FAULTS.md), e.g.
        /// 'match=^select abalance,error=40001,times=2'. PGSIM_FAULTS holds
        /// several separated by ';'; empty entries are ignored.
        #[arg(
            long = "fault",
            value_name = "SPEC",
            env = "PGSIM_FAULTS",
            value_delimiter = ';'
        )]
        faults: Vec<String>,
        /// Seed of every random fault decision (same seed, same client
        /// events: same faults).
        #[arg(long, env = "PGSIM_SEED", default_value_t = 0)]
        seed: u64,
        /// Each connection must send exactly one recorded session's queries,
        /// in order; the first deviation is a miss showing both sequences.
        #[arg(long, env = "PGSIM_STRICT_ORDER")]
        strict_order: bool,
        /// Let any role connect and answer it from every role's recordings
        /// (by default only recorded roles connect, each answered from its
        /// own sessions).
        #[arg(long, env = "PGSIM_ANY_ROLE")]
        any_role: bool,
        /// Neither read nor write the index cache (DIR/.pgsim-cache): parse
        /// every JSON file. Also PGSIM_INDEX_CACHE=off.
        #[arg(long)]
        no_index_cache: bool,
        /// Limits and timeouts (docs/LIMITS.md).
        #[command(flatten)]
        limits: ServeLimits,
        /// Answer GET /metrics on this address (Prometheus text format;
        /// port 0: any free one, printed on a line of its own).
        #[arg(long, value_name = "ADDR", env = "PGSIM_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Proxy clients to a real server and write every exchange to fixtures.
    Record {
        /// The real server (URL or host:port); DATABASE_URL is used when unset.
        #[arg(long, env = "PGSIM_UPSTREAM", hide_env_values = true)]
        upstream: Option<String>,
        /// Address clients connect to.
        #[arg(long, env = "PGSIM_LISTEN", default_value = "127.0.0.1:6544")]
        listen: SocketAddr,
        /// Directory the fixtures are written to.
        #[arg(long, env = "PGSIM_FIXTURES")]
        fixtures: PathBuf,
        /// TLS towards clients (the upstream link follows the upstream
        /// URL's sslmode).
        #[command(flatten)]
        tls: TlsArgs,
        /// Answer GET /metrics on this address (Prometheus text format;
        /// port 0: any free one, printed on a line of its own).
        #[arg(long, value_name = "ADDR", env = "PGSIM_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
    },
    /// List what a fixture set holds (and check that it loads), or show
    /// selected exchanges in full.
    Inspect {
        /// Fixture directory.
        #[arg(env = "PGSIM_FIXTURES")]
        fixtures: PathBuf,
        /// Print every exchange, one line each, not only the summary.
        #[arg(long)]
        exchanges: bool,
        /// Print the selected exchanges in full (SQL, parameters, columns,
        /// every row, tag, error, notices, COPY data): `all`, `seq:N`,
        /// `seq:N..M`, `seq:N,M,..`, `file:NAME` (or a path), `sql:REGEX`, `db:NAME`,
        /// `key:PREFIX`. Repeat to narrow: an exchange must match each.
        #[arg(long, value_name = "SEL")]
        show: Vec<String>,
    },
    /// Compare two fixture sets at the SQL level: exchanges added, removed
    /// or answered differently (columns, rows, tag, SQLSTATE). Exit status
    /// 0 when they answer the same, 1 when they differ, 2 when a directory
    /// or a fixture file cannot be read.
    Diff {
        /// The recorded fixture directory.
        recorded: PathBuf,
        /// The fixture directory to compare with it (a new recording).
        now: PathBuf,
    },
    /// Drift check: re-run every recorded exchange against a live server,
    /// in recorded order per session, and report each answer that changed
    /// (columns, rows, tag, SQLSTATE). It EXECUTES the recorded statements
    /// on the server, writes included: point it at a disposable database.
    /// Exit status 0 when every re-run answer is the same, 1 when some
    /// differ, 2 when it could not run (server unreachable, credentials
    /// refused, a fixture file that does not load).
    Verify {
        /// Fixture directory to check.
        #[arg(long, env = "PGSIM_FIXTURES")]
        fixtures: PathBuf,
        /// The live server, as a URL whose user and password every
        /// re-run session uses; DATABASE_URL is used when unset.
        #[arg(long, env = "PGSIM_UPSTREAM", hide_env_values = true)]
        upstream: Option<String>,
        /// Also write the re-run answers as a pending set in
        /// FIXTURES/.pgsim-pending, for `pgsim accept`.
        #[arg(long)]
        accept: bool,
        /// Seconds one exchange or connection may take before the run
        /// gives up (exit status 2).
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        timeout: u64,
    },
    /// Put a pending set (from `pgsim verify --accept`) in place: shows
    /// what it changes (as `pgsim diff`), then replaces the directory's
    /// fixture files with it all at once; other files stay. Exit status 0
    /// when replaced, 2 when not.
    Accept {
        /// Fixture directory whose .pgsim-pending set to accept.
        fixtures: PathBuf,
    },
    /// Survey every database of a server (catalog and row samples) and
    /// print the result as JSON.
    Survey(survey_cmd::SurveyArgs),
    /// Apply or revert versioned migrations (`<version>_<name>.up.sql` and
    /// `.down.sql`), recorded with their checksums in `pgsim_migrations`.
    Migrate(migrate_cmd::MigrateArgs),
    /// No PostgreSQL needed: survey the bundled survey fixtures through an
    /// in-process mock server, then send every bundled session again to a
    /// mock server, message for message, and check each answer against the
    /// recording. Ends in one verdict line; exit 1 when anything differed.
    Demo {
        /// Fixture directory of recorded client sessions.
        #[arg(long, env = "PGSIM_FIXTURES", default_value = "fixtures/demo")]
        fixtures: PathBuf,
        /// Fixture directory of the recorded survey.
        #[arg(long, default_value = "fixtures/survey")]
        survey_fixtures: PathBuf,
        /// Also list every exchange and how it replayed, and the survey per database.
        #[arg(long)]
        list: bool,
    },
}

/// What one client can make `pgsim serve` hold or wait for (docs/LIMITS.md).
#[derive(Debug, clap::Args)]
struct ServeLimits {
    /// Largest message a client may send, in bytes (PostgreSQL's own 1 GiB
    /// limit by default); a longer declared length closes the connection.
    #[arg(long, value_name = "BYTES", env = "PGSIM_MAX_MESSAGE_SIZE")]
    max_message_size: Option<usize>,
    /// Seconds from accept to the end of authentication (PostgreSQL's
    /// authentication_timeout).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "PGSIM_STARTUP_TIMEOUT",
        default_value_t = 60
    )]
    startup_timeout: u64,
    /// Seconds a session idle outside a transaction may wait before it is
    /// ended with 57P05 (idle_session_timeout); 0: never.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "PGSIM_IDLE_TIMEOUT",
        default_value_t = 0
    )]
    idle_timeout: u64,
    /// Seconds a session idle inside a transaction block may wait before it
    /// is ended with 25P03 (idle_in_transaction_session_timeout); 0: never.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "PGSIM_IDLE_IN_TRANSACTION_TIMEOUT",
        default_value_t = 0
    )]
    idle_in_transaction_timeout: u64,
    /// Sessions open at once; one more is refused with 53300
    /// (max_connections).
    #[arg(
        long,
        value_name = "N",
        env = "PGSIM_MAX_CONNECTIONS",
        default_value_t = 100
    )]
    max_connections: usize,
    /// Distinct missed queries the shutdown report details; further misses
    /// are counted.
    #[arg(long, value_name = "N", env = "PGSIM_MISS_DETAILS", default_value_t = pgsim::replay::DEFAULT_MISS_DETAILS)]
    miss_details: usize,
}

impl ServeLimits {
    fn apply(self, mut builder: pgsim::MockServerBuilder) -> pgsim::MockServerBuilder {
        if let Some(bytes) = self.max_message_size {
            builder = builder.max_message_size(bytes);
        }
        builder
            .startup_timeout(Duration::from_secs(self.startup_timeout))
            .idle_timeout(Duration::from_secs(self.idle_timeout))
            .idle_in_transaction_timeout(Duration::from_secs(self.idle_in_transaction_timeout))
            .max_connections(self.max_connections)
            .miss_details(self.miss_details)
    }
}

/// See [`out!`].
fn emit(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("pgsim: writing to stdout: {e}")
        }
        _ => {}
    }
}

/// Waits for SIGINT, SIGTERM or SIGHUP (a closed terminal): each ends
/// `pgsim serve` and `pgsim record` the same way, with the summary and, for
/// the recorder, its journals compacted.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = hangup.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Where `pgsim serve` and `pgsim record` listen: clients, and metrics.
struct Addrs {
    listen: SocketAddr,
    metrics: Option<SocketAddr>,
}

/// Prints where the metrics are, on a line of its own (after the line
/// saying where clients connect, which scripts read first).
fn print_metrics_addr(who: &str, addr: Option<SocketAddr>) {
    if let Some(addr) = addr {
        println!("{who}: metrics on http://{addr}/metrics");
    }
}

/// Proxies to the upstream and records in `mode` until SIGINT/SIGTERM/SIGHUP.
async fn record(
    upstream: Option<String>,
    addrs: Addrs,
    fixtures: &std::path::Path,
    mode: pgsim::RecordMode,
    tls: Option<pgsim::TlsSource>,
    who: &str,
) -> Result<ExitCode, String> {
    let upstream = upstream
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .ok_or(format!(
            "{who}: record mode {mode} needs the real server: pass --upstream, or set PGSIM_UPSTREAM or DATABASE_URL"
        ))?;
    let mut builder = pgsim::Recorder::builder()
        .upstream(upstream)
        .fixtures(fixtures)
        .listen(addrs.listen)
        .record_mode(mode);
    if let Some(source) = tls {
        builder = builder.tls(source);
    }
    if let Some(addr) = addrs.metrics {
        builder = builder.metrics_listen(addr);
    }
    let recorder = builder.start().await.map_err(|e| e.to_string())?;
    println!(
        "{who}: recording (mode {mode}) through {} into {}",
        recorder.addr(),
        fixtures.display()
    );
    print_metrics_addr(who, recorder.metrics_addr());
    wait_for_signal().await;
    let summary = recorder.shutdown().await;
    print!("{summary}");
    if !summary.errors.is_empty() {
        Err("some exchanges could not be written (listed above)".into())
    } else if !summary.lost.is_empty() {
        Err(format!(
            "{} requests were not written (listed above)",
            summary.lost.len()
        ))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve {
            fixtures,
            record_mode,
            upstream,
            listen,
            password,
            faults,
            seed,
            strict_order,
            any_role,
            no_index_cache,
            auth_method,
            auth_file,
            tls,
            limits,
            metrics_listen,
        } => {
            let addrs = Addrs {
                listen,
                metrics: metrics_listen,
            };
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            if let pgsim::Plan::Record(mode) =
                record_mode.plan(&fixtures, ci).map_err(|e| e.to_string())?
            {
                if !faults.is_empty() || password.is_some() {
                    return Err(format!(
                        "record mode {mode}: --fault and --password apply to replay; the recorder passes clients through to the upstream"
                    ));
                }
                return record(
                    upstream,
                    addrs,
                    &fixtures,
                    mode,
                    tls.source(),
                    "pgsim serve",
                )
                .await;
            }
            let mut builder = limits.apply(
                pgsim::MockServer::builder()
                    .fixtures(&fixtures)
                    .load_options(pgsim::replay::LoadOptions {
                        index_cache: !no_index_cache
                            && pgsim::replay::LoadOptions::default().index_cache,
                        ..Default::default()
                    })
                    .listen(addrs.listen)
                    .seed(seed),
            );
            if let Some(addr) = addrs.metrics {
                builder = builder.metrics_listen(addr);
            }
            if let Some(p) = password {
                builder = builder.password(p).auth_method(auth_method);
            }
            if let Some(file) = auth_file {
                builder = builder.auth_file(file);
            }
            if let Some(source) = tls.source() {
                builder = builder.tls(source);
            }
            if strict_order {
                builder = builder.strict_order();
            }
            if any_role {
                builder = builder.any_role();
            }
            for spec in faults.into_iter().filter(|s| !s.trim().is_empty()) {
                builder = builder.fault(spec);
            }
            let server = builder.start().await.map_err(|e| e.to_string())?;
            if !server.rejected().is_empty() && server.database_count() == 0 {
                let all: Vec<String> = server.rejected().iter().map(|r| r.error.clone()).collect();
                return Err(format!(
                    "no fixture file of {} loads:\n  {}",
                    fixtures.display(),
                    all.join("\n  ")
                ));
            }
            for w in server.warnings() {
                eprintln!("warning: {w}");
            }
            if let Some(s) = server.load_stats() {
                eprintln!(
                    "pgsim serve: loaded {} fixture file(s) in {:.1} ms ({} from the index cache, {} parsed{})",
                    s.files,
                    s.elapsed.as_secs_f64() * 1e3,
                    s.from_cache,
                    s.parsed,
                    match (&s.cache_error, s.cache_written) {
                        (Some(e), _) => format!("; index cache not written: {e}"),
                        (None, true) => "; index cache written".to_owned(),
                        (None, false) => String::new(),
                    }
                );
            }
            for r in server.rejected() {
                eprintln!("error: {r}");
            }
            if !server.rejected().is_empty() {
                eprintln!(
                    "pgsim serve: {} fixture file(s) refused; serving the others (queries only they hold will miss, naming them)",
                    server.rejected().len()
                );
            }
            let active = server.faults();
            if !active.is_empty() {
                eprintln!("pgsim serve: fault seed {seed}");
                for (i, f) in active.iter().enumerate() {
                    eprintln!("pgsim serve: fault #{}: {}", i + 1, f.fault);
                }
            }
            println!(
                "pgsim serve: replaying {} on {}",
                fixtures.display(),
                server.addr()
            );
            print_metrics_addr("pgsim serve", server.metrics_addr());
            wait_for_signal().await;
            let faults = server.faults();
            let report = server.shutdown().await;
            print!("{report}");
            for (i, f) in faults.iter().enumerate() {
                println!("  fault #{} {f}", i + 1);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Record {
            upstream,
            listen,
            fixtures,
            tls,
            metrics_listen,
        } => {
            record(
                upstream,
                Addrs {
                    listen,
                    metrics: metrics_listen,
                },
                &fixtures,
                pgsim::RecordMode::All,
                tls.source(),
                "pgsim record",
            )
            .await
        }
        Command::Inspect {
            fixtures,
            exchanges,
            show,
        } => inspect::run(&fixtures, exchanges, &show).map(|()| ExitCode::SUCCESS),
        Command::Diff { recorded, now } => Ok(diff_cmd::run(&recorded, &now)),
        Command::Verify {
            fixtures,
            upstream,
            accept,
            timeout,
        } => {
            Ok(verify_cmd::verify(&fixtures, upstream, accept, Duration::from_secs(timeout)).await)
        }
        Command::Accept { fixtures } => Ok(verify_cmd::accept(&fixtures)),
        Command::Survey(args) => survey_cmd::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => migrate_cmd::run(args).await,
        Command::Demo {
            fixtures,
            survey_fixtures,
            list,
        } => {
            demo::run(&demo::Options {
                fixtures,
                survey_fixtures,
                list,
            })
            .await
        }
    }
}

/// TLS towards clients, for `pgsim serve` and `pgsim record`.
#[derive(Debug, clap::Args)]
struct TlsArgs {
    /// Answer SSLRequest with S and speak TLS with this PEM certificate
    /// chain (with --tls-key).
    #[arg(
        long,
        env = "PGSIM_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_generate"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "PGSIM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TLS with a certificate generated at start for localhost and
    /// 127.0.0.1, signed by a throwaway CA whose certificate is written to
    /// this file (for sslrootcert=FILE sslmode=verify-full).
    #[arg(long, env = "PGSIM_TLS_GENERATE")]
    tls_generate: Option<PathBuf>,
}

impl TlsArgs {
    fn source(&self) -> Option<pgsim::TlsSource> {
        match (&self.tls_cert, &self.tls_key, &self.tls_generate) {
            (Some(cert), Some(key), _) => Some(pgsim::TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (_, _, Some(root)) => Some(pgsim::TlsSource::Generated {
                root_cert: Some(root.clone()),
            }),
            _ => None,
        }
    }
}

fn parse_auth_method(s: &str) -> Result<pgsim::AuthMethod, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgsim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pgsim: {e}");
            ExitCode::FAILURE
        }
    }
}
