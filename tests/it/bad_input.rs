//! Bad input: corrupt fixtures, malformed protocol bytes, SSL requests.

use std::io::Write;

use bytes::{BufMut, BytesMut};
use pgsim::tokio_postgres::{self, NoTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{demo_dir, demo_server, DEMO_PIN};
use pgsim_recorder::scenario::DEMO_DB;

pub(crate) fn startup_packet(db: &str) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_i32(196608);
    for (k, v) in [("user", "postgres"), ("database", db)] {
        body.put_slice(k.as_bytes());
        body.put_u8(0);
        body.put_slice(v.as_bytes());
        body.put_u8(0);
    }
    body.put_u8(0);
    let mut packet = BytesMut::new();
    packet.put_i32(body.len() as i32 + 4);
    packet.put_slice(&body);
    packet
}

/// Reads backend messages until ReadyForQuery or EOF; returns their type bytes.
pub(crate) async fn read_until_ready(s: &mut TcpStream) -> (Vec<u8>, Vec<u8>) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        if all.len() >= 6 && all[all.len() - 6] == b'Z' {
            break;
        }
    }
    let mut kinds = Vec::new();
    let mut i = 0;
    while i + 5 <= all.len() {
        kinds.push(all[i]);
        let len = i32::from_be_bytes([all[i + 1], all[i + 2], all[i + 3], all[i + 4]]) as usize;
        i += 1 + len;
    }
    (kinds, all)
}

#[tokio::test]
async fn a_malformed_message_closes_only_that_connection() {
    let server = demo_server().await;
    let (good, conn) = tokio_postgres::connect(&server.url_for(DEMO_DB), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);

    let mut bad = TcpStream::connect(server.addr()).await.unwrap();
    bad.write_all(&startup_packet(DEMO_DB)).await.unwrap();
    let (kinds, _) = read_until_ready(&mut bad).await;
    assert_eq!(kinds.first(), Some(&b'R'));
    assert_eq!(kinds.last(), Some(&b'Z'));
    // A Bind that declares three parameter formats and carries none.
    let mut msg = BytesMut::new();
    msg.put_u8(b'B');
    msg.put_i32(4 + 2 + 2);
    msg.put_slice(b"\0\0");
    msg.put_i16(3);
    bad.write_all(&msg).await.unwrap();
    let (kinds, bytes) = read_until_ready(&mut bad).await;
    assert_eq!(
        kinds,
        vec![b'E'],
        "one ErrorResponse, then the connection closes"
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("08P01"), "{text}");
    assert!(text.contains("malformed"), "{text}");
    let mut rest = [0u8; 1];
    assert_eq!(
        bad.read(&mut rest).await.unwrap_or(0),
        0,
        "the bad connection is closed"
    );

    // Everyone else is still served.
    let rows = good
        .query(
            "select id, name from items where id = $1 and active = $2",
            &[&1i32, &true],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (again, conn) = tokio_postgres::connect(&server.url_for(DEMO_DB), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    again.simple_query(DEMO_PIN).await.unwrap();
    let messages = again
        .simple_query("select count(*) from events")
        .await
        .unwrap();
    assert!(messages
        .iter()
        .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))));
}

#[tokio::test]
async fn an_oversized_length_closes_the_connection_as_postgresql_does() {
    let server = demo_server().await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(&startup_packet(DEMO_DB)).await.unwrap();
    read_until_ready(&mut s).await;
    let mut msg = BytesMut::new();
    msg.put_u8(b'Q');
    msg.put_i32(i32::MAX);
    s.write_all(&msg).await.unwrap();
    // PostgreSQL 15 logs 08P01 "invalid message length" and closes the
    // connection without a message (checked against a live server).
    let (kinds, bytes) = read_until_ready(&mut s).await;
    assert!(kinds.is_empty(), "{bytes:?}");
}

#[tokio::test]
async fn ssl_requests_are_refused_with_n_and_the_session_goes_on() {
    let server = demo_server().await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let mut req = BytesMut::new();
    req.put_i32(8);
    req.put_i32(80877103);
    s.write_all(&req).await.unwrap();
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"N");
    s.write_all(&startup_packet(DEMO_DB)).await.unwrap();
    let (kinds, _) = read_until_ready(&mut s).await;
    assert_eq!(kinds.last(), Some(&b'Z'));
}

/// What a mock server started on `dir` refused, one line per file.
async fn refused(dir: &std::path::Path) -> String {
    let server = pgsim::MockServer::builder()
        .fixtures(dir)
        .start()
        .await
        .expect("a bad file does not stop the server");
    server
        .rejected()
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_corrupt_fixture_is_rejected_with_its_path_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(demo_dir().join("session-0001.json")).unwrap();
    let path = dir.path().join("session-0001.json");
    // Cut the file in the middle of line 10.
    let cut: Vec<&str> = good.lines().take(10).collect();
    std::fs::write(&path, cut.join("\n")).unwrap();
    let err = refused(dir.path()).await;
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("line 10"), "{err}");

    // Valid JSON, impossible content: named by exchange.
    let mut session: pgsim::fixture::Session = serde_json::from_str(&good).unwrap();
    session.exchanges[0].results[0].tag = None;
    session.exchanges[0].results[0].error = None;
    std::fs::write(&path, serde_json::to_string_pretty(&session).unwrap()).unwrap();
    let err = refused(dir.path()).await;
    assert!(err.contains("exchange seq"), "{err}");
    assert!(err.contains("exactly one of"), "{err}");
}

