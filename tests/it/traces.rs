//! `tracing` spans of the toolkit, the mock server and the recorder,
//! captured by a scoped subscriber (never a global one, so tests running
//! at once do not see each other's spans): names, fields, and that no
//! password or parameter value appears anywhere in them.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use pgsim::Mode;
use pgsim_recorder::toolkit::{self, run_case};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::support::{connect, demo_server, live_url, recording, DEMO_PIN};

/// One span (with the fields recorded later) or event.
#[derive(Clone, Debug)]
struct Seen {
    name: String,
    event: bool,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Clone, Default)]
struct Capture {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Capture {
    fn all(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
}

/// Where a span's entry is in the list, kept in the span's extensions.
struct Index(usize);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let span = ctx.span(id);
        let parent = span
            .as_ref()
            .and_then(|s| s.parent())
            .map(|p| p.name().to_string());
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.push(Seen {
            name: attrs.metadata().name().into(),
            event: false,
            parent,
            fields,
        });
        if let Some(span) = span {
            span.extensions_mut().insert(Index(seen.len() - 1));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(i) = span.extensions().get::<Index>().map(|i| i.0) else {
            return;
        };
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        values.record(&mut Fields(&mut seen[i].fields));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let parent = ctx.event_span(event).map(|s| s.name().to_string());
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Seen {
                name: event.metadata().name().into(),
                event: true,
                parent,
                fields,
            });
    }
}

/// A subscriber that captures into the returned list, installed for the
/// current thread only until the guard drops.
///
/// tracing caches each callsite's interest process-wide, computed when the
/// callsite is first hit: a test running the same code on another thread
/// with no subscriber would cache "never" and hide this test's spans
/// (seen as a flake under parallel tests). A global default that wants
/// every span (a bare registry, which keeps nothing once a span closes)
/// means no thread ever computes "never", and the cache is rebuilt once
/// this subscriber is in place.
fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    static ANCHOR: std::sync::Once = std::sync::Once::new();
    ANCHOR.call_once(|| {
        // Fails only when another global default is set, which then wants
        // spans as much as this one would.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    (capture, guard)
}

fn named<'a>(seen: &'a [Seen], name: &str) -> Vec<&'a Seen> {
    seen.iter().filter(|s| s.name == name).collect()
}

/// The toolkit's query spans (the mock server's have no node).
fn client_queries(seen: &[Seen]) -> Vec<&Seen> {
    named(seen, "pgsim.query")
        .into_iter()
        .filter(|q| q.field("node").is_some())
        .collect()
}

/// Fails when `secret` appears in any name or field of what was captured.
fn assert_nowhere(seen: &[Seen], secret: &str) {
    let text = format!("{seen:?}");
    assert!(
        !text.contains(secret),
        "{secret:?} appears in the captured spans: {text}"
    );
}

const PASSWORD: &str = "Tr4ce-Hunter2-pw";

/// In Replay only the user and database matter; the password is there to
/// prove that no span shows it.
fn url() -> String {
    format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/postgres")
}

/// The `queries` toolkit case in Replay (current-thread runtime, so the
/// mock server's tasks see the scoped subscriber too).
#[tokio::test]
async fn toolkit_spans_show_kind_node_and_sanitized_sql_but_no_secret() {
    let (capture, _scope) = capture();
    let case = toolkit::case("queries").expect("a toolkit case");
    let fixtures = toolkit::fixtures_dir().join("queries");
    run_case(&case, &url(), Mode::Replay { fixtures })
        .await
        .expect("replay the bundled fixtures");
    let seen = capture.all();

    let connect = named(&seen, "pgsim.connect");
    let connect = connect.first().expect("a pgsim.connect span");
    assert_eq!(connect.field("mode"), Some("replay"));
    assert_eq!(connect.field("node"), Some("primary"));
    assert_eq!(connect.field("user"), Some("postgres"));
    assert_eq!(connect.field("outcome"), Some("ok"));
    assert!(connect.field("database").is_some(), "{connect:?}");

    let acquires = named(&seen, "pgsim.acquire");
    assert!(!acquires.is_empty(), "no pgsim.acquire span");
    assert!(
        acquires
            .iter()
            .all(|a| a.field("node") == Some("primary") && a.field("outcome") == Some("ok")),
        "{acquires:#?}"
    );

    let queries = client_queries(&seen);
    let select = queries
        .iter()
        .find(|q| {
            q.field("sql") == Some("select id, name from q_users where active = $1 order by id")
        })
        .unwrap_or_else(|| panic!("the select's span: {queries:#?}"));
    assert_eq!(select.field("kind"), Some("select"));
    assert_eq!(select.field("node"), Some("primary"));
    assert_eq!(select.field("outcome"), Some("ok"));
    let insert = queries
        .iter()
        .find(|q| q.field("kind") == Some("insert"))
        .unwrap_or_else(|| panic!("an insert's span: {queries:#?}"));
    assert_eq!(
        insert.field("sql"),
        Some("insert into q_users (id, name, active) values ($1, $2, $3)")
    );
    assert!(
        queries.iter().any(|q| q.field("kind") == Some("ddl")),
        "{queries:#?}"
    );
    // The case's parameters: names and ids sent as $n values.
    assert_nowhere(&seen, PASSWORD);
    assert_nowhere(&seen, "brian");
    assert_nowhere(&seen, "cleo");
}

