//! The physical floor under every replay figure: a raw loopback TCP
//! ping-pong between two processes, one small request and one small
//! answer per round trip (the sizes of a pgbench `-S` Bind/Execute/Sync and
//! its answer), no protocol at all. `benches/compare.sh` runs the server
//! half as its own process and reports replay and the pgwire floor as a
//! fraction of this rate.
//!
//! ```text
//! tcp_pingpong serve 127.0.0.1:6607
//! tcp_pingpong client 127.0.0.1:6607 50000      # prints round trips per second
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Instant;

/// Request and answer sizes: what pgbench -S -M prepared sends per
/// transaction and what the server answers, roughly.
const REQUEST: usize = 60;
const ANSWER: usize = 40;

fn serve(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    for stream in listener.incoming() {
        let mut stream = stream?;
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let mut request = [0u8; REQUEST];
            let answer = [b'x'; ANSWER];
            while stream.read_exact(&mut request).is_ok() {
                if stream.write_all(&answer).is_err() {
                    return;
                }
            }
        });
    }
    Ok(())
}

fn client(addr: &str, rounds: u64) -> std::io::Result<f64> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let request = [b'q'; REQUEST];
    let mut answer = [0u8; ANSWER];
    let t = Instant::now();
    for _ in 0..rounds {
        stream.write_all(&request)?;
        stream.read_exact(&mut answer)?;
    }
    Ok(rounds as f64 / t.elapsed().as_secs_f64())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve", addr] => serve(addr).map(|()| None),
        ["client", addr, rounds] => match rounds.parse() {
            Ok(n) => client(addr, n).map(Some),
            Err(_) => Err(std::io::Error::other(format!("not a count: {rounds}"))),
        },
        _ => {
            eprintln!("usage: tcp_pingpong serve ADDR | tcp_pingpong client ADDR ROUNDS");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(Some(rate)) => {
            println!("{rate:.0}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp_pingpong: {e}");
            ExitCode::FAILURE
        }
    }
}
