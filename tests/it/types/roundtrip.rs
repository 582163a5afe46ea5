//! Property tests: canonical binary -> text -> binary is the identity, and
//! the text produced is a fixed point of text -> binary -> text.

use super::common::*;
use pgsim::types::{binary_to_text, is_supported, oid::*, text_to_binary};
use proptest::prelude::*;

fn check_round_trip(oid: u32, bin: &[u8]) -> Result<(), TestCaseError> {
    let text = binary_to_text(oid, bin).map_err(|e| TestCaseError::fail(format!("b2t: {e}")))?;
    let back = text_to_binary(oid, &text)
        .map_err(|e| TestCaseError::fail(format!("t2b({text:?}): {e}")))?;
    prop_assert_eq!(&back, bin, "oid {} text {:?}", oid, text);
    let again = binary_to_text(oid, &back).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(again, text);
    Ok(())
}

fn scalar_case(oid: u32) -> BoxedStrategy<(u32, Vec<u8>)> {
    scalar_bin(oid).prop_map(move |b| (oid, b)).boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn simple_scalars((oid, bin) in prop_oneof![
        scalar_case(BOOL), scalar_case(BYTEA), scalar_case(CHAR), scalar_case(NAME),
        scalar_case(TEXT), scalar_case(VARCHAR), scalar_case(BPCHAR), scalar_case(UUID),
    ]) {
        check_round_trip(oid, &bin)?;
    }

    #[test]
    fn integers((oid, bin) in prop_oneof![
        scalar_case(INT2), scalar_case(INT4), scalar_case(INT8), scalar_case(OID),
    ]) {
        check_round_trip(oid, &bin)?;
    }

    #[test]
    fn floats((oid, bin) in prop_oneof![scalar_case(FLOAT4), scalar_case(FLOAT8)]) {
        check_round_trip(oid, &bin)?;
    }

    #[test]
    fn float_nan_payloads_print_nan(bits in any::<u64>()) {
        let f = f64::from_bits(bits | 0x7ff0_0000_0000_0001);
        let text = binary_to_text(FLOAT8, &f.to_bits().to_be_bytes()).unwrap();
        prop_assert_eq!(&text, "NaN");
        let back = text_to_binary(FLOAT8, &text).unwrap();
        prop_assert!(f64::from_be_bytes(back.try_into().unwrap()).is_nan());
    }

    #[test]
    fn numeric_binary(bin in scalar_bin(NUMERIC)) {
        check_round_trip(NUMERIC, &bin)?;
    }

    #[test]
    fn numeric_digit_strings(neg in any::<bool>(), int in "[0-9]{0,40}", frac in "[0-9]{0,20}") {
        let int_part = if int.is_empty() && frac.is_empty() { "0".to_string() } else { int.clone() };
        let text = if frac.is_empty() {
            format!("{}{int_part}", if neg { "-" } else { "" })
        } else {
            format!("{}{int_part}.{frac}", if neg { "-" } else { "" })
        };
        let trimmed = int_part.trim_start_matches('0');
        let canon_int = if trimmed.is_empty() { "0" } else { trimmed };
        let zero = canon_int == "0" && frac.bytes().all(|b| b == b'0');
        let mut want = String::new();
        if neg && !zero { want.push('-'); }
        want.push_str(canon_int);
        if !frac.is_empty() { want.push('.'); want.push_str(&frac); }
        let bin = text_to_binary(NUMERIC, &text).unwrap();
        prop_assert_eq!(binary_to_text(NUMERIC, &bin).unwrap(), want.clone());
        check_round_trip(NUMERIC, &bin)?;
    }

    #[test]
    fn datetimes((oid, bin) in prop_oneof![
        scalar_case(DATE), scalar_case(TIME), scalar_case(TIMESTAMP), scalar_case(TIMESTAMPTZ),
        scalar_case(INTERVAL),
    ]) {
        check_round_trip(oid, &bin)?;
    }

    #[test]
    fn timestamptz_offsets(ts in -60_000_000_000_000_000i64..5_000_000_000_000_000, off in -53_999i64..54_000) {
        // Print the instant in local time at `off` seconds east, then parse it back.
        let local = ts + off * 1_000_000;
        let text = binary_to_text(TIMESTAMP, &local.to_be_bytes()).unwrap();
        let (abs, sign) = (off.abs(), if off < 0 { '-' } else { '+' });
        let zone = format!("{sign}{:02}:{:02}:{:02}", abs / 3600, abs / 60 % 60, abs % 60);
        let with_zone = match text.strip_suffix(" BC") {
            Some(t) => format!("{t}{zone} BC"),
            None => format!("{text}{zone}"),
        };
        let bin = text_to_binary(TIMESTAMPTZ, &with_zone).unwrap();
        prop_assert_eq!(i64::from_be_bytes(bin.try_into().unwrap()), ts);
    }

    #[test]
    fn json_types((oid, bin) in prop_oneof![scalar_case(JSON), scalar_case(JSONB)]) {
        check_round_trip(oid, &bin)?;
    }

    #[test]
    fn jsonb_canonical_is_fixed_point(text in json_text()) {
        let bin = text_to_binary(JSONB, &text).unwrap();
        let canon = binary_to_text(JSONB, &bin).unwrap();
        prop_assert_eq!(text_to_binary(JSONB, &canon).unwrap(), bin);
    }

    #[test]
    fn arrays((oid, bin) in proptest::strategy::Union::new(
        ARRAYS.iter().map(|&(oid, elem)| array_bin(elem).prop_map(move |b| (oid, b)).boxed())
    )) {
        check_round_trip(oid, &bin)?;
    }
}

#[test]
fn every_listed_oid_is_supported() {
    for &oid in SCALARS {
        assert!(is_supported(oid), "{oid}");
    }
    for &(oid, elem) in ARRAYS {
        assert!(is_supported(oid) && is_supported(elem), "{oid}");
    }
    assert!(!is_supported(0));
    assert!(!is_supported(1560)); // bit
}
