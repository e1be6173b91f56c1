//! The process's resident memory and open file descriptors, read from `/proc` at scrape (one
//! small file and one directory listing: cheap, and never on a request's path). Elsewhere than
//! Linux there is no `/proc/self` and the gauges stay 0.

/// What the process uses now.
pub struct Usage {
    pub resident_bytes: i64,
    pub open_fds: i64,
}

/// The process's usage, or `None` without `/proc`.
pub fn read() -> Option<Usage> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    // `VmRSS:     12345 kB`
    let kib: i64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    Some(Usage {
        resident_bytes: kib.saturating_mul(1024),
        // The listing's own descriptor is counted too.
        open_fds: i64::try_from(open_fds.saturating_sub(1)).unwrap_or(i64::MAX),
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_has_memory_and_descriptors() {
        let usage = super::read();
        assert!(usage.as_ref().is_some_and(|u| u.resident_bytes > 1_000_000 && u.open_fds >= 3), "stdin/out/err");
    }
}
