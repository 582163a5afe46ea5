//! Query-key computation (normalization plus sha256) and the read-only
//! check that routes every toolkit query.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgsim::key::{query_key, ParamValue};

fn keys(c: &mut Criterion) {
    let short = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";
    let long = format!(
        "SELECT n.nspname, c.relname /* catalog */ FROM pg_catalog.pg_class c\n  LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE {}",
        (0..40).map(|i| format!("c.relname <> 'table_{i}'")).collect::<Vec<_>>().join("\n  AND ")
    );
    c.bench_function("query_key/short+1 param", |b| {
        b.iter(|| query_key(black_box(short), &[ParamValue::Text("12345")]))
    });
    c.bench_function("query_key/long catalog query", |b| {
        b.iter(|| query_key(black_box(&long), &[]))
    });
    // The routing decision every toolkit query makes.
    c.bench_function("is_read_only/short", |b| {
        b.iter(|| pgsim::validate::is_read_only(black_box(short)))
    });
    c.bench_function("is_read_only/long catalog query", |b| {
        b.iter(|| pgsim::validate::is_read_only(black_box(&long)))
    });
}

criterion_group!(benches, keys);
criterion_main!(benches);
