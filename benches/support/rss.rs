//! Resident memory of a process, as the kernel counts it (`VmRSS`), for
//! the memory figures of the examples that `benches/compare.sh` runs.

/// `VmRSS` in KiB of `pid` (this process when `None`); 0 when unreadable.
pub fn rss_kib(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
