//! The fuzzing engine of `examples/fuzz` and `tests/it/fuzz.rs`: hostile
//! byte streams thrown at an in-process mock server over the demo fixtures.
//!
//! Connection `i` of a run with seed `s` is generated from `(s, i)` alone,
//! so any connection can be replayed on its own (`--seed S --connection I`)
//! whatever the parallelism. A connection carries several *inputs* (one
//! message sequence each: valid, mutated, random, with an absurd declared
//! length, truncated; or a startup-phase packet), written in one go, then
//! the client half-closes: the server must read to the end, answer what it
//! can, and close. The server's output is checked to be well-framed.
//! After each batch the server must still admit exactly `max_connections`
//! sessions (and refuse the next with 53300, every few batches), answer
//! the pinned demo query on a fresh tokio-postgres connection with its
//! recorded rows, and the process's resident memory must stay in bounds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgsim::MockServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod inputs;

use inputs::demo_startup;
pub use inputs::{connection_bytes, Corpus};

/// The demo fixtures' database.
pub const DEMO_DB: &str = "pgsim_demo";
/// A query only the tokio-postgres session of the demo recording sent
/// (tests/it/support.rs): a fresh connection gets its recorded rows.
pub const DEMO_PIN: &str = "select * from items order by id";
/// The server's connection cap during a run (below the default 100, so a
/// burst past it stays cheap).
pub const MAX_CONNECTIONS: usize = 48;
/// Connections opened past the cap in a burst: each must get 53300.
const BURST_EXTRA: usize = 4;
/// A burst every this many batches (and after the first).
const BURST_EVERY: u64 = 16;
/// How long a connection may stay silent after the client half-closed
/// before it counts as a timeout: a hang detector, about a thousand
/// times what a connection costs even in a debug build.
const IDLE_READ: Duration = Duration::from_secs(5);

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// The seed every input comes from.
    pub seed: u64,
    /// Stop after the batch that reaches this many inputs.
    pub inputs: u64,
    /// Stop after the batch that ends past this much time.
    pub time_limit: Duration,
    /// Connections per batch (health checks in between).
    pub batch_connections: u64,
    /// Most inputs on one connection (at least 1).
    pub max_inputs_per_connection: u64,
    /// Connections in flight at once.
    pub parallel: usize,
    /// Print a progress line every this many batches (0: never).
    pub progress_every: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 1,
            inputs: 100_000,
            time_limit: Duration::from_secs(600),
            batch_connections: 128,
            max_inputs_per_connection: 16,
            parallel: 8,
            progress_every: 0,
        }
    }
}

