//! Migrations against the live server beyond the toolkit case: migrators
//! running at once never apply or revert a version twice.

use pgsim::client::Migrations;
use pgsim::Client;

use crate::support::{connect, live_url, with_database};

const DB: &str = "mig_concurrent";

#[tokio::test]
async fn two_migrators_at_once_apply_and_revert_each_version_once() {
    let Some(url) = live_url() else {
        return;
    };
    let admin = connect(&url).await;
    for sql in [
        format!("drop database if exists {DB} with (force)"),
        format!("create database {DB}"),
    ] {
        admin.batch_execute(&sql).await.expect("a fresh database");
    }
    let migrations = Migrations::from_dir(pgsim_recorder::toolkit::migrations_dir())
        .expect("the bundled migrations");
    let client = || async {
        Client::builder()
            .url(with_database(&url, DB))
            .max_connections(2)
            .build()
            .await
            .expect("a client")
    };
    let (a, b) = (client().await, client().await);
    for round in 0..5 {
        let (up_a, up_b) = tokio::join!(migrations.up(&a, None), migrations.up(&b, None));
        let mut applied = [up_a.expect("up a"), up_b.expect("up b")].concat();
        applied.sort();
        assert_eq!(applied, [1, 2, 3], "round {round}");
        let (down_a, down_b) = tokio::join!(migrations.down(&a, 2), migrations.down(&b, 2));
        let mut reverted = [down_a.expect("down a"), down_b.expect("down b")].concat();
        reverted.sort();
        // Each reverts the two newest it saw; under the lock the second
        // finds them gone and reverts only what is still applied.
        assert!(
            reverted.windows(2).all(|w| w[0] != w[1]),
            "round {round}: {reverted:?}"
        );
        migrations.down(&a, 3).await.expect("down the rest");
        let rows: i64 = a
            .query_one("select count(*) from pgsim_migrations", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(rows, 0, "round {round}");
    }
    a.close().await.expect("close a");
    b.close().await.expect("close b");
    admin
        .batch_execute(&format!("drop database {DB} with (force)"))
        .await
        .expect("drop");
}
