//! Calendar helpers shared by the date/time types, plus `date` and `time`.

/// Julian day number of 2000-01-01, PostgreSQL's epoch.
pub(crate) const EPOCH_JDATE: i64 = 2_451_545;
/// Microseconds in a day.
pub(crate) const USECS_PER_DAY: i64 = 86_400_000_000;
/// First invalid Julian day for dates (5874898-01-01).
pub(crate) const DATE_END_JULIAN: i64 = 2_147_483_494;

/// Julian day of a proleptic Gregorian date (astronomical year: 0 = 1 BC).
pub(crate) fn date2j(year: i64, month: i64, day: i64) -> i64 {
    let (m, y) = if month > 2 {
        (month + 1, year + 4800)
    } else {
        (month + 13, year + 4799)
    };
    let century = y.div_euclid(100);
    y * 365 - 32167 + y.div_euclid(4) - century + century.div_euclid(4) + 7834 * m / 256 + day
}

/// Inverse of [`date2j`] for non-negative Julian days (PG `j2date`).
pub(crate) fn j2date(jd: i64) -> (i64, i64, i64) {
    let mut julian = jd + 32044;
    let mut quad = julian / 146_097;
    let extra = (julian - quad * 146_097) * 4 + 3;
    julian += 60 + quad * 3 + extra / 146_097;
    quad = julian / 1461;
    julian -= quad * 1461;
    let mut y = julian * 4 / 1461;
    julian = if y != 0 {
        (julian + 305) % 365
    } else {
        (julian + 306) % 366
    } + 123;
    y += quad * 4;
    let q = julian * 2141 / 65536;
    let day = julian - 7834 * q / 256;
    let month = (q + 10) % 12 + 1;
    (y - 4800, month, day)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Appends `YYYY-MM-DD` for a Julian day; returns true when the year is BC.
pub(crate) fn push_date(out: &mut String, jd: i64) -> bool {
    let (y, m, d) = j2date(jd);
    let bc = y <= 0;
    let y = if bc { 1 - y } else { y };
    out.push_str(&format!("{y:04}-{m:02}-{d:02}"));
    bc
}

/// Appends `HH:MM:SS[.ffffff]` (fraction without trailing zeros).
pub(crate) fn push_time(out: &mut String, usecs: i64) {
    let secs = usecs / 1_000_000;
    let frac = usecs % 1_000_000;
    out.push_str(&format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    push_fraction(out, frac);
}

/// Appends `.ffffff` with trailing zeros trimmed (nothing when zero).
pub(crate) fn push_fraction(out: &mut String, frac: i64) {
    if frac != 0 {
        let f = format!(".{:06}", frac.unsigned_abs());
        out.push_str(f.trim_end_matches('0'));
    }
}

/// The pieces of a date/time literal (PG `DecodeDateTime` subset).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Parts {
    /// Validated (astronomical year, month, day).
    pub date: Option<(i64, i64, i64)>,
    /// Microseconds since midnight, at most 24:00:00.
    pub time: Option<i64>,
    /// Zone offset in seconds east of UTC.
    pub tz: Option<i64>,
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str, max_len: usize) -> Result<i64, String> {
    if !all_digits(s) || s.len() > max_len {
        return Err(format!("invalid field {s:?}"));
    }
    s.parse().map_err(|_| format!("invalid field {s:?}"))
}

/// Splits a leading `Y-M-D` (year of 3+ digits) off a token.
fn split_date(tok: &str) -> Option<((i64, i64, i64), &str)> {
    let end = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let y_end = end(tok);
    let rest = tok[y_end..].strip_prefix('-')?;
    let m_end = end(rest);
    let rest2 = rest[m_end..].strip_prefix('-')?;
    let d_end = end(rest2);
    if y_end < 3 || m_end > 2 || d_end > 2 {
        return None;
    }
    let y = num(&tok[..y_end], 9).ok()?;
    let m = num(&rest[..m_end], 2).ok()?;
    let d = num(&rest2[..d_end], 2).ok()?;
    Some(((y, m, d), &rest2[d_end..]))
}

/// Microseconds for the digits after a decimal point, rounded like PG's
/// `rint(strtod(".fff") * 1e6)`.
pub(crate) fn fraction(digits: &str) -> Option<i64> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: f64 = format!("0.{digits}0").parse().ok()?;
    Some((frac * 1_000_000.0).round_ties_even() as i64)
}

