//! The server's resource use from `/proc/<pid>`: CPU seconds (`stat` utime + stime) and peak
//! resident memory (`status` VmHWM, reset at the start of a measurement through `clear_refs`).

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub cpu_seconds: f64,
}

/// What the server used during one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub pid: u32,
    pub cpu_seconds: f64,
    /// CPU microseconds per request (server CPU seconds / requests).
    pub cpu_us_per_request: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    /// False when the peak could not be reset: then it is the peak since the server started.
    pub peak_rss_reset: bool,
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// Reads CPU seconds of `pid`; `None` when the process is gone or `/proc` is unreadable.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at state, field 3.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Sample { cpu_seconds: (utime + stime) / clock_ticks() })
}

/// CPU seconds this process used since `start`.
pub fn cpu_since(start: Option<Sample>) -> Option<f64> {
    Some(sample(std::process::id())?.cpu_seconds - start?.cpu_seconds)
}

/// Resets the peak RSS of `pid` (writing 5 to `clear_refs`); false when not allowed.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The peak RSS of `pid` in MB (`VmHWM`).
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The largest resident set seen while a [`Sampler`] ran, in MB: all of it (`VmRSS`), and its
/// anonymous (heap) and file-backed parts (`RssAnon`, `RssFile`: a database's mapped pages).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RssPeaks {
    pub rss_mb: f64,
    pub anon_mb: f64,
    pub file_mb: f64,
}

/// Reads `/proc/<pid>/status` every 250 ms on a thread of its own until [`Sampler::stop`]:
/// `VmHWM` says how high the peak was, this says what it was made of.
pub struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<RssPeaks>,
}

impl Sampler {
    pub fn start(pid: u32) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peaks = RssPeaks::default();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    let mb = |key: &str| -> f64 {
                        let line = status.lines().find(|l| l.starts_with(key));
                        line.and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
                    };
                    peaks.rss_mb = peaks.rss_mb.max(mb("VmRSS:"));
                    peaks.anon_mb = peaks.anon_mb.max(mb("RssAnon:"));
                    peaks.file_mb = peaks.file_mb.max(mb("RssFile:"));
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            peaks
        });
        Self { stop, thread }
    }

    pub fn stop(self) -> RssPeaks {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The machine's 1-minute load average (`/proc/loadavg`): other work competing for the cores.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Watches a process over one measurement.
pub struct Watch {
    pid: u32,
    start: Option<Sample>,
    reset: bool,
}

impl Watch {
    pub fn start(pid: u32) -> Self {
        let reset = reset_peak(pid);
        Self { pid, start: sample(pid), reset }
    }

    pub fn finish(self, requests: u64) -> Option<Usage> {
        let end = sample(self.pid)?;
        let cpu_seconds = end.cpu_seconds - self.start?.cpu_seconds;
        Some(Usage {
            pid: self.pid,
            cpu_seconds,
            cpu_us_per_request: (requests > 0).then(|| cpu_seconds * 1e6 / requests as f64),
            peak_rss_mb: peak_rss_mb(self.pid),
            peak_rss_reset: self.reset,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(super::sample(pid).is_some_and(|s| s.cpu_seconds >= 0.0));
        assert!(super::peak_rss_mb(pid).is_some_and(|mb| mb > 0.0));
    }
}
