use std::fmt;

use super::Origin;

/// A query that had no recorded answer: one per distinct query (database
/// and key), with how often it missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// The database it was sent to.
    pub database: String,
    /// The SQL as first received (its first [`MISS_SQL_CHARS`] characters
    /// and `...` when longer).
    pub sql: String,
    /// Its query key.
    pub key: String,
    /// How the closest recorded query differs, when there is one (as the
    /// first miss of the query found it).
    pub nearest: Option<String>,
    /// Times this query missed.
    pub count: u64,
}

/// Characters of a missed query's SQL the report keeps.
pub const MISS_SQL_CHARS: usize = 1000;

/// Distinct missed queries the report details by default (each further
/// miss is still counted); see `MockServerBuilder::miss_details`.
pub const DEFAULT_MISS_DETAILS: usize = 100;

/// The misses of one server, bounded: a count of every miss, and details
/// (SQL, key, closest recording, count) for the first `details` distinct
/// queries only, so a client sending a million different unrecorded
/// queries costs a fixed amount of memory.
#[derive(Debug)]
pub(crate) struct MissRecord {
    details: usize,
    detailed: Vec<Miss>,
    /// Index in `detailed` by (database, key).
    at: std::collections::HashMap<(String, String), usize>,
    total: u64,
    left_out: u64,
}

impl MissRecord {
    pub(crate) fn new(details: usize) -> Self {
        MissRecord {
            details,
            detailed: Vec::new(),
            at: std::collections::HashMap::new(),
            total: 0,
            left_out: 0,
        }
    }

    /// Counts one miss; `miss` builds its details when they are kept.
    pub(crate) fn add(&mut self, database: &str, key: &str, miss: impl FnOnce() -> Miss) {
        self.total += 1;
        if let Some(&i) = self.at.get(&(database.to_owned(), key.to_owned())) {
            self.detailed[i].count += 1;
        } else if self.detailed.len() < self.details {
            self.at
                .insert((database.to_owned(), key.to_owned()), self.detailed.len());
            let mut m = miss();
            m.sql = shorten_sql(&m.sql);
            m.count = 1;
            self.detailed.push(m);
        } else {
            self.left_out += 1;
        }
    }

    /// Every miss counted.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// (details, every miss counted, misses of queries past the details).
    pub(crate) fn snapshot(&self) -> (Vec<Miss>, u64, u64) {
        (self.detailed.clone(), self.total, self.left_out)
    }
}

fn shorten_sql(sql: &str) -> String {
    match sql.char_indices().nth(MISS_SQL_CHARS) {
        Some((at, _)) => format!("{}...", &sql[..at]),
        None => sql.to_owned(),
    }
}

/// What a mock server served: counts, misses and answers never used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Client sessions accepted.
    pub sessions: u64,
    /// Queries answered or missed (simple queries and executes).
    pub queries: u64,
    /// Queries with no recorded answer, one per distinct query with its
    /// count: the first [`DEFAULT_MISS_DETAILS`] (or as configured) only.
    pub misses: Vec<Miss>,
    /// Every miss, counted (detailed or not).
    pub missed: u64,
    /// Misses of queries past the detailed ones: counted, not listed.
    pub misses_left_out: u64,
    /// Recorded answers never served.
    pub unused: Vec<Origin>,
    /// Answers served because a matching rule relaxed the match.
    pub relaxed: Vec<RelaxedMatch>,
}

/// An answer a matching rule let match, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaxedMatch {
    /// The rule's name.
    pub rule: String,
    /// The parameter it relaxed (1-based).
    pub param: usize,
    /// The recorded exchange it served.
    pub origin: Origin,
    /// Times served so.
    pub count: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pgsim: {} sessions, {} queries, {} misses, {} recorded answers never used",
            self.sessions,
            self.queries,
            self.missed,
            self.unused.len()
        )?;
        // One line per missed query, with how often it missed.
        for m in &self.misses {
            let times = if m.count > 1 {
                format!(" x{}", m.count)
            } else {
                String::new()
            };
            writeln!(
                f,
                "  miss{times} [{}] {:?} (key {})",
                m.database, m.sql, m.key
            )?;
            if let Some(n) = &m.nearest {
                writeln!(f, "       closest: {n}")?;
            }
        }
        if self.misses_left_out > 0 {
            writeln!(
                f,
                "  ... and {} more misses of queries not listed (the first {} missed queries are)",
                self.misses_left_out,
                self.misses.len()
            )?;
        }
        for r in &self.relaxed {
            writeln!(
                f,
                "  relaxed by rule {:?} (${}): {}#{} {:?} served {} time(s)",
                r.rule, r.param, r.origin.file, r.origin.seq, r.origin.sql, r.count
            )?;
        }
        const SHOWN: usize = 20;
        for u in self.unused.iter().take(SHOWN) {
            writeln!(
                f,
                "  unused [{}] {}#{} {:?}",
                u.database, u.file, u.seq, u.sql
            )?;
        }
        if self.unused.len() > SHOWN {
            writeln!(f, "  ... and {} more unused", self.unused.len() - SHOWN)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn miss(sql: &str) -> Miss {
        Miss {
            database: "db".into(),
            sql: sql.into(),
            key: String::new(),
            nearest: None,
            count: 0,
        }
    }

    #[test]
    fn the_miss_record_details_the_first_queries_and_counts_every_miss() {
        let mut record = MissRecord::new(3);
        for i in 0..100_000u32 {
            let key = (i % 1000).to_string();
            record.add("db", &key, || miss(&format!("select {key}")));
        }
        let (detailed, total, left_out) = record.snapshot();
        assert_eq!(detailed.len(), 3);
        assert_eq!(total, 100_000);
        assert_eq!(detailed.iter().map(|m| m.count).sum::<u64>(), 300);
        assert_eq!(left_out, 100_000 - 300);
        assert_eq!(record.at.len(), 3, "no memory per query left out");
        let report = Report {
            misses: detailed,
            missed: total,
            misses_left_out: left_out,
            ..Report::default()
        };
        let text = report.to_string();
        assert!(text.contains("100000 misses"), "{text}");
        assert!(text.contains("miss x100 [db] \"select 0\""), "{text}");
        assert!(
            text.contains("and 99700 more misses of queries not listed"),
            "{text}"
        );
    }

    #[test]
    fn a_missed_query_keeps_only_its_first_characters() {
        let mut record = MissRecord::new(1);
        let long = "é".repeat(5000);
        record.add("db", "k", || miss(&long));
        let (detailed, ..) = record.snapshot();
        assert_eq!(detailed[0].sql.chars().count(), MISS_SQL_CHARS + 3);
        assert!(detailed[0].sql.ends_with("é..."));
    }
}
