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

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgsim::fixture::Value;
use pgsim::MockServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
const VALID: usize = 0;
const MUTATED: usize = 1;
const RANDOM: usize = 2;
const ABSURD: usize = 3;
const TRUNCATED: usize = 4;
const STARTUP: usize = 5;
const OVERSIZED: usize = 6;
const STARTUP_RANDOM: usize = 7;

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Inputs sent.
    pub inputs: u64,
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

/// xorshift64*, seeded through splitmix64: small, and the same forever
/// (a seed in a bug report keeps meaning the same inputs).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of connection `stream` of a run seeded `seed`.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(z | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Real message material from the demo fixtures: the SQL of every
/// recorded exchange, with its parameters where it had some.
#[derive(Debug, Clone)]
pub struct Corpus {
    simple: Vec<String>,
    extended: Vec<(String, Vec<Option<String>>)>,
    /// The recorded rows of [`DEMO_PIN`], as text.
    pin_rows: Vec<Vec<Option<String>>>,
}

impl Corpus {
    /// Reads the fixtures of `dir`.
    pub fn load(dir: &std::path::Path) -> Result<Self, String> {
        let set = pgsim::fixture::load_dir(dir).map_err(|e| e.to_string())?;
        let (mut simple, mut extended) = (BTreeSet::new(), BTreeSet::new());
        let mut pin_rows = None;
        for s in &set.sessions {
            for ex in &s.session.exchanges {
                match &ex.params {
                    Some(params) => {
                        let values: Option<Vec<Option<String>>> = params
                            .iter()
                            .map(|p| match &p.value {
                                Value::Null => Some(None),
                                Value::Text(t) => Some(Some(t.clone())),
                                Value::Raw { .. } => None,
                            })
                            .collect();
                        if let Some(values) = values {
                            extended.insert((ex.sql.clone(), values));
                        }
                    }
                    None => {
                        simple.insert(ex.sql.clone());
                    }
                }
                if ex.sql == DEMO_PIN && pin_rows.is_none() {
                    pin_rows = ex.results.first().map(|r| {
                        r.rows
                            .iter()
                            .map(|row| {
                                row.iter()
                                    .map(|v| match v {
                                        Value::Text(t) => Some(t.clone()),
                                        _ => None,
                                    })
                                    .collect()
                            })
                            .collect()
                    });
                }
            }
        }
        let pin_rows = pin_rows.ok_or(format!("{DEMO_PIN:?} is not recorded in {dir:?}"))?;
        Ok(Corpus {
            simple: simple.into_iter().collect(),
            extended: extended.into_iter().collect(),
            pin_rows,
        })
    }
}

// ---- Frontend messages, written by hand: the fuzzer is its own client.

fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 5);
    m.push(kind);
    m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn query(sql: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, sql);
    msg(b'Q', &b)
}

fn parse(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, name);
    cstr(&mut b, sql);
    b.extend_from_slice(&(types.len() as i16).to_be_bytes());
    for t in types {
        b.extend_from_slice(&t.to_be_bytes());
    }
    msg(b'P', &b)
}

fn bind(portal: &str, stmt: &str, params: &[Option<String>], binary_results: bool) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    cstr(&mut b, stmt);
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(params.len() as i16).to_be_bytes());
    for p in params {
        match p {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v.as_bytes());
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    if binary_results {
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
    } else {
        b.extend_from_slice(&0i16.to_be_bytes());
    }
    msg(b'B', &b)
}

fn named(kind: u8, target: u8, name: &str) -> Vec<u8> {
    let mut b = vec![target];
    cstr(&mut b, name);
    msg(kind, &b)
}

fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    b.extend_from_slice(&max_rows.to_be_bytes());
    msg(b'E', &b)
}

fn startup(params: &[(&str, &str)], version: i32) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    for (k, v) in params {
        cstr(&mut b, k);
        cstr(&mut b, v);
    }
    b.push(0);
    let mut p = (b.len() as i32 + 4).to_be_bytes().to_vec();
    p.extend_from_slice(&b);
    p
}

fn demo_startup() -> Vec<u8> {
    startup(&[("user", "postgres"), ("database", DEMO_DB)], 196_608)
}

fn special(code: i32, extra: &[u8]) -> Vec<u8> {
    let mut p = (8 + extra.len() as i32).to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(extra);
    p
}

/// Declared lengths worth trying: the edges of every limit, and nonsense.
const LENGTHS: [i64; 20] = [
    0,
    1,
    3,
    4,
    5,
    8,
    9_999,
    10_000,
    10_001,
    65_535,
    65_536,
    65_540,
    1 << 20,
    1 << 30,
    0x3fff_fffe,
    0x3fff_ffff,
    i32::MAX as i64,
    -1,
    -4,
    i32::MIN as i64,
];

const TYPES: &[u8] = b"QPBdFpCDEHSXcf";

