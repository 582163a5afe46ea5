//! The `pgsim` binary itself.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::demo_dir;

/// Kills the child if the test fails before it ends it.
pub(crate) struct Reap(pub(crate) std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `pgsim serve` or `pgsim record` and returns it with its port and
/// its stdout, kept open so the summary it prints on exit has somewhere to go.
pub(crate) fn start(mut command: Command) -> (Reap, u16, impl BufRead) {
    let mut child = Reap(
        command
            .stdout(Stdio::piped())
            .spawn()
            .expect("pgsim starts"),
    );
    let mut first = String::new();
    let mut stdout = BufReader::new(child.0.stdout.take().expect("stdout"));
    stdout.read_line(&mut first).expect("first line");
    let port = first
        .split_whitespace()
        .find_map(|w| w.rsplit(':').next()?.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    (child, port, stdout)
}

#[test]
fn serve_prints_where_it_listens_and_a_summary_on_sigterm() {
    let mut child = Reap(
        Command::new(env!("CARGO_BIN_EXE_pgsim"))
            .args(["serve", "--listen", "127.0.0.1:0", "--fixtures"])
            .arg(demo_dir())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("pgsim serve: replaying"), "{first}");
    let port = first.trim().rsplit(':').next().unwrap().to_owned();
    let psql = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "select name from items where id = 99",
            "-c",
            "select count(*) from events",
        ])
        .arg(format!(
            "host=127.0.0.1 port={port} user=postgres dbname=pgsim_demo sslmode=disable"
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&psql.stdout);
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    // The first query was sent only by psql's recorded session, whose
    // count is 5 (the tokio-postgres session's first is 3).
    assert_eq!(stdout.trim(), "5");
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    for line in out.lines() {
        rest.push_str(&line.unwrap());
        rest.push('\n');
    }
    assert!(rest.contains("1 sessions, 2 queries, 0 misses"), "{rest}");
}

#[test]
fn a_corrupt_fixture_stops_serve_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("session-0001.json"),
        "{\n  \"format_version\": 1,\n  oops\n}",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--fixtures"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("session-0001.json: line 3, column 3"), "{err}");
}

#[test]
fn serve_names_a_refused_file_and_serves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        demo_dir().join("session-0003.json"),
        dir.path().join("session-0001.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("session-0002.json"),
        "{\n  \"format_version\": 2,\n  oops\n}",
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--fixtures"])
        .arg(dir.path())
        .stderr(Stdio::piped());
    let (mut child, port, _out) = start(command);
    let psql = Command::new("psql")
        .args(["-X", "-A", "-t", "-c", "select 1"])
        .arg(format!(
            "host=127.0.0.1 port={port} user=postgres dbname=pgsim_demo sslmode=disable"
        ))
        .output()
        .unwrap();
    // Serving: the server answers (a miss is an answer), it did not exit.
    let err = String::from_utf8_lossy(&psql.stderr);
    assert!(!err.contains("Connection refused"), "{err}");
    let _ = child.0.kill();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("session-0002.json: line 3, column 3"),
        "{stderr}"
    );
    assert!(stderr.contains("1 fixture file(s) refused"), "{stderr}");
}

#[test]
fn demo_replays_the_bundled_fixtures_and_checks_every_answer() {
    let out = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(["demo", "--fixtures"])
        .arg(demo_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" 0 differed"), "{text}");
    assert!(text.contains("0 misses"), "{text}");
}
