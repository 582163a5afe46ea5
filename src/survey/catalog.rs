//! Catalog queries. Each kind of object is read with one query for a whole
//! database (or filtered to one schema or table), so a survey's query count
//! does not grow with the number of tables.

use std::collections::BTreeMap;

use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use super::limit::RateLimiter;
use super::model::*;
use crate::{Client, Error, Result};

/// Reads column `i`, turning a type mismatch into an error instead of a
/// panic: the catalog comes from outside the process.
pub(super) fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(Error::Postgres)
}

/// Which relations a catalog query covers: `$1` include system schemas,
/// `$2` schema or NULL, `$3` table or NULL.
const SCOPE: &str = "($1 or (n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema')) \
     and ($2::text is null or n.nspname = $2) and ($3::text is null or c.relname = $3)";

/// A filter over the catalog.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Scope<'a> {
    pub(super) include_system: bool,
    pub(super) schema: Option<&'a str>,
    pub(super) table: Option<&'a str>,
}

impl Scope<'_> {
    async fn query(&self, c: &Client, limiter: &RateLimiter, sql: &str) -> Result<Vec<Row>> {
        limiter.acquire().await;
        c.query(sql, &[&self.include_system, &self.schema, &self.table])
            .await
    }
}

/// (schema, table).
pub(super) type TableKey = (String, String);

pub(super) async fn server_info(c: &Client, limiter: &RateLimiter) -> Result<ServerInfo> {
    limiter.acquire().await;
    let row = c
        .query_one(
            "select version(), current_setting('server_version_num')::int4, current_user::text, \
             (select rolsuper from pg_roles where rolname = current_user), \
             host(inet_server_addr()), inet_server_port()",
            &[],
        )
        .await?;
    Ok(ServerInfo {
        version: col(&row, 0)?,
        version_num: col(&row, 1)?,
        user: col(&row, 2)?,
        superuser: col::<Option<bool>>(&row, 3)?.unwrap_or(false),
        host: col(&row, 4)?,
        port: col(&row, 5)?,
    })
}