/// The kinds of input, as counted.
pub const KINDS: [&str; 8] = [
    "valid",
    "mutated",
    "random bytes",
    "absurd length",
    "truncated",
    "startup",
    "oversized startup",
    "startup random",
];

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Inputs sent.
    pub inputs: u64,
    /// Inputs the server surely read (see [`inputs::Planned::surely_read`]).
    pub surely_read: u64,
    /// Inputs sent, by kind ([`KINDS`]).
    pub by_kind: [u64; 8],
    /// Bytes sent.
    pub bytes: u64,
    /// Fuzzing connections.
    pub connections: u64,
    /// Connections whose last message from the server was a FATAL error.
    pub fatal: u64,
    /// Connections the server closed without sending anything.
    pub silent: u64,
    /// Connections reset by the server (it closed with input unread).
    pub reset: u64,
    /// Connections answered normally and closed at the client's end of input.
    pub answered: u64,
    /// Connections still open [`IDLE_READ`] after the client's last byte.
    pub timeouts: u64,
    /// Connections whose answer was not well-framed protocol.
    pub malformed: u64,
    /// Batches run, each followed by a health check that passed.
    pub batches: u64,
    /// Bursts past `max_connections`, each admitting exactly the cap.
    pub bursts: u64,
    /// Resident memory (bytes) before the first input.
    pub rss_start: u64,
    /// After the first batch (warm-up): the bound is relative to it.
    pub rss_warm: u64,
    /// The most seen after a batch.
    pub rss_max: u64,
    /// At the end.
    pub rss_end: u64,
    /// The bound checked after each batch.
    pub rss_bound: u64,
    /// Time the run took.
    pub elapsed: Duration,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "inputs sent: {} ({} bytes) in {:.1} s: {:.0} inputs/s",
            self.inputs,
            self.bytes,
            secs,
            self.inputs as f64 / secs.max(1e-9)
        )?;
        writeln!(
            f,
            "  surely read by the server: {} (each connection's inputs up to the first that may end it; the rest may not be read)",
            self.surely_read
        )?;
        let kinds: Vec<String> = KINDS
            .iter()
            .zip(self.by_kind)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(f, "  by kind: {}", kinds.join(", "))?;
        writeln!(
            f,
            "connections: {}: closed by the server with a FATAL error {}, closed without a word {}, reset {}, answered normally {}, timeouts {}, malformed answers {}",
            self.connections, self.fatal, self.silent, self.reset, self.answered, self.timeouts, self.malformed
        )?;
        writeln!(
            f,
            "batches: {} (each followed by a passing health check), bursts past max_connections: {}",
            self.batches, self.bursts
        )?;
        write!(
            f,
            "RSS: start {:.1} MiB, after warm-up {:.1} MiB, max {:.1} MiB, end {:.1} MiB; bound 2 x warm-up + 64 MiB = {:.1} MiB",
            mib(self.rss_start),
            mib(self.rss_warm),
            mib(self.rss_max),
            mib(self.rss_end),
            mib(self.rss_bound)
        )
    }
}

impl Stats {
    /// The per-connection counters of `counts` (what the workers add up).
    fn take_counts(&mut self, counts: &Stats) {
        self.inputs = counts.inputs;
        self.surely_read = counts.surely_read;
        self.by_kind = counts.by_kind;
        self.bytes = counts.bytes;
        self.connections = counts.connections;
        self.fatal = counts.fatal;
        self.silent = counts.silent;
        self.reset = counts.reset;
        self.answered = counts.answered;
        self.timeouts = counts.timeouts;
        self.malformed = counts.malformed;
    }
}

/// Why a run stopped early: a bug, with how to reproduce it.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub what: String,
    /// The command line that replays it.
    pub reproduce: String,
    /// What the run saw until then.
    pub stats: Stats,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\nreproduce: {}\n{}",
            self.what, self.reproduce, self.stats
        )
    }
}

/// How one connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered; closed after the client's last byte (or its Terminate).
    Answered,
    /// The server's last message was a FATAL ErrorResponse.
    Fatal,
    /// Closed without a byte sent.
    Silent,
    /// Reset by the server (it closed with input unread).
    Reset,
    /// Still open [`IDLE_READ`] after the last byte.
    Timeout,
}

