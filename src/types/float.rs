//! `float4` / `float8`: IEEE 754 big-endian, text as PG15 prints it with
//! `extra_float_digits = 1` (shortest round-trip digits, Ryu layout).

use super::shortest::shortest;
use super::{bad_text, exact, oid, CodecError};

/// Lays out digits like PG's `to_chars`: fixed notation when the decimal
/// exponent is in `-4..fixed_max` (15 for double, 6 for float).
fn layout(neg: bool, digits: &[u8], k: i32, fixed_max: i32) -> String {
    let exp = k - 1;
    let digits: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    if (-4..fixed_max).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

/// Shared formatting for an IEEE value given as raw fields.
fn format_ieee(
    neg: bool,
    mantissa: u64,
    biased_exp: i32,
    mbits: u32,
    bias: i32,
    fixed_max: i32,
) -> String {
    if biased_exp == 0 && mantissa == 0 {
        return if neg { "-0" } else { "0" }.into();
    }
    let (f, e, boundary) = if biased_exp == 0 {
        (mantissa, 1 - bias - mbits as i32, false)
    } else {
        (
            mantissa | (1 << mbits),
            biased_exp - bias - mbits as i32,
            mantissa == 0 && biased_exp > 1,
        )
    };
    let (digits, k) = shortest(f, e, boundary);
    layout(neg, &digits, k, fixed_max)
}

/// Formats a double exactly like PG15 `float8out` (extra_float_digits > 0).
pub(crate) fn format_f64(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    format_ieee(
        bits >> 63 == 1,
        bits & ((1 << 52) - 1),
        biased,
        52,
        1023,
        15,
    )
}

/// Formats a float exactly like PG15 `float4out` (extra_float_digits > 0).
pub(crate) fn format_f32(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let bits = v.to_bits();
    let biased = ((bits >> 23) & 0xff) as i32;
    format_ieee(
        bits >> 31 == 1,
        u64::from(bits & 0x7f_ffff),
        biased,
        23,
        127,
        6,
    )
}

/// Validates the `strtod` subset we accept and reports whether any
/// mantissa digit is non-zero (to detect underflow to zero).
fn check_syntax(s: &str) -> Option<bool> {
    let b = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    let mut i = 0;
    let (mut digits, mut nonzero) = (0, false);
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        if b[i] == b'.' {
            if b[..i].contains(&b'.') {
                return None;
            }
        } else {
            digits += 1;
            nonzero |= b[i] != b'0';
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() {
        if b[i] != b'e' && b[i] != b'E' {
            return None;
        }
        let e = &b[i + 1..];
        let e = e
            .strip_prefix(b"+")
            .or_else(|| e.strip_prefix(b"-"))
            .unwrap_or(e);
        if e.is_empty() || !e.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    Some(nonzero)
}

/// Parses `float8in`/`float4in` input into an `f64` (or `f32` via `single`).
fn parse(oid: u32, text: &str, single: bool) -> Result<f64, CodecError> {
    let s = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    let neg = s.starts_with('-');
    let special = match unsigned.as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" => Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }),
        _ => None,
    };
    if let Some(v) = special {
        return Ok(v);
    }
    let type_name = if single { "real" } else { "double precision" };
    let nonzero = check_syntax(s).ok_or_else(|| {
        bad_text(
            oid,
            format!("invalid input syntax for type {type_name}: {text:?}"),
        )
    })?;
    let v = if single {
        s.parse::<f32>().map(f64::from).ok()
    } else {
        s.parse::<f64>().ok()
    };
    match v {
        Some(v) if v.is_finite() && (v != 0.0 || !nonzero) => Ok(v),
        _ => Err(bad_text(
            oid,
            format!("{text:?} is out of range for type {type_name}"),
        )),
    }
}

/// Text -> IEEE big-endian bytes.
pub(crate) fn text_to_binary(oid: u32, text: &str) -> Result<Vec<u8>, CodecError> {
    if oid == oid::FLOAT4 {
        let v = parse(oid, text, true)?;
        let f = if v.is_nan() { f32::NAN } else { v as f32 };
        Ok(f.to_bits().to_be_bytes().to_vec())
    } else {
        let v = parse(oid, text, false)?;
        let v = if v.is_nan() { f64::NAN } else { v };
        Ok(v.to_bits().to_be_bytes().to_vec())
    }
}

/// IEEE big-endian bytes -> PG15 text.
pub(crate) fn binary_to_text(oid: u32, bin: &[u8]) -> Result<String, CodecError> {
    Ok(if oid == oid::FLOAT4 {
        format_f32(f32::from_bits(u32::from_be_bytes(exact(oid, bin)?)))
    } else {
        format_f64(f64::from_bits(u64::from_be_bytes(exact(oid, bin)?)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oid::{FLOAT4, FLOAT8};

    fn t8(text: &str) -> String {
        binary_to_text(FLOAT8, &text_to_binary(FLOAT8, text).unwrap()).unwrap()
    }

    fn t4(text: &str) -> String {
        binary_to_text(FLOAT4, &text_to_binary(FLOAT4, text).unwrap()).unwrap()
    }

    #[test]
    fn float8_layout_matches_pg15() {
        for (input, want) in [
            ("1e15", "1e+15"),
            ("1e14", "100000000000000"),
            ("123456789012345678", "1.2345678901234568e+17"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("-0", "-0"),
            ("0", "0"),
            ("1.5", "1.5"),
            ("-123.25", "-123.25"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("1e100", "1e+100"),
            ("2.9283495335735928e16", "2.9283495335735928e+16"),
            ("4.5875836902703677e18", "4.5875836902703677e+18"),
            ("-4.0830420778427584e+16", "-4.0830420778427584e+16"),
            ("1125899906842624.25", "1.1258999068426242e+15"),
            ("1125899906842624.75", "1.1258999068426248e+15"),
            ("112589990684262.4375", "112589990684262.44"),
            ("112589990684262.5625", "112589990684262.56"),
            ("9007199254740991", "9.007199254740991e+15"),
            ("2.2250738585072014e-308", "2.2250738585072014e-308"),
            ("9.999999999999999e22", "9.999999999999999e+22"),
            ("0.1", "0.1"),
            ("NaN", "NaN"),
            ("  -inf ", "-Infinity"),
            ("+Infinity", "Infinity"),
        ] {
            assert_eq!(t8(input), want, "{input}");
        }
        assert_eq!(
            text_to_binary(FLOAT8, "1.5"),
            Ok(vec![0x3f, 0xf8, 0, 0, 0, 0, 0, 0])
        );
    }

    #[test]
    fn float4_layout_matches_pg15() {
        for (input, want) in [
            ("1000000", "1e+06"),
            ("100000", "100000"),
            ("123456", "123456"),
            ("1234567", "1.234567e+06"),
            ("1.5e-5", "1.5e-05"),
            ("0.0001", "0.0001"),
            ("0.1", "0.1"),
            ("3.4028235e38", "3.4028235e+38"),
            ("1.4e-45", "1e-45"),
            ("-5.3171328e+07", "-5.3171328e+07"),
            ("-192822.13", "-192822.12"),
            ("3.0791238e+08", "3.0791238e+08"),
            ("16777215", "1.6777215e+07"),
            ("1.1754944e-38", "1.1754944e-38"),
            ("-0", "-0"),
            ("nan", "NaN"),
        ] {
            assert_eq!(t4(input), want, "{input}");
        }
        assert_eq!(text_to_binary(FLOAT4, "1.5"), Ok(vec![0x3f, 0xc0, 0, 0]));
    }

    #[test]
    fn input_errors() {
        for bad in [
            "", "abc", "1e", "1.2.3", "--1", "1e400", "1e-400", "0x10", ".",
        ] {
            assert!(text_to_binary(FLOAT8, bad).is_err(), "{bad}");
        }
        for bad in ["1e39", "1e-50", "infinit"] {
            assert!(text_to_binary(FLOAT4, bad).is_err(), "{bad}");
        }
        assert!(binary_to_text(FLOAT8, &[0; 4]).is_err());
        assert_eq!(t8(".5"), "0.5");
        assert_eq!(t8("5."), "5");
    }
}
