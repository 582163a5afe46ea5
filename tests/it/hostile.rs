//! A mock server you can leave running: hostile clients (oversized
//! declared lengths, huge unrecorded queries, stalled or idle connections,
//! too many of them, pipelined floods) are bounded and never stall the others.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use pgsim::tokio_postgres::error::SqlState;
use pgsim::MockServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bad_input::{read_until_ready, startup_packet};
use crate::support::{connect, demo_dir, DEMO_PIN};
use pgsim_recorder::scenario::DEMO_DB;

fn demo() -> pgsim::MockServerBuilder {
    MockServer::builder().fixtures(demo_dir())
}

/// A raw connection past startup (ReadyForQuery read).
async fn raw_session(server: &MockServer) -> TcpStream {
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(&startup_packet(DEMO_DB)).await.unwrap();
    let (kinds, _) = read_until_ready(&mut s).await;
    assert_eq!(kinds.last(), Some(&b'Z'), "startup did not complete");
    s
}

/// Everything the server sends until it closes the connection.
async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all).await;
    all
}

fn query(sql: &str) -> BytesMut {
    let mut m = BytesMut::new();
    m.put_u8(b'Q');
    m.put_i32(4 + sql.len() as i32 + 1);
    m.put_slice(sql.as_bytes());
    m.put_u8(0);
    m
}

async fn assert_serves(client: &pgsim::tokio_postgres::Client) {
    let rows = client.query(DEMO_PIN, &[]).await.unwrap();
    assert!(!rows.is_empty(), "the recorded items");
}

