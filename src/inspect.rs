//! `pgsim inspect`: what a fixture set holds.

use std::collections::BTreeMap;
use std::path::Path;

pub(crate) fn run(dir: &Path, exchanges: bool) -> Result<(), String> {
    let set = pgsim::fixture::load_dir(dir).map_err(|e| e.to_string())?;
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }
    for r in &set.rejected {
        eprintln!("error: {r}");
    }
    let mut per_db: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &set.sessions {
        let entry = per_db.entry(s.session.database.as_str()).or_default();
        entry.0 += 1;
        entry.1 += s.session.exchanges.len();
    }
    println!(
        "{}: {} sessions, {} exchanges",
        dir.display(),
        set.sessions.len(),
        set.exchange_count()
    );
    for (db, (sessions, count)) in &per_db {
        println!("  database {db:?}: {sessions} sessions, {count} exchanges");
    }
    if exchanges {
        for s in &set.sessions {
            println!(
                "{} ({}, server {})",
                s.path.display(),
                s.session.database,
                s.session.server.version
            );
            if let Some(e) = &s.session.startup_error {
                println!("  startup refused: {} {}", e.code(), e.message());
            }
            for ex in &s.session.exchanges {
                let outcome = ex
                    .results
                    .iter()
                    .map(|r| match (&r.tag, &r.error) {
                        (_, Some(e)) => format!("ERROR {}", e.code()),
                        (Some(t), None) => t.clone(),
                        (None, None) => "EMPTY".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                println!(
                    "  #{:<6} {:<60} -> {outcome}",
                    ex.seq,
                    one_line(&ex.sql, 60)
                );
            }
        }
    }
    if !set.rejected.is_empty() {
        return Err(format!(
            "{} fixture file(s) do not load (listed above)",
            set.rejected.len()
        ));
    }
    Ok(())
}

fn one_line(sql: &str, max: usize) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}...", flat.chars().take(max - 3).collect::<String>())
    } else {
        flat
    }
}
