//! `interval`: binary is i64 microseconds, i32 days, i32 months; text uses
//! the `postgres` IntervalStyle (`1 year 2 mons -3 days +04:05:06.5`).

use super::datetime::{fraction, push_fraction};
use super::{bad_text, oid::INTERVAL, CodecError, Reader};

const USECS_PER_HOUR: i64 = 3_600_000_000;
const USECS_PER_MINUTE: i64 = 60_000_000;
const USECS_PER_SEC: i64 = 1_000_000;

/// PG `AddPostgresIntPart`.
fn add_part(out: &mut String, value: i64, unit: &str, is_zero: &mut bool, is_before: &mut bool) {
    if value == 0 {
        return;
    }
    if !*is_zero {
        out.push(' ');
    }
    if *is_before && value > 0 {
        out.push('+');
    }
    out.push_str(&format!(
        "{value} {unit}{}",
        if value != 1 { "s" } else { "" }
    ));
    *is_before = value < 0;
    *is_zero = false;
}

/// Formats like PG15 `interval_out` with `IntervalStyle = postgres`.
fn format(time: i64, days: i32, months: i32) -> String {
    let mut out = String::new();
    let (mut is_zero, mut is_before) = (true, false);
    let months = i64::from(months);
    add_part(&mut out, months / 12, "year", &mut is_zero, &mut is_before);
    add_part(&mut out, months % 12, "mon", &mut is_zero, &mut is_before);
    add_part(&mut out, days.into(), "day", &mut is_zero, &mut is_before);
    if is_zero || time != 0 {
        let hour = time / USECS_PER_HOUR;
        let min = time % USECS_PER_HOUR / USECS_PER_MINUTE;
        let sec = time % USECS_PER_MINUTE / USECS_PER_SEC;
        let fsec = time % USECS_PER_SEC;
        if !is_zero {
            out.push(' ');
        }
        if time < 0 {
            out.push('-');
        } else if is_before {
            out.push('+');
        }
        out.push_str(&format!(
            "{:02}:{:02}:{:02}",
            hour.unsigned_abs(),
            min.unsigned_abs(),
            sec.unsigned_abs()
        ));
        push_fraction(&mut out, fsec);
    }
    out
}

/// Parses `[+-]H:MM[:SS[.frac]]` into signed microseconds.
fn parse_clock(tok: &str) -> Result<i128, String> {
    let bad = || format!("invalid time field {tok:?}");
    let (neg, body) = match tok.as_bytes().first() {
        Some(b'-') => (true, &tok[1..]),
        Some(b'+') => (false, &tok[1..]),
        _ => (false, tok),
    };
    let digits = |s: &str, max: usize| -> Result<i128, String> {
        if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let mut f = body.split(':');
    let h = digits(f.next().unwrap_or(""), 12)?;
    let mf = f.next().unwrap_or("");
    let (mp, m_frac) = match mf.split_once('.') {
        Some((mp, fp)) => (mp, Some(i128::from(fraction(fp).ok_or_else(bad)?))),
        None => (mf, None),
    };
    let m = digits(mp, 12)?;
    let (h, m, s, fsec) = match (f.next(), m_frac) {
        // `mm:ss.fff`: a fraction after two fields means minutes:seconds
        (None, Some(fr)) => (0, h, m, fr),
        (None, None) => (h, m, 0, 0),
        (Some(sf), None) => {
            let (sp, fp) = sf.split_once('.').unwrap_or((sf, ""));
            (h, m, digits(sp, 2)?, fraction(fp).ok_or_else(bad)?.into())
        }
        (Some(_), Some(_)) => return Err(bad()),
    };
    if f.next().is_some() || m > 59 || s > 60 {
        return Err(bad());
    }
    let v = ((h * 60 + m) * 60 + s) * 1_000_000 + fsec;
    Ok(if neg { -v } else { v })
}

/// Bits for PG's duplicate-field check (`fmask`): hour, minute, second,
/// millisecond and microsecond are the ones a clock field also sets.
const TIME_FIELDS: u16 = 0b1_1111;

/// (field bit, months, days, microseconds) contributed by one unit.
type Unit = (u16, i64, i64, i64);

/// Looks up a unit word (PG's interval unit spellings).
fn unit(word: &str) -> Option<Unit> {
    const UNITS: &[(&[&str], Unit)] = &[
        (
            &["microsecond", "microseconds", "us", "usec", "usecs"],
            (1, 0, 0, 1),
        ),
        (
            &["millisecond", "milliseconds", "ms", "msec", "msecs"],
            (1 << 1, 0, 0, 1000),
        ),
        (
            &["second", "seconds", "sec", "secs", "s"],
            (1 << 2, 0, 0, USECS_PER_SEC),
        ),
        (
            &["minute", "minutes", "min", "mins", "m"],
            (1 << 3, 0, 0, USECS_PER_MINUTE),
        ),
        (
            &["hour", "hours", "h", "hr", "hrs"],
            (1 << 4, 0, 0, USECS_PER_HOUR),
        ),
        (&["day", "days", "d"], (1 << 5, 0, 1, 0)),
        (&["week", "weeks", "w"], (1 << 6, 0, 7, 0)),
        (&["mon", "mons", "month", "months"], (1 << 7, 1, 0, 0)),
        (&["year", "years", "y", "yr", "yrs"], (1 << 8, 12, 0, 0)),
        (&["decade", "decades", "dec", "decs"], (1 << 9, 120, 0, 0)),
        (
            &["century", "centuries", "c", "cent"],
            (1 << 10, 1200, 0, 0),
        ),
        (
            &["millennium", "millennia", "mil", "mils"],
            (1 << 11, 12000, 0, 0),
        ),
    ];
    let w = word.to_ascii_lowercase();
    UNITS
        .iter()
        .find(|(names, _)| names.contains(&w.as_str()))
        .map(|(_, v)| *v)
}

/// Parses the `postgres`-style interval syntax (integer unit amounts).
fn parse(text: &str) -> Result<(i64, i32, i32), String> {
    let mut tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    if tokens.first() == Some(&"@") {
        tokens.remove(0);
    }
    let ago = tokens.last().is_some_and(|t| t.eq_ignore_ascii_case("ago"));
    if ago {
        tokens.pop();
    }
    if tokens.is_empty() {
        return Err("empty interval".into());
    }
    let (mut months, mut days, mut usecs) = (0i128, 0i128, 0i128);
    let mut fmask = 0u16;
    let mut claim = |bits: u16| {
        let dup = fmask & bits != 0;
        fmask |= bits;
        if dup {
            Err("invalid input syntax for type interval: repeated field".to_string())
        } else {
            Ok(())
        }
    };
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i];
        if tok.contains(':') {
            claim(TIME_FIELDS)?;
            usecs += parse_clock(tok)?;
            i += 1;
            continue;
        }
        let n: i128 = tok
            .parse::<i64>()
            .map_err(|_| format!("invalid input syntax for type interval: {tok:?}"))?
            .into();
        // A trailing bare number counts as seconds.
        let word = tokens.get(i + 1).copied().unwrap_or("s");
        let (bit, mo, d, us) =
            unit(word).ok_or_else(|| format!("unknown interval unit {word:?}"))?;
        claim(bit)?;
        months += n * i128::from(mo);
        days += n * i128::from(d);
        usecs += n * i128::from(us);
        i += 2;
    }
    if ago {
        (months, days, usecs) = (-months, -days, -usecs);
    }
    let range = |_| "interval out of range".to_string();
    Ok((
        i64::try_from(usecs).map_err(range)?,
        i32::try_from(days).map_err(range)?,
        i32::try_from(months).map_err(range)?,
    ))
}

