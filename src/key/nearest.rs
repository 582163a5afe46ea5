//! The near-miss diagnostic: which recorded query is closest to one that
//! missed, and how it differs. Only for messages; matching is always exact.

use super::ParamValue;

/// A recorded query to compare against.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Normalized SQL.
    pub sql: &'a str,
    /// Its parameters.
    pub params: Vec<ParamValue<'a>>,
}

/// The closest candidate and a one-line description of the difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMiss {
    /// Index into the candidates.
    pub index: usize,
    /// How it differs, e.g. `same SQL; parameter $2 differs: recorded '10', got '11'`.
    pub description: String,
}

const MAX_DISTANCE_WORK: usize = 50_000_000;

/// Finds the candidate closest to (`sql`, `params`).
pub fn nearest(
    sql: &str,
    params: &[ParamValue<'_>],
    candidates: &[Candidate<'_>],
) -> Option<NearMiss> {
    let target: Vec<char> = sql.chars().collect();
    let mut best: Option<(usize, usize, usize)> = None; // (distance, param diffs, index)
    let mut work = 0usize;
    for (index, c) in candidates.iter().enumerate() {
        let len_gap = c.sql.chars().count().abs_diff(target.len());
        if best.is_some_and(|(d, _, _)| len_gap > d) {
            continue;
        }
        let distance = if c.sql == sql {
            0
        } else {
            work += target.len() * c.sql.len();
            if work > MAX_DISTANCE_WORK && best.is_some() {
                continue;
            }
            levenshtein(&target, c.sql)
        };
        let diffs = param_diffs(params, &c.params);
        if best.is_none_or(|(d, p, _)| (distance, diffs) < (d, p)) {
            best = Some((distance, diffs, index));
        }
    }
    let (_, _, index) = best?;
    let c = &candidates[index];
    Some(NearMiss {
        index,
        description: describe(sql, params, c),
    })
}

fn param_diffs(a: &[ParamValue<'_>], b: &[ParamValue<'_>]) -> usize {
    a.len().abs_diff(b.len()) + a.iter().zip(b).filter(|(x, y)| x != y).count()
}

fn levenshtein(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn show(p: &ParamValue<'_>) -> String {
    match p {
        ParamValue::Null => "NULL".into(),
        ParamValue::Text(t) => {
            let cut: String = t.chars().take(40).collect();
            if cut.len() < t.len() {
                format!("'{cut}...'")
            } else {
                format!("'{cut}'")
            }
        }
        ParamValue::Raw { format, bytes } => {
            let h = hex::encode(&bytes[..bytes.len().min(20)]);
            format!(
                "{} bytes ({}) {h}",
                bytes.len(),
                if *format == 1 { "binary" } else { "text" }
            )
        }
    }
}

fn window(s: &str, at: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let start = at.saturating_sub(20);
    let end = (at + 20).min(chars.len());
    let mut out = String::new();
    if start > 0 {
        out.push_str("...");
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push_str("...");
    }
    out
}

fn describe(sql: &str, params: &[ParamValue<'_>], c: &Candidate<'_>) -> String {
    if c.sql != sql {
        let at = sql
            .chars()
            .zip(c.sql.chars())
            .take_while(|(a, b)| a == b)
            .count();
        return format!(
            "SQL differs at character {}: recorded \"{}\", got \"{}\"",
            at + 1,
            window(c.sql, at),
            window(sql, at)
        );
    }
    if c.params.len() != params.len() {
        return format!(
            "same SQL; recorded {} parameters, got {}",
            c.params.len(),
            params.len()
        );
    }
    let diffs: Vec<String> = params
        .iter()
        .zip(&c.params)
        .enumerate()
        .filter(|(_, (got, rec))| got != rec)
        .map(|(i, (got, rec))| {
            format!(
                "parameter ${} differs: recorded {}, got {}",
                i + 1,
                show(rec),
                show(got)
            )
        })
        .collect();
    match diffs.len() {
        0 => "same SQL and parameters (the recording is for another database?)".into(),
        _ => format!("same SQL; {}", diffs.join("; ")),
    }
}
