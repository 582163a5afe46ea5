//! `int2`, `int4`, `int8` and `oid`: big-endian integers, decimal text.

use super::{bad_text, exact, oid, CodecError};

/// Parses an integer the way `pg_strtoint*` does: optional surrounding
/// whitespace, optional sign, at least one decimal digit, checked range.
fn parse_int(oid: u32, text: &str, min: i128, max: i128) -> Result<i128, CodecError> {
    let invalid = || bad_text(oid, format!("invalid input syntax for integer: {text:?}"));
    let s = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let out_of_range = || bad_text(oid, format!("value {text:?} is out of range"));
    let mut v: i128 = 0;
    for b in digits.bytes() {
        v = v * 10 + i128::from(b - b'0');
        if v > max.max(-min) {
            return Err(out_of_range());
        }
    }
    let v = if neg { -v } else { v };
    if v < min || v > max {
        return Err(out_of_range());
    }
    Ok(v)
}

/// Decimal text -> big-endian bytes.
pub(crate) fn text_to_binary(oid: u32, text: &str) -> Result<Vec<u8>, CodecError> {
    Ok(match oid {
        oid::INT2 => (parse_int(oid, text, i16::MIN.into(), i16::MAX.into())? as i16)
            .to_be_bytes()
            .to_vec(),
        oid::INT4 => (parse_int(oid, text, i32::MIN.into(), i32::MAX.into())? as i32)
            .to_be_bytes()
            .to_vec(),
        oid::INT8 => (parse_int(oid, text, i64::MIN.into(), i64::MAX.into())? as i64)
            .to_be_bytes()
            .to_vec(),
        // `oidin` uses strtoul: negative input down to INT_MIN wraps around.
        _ => (parse_int(oid, text, i32::MIN.into(), u32::MAX.into())? as u32)
            .to_be_bytes()
            .to_vec(),
    })
}

/// Big-endian bytes -> decimal text.
pub(crate) fn binary_to_text(oid: u32, bin: &[u8]) -> Result<String, CodecError> {
    Ok(match oid {
        oid::INT2 => i16::from_be_bytes(exact(oid, bin)?).to_string(),
        oid::INT4 => i32::from_be_bytes(exact(oid, bin)?).to_string(),
        oid::INT8 => i64::from_be_bytes(exact(oid, bin)?).to_string(),
        _ => u32::from_be_bytes(exact(oid, bin)?).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oid::{INT2, INT4, INT8, OID};

    #[test]
    fn known_pairs() {
        assert_eq!(text_to_binary(INT2, "-2"), Ok(vec![0xff, 0xfe]));
        assert_eq!(text_to_binary(INT4, " +42 "), Ok(vec![0, 0, 0, 42]));
        assert_eq!(
            text_to_binary(INT8, "-9223372036854775808"),
            Ok(i64::MIN.to_be_bytes().to_vec())
        );
        assert_eq!(text_to_binary(OID, "4294967295"), Ok(vec![0xff; 4]));
        assert_eq!(text_to_binary(OID, "-1"), Ok(vec![0xff; 4]));
        assert_eq!(binary_to_text(OID, &[0xff; 4]).as_deref(), Ok("4294967295"));
        assert_eq!(binary_to_text(INT2, &[0x80, 0]).as_deref(), Ok("-32768"));
        assert_eq!(binary_to_text(INT4, &[0, 0, 1, 0]).as_deref(), Ok("256"));
    }

    #[test]
    fn range_and_syntax_errors() {
        for (oid, t) in [
            (INT2, "32768"),
            (INT2, "-32769"),
            (INT4, "2147483648"),
            (INT8, "9223372036854775808"),
            (INT8, "99999999999999999999999999999999999999999999"),
            (OID, "4294967296"),
            (OID, "-2147483649"),
            (INT4, ""),
            (INT4, "-"),
            (INT4, "1.0"),
            (INT4, "0x10"),
            (INT4, "1 2"),
        ] {
            assert!(
                matches!(text_to_binary(oid, t), Err(CodecError::InvalidText { .. })),
                "{oid} {t}"
            );
        }
        assert!(binary_to_text(INT4, &[0, 0, 0]).is_err());
        assert!(binary_to_text(INT2, &[0, 0, 0]).is_err());
    }
}
