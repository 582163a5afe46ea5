//! Protocol features replayed as PostgreSQL answers them: CancelRequest,
//! COPY FROM STDIN data as part of the key, CopyFail, row-limited portals
//! over the bundled fixtures.

use std::time::Duration;

use futures_util::SinkExt;
use tokio_postgres::NoTls;

use crate::support::{connect, demo_dir, live_url, recording, DEMO_PIN};

const DEMO_DB: &str = "pgsim_demo";

/// A mock over the demo fixtures whose `select count(*) from events` waits
/// `ms` milliseconds before answering.
async fn slow_server(ms: u64) -> pgsim::MockServer {
    pgsim::MockServer::builder()
        .fixtures(demo_dir())
        .fault(format!(
            "match=^select count\\(\\*\\) from events,latency={ms}"
        ))
        .start()
        .await
        .expect("bundled fixtures load")
}

#[tokio::test]
async fn a_cancel_request_interrupts_a_slow_answer_with_57014() {
    let server = slow_server(600_000).await;
    let client = connect(&server.url_for(DEMO_DB)).await;
    client.simple_query(DEMO_PIN).await.unwrap();
    let token = client.cancel_token();
    let query = tokio::spawn(async move {
        let r = client.simple_query("select count(*) from events").await;
        (client, r)
    });
    // Cancel until the answer comes (the request may reach the server
    // before the query does; PostgreSQL ignores such a cancel too).
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            token.cancel_query(NoTls).await.expect("cancel sent");
            if query.is_finished() {
                return query.await.expect("query task");
            }
        }
    })
    .await
    .expect("the cancel ended the query");
    let (client, result) = outcome;
    let err = result.expect_err("cancelled");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "57014");
    assert_eq!(db.message(), "canceling statement due to user request");
    // The connection is usable afterwards, as on PostgreSQL.
    let rows = client
        .simple_query("select name from items where id = 99")
        .await
        .expect("still serving");
    assert!(!rows.is_empty());
}

#[tokio::test]
async fn a_cancel_request_with_the_wrong_key_is_ignored() {
    let server = slow_server(300).await;
    let client = connect(&server.url_for(DEMO_DB)).await;
    client.simple_query(DEMO_PIN).await.unwrap();
    let query =
        tokio::spawn(async move { client.simple_query("select count(*) from events").await });
    // A CancelRequest with a made-up key, while the answer is delayed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let mut buf = bytes::BytesMut::new();
        postgres_protocol::message::frontend::cancel_request(0, 12345, &mut buf);
        s.write_all(&buf).await.unwrap();
    }
    let rows = query.await.unwrap().expect("answered as recorded");
    assert!(rows
        .iter()
        .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))));
}

#[tokio::test]
async fn a_full_last_batch_suspends_and_the_next_execute_says_select_0() {
    // Live, then replayed: a portal read in batches that divide its rows.
    let Some(url) = live_url() else {
        return;
    };
    let _guard = crate::support::LIVE_LOCK.lock().await;
    let (dir, recorder, rec_url) = recording(&url).await;
    let live = batches(&rec_url, 2).await;
    let summary = recorder.shutdown().await;
    assert!(
        summary.errors.is_empty() && summary.lost.is_empty(),
        "{summary}"
    );
    // The last of the 3 batches of 2 was full: the portal is exhausted only
    // on the 4th Execute (0 rows).
    assert_eq!(live, vec![2, 2, 2, 0]);
    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    assert_eq!(batches(&server.url_for("postgres"), 2).await, live);
    // Other batch sizes the recorded rows cover replay too.
    assert_eq!(batches(&server.url_for("postgres"), 4).await, vec![4, 2]);
    assert_eq!(batches(&server.url_for("postgres"), 6).await, vec![6, 0]);
    let report = server.shutdown().await;
    assert!(report.misses.is_empty(), "{report}");
}

