//! `numeric`: arbitrary precision decimal. Binary is `ndigits, weight,
//! sign, dscale` (all 16-bit) followed by base-10000 digits.

use super::{bad_bin, bad_text, oid::NUMERIC, CodecError, Reader};

const POS: u16 = 0x0000;
const NEG: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;
const DSCALE_MAX: i64 = 0x3FFF;

/// A finite value in PG's stripped form (no leading/trailing zero digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finite {
    neg: bool,
    weight: i32,
    dscale: i64,
    digits: Vec<i16>,
}

/// Finite value or one of PG's special values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Numeric {
    NaN,
    PosInf,
    NegInf,
    Finite(Finite),
}

fn overflow() -> String {
    "value overflows numeric format".to_string()
}

impl Finite {
    /// Strips zero digits (PG `make_result`) and checks field ranges.
    fn normalize(mut self) -> Result<Self, String> {
        let lead = self.digits.iter().take_while(|d| **d == 0).count();
        self.digits.drain(..lead);
        self.weight -= lead as i32;
        while self.digits.last() == Some(&0) {
            self.digits.pop();
        }
        if self.digits.is_empty() {
            self.weight = 0;
            self.neg = false;
        }
        if i16::try_from(self.weight).is_err()
            || !(0..=DSCALE_MAX).contains(&self.dscale)
            || i16::try_from(self.digits.len()).is_err()
        {
            return Err(overflow());
        }
        Ok(self)
    }

    /// Drops digits beyond `dscale` decimal places (PG `trunc_var`).
    fn truncate(&mut self) {
        let di = (i64::from(self.weight) + 1) * 4 + self.dscale;
        if di <= 0 {
            self.digits.clear();
            return;
        }
        let keep = ((di + 3) / 4) as usize;
        if keep <= self.digits.len() {
            self.digits.truncate(keep);
            let rem = (di % 4) as u32;
            if rem > 0 {
                if let Some(last) = self.digits.last_mut() {
                    *last -= *last % 10i16.pow(4 - rem);
                }
            }
        }
    }

    /// PG `get_str_from_var`.
    fn to_text(&self) -> String {
        let mut out = String::new();
        if self.neg {
            out.push('-');
        }
        let dig = |i: i64| -> i16 {
            usize::try_from(i)
                .ok()
                .and_then(|i| self.digits.get(i).copied())
                .unwrap_or(0)
        };
        let mut d: i64 = 0;
        if self.weight < 0 {
            out.push('0');
            d = i64::from(self.weight) + 1;
        } else {
            while d <= i64::from(self.weight) {
                if d == 0 {
                    out.push_str(&dig(d).to_string());
                } else {
                    out.push_str(&format!("{:04}", dig(d)));
                }
                d += 1;
            }
        }
        if self.dscale > 0 {
            out.push('.');
            let start = out.len();
            let mut i = 0;
            while i < self.dscale {
                out.push_str(&format!("{:04}", dig(d)));
                d += 1;
                i += 4;
            }
            out.truncate(start + self.dscale as usize);
        }
        out
    }
}

