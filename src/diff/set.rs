//! Comparing two fixture sets exchange by exchange.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::answer::{align_by, Step};
use super::show::{one_line, quoted};
use super::{compare_exchanges, Difference};
use crate::fixture::{Exchange, FixtureSet, Phase};

/// One side of a comparison: a fixture set and the directory it was
/// loaded from, which its files are named relative to.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// Where the set was loaded from.
    pub dir: &'a Path,
    /// The set.
    pub set: &'a FixtureSet,
}

/// What differs between two fixture sets.
#[derive(Debug, Clone, Default)]
pub struct SetDiff {
    /// Every exchange added, removed or answered differently, by database
    /// (then subdirectory) and in recorded order.
    pub entries: Vec<Entry>,
    /// Exchanges present on both sides with the same answer.
    pub same: usize,
}

/// One exchange that differs.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its database.
    pub database: String,
    /// The subdirectory of its file, relative to the set's directory
    /// (empty for a flat set; `queries` in `fixtures/toolkit`): the
    /// subdirectories of a set such as `fixtures/toolkit` or
    /// `fixtures/routing` are separate recordings, compared separately.
    pub dir: PathBuf,
    /// How it differs.
    pub kind: EntryKind,
}

/// How an exchange differs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EntryKind {
    /// Only the second set holds it.
    Added {
        /// Where.
        now: Located,
    },
    /// Only the first set holds it.
    Removed {
        /// Where.
        recorded: Located,
    },
    /// Both hold it, answered differently.
    Changed {
        /// In the first set.
        recorded: Located,
        /// In the second set.
        now: Located,
        /// What differs (never empty).
        differences: Vec<Difference>,
    },
}

/// An exchange and the file that holds it.
#[derive(Debug, Clone)]
pub struct Located {
    /// The file, relative to its set's directory.
    pub file: PathBuf,
    /// The exchange.
    pub exchange: Box<Exchange>,
}

impl SetDiff {
    /// Whether the two sets answer everything the same.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (added, removed, changed) counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for e in &self.entries {
            match e.kind {
                EntryKind::Added { .. } => counts.0 += 1,
                EntryKind::Removed { .. } => counts.1 += 1,
                EntryKind::Changed { .. } => counts.2 += 1,
            }
        }
        counts
    }
}

/// Where exchanges are compared: a database within one subdirectory.
type Scope = (PathBuf, String);

/// An exchange on one side, with its place in recorded order.
struct Item<'a> {
    seq: u64,
    file: PathBuf,
    index: usize,
    exchange: &'a Exchange,
}

/// What `now` changed relative to `recorded`. Exchanges are matched within
/// a database (and subdirectory) by query key, the n-th recorded exchange
/// of a key with the n-th of that key now, in recorded order (sequence
/// number, then file), lined up so that one exchange more or fewer does
/// not shift the others of its query: the answers both sides share at the
/// start and at the end pair up, then a middle of the same length pairs in
/// order (changed answers) and otherwise is removed and added. A
/// description-only exchange (phase `describe`) is matched only with
/// another. Paired exchanges are compared with [`compare_exchanges`].
pub fn compare_sets(recorded: Side<'_>, now: Side<'_>) -> SetDiff {
    let (a, b) = (scopes(recorded), scopes(now));
    let mut all: Vec<&Scope> = a.keys().chain(b.keys()).collect();
    all.sort();
    all.dedup();
    let mut diff = SetDiff::default();
    for scope in all {
        let none = Vec::new();
        let (xa, xb) = (a.get(scope).unwrap_or(&none), b.get(scope).unwrap_or(&none));
        compare_scope(scope, xa, xb, &mut diff);
    }
    diff
}

fn scopes(side: Side<'_>) -> BTreeMap<Scope, Vec<Item<'_>>> {
    let mut out: BTreeMap<Scope, Vec<Item<'_>>> = BTreeMap::new();
    for s in &side.set.sessions {
        let file = s.path.strip_prefix(side.dir).unwrap_or(&s.path).to_owned();
        let dir = file.parent().map(Path::to_owned).unwrap_or_default();
        let items = out.entry((dir, s.session.database.clone())).or_default();
        for (index, exchange) in s.session.exchanges.iter().enumerate() {
            items.push(Item {
                seq: exchange.seq,
                file: file.clone(),
                index,
                exchange,
            });
        }
    }
    for items in out.values_mut() {
        items.sort_by(|x, y| (x.seq, &x.file, x.index).cmp(&(y.seq, &y.file, y.index)));
    }
    out
}

fn compare_scope(scope: &Scope, a: &[Item<'_>], b: &[Item<'_>], diff: &mut SetDiff) {
    let (qa, qb) = (queues(a), queues(b));
    // (position in recorded order, entry); an added exchange takes its
    // position on the side that has it.
    let mut found: Vec<(usize, EntryKind)> = Vec::new();
    let located = |it: &Item<'_>| Located {
        file: it.file.clone(),
        exchange: Box::new(it.exchange.clone()),
    };
    let none = Vec::new();
    let keys: std::collections::BTreeSet<_> = qa.keys().chain(qb.keys()).collect();
    for key in keys {
        let (ia, ib) = (qa.get(key).unwrap_or(&none), qb.get(key).unwrap_or(&none));
        // The answers of one query in recorded order, lined up as rows
        // are: one exchange more or less shifts nothing after it.
        let differences =
            |i: usize, j: usize| compare_exchanges(a[ia[i]].exchange, b[ib[j]].exchange);
        let steps = align_by(ia.len(), ib.len(), |i, j| differences(i, j).is_empty());
        for step in steps {
            match step {
                Step::Both(i, j) => {
                    let differences = differences(i, j);
                    if differences.is_empty() {
                        diff.same += 1;
                    } else {
                        found.push((
                            ia[i],
                            EntryKind::Changed {
                                recorded: located(&a[ia[i]]),
                                now: located(&b[ib[j]]),
                                differences,
                            },
                        ));
                    }
                }
                Step::Removed(i) => found.push((
                    ia[i],
                    EntryKind::Removed {
                        recorded: located(&a[ia[i]]),
                    },
                )),
                Step::Added(j) => found.push((
                    ib[j],
                    EntryKind::Added {
                        now: located(&b[ib[j]]),
                    },
                )),
            }
        }
    }
    found.sort_by_key(|(position, _)| *position);
    diff.entries
        .extend(found.into_iter().map(|(_, kind)| Entry {
            database: scope.1.clone(),
            dir: scope.0.clone(),
            kind,
        }));
}