/// Rows per Execute of a 6-row portal read `n` at a time until exhausted.
async fn batches(url: &str, n: i32) -> Vec<usize> {
    let mut client = connect(url).await;
    let tx = client.transaction().await.unwrap();
    let portal = tx
        .bind("select g from generate_series(1, 6) g order by g", &[])
        .await
        .unwrap();
    let mut sizes = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, n).await.unwrap();
        sizes.push(rows.len());
        if rows.len() < n as usize {
            break;
        }
    }
    tx.commit().await.unwrap();
    sizes
}

#[tokio::test]
async fn copy_from_stdin_data_is_part_of_the_key_and_copy_fail_replays() {
    let Some(url) = live_url() else {
        return;
    };
    let _guard = crate::support::LIVE_LOCK.lock().await;
    let admin = connect(&url).await;
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS pgsim_copy_key; CREATE TABLE pgsim_copy_key (id int, name text)",
        )
        .await
        .unwrap();
    let (dir, recorder, rec_url) = recording(&url).await;
    let live = copy_session(&rec_url, "1\tone\n2\ttwo\n").await;
    let summary = recorder.shutdown().await;
    assert!(
        summary.errors.is_empty() && summary.lost.is_empty(),
        "{summary}"
    );
    assert_eq!(live.0, Ok(2));
    assert!(live.1 > 0, "the connection survives the CopyFail");

    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    let url = server.url_for("postgres");
    // The same data replays the same answers, CopyFail included.
    assert_eq!(copy_session(&url, "1\tone\n2\ttwo\n").await, live);
    assert!(server.report().misses.is_empty(), "{}", server.report());
    // Other data is a miss that names the difference.
    let client = connect(&url).await;
    let sink = client
        .copy_in("COPY pgsim_copy_key FROM STDIN")
        .await
        .expect("CopyInResponse replayed");
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\tuno\n2\ttwo\n"))
        .await
        .unwrap();
    let err = sink.finish().await.expect_err("different data");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), pgsim::SQLSTATE_NO_RECORDING);
    let detail = db.detail().unwrap_or_default();
    assert!(detail.contains("differs"), "{detail}");
    let _ = server.shutdown().await;
}

/// COPY FROM STDIN with `data` (its row count), then one abandoned (the
/// sink dropped: tokio-postgres sends CopyFail), then a query that shows
/// the connection is fine.
async fn copy_session(url: &str, data: &'static str) -> (Result<u64, String>, usize) {
    let client = connect(url).await;
    let sink = client
        .copy_in("COPY pgsim_copy_key FROM STDIN")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(data.as_bytes()))
        .await
        .unwrap();
    let copied = sink.finish().await.map_err(|e| e.to_string());
    let abandoned = client
        .copy_in::<_, bytes::Bytes>("COPY pgsim_copy_key FROM STDIN")
        .await
        .unwrap();
    drop(abandoned);
    let after = client
        .simple_query("select count(*) from pgsim_copy_key")
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    (copied, after)
}

/// A client whose connection task forwards every notification it receives.
async fn listening(
    url: &str,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<(i32, String, String)>,
) {
    let (client, mut conn) = tokio_postgres::connect(url, NoTls).await.expect("connects");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = futures_util::StreamExt::next(&mut messages).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send((
                    n.process_id(),
                    n.channel().to_owned(),
                    n.payload().to_owned(),
                ));
            }
        }
    });
    (client, rx)
}