/// The `transactions` case: spans for each transaction, its statements
/// inside it, savepoints inside their transaction, and the outcome.
#[tokio::test]
async fn transaction_spans_hold_their_statements_and_outcome() {
    let (capture, _scope) = capture();
    let case = toolkit::case("transactions").expect("a toolkit case");
    let fixtures = toolkit::fixtures_dir().join("transactions");
    run_case(&case, &url(), Mode::Replay { fixtures })
        .await
        .expect("replay the bundled fixtures");
    let seen = capture.all();

    let txs = named(&seen, "pgsim.transaction");
    let outcomes: Vec<_> = txs.iter().filter_map(|t| t.field("outcome")).collect();
    assert!(outcomes.contains(&"commit"), "{txs:#?}");
    assert!(outcomes.contains(&"rollback"), "{txs:#?}");
    assert!(
        txs.iter().all(|t| t.field("node") == Some("primary")),
        "{txs:#?}"
    );
    assert!(
        txs.iter().any(|t| t.field("savepoint") == Some("true")
            && t.parent.as_deref() == Some("pgsim.transaction")),
        "a savepoint inside its transaction: {txs:#?}"
    );
    let inserts: Vec<_> = client_queries(&seen)
        .into_iter()
        .filter(|q| q.field("kind") == Some("insert"))
        .collect();
    assert!(!inserts.is_empty());
    assert!(
        inserts
            .iter()
            .all(|q| q.parent.as_deref() == Some("pgsim.transaction")),
        "{inserts:#?}"
    );
    assert_nowhere(&seen, PASSWORD);
    assert_nowhere(&seen, "rolled back");
    assert_nowhere(&seen, "before savepoint");
}

/// The `transaction_retry` case: a recorded 40001 on the first attempt is
/// a `pgsim.retry` event, and the second attempt's span says so.
#[tokio::test]
async fn a_serialization_failure_retry_is_an_event_and_a_second_attempt() {
    let (capture, _scope) = capture();
    let case = toolkit::case("transaction_retry").expect("a toolkit case");
    let fixtures = toolkit::fixtures_dir().join("transaction_retry");
    run_case(&case, &url(), Mode::Replay { fixtures })
        .await
        .expect("replay the bundled fixtures");
    let seen = capture.all();

    let retries = named(&seen, "pgsim.retry");
    let retry = retries
        .iter()
        .find(|r| r.field("what") == Some("transaction"))
        .unwrap_or_else(|| panic!("a transaction retry: {seen:#?}"));
    assert!(retry.event);
    assert_eq!(retry.field("error"), Some("40001"));
    assert_eq!(retry.field("failed_attempt"), Some("1"));
    assert!(retry.field("delay_ms").is_some(), "{retry:?}");
    let txs = named(&seen, "pgsim.transaction");
    assert!(
        txs.iter().any(|t| t.field("attempt") == Some("2")
            && t.field("outcome") == Some("commit")
            && t.field("isolation") == Some("RepeatableRead")),
        "{txs:#?}"
    );
    assert_nowhere(&seen, PASSWORD);
}

