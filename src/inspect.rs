//! `pgsim inspect`: what a fixture set holds, and selected exchanges in full.

mod select;
mod show;

use std::collections::BTreeMap;
use std::path::Path;

use pgsim::fixture::FixtureSet;
use select::Selector;

pub(crate) fn run(dir: &Path, exchanges: bool, show: &[String]) -> Result<(), String> {
    // Selectors first: a typo fails before anything is read.
    let selectors = show
        .iter()
        .map(|s| Selector::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let set = pgsim::fixture::load_dir(dir).map_err(|e| e.to_string())?;
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }
    for r in &set.rejected {
        eprintln!("error: {r}");
    }
    if selectors.is_empty() {
        summary(dir, &set, exchanges);
    } else {
        print_selected(dir, &set, &selectors, show)?;
    }
    if !set.rejected.is_empty() {
        return Err(format!(
            "{} fixture file(s) do not load (listed above)",
            set.rejected.len()
        ));
    }
    Ok(())
}

/// Every exchange all `selectors` pick, in full, grouped by file.
fn print_selected(
    dir: &Path,
    set: &FixtureSet,
    selectors: &[Selector],
    show: &[String],
) -> Result<(), String> {
    let (mut exchanges, mut files) = (0usize, 0usize);
    for s in &set.sessions {
        let picked: Vec<_> = s
            .session
            .exchanges
            .iter()
            .filter(|ex| selectors.iter().all(|sel| sel.matches(s, Some(ex))))
            .collect();
        let bare =
            s.session.exchanges.is_empty() && selectors.iter().all(|sel| sel.matches(s, None));
        if picked.is_empty() && !bare {
            continue;
        }
        let mut text = show::session(s);
        for ex in &picked {
            text.push_str(&show::exchange(ex));
        }
        out!("{text}");
        exchanges += picked.len();
        files += 1;
    }
    if files == 0 {
        let seqs = set
            .sessions
            .iter()
            .flat_map(|s| s.session.exchanges.iter().map(|e| e.seq));
        let range = match (seqs.clone().min(), seqs.max()) {
            (Some(lo), Some(hi)) => format!("; its exchanges have seq {lo} to {hi}"),
            _ => String::new(),
        };
        return Err(format!(
            "no exchange of {} matches --show {}{range} (`pgsim inspect {} --exchanges` lists them)",
            dir.display(),
            show.join(" --show "),
            dir.display()
        ));
    }
    out!("{exchanges} exchange(s) of {files} file(s) shown");
    Ok(())
}

fn summary(dir: &Path, set: &FixtureSet, exchanges: bool) {
    let mut per_db: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &set.sessions {
        let entry = per_db.entry(s.session.database.as_str()).or_default();
        entry.0 += 1;
        entry.1 += s.session.exchanges.len();
    }
    out!(
        "{}: {} sessions, {} exchanges",
        dir.display(),
        set.sessions.len(),
        set.exchange_count()
    );
    for (db, (sessions, count)) in &per_db {
        out!("  database {db:?}: {sessions} sessions, {count} exchanges");
    }
    if exchanges {
        for s in &set.sessions {
            out!(
                "{} ({}, server {})",
                s.path.display(),
                s.session.database,
                s.session.server.version
            );
            if let Some(e) = &s.session.startup_error {
                out!("  startup refused: {} {}", e.code(), e.message());
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
                out!(
                    "  #{:<6} {:<60} -> {outcome}",
                    ex.seq,
                    one_line(&ex.sql, 60)
                );
            }
        }
    }
}

fn one_line(sql: &str, max: usize) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}...", flat.chars().take(max - 3).collect::<String>())
    } else {
        flat
    }
}