/// Parses PG `numeric_in` syntax.
pub(crate) fn parse(text: &str) -> Result<Numeric, String> {
    let syntax = || format!("invalid input syntax for type numeric: {text:?}");
    let s = text.trim_matches(|c: char| c.is_ascii_whitespace());
    match s.to_ascii_lowercase().as_str() {
        "nan" => return Ok(Numeric::NaN),
        "infinity" | "+infinity" | "inf" | "+inf" => return Ok(Numeric::PosInf),
        "-infinity" | "-inf" => return Ok(Numeric::NegInf),
        _ => {}
    }
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(syntax());
    }
    let exponent: i64 = match exp {
        None => 0,
        Some(e) => {
            let e = e.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) {
                return Err(syntax());
            }
            let v: i64 = digits.parse().unwrap_or(i64::MAX);
            if v >= i64::from(i32::MAX / 2) {
                return Err(overflow());
            }
            if e.starts_with('-') {
                -v
            } else {
                v
            }
        }
    };
    let ds: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let point = int_part.len() as i64 + exponent;
    let dscale = (frac_part.len() as i64 - exponent).max(0);
    let pad_left = point.rem_euclid(4);
    let pad_left = if pad_left == 0 { 0 } else { 4 - pad_left };
    let mut padded = vec![0u8; pad_left as usize];
    padded.extend_from_slice(&ds);
    while !padded.len().is_multiple_of(4) {
        padded.push(0);
    }
    let digits = padded
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(*d)))
        .collect();
    let weight = (point + pad_left) / 4 - 1;
    let weight = i32::try_from(weight).map_err(|_| overflow())?;
    Finite {
        neg,
        weight,
        dscale,
        digits,
    }
    .normalize()
    .map(Numeric::Finite)
}

