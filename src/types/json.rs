//! `json` and `jsonb`. `json` keeps its text verbatim (binary = the text);
//! `jsonb` binary is a version byte `1` followed by the canonical text,
//! which is normalised the way `jsonb_out` prints it.

use super::json_parse::{Node, Parser};
use super::{bad_bin, bad_text, oid::JSONB, CodecError};

/// jsonb member order: by key length, then bytes; the last duplicate wins.
pub(crate) fn sort_members(members: &mut Vec<(String, usize)>) {
    // Stable sort keeps input order among equal keys; keep the last one.
    members.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
    let mut kept: Vec<(String, usize)> = Vec::with_capacity(members.len());
    for m in members.drain(..) {
        match kept.last_mut() {
            Some(last) if last.0 == m.0 => *last = m,
            _ => kept.push(m),
        }
    }
    *members = kept;
}

/// Prints the tree like `jsonb_out` (`", "` and `": "` separators).
fn render(nodes: &[Node], root: usize) -> String {
    enum Task<'a> {
        Node(usize),
        Lit(&'a str),
        Key(&'a str),
    }
    let mut out = String::new();
    let mut tasks = vec![Task::Node(root)];
    while let Some(t) = tasks.pop() {
        match t {
            Task::Lit(s) => out.push_str(s),
            Task::Key(k) => {
                out.push_str(&escape(k));
                out.push_str(": ");
            }
            Task::Node(i) => match &nodes[i] {
                Node::Scalar(s) => out.push_str(s),
                Node::Arr(items) => {
                    out.push('[');
                    tasks.push(Task::Lit("]"));
                    for (n, c) in items.iter().enumerate().rev() {
                        tasks.push(Task::Node(*c));
                        if n > 0 {
                            tasks.push(Task::Lit(", "));
                        }
                    }
                }
                Node::Obj(members) => {
                    out.push('{');
                    tasks.push(Task::Lit("}"));
                    for (n, (k, c)) in members.iter().enumerate().rev() {
                        tasks.push(Task::Node(*c));
                        tasks.push(Task::Key(k));
                        if n > 0 {
                            tasks.push(Task::Lit(", "));
                        }
                    }
                }
            },
        }
    }
    out
}

/// PG `escape_json`.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Validates `text` as JSON; for `jsonb` returns the canonical text.
fn canonical(oid: u32, text: &str) -> Result<String, String> {
    let jsonb = oid == JSONB;
    let mut p = Parser::new(text, jsonb);
    let mut nodes = Vec::new();
    let root = p.document(&mut nodes)?;
    Ok(if jsonb {
        render(&nodes, root)
    } else {
        text.to_string()
    })
}

/// Text -> binary (`json`: the text; `jsonb`: `0x01` + canonical text).
pub(crate) fn text_to_binary(oid: u32, text: &str) -> Result<Vec<u8>, CodecError> {
    let c = canonical(oid, text).map_err(|e| bad_text(oid, e))?;
    let mut out = Vec::with_capacity(c.len() + 1);
    if oid == JSONB {
        out.push(1);
    }
    out.extend_from_slice(c.as_bytes());
    Ok(out)
}

/// Binary -> text (validated; `jsonb` checks the version byte).
pub(crate) fn binary_to_text(oid: u32, bin: &[u8]) -> Result<String, CodecError> {
    let body = if oid == JSONB {
        match bin.split_first() {
            Some((1, rest)) => rest,
            Some((v, _)) => {
                return Err(bad_bin(
                    oid,
                    format!("unsupported jsonb version number {v}"),
                ))
            }
            None => return Err(bad_bin(oid, "missing jsonb version byte")),
        }
    } else {
        bin
    };
    let text =
        std::str::from_utf8(body).map_err(|e| bad_bin(oid, format!("invalid UTF-8: {e}")))?;
    if text.contains('\0') {
        return Err(bad_bin(
            oid,
            "invalid byte sequence for encoding UTF8: 0x00",
        ));
    }
    canonical(oid, text).map_err(|e| bad_bin(oid, e))
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