#[tokio::test]
async fn an_oversized_declared_length_closes_that_connection_without_a_word() {
    let server = demo().max_message_size(1 << 20).start().await.unwrap();
    let good = connect(&server.url_for(DEMO_DB)).await;
    assert_serves(&good).await;

    // A Query declaring 2 MiB, over the configured 1 MiB: refused from its
    // header, its body never awaited. PostgreSQL logs 08P01 "invalid
    // message length" and closes without sending anything; so does pgsim.
    let mut bad = raw_session(&server).await;
    let mut m = BytesMut::new();
    m.put_u8(b'Q');
    m.put_i32(2 << 20);
    m.put_slice(b"select ");
    bad.write_all(&m).await.unwrap();
    assert_eq!(read_to_end(&mut bad).await, b"");

    // A Sync is one of PostgreSQL's small messages (10000 bytes at most).
    let mut bad = raw_session(&server).await;
    let mut m = BytesMut::new();
    m.put_u8(b'S');
    m.put_i32(10_001);
    bad.write_all(&m).await.unwrap();
    assert_eq!(read_to_end(&mut bad).await, b"");

    // A startup packet over 10000 bytes: "invalid length of startup packet".
    let mut bad = TcpStream::connect(server.addr()).await.unwrap();
    let mut m = BytesMut::new();
    m.put_i32(10_005);
    m.put_i32(196608);
    bad.write_all(&m).await.unwrap();
    assert_eq!(read_to_end(&mut bad).await, b"");

    // Just under the limit is read and answered.
    let sql = format!("select '{}'", "x".repeat((1 << 20) - 100));
    let e = good.simple_query(&sql).await.unwrap_err();
    assert_eq!(e.code().map(SqlState::code), Some("PGS01"), "{e}");
    assert_serves(&good).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_unrecorded_query_costs_others_a_bounded_number_of_answers() {
    let server = demo().start().await.unwrap();
    let url = server.url_for(DEMO_DB);
    let (big, other) = (connect(&url).await, connect(&url).await);
    assert_serves(&other).await;
    let (stop, answered) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let meanwhile = tokio::spawn({
        let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
        async move {
            while !stop.load(Ordering::Relaxed) {
                assert_serves(&other).await;
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // 1 MB of SQL nothing recorded: before the nearest-match budget, its
    // diagnostic compared it quadratically with every recorded query
    // (667 KB took 47 s, on the I/O thread).
    let sql = format!("select '{}' as huge", "x".repeat(1 << 20));
    let e = big.simple_query(&sql).await.unwrap_err();
    let during = answered.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    meanwhile.await.unwrap();
    let db = e.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "PGS01", "{e}");
    assert!(
        db.detail()
            .is_some_and(|d| d.contains("Closest recorded query")),
        "{db:?}"
    );
    // Relative, not wall-clock: the whole miss (1 MB sent, normalized,
    // hashed, compared) costs the other client fewer answers than this.
    assert!(
        during < 20_000,
        "the other client got {during} answers while the big miss was computed"
    );
    assert!(server.report().misses.len() == 1, "{}", server.report());
}

#[tokio::test]
async fn a_thousand_connections_are_served_at_once_and_one_more_gets_53300() {
    const N: usize = 1000;
    // Both ends of each connection live in this process.
    if let Some(limit) = open_files_limit() {
        assert!(
            limit > 2 * N + 100,
            "this test needs {} open files; the limit is {limit} (raise it: ulimit -n 4096)",
            2 * N + 100
        );
    }
    let server = demo().max_connections(N).start().await.unwrap();
    let url = server.url_for(DEMO_DB);
    let (release, _) = tokio::sync::watch::channel(false);
    let mut clients = tokio::task::JoinSet::new();
    let served = Arc::new(AtomicUsize::new(0));
    for _ in 0..N {
        let (url, served, mut released) = (url.clone(), Arc::clone(&served), release.subscribe());
        clients.spawn(async move {
            let client = connect(&url).await;
            assert_serves(&client).await;
            served.fetch_add(1, Ordering::Relaxed);
            // Stay connected until every other client is too.
            let _ = released.wait_for(|r| *r).await;
            drop(client);
        });
    }
    while served.load(Ordering::Relaxed) < N {
        if let Some(Err(e)) = clients.try_join_next() {
            panic!("a client failed: {e}");
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(server.peak_total_sessions(), N);
    let e = pgsim::tokio_postgres::connect(&url, pgsim::tokio_postgres::NoTls)
        .await
        .err()
        .expect("one over the cap is refused");
    assert_eq!(e.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");
    let db = e.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(db.message(), "sorry, too many clients already");
    release.send_replace(true);
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
}

/// This process's soft limit on open files, where the system says it.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(start_paused = true)]
async fn a_stalled_startup_is_closed_after_the_startup_timeout() {
    let timeout = Duration::from_secs(60);
    let server = demo().startup_timeout(timeout).start().await.unwrap();
    let start = tokio::time::Instant::now();
    // Half a startup packet, then nothing (a half-open client).
    let mut stalled = TcpStream::connect(server.addr()).await.unwrap();
    stalled
        .write_all(&startup_packet(DEMO_DB)[..6])
        .await
        .unwrap();
    // PostgreSQL closes it without a message (authentication_timeout).
    assert_eq!(read_to_end(&mut stalled).await, b"");
    assert!(
        start.elapsed() >= timeout,
        "closed after {:?}",
        start.elapsed()
    );
    // A complete startup is not affected, however long the session idles.
    let mut s = raw_session(&server).await;
    tokio::time::sleep(timeout * 3).await;
    s.write_all(&query(DEMO_PIN)).await.unwrap();
    let (kinds, _) = read_until_ready(&mut s).await;
    assert_eq!(kinds.first(), Some(&b'T'));
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_ends_with_57p05_after_the_idle_timeout() {
    let timeout = Duration::from_secs(10);
    let server = demo().idle_timeout(timeout).start().await.unwrap();
    let mut s = raw_session(&server).await;
    // Busy sessions are not idle: each answer restarts the wait.
    for _ in 0..3 {
        tokio::time::sleep(timeout / 2).await;
        s.write_all(&query(DEMO_PIN)).await.unwrap();
        let (kinds, _) = read_until_ready(&mut s).await;
        assert_eq!(kinds.last(), Some(&b'Z'));
    }
    let start = tokio::time::Instant::now();
    let bytes = read_to_end(&mut s).await;
    assert!(
        start.elapsed() >= timeout,
        "closed after {:?}",
        start.elapsed()
    );
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(bytes.first(), Some(&b'E'), "{text}");
    assert!(text.contains("FATAL") && text.contains("57P05"), "{text}");
    assert!(
        text.contains("terminating connection due to idle-session timeout"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_inside_a_transaction_has_its_own_idle_timeout() {
    let (idle, in_transaction) = (Duration::from_secs(10), Duration::from_secs(60));
    let server = demo()
        .idle_timeout(idle)
        .idle_in_transaction_timeout(in_transaction)
        .start()
        .await
        .unwrap();
    let mut s = raw_session(&server).await;
    s.write_all(&query("begin")).await.unwrap();
    let (kinds, bytes) = read_until_ready(&mut s).await;
    assert_eq!(kinds.last(), Some(&b'Z'));
    assert!(bytes.ends_with(b"Z\0\0\0\x05T"), "in a transaction block");
    // The idle-session timeout does not apply inside a transaction block.
    let start = tokio::time::Instant::now();
    let bytes = read_to_end(&mut s).await;
    assert!(
        start.elapsed() >= in_transaction,
        "closed after {:?}",
        start.elapsed()
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("FATAL") && text.contains("25P03"), "{text}");
    assert!(
        text.contains("terminating connection due to idle-in-transaction timeout"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_an_idle_in_transaction_timeout_a_transaction_may_wait() {
    let timeout = Duration::from_secs(10);
    let server = demo().idle_timeout(timeout).start().await.unwrap();
    let client = connect(&server.url_for(DEMO_DB)).await;
    assert_serves(&client).await;
    client.batch_execute("begin").await.unwrap();
    tokio::time::sleep(timeout * 3).await;
    client.batch_execute("rollback").await.unwrap();
}

#[tokio::test]
async fn answers_to_a_pipelined_flood_are_written_as_they_are_made() {
    const N: usize = 2000;
    let server = demo().start().await.unwrap();
    let s = raw_session(&server).await;
    let (mut rd, mut wr) = s.into_split();
    let mut flood = BytesMut::new();
    for _ in 0..N {
        flood.extend_from_slice(&query(DEMO_PIN));
    }
    let writer = tokio::spawn(async move { wr.write_all(&flood).await.map(|()| wr) });
    // Read all N answers (each ends with ReadyForQuery).
    let (mut ready, mut total, mut buf, mut tail) = (0, 0, vec![0u8; 65536], Vec::new());
    while ready < N {
        let n = rd.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {ready} answers");
        total += n;
        tail.extend_from_slice(&buf[..n]);
        ready += tail.windows(6).filter(|w| w == b"Z\0\0\0\x05I").count();
        let keep = tail.len().min(5);
        tail.drain(..tail.len() - keep);
    }
    let _wr = writer.await.unwrap().unwrap();
    let one = total / N;
    let peak = server.peak_output_buffer();
    assert!(total > 1 << 20, "{total} bytes of answers");
    // Buffered per read chunk, this was hundreds of answers at once.
    assert!(
        peak <= 64 * 1024 + one,
        "{peak} bytes of answers held at once ({one} per answer, {total} in all)"
    );
}

#[tokio::test]
async fn shutdown_ends_connected_sessions_with_57p01() {
    let server = demo().start().await.unwrap();
    let mut s = raw_session(&server).await;
    let (report, bytes) = tokio::join!(server.shutdown(), read_to_end(&mut s));
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(bytes.first(), Some(&b'E'), "{text}");
    assert!(text.contains("FATAL") && text.contains("57P01"), "{text}");
    assert!(
        text.contains("terminating connection due to administrator command"),
        "{text}"
    );
    assert_eq!(report.sessions, 1);
}

#[tokio::test]
async fn the_miss_record_stays_bounded_however_many_queries_miss() {
    let server = demo().miss_details(5).start().await.unwrap();
    let client = connect(&server.url_for(DEMO_DB)).await;
    for i in 0..300 {
        let e = client
            .simple_query(&format!("select {} as never_recorded", i % 50))
            .await
            .unwrap_err();
        assert_eq!(e.code().map(SqlState::code), Some("PGS01"), "{e}");
    }
    let report = server.report();
    assert_eq!(report.missed, 300);
    assert_eq!(report.misses.len(), 5, "details for the first 5 queries");
    assert!(report.misses.iter().all(|m| m.count == 6), "{report}");
    assert_eq!(report.misses_left_out, 300 - 30);
    let text = report.to_string();
    assert!(text.contains("300 misses"), "{text}");
    assert!(
        text.contains("and 270 more misses of queries not listed"),
        "{text}"
    );
}

#[tokio::test]
async fn a_database_name_over_63_bytes_is_cut_as_postgresql_cuts_it() {
    // A database whose name is 63 bytes, the most PostgreSQL keeps: a
    // client sending a longer name reaches it, as on PostgreSQL (which cuts
    // the startup packet's names to NAMEDATALEN - 1 bytes).
    let db63 = format!("{DEMO_DB}_{}", "n".repeat(63 - DEMO_DB.len() - 1));
    let dir = crate::cli::copy_fixtures(&demo_dir());
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            crate::cli::edit(dir.path(), &name, |s| s["database"] = db63.clone().into());
        }
    }
    let server = MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    let client = connect(&server.url_for(&format!("{db63}, and then some"))).await;
    assert_serves(&client).await;
    // A cut inside a character names no database (PostgreSQL: 3D000).
    let cut = format!("{}é", &db63[..62]);
    let e = pgsim::tokio_postgres::connect(&server.url_for(&cut), pgsim::tokio_postgres::NoTls)
        .await
        .err()
        .expect("no such database");
    assert_eq!(e.code(), Some(&SqlState::INVALID_CATALOG_NAME), "{e}");
}

#[tokio::test]
async fn a_long_database_name_is_recorded_and_replayed_as_postgresql_cut_it() {
    let Some(url) = crate::support::live_url() else {
        return;
    };
    let admin = connect(&url).await;
    let db63 = format!("pgsim_long_{}", "n".repeat(63 - 11));
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db63}"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db63}"))
        .await
        .unwrap();
    // The client asks for 70 bytes; PostgreSQL serves the first 63.
    let asked = format!("{db63}_extra_");
    let (dir, recorder, rec_url) = crate::support::recording(&url).await;
    let through = format!("{}/{asked}", rec_url.trim_end_matches("/postgres"));
    let live = connect(&through).await;
    let row = live
        .query_one("select current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), db63);
    drop(live);
    let summary = recorder.shutdown().await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db63} WITH (FORCE)"))
        .await
        .unwrap();
    assert!(
        summary.errors.is_empty() && summary.lost.is_empty(),
        "{summary}"
    );
    // Recorded under the name PostgreSQL used, found under the long one.
    let server = MockServer::builder()
        .fixtures(dir.path())
        .start()
        .await
        .unwrap();
    assert!(server.report().unused.iter().all(|u| *u.database == *db63));
    let replayed = connect(&server.url_for(&asked)).await;
    let row = replayed
        .query_one("select current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), db63);
    let report = server.shutdown().await;
    assert_eq!(report.missed, 0, "{report}");
}

#[tokio::test]
async fn an_unknown_message_type_is_refused_on_its_first_byte_as_postgresql_does() {
    let server = demo().start().await.unwrap();
    // PostgreSQL 15 answers a bad type byte at once, without waiting for
    // the length: FATAL 08P01 "invalid frontend message type 120".
    for sent in [&b"x"[..], b"p\0\0\0\x09pass\0"] {
        let mut s = raw_session(&server).await;
        s.write_all(sent).await.unwrap();
        let bytes = read_to_end(&mut s).await;
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(bytes.first(), Some(&b'E'), "{text}");
        assert!(text.contains("FATAL") && text.contains("08P01"), "{text}");
        let kind = sent[0];
        assert!(
            text.contains(&format!("invalid frontend message type {kind}\0")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_huge_miss_is_diagnosed_off_the_only_thread_of_a_current_thread_runtime() {
    // A plain #[tokio::test] runs the in-process server, this test and its
    // clients on one thread: a diagnostic computed on it would make the
    // other client wait for the huge miss's answer.
    let server = demo().start().await.unwrap();
    let (mut big, mut other) = (raw_session(&server).await, raw_session(&server).await);
    let huge = query(&format!("select '{}' as huge", "x".repeat(1 << 20)));
    // All but its last byte, read by the server while this task sleeps
    // (a pause, not a bound: the order below does not depend on it)...
    let (most, last) = huge.split_at(huge.len() - 1);
    big.write_all(most).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...then the last byte: the server takes up the huge miss while this
    // task yields, and only then does another client send its query.
    big.write_all(last).await.unwrap();
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    other.write_all(&query(DEMO_PIN)).await.unwrap();
    let order = Arc::new(AtomicUsize::new(0));
    let answered = |mut s: TcpStream, order: Arc<AtomicUsize>| async move {
        let (kinds, bytes) = read_until_ready(&mut s).await;
        (order.fetch_add(1, Ordering::SeqCst), kinds, bytes)
    };
    let (big_answer, other_answer) = tokio::join!(
        tokio::spawn(answered(big, Arc::clone(&order))),
        tokio::spawn(answered(other, Arc::clone(&order)))
    );
    let (big_at, big_kinds, big_bytes) = big_answer.unwrap();
    let (other_at, other_kinds, _) = other_answer.unwrap();
    assert_eq!(other_kinds.first(), Some(&b'T'), "the recorded rows");
    assert_eq!(big_kinds.first(), Some(&b'E'));
    let text = String::from_utf8_lossy(&big_bytes);
    assert!(
        text.contains("PGS01") && text.contains("Closest recorded query"),
        "{text}"
    );
    assert!(
        other_at < big_at,
        "the other client was answered only after the huge miss"
    );
}

/// The demo's small session (pgbench's scale query) with one recorded
/// COPY FROM STDIN instead of its exchanges, written by code (the demo
/// recorded no COPY). The stored key is the recorder's.
fn copy_fixture(data: &str) -> tempfile::TempDir {
    let (mut session, _) =
        pgsim::fixture::load_file(&demo_dir().join("session-0003.json")).unwrap();
    let mut ex: pgsim::fixture::Exchange = serde_json::from_value(serde_json::json!({
        "seq": 0,
        "key": "",
        "sql": "copy items (id, name) from stdin",
        "copy_in": { "data": data },
        "results": [{
            "tag": "COPY 1",
            "copy_in": { "format": "text", "columns": ["text", "text"] }
        }]
    }))
    .unwrap();
    ex.key = pgsim::replay::exchange_key(&ex, &pgsim::fixture::Rules::default()).to_string();
    session.exchanges = vec![ex];
    let dir = tempfile::tempdir().unwrap();
    let text = serde_json::to_string_pretty(&session).unwrap();
    std::fs::write(dir.path().join("session-0001.json"), text).unwrap();
    dir
}

/// Reads until a message of type `kind` has arrived whole (or EOF).
async fn read_until_kind(s: &mut TcpStream, kind: u8) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut i = 0;
        while i + 5 <= all.len() {
            let len = u32::from_be_bytes([all[i + 1], all[i + 2], all[i + 3], all[i + 4]]) as usize;
            if all[i] == kind && i + 1 + len <= all.len() {
                return all;
            }
            i += 1 + len;
        }
        let n = s.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return all;
        }
        all.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn copy_data_past_the_maximum_message_size_ends_the_copy_with_54000() {
    let dir = copy_fixture("4\tplum\n");
    let server = MockServer::builder()
        .fixtures(dir.path())
        .max_message_size(1 << 20)
        .start()
        .await
        .unwrap();
    let mut s = raw_session(&server).await;
    let copy = query("copy items (id, name) from stdin");
    s.write_all(&copy).await.unwrap();
    let bytes = read_until_kind(&mut s, b'G').await;
    assert_eq!(bytes.first(), Some(&b'G'), "CopyInResponse");
    // 1.5 MiB of CopyData, 64 KiB at a time, each message well under the
    // limit: the server held all of it until CopyDone (512 MiB sent made
    // `pgsim serve` 519 MiB), now the COPY ends once its data passes it.
    let mut data = BytesMut::new();
    data.put_u8(b'd');
    data.put_i32(4 + 65536);
    data.put_slice(&[b'x'; 65536]);
    let mut flood = BytesMut::new();
    for _ in 0..24 {
        flood.extend_from_slice(&data);
    }
    flood.extend_from_slice(b"c\0\0\0\x04");
    s.write_all(&flood).await.unwrap();
    let (kinds, bytes) = read_until_ready(&mut s).await;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(kinds, vec![b'E', b'Z'], "{text}");
    assert!(text.contains("C54000"), "{text}");
    assert!(text.contains("COPY data over 1048576 bytes"), "{text}");
    // The rest of that COPY was ignored; the recorded COPY still replays.
    s.write_all(&copy).await.unwrap();
    read_until_kind(&mut s, b'G').await;
    let mut recorded = BytesMut::new();
    recorded.put_u8(b'd');
    recorded.put_i32(4 + 7);
    recorded.put_slice(b"4\tplum\n");
    recorded.put_slice(b"c\0\0\0\x04");
    s.write_all(&recorded).await.unwrap();
    let (kinds, bytes) = read_until_ready(&mut s).await;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(kinds, vec![b'C', b'Z'], "{text}");
    assert!(text.contains("COPY 1"), "{text}");
    let report = server.shutdown().await;
    assert_eq!(report.missed, 0, "{report}");
}
