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
fn serve_takes_its_limits_from_the_environment_and_ends_on_sighup() {
    use std::io::{Read, Write};
    let mut command = Command::new(env!("CARGO_BIN_EXE_pgsim"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--fixtures"])
        .arg(demo_dir())
        .env("PGSIM_MAX_CONNECTIONS", "1")
        .env("PGSIM_IDLE_TIMEOUT", "3600");
    let (mut child, port, out) = start(command);
    // One session holds the only slot.
    let mut held = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    held.write_all(&crate::bad_input::startup_packet("pgsim_demo"))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"Z\0\0\0\x05I") {
        let n = held.read(&mut buf).unwrap();
        assert!(n > 0, "closed during startup: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    let psql = Command::new("psql")
        .args(["-X", "-A", "-t", "-c", "select 1"])
        .arg(format!(
            "host=127.0.0.1 port={port} user=postgres dbname=pgsim_demo sslmode=disable"
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&psql.stderr);
    assert!(!psql.status.success());
    assert!(
        stderr.contains("sorry, too many clients already"),
        "{stderr}"
    );
    // SIGHUP ends it as SIGINT does: the held session hears 57P01.
    let hup = Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut last = Vec::new();
    let _ = held.read_to_end(&mut last);
    let text = String::from_utf8_lossy(&last);
    assert!(text.contains("57P01"), "{text}");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    let rest: String = out.lines().map(|l| l.unwrap() + "\n").collect();
    assert!(rest.contains("1 sessions, 0 queries, 0 misses"), "{rest}");
}

#[test]
fn serve_out_of_file_descriptors_logs_once_and_recovers() {
    use std::io::{Read, Write};
    // 32 descriptors: about 20 connections, then accept fails (EMFILE).
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 32 && exec \"$0\" serve --listen 127.0.0.1:0 --fixtures \"$1\"")
        .arg(env!("CARGO_BIN_EXE_pgsim"))
        .arg(demo_dir())
        .stderr(Stdio::piped());
    let (mut child, port, out) = start(command);
    let mut stderr = child.0.stderr.take().expect("stderr");
    let mut held = Vec::new();
    // Sessions until one is not served: the server has no descriptor left
    // to accept it (the read timeout only tells "not served yet").
    loop {
        assert!(held.len() < 100, "the descriptor limit was never reached");
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(&crate::bad_input::startup_packet("pgsim_demo"))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let served = loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.ends_with(b"Z\0\0\0\x05I") {
                break true;
            }
        };
        held.push(s);
        if !served {
            break;
        }
    }
    // Every descriptor back: the server serves again.
    drop(held);
    let psql = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "select name from items where id = 99",
        ])
        .arg(format!(
            "host=127.0.0.1 port={port} user=postgres dbname=pgsim_demo sslmode=disable"
        ))
        .output()
        .unwrap();
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.0.wait().unwrap().success());
    drop(out);
    let mut said = String::new();
    stderr.read_to_string(&mut said).unwrap();
    // One line for the burst of failures, not one per failed accept.
    let failures = said.lines().filter(|l| l.contains("accepting on")).count();
    assert_eq!(failures, 1, "{said}");
    assert!(said.contains("Too many open files"), "{said}");
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

/// The recorded exchanges of a fixture directory, as the loader reads them.
fn exchange_count(dir: &std::path::Path) -> usize {
    let set = pgsim::fixture::load_dir(dir).expect("the set loads");
    assert!(set.rejected.is_empty(), "{:?}", set.rejected);
    set.sessions.iter().map(|s| s.session.exchanges.len()).sum()
}

fn demo(fixtures: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        std::ffi::OsStr::new("demo"),
        std::ffi::OsStr::new("--fixtures"),
    ];
    args.push(fixtures.as_os_str());
    let survey = demo_dir().with_file_name("survey");
    args.extend([
        std::ffi::OsStr::new("--survey-fixtures"),
        survey.as_os_str(),
    ]);
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    pgsim(&args)
}

