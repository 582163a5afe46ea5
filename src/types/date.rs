//! `date` (i32 days since 2000-01-01) and `time` (i64 microseconds since
//! midnight).

use super::datetime::{
    date2j, parse_parts, push_date, push_time, DATE_END_JULIAN, EPOCH_JDATE, USECS_PER_DAY,
};
use super::{bad_bin, bad_text, exact, oid, CodecError};

/// Text -> binary for `date` and `time`.
pub(crate) fn text_to_binary(oid: u32, text: &str) -> Result<Vec<u8>, CodecError> {
    let err = |e: String| bad_text(oid, e);
    let key = text
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase();
    if oid == oid::TIME {
        let parts = parse_parts(text).map_err(err)?;
        let t = parts.time.ok_or_else(|| err("missing time".into()))?;
        return Ok(t.to_be_bytes().to_vec());
    }
    let days: i32 = match key.as_str() {
        "infinity" => i32::MAX,
        "-infinity" => i32::MIN,
        "epoch" => -10957,
        _ => {
            let parts = parse_parts(text).map_err(err)?;
            let (y, m, d) = parts.date.ok_or_else(|| err("missing date".into()))?;
            let jd = if (-4713..5_874_898).contains(&y) {
                date2j(y, m, d)
            } else {
                -1
            };
            if !(0..DATE_END_JULIAN).contains(&jd) {
                return Err(err("date out of range".into()));
            }
            (jd - EPOCH_JDATE) as i32
        }
    };
    Ok(days.to_be_bytes().to_vec())
}

/// Binary -> canonical text for `date` and `time`.
pub(crate) fn binary_to_text(oid: u32, bin: &[u8]) -> Result<String, CodecError> {
    let mut out = String::new();
    if oid == oid::TIME {
        let t = i64::from_be_bytes(exact(oid, bin)?);
        if !(0..=USECS_PER_DAY).contains(&t) {
            return Err(bad_bin(oid, "time out of range"));
        }
        push_time(&mut out, t);
        return Ok(out);
    }
    let days = i32::from_be_bytes(exact(oid, bin)?);
    match days {
        i32::MAX => return Ok("infinity".into()),
        i32::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let jd = i64::from(days) + EPOCH_JDATE;
    if !(0..DATE_END_JULIAN).contains(&jd) {
        return Err(bad_bin(oid, "date out of range"));
    }
    if push_date(&mut out, jd) {
        out.push_str(" BC");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oid::{DATE, TIME};

    fn date_rt(text: &str) -> String {
        binary_to_text(DATE, &text_to_binary(DATE, text).unwrap()).unwrap()
    }

    #[test]
    fn dates_known_pairs() {
        assert_eq!(text_to_binary(DATE, "2000-01-01"), Ok(vec![0; 4]));
        assert_eq!(
            text_to_binary(DATE, "0001-01-01 BC"),
            Ok(vec![0xff, 0xf4, 0xda, 0x8b])
        );
        assert_eq!(
            text_to_binary(DATE, "infinity"),
            Ok(vec![0x7f, 0xff, 0xff, 0xff])
        );
        assert_eq!(text_to_binary(DATE, "-infinity"), Ok(vec![0x80, 0, 0, 0]));
        assert_eq!(
            binary_to_text(DATE, &[0x80, 0, 0, 0]).as_deref(),
            Ok("-infinity")
        );
        for (input, want) in [
            ("0001-01-01 BC", "0001-01-01 BC"),
            ("4714-11-24 BC", "4714-11-24 BC"),
            ("5874897-12-31", "5874897-12-31"),
            ("10000-01-01", "10000-01-01"),
            ("099-01-01", "0099-01-01"),
            ("2024-1-2", "2024-01-02"),
            ("  2024-02-29  ", "2024-02-29"),
            ("2024-01-02 03:04", "2024-01-02"),
            ("0005-02-29 BC", "0005-02-29 BC"),
            ("epoch", "1970-01-01"),
            ("3917-08-30z", "3917-08-30"),
            ("4704-11-19+14", "4704-11-19"),
            ("4705-10-06 15:13.803790", "4705-10-06"),
        ] {
            assert_eq!(date_rt(input), want, "{input}");
        }
    }

    #[test]
    fn date_errors() {
        for bad in [
            "0000-01-01",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "4714-11-23 BC",
            "5874898-01-01",
            "1 BC",
            "20-01-01",
            "x",
            "",
        ] {
            assert!(text_to_binary(DATE, bad).is_err(), "{bad}");
        }
        assert!(binary_to_text(DATE, &(-2_451_546i32).to_be_bytes()).is_err());
        assert!(binary_to_text(DATE, &[0, 0]).is_err());
    }

    #[test]
    fn times() {
        assert_eq!(
            binary_to_text(TIME, &hex::decode("00000000ddf019e0").unwrap()).as_deref(),
            Ok("01:02:03.5")
        );
        for (input, want) in [
            ("01:02:03.5", "01:02:03.5"),
            ("00:00:00", "00:00:00"),
            ("24:00:00", "24:00:00"),
            ("23:59:60", "24:00:00"),
            ("12:00:60.5", "12:01:00.5"),
            ("23:59:59.9999999", "24:00:00"),
            ("12:5", "12:05:00"),
            ("03:04:05+05", "03:04:05"),
            ("allballs", "00:00:00"),
            ("12:34:56.000100", "12:34:56.0001"),
            ("15:13.803790", "00:15:13.80379"),
        ] {
            let bin = text_to_binary(TIME, input).unwrap();
            assert_eq!(binary_to_text(TIME, &bin).unwrap(), want, "{input}");
        }
        for bad in [
            "24:00:00.1",
            "23:59:60.5",
            "12:60",
            "12:00:61",
            "12",
            "",
            "1:2:3:4",
        ] {
            assert!(text_to_binary(TIME, bad).is_err(), "{bad}");
        }
        assert!(binary_to_text(TIME, &(USECS_PER_DAY + 1).to_be_bytes()).is_err());
        assert!(binary_to_text(TIME, &(-1i64).to_be_bytes()).is_err());
    }
}