#[tokio::test]
async fn one_bad_session_leaves_every_other_session_serving() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["session-0001.json", "session-0002.json"] {
        std::fs::copy(demo_dir().join(f), dir.path().join(f)).unwrap();
    }
    let good: pgsim::fixture::Session = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("session-0001.json")).unwrap(),
    )
    .unwrap();
    // session-0002 becomes unloadable (a row wider than its columns), at a
    // simple query that session-0001 never sent.
    let bad = dir.path().join("session-0002.json");
    let mut session: pgsim::fixture::Session =
        serde_json::from_str(&std::fs::read_to_string(&bad).unwrap()).unwrap();
    let victim = session
        .exchanges
        .iter_mut()
        .find(|e| {
            e.params.is_none()
                && !e.is_protocol_only()
                && !e.results[0].rows.is_empty()
                && !good.exchanges.iter().any(|g| g.sql == e.sql)
        })
        .expect("session-0002 has a simple query with rows that session-0001 lacks");
    let sql = victim.sql.clone();
    victim.results[0].rows[0].push(pgsim::fixture::Value::Null);
    std::fs::write(&bad, serde_json::to_string_pretty(&session).unwrap()).unwrap();

    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .expect("the other session still serves");
    assert_eq!(server.rejected().len(), 1, "{:?}", server.rejected());
    assert!(server.rejected()[0].path.ends_with("session-0002.json"));
    assert!(
        server.rejected()[0].error.contains("values for"),
        "{:?}",
        server.rejected()
    );

    // session-0001's queries still answer.
    let first = good
        .exchanges
        .iter()
        .find(|e| {
            e.params.is_none()
                && !e.is_protocol_only()
                && e.results.iter().all(|r| r.error.is_none())
        })
        .expect("a simple query");
    let (client, conn) =
        tokio_postgres::connect(&server.url_for(&good.database), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    client
        .simple_query(&first.sql)
        .await
        .expect("served from the good file");

    // A query only the refused file held misses, and the miss names it.
    let err = client.simple_query(&sql).await.unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), pgsim::SQLSTATE_NO_RECORDING);
    let detail = db.detail().unwrap_or_default();
    assert!(detail.contains("session-0002.json"), "{detail}");
}

#[tokio::test]
async fn a_torn_journal_line_loses_only_the_exchange_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(demo_dir().join("session-0001.json")).unwrap();
    let session: pgsim::fixture::Session = serde_json::from_str(&good).unwrap();
    let path = dir.path().join("session-0009.jsonl");
    let mut w = pgsim::fixture::JournalWriter::create(&path, &session).unwrap();
    for ex in &session.exchanges {
        w.append(ex).unwrap();
    }
    drop(w);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"seq\": 99999, \"key\": \"ab").unwrap();
    let set = pgsim::fixture::load_dir(dir.path()).unwrap();
    assert_eq!(set.exchange_count(), session.exchanges.len());
    assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
    assert!(
        set.warnings[0].contains("interrupted write"),
        "{:?}",
        set.warnings
    );

    // A broken line that is not the last refuses the file, with its line.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "{not json");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let set = pgsim::fixture::load_dir(dir.path()).unwrap();
    assert_eq!(set.rejected.len(), 1);
    let err = &set.rejected[0].error;
    assert!(err.contains("line 3"), "{err}");
    assert_eq!(
        set.rejected[0].database.as_deref(),
        Some(session.database.as_str())
    );
}

#[test]
fn fixtures_round_trip_through_json() {
    let text = std::fs::read_to_string(demo_dir().join("session-0001.json")).unwrap();
    let session: pgsim::fixture::Session = serde_json::from_str(&text).unwrap();
    let again = serde_json::to_string_pretty(&session).unwrap() + "\n";
    assert_eq!(again, text, "re-serialising a fixture changes nothing");
}

#[tokio::test]
async fn a_miss_explains_itself_in_display_and_names_the_fixtures_to_record_into() {
    let server = crate::support::demo_server().await;
    let client = pgsim::Client::builder()
        .url(server.url_for(DEMO_DB))
        .build()
        .await
        .expect("a live-mode client on the mock");
    let err = client
        .query("select name from items where id = 12345", &[])
        .await
        .expect_err("never recorded");
    let shown = err.to_string();
    assert!(shown.contains("PGS01"), "{shown}");
    assert!(shown.contains("DETAIL: Closest recorded query"), "{shown}");
    assert!(shown.contains("HINT:"), "{shown}");
    assert!(
        shown.contains(&crate::support::demo_dir().display().to_string()),
        "the hint names the fixture directory: {shown}"
    );
    assert!(shown.contains("pgsim record --upstream"), "{shown}");
}

#[tokio::test]
async fn a_copied_session_file_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("session-0001.json");
    let copy = dir.path().join("session-0001-copy.json");
    std::fs::copy(demo_dir().join("session-0001.json"), &original).unwrap();
    std::fs::copy(&original, &copy).unwrap();
    let server = pgsim::MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .expect("one copy serves");
    let refused = server.rejected();
    assert_eq!(refused.len(), 1, "{refused:?}");
    // Name order: "session-0001-copy.json" loads first, so the original
    // is the one refused; either way both names are in the error.
    let error = &refused[0].error;
    assert!(error.contains("session-0001.json"), "{error}");
    assert!(error.contains("session-0001-copy.json"), "{error}");
    assert!(error.contains("same recorded session"), "{error}");
    assert_eq!(server.database_count(), 1);
}
