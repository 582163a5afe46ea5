//! `pgsim inspect --show SEL`: which exchanges a selector picks.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use pgsim::fixture::{Exchange, LoadedSession};

/// What `--show` accepts, for the error that lists them.
pub(crate) const FORMS: &str = "all, seq:N (or seq:N..M, seq:N,M,..), file:NAME (a file name, a path relative to the fixture directory, or a path), sql:REGEX, db:NAME, key:PREFIX";

/// One `--show` selector. Several must all match.
#[derive(Debug)]
pub(crate) enum Selector {
    /// Every exchange.
    All,
    /// Exchanges whose seq is in one of the ranges.
    Seq(Vec<RangeInclusive<u64>>),
    /// Every exchange of the files the name or path names.
    File(String),
    /// Exchanges whose SQL the regex matches.
    Sql(regex::Regex),
    /// Exchanges of sessions on this database.
    Db(String),
    /// Exchanges whose query key starts with this hex.
    Key(String),
}

impl Selector {
    /// Parses a selector; a bare path to an existing file is `file:PATH`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text == "all" {
            return Ok(Selector::All);
        }
        let Some((kind, value)) = text.split_once(':') else {
            if Path::new(text).is_file() {
                return Ok(Selector::File(text.to_owned()));
            }
            return Err(unknown(text));
        };
        if value.is_empty() {
            return Err(format!("--show {text}: nothing after {kind:?}"));
        }
        match kind {
            "seq" => value
                .split(',')
                .map(seq_range)
                .collect::<Option<Vec<_>>>()
                .map(Selector::Seq)
                .ok_or_else(|| {
                    format!("--show {text}: expected seq:N, seq:N..M (N <= M) or a list of them separated by commas")
                }),
            "file" => Ok(Selector::File(value.to_owned())),
            "sql" => regex::Regex::new(value)
                .map(Selector::Sql)
                .map_err(|e| format!("--show {text}: not a regular expression: {e}")),
            "db" => Ok(Selector::Db(value.to_owned())),
            "key" if value.chars().all(|c| c.is_ascii_hexdigit()) => {
                Ok(Selector::Key(value.to_ascii_lowercase()))
            }
            "key" => Err(format!("--show {text}: a key is hexadecimal")),
            _ if Path::new(text).is_file() => Ok(Selector::File(text.to_owned())),
            _ => Err(unknown(text)),
        }
    }

    /// Whether the selector picks `exchange` of `session` (`None`: the
    /// session itself, for sessions without exchanges).
    pub(crate) fn matches(&self, session: &LoadedSession, exchange: Option<&Exchange>) -> bool {
        match self {
            Selector::All => true,
            Selector::File(name) => file_matches(&session.path, name),
            Selector::Db(db) => session.session.database == *db,
            Selector::Seq(ranges) => {
                exchange.is_some_and(|e| ranges.iter().any(|r| r.contains(&e.seq)))
            }
            Selector::Sql(re) => exchange.is_some_and(|e| re.is_match(&e.sql)),
            Selector::Key(prefix) => exchange.is_some_and(|e| e.key.starts_with(prefix.as_str())),
        }
    }
}

fn unknown(text: &str) -> String {
    format!("--show {text:?}: unknown selector; expected {FORMS}")
}

fn seq_range(value: &str) -> Option<RangeInclusive<u64>> {
    let (from, to) = match value.split_once("..") {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let n = value.trim().parse().ok()?;
            (n, n)
        }
    };
    (from <= to).then_some(from..=to)
}

/// `name` names `path` when it is its file name (with or without
/// `.json`), a path it ends with (`primary/session-0001.json`), or the
/// same file by another path.
fn file_matches(path: &Path, name: &str) -> bool {
    let wanted = Path::new(name);
    if path.ends_with(wanted) || path.file_stem().is_some_and(|s| s == name) {
        return true;
    }
    let canonical = |p: &Path| -> Option<PathBuf> { p.canonicalize().ok() };
    matches!((canonical(path), canonical(wanted)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_names_the_forms_when_unknown() {
        assert!(matches!(Selector::parse("all"), Ok(Selector::All)));
        assert!(matches!(Selector::parse("seq:7"), Ok(Selector::Seq(r)) if r == [7..=7]));
        assert!(matches!(Selector::parse("seq:3..9"), Ok(Selector::Seq(r)) if r == [3..=9]));
        assert!(
            matches!(Selector::parse("seq:1,4..5"), Ok(Selector::Seq(r)) if r == [1..=1, 4..=5])
        );
        assert!(Selector::parse("seq:9..3").is_err());
        assert!(Selector::parse("seq:1,").is_err());
        assert!(Selector::parse("seq:x").is_err());
        assert!(matches!(
            Selector::parse("sql:^select"),
            Ok(Selector::Sql(_))
        ));
        assert!(Selector::parse("sql:(")
            .unwrap_err()
            .contains("not a regular expression"));
        assert!(matches!(Selector::parse("key:AB12"), Ok(Selector::Key(k)) if k == "ab12"));
        let e = Selector::parse("rows:3").unwrap_err();
        assert!(e.contains("unknown selector") && e.contains("seq:N"), "{e}");
        assert!(Selector::parse("session-0001.json-nowhere").is_err());
    }

    #[test]
    fn a_file_is_named_by_name_stem_or_trailing_path() {
        let p = Path::new("fixtures/routing/primary/session-0001.json");
        for name in [
            "session-0001.json",
            "session-0001",
            "primary/session-0001.json",
            "fixtures/routing/primary/session-0001.json",
        ] {
            assert!(file_matches(p, name), "{name}");
        }
        for name in ["session-0002.json", "replica-1/session-0001.json", "0001"] {
            assert!(!file_matches(p, name), "{name}");
        }
    }
}
