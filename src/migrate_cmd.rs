//! `pgsim migrate`: status, up and down of a migrations directory
//! ([`pgsim::client::Migrations`]).

use std::path::PathBuf;
use std::process::ExitCode;

use pgsim::client::{MigrationStatus, Migrations};
use pgsim::Client;

/// `pgsim migrate`'s options.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// The database to migrate.
    #[arg(long, env = "PGSIM_URL", hide_env_values = true)]
    url: String,
    /// The directory of `<version>_<name>.up.sql` and `.down.sql` files.
    #[arg(long, env = "PGSIM_MIGRATIONS")]
    dir: PathBuf,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// One line per migration: version, name, applied or pending, and
    /// `(changed)` or `(file missing)`; exit status 1 when any is.
    Status,
    /// Apply the pending migrations in version order (only the first N).
    Up {
        /// How many to apply (default: all pending).
        n: Option<usize>,
    },
    /// Revert the N newest applied migrations, newest first.
    Down {
        /// How many to revert.
        #[arg(default_value_t = 1)]
        n: usize,
    },
}

fn name_of(migrations: &Migrations, version: i64) -> &str {
    migrations
        .migrations()
        .iter()
        .find(|m| m.version == version)
        .map_or("", |m| m.name.as_str())
}

/// Runs the action, printing one line per migration.
pub(crate) async fn run(args: MigrateArgs) -> Result<ExitCode, String> {
    let migrations = Migrations::from_dir(&args.dir).map_err(|e| e.to_string())?;
    let client = Client::builder()
        .url(&args.url)
        .max_connections(1)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let done = act(&client, &migrations, &args.action).await;
    let _ = client.close().await;
    done.map_err(|e| e.to_string())
}

async fn act(client: &Client, migrations: &Migrations, action: &Action) -> pgsim::Result<ExitCode> {
    match action {
        Action::Status => {
            let status = migrations.status(client).await?;
            for s in &status {
                out!("{s}");
            }
            let bad = |s: &MigrationStatus| s.checksum_changed || s.missing_file;
            Ok(if status.iter().any(bad) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Action::Up { n } => {
            for version in migrations.up(client, *n).await? {
                out!("applied {version} {}", name_of(migrations, version));
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Down { n } => {
            for version in migrations.down(client, *n).await? {
                out!("reverted {version} {}", name_of(migrations, version));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