/// Sends `bytes` on a fresh connection, half-closes, reads to the end.
/// Returns the outcome and, when the answer was not well framed, why.
pub async fn send(addr: std::net::SocketAddr, bytes: &[u8]) -> (Outcome, Option<String>) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return (Outcome::Reset, None);
    };
    let _ = s.set_nodelay(true);
    let (mut rd, mut wr) = s.split();
    let write = async {
        let _ = wr.write_all(bytes).await;
        let _ = wr.shutdown().await;
    };
    let read = async {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match tokio::time::timeout(IDLE_READ, rd.read(&mut buf)).await {
                Err(_) => return (out, Some(Outcome::Timeout)),
                Ok(Err(_)) => return (out, Some(Outcome::Reset)),
                Ok(Ok(0)) => return (out, None),
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    let ((), (out, ended)) = tokio::join!(write, read);
    let (last, malformed) = frames(&out, ended.is_none());
    let outcome = match ended {
        Some(o) => o,
        None if out.is_empty() => Outcome::Silent,
        None if last.as_deref().is_some_and(is_fatal) => Outcome::Fatal,
        None => Outcome::Answered,
    };
    (outcome, malformed)
}

fn is_fatal(frame: &[u8]) -> bool {
    frame.first() == Some(&b'E') && frame.windows(7).any(|w| w == b"SFATAL\0")
}

/// The last complete backend message of `out`, and what is wrong with its
/// framing, if anything (`complete`: the server closed cleanly, so a cut
/// message is its fault). Lone `N` bytes before the first message are
/// answers to SSLRequest / GSSENCRequest.
fn frames(out: &[u8], complete: bool) -> (Option<Vec<u8>>, Option<String>) {
    const BACKEND: &[u8] = b"RSKZTDCENI123nstAGHWcdv";
    let mut at = 0;
    while at < out.len()
        && out[at] == b'N'
        && out
            .get(at + 1)
            .is_none_or(|b| matches!(b, b'R' | b'E' | b'N'))
    {
        at += 1;
    }
    let mut last = None;
    while at < out.len() {
        let kind = out[at];
        if !BACKEND.contains(&kind) {
            return (
                last,
                Some(format!("unknown backend type {kind} at byte {at}")),
            );
        }
        let Some(len) = out.get(at + 1..at + 5) else {
            break;
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if !(4..=1 << 26).contains(&len) {
            return (
                last,
                Some(format!("length {len} of {:?} at byte {at}", kind as char)),
            );
        }
        let end = at + 1 + len as usize;
        if end > out.len() {
            break;
        }
        last = Some(out[at..end].to_vec());
        at = end;
    }
    let cut = (at < out.len() && complete)
        .then(|| format!("answer cut inside a message at byte {at} of {}", out.len()));
    (last, cut)
}

/// This process's resident memory, from /proc/self/status (0 where there
/// is none).
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// A fresh tokio-postgres connection gets the recorded rows of [`DEMO_PIN`].
async fn health_check(server: &MockServer, corpus: &Corpus) -> Result<(), String> {
    let url = server.url_for(DEMO_DB);
    let check = async {
        let (client, conn) = pgsim::tokio_postgres::connect(&url, pgsim::tokio_postgres::NoTls)
            .await
            .map_err(|e| {
                format!(
                    "connect: {}",
                    e.as_db_error().map_or(e.to_string(), |d| format!("{d:?}"))
                )
            })?;
        let conn = tokio::spawn(conn);
        let messages = client
            .simple_query(DEMO_PIN)
            .await
            .map_err(|e| format!("{DEMO_PIN}: {e}"))?;
        let rows: Vec<Vec<Option<String>>> = messages
            .iter()
            .filter_map(|m| match m {
                pgsim::tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect();
        drop(client);
        let _ = conn.await;
        if rows == corpus.pin_rows {
            Ok(())
        } else {
            Err(format!(
                "{DEMO_PIN}: got {rows:?}, recorded {:?}",
                corpus.pin_rows
            ))
        }
    };
    tokio::time::timeout(Duration::from_secs(30), check)
        .await
        .map_err(|_| format!("{DEMO_PIN} not answered within 30 s (a hang)"))?
}

/// `MAX_CONNECTIONS + BURST_EXTRA` sessions at once: exactly the cap is
/// admitted, the others get 53300. A slot the last batch's connections
/// still hold is given back as their tasks end, so a short shortfall is
/// retried; a leaked slot is not.
async fn burst(server: &MockServer) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..50 {
        let mut conns = Vec::new();
        for _ in 0..MAX_CONNECTIONS + BURST_EXTRA {
            let mut s = TcpStream::connect(server.addr())
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.write_all(&demo_startup())
                .await
                .map_err(|e| format!("write: {e}"))?;
            conns.push(s);
        }
        let (mut admitted, mut refused) = (0, 0);
        for s in &mut conns {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
                    .await
                    .map_err(|_| "a burst connection got no answer in 30 s".to_owned())?
                    .unwrap_or(0);
                out.extend_from_slice(&buf[..n]);
                if n == 0 || (out.len() >= 6 && out[out.len() - 6] == b'Z') {
                    break;
                }
            }
            if out.len() >= 6 && out[out.len() - 6] == b'Z' {
                admitted += 1;
            } else if out.windows(6).any(|w| w == b"C53300") {
                refused += 1;
            }
        }
        // Ends every session and waits for the server to close it, so its
        // slot is free again before the health check connects.
        for s in &mut conns {
            let _ = s.write_all(b"X\0\0\0\x04").await;
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut rest)).await;
        }
        if admitted == MAX_CONNECTIONS && refused == BURST_EXTRA {
            return Ok(());
        }
        last = format!(
            "{} connections at once: {admitted} admitted, {refused} refused with 53300 (max_connections {MAX_CONNECTIONS})",
            conns.len()
        );
        drop(conns);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last)
}

