//! Transaction status as a real server tracks it: what a statement is, and
//! what its outcome does to the status.

use crate::key::{self, TokenKind};
use crate::wire::TxStatus as TransactionStatus;

/// What kind of statement a SQL text starts with, as far as the protocol
/// model cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxKind {
    /// COMMIT, END, COMMIT PREPARED...
    Commit,
    /// ROLLBACK, ABORT (ends the transaction).
    Rollback,
    /// ROLLBACK TO [SAVEPOINT] (stays in the transaction).
    RollbackTo,
    /// DECLARE name ... CURSOR: creates a portal named after the cursor.
    Declare,
    /// Anything else.
    Other,
}

/// Classifies the first statement of `sql` by its leading keywords.
pub(crate) fn classify(sql: &str) -> TxKind {
    let words: Vec<String> = key::scan(sql)
        .filter(|(kind, _)| *kind == TokenKind::Code)
        .flat_map(|(_, text)| {
            text.split(|c: char| c.is_whitespace() || c == ';')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .take(4)
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["commit", "prepared", ..] => TxKind::Other,
        ["commit", ..] | ["end", ..] => TxKind::Commit,
        ["rollback", "prepared", ..] => TxKind::Other,
        ["rollback" | "abort", "to", ..]
        | ["rollback" | "abort", "work" | "transaction", "to", ..] => TxKind::RollbackTo,
        ["rollback" | "abort", ..] => TxKind::Rollback,
        ["declare", ..] => TxKind::Declare,
        _ => TxKind::Other,
    }
}

/// Whether a statement may run in a failed transaction.
pub(crate) fn allowed_when_failed(kind: TxKind) -> bool {
    matches!(kind, TxKind::Commit | TxKind::Rollback | TxKind::RollbackTo)
}

/// The cursor name of a `DECLARE name ... CURSOR` statement, folded as
/// PostgreSQL folds identifiers (lower case unless quoted).
pub(crate) fn declared_cursor(sql: &str) -> Option<String> {
    let normalized = key::normalize(sql);
    let rest = normalized.get(..8)?;
    if !rest.eq_ignore_ascii_case("declare ") {
        return None;
    }
    let rest = normalized.get(8..)?.trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    name.push('"');
                    continue;
                }
                return Some(name);
            }
            name.push(c);
        }
        return None;
    }
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
        .collect();
    (!name.is_empty()).then(|| name.to_lowercase())
}

/// The status after a statement completed with `tag`.
pub(crate) fn after_tag(status: TransactionStatus, kind: TxKind, tag: &str) -> TransactionStatus {
    match tag {
        "BEGIN" | "START TRANSACTION" => TransactionStatus::InBlock,
        "COMMIT" | "PREPARE TRANSACTION" => TransactionStatus::Idle,
        "ROLLBACK" if kind == TxKind::RollbackTo => TransactionStatus::InBlock,
        "ROLLBACK" => TransactionStatus::Idle,
        _ => status,
    }
}

/// The status after a statement failed.
pub(crate) fn after_error(status: TransactionStatus) -> TransactionStatus {
    match status {
        TransactionStatus::Idle => TransactionStatus::Idle,
        TransactionStatus::InBlock | TransactionStatus::Failed => TransactionStatus::Failed,
    }
}

/// Splits a simple-query string into its statements (on `;` outside
/// strings, identifiers and comments).
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for (kind, text) in key::scan(sql) {
        if kind != TokenKind::Code {
            if let Some(last) = out.last_mut() {
                last.push_str(text);
            }
            continue;
        }
        let mut parts = text.split(';');
        if let (Some(first), Some(last)) = (parts.next(), out.last_mut()) {
            last.push_str(first);
        }
        for part in parts {
            out.push(part.to_owned());
        }
    }
    out.retain(|s| !key::normalize(s).is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_transaction_control() {
        assert_eq!(classify("COMMIT"), TxKind::Commit);
        assert_eq!(classify("  end work"), TxKind::Commit);
        assert_eq!(classify("rollback"), TxKind::Rollback);
        assert_eq!(classify("ROLLBACK TO SAVEPOINT a"), TxKind::RollbackTo);
        assert_eq!(classify("rollback transaction to a"), TxKind::RollbackTo);
        assert_eq!(classify("/* rollback */ select 1"), TxKind::Other);
        assert_eq!(classify("select 'rollback'"), TxKind::Other);
        assert_eq!(classify("DECLARE c CURSOR FOR select 1"), TxKind::Declare);
        assert_eq!(
            declared_cursor("DECLARE Cur1 CURSOR FOR x").as_deref(),
            Some("cur1")
        );
        assert_eq!(
            declared_cursor("declare \"My \"\"c\" cursor for x").as_deref(),
            Some("My \"c")
        );
    }

    #[test]
    fn tags_move_the_status() {
        use TransactionStatus::*;
        assert_eq!(after_tag(Idle, TxKind::Other, "BEGIN"), InBlock);
        assert_eq!(after_tag(Failed, TxKind::RollbackTo, "ROLLBACK"), InBlock);
        assert_eq!(after_tag(Failed, TxKind::Commit, "ROLLBACK"), Idle);
        assert_eq!(after_tag(InBlock, TxKind::Other, "SELECT 1"), InBlock);
        assert_eq!(after_error(InBlock), Failed);
        assert_eq!(after_error(Idle), Idle);
    }

    #[test]
    fn splits_statements_outside_quotes() {
        assert_eq!(statements("begin; select ';' ; commit;").len(), 3);
        assert_eq!(statements("select 1 -- a; b\n").len(), 1);
    }
}
