//! What kind of statement a query is, for spans (and any per-kind count).

use super::{statements, Lexeme, Statement};

/// The kind of a statement, by its leading keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum StatementKind {
    /// `SELECT`, `VALUES`, `TABLE`, or a `WITH` whose main statement reads.
    Select,
    /// `INSERT` (also after `WITH`).
    Insert,
    /// `UPDATE` (also after `WITH`).
    Update,
    /// `DELETE` (also after `WITH`).
    Delete,
    /// `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `COMMENT`, `GRANT`, `REVOKE`.
    Ddl,
    /// `BEGIN`, `START`, `COMMIT`, `END`, `ROLLBACK`, `ABORT`,
    /// `SAVEPOINT`, `RELEASE`.
    Transaction,
    /// Anything else (`SET`, `SHOW`, `COPY`, `MERGE`, `EXPLAIN`, several
    /// statements of different kinds, empty text...).
    Other,
}

impl StatementKind {
    /// Every kind, in declaration order.
    pub const ALL: [StatementKind; 7] = [
        StatementKind::Select,
        StatementKind::Insert,
        StatementKind::Update,
        StatementKind::Delete,
        StatementKind::Ddl,
        StatementKind::Transaction,
        StatementKind::Other,
    ];

    /// Its position in [`ALL`](Self::ALL).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The lowercase name spans and metrics use: `select`, `insert`,
    /// `update`, `delete`, `ddl`, `transaction`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Select => "select",
            StatementKind::Insert => "insert",
            StatementKind::Update => "update",
            StatementKind::Delete => "delete",
            StatementKind::Ddl => "ddl",
            StatementKind::Transaction => "transaction",
            StatementKind::Other => "other",
        }
    }
}

impl std::fmt::Display for StatementKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of `sql`. Several `;`-separated statements are of one kind
/// when every non-empty one is, else [`StatementKind::Other`]. Words in
/// strings, comments and quoted identifiers do not count.
///
/// ```
/// use pgsim::validate::{statement_kind, StatementKind};
/// assert_eq!(statement_kind("select * from t"), StatementKind::Select);
/// assert_eq!(statement_kind("with x as (select 1) delete from t"), StatementKind::Delete);
/// assert_eq!(statement_kind("/* insert */ CREATE TABLE t (a int)"), StatementKind::Ddl);
/// assert_eq!(statement_kind("begin; commit"), StatementKind::Transaction);
/// ```
pub fn statement_kind(sql: &str) -> StatementKind {
    kind_of(&statements(sql))
}

/// [`statement_kind`] of statements already split.
pub(crate) fn kind_of(statements: &[Statement<'_>]) -> StatementKind {
    let mut kind = None;
    for statement in statements {
        if statement.lexemes.is_empty() {
            continue;
        }
        let this = one(&statement.lexemes);
        match kind {
            None => kind = Some(this),
            Some(k) if k == this => {}
            Some(_) => return StatementKind::Other,
        }
    }
    kind.unwrap_or(StatementKind::Other)
}

/// The kind of one non-empty statement.
fn one(lexemes: &[Lexeme<'_>]) -> StatementKind {
    let Some(Lexeme::Word(first)) = lexemes.first() else {
        return StatementKind::Other;
    };
    if first.eq_ignore_ascii_case("with") {
        // The main statement is the first of these words outside the
        // common table expressions' parentheses.
        let mut depth = 0usize;
        for lexeme in &lexemes[1..] {
            match lexeme {
                Lexeme::Open => depth += 1,
                Lexeme::Close => depth = depth.saturating_sub(1),
                Lexeme::Word(w) if depth == 0 => match by_word(w) {
                    StatementKind::Other => {}
                    kind => return kind,
                },
                _ => {}
            }
        }
        return StatementKind::Other;
    }
    by_word(first)
}

fn by_word(word: &str) -> StatementKind {
    const KINDS: &[(&str, StatementKind)] = &[
        ("select", StatementKind::Select),
        ("values", StatementKind::Select),
        ("table", StatementKind::Select),
        ("insert", StatementKind::Insert),
        ("update", StatementKind::Update),
        ("delete", StatementKind::Delete),
        ("create", StatementKind::Ddl),
        ("alter", StatementKind::Ddl),
        ("drop", StatementKind::Ddl),
        ("truncate", StatementKind::Ddl),
        ("comment", StatementKind::Ddl),
        ("grant", StatementKind::Ddl),
        ("revoke", StatementKind::Ddl),
        ("begin", StatementKind::Transaction),
        ("start", StatementKind::Transaction),
        ("commit", StatementKind::Transaction),
        ("end", StatementKind::Transaction),
        ("rollback", StatementKind::Transaction),
        ("abort", StatementKind::Transaction),
        ("savepoint", StatementKind::Transaction),
        ("release", StatementKind::Transaction),
    ];
    KINDS
        .iter()
        .find(|(w, _)| word.eq_ignore_ascii_case(w))
        .map_or(StatementKind::Other, |(_, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementKind::*;

    #[test]
    fn kinds_by_leading_keyword() {
        for (sql, kind) in [
            ("SELECT 1", Select),
            ("values (1)", Select),
            ("insert into t values ($1)", Insert),
            ("update t set a = 1", Update),
            ("delete from t", Delete),
            ("drop table t", Ddl),
            ("truncate t", Ddl),
            (
                "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                Transaction,
            ),
            ("rollback to savepoint a", Transaction),
            ("set search_path = x", Other),
            ("", Other),
            (";", Other),
            ("(select 1)", Other),
            (
                "with a as (insert into t values (1) returning *) select * from a",
                Select,
            ),
            ("with a as (select 1) update t set x = 1", Update),
            ("with recursive", Other),
            ("'select'", Other),
            ("select 1; insert into t values (1)", Other),
            ("select 1; select 2;", Select),
        ] {
            assert_eq!(statement_kind(sql), kind, "{sql}");
        }
    }
}