/// The positions of each query's exchanges in recorded order, by (key,
/// whether the exchange is description-only, its `pgsim.scope`): answers in
/// different scopes answer different tests.
type QueueKey<'a> = (&'a str, bool, Option<&'a str>);

fn queues<'a>(items: &[Item<'a>]) -> BTreeMap<QueueKey<'a>, Vec<usize>> {
    let mut q: BTreeMap<QueueKey<'a>, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        let describe = it.exchange.phase == Phase::Describe;
        q.entry((
            it.exchange.key.as_str(),
            describe,
            it.exchange.scope.as_deref(),
        ))
        .or_default()
        .push(i);
    }
    q
}

/// Differences listed per changed exchange before the rest is counted.
const SHOWN_PER_EXCHANGE: usize = 20;

/// `database "x":` (and its subdirectory) before the first entry of each
/// database: `pgsim diff` and `pgsim verify` alike.
pub(crate) fn database_header<'e>(
    f: &mut std::fmt::Formatter<'_>,
    scope: &mut Option<(&'e Path, &'e str)>,
    e: &'e Entry,
) -> std::fmt::Result {
    if *scope == Some((e.dir.as_path(), e.database.as_str())) {
        return Ok(());
    }
    *scope = Some((e.dir.as_path(), e.database.as_str()));
    if e.dir.as_os_str().is_empty() {
        writeln!(f, "database {:?}:", e.database)
    } else {
        writeln!(f, "database {:?} in {}:", e.database, e.dir.display())
    }
}

/// The differences of one exchange, one indented line each, the first
/// [`SHOWN_PER_EXCHANGE`] of them: `pgsim diff` and `pgsim verify` alike.
pub(crate) fn write_differences(
    f: &mut std::fmt::Formatter<'_>,
    differences: &[super::Difference],
) -> std::fmt::Result {
    for d in differences.iter().take(SHOWN_PER_EXCHANGE) {
        writeln!(f, "      {d}")?;
    }
    if differences.len() > SHOWN_PER_EXCHANGE {
        writeln!(
            f,
            "      ... and {} more differences",
            differences.len() - SHOWN_PER_EXCHANGE
        )?;
    }
    Ok(())
}

impl std::fmt::Display for SetDiff {
    /// One block per database: each exchange that differs (its SQL and
    /// parameters, where it is, what changed), then a count.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut scope: Option<(&Path, &str)> = None;
        for e in &self.entries {
            database_header(f, &mut scope, e)?;
            write!(f, "{e}")?;
        }
        let (added, removed, changed) = self.counts();
        if self.is_empty() {
            writeln!(f, "no differences: {} exchanges the same", self.same)
        } else {
            writeln!(
                f,
                "{} exchanges differ: {changed} changed, {removed} removed, {added} added; {} the same",
                self.entries.len(),
                self.same
            )
        }
    }
}

impl std::fmt::Display for Entry {
    /// The exchange's block, without its database header.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |l: &Located| format!("{} seq {}", l.file.display(), l.exchange.seq);
        match &self.kind {
            EntryKind::Added { now } => {
                writeln!(f, "  added: {}", query_line(&now.exchange))?;
                writeln!(f, "      now at {}", at(now))
            }
            EntryKind::Removed { recorded } => {
                writeln!(f, "  removed: {}", query_line(&recorded.exchange))?;
                writeln!(f, "      was at {}", at(recorded))
            }
            EntryKind::Changed {
                recorded,
                now,
                differences,
            } => {
                writeln!(f, "  changed: {}", query_line(&recorded.exchange))?;
                if at(recorded) == at(now) {
                    writeln!(f, "      at {}", at(recorded))?;
                } else {
                    writeln!(f, "      at {}, now at {}", at(recorded), at(now))?;
                }
                write_differences(f, differences)
            }
        }
    }
}

/// An exchange's SQL on one line (cut after 100 characters), with its
/// parameters (`with $1 = '2'`) and `(described only)` for a description:
/// how a difference names the query it is about.
pub fn query_line(ex: &Exchange) -> String {
    let mut out = one_line(&ex.sql, 100);
    if ex.phase == Phase::Describe {
        out.push_str(" (described only)");
    }
    if let Some(params) = ex.params.as_ref().filter(|p| !p.is_empty()) {
        let shown: Vec<String> = params
            .iter()
            .enumerate()
            .map(|(i, p)| format!("${} = {}", i + 1, quoted(&p.value)))
            .collect();
        out.push_str(&format!(" with {}", shown.join(", ")));
    }
    out
}
