//! Unit tests for the `nearest` module.

use super::ParamValue::*;
use super::*;

fn cand<'a>(sql: &'a str, params: &[ParamValue<'a>]) -> Candidate<'a> {
    Candidate {
        sql,
        params: params.to_vec(),
    }
}

#[test]
fn levenshtein_matches_reference() {
    let d = |a: &str, b: &str, max| {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        bounded_levenshtein(&a, &b, max)
    };
    assert_eq!(d("kitten", "sitting", 10), Some(3));
    assert_eq!(d("kitten", "sitting", 3), Some(3));
    assert_eq!(d("kitten", "sitting", 2), None);
    assert_eq!(d("", "abc", 3), Some(3));
    assert_eq!(d("abc", "abc", 0), Some(0));
    assert_eq!(d("abcdef", "azcdxf", 2), Some(2));
    assert_eq!(d("ab", "ba", 1), None);
}

fn naive(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, y) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(x != y))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

proptest::proptest! {
    #[test]
    fn banded_levenshtein_agrees_with_naive(
        a in "[abc]{0,12}", b in "[abc]{0,12}", max in 0usize..14
    ) {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let d = naive(&a, &b);
        let expected = (d <= max).then_some(d);
        proptest::prop_assert_eq!(bounded_levenshtein(&a, &b, max), expected);
    }
}

#[test]
fn empty_candidates() {
    assert_eq!(nearest("SELECT 1", &[], &[]), None);
}

#[test]
fn parameter_differs() {
    let c = [
        cand("SELECT $1, $2", &[Text("1"), Text("9"), Null]),
        cand("SELECT $1, $2", &[Text("1"), Text("10")]),
        cand("SELECT $1, $3", &[Text("1"), Text("11")]),
    ];
    let m = nearest("SELECT $1, $2", &[Text("1"), Text("11")], &c).unwrap();
    assert_eq!(m.index, 1);
    assert_eq!(
        m.description,
        "same SQL; parameter $2 differs: recorded '10', got '11'"
    );
    let m = nearest(
        "SELECT $1, $2",
        &[
            Null,
            Raw {
                format: 1,
                bytes: &[0, 1],
            },
        ],
        &c[1..],
    )
    .unwrap();
    assert_eq!(
        m.description,
        "same SQL; parameter $1 differs: recorded '1', got NULL (and 1 more)"
    );
}

#[test]
fn parameter_count_differs() {
    let c = [cand("SELECT $1", &[Text("a"), Text("b")])];
    let m = nearest("SELECT $1", &[Text("a"), Text("b"), Text("c")], &c).unwrap();
    assert_eq!(m.description, "same SQL; recorded 2 parameters, got 3");
    let c = [cand("SELECT $1", &[Text("a")])];
    let m = nearest("SELECT $1", &[], &c).unwrap();
    assert_eq!(m.description, "same SQL; recorded 1 parameter, got 0");
}

#[test]
fn sql_differs() {
    let c = [
        cand("DELETE FROM t", &[]),
        cand("SELECT * FROM users WHERE id = $1 AND active", &[Text("1")]),
    ];
    let m = nearest(
        "SELECT * FROM users WHERE uid = $1 AND active",
        &[Text("1")],
        &c,
    )
    .unwrap();
    assert_eq!(m.index, 1);
    assert_eq!(
        m.description,
        "SQL differs at character 27: recorded \"...ers WHERE id = $1 AN...\", \
         got \"...ers WHERE uid = $1 A...\""
    );
    let m = nearest("SELECT 1", &[], &[cand("SELECT 1;", &[])]).unwrap();
    assert_eq!(
        m.description,
        "SQL differs at character 9: recorded \"SELECT 1;\", got \"SELECT 1\""
    );
    let m = nearest("SELECT '\n\"'", &[], &[cand("SELECT '\n'", &[])]).unwrap();
    assert_eq!(
        m.description,
        r#"SQL differs at character 10: recorded "SELECT '\n'", got "SELECT '\n\"'""#
    );
}