/// Text -> binary `(time i64, days i32, months i32)`.
pub(crate) fn text_to_binary(text: &str) -> Result<Vec<u8>, CodecError> {
    let (time, days, months) = parse(text).map_err(|e| bad_text(INTERVAL, e))?;
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&time.to_be_bytes());
    out.extend_from_slice(&days.to_be_bytes());
    out.extend_from_slice(&months.to_be_bytes());
    Ok(out)
}

/// Binary -> canonical `postgres`-style text.
pub(crate) fn binary_to_text(bin: &[u8]) -> Result<String, CodecError> {
    let mut r = Reader::new(INTERVAL, bin);
    let (time, days, months) = (r.i64()?, r.i32()?, r.i32()?);
    r.finish()?;
    Ok(format(time, days, months))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(text: &str) -> String {
        binary_to_text(&text_to_binary(text).unwrap()).unwrap()
    }

    #[test]
    fn pg_outputs() {
        assert_eq!(
            text_to_binary("1 year 2 mons 3 days 04:05:06.5"),
            Ok(hex::decode("000000036c9361a0000000030000000e").unwrap())
        );
        for (input, want) in [
            (
                "1 year 2 mons 3 days 04:05:06.5",
                "1 year 2 mons 3 days 04:05:06.5",
            ),
            ("-1 days 2 hours", "-1 days +02:00:00"),
            ("0 days", "00:00:00"),
            ("-1 year 2 mons", "-10 mons"),
            ("1 day -2 hours", "1 day -02:00:00"),
            ("-00:00:00.000001", "-00:00:00.000001"),
            ("-1 day -1 sec", "-1 days -00:00:01"),
            ("1 mon -1 day", "1 mon -1 days"),
            ("100 hours", "100:00:00"),
            ("1 mon 1 sec", "1 mon 00:00:01"),
            ("@ 1 year ago", "-1 years"),
            ("-1 years +2 mons", "-10 mons"),
            ("-178956970 years -8 mons", "-178956970 years -8 mons"),
            ("2562047788:00:54.775807", "2562047788:00:54.775807"),
            ("-2562047788:00:54.775808", "-2562047788:00:54.775808"),
            ("-24:46.131846 -1 century", "-100 years -00:24:46.131846"),
            ("1 week", "7 days"),
            ("3 ms 2 us", "00:00:00.003002"),
            ("1 week 1 day", "8 days"),
            ("1 day 5", "1 day 00:00:05"),
            ("-5", "-00:00:05"),
        ] {
            assert_eq!(rt(input), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "5 1 day",
            "1 parsec",
            "1 min 1 m",
            "1 hour 02:00",
            "1 day 2 days",
            "1.5 days",
            "1:60",
            "x",
            "2147483648 days",
            "-2562047788:00:54.775809",
        ] {
            assert!(text_to_binary(bad).is_err(), "{bad}");
        }
        assert!(binary_to_text(&[0; 15]).is_err());
        assert!(binary_to_text(&[0; 17]).is_err());
    }
}
