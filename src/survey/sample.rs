//! Ordering strategies and row samples.

use serde_json::{Number, Value};

use super::catalog::col;
use super::limit::RateLimiter;
use super::model::*;
use crate::validate::{quote_identifier, quote_qualified};
use crate::{Client, Result};

/// Timestamp column names that mark creation or update, best first.
pub const TIMESTAMP_NAMES: [&str; 7] = [
    "created_at",
    "inserted_at",
    "date_created",
    "created",
    "updated_at",
    "modified_at",
    "timestamp",
];

/// Picks how to find a table's most recent rows: its primary key (all
/// columns, key order); else a `timestamp`/`timestamptz` column by
/// [`TIMESTAMP_NAMES`] priority; else a serial (`nextval(...)` default) or
/// identity column; else random, by `seed`.
pub fn detect_ordering(
    columns: &[ColumnInfo],
    indexes: &[IndexInfo],
    seed: u64,
) -> OrderingStrategy {
    if let Some(pk) = indexes.iter().find(|i| i.primary) {
        if !pk.columns.is_empty() {
            return OrderingStrategy::PrimaryKey {
                columns: pk.columns.clone(),
            };
        }
    }
    let is_timestamp =
        |c: &&ColumnInfo| matches!(c.type_name.as_str(), "timestamp" | "timestamptz");
    for name in TIMESTAMP_NAMES {
        if let Some(c) = columns.iter().filter(is_timestamp).find(|c| c.name == name) {
            return OrderingStrategy::Timestamp {
                column: c.name.clone(),
            };
        }
    }
    let serial = columns.iter().find(|c| {
        c.identity.is_some()
            || c.default
                .as_deref()
                .is_some_and(|d| d.starts_with("nextval("))
    });
    match serial {
        Some(c) => OrderingStrategy::Serial {
            column: c.name.clone(),
        },
        None => OrderingStrategy::Random { seed },
    }
}

/// The ORDER BY clause for a strategy, most recent first, identifiers
/// quoted (so `Order "Lines"` works). The random order is an MD5 of the
/// row's text (`t` is the sampled table) and the seed, compared bytewise:
/// the same on every server with the same data, and the same SQL text every
/// time, so a replay finds the recorded sample.
pub fn order_by(strategy: &OrderingStrategy) -> String {
    order_by_in(strategy, "")
}

/// [`order_by`] with each column qualified by `prefix` (`t.`), so it means
/// the table's column even where an output column has the same name.
fn order_by_in(strategy: &OrderingStrategy, prefix: &str) -> String {
    match strategy {
        OrderingStrategy::PrimaryKey { columns } => columns
            .iter()
            .map(|c| format!("{prefix}{} DESC", quote_identifier(c)))
            .collect::<Vec<_>>()
            .join(", "),
        OrderingStrategy::Timestamp { column } => {
            format!("{prefix}{} DESC NULLS LAST", quote_identifier(column))
        }
        OrderingStrategy::Serial { column } => {
            format!("{prefix}{} DESC", quote_identifier(column))
        }
        OrderingStrategy::Random { seed } => {
            format!("md5((t.*)::text || '{seed}') COLLATE \"C\"")
        }
    }
}

