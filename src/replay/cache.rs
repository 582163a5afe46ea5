//! The index cache: every fixture file's [`Digest`] in one binary file next
//! to the fixtures (`DIR/.pgsim-cache/index.bin`), so that a large set
//! starts without parsing its JSON or hashing its queries again.
//!
//! The JSON files stay the reviewed source of truth. The cache is never
//! trusted without checking:
//!
//! - it is keyed by the **content hash** (BLAKE3: as collision-resistant as SHA-256 for this, and several times faster, which is most of a warm start) of every fixture file and
//!   of the rules file: a file whose bytes changed is parsed again, whatever
//!   its name, size or timestamps say;
//! - it holds a fingerprint of the code that made it (the source of the
//!   digest, key and fixture-model modules, compiled in): a build that keys
//!   or encodes differently never reads an older build's cache;
//! - the whole file carries a BLAKE3 checksum, so a torn, truncated or
//!   corrupted cache is detected and ignored (and rebuilt), never served;
//! - every index inside a digest is bounds-checked before use.
//!
//! It is written atomically (a temporary file renamed into place), with a
//! `.gitignore` so it is never committed, and only when something changed.
//! `PGSIM_INDEX_CACHE=off` (or [`LoadOptions::index_cache`]) turns it off.
//!
//! Why a format of our own around `postcard` rather than a crate's archive:
//! the rows and parameters of every file must come out as slices of one
//! buffer (`Bytes`), shared by the answers without a copy, and the rest
//! decoded into the index's own types; postcard (serde, not self-describing,
//! compact) encodes the structured part.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use crate::fixture::{FixtureError, Rules};

/// The cache directory's name inside a fixture directory. Dot directories
/// are not fixtures, so the loader never reads it as one.
pub const CACHE_DIR: &str = ".pgsim-cache";

/// The cache file's name inside [`CACHE_DIR`].
pub const CACHE_FILE: &str = "index.bin";

const MAGIC: &[u8; 8] = b"PGSIMIX1";

/// How [`super::Replay::load_with`] loads a fixture directory.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Read and write the index cache (default: on, unless the environment
    /// variable `PGSIM_INDEX_CACHE` is `off`, `0` or `false`).
    pub index_cache: bool,
    /// Worker threads parsing and digesting files (default: the machine's
    /// parallelism, at most 8).
    pub workers: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        let off = std::env::var("PGSIM_INDEX_CACHE")
            .map(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "off" | "0" | "false"
                )
            })
            .unwrap_or(false);
        LoadOptions {
            index_cache: !off,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(8),
        }
    }
}

/// What loading a fixture directory did (see [`super::Replay::load_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Fixture files found.
    pub files: usize,
    /// Files whose digest came from the index cache (their content was the
    /// one cached).
    pub from_cache: usize,
    /// Files parsed from their JSON (new, changed, or no usable cache).
    pub parsed: usize,
    /// Whether the index cache was (re)written by this load.
    pub cache_written: bool,
    /// Why the cache could not be written, when it could not (a read-only
    /// directory, say): the set still serves, only without the shortcut.
    pub cache_error: Option<String>,
    /// Wall time of the load.
    pub elapsed: std::time::Duration,
}

/// What the cache knows of one fixture file.
#[derive(Debug, Serialize, Deserialize)]
struct CachedFile {
    /// Relative to the fixture directory, `/`-separated.
    path: String,
    len: u64,
    hash: [u8; 32],
    /// Ranges of the file's serialized digest in the metas section and of
    /// its arena in the arenas section.
    meta: (u64, u64),
    arena: (u64, u64),
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    fingerprint: [u8; 32],
    rules: [u8; 32],
    files: Vec<CachedFile>,
}

/// A cache read from disk and checked as a whole; its files are matched
/// one by one.
pub(crate) struct Cache {
    files: HashMap<String, CachedFile>,
    metas: Bytes,
    arenas: Bytes,
}

