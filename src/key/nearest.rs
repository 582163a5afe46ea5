//! Near-miss diagnostic: for a query with no recorded answer, find the
//! closest recorded query and describe how it differs.

use std::fmt::Write as _;

use super::ParamValue;

/// A recorded query to compare against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The recorded SQL, already normalized.
    pub sql: &'a str,
    /// The recorded parameter values.
    pub params: Vec<ParamValue<'a>>,
}

/// The closest candidate found by [`nearest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NearMiss {
    /// Index of the chosen candidate in the slice given to [`nearest`].
    pub index: usize,
    /// One human-readable line saying how it differs from the query, e.g.
    /// `same SQL; parameter $2 differs: recorded '10', got '11'`.
    pub description: String,
}

/// With more candidates than this, only the most promising ones (by a cheap
/// upper bound from shared prefix/suffix, then length difference) are
/// compared exactly.
pub const PREFILTER_LIMIT: usize = 5000;

/// Characters of each differing middle (what is left once the common
/// prefix and suffix are trimmed) compared exactly; the rest of a longer
/// middle counts as all different. Recorded queries are rarely this long
/// where they differ, and a hostile one cannot make the comparison
/// quadratic in its length.
pub const COMPARED_CHARS: usize = 2_000;

/// Dynamic-programming cells one [`nearest`] call spends at most on
/// comparisons longer than [`NORMAL_CHARS`] on a side. Candidates are
/// compared most promising first; once this is spent, the rest of the long
/// ones are ranked by their cheap upper bound. It keeps the cost of a long
/// query's diagnostic bounded (milliseconds) whatever its length.
pub const CELL_BUDGET: usize = 8_000_000;

/// A comparison whose differing middles are both at most this long is
/// always exact and not charged to [`CELL_BUDGET`]: ordinary queries are
/// matched exactly as ever, at a cost bounded by [`PREFILTER_LIMIT`]
/// candidates of at most this square.
pub const NORMAL_CHARS: usize = 256;

/// Characters shown on each side of the first SQL difference.
const WINDOW_HALF: usize = 10;
/// Longest parameter value shown (in characters or hex digits).
const VALUE_MAX: usize = 40;