#[test]
fn demo_replays_every_bundled_exchange_and_ends_in_one_verdict_line() {
    let (code, out, err) = demo(&demo_dir(), &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let n = exchange_count(&demo_dir());
    assert!(n > 600, "the bundled demo holds its {n} exchanges");
    let verdict = format!(
        "PASS: {n} of {n} recorded answers replayed identically, 0 unused, 0 missed; the survey is the recorded one byte for byte"
    );
    assert!(out.lines().any(|l| l == verdict), "{out}");
    assert!(out.contains("next: cargo run -- serve --fixtures"), "{out}");
    // Short: the per-exchange listing is behind --list.
    assert!(out.lines().count() <= 12, "{out}");
    assert!(!out.contains("unused ["), "{out}");

    let (code, listed, err) = demo(&demo_dir(), &["--list"]);
    assert_eq!(code, 0, "{listed}\n{err}");
    let same = listed
        .lines()
        .filter(|l| l.trim_start().starts_with("same "))
        .count();
    assert_eq!(same, n, "one line per exchange:\n{listed}");
    assert!(
        listed.contains("survey_shop"),
        "the survey per database:\n{listed}"
    );
}

#[test]
fn demo_names_an_altered_answer_and_an_edited_query_and_exits_non_zero() {
    // An answer no server could give for its column type: the mock cannot
    // send it in binary, as the client that recorded it asked.
    let dir = copy_fixtures(&demo_dir());
    edit(dir.path(), "session-0001.json", |v| {
        let ex = &mut v["exchanges"][1];
        assert_eq!(
            ex["sql"], "select id, name from items where id = $1 and active = $2",
            "the exchange this test alters"
        );
        ex["results"][0]["rows"][0][0] = "one".into();
    });
    let (code, out, err) = demo(dir.path(), &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("at session-0001.json seq 1\n"), "{out}");
    assert!(out.contains("SQLSTATE PGS02 (was ok)"), "{out}");
    let n = exchange_count(dir.path());
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("FAIL: {} of {n} recorded answers", n - 1))),
        "{out}"
    );

    // A query edited by hand answers what it answers, but its stored key
    // says it is not what was recorded.
    let dir = copy_fixtures(&demo_dir());
    edit(dir.path(), "session-0001.json", |v| {
        v["exchanges"][0]["sql"] = "select * from items order by id desc".into();
    });
    let (code, out, err) = demo(dir.path(), &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("session-0001.json seq 0: the stored key")
            && out.contains("the file was edited after it was recorded"),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("FAIL: ")), "{out}");
}