/// One valid message sequence, as separate messages (so mutations can aim
/// at one).
fn valid(rng: &mut Rng, corpus: &Corpus) -> Vec<Vec<u8>> {
    match rng.below(10) {
        0..=2 => vec![query(rng.pick::<String>(&corpus.simple))],
        3..=5 => {
            let (sql, params) = rng.pick(&corpus.extended);
            let stmt = if rng.chance(50) { "" } else { "s1" };
            let mut seq = vec![
                parse(stmt, sql, &[]),
                bind("", stmt, params, rng.chance(20)),
                named(b'D', b'P', ""),
                execute("", if rng.chance(20) { 1 } else { 0 }),
            ];
            if rng.chance(30) {
                seq.push(execute("", 0));
            }
            if rng.chance(30) {
                seq.push(named(b'C', b'S', stmt));
            }
            seq.push(if rng.chance(85) {
                msg(b'S', b"")
            } else {
                msg(b'H', b"")
            });
            seq
        }
        6 => {
            let (sql, _) = rng.pick(&corpus.extended);
            vec![
                parse("s2", sql, &[23]),
                named(b'D', b'S', "s2"),
                msg(b'S', b""),
            ]
        }
        7 => {
            let begin = *rng.pick(&["begin;", "START TRANSACTION", "BEGIN"]);
            let end = *rng.pick(&["COMMIT", "ROLLBACK", "rollback;", "commit"]);
            vec![
                query(begin),
                query(rng.pick::<String>(&corpus.simple)),
                query(end),
            ]
        }
        8 => {
            // COPY FROM STDIN: the demo records none, so this is the
            // path of COPY data arriving outside COPY, as a client whose
            // COPY failed sends it.
            let mut seq = vec![query("copy items (id, name) from stdin")];
            seq.push(msg(b'd', b"1\tapple\n"));
            seq.push(if rng.chance(70) {
                msg(b'c', b"")
            } else {
                msg(b'f', b"client gave up\0")
            });
            seq.push(msg(b'S', b""));
            seq
        }
        _ => match rng.below(4) {
            0 => vec![query("")],
            1 => vec![query(&format!("{DEMO_PIN}; select 1"))],
            2 => {
                // FunctionCall of oid 1 with one text argument.
                let mut b = 1u32.to_be_bytes().to_vec();
                b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, b'x', 0, 0]);
                vec![msg(b'F', &b), msg(b'S', b"")]
            }
            _ => vec![msg(b'p', b"secret\0"), query(DEMO_PIN)],
        },
    }
}

/// Byte-level damage to a sequence (1 to 4 mutations).
fn mutate(rng: &mut Rng, mut seq: Vec<Vec<u8>>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        if seq.is_empty() {
            break;
        }
        let i = rng.below(seq.len());
        if seq[i].is_empty() {
            seq.remove(i);
            continue;
        }
        match rng.below(9) {
            0 => {
                let m = &mut seq[i];
                let at = rng.below(m.len());
                m[at] ^= 1 << rng.below(8);
            }
            1 => {
                let m = &mut seq[i];
                let at = rng.below(m.len());
                m[at] = rng.next() as u8;
            }
            2 => {
                let n = 1 + rng.below(16);
                let junk = rng.bytes(n);
                let m = &mut seq[i];
                let at = rng.below(m.len() + 1);
                m.splice(at..at, junk);
            }
            3 => {
                let m = &mut seq[i];
                let at = rng.below(m.len());
                let n = 1 + rng.below((m.len() - at).min(8));
                m.drain(at..at + n);
            }
            4 => {
                // A corrupt length: an edge of some limit, or off by a bit.
                let m = &mut seq[i];
                if m.len() >= 5 {
                    let len = if rng.chance(70) {
                        *rng.pick(&LENGTHS)
                    } else {
                        i64::from(i32::from_be_bytes([m[1], m[2], m[3], m[4]]))
                            + rng.below(9) as i64
                            - 4
                    };
                    m[1..5].copy_from_slice(&(len as i32).to_be_bytes());
                }
            }
            5 => {
                let kind = if rng.chance(50) {
                    *rng.pick(TYPES)
                } else {
                    rng.next() as u8
                };
                seq[i][0] = kind;
            }
            6 => {
                let copy = seq[i].clone();
                seq.insert(i, copy);
            }
            7 => {
                seq.remove(i);
            }
            _ => {
                let j = rng.below(seq.len());
                seq.swap(i, j);
            }
        }
    }
    seq.concat()
}

