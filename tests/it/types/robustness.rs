//! Property tests: malformed input yields an error naming the OID, never a panic.

use super::common::*;
use pgsim::types::{binary_to_text, text_to_binary, CodecError};
use proptest::prelude::*;

fn all_oids() -> Vec<u32> {
    SCALARS
        .iter()
        .copied()
        .chain(ARRAYS.iter().map(|a| a.0))
        .collect()
}

fn oid_of(e: &CodecError) -> u32 {
    match e {
        CodecError::Unsupported { oid }
        | CodecError::InvalidText { oid, .. }
        | CodecError::InvalidBinary { oid, .. } => *oid,
    }
}

/// Text built from characters that matter to the parsers.
fn tricky_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(
                "{}[]\",\\ :.-+=eE0123456789xTZNULnafiy\t\u{b}\u{e9}"
                    .chars()
                    .collect::<Vec<_>>()
            ),
            any::<char>(),
        ],
        0..40,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        for oid in all_oids() {
            if let Err(e) = binary_to_text(oid, &bytes) {
                let is_binary_error = !matches!(e, CodecError::InvalidText { .. });
                prop_assert!(is_binary_error);
                prop_assert_eq!(oid_of(&e), oid);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in prop_oneof![any::<String>(), tricky_text()]) {
        for oid in all_oids() {
            if let Ok(bin) = text_to_binary(oid, &text) {
                // Whatever we accept must be printable and stable.
                let canon = binary_to_text(oid, &bin).unwrap();
                prop_assert_eq!(text_to_binary(oid, &canon).unwrap(), bin);
            } else if let Err(e) = text_to_binary(oid, &text) {
                let is_text_error = matches!(e, CodecError::InvalidText { .. });
                prop_assert!(is_text_error);
                prop_assert_eq!(oid_of(&e), oid);
            }
        }
    }

    #[test]
    fn mutated_binaries_never_panic(
        (oid, bin) in any_value(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut m = bin.clone();
        if !m.is_empty() {
            let i = pos.index(m.len());
            m[i] = byte;
            let _ = binary_to_text(oid, &m);
            m.truncate(cut.index(m.len()));
            let _ = binary_to_text(oid, &m);
        }
    }
}