/// Parses `H:M[:S[.frac]]` (or `M:S.frac`) into microseconds (fraction rounded like `rint`).
fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid time {s:?}");
    let mut f = s.split(':');
    let h = num(f.next().ok_or_else(bad)?, 2)?;
    let mf = f.next().ok_or_else(bad)?;
    let (mp, m_frac) = match mf.split_once('.') {
        Some((mp, fp)) => (mp, Some(fraction(fp).ok_or_else(bad)?)),
        None => (mf, None),
    };
    let m = num(mp, 2)?;
    let (h, m, sec, fsec) = match f.next() {
        // `mm:ss.fff` (a fraction after two fields means minutes:seconds)
        None if m_frac.is_some() => (0, h, m, m_frac.unwrap_or(0)),
        None => (h, m, 0, 0),
        Some(sf) => {
            let (sp, fp) = sf.split_once('.').unwrap_or((sf, ""));
            if m_frac.is_some() {
                return Err(bad());
            }
            (h, m, num(sp, 2)?, fraction(fp).ok_or_else(bad)?)
        }
    };
    if f.next().is_some() {
        return Err(bad());
    }
    let total = ((h * 60 + m) * 60 + sec) * 1_000_000 + fsec;
    if m > 59 || sec > 60 || total > USECS_PER_DAY {
        return Err(format!("date/time field value out of range: {s:?}"));
    }
    Ok(total)
}

/// Parses a numeric zone offset body (after the sign) into seconds.
fn parse_offset(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid time zone {s:?}");
    let (h, m, sec) = if s.contains(':') {
        let mut f = s.split(':');
        let h = num(f.next().ok_or_else(bad)?, 2)?;
        let m = f.next().map_or(Ok(0), |x| num(x, 2))?;
        let sec = f.next().map_or(Ok(0), |x| num(x, 2))?;
        if f.next().is_some() {
            return Err(bad());
        }
        (h, m, sec)
    } else {
        let v = num(s, 6)?;
        match s.len() {
            1 | 2 => (v, 0, 0),
            3 | 4 => (v / 100, v % 100, 0),
            _ => (v / 10000, v / 100 % 100, v % 100),
        }
    };
    if h > 15 || m > 59 || sec > 59 {
        return Err(format!("time zone displacement out of range: {s:?}"));
    }
    Ok((h * 60 + m) * 60 + sec)
}

/// Splits `time[zone]` into its parts.
fn parse_time_token(tok: &str, parts: &mut Parts) -> Result<(), String> {
    let cut = tok
        .char_indices()
        .skip(1)
        .find(|(_, c)| matches!(c, '+' | '-') || c.is_ascii_alphabetic())
        .map_or(tok.len(), |(i, _)| i);
    set(&mut parts.time, parse_time(&tok[..cut])?)?;
    if cut < tok.len() {
        parse_zone_token(&tok[cut..], parts)?;
    }
    Ok(())
}

fn parse_zone_token(tok: &str, parts: &mut Parts) -> Result<(), String> {
    let secs = match tok.as_bytes()[0] {
        b'+' => parse_offset(&tok[1..])?,
        b'-' => -parse_offset(&tok[1..])?,
        _ if ["z", "utc", "gmt", "zulu"].contains(&tok.to_ascii_lowercase().as_str()) => 0,
        _ => return Err(format!("time zone {tok:?} not recognized")),
    };
    set(&mut parts.tz, secs)
}

fn set<T>(slot: &mut Option<T>, v: T) -> Result<(), String> {
    if slot.is_some() {
        return Err("duplicate date/time field".into());
    }
    *slot = Some(v);
    Ok(())
}

/// Parses an ISO-style date/time literal into validated [`Parts`].
pub(crate) fn parse_parts(text: &str) -> Result<Parts, String> {
    let mut parts = Parts::default();
    let mut raw_date = None;
    let mut bc = false;
    let mut tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    if let Some(last) = tokens.last() {
        match last.to_ascii_lowercase().as_str() {
            "bc" => {
                bc = true;
                tokens.pop();
            }
            "ad" => {
                tokens.pop();
            }
            _ => {}
        }
    }
    for tok in tokens {
        let first = tok.as_bytes()[0];
        if tok.eq_ignore_ascii_case("allballs") {
            set(&mut parts.time, 0)?;
        } else if first == b'+' || first == b'-' || first.is_ascii_alphabetic() {
            parse_zone_token(tok, &mut parts)?;
        } else if let Some((d, rest)) = split_date(tok) {
            set(&mut raw_date, d)?;
            if let Some(t) = rest.strip_prefix(['T', 't']) {
                parse_time_token(t, &mut parts)?;
            } else if rest.starts_with('-') {
                return Err(format!("invalid input syntax: {tok:?}"));
            } else if !rest.is_empty() {
                parse_zone_token(rest, &mut parts)?;
            }
        } else if tok.contains(':') {
            parse_time_token(tok, &mut parts)?;
        } else {
            return Err(format!("invalid input syntax: {tok:?}"));
        }
    }
    if let Some((y, m, d)) = raw_date {
        if y == 0 {
            return Err("date/time field value out of range: year 0".into());
        }
        let y = if bc { 1 - y } else { y };
        if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
            return Err("date/time field value out of range".into());
        }
        parts.date = Some((y, m, d));
    } else if bc {
        return Err("BC without a date".into());
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn julian_round_trip() {
        for jd in [0, 1, 1_721_425, 2_451_545, 2_299_160, DATE_END_JULIAN - 1] {
            let (y, m, d) = j2date(jd);
            assert_eq!(date2j(y, m, d), jd);
        }
    }
}
