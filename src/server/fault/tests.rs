use std::time::Duration;

use super::*;

fn parse(spec: &str) -> Fault {
    match Fault::parse(spec) {
        Ok(f) => f,
        Err(e) => panic!("{spec:?} should parse: {e}"),
    }
}

/// The error for `spec`, checking that its message quotes the spec and
/// contains `needle`.
fn error(spec: &str, needle: &str) -> FaultError {
    let Err(e) = Fault::parse(spec) else {
        panic!("{spec:?} should not parse")
    };
    let text = e.to_string();
    assert!(
        text.contains(&format!("{spec:?}")),
        "names the spec: {text}"
    );
    assert!(text.contains(needle), "{spec:?}: {text:?} lacks {needle:?}");
    assert_eq!(e.spec(), spec);
    e
}

fn fire_pattern(spec: &str, seed: u64, events: usize) -> Vec<bool> {
    let faults = Faults::new(vec![parse(spec)], seed);
    (0..events)
        .map(|_| faults.on_query("select 1").injected.is_some())
        .collect()
}

#[test]
fn parses_every_effect() {
    let f = parse("error=40001");
    assert_eq!(
        f.effect,
        Effect::Error {
            code: "40001".into(),
            message: None
        }
    );
    assert_eq!(f.describe(), "error 40001 on every query");
    let f = parse("error=23505,message=duplicate key");
    assert_eq!(f.describe(), "error 23505 \"duplicate key\" on every query");
    assert_eq!(
        parse("latency=50").effect,
        Effect::Latency { min: 50, max: 50 }
    );
    assert_eq!(
        parse(" latency = 10..20 ").effect,
        Effect::Latency { min: 10, max: 20 }
    );
    assert_eq!(
        parse("latency=10..20").describe(),
        "latency 10..20 ms on every query"
    );
    assert_eq!(parse("drop").effect, Effect::Drop);
    assert_eq!(
        parse("drop").describe(),
        "drop the connection on every query"
    );
    assert_eq!(parse("refuse,times=1").effect, Effect::Refuse);
    assert_eq!(
        parse("refuse,times=1").describe(),
        "refuse with 53300 on every new connection, at most once"
    );
}

#[test]
fn parses_match_and_limits() {
    let f = parse("match=^select abalance,error=40001,times=2");
    assert_eq!(f.times, Some(2));
    assert!(f.matches("SELECT abalance FROM pgbench_accounts WHERE aid = $1;"));
    assert!(!f.matches("update pgbench_accounts set abalance = 1"));
    assert_eq!(
        f.to_string(),
        "error 40001 on queries matching /^select abalance/ (case-insensitive), at most 2 times"
    );
    let f = parse("p=0.25,drop,times=3,match=a=b");
    assert_eq!((f.p, f.times), (Some(0.25), Some(3)));
    assert!(f.matches("select a=b"), "only the first = splits");
    assert!(
        parse(r"match=a\x2Cb,drop").matches("A,B"),
        "a comma written as \\x2C, matched case-insensitively"
    );
    assert_eq!(
        f.describe(),
        "drop the connection on queries matching /a=b/ (case-insensitive), \
         with probability 0.25, at most 3 times"
    );
    assert_eq!(parse("p=0,drop").p, Some(0.0));
    assert_eq!(parse("p=1,drop").p, Some(1.0));
    assert_eq!("drop".parse::<Fault>().map(|f| f.effect), Ok(Effect::Drop));
    assert_eq!(parse("drop").spec(), "drop");
    assert!(format!("{:?}", parse("drop")).contains("drop the connection"));
}

#[test]
fn rejects_bad_specs_naming_the_problem() {
    assert!(matches!(
        error("", "empty item"),
        FaultError::EmptyItem { .. }
    ));
    assert!(matches!(
        error("drop,,times=1", "empty item"),
        FaultError::EmptyItem { .. }
    ));
    assert!(matches!(
        error("drop,tiems=1", "unknown key \"tiems\""),
        FaultError::UnknownKey { .. }
    ));
    assert!(matches!(
        error("crash", "unknown key \"crash\""),
        FaultError::UnknownKey { .. }
    ));
    assert!(matches!(
        error("error", "error needs a value, as in error=SQLSTATE"),
        FaultError::MissingValue { .. }
    ));
    assert!(matches!(
        error("drop=yes", "drop takes no value"),
        FaultError::BadValue { .. }
    ));
    assert!(matches!(
        error("times=2", "no effect"),
        FaultError::MissingEffect { .. }
    ));
    assert!(matches!(
        error("error=40001,drop", "two effects, error and drop"),
        FaultError::TwoEffects { .. }
    ));
    assert!(matches!(
        error("drop,drop", "drop is given twice"),
        FaultError::Repeated { .. }
    ));
    assert!(matches!(
        error("drop,times=1,times=2", "times is given twice"),
        FaultError::Repeated { .. }
    ));
    error("error=4001", "error=\"4001\": a SQLSTATE is 5 characters");
    error("error=40o01", "a SQLSTATE is 5 characters");
    error("error=4000a", "from 0-9 and A-Z");
    error(
        "latency=fast",
        "\"fast\" is not a whole number of milliseconds",
    );
    error("latency=10..x", "\"x\" is not a whole number");
    error("latency=50..10", "MIN (50) above MAX (10)");
    error("drop,times=-1", "times=\"-1\": not a whole number");
    error("drop,times=0", "must be at least 1");
    error("drop,p=1.5", "between 0 and 1");
    error("drop,p=-0.1", "between 0 and 1");
    error("drop,p=NaN", "between 0 and 1");
    error("drop,p=half", "p=\"half\": not a number");
    error(
        "match=(select,error=40001",
        "match=\"(select\": not a valid regex",
    );
    error("match=,drop", "empty pattern");
    error("error=40001,message=", "empty message");
    assert!(matches!(
        error("match=^select,refuse", "match cannot be used with refuse"),
        FaultError::NotApplicable { .. }
    ));
    error("drop,message=bye", "message cannot be used with drop");
}

