//! Public-API tests for the near-miss diagnostic.

use pgsim::key::ParamValue::{self, Text};
use pgsim::key::{nearest, Candidate};

fn cand<'a>(sql: &'a str, params: &[ParamValue<'a>]) -> Candidate<'a> {
    Candidate {
        sql,
        params: params.to_vec(),
    }
}

#[test]
fn ties_prefer_identical_sql_then_fewest_param_diffs() {
    let c = [
        cand("SELECT 2", &[Text("a")]),
        cand("SELECT 1", &[Text("x"), Text("y")]),
        cand("SELECT 1", &[Text("a"), Text("y")]),
    ];
    let m = nearest("SELECT 1", &[Text("a"), Text("b")], &c).unwrap();
    assert_eq!(m.index, 2);
}

#[test]
fn many_candidates_are_prefiltered() {
    let sqls: Vec<String> = (0..12_000)
        .map(|i| format!("SELECT {i} FROM t{}", i % 7))
        .collect();
    let c: Vec<Candidate> = sqls.iter().map(|s| cand(s, &[])).collect();
    let m = nearest("SELECT 11999 FROM tX", &[], &c).unwrap();
    assert_eq!(m.index, 11999);
    let m = nearest("SELECT 7777 FROM t0", &[], &c).unwrap();
    assert_eq!(m.index, 7777);
}
