//! Comparing two answers to the same query.

use super::{Change, Difference, Outcome};
use crate::fixture::{Column, Exchange, QueryResult, Value};

/// How `now` answers differently from `recorded`: where an error was
/// raised ([`Change::Phase`]) and every result ([`compare_results`]).
/// The SQL and parameters are not compared: the caller pairs exchanges
/// that ask the same query.
pub fn compare_exchanges(recorded: &Exchange, now: &Exchange) -> Vec<Difference> {
    let mut out = Vec::new();
    if recorded.phase != now.phase {
        out.push(Difference {
            result: None,
            change: Change::Phase {
                recorded: recorded.phase,
                now: now.phase,
            },
        });
    }
    out.extend(compare_results(&recorded.results, &now.results));
    out
}

/// How the results `now` differ from the `recorded` ones, result by
/// result: the outcome (tag, SQLSTATE, empty, suspended), the columns
/// (names and types) and the rows, compared on the columns both have. When
/// one ended in an error and the other did not, only that is reported (the
/// rows an error did not send are not news). Empty when they mean the same.
pub fn compare_results(recorded: &[QueryResult], now: &[QueryResult]) -> Vec<Difference> {
    let numbered = recorded.len() != 1 || now.len() != 1;
    let mut out = Vec::new();
    for (i, (a, b)) in recorded.iter().zip(now).enumerate() {
        let result = numbered.then_some(i);
        out.extend(
            compare_result(a, b)
                .into_iter()
                .map(|change| Difference { result, change }),
        );
    }
    for (i, r) in recorded.iter().enumerate().skip(now.len()) {
        out.push(Difference {
            result: Some(i),
            change: Change::ResultRemoved {
                outcome: Outcome::of(r),
            },
        });
    }
    for (i, r) in now.iter().enumerate().skip(recorded.len()) {
        out.push(Difference {
            result: Some(i),
            change: Change::ResultAdded {
                outcome: Outcome::of(r),
            },
        });
    }
    out
}

fn compare_result(a: &QueryResult, b: &QueryResult) -> Vec<Change> {
    let (was, now) = (Outcome::of(a), Outcome::of(b));
    let mut out = Vec::new();
    match (&was, &now) {
        (Outcome::Tag(x), Outcome::Tag(y)) if x != y => out.push(Change::Tag {
            recorded: x.clone(),
            now: y.clone(),
        }),
        (Outcome::Error(x), Outcome::Error(y)) if x == y => return out,
        (Outcome::Error(_), _) | (_, Outcome::Error(_)) => {
            return vec![Change::Outcome { recorded: was, now }]
        }
        (x, y) if x != y => out.push(Change::Outcome {
            recorded: was.clone(),
            now: now.clone(),
        }),
        _ => {}
    }
    let shared = if a.columns_unknown || b.columns_unknown {
        by_position(a, b)
    } else {
        let (x, y) = (
            a.columns.as_deref().unwrap_or_default(),
            b.columns.as_deref().unwrap_or_default(),
        );
        compare_columns(x, y, &mut out)
    };
    compare_rows(&a.rows, &b.rows, &shared, &mut out);
    compare_copy(copy_data(a), copy_data(b), &mut out);
    out
}

fn copy_data(r: &QueryResult) -> &[Value] {
    r.copy_out.as_ref().map_or(&[], |c| &c.data)
}

/// A column both sides have: its label and its index on each side.
struct Shared {
    label: String,
    recorded: usize,
    now: usize,
}

/// Columns matched by name (the k-th column of a name with the k-th of
/// that name, so `?column?` twice still pairs); what only one side has is
/// added or dropped; types compared; a new order of the same columns is
/// one change.
fn compare_columns(a: &[Column], b: &[Column], out: &mut Vec<Change>) -> Vec<Shared> {
    let (la, lb) = (labels(a), labels(b));
    let mut shared = Vec::new();
    for (i, label) in la.iter().enumerate() {
        match lb.iter().position(|l| l == label) {
            Some(j) => {
                if a[i].type_oid != b[j].type_oid {
                    out.push(Change::ColumnType {
                        name: label.clone(),
                        recorded: a[i].type_oid,
                        now: b[j].type_oid,
                    });
                }
                shared.push(Shared {
                    label: label.clone(),
                    recorded: i,
                    now: j,
                });
            }
            None => out.push(Change::ColumnDropped {
                name: label.clone(),
                type_oid: a[i].type_oid,
            }),
        }
    }
    for (j, label) in lb.iter().enumerate() {
        if !la.contains(label) {
            out.push(Change::ColumnAdded {
                name: label.clone(),
                type_oid: b[j].type_oid,
            });
        }
    }
    if shared.windows(2).any(|w| w[0].now > w[1].now) {
        let mut now: Vec<&Shared> = shared.iter().collect();
        now.sort_by_key(|s| s.now);
        out.push(Change::ColumnsReordered {
            recorded: shared.iter().map(|s| s.label.clone()).collect(),
            now: now.into_iter().map(|s| s.label.clone()).collect(),
        });
    }
    shared
}