#[test]
fn values_are_truncated() {
    let long = "x".repeat(100);
    let bytes = [7u8; 30];
    let c = [cand(
        "S",
        &[
            Text(&long),
            Raw {
                format: 1,
                bytes: &bytes,
            },
        ],
    )];
    let m = nearest(
        "S",
        &[
            Text("it's"),
            Raw {
                format: 1,
                bytes: &[1],
            },
        ],
        &c,
    )
    .unwrap();
    let expected = format!(
        "recorded '{}...', got 'it\\'s' (and 1 more)",
        "x".repeat(40)
    );
    assert!(m.description.ends_with(&expected), "{}", m.description);
    assert_eq!(
        show_value(&Raw {
            format: 1,
            bytes: &bytes
        }),
        format!("<30 bytes, format 1: 0x{}...>", "07".repeat(20))
    );
}

#[test]
fn a_huge_query_costs_a_bounded_number_of_cells_and_still_finds_its_neighbour() {
    // 1 MB of SQL against candidates of every size: without the budget
    // this is ~10^11 cells (minutes); with it, at most CELL_BUDGET.
    let huge = format!("select '{}' from t", "x".repeat(1 << 20));
    let near = format!("select '{}' from u", "x".repeat(1 << 20));
    let half = format!("select '{}'", "y".repeat(1 << 19));
    let sqls: Vec<String> = (0..500)
        .map(|i| format!("select {i} from t{i}"))
        .chain([half, near])
        .collect();
    let c: Vec<Candidate> = sqls.iter().map(|s| cand(s, &[])).collect();
    let mut budget = CELL_BUDGET;
    let m = nearest_within(&huge, &[], &c, &mut budget).unwrap();
    assert_eq!(m.index, 501, "{}", m.description);
    assert!(
        m.description.contains("recorded \"...xxx' from u\""),
        "{}",
        m.description
    );
    // And a short query's neighbour is still found exactly.
    let m = nearest("select 77 from t77x", &[], &c).unwrap();
    assert_eq!(m.index, 77);
}

#[test]
fn the_budget_finds_what_an_unbounded_search_finds_for_ordinary_queries() {
    // 1500 recorded queries of 40 to 200 characters, in the shapes an
    // application sends, and queries near some or none: an exact search
    // costs more than CELL_BUDGET here, yet ordinary queries stay exact.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let words = [
        "select",
        "id",
        "name",
        "from",
        "items",
        "where",
        "and",
        "order by",
        "limit",
        "join",
        "events",
        "on",
        "count(*)",
        "group by",
        "=",
        "$1",
        "$2",
        "insert into",
        "values",
        "update",
        "set",
    ];
    let sentence = |len: usize, next: &mut dyn FnMut(u64) -> u64| {
        let mut s = String::new();
        while s.len() < len {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(words[next(words.len() as u64) as usize]);
        }
        s
    };
    let sqls: Vec<String> = (0..1500)
        .map(|_| {
            let len = 40 + next(160) as usize;
            sentence(len, &mut next)
        })
        .collect();
    let c: Vec<Candidate> = sqls.iter().map(|s| cand(s, &[])).collect();
    for trial in 0..4 {
        let query = if trial % 2 == 0 {
            // A recorded query with a few words changed.
            let mut q = sqls[next(sqls.len() as u64) as usize].clone();
            q.insert_str(next(q.len() as u64) as usize, " where x = 1");
            q
        } else {
            let len = 40 + next(160) as usize;
            sentence(len, &mut next)
        };
        let mut unbounded = usize::MAX;
        let want = nearest_within(&query, &[], &c, &mut unbounded).unwrap();
        assert!(usize::MAX - unbounded == 0, "ordinary comparisons are free");
        let got = nearest(&query, &[], &c).unwrap();
        assert_eq!(got.index, want.index, "trial {trial}: {query:?}");
    }
}
