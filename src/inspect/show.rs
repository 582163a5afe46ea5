//! `pgsim inspect --show`: one exchange in full, as a reviewer reads it.

use std::fmt::Write as _;

use pgsim::fixture::{
    AsyncMessage, CopyShape, ErrorFields, Exchange, Format, LoadedSession, Phase, QueryResult,
    Value, ERROR_FIELDS,
};

/// Widest table drawn; wider rows are printed one line per row.
const MAX_TABLE_WIDTH: usize = 160;

/// The header of a session whose exchanges follow.
pub(crate) fn session(s: &LoadedSession) -> String {
    let mut out = format!(
        "== {}: database {:?}, user {:?}",
        s.path.display(),
        s.session.database,
        s.session.user,
    );
    match s.session.server.version.as_str() {
        "" => out.push('\n'),
        version => {
            let _ = writeln!(out, ", server {version}");
        }
    }
    if let Some(e) = &s.session.startup_error {
        out.push_str("startup refused:\n");
        error_lines(&mut out, e, "  ");
    }
    if s.session.exchanges.is_empty() {
        out.push_str("(no exchanges)\n");
    }
    out
}

/// Everything recorded for one exchange.
pub(crate) fn exchange(ex: &Exchange) -> String {
    let mut out = format!("\n-- seq {}, phase {}", ex.seq, phase(ex.phase));
    if let Some(scope) = &ex.scope {
        out.push_str(&format!(", scope {scope:?}"));
    }
    out.push('\n');
    if ex.sql.contains('\n') {
        out.push_str("sql:\n");
        for line in ex.sql.lines() {
            let _ = writeln!(out, "  {line}");
        }
    } else {
        let _ = writeln!(out, "sql: {}", ex.sql);
    }
    match &ex.params {
        None if ex.phase == Phase::Execute => {
            out.push_str("params: none (simple query protocol)\n")
        }
        None => out.push_str("params: none (never bound)\n"),
        Some(p) if p.is_empty() => out.push_str("params: none\n"),
        Some(params) => {
            out.push_str("params:\n");
            for (i, p) in params.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  ${} {} = {}",
                    i + 1,
                    type_name(p.type_oid),
                    quoted(&p.value)
                );
            }
        }
    }
    if let Some(types) = ex.param_types.as_ref().filter(|t| !t.is_empty()) {
        let names: Vec<String> = types.iter().map(|t| type_name(*t)).collect();
        let _ = writeln!(out, "parameter types described: {}", names.join(", "));
    }
    for m in &ex.before {
        let _ = writeln!(out, "before: {}", async_message(m));
    }
    if let Some(copy) = &ex.copy_in {
        out.push_str("copy data sent by the client:\n");
        data_lines(&mut out, &copy.data, "  ");
        if let Some(reason) = &copy.failed {
            let _ = writeln!(out, "  then CopyFail: {reason}");
        }
    }
    let many = ex.results.len() > 1;
    for (i, r) in ex.results.iter().enumerate() {
        let label = if many {
            format!("result {} of {}", i + 1, ex.results.len())
        } else {
            "result".to_owned()
        };
        result(&mut out, &label, r);
    }
    out
}

fn result(out: &mut String, label: &str, r: &QueryResult) {
    let outcome = match (&r.tag, &r.error) {
        (_, Some(e)) => format!("ERROR {}", e.code()),
        (Some(tag), None) => tag.clone(),
        (None, None) if r.empty => "empty query".into(),
        (None, None) => format!(
            "suspended after {} rows (portal not completed)",
            r.rows.len()
        ),
    };
    let _ = writeln!(out, "{label}: {outcome}");
    for n in &r.notices {
        out.push_str("  notice:\n");
        error_lines(out, n, "    ");
    }
    if let Some(shape) = &r.copy_in {
        let _ = writeln!(out, "  COPY FROM STDIN: {}", copy_shape(shape));
    }
    match (&r.columns, r.columns_unknown) {
        (Some(columns), _) => {
            let names: Vec<String> = columns
                .iter()
                .map(|c| format!("{} {}", c.name, type_name(c.type_oid)))
                .collect();
            let _ = writeln!(out, "  columns: {}", names.join(", "));
            let header: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            rows(out, &header, &r.rows);
        }
        (None, true) => {
            out.push_str("  columns: unknown (the client never asked for the row description)\n");
            let width = r.rows.first().map_or(0, Vec::len);
            let header: Vec<String> = (1..=width).map(|i| format!("column {i}")).collect();
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            rows(out, &header, &r.rows);
        }
        (None, false) => out.push_str("  no rows (no row description)\n"),
    }
    if let Some(copy) = &r.copy_out {
        let _ = writeln!(
            out,
            "  COPY TO STDOUT: {}, {} messages:",
            copy_shape(&copy.shape),
            copy.data.len()
        );
        for d in &copy.data {
            data_lines(out, d, "    ");
        }
    }
    if let Some(e) = &r.error {
        out.push_str("  error:\n");
        error_lines(out, e, "    ");
    }
    for m in &r.after {
        let _ = writeln!(out, "  after: {}", async_message(m));
    }
}