/// Names, with `#k` after the k-th (k > 1) column of a repeated name.
fn labels(columns: &[Column]) -> Vec<String> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let before = columns[..i].iter().filter(|o| o.name == c.name).count();
            if before == 0 {
                c.name.clone()
            } else {
                format!("{} #{}", c.name, before + 1)
            }
        })
        .collect()
}

/// Rows whose description one side never saw: compared column by column.
fn by_position(a: &QueryResult, b: &QueryResult) -> Vec<Shared> {
    let width = |r: &QueryResult| match (&r.columns, r.rows.first()) {
        (Some(c), _) => c.len(),
        (None, Some(row)) => row.len(),
        (None, None) => 0,
    };
    let name = |r: &QueryResult, i: usize| r.columns.as_ref().map(|c| c[i].name.clone());
    (0..width(a).min(width(b)))
        .map(|i| Shared {
            label: name(a, i)
                .or_else(|| name(b, i))
                .unwrap_or_else(|| format!("{}", i + 1)),
            recorded: i,
            now: i,
        })
        .collect()
}

fn compare_rows(a: &[Vec<Value>], b: &[Vec<Value>], shared: &[Shared], out: &mut Vec<Change>) {
    let project = |row: &[Value], now: bool| -> Vec<Value> {
        shared
            .iter()
            .map(|s| {
                let i = if now { s.now } else { s.recorded };
                row.get(i).cloned().unwrap_or(Value::Null)
            })
            .collect()
    };
    let pa: Vec<Vec<Value>> = a.iter().map(|r| project(r, false)).collect();
    let pb: Vec<Vec<Value>> = b.iter().map(|r| project(r, true)).collect();
    for step in align(&pa, &pb) {
        match step {
            Step::Both(i, j) => {
                for (k, s) in shared.iter().enumerate() {
                    if pa[i][k] != pb[j][k] {
                        out.push(Change::Value {
                            row: j,
                            column: s.label.clone(),
                            recorded: pa[i][k].clone(),
                            now: pb[j][k].clone(),
                        });
                    }
                }
            }
            Step::Removed(i) => out.push(Change::RowRemoved {
                row: i,
                values: a[i].clone(),
            }),
            Step::Added(j) => out.push(Change::RowAdded {
                row: j,
                values: b[j].clone(),
            }),
        }
    }
}

fn compare_copy(a: &[Value], b: &[Value], out: &mut Vec<Change>) {
    for step in align(a, b) {
        match step {
            Step::Both(i, j) if a[i] != b[j] => out.push(Change::CopyData {
                message: j,
                recorded: Some(a[i].clone()),
                now: Some(b[j].clone()),
            }),
            Step::Both(..) => {}
            Step::Removed(i) => out.push(Change::CopyData {
                message: i,
                recorded: Some(a[i].clone()),
                now: None,
            }),
            Step::Added(j) => out.push(Change::CopyData {
                message: j,
                recorded: None,
                now: Some(b[j].clone()),
            }),
        }
    }
}

/// One step of lining up two sequences.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// The `i`-th recorded item stands where the `j`-th is now (equal
    /// or not; only unequal ones are reported).
    Both(usize, usize),
    /// The `i`-th recorded item has no counterpart now.
    Removed(usize),
    /// The `j`-th item now has no recorded counterpart.
    Added(usize),
}

fn align<T: PartialEq>(a: &[T], b: &[T]) -> Vec<Step> {
    align_by(a.len(), b.len(), |i, j| a[i] == b[j])
}

/// Lines up two sequences of `la` and `lb` items the way a reader expects
/// for rows: what they share at the start and at the end pairs up; of the
/// middle, same-length middles pair position by position (changed in
/// place) and otherwise the recorded middle is removed and the new one
/// added. Linear, so a 100 000-row answer costs no more than reading it.
pub(super) fn align_by(la: usize, lb: usize, same: impl Fn(usize, usize) -> bool) -> Vec<Step> {
    let head = (0..la.min(lb)).take_while(|&k| same(k, k)).count();
    let tail = (0..(la - head).min(lb - head))
        .take_while(|&k| same(la - 1 - k, lb - 1 - k))
        .count();
    let (ma, mb) = (la - head - tail, lb - head - tail);
    let mut steps: Vec<Step> = (0..head).map(|i| Step::Both(i, i)).collect();
    if ma == mb {
        steps.extend((head..head + ma).map(|i| Step::Both(i, i)));
    } else {
        steps.extend((head..head + ma).map(Step::Removed));
        steps.extend((head..head + mb).map(Step::Added));
    }
    steps.extend((0..tail).map(|k| Step::Both(head + ma + k, head + mb + k)));
    steps
}

#[cfg(test)]
pub(super) fn align_for_tests<T: PartialEq>(
    a: &[T],
    b: &[T],
) -> Vec<(Option<usize>, Option<usize>)> {
    align(a, b)
        .into_iter()
        .map(|s| match s {
            Step::Both(i, j) => (Some(i), Some(j)),
            Step::Removed(i) => (Some(i), None),
            Step::Added(j) => (None, Some(j)),
        })
        .collect()
}
