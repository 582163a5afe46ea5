//! `pgsim demo`: the whole replay flow on the bundled fixtures, no
//! PostgreSQL needed. Every recorded session is replayed through an
//! in-process mock server by tokio-postgres, and each answer is checked
//! against the recording.

use std::path::Path;

use pgsim::fixture::{Exchange, Value};
use pgsim::tokio_postgres::{self, NoTls, SimpleQueryMessage};

pub(crate) async fn run(dir: &Path) -> Result<(), String> {
    let set = pgsim::fixture::load_dir(dir).map_err(|e| e.to_string())?;
    let sessions: Vec<_> = set
        .sessions
        .iter()
        .filter(|s| s.session.startup_error.is_none())
        .cloned()
        .collect();
    let server = pgsim::MockServer::builder()
        .fixture_set(set)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "pgsim demo: mock server on {} replaying {}",
        server.addr(),
        dir.display()
    );
    let (mut checked, mut skipped, mut failed) = (0usize, 0usize, 0usize);
    for loaded in &sessions {
        let s = &loaded.session;
        let (client, conn) = tokio_postgres::connect(&server.url_for(&s.database), NoTls)
            .await
            .map_err(|e| format!("connect to {}: {e}", s.database))?;
        let task = tokio::spawn(conn);
        println!(
            "\nsession {} (database {:?}, recorded from PostgreSQL {})",
            loaded.path.display(),
            s.database,
            s.server.version
        );
        for ex in &s.exchanges {
            // 25P02 comes from a failed transaction, which skipping the
            // statement that failed (it had parameters) does not reproduce.
            let in_failed_transaction = ex
                .results
                .first()
                .and_then(|r| r.error.as_ref())
                .is_some_and(|e| e.code() == "25P02");
            // A description-only exchange answers Describe, never a query;
            // COPY FROM STDIN needs its data, which a simple query cannot send.
            if ex.params.as_ref().is_some_and(|p| !p.is_empty())
                || ex.results.len() != 1
                || in_failed_transaction
                || ex.is_protocol_only()
                || ex.copy_in.is_some()
            {
                skipped += 1;
                continue;
            }
            match check(&client, ex).await {
                Ok(line) => {
                    checked += 1;
                    println!("  ok    {line}");
                }
                Err(why) => {
                    failed += 1;
                    println!("  FAIL  {why}");
                }
            }
        }
        drop(client);
        let _ = task.await;
    }
    let report = server.shutdown().await;
    println!("\n{checked} answers replayed identically, {failed} differed, {skipped} skipped (bound parameters, multi-statement, or answered by a failed transaction)");
    print!("{report}");
    if failed > 0 || !report.misses.is_empty() {
        return Err("replay did not match the recording".into());
    }
    Ok(())
}

async fn check(client: &tokio_postgres::Client, ex: &Exchange) -> Result<String, String> {
    let expected = &ex.results[0];
    let sql_line: String = ex.sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown: String = sql_line.chars().take(70).collect();
    match client.simple_query(&ex.sql).await {
        Ok(messages) => {
            let mut rows = Vec::new();
            let mut tag_rows = None;
            for m in messages {
                match m {
                    SimpleQueryMessage::Row(r) => rows.push(
                        (0..r.len())
                            .map(|i| r.get(i).map(str::to_owned))
                            .collect::<Vec<_>>(),
                    ),
                    SimpleQueryMessage::CommandComplete(n) => tag_rows = Some(n),
                    _ => {}
                }
            }
            let want: Vec<Vec<Option<String>>> = expected
                .rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| match v {
                            Value::Text(t) => Some(t.clone()),
                            _ => None,
                        })
                        .collect()
                })
                .collect();
            if expected.error.is_some() {
                return Err(format!(
                    "{shown}: expected an error, got {} rows",
                    rows.len()
                ));
            }
            if rows != want {
                return Err(format!("{shown}: rows differ from the recording"));
            }
            let first = rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_default();
            let first: String = first.chars().take(30).collect();
            Ok(format!(
                "{shown} -> {} rows{}",
                tag_rows.unwrap_or(0),
                if first.is_empty() {
                    String::new()
                } else {
                    format!(" (first value {first:?})")
                }
            ))
        }
        Err(e) => {
            let got = e.code().map(|c| c.code().to_owned()).unwrap_or_default();
            match &expected.error {
                Some(want) if want.code() == got => {
                    Ok(format!("{shown} -> ERROR {got} as recorded"))
                }
                _ => Err(format!(
                    "{shown}: unexpected error {}",
                    e.as_db_error().map_or_else(
                        || e.to_string(),
                        |d| format!("{} {}", d.code().code(), d.message())
                    )
                )),
            }
        }
    }
}