/// All rows: an aligned table when it fits, else one line per row.
fn rows(out: &mut String, header: &[&str], rows: &[Vec<Value>]) {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let total = widths.iter().sum::<usize>() + 3 * widths.len();
    if total <= MAX_TABLE_WIDTH {
        let line = |values: &[String]| {
            let padded: Vec<String> = values
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            format!("   {}", padded.join(" | ")).trim_end().to_owned()
        };
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        let _ = writeln!(out, "{}", line(&header));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "  -{}-", rule.join("-+-"));
        for row in &cells {
            let _ = writeln!(out, "{}", line(row));
        }
    } else {
        for (i, row) in rows.iter().enumerate() {
            let values: Vec<String> = header
                .iter()
                .zip(row)
                .map(|(h, v)| format!("{h} = {}", quoted(v)))
                .collect();
            let _ = writeln!(out, "   row {}: {}", i + 1, values.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "  ({} row{})",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
}

/// A value in a table cell: as psql prints it, NULL as `NULL`.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Text(t) => escape(t),
        Value::Raw { hex, format } => format!("\\x{hex} (raw {})", format_name(*format)),
    }
}

/// A value where text and NULL must not be confused: `'text'` or `NULL`.
fn quoted(v: &Value) -> String {
    match v {
        Value::Text(t) => format!("'{}'", escape(&t.replace('\'', "''"))),
        other => cell(other),
    }
}

/// Control characters escaped so each row stays on one line.
fn escape(t: &str) -> String {
    if !t.chars().any(char::is_control) {
        return t.to_owned();
    }
    t.chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// COPY data: text line by line (tabs shown as `\t`), else its hex.
fn data_lines(out: &mut String, v: &Value, indent: &str) {
    match v {
        Value::Text(t) => {
            for line in t.split_inclusive('\n') {
                let _ = writeln!(out, "{indent}{}", escape(line));
            }
        }
        other => {
            let _ = writeln!(out, "{indent}{}", cell(other));
        }
    }
}

/// Severity, SQLSTATE and message, then every other field by name.
fn error_lines(out: &mut String, e: &ErrorFields, indent: &str) {
    let _ = writeln!(
        out,
        "{indent}{} {}: {}",
        e.get("severity").unwrap_or("ERROR"),
        e.code(),
        e.message()
    );
    let header = ["severity", "severity_nonlocalized", "code", "message"];
    let known: Vec<&str> = ERROR_FIELDS.iter().map(|(_, name)| *name).collect();
    let rest = known.iter().copied().filter(|n| !header.contains(n)).chain(
        e.0.keys()
            .map(String::as_str)
            .filter(|k| !known.contains(k)),
    );
    for name in rest {
        if let Some(value) = e.get(name) {
            let _ = writeln!(out, "{indent}  {name}: {}", escape(value));
        }
    }
}

fn async_message(m: &AsyncMessage) -> String {
    match m {
        AsyncMessage::Notice { fields } => {
            format!("notice {} {}", fields.code(), fields.message())
        }
        AsyncMessage::ParameterStatus { name, value } => {
            format!("parameter status {name} = {value:?}")
        }
        AsyncMessage::Notification {
            pid,
            channel,
            payload,
        } => format!("notification on {channel:?} from pid {pid}: {payload:?}"),
    }
}

fn copy_shape(shape: &CopyShape) -> String {
    format!(
        "{} format, {} columns",
        format_name(shape.format),
        shape.columns.len()
    )
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Text => "text",
        Format::Binary => "binary",
    }
}

