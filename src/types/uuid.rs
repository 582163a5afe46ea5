//! `uuid`: 16 raw bytes, lowercase `8-4-4-4-12` text.

use super::{bad_text, exact, oid::UUID, CodecError};

/// Text -> 16 bytes. Accepts what `uuid_in` accepts: optional braces, any
/// case, and an optional hyphen after any group of four hex digits.
pub(crate) fn text_to_binary(text: &str) -> Result<Vec<u8>, CodecError> {
    let err = || {
        bad_text(
            UUID,
            format!("invalid input syntax for type uuid: {text:?}"),
        )
    };
    let mut s = text.as_bytes();
    let braces = s.first() == Some(&b'{');
    if braces {
        s = &s[1..];
    }
    let mut out = Vec::with_capacity(16);
    for i in 0..16 {
        let (Some(hi), Some(lo)) = (
            s.first().and_then(|&c| (c as char).to_digit(16)),
            s.get(1).and_then(|&c| (c as char).to_digit(16)),
        ) else {
            return Err(err());
        };
        out.push((hi * 16 + lo) as u8);
        s = &s[2..];
        if s.first() == Some(&b'-') && i % 2 == 1 && i < 15 {
            s = &s[1..];
        }
    }
    if braces {
        s = s.strip_prefix(b"}").ok_or_else(err)?;
    }
    if !s.is_empty() {
        return Err(err());
    }
    Ok(out)
}

/// 16 bytes -> canonical lowercase text.
pub(crate) fn binary_to_text(bin: &[u8]) -> Result<String, CodecError> {
    let b: [u8; 16] = exact(UUID, bin)?;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANON: &str = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";

    #[test]
    fn forms() {
        let bin = text_to_binary(CANON).unwrap();
        assert_eq!(bin[0], 0xa0);
        assert_eq!(bin[15], 0x11);
        for t in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
        ] {
            assert_eq!(text_to_binary(t).as_ref(), Ok(&bin), "{t}");
        }
        assert_eq!(binary_to_text(&bin).as_deref(), Ok(CANON));
    }

    #[test]
    fn errors() {
        for t in [
            "",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a-0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            assert!(text_to_binary(t).is_err(), "{t}");
        }
        assert!(binary_to_text(&[0; 15]).is_err());
    }
}