/// The mock server: a span per session (database, conn id) and per query
/// (kind, sanitized SQL, outcome), a miss included, without the miss's
/// parameter value.
#[tokio::test]
async fn mock_server_sessions_and_queries_are_spans_with_their_outcome() {
    let (capture, _scope) = capture();
    let server = demo_server().await;
    let client = connect(&server.url_for("pgsim_demo")).await;
    client.query(DEMO_PIN, &[]).await.expect("recorded");
    let miss = client
        .query(
            "select * from items where name = $1",
            &[&"Tr4ce-miss-value"],
        )
        .await;
    assert!(miss.is_err(), "not recorded, so a miss");
    client
        .simple_query(DEMO_PIN)
        .await
        .expect("recorded over the simple protocol too");
    drop(client);
    server.shutdown().await;
    let seen = capture.all();

    let sessions = named(&seen, "pgsim.session");
    let session = sessions
        .iter()
        .find(|s| s.field("database") == Some("pgsim_demo"))
        .unwrap_or_else(|| panic!("a session on pgsim_demo: {seen:#?}"));
    assert!(session.field("conn_id").is_some(), "{session:?}");
    let queries = named(&seen, "pgsim.query");
    assert!(
        queries
            .iter()
            .all(|q| q.parent.as_deref() == Some("pgsim.session")),
        "{queries:#?}"
    );
    let pinned: Vec<_> = queries
        .iter()
        .filter(|q| q.field("sql") == Some(DEMO_PIN))
        .collect();
    let protocols: Vec<_> = pinned.iter().filter_map(|q| q.field("protocol")).collect();
    assert_eq!(protocols, ["extended", "simple"], "{queries:#?}");
    assert!(
        pinned
            .iter()
            .all(|q| q.field("kind") == Some("select") && q.field("outcome") == Some("recorded")),
        "{pinned:#?}"
    );
    let missed = queries
        .iter()
        .find(|q| q.field("outcome") == Some("miss"))
        .unwrap_or_else(|| panic!("the miss: {queries:#?}"));
    assert_eq!(
        missed.field("sql"),
        Some("select * from items where name = $1")
    );
    assert_nowhere(&seen, "Tr4ce-miss-value");
}

/// The recorder (live only): a span per proxied session and per recorded
/// exchange, without the parameter values it forwarded.
#[tokio::test]
async fn recorder_sessions_and_exchanges_are_spans_without_values() {
    let Some(url) = live_url() else {
        return;
    };
    let (capture, _scope) = capture();
    let (_dir, recorder, rec_url) = recording(&url).await;
    let client = connect(&rec_url).await;
    let row = client
        .query_one("select $1::text as echoed", &[&"Tr4ce-recorded-value"])
        .await
        .expect("answered through the recorder");
    assert_eq!(row.get::<_, String>(0), "Tr4ce-recorded-value");
    drop(client);
    recorder.shutdown().await;
    let seen = capture.all();

    let sessions = named(&seen, "pgsim.session");
    let session = sessions
        .iter()
        .find(|s| s.field("database") == Some("postgres"))
        .unwrap_or_else(|| panic!("a recorded session: {seen:#?}"));
    assert_eq!(session.field("user"), Some("postgres"));
    assert!(session.field("upstream").is_some(), "{session:?}");
    let exchange = named(&seen, "pgsim.exchange")
        .into_iter()
        .find(|e| e.field("sql") == Some("select $1::text as echoed"))
        .unwrap_or_else(|| panic!("the exchange: {seen:#?}"));
    assert_eq!(exchange.field("kind"), Some("select"));
    assert_eq!(exchange.field("outcome"), Some("recorded"));
    assert_eq!(exchange.parent.as_deref(), Some("pgsim.session"));
    assert_nowhere(&seen, "Tr4ce-recorded-value");
}

/// The session span names the role a client logged in as, also when the
/// server answers from any role's recordings.
#[tokio::test]
async fn a_session_span_names_its_role_under_any_role_too() {
    let (capture, _scope) = capture();
    let server = pgsim::MockServer::builder()
        .fixtures(crate::support::demo_dir())
        .any_role()
        .start()
        .await
        .expect("bundled fixtures load");
    let url = format!(
        "postgres://someone_else@127.0.0.1:{}/pgsim_demo",
        server.addr().port()
    );
    let client = connect(&url).await;
    client.query(DEMO_PIN, &[]).await.expect("recorded");
    drop(client);
    server.shutdown().await;
    let seen = capture.all();
    let sessions = named(&seen, "pgsim.session");
    assert!(
        sessions
            .iter()
            .any(|s| s.field("role") == Some("someone_else")),
        "{sessions:#?}"
    );
}

/// A transaction dropped without commit or rollback (the driver rolls it
/// back) says `dropped` in its span, instead of no outcome.
#[tokio::test]
async fn a_dropped_transaction_span_says_dropped() {
    let Some(url) = live_url() else {
        return;
    };
    let (capture, _scope) = capture();
    let client = pgsim::Client::builder()
        .url(url)
        .max_connections(1)
        .build()
        .await
        .expect("a live client");
    {
        let mut conn = client.acquire().await.expect("a connection");
        let tx = conn.begin().await.expect("begin");
        tx.query_one("select 1", &[]).await.expect("a select");
        drop(tx);
        let tx = conn.begin().await.expect("begin again");
        tx.commit().await.expect("commit");
    }
    client.close().await.expect("close");
    let seen = capture.all();
    let outcomes: Vec<_> = named(&seen, "pgsim.transaction")
        .iter()
        .map(|t| t.field("outcome").unwrap_or("none").to_owned())
        .collect();
    assert_eq!(outcomes, ["dropped", "commit"], "{seen:#?}");
}
