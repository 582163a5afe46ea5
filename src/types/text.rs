//! `text`, `varchar`, `bpchar`, `name` and `"char"`.

use super::{bad_bin, bad_text, oid, CodecError};

/// Longest `name` in bytes (`NAMEDATALEN - 1`).
const NAME_MAX: usize = 63;

/// Text -> bytes. `name` is clipped to 63 bytes on a character boundary
/// (as `namein` does); `"char"` keeps one byte (`charin`, incl. `\ooo`).
pub(crate) fn text_to_binary(oid: u32, text: &str) -> Result<Vec<u8>, CodecError> {
    match oid {
        oid::CHAR => Ok(vec![char_in(text)]),
        oid::NAME => {
            let mut end = text.len().min(NAME_MAX);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            Ok(text.as_bytes()[..end].to_vec())
        }
        _ => {
            if text.contains('\0') {
                return Err(bad_text(oid, "text contains a NUL character"));
            }
            Ok(text.as_bytes().to_vec())
        }
    }
}

/// Bytes -> text; must be valid UTF-8 without NUL bytes.
pub(crate) fn binary_to_text(oid: u32, bin: &[u8]) -> Result<String, CodecError> {
    if oid == oid::CHAR {
        return match bin {
            [b] => Ok(char_out(*b)),
            _ => Err(bad_bin(oid, "\"char\" must be exactly 1 byte")),
        };
    }
    if oid == oid::NAME && bin.len() > NAME_MAX {
        return Err(bad_bin(oid, "identifier too long"));
    }
    let s = std::str::from_utf8(bin)
        .map_err(|e| bad_bin(oid, format!("invalid byte sequence for encoding UTF8: {e}")))?;
    if s.contains('\0') {
        return Err(bad_bin(
            oid,
            "invalid byte sequence for encoding UTF8: 0x00",
        ));
    }
    Ok(s.to_string())
}

/// `charin`: a 4-byte `\ooo` is an octal byte, otherwise the first byte.
fn char_in(text: &str) -> u8 {
    let b = text.as_bytes();
    let oct = |c: u8| (b'0'..=b'7').contains(&c);
    if b.len() == 4 && b[0] == b'\\' && oct(b[1]) && oct(b[2]) && oct(b[3]) {
        let v =
            (u32::from(b[1] - b'0') << 6) | (u32::from(b[2] - b'0') << 3) | u32::from(b[3] - b'0');
        return (v & 0xff) as u8;
    }
    b.first().copied().unwrap_or(0)
}

/// `charout`: high-bit bytes as `\ooo`, NUL as the empty string.
fn char_out(b: u8) -> String {
    match b {
        0 => String::new(),
        0x80.. => format!("\\{:03o}", b),
        _ => char::from(b).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oid::{BPCHAR, CHAR, NAME, TEXT, VARCHAR};

    #[test]
    fn text_unchanged() {
        for oid in [TEXT, VARCHAR, BPCHAR, NAME] {
            assert_eq!(
                text_to_binary(oid, "héllo "),
                Ok("héllo ".as_bytes().to_vec())
            );
            assert_eq!(
                binary_to_text(oid, "héllo ".as_bytes()).as_deref(),
                Ok("héllo ")
            );
        }
        assert_eq!(binary_to_text(TEXT, b"").as_deref(), Ok(""));
        assert!(binary_to_text(TEXT, &[0xff]).is_err());
        assert!(binary_to_text(TEXT, b"a\0").is_err());
    }

    #[test]
    fn name_clipped() {
        let long = "é".repeat(40);
        let bin = text_to_binary(NAME, &long).unwrap();
        assert_eq!(bin.len(), 62);
        assert!(binary_to_text(NAME, &[b'a'; 64]).is_err());
    }

    #[test]
    fn char_type() {
        assert_eq!(text_to_binary(CHAR, "abc"), Ok(vec![b'a']));
        assert_eq!(text_to_binary(CHAR, ""), Ok(vec![0]));
        assert_eq!(text_to_binary(CHAR, "\\351"), Ok(vec![0xe9]));
        assert_eq!(text_to_binary(CHAR, "é"), Ok(vec![0xc3]));
        assert_eq!(binary_to_text(CHAR, &[0xe9]).as_deref(), Ok("\\351"));
        assert_eq!(binary_to_text(CHAR, &[0]).as_deref(), Ok(""));
        assert_eq!(binary_to_text(CHAR, b"A").as_deref(), Ok("A"));
        assert!(binary_to_text(CHAR, b"").is_err());
        assert!(binary_to_text(CHAR, b"ab").is_err());
    }
}