/// A startup-phase input: what a client sends before (or instead of) a
/// session.
fn startup_input(rng: &mut Rng, corpus: &Corpus) -> (usize, Vec<u8>) {
    match rng.below(12) {
        0 => {
            let n = 1 + rng.below(64);
            (STARTUP_RANDOM, rng.bytes(n))
        }
        1 | 2 => {
            // Oversized: a declared length past the 10000-byte limit, its
            // body (some of it) following.
            let len = 10_005 + rng.below(1 << 20);
            let mut p = (len as i32).to_be_bytes().to_vec();
            p.extend_from_slice(&196_608i32.to_be_bytes());
            let body = rng.below(20_000);
            p.extend(std::iter::repeat_n(b'a', body));
            (OVERSIZED, p)
        }
        3 => {
            // Many parameters, up to about the limit.
            let n = rng.below(400);
            let params: Vec<(String, String)> = (0..n)
                .map(|i| (format!("p{i}"), "v".repeat(rng.below(30))))
                .collect();
            let mut all: Vec<(&str, &str)> = vec![("user", "postgres"), ("database", DEMO_DB)];
            all.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            (STARTUP, startup(&all, 196_608))
        }
        4 => {
            // SSLRequest or GSSENCRequest (answered N), then a startup.
            let code = *rng.pick(&[80_877_103, 80_877_104]);
            let mut p = special(code, b"");
            if rng.chance(20) {
                p.extend(special(code, b""));
            }
            p.extend(demo_startup());
            (STARTUP, p)
        }
        5 => {
            let extra = rng.bytes(8);
            (STARTUP, special(80_877_102, &extra))
        }
        6 => {
            let version = *rng.pick(&[196_609, 131_072, 0, -1, 80_877_105, 1234 << 16]);
            (
                STARTUP,
                startup(&[("user", "postgres"), ("database", DEMO_DB)], version),
            )
        }
        7 => {
            let choices: [&[(&str, &str)]; 6] = [
                &[("user", "postgres"), ("database", "no_such_db")][..],
                &[("database", DEMO_DB)][..],
                &[("user", "nobody"), ("database", DEMO_DB)][..],
                &[("user", "postgres"), ("replication", "true")][..],
                &[
                    ("user", "postgres"),
                    ("database", DEMO_DB),
                    ("options", "-c pgsim.scope=x"),
                ][..],
                &[("user", ""), ("database", "")][..],
            ];
            let params = *rng.pick(&choices);
            (STARTUP, startup(params, 196_608))
        }
        _ => {
            let m = mutate(rng, vec![demo_startup()]);
            let _ = corpus;
            (STARTUP, m)
        }
    }
}

/// One session-phase input.
fn session_input(rng: &mut Rng, corpus: &Corpus) -> (usize, Vec<u8>) {
    match rng.below(100) {
        0..=44 => (VALID, valid(rng, corpus).concat()),
        45..=79 => {
            let seq = valid(rng, corpus);
            (MUTATED, mutate(rng, seq))
        }
        80..=86 => {
            let n = 1 + rng.below(256);
            (RANDOM, rng.bytes(n))
        }
        87..=92 => {
            let mut m = vec![*rng.pick(TYPES)];
            m.extend_from_slice(&(*rng.pick(&LENGTHS) as i32).to_be_bytes());
            let n = rng.below(64);
            m.extend(rng.bytes(n));
            (ABSURD, m)
        }
        _ => {
            let mut m = valid(rng, corpus).concat();
            let at = rng.below(m.len());
            m.truncate(at);
            (TRUNCATED, m)
        }
    }
}

/// What connection `index` of a run seeded `seed` sends, and its inputs
/// by kind.
pub fn connection_bytes(
    seed: u64,
    index: u64,
    max_inputs: u64,
    corpus: &Corpus,
) -> (Vec<u8>, [u64; 8]) {
    let mut rng = Rng::new(seed, index);
    let mut kinds = [0u64; 8];
    let mut out = Vec::new();
    if rng.chance(12) {
        let (kind, bytes) = startup_input(&mut rng, corpus);
        kinds[kind] += 1;
        out.extend(bytes);
    } else {
        out.extend(demo_startup());
    }
    for _ in 0..1 + rng.below(max_inputs.max(1) as usize) {
        let (kind, bytes) = session_input(&mut rng, corpus);
        kinds[kind] += 1;
        out.extend(bytes);
    }
    (out, kinds)
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

/// A server for a run: the demo fixtures, a connection cap of
/// [`MAX_CONNECTIONS`], the other limits at their defaults.
pub async fn start_server(dir: &std::path::Path) -> Result<MockServer, String> {
    MockServer::builder()
        .fixtures(dir)
        .max_connections(MAX_CONNECTIONS)
        .start()
        .await
        .map_err(|e| e.to_string())
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
            "cargo run --release --example fuzz -- --seed {} {what}",
            cfg.seed
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
                    let (bytes, kinds) = connection_bytes(seed, i, max, &corpus);
                    let (outcome, malformed) = send(addr, &bytes).await;
                    let Ok(mut s) = shared.lock() else { break };
                    s.connections += 1;
                    s.bytes += bytes.len() as u64;
                    for (k, n) in kinds.iter().enumerate() {
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
