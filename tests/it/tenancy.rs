//! Database-per-tenant pools beyond the `tenancy` toolkit case: the bound
//! lets go of the least recently *used* pool, not the oldest (no query is sent,
//! so any fixture directory serves).

use pgsim::{Client, Error, Mode};

#[tokio::test]
async fn the_least_recently_used_tenant_pool_is_let_go_first() {
    let client = Client::builder()
        .url("postgres://postgres@127.0.0.1:5432/pgsim_toolkit")
        .mode(Mode::Replay {
            fixtures: pgsim_recorder::toolkit::fixtures_dir().join("tenancy"),
        })
        .max_tenant_pools(2)
        .build()
        .await
        .expect("a replay client");
    client.tenant_database("pgsim_tenant_a").await.expect("a");
    let b = client.tenant_database("pgsim_tenant_b").await.expect("b");
    drop(b.acquire().await.expect("b connects"));
    assert_eq!(b.pool_stats().idle, 1);
    let again = client
        .tenant_database("pgsim_tenant_a")
        .await
        .expect("a again");
    assert_eq!(
        client.tenant_pools().await,
        ["pgsim_tenant_b", "pgsim_tenant_a"],
        "using a pool makes it the most recent"
    );
    assert_eq!(again.url().database(), "pgsim_tenant_a");
    let c = client.tenant_database("pgsim_tenant_c").await.expect("c");
    assert_eq!(
        client.tenant_pools().await,
        ["pgsim_tenant_a", "pgsim_tenant_c"]
    );
    assert_eq!(
        b.pool_stats().idle,
        0,
        "a let-go pool's idle connections close"
    );
    assert!(
        b.acquire().await.is_ok(),
        "a let-go pool still serves whoever holds it"
    );
    assert_eq!(c.url().database(), "pgsim_tenant_c");
    let refused = client.tenant_database("pgsim_tenant_a; drop").await;
    assert!(
        matches!(&refused, Err(Error::Tenant { name, .. }) if name == "pgsim_tenant_a; drop"),
        "{refused:?}"
    );
    let unbounded = Client::builder()
        .url("postgres://postgres@127.0.0.1:5432/pgsim_toolkit")
        .max_tenant_pools(0)
        .build()
        .await;
    assert!(
        matches!(&unbounded, Err(Error::Setting { setting, .. }) if setting == "max_tenant_pools"),
        "{unbounded:?}"
    );
    client.close().await.expect("close");
}
