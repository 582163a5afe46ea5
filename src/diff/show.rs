//! How values, rows and types read in a difference.

use crate::fixture::{Phase, Value};

/// Longest text shown whole; longer values are cut around what differs.
const MAX_SHOWN: usize = 80;
/// Characters kept before the first difference of two long values.
const CONTEXT: usize = 20;

/// A type OID with its name when PostgreSQL has one built in.
pub(super) fn type_name(oid: u32) -> String {
    match tokio_postgres::types::Type::from_oid(oid) {
        Some(t) => format!("{} ({oid})", t.name()),
        None => format!("type {oid}"),
    }
}

pub(super) fn phase(p: Phase) -> &'static str {
    match p {
        Phase::Parse => "parse",
        Phase::Bind => "bind",
        Phase::Execute => "execute",
        Phase::Describe => "describe",
    }
}

/// A value as SQL would write it: `NULL`, `'text'`, `'\x..'` (binary).
pub(super) fn quoted(v: &Value) -> String {
    match v {
        Value::Text(t) if t.chars().count() > MAX_SHOWN => {
            literal(&t.chars().take(MAX_SHOWN).collect::<String>(), false, true)
        }
        other => whole(other),
    }
}

fn whole(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Text(t) => literal(t, false, false),
        Value::Raw { hex, format } => format!(
            "'\\x{hex}' (raw {})",
            match format {
                crate::fixture::Format::Text => "text",
                crate::fixture::Format::Binary => "binary",
            }
        ),
    }
}

/// Two values side by side; two long texts are shown from a little before
/// the first character where they differ, so the change is visible.
pub(super) fn pair(recorded: &Value, now: &Value) -> (String, String) {
    let (Value::Text(a), Value::Text(b)) = (recorded, now) else {
        return (quoted(recorded), quoted(now));
    };
    if a.chars().count() <= MAX_SHOWN && b.chars().count() <= MAX_SHOWN {
        return (quoted(recorded), quoted(now));
    }
    let first = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let start = first.saturating_sub(CONTEXT);
    let cut = |t: &str| {
        let len = t.chars().count();
        let window: String = t.chars().skip(start).take(MAX_SHOWN).collect();
        literal(&window, start > 0, start + MAX_SHOWN < len)
    };
    (cut(a), cut(b))
}

/// A row as a tuple of quoted values.
pub(super) fn row(values: &[Value]) -> String {
    let inner: Vec<String> = values.iter().map(quoted).collect();
    format!("({})", inner.join(", "))
}

/// `'text'` with quotes doubled and control characters escaped, `...`
/// marking text cut off before or after.
fn literal(text: &str, cut_before: bool, cut_after: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    if cut_before {
        out.push_str("...");
    }
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    if cut_after {
        out.push_str("...");
    }
    out.push('\'');
    out
}

/// SQL on one line (whitespace runs folded), cut after `max` characters.
pub(super) fn one_line(sql: &str, max: usize) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}...", flat.chars().take(max - 3).collect::<String>())
    } else {
        flat
    }
}
