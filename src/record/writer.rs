//! The fixture writer: one thread owns every journal file of a recording,
//! so sessions never interleave inside a file and the async proxy never
//! blocks on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::fixture::{load_dir, Exchange, FixtureError, JournalWriter, Session};

pub(super) enum WriterMsg {
    Open { id: u64, header: Box<Session> },
    Append { id: u64, exchange: Box<Exchange> },
    Close { id: u64 },
}

#[derive(Default)]
struct Outcome {
    files: Vec<PathBuf>,
    errors: Vec<String>,
}

pub(super) struct Writer {
    tx: Mutex<Option<mpsc::Sender<WriterMsg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    outcome: Arc<Mutex<Outcome>>,
    next_file: AtomicU64,
}

impl Writer {
    /// Starts the writer thread for `dir`. Returns the writer and the first
    /// free exchange `seq` (after any fixtures already in `dir`).
    /// Numbers (files and `seq`) continue after the fixtures of `numbering`.
    pub(super) fn start(dir: PathBuf, numbering: &Path) -> Result<(Self, u64), FixtureError> {
        let existing = load_dir(numbering)?;
        let next_seq = existing
            .sessions
            .iter()
            .flat_map(|s| s.session.exchanges.iter().map(|e| e.seq + 1))
            .max()
            .unwrap_or(0);
        let next_file = existing
            .sessions
            .iter()
            .filter_map(|s| session_number(&s.path))
            .max()
            .map_or(1, |n| n + 1);
        let (tx, rx) = mpsc::channel();
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let out = Arc::clone(&outcome);
        let thread = std::thread::Builder::new()
            .name("pgsim-writer".into())
            .spawn(move || run(dir, rx, out))
            .map_err(|e| FixtureError::io("pgsim-writer thread", e))?;
        let writer = Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            outcome,
            next_file: AtomicU64::new(next_file),
        };
        Ok((writer, next_seq))
    }

    pub(super) fn open(&self, header: Session) -> u64 {
        let id = self.next_file.fetch_add(1, Ordering::Relaxed);
        self.send(WriterMsg::Open {
            id,
            header: Box::new(header),
        });
        id
    }

    pub(super) fn send(&self, msg: WriterMsg) {
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|tx| tx.as_ref().map(|tx| tx.send(msg).is_ok()));
        if sent != Some(true) {
            if let Ok(mut o) = self.outcome.lock() {
                o.errors.push(
                    "an exchange arrived after the recording was closed; it was not written".into(),
                );
            }
        }
    }

    /// Problems writing so far (files that could not be created, written
    /// or compacted; exchanges that came after the end).
    pub(super) fn error_count(&self) -> usize {
        self.outcome.lock().map_or(0, |o| o.errors.len())
    }

    /// Closes the channel, waits for every file to be compacted, and returns
    /// the files written and any errors.
    pub(super) fn finish(&self) -> (Vec<PathBuf>, Vec<String>) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
        match self.outcome.lock() {
            Ok(o) => (o.files.clone(), o.errors.clone()),
            Err(_) => (Vec::new(), vec!["writer state poisoned".into()]),
        }
    }
}

fn session_number(path: &Path) -> Option<u64> {
    path.file_stem()?
        .to_str()?
        .strip_prefix("session-")?
        .parse()
        .ok()
}

fn run(dir: PathBuf, rx: mpsc::Receiver<WriterMsg>, outcome: Arc<Mutex<Outcome>>) {
    let mut open: BTreeMap<u64, JournalWriter> = BTreeMap::new();
    let report = |r: Result<Option<PathBuf>, FixtureError>| {
        if let Ok(mut o) = outcome.lock() {
            match r {
                Ok(Some(p)) => o.files.push(p),
                Ok(None) => {}
                Err(e) => o.errors.push(e.to_string()),
            }
        }
    };
    for msg in rx {
        match msg {
            WriterMsg::Open { id, header } => {
                let path = dir.join(format!("session-{id:04}.jsonl"));
                match JournalWriter::create(path, &header) {
                    Ok(w) => {
                        open.insert(id, w);
                    }
                    Err(e) => report(Err(e)),
                }
            }
            WriterMsg::Append { id, exchange } => {
                if let Some(w) = open.get_mut(&id) {
                    if let Err(e) = w.append(&exchange) {
                        report(Err(e));
                    }
                }
            }
            WriterMsg::Close { id } => {
                if let Some(w) = open.remove(&id) {
                    report(w.finish().map(Some));
                }
            }
        }
    }
    for (_, w) in std::mem::take(&mut open) {
        report(w.finish().map(Some));
    }
}