pub(super) async fn list_databases(
    c: &Client,
    limiter: &RateLimiter,
    options: &ListOptions,
) -> Result<DatabaseList> {
    limiter.acquire().await;
    let rows = c
        .query(
            "select d.datname::text, pg_get_userbyid(d.datdba)::text, \
             pg_encoding_to_char(d.encoding)::text, d.datcollate::text, d.datctype::text, \
             case when has_database_privilege(d.oid, 'CONNECT') then pg_database_size(d.oid) end, \
             d.datistemplate, d.datallowconn, has_database_privilege(d.oid, 'CONNECT') \
             from pg_database d",
            &[],
        )
        .await?;
    let mut list = DatabaseList {
        databases: Vec::new(),
        excluded_system: 0,
        excluded_by_pattern: 0,
    };
    for row in &rows {
        let name: String = col(row, 0)?;
        let is_system = name == "template0" || name == "template1";
        if is_system && !options.include_system {
            list.excluded_system += 1;
            continue;
        }
        if options.exclude.iter().any(|g| g.matches(&name)) {
            list.excluded_by_pattern += 1;
            continue;
        }
        list.databases.push(DatabaseInfo {
            name,
            owner: col(row, 1)?,
            encoding: col(row, 2)?,
            collate: col(row, 3)?,
            ctype: col(row, 4)?,
            size_bytes: col(row, 5)?,
            is_template: col(row, 6)?,
            is_system,
            allow_connections: col(row, 7)?,
            can_connect: col(row, 8)?,
        });
    }
    list.databases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

pub(super) async fn schemas(
    c: &Client,
    limiter: &RateLimiter,
    include_system: bool,
) -> Result<Vec<String>> {
    limiter.acquire().await;
    let rows = c
        .query(
            "select n.nspname::text from pg_namespace n \
             where $1 or (n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema')",
            &[&include_system],
        )
        .await?;
    let mut names = rows
        .iter()
        .map(|r| col(r, 0))
        .collect::<Result<Vec<String>>>()?;
    names.sort();
    Ok(names)
}

pub(super) async fn tables(
    c: &Client,
    limiter: &RateLimiter,
    scope: Scope<'_>,
) -> Result<Vec<TableInfo>> {
    let sql = format!(
        "select n.nspname::text, c.relname::text, c.relkind::text, c.reltuples::float8 \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where c.relkind in ('r', 'p', 'v', 'm', 'f') and {SCOPE}"
    );
    let mut out = Vec::new();
    for row in scope.query(c, limiter, &sql).await? {
        let kind = match col::<String>(&row, 2)?.as_str() {
            "r" => TableKind::Table,
            "p" => TableKind::PartitionedTable,
            "v" => TableKind::View,
            "m" => TableKind::MaterializedView,
            _ => TableKind::ForeignTable,
        };
        let reltuples: f64 = col(&row, 3)?;
        // -1: never vacuumed or analyzed (PostgreSQL 14+). Views have none.
        let row_estimate = match kind {
            TableKind::View | TableKind::ForeignTable => None,
            _ if reltuples < 0.0 => None,
            _ => Some(reltuples.round() as i64),
        };
        out.push(TableInfo {
            schema: col(&row, 0)?,
            name: col(&row, 1)?,
            kind,
            row_estimate,
        });
    }
    out.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok(out)
}

pub(super) async fn columns(
    c: &Client,
    limiter: &RateLimiter,
    scope: Scope<'_>,
) -> Result<BTreeMap<TableKey, Vec<ColumnInfo>>> {
    let sql = format!(
        "select n.nspname::text, c.relname::text, a.attname::text, \
         format_type(a.atttypid, a.atttypmod), coalesce(bt.typname, t.typname)::text, \
         not a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, \
         a.attgenerated::text, a.attnum::int4 \
         from pg_attribute a join pg_class c on c.oid = a.attrelid \
         join pg_namespace n on n.oid = c.relnamespace \
         join pg_type t on t.oid = a.atttypid \
         left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype \
         left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum \
         where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p', 'v', 'm', 'f') \
         and {SCOPE}"
    );
    let mut out: BTreeMap<TableKey, Vec<(i32, ColumnInfo)>> = BTreeMap::new();
    for row in scope.query(c, limiter, &sql).await? {
        let identity = match col::<String>(&row, 7)?.as_str() {
            "a" => Some("always".to_owned()),
            "d" => Some("by default".to_owned()),
            _ => None,
        };
        let generated = (col::<String>(&row, 8)? == "s").then(|| "stored".to_owned());
        let key = (col(&row, 0)?, col(&row, 1)?);
        let column = ColumnInfo {
            name: col(&row, 2)?,
            data_type: col(&row, 3)?,
            type_name: col(&row, 4)?,
            nullable: col(&row, 5)?,
            default: col(&row, 6)?,
            identity,
            generated,
        };
        out.entry(key).or_default().push((col(&row, 9)?, column));
    }
    Ok(out
        .into_iter()
        .map(|(k, mut cols)| {
            cols.sort_by_key(|(n, _)| *n);
            (k, cols.into_iter().map(|(_, c)| c).collect())
        })
        .collect())
}

pub(super) async fn indexes(
    c: &Client,
    limiter: &RateLimiter,
    scope: Scope<'_>,
) -> Result<BTreeMap<TableKey, Vec<IndexInfo>>> {
    let sql = format!(
        "select n.nspname::text, c.relname::text, i.relname::text, x.indisunique, x.indisprimary, \
         array(select coalesce(a.attname::text, pg_get_indexdef(x.indexrelid, k.ord::int4, true)) \
               from unnest(x.indkey::int2[]) with ordinality k(attnum, ord) \
               left join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k.attnum \
               where k.ord <= x.indnkeyatts order by k.ord) \
         from pg_index x join pg_class i on i.oid = x.indexrelid \
         join pg_class c on c.oid = x.indrelid join pg_namespace n on n.oid = c.relnamespace \
         where {SCOPE}"
    );
    let mut out: BTreeMap<TableKey, Vec<IndexInfo>> = BTreeMap::new();
    for row in scope.query(c, limiter, &sql).await? {
        out.entry((col(&row, 0)?, col(&row, 1)?))
            .or_default()
            .push(IndexInfo {
                name: col(&row, 2)?,
                unique: col(&row, 3)?,
                primary: col(&row, 4)?,
                columns: col(&row, 5)?,
            });
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(out)
}

fn action(code: &str) -> String {
    match code {
        "r" => "restrict",
        "c" => "cascade",
        "n" => "set null",
        "d" => "set default",
        _ => "no action",
    }
    .to_owned()
}

pub(super) async fn foreign_keys(
    c: &Client,
    limiter: &RateLimiter,
    scope: Scope<'_>,
) -> Result<BTreeMap<TableKey, Vec<ForeignKey>>> {
    let names = |keys: &str, rel: &str| {
        format!(
            "array(select a.attname::text from unnest(k.{keys}) with ordinality u(attnum, ord) \
             join pg_attribute a on a.attrelid = k.{rel} and a.attnum = u.attnum order by u.ord)"
        )
    };
    let sql = format!(
        "select n.nspname::text, c.relname::text, k.conname::text, {}, rn.nspname::text, \
         rc.relname::text, {}, k.confupdtype::text, k.confdeltype::text \
         from pg_constraint k join pg_class c on c.oid = k.conrelid \
         join pg_namespace n on n.oid = c.relnamespace \
         join pg_class rc on rc.oid = k.confrelid join pg_namespace rn on rn.oid = rc.relnamespace \
         where k.contype = 'f' and {SCOPE}",
        names("conkey", "conrelid"),
        names("confkey", "confrelid"),
    );
    let mut out: BTreeMap<TableKey, Vec<ForeignKey>> = BTreeMap::new();
    for row in scope.query(c, limiter, &sql).await? {
        out.entry((col(&row, 0)?, col(&row, 1)?))
            .or_default()
            .push(ForeignKey {
                name: col(&row, 2)?,
                columns: col(&row, 3)?,
                referenced_schema: col(&row, 4)?,
                referenced_table: col(&row, 5)?,
                referenced_columns: col(&row, 6)?,
                on_update: action(&col::<String>(&row, 7)?),
                on_delete: action(&col::<String>(&row, 8)?),
            });
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(out)
}
