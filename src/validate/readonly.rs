//! Whether a statement is provably read-only, so a replica may run it.

use super::{statements, Lexeme, Statement};

/// Statements that start this way only read (unless something below says
/// otherwise).
const READ_STARTS: &[&str] = &["select", "with", "values", "table", "show", "explain"];

/// Words that make a statement write, lock, or do something a replica
/// refuses: data-modifying CTEs, `SELECT ... INTO`, sequence functions,
/// advisory locks, `EXPLAIN ANALYZE` (which runs the statement).
const WRITE_WORDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "merge",
    "into",
    "nextval",
    "setval",
    "lock",
    "analyze",
    "analyse",
    "txid_current",
    "pg_current_xact_id",
    "pg_notify",
    "set_config",
    "pg_advisory_lock",
    "pg_advisory_xact_lock",
    "pg_try_advisory_lock",
    "pg_try_advisory_xact_lock",
];

/// `true` only for one statement that reads: `SELECT`, `WITH`, `VALUES`,
/// `TABLE`, `SHOW` or `EXPLAIN` without any writing part. `FOR UPDATE` /
/// `FOR SHARE` / `FOR [NO] KEY ...`, a data-modifying CTE, `SELECT INTO`,
/// `nextval`, advisory locks, `EXPLAIN ANALYZE`, several statements, or
/// anything else is not read-only. Words inside strings, comments and
/// quoted identifiers do not count. A function the server knows to write
/// cannot be seen from the SQL: route such calls to the primary yourself.
///
/// ```
/// use pgsim::validate::is_read_only;
/// assert!(is_read_only("select * from t where note = 'delete me'"));
/// assert!(!is_read_only("select * from t for update"));
/// assert!(!is_read_only("with gone as (delete from t returning *) select * from gone"));
/// assert!(is_read_only("select substring(name from 1 for 3) from t"));
/// ```
pub fn is_read_only(sql: &str) -> bool {
    read_only_of(&statements(sql))
}

/// [`is_read_only`] of statements already split.
pub(crate) fn read_only_of(statements: &[Statement<'_>]) -> bool {
    let mut non_empty = statements.iter().filter(|s| !s.lexemes.is_empty());
    let (Some(statement), None) = (non_empty.next(), non_empty.next()) else {
        return false;
    };
    let words: Vec<&str> = statement
        .lexemes
        .iter()
        .filter_map(|l| match l {
            Lexeme::Word(w) => Some(*w),
            _ => None,
        })
        .collect();
    let Some(first) = words.first() else {
        return false;
    };
    if !READ_STARTS.iter().any(|s| first.eq_ignore_ascii_case(s)) {
        return false;
    }
    let is = |w: &str, kw: &str| w.eq_ignore_ascii_case(kw);
    for (i, w) in words.iter().enumerate() {
        if WRITE_WORDS.iter().any(|kw| is(w, kw)) {
            return false;
        }
        // Row locks: FOR UPDATE, FOR SHARE, FOR NO KEY UPDATE, FOR KEY SHARE.
        if is(w, "for") {
            if let Some(next) = words.get(i + 1) {
                if ["update", "share", "no", "key"]
                    .iter()
                    .any(|kw| is(next, kw))
                {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_read_only() {
        for sql in [
            "select 1",
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
            "with t as (select 1) select * from t",
            "values (1), (2)",
            "table users",
            "show search_path",
            "explain select * from t",
            "select 'insert into x' as s -- update\n from t /* delete */",
            "select \"update\" from t",
            "select pg_is_in_recovery()",
        ] {
            assert!(is_read_only(sql), "{sql}");
        }
    }

    #[test]
    fn anything_that_writes_or_locks_is_not() {
        for sql in [
            "insert into t values (1)",
            "update t set x = 1",
            "delete from t",
            "select * from t for update",
            "select * from t for no key update",
            "select * from t for key share",
            "SELECT * FROM t FOR SHARE",
            "with x as (update t set a = 1 returning *) select * from x",
            "select * into t2 from t",
            "select nextval('s')",
            "select pg_advisory_lock(1)",
            "explain analyze select 1",
            "select 1; select 2",
            "begin",
            "create table t (x int)",
            "set search_path = x",
            "",
            "   ;  ",
            "call p()",
        ] {
            assert!(!is_read_only(sql), "{sql}");
        }
    }
}
