//! Replay hot path: fixture lookup at several sizes, value encoding per
//! type, fixture-set load time, and a full round trip over loopback.

#[path = "support/formatting.rs"]
mod formatting;
#[path = "support/synth.rs"]
mod synth;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use pgsim::fixture::{FixtureSet, LoadedSession};
use pgsim::key::{query_key, ParamValue};
use pgsim::types::{binary_to_text, text_to_binary};
use pgsim::Replay;

fn set_of(n: u64) -> FixtureSet {
    let per_file = 10_000;
    let mut sessions = Vec::new();
    let mut first = 0;
    while first < n {
        let count = per_file.min(n - first);
        sessions.push(LoadedSession {
            path: format!("synthetic-{first}").into(),
            session: synth::session(first, count),
        });
        first += count;
    }
    FixtureSet {
        sessions,
        ..FixtureSet::default()
    }
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    for n in [10u64, 10_000, 1_000_000] {
        let replay = Replay::new(set_of(n));
        let keys: Vec<_> = (0..n.min(1024))
            .map(|i| query_key(synth::SQL, &[ParamValue::Text(&(i + 1).to_string())]))
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % keys.len();
                black_box(replay.lookup("bench", &keys[i]))
            })
        });
    }
    group.finish();
}

fn codecs(c: &mut Criterion) {
    let samples: [(&str, u32, &str); 8] = [
        ("int4", 23, "123456"),
        ("int8", 20, "-9223372036854775808"),
        ("float8", 701, "1.2345678901234567e+17"),
        ("numeric", 1700, "12345678.99"),
        ("text", 25, "the quick brown fox"),
        ("timestamptz", 1184, "2024-01-02 03:04:05.123456+00"),
        ("uuid", 2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        ("int4[]", 1007, "{1,2,3,NULL,5}"),
    ];
    let mut group = c.benchmark_group("codec");
    for (name, oid, text) in samples {
        let Ok(bin) = text_to_binary(oid, text) else {
            continue;
        };
        group.bench_function(format!("{name}/text->binary"), |b| {
            b.iter(|| text_to_binary(oid, black_box(text)))
        });
        group.bench_function(format!("{name}/binary->text"), |b| {
            b.iter(|| binary_to_text(oid, black_box(&bin)))
        });
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    use pgsim::replay::{LoadOptions, CACHE_DIR};
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let with = |index_cache| LoadOptions {
        index_cache,
        ..LoadOptions::default()
    };
    for n in [10_000u64, 100_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        synth::write_set(dir.path(), n, 10_000).expect("write synthetic set");
        // Every start after the first: the index cache is there.
        Replay::load_with(dir.path(), &with(true)).expect("load");
        group.bench_with_input(BenchmarkId::new("index cache", n), &n, |b, _| {
            b.iter(|| Replay::load_with(dir.path(), &with(true)).expect("load"))
        });
        // The first start: JSON parsed and the cache written.
        group.bench_with_input(BenchmarkId::new("first start", n), &n, |b, _| {
            b.iter_batched(
                || std::fs::remove_dir_all(dir.path().join(CACHE_DIR)),
                |_| Replay::load_with(dir.path(), &with(true)).expect("load"),
                BatchSize::PerIteration,
            )
        });
        group.bench_with_input(BenchmarkId::new("no cache", n), &n, |b, _| {
            b.iter(|| Replay::load_with(dir.path(), &with(false)).expect("load"))
        });
    }
    group.finish();
}

/// A mock server on a synthetic set of 1,000 pgbench-shaped exchanges.
async fn bench_server() -> pgsim::MockServer {
    pgsim::MockServer::builder()
        .fixture_set(set_of(1000))
        .start()
        .await
        .expect("server")
}

/// The runtime the in-process server benches run on (two workers, as the
/// machine has two cores).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A tokio-postgres client of `server`'s database `bench`, its connection
/// driven by a task.
async fn connect(
    server: &pgsim::MockServer,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let (client, conn) = tokio_postgres::connect(&server.url_for("bench"), tokio_postgres::NoTls)
        .await
        .expect("connect");
    (client, tokio::spawn(conn))
}

/// What a test pays to start a mock server on a small set of its own and
/// get its first answer, in-process.
fn start(c: &mut Criterion) {
    let rt = runtime();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let small = tempfile::tempdir().expect("tempdir");
    synth::write_set(small.path(), 100, 100).expect("write synthetic set");
    let mut group = c.benchmark_group("start");
    for (name, dir) in [
        ("100 exchanges", small.path()),
        ("bundled demo", demo.as_path()),
    ] {
        group.bench_function(BenchmarkId::new("start and shut down", name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let server = pgsim::MockServer::builder()
                        .fixtures(dir)
                        .start()
                        .await
                        .expect("server");
                    server.shutdown().await
                })
            })
        });
    }
    group.bench_function(
        "start, connect, first answer, shut down/100 exchanges",
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    let server = pgsim::MockServer::builder()
                        .fixtures(small.path())
                        .start()
                        .await
                        .expect("server");
                    let (client, conn) = connect(&server).await;
                    let rows = client.query(synth::SQL, &[&1i32]).await.expect("replayed");
                    black_box(rows);
                    drop(client);
                    let _ = conn.await;
                    server.shutdown().await
                })
            })
        },
    );
    group.finish();
}

fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let (server, client) = rt.block_on(async {
        let server = bench_server().await;
        let (client, _conn) = connect(&server).await;
        (server, client)
    });
    let stmt = rt.block_on(client.prepare(synth::SQL)).expect("prepare");
    c.bench_function("round trip/prepared select", |b| {
        let mut i = 0i32;
        b.iter_batched(
            || {
                i = i % 1000 + 1;
                i
            },
            |aid| {
                rt.block_on(client.query_one(&stmt, &[&aid]))
                    .expect("answer")
            },
            BatchSize::SmallInput,
        )
    });
    // The same query through the toolkit: pool acquire, parameter count,
    // read-only routing check and the per-connection statement cache.
    let toolkit = rt
        .block_on(
            pgsim::Client::builder()
                .url(server.url_for("bench"))
                .max_connections(1)
                .build(),
        )
        .expect("toolkit client");
    c.bench_function("round trip/toolkit query_one", |b| {
        let mut i = 0i32;
        b.iter_batched(
            || {
                i = i % 1000 + 1;
                i
            },
            |aid| {
                rt.block_on(toolkit.query_one(synth::SQL, &[&aid]))
                    .expect("answer")
            },
            BatchSize::SmallInput,
        )
    });
    // What one scrape of /metrics costs the server (the encoding; the
    // per-query counting is inside the round trips above).
    c.bench_function("metrics/text", |b| {
        b.iter(|| black_box(server.metrics_text()))
    });
    drop(toolkit);
    drop(client);
    drop(server);
}

/// A hook that does nothing: what calling the hooks costs.
struct NoopHook;
impl pgsim::client::Hook for NoopHook {}

/// The round trips again, with a subscriber on every thread (server and
/// client), and with a hook: what tracing and hooks cost. Without them
/// (`round_trip`) the metrics are still counted, as they always are.
fn round_trip_observed(c: &mut Criterion) {
    use tracing_subscriber::layer::SubscriberExt;
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(formatting::Formatting));
    let on_workers = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // Kept for the thread's life: the guard is never dropped.
            std::mem::forget(tracing::dispatcher::set_default(&on_workers));
        })
        .build()
        .expect("runtime");
    let traced = |f: &mut dyn FnMut()| tracing::dispatcher::with_default(&dispatch, f);
    let (server, client, toolkit) = rt.block_on(async {
        let server = bench_server().await;
        let (client, _conn) = connect(&server).await;
        let toolkit = pgsim::Client::builder()
            .url(server.url_for("bench"))
            .max_connections(1)
            .build()
            .await
            .expect("toolkit client");
        (server, client, toolkit)
    });
    let stmt = rt.block_on(client.prepare(synth::SQL)).expect("prepare");
    let mut next = {
        let mut i = 0i32;
        move || {
            i = i % 1000 + 1;
            i
        }
    };
    c.bench_function("round trip/prepared select, traced", |b| {
        b.iter_batched(
            &mut next,
            |aid| {
                traced(&mut || {
                    black_box(
                        rt.block_on(client.query_one(&stmt, &[&aid]))
                            .expect("answer"),
                    );
                })
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("round trip/toolkit query_one, traced", |b| {
        b.iter_batched(
            &mut next,
            |aid| {
                traced(&mut || {
                    black_box(
                        rt.block_on(toolkit.query_one(synth::SQL, &[&aid]))
                            .expect("answer"),
                    );
                })
            },
            BatchSize::SmallInput,
        )
    });
    // The hook without a subscriber: the runtime's workers have one, so
    // this runs on a plain runtime.
    drop((toolkit, client, server));
    drop(rt);
    let plain = runtime();
    let (server, hooked) = plain.block_on(async {
        let server = bench_server().await;
        let hooked = pgsim::Client::builder()
            .url(server.url_for("bench"))
            .max_connections(1)
            .hook(NoopHook)
            .build()
            .await
            .expect("hooked client");
        (server, hooked)
    });
    c.bench_function("round trip/toolkit query_one, one hook", |b| {
        b.iter_batched(
            &mut next,
            |aid| {
                black_box(
                    plain
                        .block_on(hooked.query_one(synth::SQL, &[&aid]))
                        .expect("answer"),
                )
            },
            BatchSize::SmallInput,
        )
    });
    drop(hooked);
    drop(server);
}

criterion_group!(
    benches,
    lookup,
    codecs,
    load,
    start,
    round_trip,
    round_trip_observed
);
criterion_main!(benches);