/// The sample query: every column as PostgreSQL's text output (converted
/// to JSON by type afterwards), most recent first.
pub fn sample_sql(
    schema: &str,
    table: &str,
    columns: &[ColumnInfo],
    strategy: &OrderingStrategy,
    rows: usize,
) -> String {
    let list = if columns.is_empty() {
        "1".to_owned()
    } else {
        columns
            .iter()
            .map(|c| format!("t.{}::text", quote_identifier(&c.name)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "select {list} from {} t order by {} limit {rows}",
        quote_qualified(schema, table),
        order_by_in(strategy, "t.")
    )
}

pub(super) async fn sample(
    c: &Client,
    limiter: &RateLimiter,
    table: &TableInfo,
    columns: &[ColumnInfo],
    indexes: &[IndexInfo],
    config: &SamplingConfig,
) -> Result<Sample> {
    let ordering = detect_ordering(columns, indexes, config.seed);
    let mut warnings = Vec::new();
    if let OrderingStrategy::Random { seed } = ordering {
        warnings.push(format!(
            "no primary key, timestamp or serial column: rows sampled in random order (seed {seed})"
        ));
    }
    if table.row_estimate.is_none()
        && matches!(
            table.kind,
            TableKind::Table | TableKind::PartitionedTable | TableKind::MaterializedView
        )
    {
        warnings.push("row estimate unknown: the table has never been analyzed".to_owned());
    }
    let mut rows = Vec::new();
    if config.rows > 0 {
        let sql = sample_sql(&table.schema, &table.name, columns, &ordering, config.rows);
        limiter.acquire().await;
        for row in c.query(&sql, &[]).await? {
            let mut values = Vec::with_capacity(columns.len());
            for (i, column) in columns.iter().enumerate() {
                let text: Option<String> = col(&row, i)?;
                values.push((column.name.clone(), to_json(&column.type_name, text)));
            }
            rows.push(SampleRow(values));
        }
        if rows.is_empty() {
            warnings.push("table is empty".to_owned());
        }
    }
    Ok(Sample {
        order_by: order_by(&ordering),
        ordering,
        row_estimate: table.row_estimate,
        rows,
        warnings,
    })
}

/// Numbers JSON carries exactly (JavaScript's safe integers).
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A value in PostgreSQL's text output as JSON that keeps its meaning:
/// booleans and numbers as such, `int8` beyond 2^53 and `numeric` as
/// strings, `json`/`jsonb` as JSON, `bytea` as `\x` hex, timestamps in ISO
/// 8601 (with `T`, and `Z` for UTC), everything else as its text.
pub fn to_json(type_name: &str, text: Option<String>) -> Value {
    let Some(text) = text else {
        return Value::Null;
    };
    match type_name {
        "bool" => match text.as_str() {
            "t" => Value::Bool(true),
            "f" => Value::Bool(false),
            _ => Value::String(text),
        },
        "int2" | "int4" | "oid" | "int8" => match text.parse::<i64>() {
            Ok(n) if n.abs() <= MAX_SAFE_INTEGER => Value::Number(n.into()),
            _ => Value::String(text),
        },
        "float4" | "float8" => match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(text),
        },
        "json" | "jsonb" => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        "timestamp" | "timestamptz" => Value::String(iso8601(&text)),
        _ => Value::String(text),
    }
}

/// PostgreSQL's ISO timestamp output (`2024-01-02 03:04:05.6+00`) in ISO
/// 8601 (`2024-01-02T03:04:05.6Z`); `infinity` and BC dates stay as they are.
pub fn iso8601(text: &str) -> String {
    let bytes = text.as_bytes();
    if bytes.len() < 19 || bytes[10] != b' ' || text.ends_with(" BC") {
        return text.to_owned();
    }
    let mut out = format!("{}T{}", &text[..10], &text[11..]);
    if let Some(pos) = out[19..].find(['+', '-']).map(|p| p + 19) {
        let offset = &out[pos..];
        let normalized = match offset.len() {
            3 if &offset[1..] == "00" => "Z".to_owned(),
            3 => format!("{offset}:00"),
            _ => offset.to_owned(),
        };
        out.truncate(pos);
        out.push_str(&normalized);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, type_name: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            data_type: type_name.into(),
            type_name: type_name.into(),
            nullable: true,
            default: None,
            identity: None,
            generated: None,
        }
    }

    #[test]
    fn ordering_follows_the_documented_priority() {
        let pk = IndexInfo {
            name: "t_pkey".into(),
            columns: vec!["b".into(), "a".into()],
            unique: true,
            primary: true,
        };
        let mut cols = vec![
            column("a", "int4"),
            column("b", "int4"),
            column("updated_at", "timestamptz"),
            column("created", "timestamp"),
        ];
        assert_eq!(
            detect_ordering(&cols, &[pk], 0),
            OrderingStrategy::PrimaryKey {
                columns: vec!["b".into(), "a".into()]
            }
        );
        assert_eq!(
            detect_ordering(&cols, &[], 0),
            OrderingStrategy::Timestamp {
                column: "created".into()
            }
        );
        cols[3].type_name = "text".into();
        assert_eq!(
            detect_ordering(&cols, &[], 0),
            OrderingStrategy::Timestamp {
                column: "updated_at".into()
            }
        );
        let mut serial = vec![column("note", "text"), column("seq", "int4")];
        serial[1].default = Some("nextval('t_seq_seq'::regclass)".into());
        assert_eq!(
            detect_ordering(&serial, &[], 0),
            OrderingStrategy::Serial {
                column: "seq".into()
            }
        );
        serial[1].default = None;
        serial[0].identity = Some("always".into());
        assert_eq!(
            detect_ordering(&serial, &[], 0),
            OrderingStrategy::Serial {
                column: "note".into()
            }
        );
        serial[0].identity = None;
        assert_eq!(
            detect_ordering(&serial, &[], 7),
            OrderingStrategy::Random { seed: 7 }
        );
    }

    #[test]
    fn the_random_order_is_a_seeded_hash_with_the_same_text_every_time() {
        let cols = [column("data", "bytea")];
        let sql = |seed| {
            sample_sql(
                "public",
                "blobs",
                &cols,
                &OrderingStrategy::Random { seed },
                3,
            )
        };
        assert_eq!(
            sql(42),
            "select t.\"data\"::text from public.blobs t order by md5((t.*)::text || '42') COLLATE \"C\" limit 3"
        );
        assert_eq!(sql(42), sql(42));
        assert_ne!(sql(42), sql(43));
    }

    #[test]
    fn order_by_quotes_awkward_names() {
        let s = OrderingStrategy::PrimaryKey {
            columns: vec!["Line \"Id\"".into(), "n".into()],
        };
        assert_eq!(order_by(&s), "\"Line \"\"Id\"\"\" DESC, \"n\" DESC");
        let sql = sample_sql(
            "Sales EU",
            "Order \"Lines\"",
            &[column("Note", "text")],
            &s,
            5,
        );
        assert_eq!(
            sql,
            "select t.\"Note\"::text from \"Sales EU\".\"Order \"\"Lines\"\"\" t order by t.\"Line \"\"Id\"\"\" DESC, t.\"n\" DESC limit 5"
        );
    }

    #[test]
    fn values_keep_their_meaning_in_json() {
        let j = |t: &str, v: &str| to_json(t, Some(v.to_owned()));
        assert_eq!(
            j("int8", "9007199254740991"),
            serde_json::json!(9007199254740991i64)
        );
        assert_eq!(
            j("int8", "9007199254740993"),
            serde_json::json!("9007199254740993")
        );
        assert_eq!(j("numeric", "12.30"), serde_json::json!("12.30"));
        assert_eq!(j("float8", "NaN"), serde_json::json!("NaN"));
        assert_eq!(j("float8", "1.5"), serde_json::json!(1.5));
        assert_eq!(j("bool", "t"), serde_json::json!(true));
        assert_eq!(j("jsonb", "{\"a\": [1]}"), serde_json::json!({"a": [1]}));
        assert_eq!(j("bytea", "\\x00ff"), serde_json::json!("\\x00ff"));
        assert_eq!(
            j("timestamptz", "2024-01-02 03:04:05.5+00"),
            serde_json::json!("2024-01-02T03:04:05.5Z")
        );
        assert_eq!(
            j("timestamptz", "2024-01-02 03:04:05+05:30"),
            serde_json::json!("2024-01-02T03:04:05+05:30")
        );
        assert_eq!(
            j("timestamptz", "2024-01-02 03:04:05-08"),
            serde_json::json!("2024-01-02T03:04:05-08:00")
        );
        assert_eq!(
            j("timestamp", "2024-01-02 03:04:05"),
            serde_json::json!("2024-01-02T03:04:05")
        );
        assert_eq!(j("timestamp", "infinity"), serde_json::json!("infinity"));
        assert_eq!(to_json("text", None), serde_json::Value::Null);
    }
}