/// Serializes like PG `numeric_send` (including the dscale that PG
/// reports for infinities, an artefact of its short header format).
pub(crate) fn encode(n: &Numeric) -> Vec<u8> {
    let (ndigits, weight, sign, dscale, digits): (i16, i16, u16, u16, &[i16]) = match n {
        Numeric::NaN => (0, 0, NAN, 0, &[]),
        Numeric::PosInf => (0, 0, PINF, 0x20, &[]),
        Numeric::NegInf => (0, 0, NINF, 0x20, &[]),
        Numeric::Finite(f) => (
            f.digits.len() as i16,
            f.weight as i16,
            if f.neg { NEG } else { POS },
            f.dscale as u16,
            &f.digits,
        ),
    };
    let mut out = Vec::with_capacity(8 + 2 * digits.len());
    for v in [ndigits as u16, weight as u16, sign, dscale] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

/// Parses PG `numeric_recv` input.
pub(crate) fn decode(bin: &[u8]) -> Result<Numeric, CodecError> {
    let mut r = Reader::new(NUMERIC, bin);
    let ndigits = r.i16()?;
    let weight = r.i16()?;
    let sign = r.u16()?;
    let dscale = r.u16()?;
    if ndigits < 0 {
        return Err(bad_bin(
            NUMERIC,
            "invalid length in external \"numeric\" value",
        ));
    }
    if ![POS, NEG, NAN, PINF, NINF].contains(&sign) {
        return Err(bad_bin(
            NUMERIC,
            "invalid sign in external \"numeric\" value",
        ));
    }
    if i64::from(dscale) > DSCALE_MAX {
        return Err(bad_bin(
            NUMERIC,
            "invalid scale in external \"numeric\" value",
        ));
    }
    let mut digits = Vec::with_capacity(ndigits as usize);
    for _ in 0..ndigits {
        let d = r.i16()?;
        if !(0..10000).contains(&d) {
            return Err(bad_bin(
                NUMERIC,
                "invalid digit in external \"numeric\" value",
            ));
        }
        digits.push(d);
    }
    r.finish()?;
    Ok(match sign {
        NAN => Numeric::NaN,
        PINF => Numeric::PosInf,
        NINF => Numeric::NegInf,
        _ => {
            let mut f = Finite {
                neg: sign == NEG,
                weight: weight.into(),
                dscale: dscale.into(),
                digits,
            };
            f.truncate();
            Numeric::Finite(f.normalize().map_err(|e| bad_bin(NUMERIC, e))?)
        }
    })
}

/// Canonical text of a numeric value.
pub(crate) fn to_text(n: &Numeric) -> String {
    match n {
        Numeric::NaN => "NaN".into(),
        Numeric::PosInf => "Infinity".into(),
        Numeric::NegInf => "-Infinity".into(),
        Numeric::Finite(f) => f.to_text(),
    }
}

/// Text -> `numeric_send` bytes.
pub(crate) fn text_to_binary(text: &str) -> Result<Vec<u8>, CodecError> {
    parse(text)
        .map(|n| encode(&n))
        .map_err(|e| bad_text(NUMERIC, e))
}

/// `numeric_recv` bytes -> canonical text.
pub(crate) fn binary_to_text(bin: &[u8]) -> Result<String, CodecError> {
    decode(bin).map(|n| to_text(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input text, canonical text, hex of what PG15's numeric_send returns)
    const PAIRS: &[(&str, &str, &str)] = &[
        ("0", "0", "0000000000000000"),
        ("0.00", "0.00", "0000000000000002"),
        ("1.50", "1.50", "000200000000000200011388"),
        ("-0.001", "-0.001", "0001ffff40000003000a"),
        ("10000", "10000", "00010001000000000001"),
        ("1e20", "100000000000000000000", "00010005000000000001"),
        ("NaN", "NaN", "00000000c0000000"),
        ("Infinity", "Infinity", "00000000d0000020"),
        ("-inf", "-Infinity", "00000000f0000020"),
        (" -12.5e+1 ", "-125", "0001000040000000007d"),
    ];

    #[test]
    fn pg_known_pairs() {
        for (input, canon, hex) in PAIRS {
            let bin = text_to_binary(input).unwrap();
            assert_eq!(hex::encode(&bin), *hex, "{input}");
            assert_eq!(binary_to_text(&bin).unwrap(), *canon, "{input}");
        }
    }

    #[test]
    fn tiny_exponent_keeps_scale() {
        // PG: numeric_send('1e-1001') = 0001 ff05 0000 03e9 03e8 (dscale 1001)
        let bin = text_to_binary("1e-1001").unwrap();
        assert_eq!(hex::encode(&bin), "0001ff05000003e903e8");
        let text = binary_to_text(&bin).unwrap();
        assert_eq!(text.len(), 1003);
        assert!(text.starts_with("0.000") && text.ends_with("0001"));
    }

    #[test]
    fn text_forms() {
        for (input, want) in [
            ("1.5e3", "1500"),
            ("1.5e-3", "0.0015"),
            (".5", "0.5"),
            ("5.", "5"),
            ("-0.00", "0.00"),
            ("007.50", "7.50"),
            ("+123456789.987654321", "123456789.987654321"),
            ("1e 5", "100000"),
            (
                "99999999999999999999999999999999999999.1",
                "99999999999999999999999999999999999999.1",
            ),
        ] {
            let bin = text_to_binary(input).unwrap();
            assert_eq!(binary_to_text(&bin).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn recv_truncates_to_dscale_and_strips() {
        // 1.2345 sent with dscale 2 -> PG prints 1.23
        let bin = hex::decode("000200000000000200010929").unwrap();
        assert_eq!(binary_to_text(&bin).unwrap(), "1.23");
        // negative value truncated to zero loses its sign
        let bin = hex::decode("0001ffff400000000001").unwrap();
        assert_eq!(binary_to_text(&bin).unwrap(), "0");
        // unstripped leading zero digit
        let bin = hex::decode("000200010000000000000005").unwrap();
        assert_eq!(binary_to_text(&bin).unwrap(), "5");
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            ".",
            "-",
            "1e",
            "1.2.3",
            "abc",
            "1e99999999999",
            "1e-20000",
            "0x1",
        ] {
            assert!(text_to_binary(bad).is_err(), "{bad}");
        }
        for hex in [
            "ffff000000000000",     // negative ndigits
            "0000000012340000",     // bad sign
            "0000000000004000",     // bad dscale
            "00010000000000002710", // digit 10000
            "0001000000000000",     // missing digit
        ] {
            let bin = hex::decode(hex).unwrap();
            assert!(matches!(
                binary_to_text(&bin),
                Err(CodecError::InvalidBinary { oid: NUMERIC, .. })
            ));
        }
    }
}