#[tokio::test]
async fn a_notification_from_another_session_replays_where_it_arrived() {
    let Some(url) = live_url() else {
        return;
    };
    let _guard = crate::support::LIVE_LOCK.lock().await;
    let (dir, recorder, rec_url) = recording(&url).await;
    // Live: A listens, B notifies while A is idle, then A runs a query.
    let (a, mut a_notes) = listening(&rec_url).await;
    a.batch_execute("LISTEN pgsim_chan").await.unwrap();
    let b = connect(&rec_url).await;
    b.batch_execute("NOTIFY pgsim_chan, 'from b'")
        .await
        .unwrap();
    let live_note = tokio::time::timeout(Duration::from_secs(30), a_notes.recv())
        .await
        .expect("the notification arrives")
        .expect("a notification");
    let live_rows = a.simple_query("select 1").await.unwrap().len();
    drop((a, b));
    let summary = recorder.shutdown().await;
    assert!(
        summary.errors.is_empty() && summary.lost.is_empty(),
        "{summary}"
    );

    // Replay: A alone. The notification comes before the answer to the
    // query that followed it when it was recorded.
    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    let (a, mut a_notes) = listening(&server.url_for("postgres")).await;
    a.batch_execute("LISTEN pgsim_chan").await.unwrap();
    assert!(a_notes.try_recv().is_err(), "not before its place");
    let replay_rows = a.simple_query("select 1").await.unwrap().len();
    let replay_note = a_notes.try_recv().expect("delivered before the answer");
    assert_eq!(replay_note, live_note);
    assert_eq!(replay_rows, live_rows);
    let _ = server.shutdown().await;
}

#[tokio::test]
async fn a_portal_the_client_stopped_reading_replays_only_what_was_read() {
    let Some(url) = live_url() else {
        return;
    };
    let _guard = crate::support::LIVE_LOCK.lock().await;
    let (dir, recorder, rec_url) = recording(&url).await;
    let live = first_rows(&rec_url, 2).await.expect("live");
    let summary = recorder.shutdown().await;
    assert!(
        summary.errors.is_empty() && summary.lost.is_empty(),
        "{summary}"
    );
    assert_eq!(live, vec![1, 2]);

    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    let url = server.url_for("postgres");
    // What the client read replays; more than that was never recorded,
    // and asking for it is a miss, not a guess.
    assert_eq!(first_rows(&url, 2).await.expect("replayed"), live);
    let err = first_rows(&url, 3).await.expect_err("beyond the recording");
    assert!(err.contains(pgsim::SQLSTATE_NO_RECORDING), "{err}");
    assert!(err.contains("stopped reading"), "{err}");
    let _ = server.shutdown().await;
}

/// The first `n` values of a 6-row portal, after which the client commits
/// without reading on (the portal closes suspended).
async fn first_rows(url: &str, n: i32) -> Result<Vec<i32>, String> {
    let mut client = connect(url).await;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    let portal = tx
        .bind("select g from generate_series(1, 6) g order by g", &[])
        .await
        .map_err(|e| e.to_string())?;
    let rows = tx.query_portal(&portal, n).await.map_err(|e| {
        e.as_db_error()
            .map(|d| format!("{} {}", d.code().code(), d.message()))
            .unwrap_or_else(|| e.to_string())
    })?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// tokio-postgres's `query_typed` sends Parse, Bind, Describe statement and
/// Execute in one batch, asking for binary results before the columns are
/// known: the recorder still reads the rows with the described types, so
/// they are recorded as text, and replay answers them.
#[tokio::test]
async fn a_batch_that_describes_the_statement_after_bind_records_text_values() {
    let Some(live) = live_url() else { return };
    let (dir, recorder, rec_url) = recording(&live).await;
    let sql = "select $1::int4 + 1 as n, 'x' || $1::int4::text as t";
    let query = |url: String| async move {
        let client = connect(&url).await;
        let rows = client
            .query_typed(sql, &[(&41i32, pgsim::tokio_postgres::types::Type::INT4)])
            .await
            .expect("query_typed");
        (rows[0].get::<_, i32>(0), rows[0].get::<_, String>(1))
    };
    let live_answer = query(rec_url).await;
    assert_eq!(live_answer, (42, "x41".to_owned()));
    assert!(recorder.shutdown().await.lost.is_empty());
    let set = pgsim::fixture::load_dir(dir.path()).unwrap();
    let ex = set
        .sessions
        .iter()
        .flat_map(|s| &s.session.exchanges)
        .find(|e| e.sql == sql)
        .expect("recorded");
    assert_eq!(
        ex.results[0].rows,
        vec![vec![
            pgsim::fixture::Value::Text("42".into()),
            pgsim::fixture::Value::Text("x41".into())
        ]],
        "{ex:?}"
    );
    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    assert_eq!(query(server.url()).await, live_answer);
}