/// A file's digest as it goes into the next cache: its serialized form
/// and its arena.
pub(crate) struct Entry {
    pub(crate) path: String,
    pub(crate) len: u64,
    pub(crate) hash: [u8; 32],
    pub(crate) meta: Bytes,
    pub(crate) arena: Bytes,
}

/// The code whose output the cache holds: a build with other sources
/// never reads the cache.
fn fingerprint() -> [u8; 32] {
    static PRINT: OnceLock<[u8; 32]> = OnceLock::new();
    *PRINT.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        for source in [
            include_str!("cache.rs"),
            include_str!("digest.rs"),
            include_str!("mod.rs"),
            include_str!("../key/mod.rs"),
            include_str!("../key/normalize.rs"),
            include_str!("../key/lexer.rs"),
            include_str!("../fixture/model.rs"),
            include_str!("../fixture/rules.rs"),
            include_str!("../wire/encode.rs"),
        ] {
            h.update(&(source.len() as u64).to_le_bytes());
            h.update(source.as_bytes());
        }
        *h.finalize().as_bytes()
    })
}

/// The content hash of a file's bytes.
pub(crate) fn content_hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// The rules of `dir` ([`crate::fixture::Rules::load`]) and the hash the
/// cache records for them (zeros when there is no rules file), from one
/// read of the file.
pub(crate) fn rules_with_hash(dir: &Path) -> Result<(Rules, [u8; 32]), FixtureError> {
    let path = dir.join(crate::fixture::RULES_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Rules::default(), [0; 32]))
        }
        Err(e) => return Err(FixtureError::io(&path, e)),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        );
        FixtureError::io(&path, e)
    })?;
    Ok((Rules::parse(&path, text)?, content_hash(&bytes)))
}

/// `path` relative to `dir`, `/`-separated, as the cache names it.
pub(crate) fn relative(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) fn cache_path(dir: &Path) -> PathBuf {
    dir.join(CACHE_DIR).join(CACHE_FILE)
}

/// Why a cache was not used, when that is worth telling.
#[derive(Debug)]
pub(crate) enum Unusable {
    /// None there, or made by another build or for other rules: rebuilt
    /// without a word.
    Stale,
    /// Torn, truncated or corrupted: said, then rebuilt.
    Corrupt(String),
}

