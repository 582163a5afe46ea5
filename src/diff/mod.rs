//! What changed between two recorded answers, at the SQL level.
//!
//! [`compare_results`] and [`compare_exchanges`] compare two answers to
//! the same query (a recorded one and a live or re-recorded one) and return
//! typed [`Difference`]s: columns (names and types), rows, the command tag,
//! the SQLSTATE, where an error was raised, COPY TO data. What is not part
//! of an answer is ignored: sequence numbers, file names, the pgsim
//! version, backend pids, notices, asynchronous messages, and the parts of
//! a row description that name the recorded server's catalog (table OIDs,
//! attribute numbers, type sizes and modifiers).
//!
//! [`compare_sets`] matches the exchanges of two fixture sets by database
//! and query key (the `key` of an exchange: its SQL and parameters), in
//! recorded order per key, and lists what was added, removed or changed.
//!
//! ```
//! use pgsim::diff::{compare_results, Change};
//! use pgsim::fixture::{QueryResult, Value};
//!
//! let recorded = QueryResult { tag: Some("UPDATE 1".into()), ..Default::default() };
//! let now = QueryResult { tag: Some("UPDATE 0".into()), ..Default::default() };
//! let differences = compare_results(&[recorded], &[now]);
//! assert!(matches!(&differences[0].change, Change::Tag { .. }));
//! assert_eq!(differences[0].to_string(), "tag UPDATE 1 -> UPDATE 0");
//! ```

mod answer;
mod set;
mod show;

#[cfg(test)]
pub(crate) mod tests;

pub use answer::{compare_exchanges, compare_results};
pub use set::{compare_sets, query_line, Entry, EntryKind, Located, SetDiff, Side};
pub(crate) use set::{database_header, write_differences};

use crate::fixture::{Phase, Value};

/// One way two answers to the same query differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Which result of the exchange (0-based; shown 1-based), `None` when
    /// both answers hold exactly one result, as almost all do.
    pub result: Option<usize>,
    /// What differs.
    pub change: Change,
}

/// What differs between a recorded answer and the one it is compared with
/// ("now"). Rows and results are 0-based here and shown 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The error was raised at another step of the extended protocol.
    Phase {
        /// Recorded phase.
        recorded: Phase,
        /// Phase now.
        now: Phase,
    },
    /// A statement answers now that had no result before (a simple query
    /// holding one more statement).
    ResultAdded {
        /// How it ended.
        outcome: Outcome,
    },
    /// A recorded result has no counterpart now.
    ResultRemoved {
        /// How it ended.
        outcome: Outcome,
    },
    /// The statement ended another way: an error instead of a completion,
    /// another SQLSTATE, an empty query, a suspended portal.
    Outcome {
        /// Recorded outcome.
        recorded: Outcome,
        /// Outcome now.
        now: Outcome,
    },
    /// Both completed, with different command tags.
    Tag {
        /// Recorded tag.
        recorded: String,
        /// Tag now.
        now: String,
    },
    /// A column of the row description that was not recorded.
    ColumnAdded {
        /// Its name.
        name: String,
        /// Its type OID.
        type_oid: u32,
    },
    /// A recorded column that is gone.
    ColumnDropped {
        /// Its name.
        name: String,
        /// Its type OID.
        type_oid: u32,
    },
    /// A column with another type.
    ColumnType {
        /// Its name.
        name: String,
        /// Recorded type OID.
        recorded: u32,
        /// Type OID now.
        now: u32,
    },
    /// The same columns in another order.
    ColumnsReordered {
        /// Recorded names, in order.
        recorded: Vec<String>,
        /// Names now, in order.
        now: Vec<String>,
    },
    /// One value of a row that is there in both.
    Value {
        /// Row index (0-based).
        row: usize,
        /// Column name (`name #2` for the second column of that name).
        column: String,
        /// Recorded value.
        recorded: Value,
        /// Value now.
        now: Value,
    },
    /// A row that was not recorded.
    RowAdded {
        /// Its index among the rows now (0-based).
        row: usize,
        /// Its values.
        values: Vec<Value>,
    },
    /// A recorded row that is gone.
    RowRemoved {
        /// Its index among the recorded rows (0-based).
        row: usize,
        /// Its values.
        values: Vec<Value>,
    },
    /// `COPY ... TO STDOUT` sent other data: one CopyData message differs,
    /// is new (`recorded` is `None`) or is gone (`now` is `None`).
    CopyData {
        /// Message index (0-based; the recorded index when gone, else the
        /// index now).
        message: usize,
        /// Recorded message.
        recorded: Option<Value>,
        /// Message now.
        now: Option<Value>,
    },
}