#[test]
fn times_limits_the_first_matching_events() {
    let faults = Faults::new(vec![parse("match=^select 1$,error=40001,times=2")], 0);
    let fired: Vec<bool> = ["select 1", "select 2", "select 1", "select 1"]
        .iter()
        .map(|sql| faults.on_query(sql).injected.is_some())
        .collect();
    assert_eq!(fired, [true, false, true, false]);
    let stats = faults.stats();
    assert_eq!((stats[0].matched, stats[0].fired), (3, 2));
    assert!(
        stats[0].to_string().ends_with("matched 3, fired 2"),
        "{}",
        stats[0]
    );
}

#[test]
fn injected_errors_carry_the_code_and_a_default_message() {
    let faults = Faults::new(vec![parse("error=40001")], 0);
    let Some(Injected::Error(fields)) = faults.on_query("select 1").injected else {
        panic!("an error")
    };
    assert_eq!(fields.code(), "40001");
    assert_eq!(fields.message(), "pgsim fault: injected 40001");
    assert_eq!(fields.get("severity"), Some("ERROR"));
}

#[test]
fn latencies_add_up_and_stay_in_range() {
    let faults = Faults::new(vec![parse("latency=5"), parse("latency=10..20")], 3);
    for _ in 0..200 {
        let d = faults.on_query("select 1");
        assert!(d.injected.is_none());
        assert!(
            (Duration::from_millis(15)..=Duration::from_millis(25)).contains(&d.delay),
            "{:?}",
            d.delay
        );
    }
    let wide = Faults::new(vec![parse("latency=0..18446744073709551615")], 1);
    assert!(wide.on_query("x").delay > Duration::ZERO);
}

#[test]
fn the_first_error_or_drop_wins_and_hides_the_query_from_later_faults() {
    let faults = Faults::new(vec![parse("drop,times=1"), parse("error=40001")], 0);
    assert!(matches!(
        faults.on_query("x").injected,
        Some(Injected::Drop)
    ));
    assert!(matches!(
        faults.on_query("x").injected,
        Some(Injected::Error(_))
    ));
    let stats = faults.stats();
    assert_eq!((stats[0].matched, stats[0].fired), (2, 1));
    assert_eq!((stats[1].matched, stats[1].fired), (1, 1));
}

#[test]
fn refuse_acts_on_connections_only() {
    let faults = Faults::new(vec![parse("refuse,times=1"), parse("latency=1")], 0);
    assert!(faults.on_query("select 1").injected.is_none());
    let refused = faults
        .on_connect()
        .map(|f| (f.code().to_owned(), f.message().to_owned()));
    assert_eq!(
        refused,
        Some(("53300".into(), "sorry, too many clients already".into()))
    );
    assert!(faults.on_connect().is_none(), "times=1");
    let stats = faults.stats();
    assert_eq!((stats[0].matched, stats[0].fired), (2, 1));
    assert_eq!(stats[1].matched, 1);
}

#[test]
fn same_seed_same_pattern_different_seed_different_pattern() {
    let a = fire_pattern("drop,p=0.5", 42, 100);
    assert_eq!(a, fire_pattern("drop,p=0.5", 42, 100));
    assert_ne!(a, fire_pattern("drop,p=0.5", 43, 100));
    let fired = a.iter().filter(|f| **f).count();
    assert!((30..=70).contains(&fired), "p=0.5 fired {fired} of 100");
}

#[test]
fn probability_zero_never_fires_and_one_always_does() {
    assert!(fire_pattern("drop,p=0", 1, 100).iter().all(|f| !f));
    assert!(fire_pattern("drop,p=1", 1, 100).iter().all(|f| *f));
}

#[test]
fn probability_and_times_fire_until_the_count_is_reached() {
    let pattern = fire_pattern("drop,p=0.5,times=3", 9, 100);
    assert_eq!(pattern.iter().filter(|f| **f).count(), 3);
    let unlimited = fire_pattern("drop,p=0.5", 9, 100);
    let last = pattern.iter().rposition(|f| *f).unwrap_or(0);
    assert_eq!(
        pattern[..=last],
        unlimited[..=last],
        "same draws until the limit"
    );
}

#[test]
fn draws_depend_on_the_fault_index() {
    let faults = Faults::new(vec![parse("latency=0..1000"), parse("latency=0..1000")], 5);
    let one = Faults::new(vec![parse("latency=0..1000")], 5);
    let both = faults.on_query("x").delay;
    let first = one.on_query("x").delay;
    assert_ne!(both, first * 2, "two faults do not draw the same number");
}

#[test]
fn errors_are_send_sync_static() {
    fn check<T: Send + Sync + 'static>() {}
    check::<FaultError>();
    check::<Fault>();
}