/// Counts panics on this process's threads from the first call on (the
/// server's connection tasks run here: tokio would swallow their panics).
pub fn panics() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static HOOKED: AtomicBool = AtomicBool::new(false);
    if !HOOKED.swap(true, Ordering::SeqCst) {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            COUNT.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    }
    COUNT.load(Ordering::SeqCst)
}

/// A server for a run: the demo fixtures plus one recorded COPY FROM
/// STDIN (the demo records none, and copy-in is where a client's data is
/// held), a connection cap of [`MAX_CONNECTIONS`], the other limits at
/// their defaults.
pub async fn start_server(dir: &std::path::Path) -> Result<MockServer, String> {
    let mut set = pgsim::fixture::load_dir(dir).map_err(|e| e.to_string())?;
    let copy = copy_session(&set)?;
    set.sessions.push(copy);
    MockServer::builder()
        .fixture_set(set)
        .max_connections(MAX_CONNECTIONS)
        .start()
        .await
        .map_err(|e| e.to_string())
}

/// A session of the demo database whose one exchange is the COPY the
/// inputs send (`copy items (id, name) from stdin`, one row), written as
/// the recorder writes it (its key computed, its seq after the others').
fn copy_session(set: &pgsim::fixture::FixtureSet) -> Result<pgsim::fixture::LoadedSession, String> {
    let first = set
        .sessions
        .iter()
        .find(|s| s.session.database == DEMO_DB)
        .ok_or("no demo session")?;
    let seq = set
        .sessions
        .iter()
        .flat_map(|s| s.session.exchanges.iter().map(|e| e.seq + 1))
        .max()
        .unwrap_or(0);
    let mut ex: pgsim::fixture::Exchange = serde_json::from_value(serde_json::json!({
        "seq": seq,
        "key": "",
        "sql": inputs::COPY_SQL,
        "copy_in": { "data": inputs::COPY_DATA },
        "results": [{
            "tag": "COPY 1",
            "copy_in": { "format": "text", "columns": ["text", "text"] }
        }]
    }))
    .map_err(|e| e.to_string())?;
    ex.key = pgsim::replay::exchange_key(&ex, &set.rules).to_string();
    let mut session = first.session.clone();
    session.exchanges = vec![ex];
    Ok(pgsim::fixture::LoadedSession {
        path: first.path.with_file_name("fuzz-copy-session.json"),
        session,
    })
}

