//! Names in the startup packet as PostgreSQL uses them.

/// `NAMEDATALEN - 1`: the longest name PostgreSQL keeps.
pub(crate) const MAX_NAME_BYTES: usize = 63;

/// A database or user name from the startup packet, as PostgreSQL 15 looks
/// it up: cut to 63 bytes (`ProcessStartupPacket` truncates bytes, not
/// characters). A cut inside a UTF-8 character leaves a name no catalog
/// holds (PostgreSQL answers 3D000 naming the cut byte); here that byte
/// becomes U+FFFD, which no recorded name holds either.
pub(crate) fn startup_name(name: &str) -> String {
    match name.as_bytes().get(..MAX_NAME_BYTES) {
        Some(cut) if name.len() > MAX_NAME_BYTES => String::from_utf8_lossy(cut).into_owned(),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_to_63_bytes_as_postgresql_does() {
        assert_eq!(startup_name("pgsim_demo"), "pgsim_demo");
        let exact = "d".repeat(63);
        assert_eq!(startup_name(&exact), exact);
        assert_eq!(startup_name(&"d".repeat(70)), exact);
        // 62 ASCII bytes then a 2-byte character: the cut falls inside it.
        let split = format!("{}ézzz", "a".repeat(62));
        assert_eq!(startup_name(&split), format!("{}\u{FFFD}", "a".repeat(62)));
        // A 2-byte character ending exactly at byte 63 is kept.
        let whole = format!("{}ézzz", "a".repeat(61));
        assert_eq!(startup_name(&whole), format!("{}é", "a".repeat(61)));
    }
}