impl Cache {
    /// Reads and checks the cache of `dir` for `rules`.
    pub(crate) fn read(dir: &Path, rules: [u8; 32]) -> Result<Cache, Unusable> {
        let path = cache_path(dir);
        let mut file = std::fs::File::open(&path).map_err(|_| Unusable::Stale)?;
        let corrupt = |what: &str| Unusable::Corrupt(format!("{}: {what}", path.display()));
        let mut head = [0u8; 32];
        file.read_exact(&mut head)
            .map_err(|_| corrupt("shorter than its header"))?;
        if &head[..8] != MAGIC {
            return Err(corrupt("not a pgsim index cache"));
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&head[8 + 8 * i..16 + 8 * i]);
            u64::from_le_bytes(w)
        };
        let (header_len, metas_len, arenas_len) = (word(0), word(1), word(2));
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let expected = 32u64
            .checked_add(header_len)
            .and_then(|n| n.checked_add(metas_len))
            .and_then(|n| n.checked_add(arenas_len))
            .and_then(|n| n.checked_add(32));
        if expected != Some(size) {
            return Err(corrupt(&format!(
                "{size} bytes where its header says {}",
                expected.map_or("an impossible size".to_owned(), |n| n.to_string())
            )));
        }
        let mut front = vec![0u8; (header_len + metas_len) as usize];
        file.read_exact(&mut front)
            .map_err(|_| corrupt("truncated"))?;
        let mut arenas = BytesMut::zeroed(arenas_len as usize);
        file.read_exact(&mut arenas)
            .map_err(|_| corrupt("truncated"))?;
        let mut sum = [0u8; 32];
        file.read_exact(&mut sum)
            .map_err(|_| corrupt("truncated"))?;
        let mut h = blake3::Hasher::new();
        h.update(&head);
        h.update(&front);
        h.update(&arenas);
        if *h.finalize().as_bytes() != sum {
            return Err(corrupt("checksum does not match its content"));
        }
        let header: Header = postcard::from_bytes(&front[..header_len as usize])
            .map_err(|e| corrupt(&format!("header: {e}")))?;
        if header.fingerprint != fingerprint() || header.rules != rules {
            return Err(Unusable::Stale);
        }
        let metas = Bytes::from(front).slice(header_len as usize..);
        Ok(Cache {
            files: header
                .files
                .into_iter()
                .map(|f| (f.path.clone(), f))
                .collect(),
            metas,
            arenas: arenas.freeze(),
        })
    }

    /// Number of files cached.
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// The cached digest of the file at `rel` if its content is still
    /// `hash`, with its entry for the next cache.
    pub(crate) fn get(
        &self,
        rel: &str,
        len: u64,
        hash: &[u8; 32],
    ) -> Option<Result<(Digest, Entry), String>> {
        let f = self.files.get(rel)?;
        if f.len != len || &f.hash != hash {
            return None;
        }
        Some(self.decode(f))
    }

    fn decode(&self, f: &CachedFile) -> Result<(Digest, Entry), String> {
        let bad = || format!("cached digest of {} points outside the cache", f.path);
        let meta = range(f.meta, self.metas.len())
            .map(|r| self.metas.slice(r))
            .ok_or_else(bad)?;
        let arena = range(f.arena, self.arenas.len())
            .map(|r| self.arenas.slice(r))
            .ok_or_else(bad)?;
        let mut digest: Digest =
            postcard::from_bytes(&meta).map_err(|e| format!("cached digest of {}: {e}", f.path))?;
        digest.arena = arena.clone();
        digest
            .check()
            .map_err(|e| format!("cached digest of {}: {e}", f.path))?;
        Ok((
            digest,
            Entry {
                path: f.path.clone(),
                len: f.len,
                hash: f.hash,
                meta,
                arena,
            },
        ))
    }
}

fn range((start, end): (u64, u64), len: usize) -> Option<std::ops::Range<usize>> {
    let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
    (start <= end && end <= len).then_some(start..end)
}

impl Entry {
    /// The entry for a file just digested from its JSON.
    pub(crate) fn new(rel: String, bytes: &[u8], hash: [u8; 32], d: &Digest) -> Option<Self> {
        Some(Entry {
            path: rel,
            len: bytes.len() as u64,
            hash,
            meta: Bytes::from(postcard::to_allocvec(d).ok()?),
            arena: d.arena.clone(),
        })
    }
}

/// Writes the cache of `dir` holding `entries`, atomically: readers see the
/// old cache or the new one, never a part. Errors are returned for the
/// caller to ignore: the cache is only ever a shortcut.
pub(crate) fn write(dir: &Path, rules: [u8; 32], entries: &[Entry]) -> std::io::Result<()> {
    let cache_dir = dir.join(CACHE_DIR);
    std::fs::create_dir_all(&cache_dir)?;
    let ignore = cache_dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(
            &ignore,
            "# pgsim's index cache: rebuilt from the fixtures, never committed\n*\n",
        )?;
    }
    let mut files = Vec::with_capacity(entries.len());
    let (mut metas_len, mut arenas_len) = (0u64, 0u64);
    for e in entries {
        let meta = (metas_len, metas_len + e.meta.len() as u64);
        let arena = (arenas_len, arenas_len + e.arena.len() as u64);
        (metas_len, arenas_len) = (meta.1, arena.1);
        files.push(CachedFile {
            path: e.path.clone(),
            len: e.len,
            hash: e.hash,
            meta,
            arena,
        });
    }
    let header = postcard::to_allocvec(&Header {
        fingerprint: fingerprint(),
        rules,
        files,
    })
    .map_err(std::io::Error::other)?;
    let mut head = Vec::with_capacity(32);
    head.extend_from_slice(MAGIC);
    for n in [header.len() as u64, metas_len, arenas_len] {
        head.extend_from_slice(&n.to_le_bytes());
    }
    remove_abandoned(&cache_dir);
    let (file, tmp) = tempfile(&cache_dir)?;
    let written = (|| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut h = blake3::Hasher::new();
        let mut put = |bytes: &[u8]| {
            h.update(bytes);
            out.write_all(bytes)
        };
        put(&head)?;
        put(&header)?;
        for e in entries {
            put(&e.meta)?;
        }
        for e in entries {
            put(&e.arena)?;
        }
        let sum: [u8; 32] = *h.finalize().as_bytes();
        out.write_all(&sum)?;
        out.flush()
    })();
    let renamed = written.and_then(|()| std::fs::rename(&tmp, cache_dir.join(CACHE_FILE)));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// Removes temporary files a killed writer left behind: never read, but
