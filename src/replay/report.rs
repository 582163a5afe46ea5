use std::fmt;

use super::Origin;

/// A query that had no recorded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// The database it was sent to.
    pub database: String,
    /// The SQL as received.
    pub sql: String,
    /// Its query key.
    pub key: String,
    /// How the closest recorded query differs, when there is one.
    pub nearest: Option<String>,
}

/// What a mock server served: counts, misses and answers never used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Client sessions accepted.
    pub sessions: u64,
    /// Queries answered or missed (simple queries and executes).
    pub queries: u64,
    /// Queries with no recorded answer.
    pub misses: Vec<Miss>,
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
            self.misses.len(),
            self.unused.len()
        )?;
        // One line per missed query, with how often it missed.
        let mut seen: Vec<(&Miss, usize)> = Vec::new();
        let mut at: std::collections::HashMap<(&str, &str), usize> =
            std::collections::HashMap::new();
        for m in &self.misses {
            match at.get(&(m.database.as_str(), m.key.as_str())) {
                Some(&i) => seen[i].1 += 1,
                None => {
                    at.insert((&m.database, &m.key), seen.len());
                    seen.push((m, 1));
                }
            }
        }
        for (m, n) in seen {
            let times = if n > 1 {
                format!(" x{n}")
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
