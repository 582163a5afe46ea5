//! The inputs: a seeded generator, the demo fixtures' messages, and the
//! ways a message sequence is damaged.

use std::collections::BTreeSet;

use pgsim::fixture::Value;

use super::{DEMO_DB, DEMO_PIN};

// Indices into `super::KINDS`, where the kinds are named.
const VALID: usize = 0;
const MUTATED: usize = 1;
const RANDOM: usize = 2;
const ABSURD: usize = 3;
const TRUNCATED: usize = 4;
const STARTUP: usize = 5;
const OVERSIZED: usize = 6;
const STARTUP_RANDOM: usize = 7;

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
    pub(super) pin_rows: Vec<Vec<Option<String>>>,
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

pub(super) fn demo_startup() -> Vec<u8> {
    startup(&[("user", "postgres"), ("database", DEMO_DB)], 196_608)
}

fn special(code: i32, extra: &[u8]) -> Vec<u8> {
    let mut p = (8 + extra.len() as i32).to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(extra);
    p
}

/// The COPY the inputs send and the fuzzing server records.
pub(super) const COPY_SQL: &str = "copy items (id, name) from stdin";
/// Its one row.
pub(super) const COPY_DATA: &str = "1\tapple\n";

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
            // COPY FROM STDIN, recorded by the fuzzing server (see
            // `super::start_server`): copy-in, and, mutated, COPY data
            // outside COPY.
            let mut seq = vec![query(COPY_SQL)];
            seq.push(msg(b'd', COPY_DATA.as_bytes()));
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
fn startup_input(rng: &mut Rng) -> (usize, Vec<u8>) {
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

/// What one connection sends.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The bytes, startup included.
    pub bytes: Vec<u8>,
    /// Its inputs by kind (indices of `super::KINDS`).
    pub kinds: [u64; 8],
    /// Its inputs up to and including the first that may end the
    /// connection (any but a valid sequence, and the password message
    /// PostgreSQL refuses after startup): the server surely reads these.
    /// What follows may never be read, when that one ended the session.
    pub surely_read: u64,
}

/// What connection `index` of a run seeded `seed` sends.
pub fn connection_bytes(seed: u64, index: u64, max_inputs: u64, corpus: &Corpus) -> Planned {
    let mut rng = Rng::new(seed, index);
    let mut planned = Planned {
        bytes: Vec::new(),
        kinds: [0; 8],
        surely_read: 0,
    };
    let mut ended = false;
    if rng.chance(12) {
        let (kind, bytes) = startup_input(&mut rng);
        planned.kinds[kind] += 1;
        planned.bytes.extend(bytes);
        planned.surely_read = 1;
        ended = true;
    } else {
        planned.bytes.extend(demo_startup());
    }
    for _ in 0..1 + rng.below(max_inputs.max(1) as usize) {
        let (kind, bytes) = session_input(&mut rng, corpus);
        planned.kinds[kind] += 1;
        if !ended {
            planned.surely_read += 1;
            ended = kind != VALID || bytes.first() == Some(&b'p');
        }
        planned.bytes.extend(bytes);
    }
    planned
}
