//! `N` toolkit `query_one` round trips against an in-process mock server
//! on a synthetic pgbench-shaped set, for counting instructions under
//! valgrind (`benches/instructions.sh`'s `toolkit` part): instructions at
//! `N` minus instructions at 0, over `N`, is one round trip, client and
//! server, with start-up taken out.
//!
//! `cargo run --release --example toolkit_round_trips -- N [traced] [hook]`
//!
//! `traced`: a tracing-subscriber registry with a layer that formats every
//! field of every span and event on every thread (as a log layer would).
//! `hook`: one hook that does nothing.

#[path = "../benches/support/formatting.rs"]
mod formatting;
#[path = "../benches/support/synth.rs"]
mod synth;

use std::hint::black_box;

use pgsim::fixture::{FixtureSet, LoadedSession};
use tracing_subscriber::layer::SubscriberExt;

/// A hook that does nothing.
struct Noop;
impl pgsim::client::Hook for Noop {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: i32 = args
        .first()
        .ok_or("usage: toolkit_round_trips N [traced] [hook]")?
        .parse()?;
    let traced = args.iter().any(|a| a == "traced");
    let hook = args.iter().any(|a| a == "hook");
    if traced {
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(formatting::Formatting),
        )?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let set = FixtureSet {
            sessions: vec![LoadedSession {
                path: "synthetic".into(),
                session: synth::session(0, 1000),
            }],
            ..FixtureSet::default()
        };
        let server = pgsim::MockServer::builder()
            .fixture_set(set)
            .start()
            .await?;
        let mut builder = pgsim::Client::builder()
            .url(server.url_for("bench"))
            .max_connections(1);
        if hook {
            builder = builder.hook(Noop);
        }
        let client = builder.build().await?;
        for i in 0..n {
            let aid = i % 1000 + 1;
            black_box(client.query_one(synth::SQL, &[&aid]).await?);
        }
        client.close().await?;
        drop(server.shutdown().await);
        Ok(())
    })
}
