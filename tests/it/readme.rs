//! README.md is checked, not trusted. Its Rust blocks are doctests (the
//! crate's docs include it). Its shell blocks are tagged: `sh offline`
//! blocks run here as they are, with `pgsim` and `cargo run --` being the
//! binary just built and a free port for 6543; `sh live` blocks need a
//! server, and every `pgsim` subcommand and flag they use must exist;
//! `sh ci` is what `.ci/run` runs, word for word.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One fenced shell block: its tag (`offline`, `live`, `ci`), first line
/// number and text.
struct Block {
    tag: String,
    line: usize,
    text: String,
}

fn shell_blocks() -> Vec<Block> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        if let Some(info) = line.strip_prefix("```") {
            match open.take() {
                Some((info, at, text)) => {
                    let mut words = info.split_whitespace();
                    if words.next() == Some("sh") {
                        let tag = words.next().unwrap_or("").to_owned();
                        blocks.push(Block {
                            tag,
                            line: at,
                            text,
                        });
                    }
                }
                None => open = Some((info.to_owned(), i + 1, String::new())),
            }
        } else if let Some((_, _, text)) = open.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    assert!(open.is_none(), "README.md ends inside a code block");
    blocks
}

#[test]
fn every_shell_block_of_the_readme_is_tagged() {
    let blocks = shell_blocks();
    assert!(blocks.len() >= 8, "the README's shell blocks were found");
    for b in &blocks {
        assert!(
            ["offline", "live", "ci"].contains(&b.tag.as_str()),
            "README.md line {}: a shell block tagged {:?}; tag it `sh offline` (runs in this test), `sh live` (needs a server) or `sh ci`",
            b.line,
            b.tag
        );
    }
}

#[test]
fn the_readme_test_command_is_what_ci_runs() {
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    let blocks = shell_blocks();
    let commands: Vec<&Block> = blocks.iter().filter(|b| b.tag == "ci").collect();
    assert_eq!(commands.len(), 1, "one test command in the README");
    let command = commands[0].text.trim();
    assert!(
        ci.lines().any(|l| l.trim() == command),
        ".ci/run does not run the README's test command {command:?}"
    );
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    l.local_addr().expect("its address").port()
}

/// The block as a bash script: `pgsim` and `cargo run --` are the binary
/// under test, 6543 is `port`, and a command sent to the background is
/// waited for until it prints its first line (pgsim serve says where it
/// listens once it does).
fn script(block: &Block, port: u16) -> String {
    let mut out = String::from(
        r#"set -euo pipefail
# A block that fails midway leaves no server behind.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
pgsim() { "$PGSIM_BIN" "$@"; }
cargo() {
    if [ "${1:-}" = run ] && [ "${2:-}" = -- ]; then shift 2; "$PGSIM_BIN" "$@";
    else echo "README runs 'cargo $*': only 'cargo run -- ...' is run here" >&2; return 2; fi
}
"#,
    );
    let mut joined = String::new();
    let mut background = 0;
    for line in block.text.lines() {
        let code = line.split(" #").next().unwrap_or("").trim_end();
        let code = if code.trim_start().starts_with('#') {
            ""
        } else {
            code
        };
        if let Some(head) = code.strip_suffix('\\') {
            joined.push_str(head);
            continue;
        }
        joined.push_str(code);
        let command = std::mem::take(&mut joined).replace("6543", &port.to_string());
        if command.trim().is_empty() {
            continue;
        }
        match command.trim_end().strip_suffix('&') {
            Some(cmd) => {
                background += 1;
                let log = format!(".background-{background}.log");
                out += &format!(
                    "{cmd} > {log} 2>&1 &\nfor _ in $(seq 200); do [ -s {log} ] && break; sleep 0.05; done\n[ -s {log} ] || {{ echo 'the background command printed nothing in 10 s' >&2; exit 3; }}\n"
                );
            }
            None => {
                out += &command;
                out.push('\n');
            }
        }
    }
    out += "wait\n";
    out
}

/// The fixture directories, in a scratch directory the block may write
/// into (`replayed.json`): a copy, so nothing bundled can change.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a scratch directory");
    crate::support::copy_tree(
        &root().join("fixtures"),
        &dir.path().join("fixtures"),
        &|_| true,
    );
    dir
}

#[test]
fn the_offline_shell_blocks_of_the_readme_run_as_written() {
    let blocks = shell_blocks();
    let offline: Vec<&Block> = blocks.iter().filter(|b| b.tag == "offline").collect();
    assert!(
        offline.len() >= 4,
        "the demo, serve, inspect and survey blocks"
    );
    for b in offline {
        let dir = scratch();
        let port = free_port();
        let script = script(b, port);
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .env("PGSIM_BIN", env!("CARGO_BIN_EXE_pgsim"))
            .env_remove("PGSIM_FIXTURES")
            // pgsim serve's default address, 127.0.0.1:6543, moved.
            .env("PGSIM_LISTEN", format!("127.0.0.1:{port}"))
            .output()
            .expect("bash runs");
        let mut logs = String::new();
        for n in 1..=3 {
            if let Ok(text) =
                std::fs::read_to_string(dir.path().join(format!(".background-{n}.log")))
            {
                logs += &format!("--- background command {n}:\n{text}");
            }
        }
        assert!(
            out.status.success(),
            "README.md line {} failed ({}):\n{}\n--- stdout:\n{}\n--- stderr:\n{}\n{logs}",
            b.line,
            out.status,
            script,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if b.text.contains("cargo run -- demo") {
            // What the README says the verdict is, is what it is.
            let stdout = String::from_utf8_lossy(&out.stdout);
            let verdict = stdout
                .lines()
                .find(|l| l.starts_with("PASS: "))
                .unwrap_or_else(|| panic!("the demo's verdict:\n{stdout}"));
            let claimed = verdict.split(';').next().unwrap_or(verdict);
            let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
            let flat: String = readme.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                flat.contains(claimed),
                "README.md quotes another verdict than the demo's {claimed:?}"
            );
        }
    }
}

/// `pgsim SUB --help`.
fn help(sub: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pgsim"))
        .args([sub, "--help"])
        .output()
        .expect("pgsim runs");
    assert!(
        out.status.success(),
        "the README uses `pgsim {sub}`, which pgsim does not know:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_live_shell_blocks_of_the_readme_use_only_subcommands_flags_and_scripts_that_exist() {
    let blocks = shell_blocks();
    let live: Vec<&Block> = blocks.iter().filter(|b| b.tag == "live").collect();
    assert!(!live.is_empty());
    let mut checked = 0;
    for b in live {
        let text = b.text.replace("\\\n", " ");
        for line in text.lines() {
            let code = line.split(" #").next().unwrap_or("").trim();
            if code.starts_with('#') || code.is_empty() {
                continue;
            }
            let words: Vec<&str> = code.split_whitespace().collect();
            // A script of the repository, possibly after VAR=value settings.
            if let Some(script) = words.iter().find(|w| w.starts_with("benches/")) {
                let path = root().join(script);
                assert!(
                    path.is_file(),
                    "README.md line {}: {script} does not exist",
                    b.line
                );
                checked += 1;
            }
            if words.first() != Some(&"pgsim") {
                continue;
            }
            let sub = words.get(1).copied().unwrap_or("");
            let help = help(sub);
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let flag = flag.split('=').next().unwrap_or(flag);
                assert!(
                    help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                    "README.md line {}: `pgsim {sub}` has no flag {flag}:\n{help}",
                    b.line
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked} commands checked");
}
