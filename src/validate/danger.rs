//! Spotting destructive statements before they are sent.
//!
//! Only code is inspected (never strings, quoted identifiers, dollar quotes
//! or comments), word by word and ASCII case-insensitively, where a word is
//! a maximal run of identifier characters: `dropped`, `drop_table`,
//! `"drop"`, `'drop'`, `-- drop` and `$$drop$$` are not `DROP`.
//!
//! Statements are split on every `;` in code, so a `;` inside parentheses
//! (rule action lists, `BEGIN ATOMIC` bodies) also separates statements;
//! this errs on the side of reporting.

use super::sanitize::render_sql;
use super::{statements, Lexeme};

/// Longest [`Danger::excerpt`], in characters.
const EXCERPT_CHARS: usize = 80;

/// What makes a statement destructive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DangerKind {
    /// `DROP ...` (any object).
    Drop,
    /// `TRUNCATE ...`.
    Truncate,
    /// `DELETE FROM ...` with no `WHERE` at its own nesting level.
    DeleteWithoutWhere,
    /// `UPDATE ... SET ...` with no `WHERE` at its own nesting level.
    UpdateWithoutWhere,
    /// `ALTER ... DROP ...` (`DROP COLUMN`, `DROP CONSTRAINT`, ...), except
    /// dropping a column attribute (`DROP DEFAULT`, `DROP NOT NULL`,
    /// `ALTER COLUMN c DROP IDENTITY/EXPRESSION`), which loses no data.
    AlterDrop,
}

/// One destructive statement found by [`dangerous_statements`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Danger {
    /// What is dangerous about it.
    pub kind: DangerKind,
    /// 0-based index of the statement among the `;`-separated statements
    /// (empty statements count too, as in a plain split on `;`).
    pub statement: usize,
    /// The statement on one line, at most 80 characters (ending in `…` when
    /// cut): comments dropped, whitespace collapsed, and literals masked as
    /// [`sanitize_for_log`](super::sanitize_for_log) does.
    pub excerpt: String,
}

/// All destructive statements in `sql`, in order.
///
/// Reported:
/// * [`DangerKind::Drop`] / [`DangerKind::Truncate`]: the statement's first
///   word is `DROP` / `TRUNCATE`.
/// * [`DangerKind::AlterDrop`]: the first word is `ALTER` and a `DROP`
///   appears outside parentheses (see [`DangerKind::AlterDrop`]).
/// * [`DangerKind::DeleteWithoutWhere`] / [`DangerKind::UpdateWithoutWhere`]:
///   a `DELETE FROM` / `UPDATE ... SET` that starts a data-modifying
///   statement (at the start of the statement, after a `WITH` list or other
///   `)`, after `(` as in a CTE body, or after `EXPLAIN`, `ANALYZE`,
///   `VERBOSE`, `AS`, `INSTEAD`, `ALSO`, `ATOMIC`) with no `WHERE` before
///   its nesting level closes. `WHERE` inside a subquery does not count;
///   `WHERE CURRENT OF` does. `FOR UPDATE`, `ON DELETE`, `GRANT UPDATE`,
///   `ON CONFLICT DO UPDATE`, `MERGE ... THEN DELETE` and the like are not
///   statements and are ignored.
///
/// Each kind is reported at most once per statement; dangers come in
/// statement order, and within a statement in [`DangerKind`] order.
pub fn dangerous_statements(sql: &str) -> Vec<Danger> {
    let mut out = Vec::new();
    for (index, stmt) in statements(sql).iter().enumerate() {
        let kinds = statement_dangers(&stmt.lexemes);
        if kinds.is_empty() {
            continue;
        }
        let excerpt = excerpt(&sql[stmt.range.clone()]);
        out.extend(kinds.into_iter().map(|kind| Danger {
            kind,
            statement: index,
            excerpt: excerpt.clone(),
        }));
    }
    out
}

/// Whether [`dangerous_statements`] finds anything in `sql`.
pub fn is_dangerous(sql: &str) -> bool {
    statements(sql)
        .iter()
        .any(|s| !statement_dangers(&s.lexemes).is_empty())
}

