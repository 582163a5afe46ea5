//! `timestamp` and `timestamptz`: i64 microseconds since 2000-01-01 00:00:00
//! (UTC for `timestamptz`, which prints with a `+00` suffix).

use super::datetime::{date2j, parse_parts, push_date, push_time, EPOCH_JDATE, USECS_PER_DAY};
use super::{bad_bin, bad_text, exact, oid, CodecError};

/// 4714-11-24 00:00:00 BC, the first valid timestamp.
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
/// 294277-01-01 00:00:00, the first invalid timestamp.
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
/// 1970-01-01 00:00:00 in PG's representation.
const UNIX_EPOCH: i64 = -946_684_800_000_000;

/// Text -> i64 microseconds. For `timestamptz` the zone offset is applied
/// (none means the session zone, UTC); for `timestamp` it is ignored.
pub(crate) fn text_to_binary(oid: u32, text: &str) -> Result<Vec<u8>, CodecError> {
    let v = parse(oid, text).map_err(|e| bad_text(oid, e))?;
    Ok(v.to_be_bytes().to_vec())
}

fn parse(oid: u32, text: &str) -> Result<i64, String> {
    match text
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase()
        .as_str()
    {
        "infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        "epoch" => return Ok(UNIX_EPOCH),
        _ => {}
    }
    let parts = parse_parts(text)?;
    let (y, m, d) = parts.date.ok_or("missing date")?;
    let out_of_range = || "timestamp out of range".to_string();
    if !(-4713..294_277).contains(&y) {
        return Err(out_of_range());
    }
    if y == -4713 && m < 11 {
        return Err(out_of_range());
    }
    let local = i128::from(date2j(y, m, d) - EPOCH_JDATE) * i128::from(USECS_PER_DAY)
        + i128::from(parts.time.unwrap_or(0));
    let offset = if oid == oid::TIMESTAMPTZ {
        parts.tz.unwrap_or(0)
    } else {
        0
    };
    let utc = local - i128::from(offset) * 1_000_000;
    if utc < i128::from(MIN_TIMESTAMP) || utc >= i128::from(END_TIMESTAMP) {
        return Err(out_of_range());
    }
    Ok(utc as i64)
}

/// i64 microseconds -> canonical text (`+00` appended for `timestamptz`).
pub(crate) fn binary_to_text(oid: u32, bin: &[u8]) -> Result<String, CodecError> {
    let v = i64::from_be_bytes(exact(oid, bin)?);
    match v {
        i64::MAX => return Ok("infinity".into()),
        i64::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    if !(MIN_TIMESTAMP..END_TIMESTAMP).contains(&v) {
        return Err(bad_bin(oid, "timestamp out of range"));
    }
    let days = v.div_euclid(USECS_PER_DAY);
    let time = v.rem_euclid(USECS_PER_DAY);
    let mut out = String::with_capacity(32);
    let bc = push_date(&mut out, days + EPOCH_JDATE);
    out.push(' ');
    push_time(&mut out, time);
    if oid == oid::TIMESTAMPTZ {
        out.push_str("+00");
    }
    if bc {
        out.push_str(" BC");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oid::{TIMESTAMP, TIMESTAMPTZ};

    fn rt(oid: u32, text: &str) -> String {
        binary_to_text(oid, &text_to_binary(oid, text).unwrap()).unwrap()
    }

    #[test]
    fn known_binary() {
        assert_eq!(
            text_to_binary(TIMESTAMP, "2000-01-01 00:00:00"),
            Ok(vec![0; 8])
        );
        assert_eq!(
            text_to_binary(TIMESTAMP, "infinity"),
            Ok(hex::decode("7fffffffffffffff").unwrap())
        );
        assert_eq!(
            binary_to_text(TIMESTAMPTZ, &hex::decode("8000000000000000").unwrap()).as_deref(),
            Ok("-infinity")
        );
        assert_eq!(
            binary_to_text(TIMESTAMP, &1_500_000i64.to_be_bytes()).as_deref(),
            Ok("2000-01-01 00:00:01.5")
        );
    }

    #[test]
    fn timestamptz_offsets_to_utc() {
        for (input, want) in [
            ("2024-01-02 03:04:05.5+05:30", "2024-01-01 21:34:05.5+00"),
            ("2024-01-02 03:04:05-05", "2024-01-02 08:04:05+00"),
            ("2024-01-02 03:04:05+05:30:15", "2024-01-01 21:33:50+00"),
            ("2024-01-02 03:04:05+0530", "2024-01-01 21:34:05+00"),
            ("2024-01-02 03:04:05 +05", "2024-01-01 22:04:05+00"),
            ("2024-01-02 12:00:00+053", "2024-01-02 11:07:00+00"),
            ("2024-01-02 12:00:00-15:59:59", "2024-01-03 03:59:59+00"),
            ("2024-01-02T03:04:05Z", "2024-01-02 03:04:05+00"),
            ("2024-01-02 03:04:05 UTC", "2024-01-02 03:04:05+00"),
            ("2024-01-02 03:04:05+00", "2024-01-02 03:04:05+00"),
            ("2024-01-02", "2024-01-02 00:00:00+00"),
            ("0001-01-01 00:00:00+00 BC", "0001-01-01 00:00:00+00 BC"),
            ("4714-11-23 23:30:00-01 BC", "4714-11-24 00:30:00+00 BC"),
            ("epoch", "1970-01-01 00:00:00+00"),
            ("-infinity", "-infinity"),
        ] {
            assert_eq!(rt(TIMESTAMPTZ, input), want, "{input}");
        }
    }

    #[test]
    fn timestamp_forms() {
        for (input, want) in [
            ("0001-01-01 10:00 BC", "0001-01-01 10:00:00 BC"),
            (
                "294276-12-31 23:59:59.999999",
                "294276-12-31 23:59:59.999999",
            ),
            ("2024-01-02 24:00:00", "2024-01-03 00:00:00"),
            ("2024-01-02 03:04:05.1234565", "2024-01-02 03:04:05.123456"),
            ("2024-01-02 03:04:05.1234575", "2024-01-02 03:04:05.123458"),
            ("2024-01-02 03:04:05+05", "2024-01-02 03:04:05"),
            ("2024-01-02 3:4:5", "2024-01-02 03:04:05"),
            ("2024-01-02 03:04:05.", "2024-01-02 03:04:05"),
            ("2024-01-02 03:04:05 bc", "2024-01-02 03:04:05 BC"),
            ("4714-11-24 00:00:00 BC", "4714-11-24 00:00:00 BC"),
        ] {
            assert_eq!(rt(TIMESTAMP, input), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        for bad in [
            "2024-01-02 25:00",
            "2024-01-02 24:00:01",
            "2024-01-02 03:04:05+16",
            "2024-01-02 12:00:00+00:60",
            "2024-01-02 03",
            "294277-01-01 00:00:00",
            "4714-11-23 23:59:59 BC",
            "2024-01-02 03:04:05 +05 +06",
            "2024-01-02 2024-01-03",
            "03:04:05",
            "",
        ] {
            assert!(text_to_binary(TIMESTAMPTZ, bad).is_err(), "{bad}");
        }
        assert!(binary_to_text(TIMESTAMP, &END_TIMESTAMP.to_be_bytes()).is_err());
        assert!(binary_to_text(TIMESTAMP, &(MIN_TIMESTAMP - 1).to_be_bytes()).is_err());
        assert!(binary_to_text(TIMESTAMP, &[0; 7]).is_err());
    }
}
