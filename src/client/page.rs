//! Pagination over an ordered query.
//!
//! - **Keyset** ([`Client::page`]): each page asks for the rows after the
//!   last key the previous page ended on (`WHERE key > $n ORDER BY key
//!   LIMIT size + 1`), so a page costs the same wherever it is and rows
//!   inserted meanwhile never shift a page. The key is one column of the
//!   query, unique and ordered (an integer or text); where to go on is a
//!   typed [`PageToken`] that prints and parses as a short string, for a
//!   client to hand back.
//! - **Limit/offset** ([`Client::page_offset`]): page `N` of a query that
//!   orders its own rows; simple, but each page reads all the rows before it.
//!
//! Both wrap the caller's query as a subquery and add their own parameters
//! after the caller's, so they run the same Live, recorded and replayed.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::types::Type;
use tokio_postgres::Row;

use super::query::check_param_count;
use super::Params;
use crate::validate::{placeholder_count, quote_identifier, validate_identifier};
use crate::{Client, Error, Result};

/// The largest page [`Keyset::size`] and [`Client::page_offset`] accept.
pub const MAX_PAGE_SIZE: u32 = 10_000;

/// A keyset-paginated query: its SQL (without `ORDER BY` or `LIMIT`: the
/// pages add them), the key column and the page size.
#[derive(Debug, Clone)]
pub struct Keyset<'q> {
    sql: &'q str,
    key: String,
    size: u32,
    descending: bool,
}

impl<'q> Keyset<'q> {
    /// Pages of `sql` by its column `key` (an identifier, validated), 100
    /// rows a page, ascending.
    pub fn new(sql: &'q str, key: &str) -> Result<Self> {
        validate_identifier(key).map_err(|e| Error::Setting {
            setting: "Keyset key".into(),
            value: key.into(),
            reason: e.to_string(),
        })?;
        Ok(Keyset {
            sql,
            key: key.to_owned(),
            size: 100,
            descending: false,
        })
    }

    /// Rows a page: 1 to [`MAX_PAGE_SIZE`].
    pub fn size(mut self, rows: u32) -> Result<Self> {
        self.size = page_size("Keyset::size", rows)?;
        Ok(self)
    }

    /// Pages in descending key order.
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }
}

fn page_size(setting: &str, rows: u32) -> Result<u32> {
    if (1..=MAX_PAGE_SIZE).contains(&rows) {
        Ok(rows)
    } else {
        Err(Error::Setting {
            setting: setting.into(),
            value: rows.to_string(),
            reason: format!("a page holds 1 to {MAX_PAGE_SIZE} rows"),
        })
    }
}

/// The key a page ended on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageKey {
    /// An `int2`, `int4` or `int8` key.
    Int(i64),
    /// A `text`, `varchar`, `bpchar` or `name` key.
    Text(String),
}

/// Where the next page starts: the key the last one ended on. Prints as
/// `i.42` or `t.` and the text's UTF-8 in hex, and parses back from that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    after: PageKey,
}

impl PageToken {
    /// The key the page ended on.
    pub fn after(&self) -> &PageKey {
        &self.after
    }
}

impl fmt::Display for PageToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.after {
            PageKey::Int(n) => write!(f, "i.{n}"),
            PageKey::Text(t) => write!(f, "t.{}", hex::encode(t)),
        }
    }
}

impl FromStr for PageToken {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Setting {
            setting: "page token".into(),
            value: s.chars().take(80).collect(),
            reason: why.into(),
        };
        let after = match s.split_once('.') {
            Some(("i", n)) => PageKey::Int(n.parse().map_err(|_| bad("not an integer key"))?),
            Some(("t", h)) => {
                let bytes = hex::decode(h).map_err(|_| bad("not a hex text key"))?;
                PageKey::Text(String::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?)
            }
            _ => return Err(bad("a token is i.<integer> or t.<hex>")),
        };
        Ok(PageToken { after })
    }
}

/// One page: its rows and, when more follow, where the next starts.
#[derive(Debug)]
pub struct Page {
    /// The page's rows, in key order.
    pub rows: Vec<Row>,
    /// `None` on the last page.
    pub next: Option<PageToken>,
}

/// The caller's parameters checked against its SQL: the number of the
/// first placeholder the page may add.
fn first_free(sql: &str, params: Params<'_>) -> Result<usize> {
    check_param_count(sql, params.len())?;
    Ok(placeholder_count(sql) + 1)
}