/// Runs batches until `cfg.inputs` or `cfg.time_limit` is reached.
pub async fn run(
    server: &MockServer,
    corpus: &Corpus,
    cfg: &Config,
    mut progress: impl FnMut(&Stats),
) -> Result<Stats, Box<Failure>> {
    let panics_before = panics();
    let started = Instant::now();
    let mut stats = Stats {
        rss_start: rss(),
        ..Stats::default()
    };
    let reproduce = |what: &str| {
        format!(
            "cargo run --release --example fuzz -- --seed {} --max-inputs {} --batch {} {what}",
            cfg.seed, cfg.max_inputs_per_connection, cfg.batch_connections
        )
    };
    let fail = |what: String, reproduce: String, stats: &Stats| {
        let mut stats = stats.clone();
        stats.elapsed = started.elapsed();
        stats.rss_end = rss();
        Box::new(Failure {
            what,
            reproduce,
            stats,
        })
    };
    let shared = Arc::new(Mutex::new(Stats::default()));
    let corpus_shared = Arc::new(corpus.clone());
    let problem: Arc<Mutex<Option<(u64, String)>>> = Arc::new(Mutex::new(None));
    let mut next = 0u64;
    while stats.inputs < cfg.inputs && started.elapsed() < cfg.time_limit {
        let batch = stats.batches;
        let end = next + cfg.batch_connections;
        let cursor = Arc::new(AtomicU64::new(next));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..cfg.parallel.max(1) {
            let (cursor, shared, problem) = (
                Arc::clone(&cursor),
                Arc::clone(&shared),
                Arc::clone(&problem),
            );
            let (addr, corpus, seed, max) = (
                server.addr(),
                Arc::clone(&corpus_shared),
                cfg.seed,
                cfg.max_inputs_per_connection,
            );
            workers.spawn(async move {
                loop {
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        break;
                    }
                    let planned = connection_bytes(seed, i, max, &corpus);
                    let (outcome, malformed) = send(addr, &planned.bytes).await;
                    let Ok(mut s) = shared.lock() else { break };
                    s.connections += 1;
                    s.bytes += planned.bytes.len() as u64;
                    s.surely_read += planned.surely_read;
                    for (k, n) in planned.kinds.iter().enumerate() {
                        s.by_kind[k] += n;
                        s.inputs += n;
                    }
                    match outcome {
                        Outcome::Answered => s.answered += 1,
                        Outcome::Fatal => s.fatal += 1,
                        Outcome::Silent => s.silent += 1,
                        Outcome::Reset => s.reset += 1,
                        Outcome::Timeout => s.timeouts += 1,
                    }
                    if let Some(why) = malformed {
                        s.malformed += 1;
                        if let Ok(mut p) = problem.lock() {
                            p.get_or_insert((i, format!("malformed answer: {why}")));
                        }
                    }
                    if outcome == Outcome::Timeout {
                        if let Ok(mut p) = problem.lock() {
                            p.get_or_insert((
                                i,
                                format!("no answer and no close {IDLE_READ:?} after the last byte"),
                            ));
                        }
                    }
                }
            });
        }
        while workers.join_next().await.is_some() {}
        next = end;
        if let Ok(counts) = shared.lock() {
            stats.take_counts(&counts);
        }
        if let Some((i, what)) = problem.lock().ok().and_then(|p| p.clone()) {
            return Err(fail(
                format!("connection {i}: {what}"),
                reproduce(&format!("--connection {i}")),
                &stats,
            ));
        }
        let inputs_so_far = format!("--inputs {}", stats.inputs);
        if batch == 0 || (batch + 1).is_multiple_of(BURST_EVERY) {
            burst(server).await.map_err(|e| {
                fail(
                    format!("after batch {batch}: {e}"),
                    reproduce(&inputs_so_far),
                    &stats,
                )
            })?;
            stats.bursts += 1;
        }
        health_check(server, corpus).await.map_err(|e| {
            fail(
                format!("after batch {batch}: the server no longer serves: {e}"),
                reproduce(&inputs_so_far),
                &stats,
            )
        })?;
        let panicked = panics() - panics_before;
        if panicked > 0 {
            return Err(fail(
                format!("after batch {batch}: {panicked} panic(s) (printed above)"),
                reproduce(&inputs_so_far),
                &stats,
            ));
        }
        let now = rss();
        if batch == 0 {
            stats.rss_warm = now;
            stats.rss_bound = 2 * now + (64 << 20);
        }
        stats.rss_max = stats.rss_max.max(now);
        stats.batches += 1;
        if now > stats.rss_bound {
            return Err(fail(
                format!(
                    "after batch {batch}: resident memory {} bytes, over the bound {} (2 x {} after warm-up + 64 MiB)",
                    now, stats.rss_bound, stats.rss_warm
                ),
                reproduce(&inputs_so_far),
                &stats,
            ));
        }
        stats.elapsed = started.elapsed();
        if cfg.progress_every > 0 && stats.batches.is_multiple_of(cfg.progress_every) {
            progress(&stats);
        }
    }
    stats.elapsed = started.elapsed();
    stats.rss_end = rss();
    Ok(stats)
}