/// The dangers in one statement, each kind once, sorted.
fn statement_dangers(lx: &[Lexeme<'_>]) -> Vec<DangerKind> {
    let mut kinds = Vec::new();
    let mut add = |kind| {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    };
    match lx.first() {
        Some(w) if w.is_word("drop") => add(DangerKind::Drop),
        Some(w) if w.is_word("truncate") => add(DangerKind::Truncate),
        Some(w) if w.is_word("alter") && alter_drops(lx) => add(DangerKind::AlterDrop),
        _ => {}
    }
    for kind in dml_without_where(lx) {
        add(kind);
    }
    kinds.sort_unstable();
    kinds
}

/// Whether position `i` can start a data-modifying statement, judging by
/// what precedes it.
fn starts_dml(lx: &[Lexeme<'_>], i: usize) -> bool {
    const LEADS: &[&str] = &[
        "explain", "analyze", "analyse", "verbose", "as", "instead", "also", "atomic",
    ];
    match i.checked_sub(1).map(|p| lx[p]) {
        None | Some(Lexeme::Open | Lexeme::Close) => true,
        Some(prev) => LEADS.iter().any(|kw| prev.is_word(kw)),
    }
}

/// One parenthesis level while looking for `WHERE`/`SET`: how many of each
/// it has seen so far, and the `DELETE`/`UPDATE`s started in it with the
/// counts at their start.
#[derive(Default)]
struct Level {
    wheres: usize,
    sets: usize,
    pending: Vec<(DangerKind, usize, usize)>,
}

impl Level {
    /// The pending statements that never saw a `WHERE` (and, for `UPDATE`,
    /// did see a `SET`) on this level.
    fn finish(self, out: &mut Vec<DangerKind>) {
        for (kind, wheres, sets) in self.pending {
            let update_ok = kind != DangerKind::UpdateWithoutWhere || self.sets > sets;
            if self.wheres == wheres && update_ok {
                out.push(kind);
            }
        }
    }
}

/// `DELETE FROM` / `UPDATE ... SET` statements with no `WHERE` on their own
/// parenthesis level, in one linear pass.
fn dml_without_where(lx: &[Lexeme<'_>]) -> Vec<DangerKind> {
    let mut out = Vec::new();
    let mut level = Level::default();
    let mut outer: Vec<Level> = Vec::new();
    for (i, l) in lx.iter().enumerate() {
        match l {
            Lexeme::Open => outer.push(std::mem::take(&mut level)),
            Lexeme::Close => {
                // An unbalanced `)` closes everything pending at level 0.
                let closed = std::mem::replace(&mut level, outer.pop().unwrap_or_default());
                closed.finish(&mut out);
            }
            w if w.is_word("where") => level.wheres += 1,
            w if w.is_word("set") => level.sets += 1,
            w if w.is_word("delete")
                && lx.get(i + 1).is_some_and(|n| n.is_word("from"))
                && starts_dml(lx, i) =>
            {
                let start = (DangerKind::DeleteWithoutWhere, level.wheres, level.sets);
                level.pending.push(start);
            }
            w if w.is_word("update") && starts_dml(lx, i) => {
                let start = (DangerKind::UpdateWithoutWhere, level.wheres, level.sets);
                level.pending.push(start);
            }
            _ => {}
        }
    }
    level.finish(&mut out);
    while let Some(level) = outer.pop() {
        level.finish(&mut out);
    }
    out
}

/// Whether an `ALTER` statement drops something (outside parentheses).
fn alter_drops(lx: &[Lexeme<'_>]) -> bool {
    let mut depth = 0usize;
    for (i, l) in lx.iter().enumerate() {
        match l {
            Lexeme::Open => depth += 1,
            Lexeme::Close => depth = depth.saturating_sub(1),
            w if depth == 0 && w.is_word("drop") => {
                let attribute = match lx.get(i + 1) {
                    // Reserved words: never a column name.
                    Some(n) if n.is_word("default") || n.is_word("not") => true,
                    Some(n) if n.is_word("identity") || n.is_word("expression") => {
                        after_alter_column(lx, i)
                    }
                    _ => false,
                };
                if !attribute {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether the `DROP` at `i` follows `ALTER [COLUMN] <name>`.
fn after_alter_column(lx: &[Lexeme<'_>], i: usize) -> bool {
    let back = |n: usize| i.checked_sub(n).map(|p| lx[p]);
    matches!(back(1), Some(Lexeme::Word(_) | Lexeme::QuotedIdent))
        && match back(2) {
            Some(w) if w.is_word("alter") => true,
            Some(w) if w.is_word("column") => back(3).is_some_and(|a| a.is_word("alter")),
            _ => false,
        }
}

/// One-line excerpt of a statement, at most [`EXCERPT_CHARS`] characters.
fn excerpt(statement: &str) -> String {
    let line = render_sql(statement);
    if line.chars().count() <= EXCERPT_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(EXCERPT_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::DangerKind::*;
    use super::*;

    fn kinds(sql: &str) -> Vec<DangerKind> {
        dangerous_statements(sql)
            .into_iter()
            .map(|d| d.kind)
            .collect()
    }

    #[test]
    fn drop_and_truncate() {
        assert_eq!(kinds("DROP TABLE users"), vec![Drop]);
        assert_eq!(kinds("  drop index if exists i;"), vec![Drop]);
        assert_eq!(kinds("/* c */ TrUnCaTe t"), vec![Truncate]);
        assert_eq!(kinds("-- x\ntruncate\tonly t cascade"), vec![Truncate]);
        assert!(is_dangerous("DROP/**/TABLE x"));
    }

    #[test]
    fn words_in_non_code_are_ignored() {
        for sql in [
            "SELECT 'drop table x'",
            "SELECT \"drop\" FROM t",
            "SELECT 1 -- drop table x",
            "SELECT /* truncate t */ 1",
            "SELECT $$delete from t$$",
            "SELECT $f$ update t set x = 1 $f$",
            "SELECT drop_table, dropped FROM t",
            "SELECT * FROM t WHERE x = E'\\'; drop table t; --'",
            "CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM t; $$ LANGUAGE sql",
        ] {
            assert!(!is_dangerous(sql), "{sql}");
        }
    }

    #[test]
    fn delete_and_update_without_where() {
        assert_eq!(kinds("DELETE FROM t"), vec![DeleteWithoutWhere]);
        assert_eq!(kinds("delete from t returning *"), vec![DeleteWithoutWhere]);
        assert_eq!(kinds("DELETE FROM t USING u"), vec![DeleteWithoutWhere]);
        assert_eq!(kinds("UPDATE t SET x = 1"), vec![UpdateWithoutWhere]);
        assert_eq!(
            kinds("UPDATE t SET x = (SELECT 1 WHERE true)"),
            vec![UpdateWithoutWhere]
        );
        assert!(kinds("DELETE FROM t WHERE id IN (SELECT id FROM u)").is_empty());
        assert!(kinds("UPDATE t SET x = 1 WHERE CURRENT OF c").is_empty());
        assert!(kinds("update t set x = (select 1) where id = 2").is_empty());
        assert!(kinds("DELETE FROM t WHERE true").is_empty());
    }

    #[test]
    fn data_modifying_ctes() {
        assert_eq!(
            kinds("WITH x AS (SELECT 1 WHERE true) DELETE FROM t"),
            vec![DeleteWithoutWhere]
        );
        assert!(kinds("WITH x AS (SELECT 1) DELETE FROM t WHERE t.id = 1").is_empty());
        assert_eq!(
            kinds("WITH d AS (DELETE FROM a RETURNING *) SELECT * FROM d WHERE true"),
            vec![DeleteWithoutWhere]
        );
        assert!(kinds("WITH d AS (DELETE FROM a WHERE b RETURNING *) SELECT * FROM d").is_empty());
        assert_eq!(
            kinds("WITH d AS (DELETE FROM a WHERE b) UPDATE c SET x = 1"),
            vec![UpdateWithoutWhere]
        );
        assert_eq!(
            kinds("EXPLAIN ANALYZE DELETE FROM t"),
            vec![DeleteWithoutWhere]
        );
        assert_eq!(
            kinds("PREPARE p AS UPDATE t SET a = $1"),
            vec![UpdateWithoutWhere]
        );
    }

    #[test]
    fn non_statement_uses_of_keywords() {
        for sql in [
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR NO KEY UPDATE OF t",
            "GRANT SELECT, UPDATE, DELETE ON t TO u",
            "CREATE TABLE t (id int REFERENCES u (id) ON DELETE CASCADE ON UPDATE SET NULL)",
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 1",
            "CREATE TRIGGER g BEFORE UPDATE OR DELETE ON t FOR EACH ROW EXECUTE FUNCTION f()",
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            "CREATE POLICY p ON t FOR DELETE USING (true)",
            "SELECT 1 AS delete",
            "SELECT update, delete FROM t",
        ] {
            assert!(kinds(sql).is_empty(), "{sql}: {:?}", kinds(sql));
        }
    }

    #[test]
    fn alter_drop() {
        assert_eq!(kinds("ALTER TABLE t DROP COLUMN c"), vec![AlterDrop]);
        assert_eq!(kinds("alter table t drop constraint c_pk"), vec![AlterDrop]);
        assert_eq!(kinds("ALTER TABLE t DROP c"), vec![AlterDrop]);
        assert_eq!(
            kinds("ALTER TABLE t ADD x int, DROP IF EXISTS y"),
            vec![AlterDrop]
        );
        assert_eq!(kinds("ALTER TABLE t DROP identity"), vec![AlterDrop]);
        assert!(kinds("ALTER TABLE t ALTER COLUMN c DROP DEFAULT").is_empty());
        assert!(kinds("ALTER TABLE t ALTER c DROP NOT NULL").is_empty());
        assert!(kinds("ALTER TABLE t ALTER COLUMN \"C\" DROP IDENTITY IF EXISTS").is_empty());
        assert!(kinds("ALTER TABLE t ADD COLUMN drop_me int").is_empty());
        assert!(kinds("ALTER TABLE t RENAME dropped TO x").is_empty());
    }

    #[test]
    fn statement_indexes_and_excerpts() {
        let d = dangerous_statements("SELECT 1; ; DROP   TABLE\n\tx -- bye\n; DELETE FROM y");
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].kind, d[0].statement), (Drop, 2));
        assert_eq!(d[0].excerpt, "DROP TABLE x");
        assert_eq!((d[1].kind, d[1].statement), (DeleteWithoutWhere, 3));
        assert_eq!(d[1].excerpt, "DELETE FROM y");

        let long = format!("DELETE FROM {}", "x".repeat(200));
        let e = &dangerous_statements(&long)[0].excerpt;
        assert_eq!(e.chars().count(), 80);
        assert!(e.ends_with('…'));

        // Rule action lists: each action is checked.
        let d = kinds("CREATE RULE r AS ON INSERT TO t DO INSTEAD (DELETE FROM a; DELETE FROM b)");
        assert_eq!(d, vec![DeleteWithoutWhere, DeleteWithoutWhere]);
    }

    #[test]
    fn excerpt_does_not_leak_secrets() {
        let d = dangerous_statements("UPDATE users SET password = 'hunter2'");
        assert_eq!(d[0].kind, UpdateWithoutWhere);
        assert!(!d[0].excerpt.contains("hunter2"), "{}", d[0].excerpt);
    }

    #[test]
    fn pathological_nesting_is_linear() {
        let sql = "(delete from as update x set ".repeat(20_000);
        assert_eq!(kinds(&sql), vec![DeleteWithoutWhere, UpdateWithoutWhere]);
        let sql = format!("{} where", "as update x set ".repeat(50_000));
        assert!(kinds(&sql).is_empty());
    }

    #[test]
    fn multiple_kinds_in_one_statement() {
        assert_eq!(
            kinds("WITH a AS (DELETE FROM x), b AS (UPDATE y SET z = 1) DELETE FROM w"),
            vec![DeleteWithoutWhere, UpdateWithoutWhere]
        );
        assert!(kinds("").is_empty());
        assert!(kinds(";;;").is_empty());
    }
}