fn key_of(row: &Row, key: &str) -> Result<PageKey> {
    let column = row
        .columns()
        .iter()
        .position(|c| c.name() == key)
        .ok_or_else(|| Error::Config(format!("the paged query returns no column {key:?}")))?;
    let ty = row.columns()[column].type_().clone();
    let got = match ty {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(column)
            .map(|v| v.map(|v| PageKey::Int(v.into()))),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(column)
            .map(|v| v.map(|v| PageKey::Int(v.into()))),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(column)
            .map(|v| v.map(PageKey::Int)),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row
            .try_get::<_, Option<String>>(column)
            .map(|v| v.map(PageKey::Text)),
        other => {
            return Err(Error::Config(format!(
                "a page key is an integer or text column; {key:?} is {other}"
            )))
        }
    };
    got.map_err(Error::from)?.ok_or_else(|| {
        Error::Config(format!(
            "the page key {key:?} is NULL in a row: keys must be unique and not null"
        ))
    })
}

impl Client {
    /// The page of `keyset` after `after` (the first page with `None`),
    /// `params` binding the query's own placeholders.
    pub async fn page(
        &self,
        keyset: &Keyset<'_>,
        params: Params<'_>,
        after: Option<&PageToken>,
    ) -> Result<Page> {
        let n = first_free(keyset.sql, params)?;
        let key = quote_identifier(&keyset.key);
        let (op, order) = if keyset.descending {
            ("<", "desc")
        } else {
            (">", "")
        };
        let limit = i64::from(keyset.size) + 1;
        let int_after;
        let text_after;
        let mut all = params.to_vec();
        let filter = match after.map(|t| &t.after) {
            None => String::new(),
            Some(PageKey::Int(v)) => {
                int_after = *v;
                all.push(&int_after);
                format!("where {key} {op} ${n}::int8 ")
            }
            Some(PageKey::Text(v)) => {
                text_after = v.clone();
                all.push(&text_after);
                format!("where {key} {op} ${n}::text ")
            }
        };
        all.push(&limit);
        let sql = format!(
            "select * from ({}) as pgsim_page {filter}order by {key} {order} limit ${}::int8",
            keyset.sql,
            all.len()
        );
        let mut rows = self.query(&sql, &all).await?;
        let next = if rows.len() > keyset.size as usize {
            rows.truncate(keyset.size as usize);
            match rows.last() {
                Some(last) => Some(PageToken {
                    after: key_of(last, &keyset.key)?,
                }),
                None => None,
            }
        } else {
            None
        };
        Ok(Page { rows, next })
    }

    /// Page `page` (from 0) of `size` rows of `sql`, which orders its own
    /// rows (`ORDER BY` a unique key, or pages may overlap).
    pub async fn page_offset(
        &self,
        sql: &str,
        params: Params<'_>,
        page: u64,
        size: u32,
    ) -> Result<Vec<Row>> {
        let n = first_free(sql, params)?;
        let size = page_size("page_offset size", size)?;
        let limit = i64::from(size);
        let offset =
            i64::try_from(page.saturating_mul(u64::from(size))).map_err(|_| Error::Setting {
                setting: "page_offset page".into(),
                value: page.to_string(),
                reason: "too far".into(),
            })?;
        let mut all = params.to_vec();
        all.push(&limit);
        all.push(&offset);
        let sql = format!(
            "select * from ({sql}) as pgsim_page limit ${n}::int8 offset ${}::int8",
            n + 1
        );
        self.query(&sql, &all).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_print_and_parse_back() {
        for after in [
            PageKey::Int(0),
            PageKey::Int(-42),
            PageKey::Int(i64::MAX),
            PageKey::Text(String::new()),
            PageKey::Text("héllo. world".into()),
        ] {
            let token = PageToken { after };
            let back: PageToken = token.to_string().parse().expect("parses back");
            assert_eq!(back, token);
        }
    }

    #[test]
    fn a_bad_token_says_what_is_wrong() {
        for (token, why) in [
            ("", "i.<integer> or t.<hex>"),
            ("x.1", "i.<integer> or t.<hex>"),
            ("i.one", "not an integer"),
            ("t.zz", "not a hex"),
            ("t.ff", "not UTF-8"),
        ] {
            let err = token.parse::<PageToken>().expect_err(token).to_string();
            assert!(
                err.contains("page token") && err.contains(why),
                "{token}: {err}"
            );
        }
    }

    #[test]
    fn a_key_that_is_not_an_identifier_or_a_size_out_of_range_is_refused() {
        assert!(Keyset::new("select 1", "id; drop table x").is_err());
        let k = Keyset::new("select 1 as id", "id").expect("an identifier");
        assert!(k.clone().size(0).is_err());
        assert!(k.clone().size(MAX_PAGE_SIZE + 1).is_err());
        assert!(k.size(MAX_PAGE_SIZE).is_ok());
    }
}