/// How a statement ended, as far as an answer's meaning goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// CommandComplete with this tag.
    Tag(String),
    /// ErrorResponse with this SQLSTATE.
    Error(String),
    /// EmptyQueryResponse.
    Empty,
    /// The client stopped reading a row-limited portal.
    Suspended,
}

impl Outcome {
    /// The outcome of a recorded result.
    pub fn of(result: &crate::fixture::QueryResult) -> Self {
        match (&result.error, &result.tag) {
            (Some(e), _) => Outcome::Error(e.code().to_owned()),
            (None, Some(tag)) => Outcome::Tag(tag.clone()),
            (None, None) if result.empty => Outcome::Empty,
            (None, None) => Outcome::Suspended,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Tag(tag) => write!(f, "ok: {tag}"),
            Outcome::Error(code) => write!(f, "SQLSTATE {code}"),
            Outcome::Empty => f.write_str("empty query"),
            Outcome::Suspended => f.write_str("suspended portal"),
        }
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = self.result {
            write!(f, "result {}: ", r + 1)?;
        }
        write!(f, "{}", self.change)
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use show::{pair, phase, quoted, row, type_name};
        match self {
            Change::Phase { recorded, now } => {
                write!(f, "raised at {} (was {})", phase(*now), phase(*recorded))
            }
            Change::ResultAdded { outcome } => write!(f, "added ({outcome})"),
            Change::ResultRemoved { outcome } => write!(f, "removed (was {outcome})"),
            Change::Outcome {
                recorded: Outcome::Error(was),
                now: Outcome::Error(code),
            } => write!(f, "SQLSTATE {code} (was {was})"),
            Change::Outcome {
                recorded: Outcome::Tag(_),
                now: now @ Outcome::Error(_),
            } => write!(f, "{now} (was ok)"),
            Change::Outcome { recorded, now } => write!(f, "{now} (was {recorded})"),
            Change::Tag { recorded, now } => write!(f, "tag {recorded} -> {now}"),
            Change::ColumnAdded { name, type_oid } => {
                write!(f, "column {name} added ({})", type_name(*type_oid))
            }
            Change::ColumnDropped { name, type_oid } => {
                write!(f, "column {name} dropped (was {})", type_name(*type_oid))
            }
            Change::ColumnType {
                name,
                recorded,
                now,
            } => write!(
                f,
                "column {name}: type {} -> {}",
                type_name(*recorded),
                type_name(*now)
            ),
            Change::ColumnsReordered { recorded, now } => write!(
                f,
                "columns reordered: {} -> {}",
                recorded.join(", "),
                now.join(", ")
            ),
            Change::Value {
                row,
                column,
                recorded,
                now,
            } => {
                let (recorded, now) = pair(recorded, now);
                write!(
                    f,
                    "row {} column {column}: recorded {recorded}, now {now}",
                    row + 1
                )
            }
            Change::RowAdded { row: r, values } => {
                write!(f, "row {} added: {}", r + 1, row(values))
            }
            Change::RowRemoved { row: r, values } => {
                write!(f, "row {} removed: {}", r + 1, row(values))
            }
            Change::CopyData {
                message,
                recorded,
                now,
            } => match (recorded, now) {
                (Some(recorded), Some(now)) => {
                    let (recorded, now) = pair(recorded, now);
                    write!(
                        f,
                        "COPY data message {}: recorded {recorded}, now {now}",
                        message + 1
                    )
                }
                (None, Some(now)) => {
                    write!(
                        f,
                        "COPY data message {} added: {}",
                        message + 1,
                        quoted(now)
                    )
                }
                (Some(recorded), None) => write!(
                    f,
                    "COPY data message {} removed: {}",
                    message + 1,
                    quoted(recorded)
                ),
                (None, None) => write!(f, "COPY data message {}", message + 1),
            },
        }
    }
}
