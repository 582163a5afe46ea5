//! The benchmark floor: a bare pgwire server that answers every query, over
//! the simple and the extended protocol, with one fixed row (`1`, int4).
//! pgbench's one start-up probe for partitions gets the fixed three-column
//! row it expects; everything else gets the one-column row.
//! It does no lookup, no matching and no recorded encoding, so the TPS a
//! client reaches against it is what the socket and the protocol cost.
//! `benches/compare.sh` measures `pgsim serve` against it in the same run.
//!
//! ```text
//! cargo run --release --example floor_server -- 127.0.0.1:6545
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::StartupHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response,
};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::{ClientInfo, PgWireServerHandlers, Type};
use pgwire::error::PgWireResult;
use tokio::net::TcpListener;

struct Floor {
    parser: Arc<NoopQueryParser>,
}

fn fields(format: &Format) -> Vec<FieldInfo> {
    vec![FieldInfo::new(
        "abalance".into(),
        None,
        None,
        Type::INT4,
        format.format_for(0),
    )]
}

fn one_row(format: &Format) -> PgWireResult<Response> {
    let schema = Arc::new(fields(format));
    let mut encoder = DataRowEncoder::new(schema.clone());
    encoder.encode_field(&1i32)?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(
        schema,
        stream::iter(vec![Ok(row)]),
    )))
}

/// pgbench asks `select o.n, p.partstrat, count(i.inhparent) ...` at start.
fn partition_probe() -> PgWireResult<Response> {
    let text = Format::UnifiedText;
    let schema = Arc::new(vec![
        FieldInfo::new("n".into(), None, None, Type::INT4, text.format_for(0)),
        FieldInfo::new(
            "partstrat".into(),
            None,
            None,
            Type::CHAR,
            text.format_for(1),
        ),
        FieldInfo::new("count".into(), None, None, Type::INT8, text.format_for(2)),
    ]);
    let mut encoder = DataRowEncoder::new(schema.clone());
    encoder.encode_field(&1i32)?;
    encoder.encode_field(&None::<i8>)?;
    encoder.encode_field(&0i64)?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(
        schema,
        stream::iter(vec![Ok(row)]),
    )))
}

#[async_trait]
impl SimpleQueryHandler for Floor {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        if query.contains("partstrat") {
            return Ok(vec![partition_probe()?]);
        }
        Ok(vec![one_row(&Format::UnifiedText)?])
    }
}

#[async_trait]
impl ExtendedQueryHandler for Floor {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        one_row(&portal.result_column_format)
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        stmt: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let params = stmt
            .parameter_types
            .iter()
            .map(|t| t.clone().unwrap_or(Type::INT4))
            .collect();
        Ok(DescribeStatementResponse::new(
            params,
            fields(&Format::UnifiedText),
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        Ok(DescribePortalResponse::new(fields(
            &portal.result_column_format,
        )))
    }
}

impl NoopStartupHandler for Floor {}

struct Factory(Arc<Floor>);

impl PgWireServerHandlers for Factory {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.0.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.0.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.0.clone()
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6545".into());
    let factory = Arc::new(Factory(Arc::new(Floor {
        parser: Arc::new(NoopQueryParser),
    })));
    let listener = TcpListener::bind(&addr).await?;
    println!(
        "floor server: one fixed row for every query on {}",
        listener.local_addr()?
    );
    loop {
        let (socket, _) = listener.accept().await?;
        let factory = factory.clone();
        tokio::spawn(async move { pgwire::tokio::process_socket(socket, None, factory).await });
    }
}
