//! `bool`: one byte on the wire, `t`/`f` in text.

use super::{bad_bin, bad_text, exact, oid::BOOL, CodecError};

/// Parses PostgreSQL boolean input (`parse_bool_with_len` semantics).
pub(crate) fn parse(text: &str) -> Option<bool> {
    let v = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let lower = v.to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| lower.len() >= min && word.starts_with(&lower);
    match lower.as_bytes().first()? {
        b't' if prefix_of("true", 1) => Some(true),
        b'f' if prefix_of("false", 1) => Some(false),
        b'y' if prefix_of("yes", 1) => Some(true),
        b'n' if prefix_of("no", 1) => Some(false),
        b'o' if lower == "on" => Some(true),
        b'o' if prefix_of("off", 2) => Some(false),
        b'1' if lower.len() == 1 => Some(true),
        b'0' if lower.len() == 1 => Some(false),
        _ => None,
    }
}

/// Text -> one byte (0 or 1).
pub(crate) fn text_to_binary(text: &str) -> Result<Vec<u8>, CodecError> {
    parse(text).map(|b| vec![u8::from(b)]).ok_or_else(|| {
        bad_text(
            BOOL,
            format!("invalid input syntax for type boolean: {text:?}"),
        )
    })
}

/// One byte -> `t`/`f` (any non-zero byte is true, as in `boolrecv`).
pub(crate) fn binary_to_text(bin: &[u8]) -> Result<String, CodecError> {
    let [b] = exact::<1>(BOOL, bin).map_err(|_| bad_bin(BOOL, "expected exactly 1 byte"))?;
    Ok(if b != 0 { "t" } else { "f" }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_spellings() {
        for t in ["t", "TRUE", "tr", " yes ", "y", "on", "1", "On"] {
            assert_eq!(text_to_binary(t), Ok(vec![1]), "{t}");
        }
        for f in ["f", "False", "fal", "no", "n", "off", "of", "0", " of "] {
            assert_eq!(text_to_binary(f), Ok(vec![0]), "{f}");
        }
        for bad in ["", "o", "onn", "truex", "2", "10", "offf"] {
            assert!(text_to_binary(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn output() {
        assert_eq!(binary_to_text(&[1]).as_deref(), Ok("t"));
        assert_eq!(binary_to_text(&[0]).as_deref(), Ok("f"));
        assert_eq!(binary_to_text(&[7]).as_deref(), Ok("t"));
        assert!(binary_to_text(&[]).is_err());
        assert!(binary_to_text(&[0, 0]).is_err());
    }
}