/// they would pile up. Only old ones, so a writer still at work in another
/// process keeps its own.
fn remove_abandoned(cache_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    let prefix = format!(".{CACHE_FILE}.");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(600));
        if name.starts_with(&prefix) && name.ends_with(".tmp") && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A new temporary file in `dir`, unique to this process and call.
fn tempfile(dir: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".{CACHE_FILE}.{}.{n}.tmp", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bundled fixture file, digested from its JSON, with its entry.
    fn bundled() -> Vec<(Digest, Entry)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let files = crate::fixture::fixture_files(&root).expect("the bundled fixtures list");
        assert!(files.len() > 20, "{} files", files.len());
        files
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path).expect("a bundled fixture reads");
                let (session, warning) =
                    crate::fixture::parse_file(path, &bytes).expect("a bundled fixture parses");
                let d = super::super::digest::digest(session, &Rules::default(), warning);
                let e = Entry::new(relative(&root, path), &bytes, content_hash(&bytes), &d)
                    .expect("a digest serializes");
                (d, e)
            })
            .collect()
    }

    fn written(entries: &[Entry]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        write(dir.path(), [7; 32], entries).expect("the cache writes");
        dir
    }

    #[test]
    fn every_bundled_digest_comes_back_from_the_cache_as_it_went_in() {
        let all = bundled();
        let entries: Vec<Entry> = all
            .iter()
            .map(|(_, e)| Entry {
                path: e.path.clone(),
                len: e.len,
                hash: e.hash,
                meta: e.meta.clone(),
                arena: e.arena.clone(),
            })
            .collect();
        let dir = written(&entries);
        let cache = Cache::read(dir.path(), [7; 32]).expect("the cache just written reads");
        assert_eq!(cache.len(), all.len());
        for (d, e) in &all {
            let (back, _) = cache
                .get(&e.path, e.len, &e.hash)
                .expect("every file is cached")
                .expect("every cached digest decodes");
            // Debug shows every field, the arena's bytes included.
            assert_eq!(format!("{back:?}"), format!("{d:?}"), "{}", e.path);
        }
    }

    #[test]
    fn a_file_whose_content_changed_is_not_served_from_the_cache() {
        let all = bundled();
        let (_, e) = &all[0];
        let dir = written(std::slice::from_ref(e));
        let cache = Cache::read(dir.path(), [7; 32]).expect("reads");
        assert!(cache.get(&e.path, e.len, &e.hash).is_some());
        let mut other = e.hash;
        other[31] ^= 1;
        assert!(
            cache.get(&e.path, e.len, &other).is_none(),
            "same length, other bytes"
        );
        assert!(cache.get(&e.path, e.len + 1, &e.hash).is_none());
        assert!(cache.get("elsewhere.json", e.len, &e.hash).is_none());
    }

    #[test]
    fn a_killed_writer_s_old_temporary_file_is_removed_and_a_fresh_one_kept() {
        let all = bundled();
        let dir = written(std::slice::from_ref(&all[0].1));
        let cache_dir = dir.path().join(CACHE_DIR);
        let old = cache_dir.join(format!(".{CACHE_FILE}.1.0.tmp"));
        let fresh = cache_dir.join(format!(".{CACHE_FILE}.2.0.tmp"));
        std::fs::write(&old, b"torn").expect("writes");
        std::fs::write(&fresh, b"in progress").expect("writes");
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .and_then(|f| f.set_modified(hour_ago))
            .expect("ages the file");
        write(dir.path(), [7; 32], std::slice::from_ref(&all[0].1)).expect("writes");
        assert!(!old.exists(), "an abandoned temporary file stays");
        assert!(fresh.exists(), "another writer's file was removed");
        assert!(Cache::read(dir.path(), [7; 32]).is_ok());
    }

    #[test]
    fn other_rules_or_no_cache_are_stale_not_corrupt() {
        let all = bundled();
        let dir = written(std::slice::from_ref(&all[0].1));
        assert!(matches!(
            Cache::read(dir.path(), [8; 32]),
            Err(Unusable::Stale)
        ));
        let empty = tempfile::tempdir().expect("a temporary directory");
        assert!(matches!(
            Cache::read(empty.path(), [7; 32]),
            Err(Unusable::Stale)
        ));
    }

    #[test]
    fn any_flipped_byte_or_truncation_is_detected() {
        let all = bundled();
        let entries: Vec<Entry> = all.into_iter().take(3).map(|(_, e)| e).collect();
        let dir = written(&entries);
        let path = cache_path(dir.path());
        let good = std::fs::read(&path).expect("the cache reads");
        // Every byte of a small cache, flipped one at a time.
        let step = (good.len() / 4000).max(1);
        for at in (0..good.len()).step_by(step) {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            std::fs::write(&path, &bad).expect("writes");
            match Cache::read(dir.path(), [7; 32]) {
                Err(Unusable::Corrupt(why)) => assert!(why.contains(CACHE_FILE), "{why}"),
                Err(Unusable::Stale) => panic!("byte {at} flipped read as stale"),
                Ok(_) => panic!("byte {at} flipped was not detected"),
            }
        }
        for len in [0, 7, 31, 32, good.len() / 2, good.len() - 1] {
            std::fs::write(&path, &good[..len]).expect("writes");
            assert!(
                matches!(Cache::read(dir.path(), [7; 32]), Err(Unusable::Corrupt(_))),
                "truncated to {len} bytes"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        std::fs::write(&path, &longer).expect("writes");
        assert!(matches!(
            Cache::read(dir.path(), [7; 32]),
            Err(Unusable::Corrupt(_))
        ));
        std::fs::write(&path, &good).expect("writes");
        assert!(Cache::read(dir.path(), [7; 32]).is_ok());
    }

    #[test]
    fn an_index_pointing_outside_its_file_is_refused() {
        type Break = fn(&mut Digest);
        let breaks: [(&str, Break); 4] = [
            ("sql", |d| d.exchanges[0].sql = u32::MAX),
            ("types", |d| d.exchanges[0].bound = Some(u32::MAX)),
            ("results overlap", |d| d.exchanges[1].results.0 = 0),
            ("results beyond", |d| {
                let last = d.exchanges.len() - 1;
                d.exchanges[last].results.1 += 1;
            }),
        ];
        for (what, break_it) in breaks {
            let all = bundled();
            let (mut d, e) = all
                .into_iter()
                .find(|(d, _)| d.exchanges.len() > 2)
                .expect("a file with exchanges");
            break_it(&mut d);
            let bad = Entry::new(e.path.clone(), &[0; 3], e.hash, &d).expect("serializes");
            let dir = written(&[bad]);
            let cache = Cache::read(dir.path(), [7; 32]).expect("the checksum is right");
            let got = cache.get(&e.path, 3, &e.hash).expect("cached");
            assert!(got.is_err_and(|why| why.contains("outside")), "{what}");
        }
    }
}