/// Runs `pgsim ARGS` to completion: (exit code, stdout, stderr).
fn pgsim(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args(args)
        .output()
        .expect("pgsim runs");
    (
        out.status.code().expect("pgsim exits, not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn inspect(selectors: &[&str]) -> (i32, String, String) {
    let dir = demo_dir();
    let mut args = vec![std::ffi::OsStr::new("inspect"), dir.as_os_str()];
    for s in selectors {
        args.extend([std::ffi::OsStr::new("--show"), std::ffi::OsStr::new(s)]);
    }
    pgsim(&args)
}

#[test]
fn inspect_show_prints_the_parameters_columns_and_rows_of_an_exchange() {
    let (code, out, err) = inspect(&["seq:1"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "== ",
        "session-0001.json: database \"pgsim_demo\", user \"postgres\"",
        "-- seq 1, phase execute",
        "sql: select id, name from items where id = $1 and active = $2",
        "  $1 int4 (23) = '1'\n  $2 bool (16) = 't'\n",
        "result: SELECT 1",
        "  columns: id int4 (23), name text (25)",
        "   id | name\n  ----+-------\n   1  | apple\n  (1 row)\n",
        "1 exchange(s) of 1 file(s) shown",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("seq 2,"), "only seq 1:\n{out}");
}

#[test]
fn inspect_show_selects_by_sql_and_file_and_prints_errors_in_full() {
    let (code, out, err) = inspect(&["sql:no_such_table"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("-- seq 10, phase parse")
            && out.contains("    ERROR 42P01: relation \"no_such_table\" does not exist\n")
            && out.contains("      position: 15\n"),
        "{out}"
    );
    // Repeated selectors narrow: this file's exchanges whose SQL matches.
    let (code, out, err) = inspect(&[
        "file:session-0001.json",
        "sql:^select name from items where name = any",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("   apple\n   pear\n  (2 rows)\n"), "{out}");
    assert!(out.contains("  $1 _text (1009) = '{apple,pear}'"), "{out}");
    assert!(out.contains("1 exchange(s) of 1 file(s) shown"), "{out}");
    // A path names the file too.
    let path = demo_dir().join("session-0003.json");
    let (code, out, err) = inspect(&[path.to_str().expect("a UTF-8 path")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 exchange(s) of 1 file(s) shown"), "{out}");
}

#[test]
fn inspect_show_refuses_unknown_and_unmatched_selectors() {
    let (code, out, err) = inspect(&["rows:3"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("unknown selector") && err.contains("seq:N") && err.contains("sql:REGEX"),
        "{err}"
    );
    let (code, _, err) = inspect(&["sql:("]);
    assert_eq!(code, 1);
    assert!(err.contains("not a regular expression"), "{err}");
    let (code, out, err) = inspect(&["seq:99999"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("no exchange of")
            && err.contains("matches --show seq:99999")
            && err.contains("seq 0 to"),
        "{err}"
    );
}

#[test]
fn inspect_without_show_still_summarises_and_lists() {
    let dir = demo_dir();
    let (code, out, err) = pgsim(&["inspect".as_ref(), dir.as_os_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": 10 sessions, "), "{out}");
    assert!(!out.contains("-- seq"), "{out}");
    let (code, out, _) = pgsim(&["inspect".as_ref(), dir.as_os_str(), "--exchanges".as_ref()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("  #10     select * from no_such_table"),
        "{out}"
    );
}

/// A copy of a bundled fixture directory (its fixture files, not what
/// `expected/` holds) to alter.
pub(crate) fn copy_fixtures(from: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    crate::support::copy_tree(from, dir.path(), &|p| {
        if p.is_dir() {
            !p.ends_with("expected")
        } else {
            p.extension().is_some_and(|e| e == "json")
        }
    });
    dir
}

/// Rewrites one fixture file of `dir` through `edit` on its JSON.
pub(crate) fn edit(dir: &std::path::Path, file: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("the copied fixture");
    let mut session: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    edit(&mut session);
    std::fs::write(&path, serde_json::to_string_pretty(&session).expect("JSON")).expect("write");
}

/// The exchange with this seq in a session's JSON.
fn exchange(session: &mut serde_json::Value, seq: u64) -> &mut serde_json::Value {
    session["exchanges"]
        .as_array_mut()
        .expect("exchanges")
        .iter_mut()
        .find(|e| e["seq"] == seq)
        .unwrap_or_else(|| panic!("no exchange seq {seq}"))
}

fn diff(recorded: &std::path::Path, now: &std::path::Path) -> (i32, String, String) {
    pgsim(&["diff".as_ref(), recorded.as_os_str(), now.as_os_str()])
}

#[test]
fn diff_of_a_copy_finds_nothing_and_exits_0() {
    let copy = copy_fixtures(&demo_dir());
    let (code, out, err) = diff(&demo_dir(), copy.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("no differences: 671 exchanges the same"),
        "{out}"
    );
}

#[test]
fn diff_names_each_changed_answer_and_exits_1() {
    let copy = copy_fixtures(&demo_dir());
    edit(copy.path(), "session-0001.json", |s| {
        // A value: row 2 of `select * from items order by id`, column price.
        exchange(s, 0)["results"][0]["rows"][1][2] = "12.00".into();
        // A column: `price` of `select name, price, scores ... id = 1`.
        let r = &mut exchange(s, 5)["results"][0];
        r["columns"].as_array_mut().expect("columns").remove(1);
        for row in r["rows"].as_array_mut().expect("rows") {
            row.as_array_mut().expect("a row").remove(1);
        }
        // An error code, a tag, and an error where there was none.
        exchange(s, 10)["results"][0]["error"]["code"] = "42703".into();
        exchange(s, 17)["results"][0]["tag"] = "INSERT 0 0".into();
        exchange(s, 26)["results"][0] = serde_json::json!({
            "error": {"severity": "ERROR", "code": "42P01", "message": "relation \"items\" does not exist"}
        });
        // Seq numbers and the recorder's identity are not answers.
        exchange(s, 33)["seq"] = 9033.into();
        s["pgsim_version"] = "9.9.9".into();
        s["server"]["backend_pid"] = 1.into();
    });
    std::fs::rename(
        copy.path().join("session-0002.json"),
        copy.path().join("session-0102.json"),
    )
    .expect("rename a file");
    let (code, out, err) = diff(&demo_dir(), copy.path());
    assert_eq!(code, 1, "{out}{err}");
    for want in [
        "database \"pgsim_demo\":\n",
        "  changed: select * from items order by id\n      at session-0001.json seq 0\n      row 2 column price: recorded '12345678.99', now '12.00'\n",
        "  changed: select name, price, scores from items where id = $1 with $1 = '1'\n",
        "      column price dropped (was numeric (1700))\n",
        "      SQLSTATE 42703 (was 42P01)\n",
        "      tag INSERT 0 1 -> INSERT 0 0\n",
        "  changed: select id, name from items order by id\n      at session-0001.json seq 26\n      SQLSTATE 42P01 (was ok)\n",
        "5 exchanges differ: 5 changed, 0 removed, 0 added; 666 the same",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn diff_names_a_removed_and_an_added_exchange_without_shifting_the_rest() {
    let copy = copy_fixtures(&demo_dir());
    edit(copy.path(), "session-0001.json", |s| {
        let exchanges = s["exchanges"].as_array_mut().expect("exchanges");
        // The first of several `select count(*) from events`: the later
        // ones still pair with their own recordings.
        let at = exchanges
            .iter()
            .position(|e| e["seq"] == 16)
            .expect("seq 16");
        exchanges.remove(at);
        let mut new = exchanges[0].clone();
        new["seq"] = 5000.into();
        new["key"] = "0".repeat(64).into();
        new["sql"] = "select 'new'".into();
        exchanges.push(new);
    });
    let (code, out, err) = diff(&demo_dir(), copy.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "  removed: select count(*) from events\n      was at session-0001.json seq 16\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("  added: select 'new'\n      now at session-0001.json seq 5000\n"),
        "{out}"
    );
    assert!(
        out.contains("2 exchanges differ: 0 changed, 1 removed, 1 added"),
        "{out}"
    );
}

#[test]
fn diff_compares_the_subdirectories_of_a_set_apart() {
    let toolkit = demo_dir().join("../toolkit");
    let copy = copy_fixtures(&toolkit);
    edit(copy.path(), "queries/session-0001.json", |s| {
        // Row 2500 of the 5000 streamed rows.
        exchange(s, 11)["results"][0]["rows"][2499][0] = "-1".into();
    });
    let (code, out, err) = diff(&toolkit, copy.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("database \"pgsim_toolkit\" in queries:\n  changed: select g from generate_series(1, $1) g with $1 = '5000'\n"),
        "{out}"
    );
    assert!(
        out.contains("      row 2500 column g: recorded '2500', now '-1'\n"),
        "{out}"
    );
    assert!(out.contains("1 exchanges differ"), "{out}");
}

#[test]
fn diff_exits_2_naming_a_missing_directory_or_a_file_that_does_not_load() {
    let copy = copy_fixtures(&demo_dir());
    let missing = copy.path().join("nowhere");
    let (code, _, err) = diff(&demo_dir(), &missing);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nowhere: not a fixture directory"), "{err}");
    std::fs::write(
        copy.path().join("session-0011.json"),
        "{\n  \"format_version\": 2,\n  oops\n}",
    )
    .expect("write a broken fixture");
    let (code, out, err) = diff(copy.path(), &demo_dir());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("session-0011.json: line 3, column 3"), "{err}");
    assert!(!out.contains("changed"), "nothing is compared: {out}");
}

/// `pgsim migrate --url <live>/mig_cli --dir DIR ...`.
fn migrate(url: &str, dir: &std::path::Path, action: &[&str]) -> (i32, String, String) {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "migrate".as_ref(),
        "--url".as_ref(),
        url.as_ref(),
        "--dir".as_ref(),
        dir.as_os_str(),
    ];
    args.extend(action.iter().map(|a| std::ffi::OsStr::new(*a)));
    pgsim(&args)
}

#[tokio::test]
async fn migrate_prints_status_applies_reverts_and_refuses_a_changed_file() {
    let Some(url) = crate::support::live_url() else {
        return;
    };
    let admin = crate::support::connect(&url).await;
    for sql in [
        "drop database if exists mig_cli with (force)",
        "create database mig_cli",
    ] {
        admin
            .batch_execute(sql)
            .await
            .expect("a fresh mig_cli database");
    }
    let db_url = crate::support::with_database(&url, "mig_cli");
    let dir = pgsim_recorder::toolkit::migrations_dir();

    let (code, out, err) = migrate(&db_url, &dir, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "1 create_items pending\n2 add_price pending\n3 index_name pending\n"
    );
    let (code, out, err) = migrate(&db_url, &dir, &["up", "2"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "applied 1 create_items\napplied 2 add_price\n"),
        "{err}"
    );
    let (code, out, err) = migrate(&db_url, &dir, &["up"]);
    assert_eq!((code, out.as_str()), (0, "applied 3 index_name\n"), "{err}");
    let (code, out, err) = migrate(&db_url, &dir, &["down", "2"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "reverted 3 index_name\nreverted 2 add_price\n"),
        "{err}"
    );

    let changed = tempfile::tempdir().expect("temp dir");
    crate::support::copy_tree(&dir, changed.path(), &|_| true);
    let first = changed.path().join("1_create_items.up.sql");
    let mut sql = std::fs::read_to_string(&first).expect("read");
    sql.push_str("-- edited\n");
    std::fs::write(&first, sql).expect("edit");
    let (code, out, err) = migrate(&db_url, changed.path(), &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.starts_with("1 create_items applied (changed)\n"),
        "{out}"
    );
    let (code, out, err) = migrate(&db_url, changed.path(), &["up"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("migration 1 was applied from a different")
            && err.contains("1_create_items.up.sql")
            && err.contains("recorded checksum"),
        "{err}"
    );

    let (code, out, err) = migrate(&db_url, &dir, &["down", "5"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "reverted 1 create_items\n"),
        "{err}"
    );
    admin
        .batch_execute("drop database mig_cli with (force)")
        .await
        .expect("drop mig_cli");
}