fn phase(p: Phase) -> &'static str {
    match p {
        Phase::Parse => "parse (the error answered Parse)",
        Phase::Bind => "bind (the error answered Bind)",
        Phase::Execute => "execute",
        Phase::Describe => "describe (prepared and described only, never executed)",
    }
}

/// A type OID with its built-in name when it has one.
fn type_name(oid: u32) -> String {
    match pgsim::tokio_postgres::types::Type::from_oid(oid) {
        Some(t) => format!("{} ({oid})", t.name()),
        None if oid == 0 => "unspecified (0)".into(),
        None => format!("type {oid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgsim::fixture::{Column, CopyIn, CopyOut, Param};

    fn fields(code: &str, message: &str) -> ErrorFields {
        let mut f = ErrorFields::error(code, message.into(), Some("the detail".into()));
        f.0.insert("hint".into(), "the hint".into());
        f
    }

    #[test]
    fn shows_copy_data_notices_errors_and_asynchronous_messages() {
        let text = |s: &str| Value::Text(s.into());
        let shape = CopyShape {
            format: Format::Text,
            columns: vec![Format::Text, Format::Text],
        };
        let ex = Exchange {
            seq: 42,
            key: "k".into(),
            sql: "copy t from stdin;\ncopy t to stdout".into(),
            params: Some(vec![Param {
                type_oid: 0,
                value: Value::Null,
            }]),
            param_types: None,
            phase: Phase::Execute,
            scope: Some("t1".into()),
            before: vec![AsyncMessage::Notification {
                pid: 7,
                channel: "jobs".into(),
                payload: "go".into(),
            }],
            copy_in: Some(CopyIn {
                data: text("1\tone\n2\ttwo\n"),
                failed: None,
            }),
            results: vec![
                QueryResult {
                    copy_in: Some(shape.clone()),
                    tag: Some("COPY 2".into()),
                    notices: vec![fields("01000", "careful")],
                    ..Default::default()
                },
                QueryResult {
                    copy_out: Some(CopyOut {
                        shape,
                        data: vec![text("1\tone\n")],
                    }),
                    columns_unknown: false,
                    columns: Some(vec![Column {
                        name: "x".into(),
                        type_oid: 23,
                        typmod: -1,
                        type_size: 4,
                        table_oid: 0,
                        column_id: 0,
                    }]),
                    error: Some(fields("57014", "canceling statement")),
                    after: vec![AsyncMessage::ParameterStatus {
                        name: "TimeZone".into(),
                        value: "UTC".into(),
                    }],
                    ..Default::default()
                },
            ],
        };
        let shown = exchange(&ex);
        for want in [
            "-- seq 42, phase execute, scope \"t1\"\n",
            "sql:\n  copy t from stdin;\n  copy t to stdout\n",
            "  $1 unspecified (0) = NULL",
            "before: notification on \"jobs\" from pid 7: \"go\"",
            "copy data sent by the client:\n  1\\tone\\n\n  2\\ttwo\\n\n",
            "result 1 of 2: COPY 2",
            "  COPY FROM STDIN: text format, 2 columns",
            "    ERROR 01000: careful\n      detail: the detail\n      hint: the hint\n",
            "result 2 of 2: ERROR 57014",
            "  COPY TO STDOUT: text format, 2 columns, 1 messages:\n    1\\tone\\n\n",
            "    ERROR 57014: canceling statement\n      detail: the detail\n      hint: the hint\n",
            "  after: parameter status TimeZone = \"UTC\"",
        ] {
            assert!(shown.contains(want), "missing {want:?} in\n{shown}");
        }
    }

    #[test]
    fn wide_rows_are_printed_one_line_each_and_text_is_told_from_null() {
        let mut out = String::new();
        let long = "y".repeat(200);
        rows(
            &mut out,
            &["id", "doc"],
            &[
                vec![Value::Text("1".into()), Value::Text(long.clone())],
                vec![Value::Text("NULL".into()), Value::Null],
            ],
        );
        assert!(
            out.contains(&format!("   row 1: id = '1', doc = '{long}'\n")),
            "{out}"
        );
        assert!(out.contains("   row 2: id = 'NULL', doc = NULL\n"), "{out}");
        assert!(out.ends_with("  (2 rows)\n"), "{out}");
    }
}
