//! `bytea`: raw bytes on the wire, `\x` + lowercase hex in text.

use super::{bad_text, oid::BYTEA, CodecError};

/// Hex (`\x...`, whitespace between bytes allowed) or escape format -> bytes.
pub(crate) fn text_to_binary(text: &str) -> Result<Vec<u8>, CodecError> {
    let b = text.as_bytes();
    if let Some(hex) = b.strip_prefix(b"\\x") {
        return decode_hex(hex);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            match b.get(i + 1..i + 4) {
                Some([d1 @ b'0'..=b'3', d2 @ b'0'..=b'7', d3 @ b'0'..=b'7']) => {
                    out.push(((d1 - b'0') << 6) | ((d2 - b'0') << 3) | (d3 - b'0'));
                    i += 4;
                }
                _ => return Err(bad_text(BYTEA, "invalid input syntax for type bytea")),
            }
        }
    }
    Ok(out)
}

fn decode_hex(hex: &[u8]) -> Result<Vec<u8>, CodecError> {
    let nibble = |c: u8| -> Result<u8, CodecError> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| bad_text(BYTEA, format!("invalid hexadecimal digit: {:?}", c as char)))
    };
    let mut out = Vec::with_capacity(hex.len() / 2);
    let mut i = 0;
    while i < hex.len() {
        if matches!(hex[i], b' ' | b'\n' | b'\t' | b'\r') {
            i += 1;
            continue;
        }
        let hi = nibble(hex[i])?;
        let lo = match hex.get(i + 1) {
            Some(&c) => nibble(c)?,
            None => {
                return Err(bad_text(
                    BYTEA,
                    "invalid hexadecimal data: odd number of digits",
                ))
            }
        };
        out.push((hi << 4) | lo);
        i += 2;
    }
    Ok(out)
}

/// Bytes -> `\x` + lowercase hex.
pub(crate) fn binary_to_text(bin: &[u8]) -> String {
    format!("\\x{}", hex::encode(bin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_pairs() {
        assert_eq!(binary_to_text(&[0xde, 0xad, 0x01]), "\\xdead01");
        assert_eq!(binary_to_text(&[]), "\\x");
        assert_eq!(text_to_binary("\\xDEad01"), Ok(vec![0xde, 0xad, 1]));
        assert_eq!(text_to_binary("\\x de ad\n"), Ok(vec![0xde, 0xad]));
        assert_eq!(text_to_binary("\\x"), Ok(vec![]));
    }

    #[test]
    fn escape_format() {
        assert_eq!(
            text_to_binary("a\\\\b\\001\\377"),
            Ok(vec![b'a', b'\\', b'b', 1, 255])
        );
        assert_eq!(text_to_binary("abc"), Ok(b"abc".to_vec()));
        assert!(text_to_binary("\\").is_err());
        assert!(text_to_binary("\\400").is_err());
        assert!(text_to_binary("\\12").is_err());
    }

    #[test]
    fn bad_hex() {
        assert!(text_to_binary("\\xabc").is_err());
        assert!(text_to_binary("\\xzz").is_err());
        assert!(text_to_binary("\\xa b").is_err());
    }
}
