//! Memory per idle connection of a mock server: opens N sessions (startup
//! done, ReadyForQuery read), holds them, and reports the server's resident
//! memory before and after, per connection; then has each send one query
//! (the pinned demo query) and reports again.
//!
//! Against a `pgsim serve` process (its RSS alone, read from /proc/PID):
//!
//! ```text
//! cargo build --release
//! target/release/pgsim serve --fixtures fixtures/demo --listen 127.0.0.1:6543 --max-connections 1100 &
//! cargo run --release --example idle_connections -- --addr 127.0.0.1:6543 --pid $! --connections 1000
//! ```
//!
//! Without `--addr`, an in-process server is measured (this process's RSS,
//! which then includes the client side of each connection).

#[path = "../benches/support/rss.rs"]
mod rss;
use rss::rss_kib;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
struct Args {
    /// A running server (default: start one in this process).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// The server's process id, whose memory is read (with --addr).
    #[arg(long)]
    pid: Option<u32>,
    /// Sessions to open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
}

fn startup_packet() -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for s in ["user", "postgres", "database", "pgsim_demo"] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = (body.len() as i32 + 4).to_be_bytes().to_vec();
    p.extend(body);
    p
}

fn query(sql: &str) -> Vec<u8> {
    let mut m = vec![b'Q'];
    m.extend_from_slice(&(sql.len() as i32 + 5).to_be_bytes());
    m.extend_from_slice(sql.as_bytes());
    m.push(0);
    m
}

/// Reads until a ReadyForQuery ends what arrived.
async fn until_ready(s: &mut TcpStream) -> std::io::Result<()> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        all.extend_from_slice(&buf[..n]);
        if all.len() >= 6 && all[all.len() - 6] == b'Z' {
            return Ok(());
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let (server, addr, pid, what) = match args.addr {
        Some(addr) => (None, addr, args.pid, "the server process"),
        None => {
            let server = pgsim::MockServer::builder()
                .fixtures(dir)
                .max_connections(args.connections + 10)
                .start()
                .await?;
            let addr = server.addr();
            (
                Some(server),
                addr,
                None,
                "this process (server and clients)",
            )
        }
    };
    // One session first: what every server allocates once is not counted.
    let mut warm = TcpStream::connect(addr).await?;
    warm.write_all(&startup_packet()).await?;
    until_ready(&mut warm).await?;
    warm.write_all(&query("select * from items order by id"))
        .await?;
    until_ready(&mut warm).await?;
    let before = rss_kib(pid);
    let mut conns = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(&startup_packet()).await?;
        until_ready(&mut s).await?;
        conns.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let idle = rss_kib(pid);
    for s in &mut conns {
        s.write_all(&query("select * from items order by id"))
            .await?;
        until_ready(s).await?;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let queried = rss_kib(pid);
    let n = args.connections as f64;
    println!("RSS of {what}: {before} KiB with one session");
    println!(
        "{} idle sessions (startup done): {idle} KiB, +{} KiB: {:.1} KiB per connection",
        args.connections,
        idle.saturating_sub(before),
        idle.saturating_sub(before) as f64 / n
    );
    println!(
        "after one query each: {queried} KiB, +{} KiB: {:.1} KiB per connection",
        queried.saturating_sub(before),
        queried.saturating_sub(before) as f64 / n
    );
    drop(conns);
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
