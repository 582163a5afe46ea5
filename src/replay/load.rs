//! Reading a fixture directory on worker threads: each file is read,
//! hashed, and digested from the index cache when its content is the one
//! cached, else parsed from its JSON; the digests reach the caller in
//! file-name order, so the index is the same whatever the timing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::cache::{self, Cache, Entry};
use super::digest::{self, Digest};
use crate::fixture::{FixtureError, Rules};

/// What the workers read.
pub(super) struct Work<'a> {
    pub(super) dir: &'a Path,
    pub(super) files: &'a [PathBuf],
    pub(super) rules: &'a Rules,
    pub(super) cache: Option<&'a Cache>,
    /// Make each file's entry for the next cache.
    pub(super) keep_entries: bool,
}

/// One file, digested.
pub(super) struct Loaded {
    pub(super) digest: Digest,
    pub(super) entry: Option<Entry>,
    pub(super) from_cache: bool,
    /// A cache entry that had to be ignored.
    pub(super) notes: Vec<String>,
}

/// Digests every file of `work` on `workers` threads and hands each to
/// `sink` in file order.
pub(super) fn run(
    work: &Work<'_>,
    workers: usize,
    mut sink: impl FnMut(&Path, Result<Loaded, FixtureError>),
) {
    let next = AtomicUsize::new(0);
    let workers = workers.clamp(1, work.files.len().max(1));
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(workers * 2);
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                // One buffer per worker, reused: a fresh allocation per file
                // costs a page fault per page, which is most of reading it.
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = work.files.get(i) else {
                        return;
                    };
                    if tx.send((i, one(work, path, &mut buf))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // At most one file per worker is in flight, so this holds at most
        // that many digests that arrived early.
        let mut early = BTreeMap::new();
        let mut due = 0;
        for (i, loaded) in rx {
            early.insert(i, loaded);
            while let Some(loaded) = early.remove(&due) {
                sink(&work.files[due], loaded);
                due += 1;
            }
        }
    });
}

fn one(work: &Work<'_>, path: &Path, buf: &mut Vec<u8>) -> Result<Loaded, FixtureError> {
    buf.clear();
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, buf))
        .map_err(|e| FixtureError::io(path, e))?;
    let bytes = &buf[..];
    let mut notes = Vec::new();
    let keyed = work.cache.is_some() || work.keep_entries;
    let hash = keyed.then(|| cache::content_hash(bytes));
    let rel = cache::relative(work.dir, path);
    if let (Some(c), Some(hash)) = (work.cache, &hash) {
        match c.get(&rel, bytes.len() as u64, hash) {
            Some(Ok((digest, entry))) => {
                return Ok(Loaded {
                    digest,
                    entry: work.keep_entries.then_some(entry),
                    from_cache: true,
                    notes,
                })
            }
            Some(Err(why)) => notes.push(format!("index cache entry ignored: {why}")),
            None => {}
        }
    }
    let (session, warning) = crate::fixture::parse_file(path, bytes)?;
    let digest = digest::digest(session, work.rules, warning);
    let entry = match (work.keep_entries, hash) {
        (true, Some(hash)) => Entry::new(rel, bytes, hash, &digest),
        _ => None,
    };
    Ok(Loaded {
        digest,
        entry,
        from_cache: false,
        notes,
    })
}