/// Finds the candidate closest to the query `sql_normalized`/`params`.
///
/// Closeness is the Levenshtein distance (on chars) between normalized SQL
/// texts; ties go to the candidate whose parameters differ in the fewest
/// positions, then to the lowest index. So a candidate with identical SQL
/// always wins, preferring the one with the most similar parameters.
/// Returns `None` only when `candidates` is empty.
pub fn nearest(
    sql_normalized: &str,
    params: &[ParamValue<'_>],
    candidates: &[Candidate<'_>],
) -> Option<NearMiss> {
    nearest_within(sql_normalized, params, candidates, &mut CELL_BUDGET.clone())
}

/// [`nearest`], spending at most `budget` cells (what is left stays in it).
fn nearest_within(
    sql_normalized: &str,
    params: &[ParamValue<'_>],
    candidates: &[Candidate<'_>],
    budget: &mut usize,
) -> Option<NearMiss> {
    let query: Vec<char> = sql_normalized.chars().collect();
    let mut ests: Vec<Estimate> = candidates
        .iter()
        .enumerate()
        .map(|(index, c)| Estimate::new(index, &query, c.sql))
        .collect();
    if ests.len() > PREFILTER_LIMIT {
        ests.select_nth_unstable_by_key(PREFILTER_LIMIT - 1, |e| (e.upper, e.lower, e.index));
        ests.truncate(PREFILTER_LIMIT);
    }
    ests.sort_unstable_by_key(|e| (e.lower, e.upper, e.index));

    // (distance, differing parameters, index): smallest wins.
    let mut best: Option<(usize, usize, usize)> = None;
    for e in &ests {
        let max = match best {
            Some((d, ..)) if e.lower > d => break,
            Some((d, ..)) => d.min(e.upper),
            None => e.upper,
        };
        let distance = if e.upper == 0 {
            0
        } else {
            match e.distance(&query, candidates[e.index].sql, max, budget) {
                Some(d) => d,
                None => continue,
            }
        };
        let score = (
            distance,
            param_diff(params, &candidates[e.index].params),
            e.index,
        );
        if best.is_none_or(|b| score < b) {
            best = Some(score);
        }
    }
    let (_, _, index) = best?;
    Some(NearMiss {
        index,
        description: describe(sql_normalized, params, &candidates[index]),
    })
}

/// Cheap bounds on the edit distance between the query and one candidate.
struct Estimate {
    index: usize,
    cand_len: usize,
    prefix: usize,
    suffix: usize,
    /// Length difference: a lower bound on the distance.
    lower: usize,
    /// Longer remainder after trimming the common prefix and suffix: an
    /// upper bound on the distance.
    upper: usize,
}

impl Estimate {
    fn new(index: usize, query: &[char], cand: &str) -> Self {
        let cand_len = cand.chars().count();
        let prefix = query
            .iter()
            .zip(cand.chars())
            .take_while(|(a, b)| **a == *b)
            .count();
        let room = query.len().min(cand_len) - prefix;
        let suffix = query
            .iter()
            .rev()
            .zip(cand.chars().rev())
            .take(room)
            .take_while(|(a, b)| **a == *b)
            .count();
        Estimate {
            index,
            cand_len,
            prefix,
            suffix,
            lower: query.len().abs_diff(cand_len),
            upper: query.len().max(cand_len) - prefix - suffix,
        }
    }
}

impl Estimate {
    /// The distance between the query and this candidate if at most `max`
    /// (`None` otherwise): exact on the first [`COMPARED_CHARS`] of each
    /// differing middle, the rest of a longer middle counted as all
    /// different; a comparison longer than [`NORMAL_CHARS`] is charged to
    /// `budget`, and is the upper bound once the budget is spent.
    fn distance(
        &self,
        query: &[char],
        cand: &str,
        max: usize,
        budget: &mut usize,
    ) -> Option<usize> {
        let q = &query[self.prefix..query.len() - self.suffix];
        let cand_middle = self.cand_len - self.prefix - self.suffix;
        let (qn, cn) = (q.len().min(COMPARED_CHARS), cand_middle.min(COMPARED_CHARS));
        // Beyond the compared part, the longer remainder is all different.
        let beyond = (q.len() - qn).max(cand_middle - cn);
        let max_here = max.checked_sub(beyond)?;
        let cost = qn.saturating_mul(cn.min(2 * max_here + 1));
        if qn > NORMAL_CHARS || cn > NORMAL_CHARS {
            if cost > *budget {
                return (self.upper <= max).then_some(self.upper);
            }
            *budget -= cost;
        }
        let c: Vec<char> = cand.chars().skip(self.prefix).take(cn).collect();
        bounded_levenshtein(&q[..qn], &c, max_here).map(|d| d + beyond)
    }
}

/// Levenshtein distance between `a` and `b` if it is at most `max`
/// (computed in a diagonal band of width `2 * max + 1`), else `None`.
fn bounded_levenshtein(a: &[char], b: &[char], max: usize) -> Option<usize> {
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > max {
        return None;
    }
    if n == 0 || m == 0 {
        return Some(n.max(m));
    }
    let big = max + 1;
    let mut prev: Vec<usize> = (0..=m).map(|j| j.min(big)).collect();
    let mut cur = vec![big; m + 1];
    for i in 1..=n {
        let lo = i.saturating_sub(max).max(1);
        let hi = (i + max).min(m);
        cur[0] = i.min(big);
        cur[lo - 1] = if lo == 1 { cur[0] } else { big };
        let mut row_min = cur[lo - 1];
        for j in lo..=hi {
            let substitute = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let v = substitute.min(prev[j] + 1).min(cur[j - 1] + 1).min(big);
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if hi < m {
            cur[hi + 1] = big;
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    (prev[m] <= max).then_some(prev[m])
}

/// Number of positions whose parameter differs (missing counts as differing).
fn param_diff(a: &[ParamValue<'_>], b: &[ParamValue<'_>]) -> usize {
    let common = a.iter().zip(b).filter(|(x, y)| x != y).count();
    common + a.len().abs_diff(b.len())
}

fn describe(sql: &str, params: &[ParamValue<'_>], cand: &Candidate<'_>) -> String {
    if cand.sql != sql {
        let pos = sql
            .chars()
            .zip(cand.sql.chars())
            .take_while(|(a, b)| a == b)
            .count();
        return format!(
            "SQL differs at character {}: recorded \"{}\", got \"{}\"",
            pos + 1,
            window(cand.sql, pos),
            window(sql, pos)
        );
    }
    if cand.params.len() != params.len() {
        let n = cand.params.len();
        let noun = if n == 1 { "parameter" } else { "parameters" };
        return format!("same SQL; recorded {n} {noun}, got {}", params.len());
    }
    let mut diffs = (0..params.len()).filter(|&i| params[i] != cand.params[i]);
    let Some(i) = diffs.next() else {
        return "same SQL and parameters".to_owned();
    };
    let mut out = format!(
        "same SQL; parameter ${} differs: recorded {}, got {}",
        i + 1,
        show_value(&cand.params[i]),
        show_value(&params[i])
    );
    let more = diffs.count();
    if more > 0 {
        let _ = write!(out, " (and {more} more)");
    }
    out
}

/// Up to `WINDOW_HALF` chars either side of char index `pos`, with ellipses.
fn window(s: &str, pos: usize) -> String {
    let len = s.chars().count();
    let start = pos.saturating_sub(WINDOW_HALF);
    let end = (pos + WINDOW_HALF).min(len);
    let mut out = String::new();
    if start > 0 {
        out.push_str("...");
    }
    push_escaped(
        &mut out,
        s.chars().skip(start).take(end.saturating_sub(start)),
        '"',
    );
    if end < len {
        out.push_str("...");
    }
    out
}

/// Appends chars, escaping control characters and `quote` so the result
/// stays on one line and unambiguous.
fn push_escaped(out: &mut String, chars: impl Iterator<Item = char>, quote: char) {
    for c in chars {
        if c.is_control() || c == quote {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
}

fn show_value(v: &ParamValue<'_>) -> String {
    match v {
        ParamValue::Null => "NULL".to_owned(),
        ParamValue::Text(s) => {
            let mut out = String::from("'");
            push_escaped(&mut out, s.chars().take(VALUE_MAX), '\'');
            if s.chars().nth(VALUE_MAX).is_some() {
                out.push_str("...");
            }
            out.push('\'');
            out
        }
        ParamValue::Raw { format, bytes } => {
            let shown = &bytes[..bytes.len().min(VALUE_MAX / 2)];
            let dots = if shown.len() < bytes.len() { "..." } else { "" };
            format!(
                "<{} bytes, format {format}: 0x{}{dots}>",
                bytes.len(),
                hex::encode(shown)
            )
        }
    }
}

#[cfg(test)]
mod tests;
