//! Transaction status as a real server tracks it: what a statement is, and
//! what its outcome does to the status.

use crate::key::{self, TokenKind};
use crate::wire::TransactionStatus;

/// What kind of transaction-control statement a SQL text starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxKind {
    /// COMMIT, END, COMMIT PREPARED...
    Commit,
    /// ROLLBACK, ABORT (ends the transaction).
    Rollback,
    /// ROLLBACK TO [SAVEPOINT] (stays in the transaction).
    RollbackTo,
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
        _ => TxKind::Other,
    }
}

/// Whether a statement may run in a failed transaction.
pub(crate) fn allowed_when_failed(kind: TxKind) -> bool {
    kind != TxKind::Other
}

/// The status after a statement completed with `tag`.
pub(crate) fn after_tag(status: TransactionStatus, kind: TxKind, tag: &str) -> TransactionStatus {
    match tag {
        "BEGIN" | "START TRANSACTION" => TransactionStatus::Transaction,
        "COMMIT" | "PREPARE TRANSACTION" => TransactionStatus::Idle,
        "ROLLBACK" if kind == TxKind::RollbackTo => TransactionStatus::Transaction,
        "ROLLBACK" => TransactionStatus::Idle,
        _ => status,
    }
}

/// The status after a statement failed.
pub(crate) fn after_error(status: TransactionStatus) -> TransactionStatus {
    match status {
        TransactionStatus::Idle => TransactionStatus::Idle,
        TransactionStatus::Transaction | TransactionStatus::Error => TransactionStatus::Error,
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
    }

    #[test]
    fn tags_move_the_status() {
        use TransactionStatus::*;
        assert_eq!(after_tag(Idle, TxKind::Other, "BEGIN"), Transaction);
        assert_eq!(
            after_tag(Error, TxKind::RollbackTo, "ROLLBACK"),
            Transaction
        );
        assert_eq!(after_tag(Error, TxKind::Commit, "ROLLBACK"), Idle);
        assert_eq!(
            after_tag(Transaction, TxKind::Other, "SELECT 1"),
            Transaction
        );
        assert_eq!(after_error(Transaction), Error);
        assert_eq!(after_error(Idle), Idle);
    }

    #[test]
    fn splits_statements_outside_quotes() {
        assert_eq!(statements("begin; select ';' ; commit;").len(), 3);
        assert_eq!(statements("select 1 -- a; b\n").len(), 1);
    }
}
