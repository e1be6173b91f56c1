//! Results on disk: one JSON file per scenario (`<date>-s<N>-<store>.json`) and one Markdown
//! table per suite run (`<date>-<store>.md`), which `bench/README.md` copies.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::driver::{Measurement, Mode};
use crate::error::BenchError;

/// Everything measured for one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: u8,
    pub name: String,
    pub date: String,
    pub store: String,
    pub store_settings: String,
    pub machine: Machine,
    pub notes: Vec<String>,
    pub measurements: Vec<Measurement>,
    /// Figures particular to a scenario (ingest resources/s, gateway cost).
    pub figures: serde_json::Map<String, serde_json::Value>,
}

/// Where the figures were measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub load_generator_threads: usize,
    pub note: String,
}

/// Today's date (UTC) as `YYYY-MM-DD`, without a date crate (days-from-civil, inverted).
pub fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Writes the scenario's JSON file and returns its path.
pub fn write_json(dir: &Path, result: &ScenarioResult) -> Result<PathBuf, BenchError> {
    std::fs::create_dir_all(dir).map_err(BenchError::file(dir))?;
    let path = dir.join(format!("{}-s{}-{}.json", result.date, result.scenario, result.store));
    std::fs::write(&path, serde_json::to_vec_pretty(result)?).map_err(BenchError::file(&path))?;
    Ok(path)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// A rate with the digits that matter: `10183`, `23.4`, `0.35`.
fn rate(v: f64) -> String {
    match v {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

/// The Markdown table of all results of a run.
pub fn markdown(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    if let Some(first) = results.first() {
        let _ = writeln!(
            out,
            "Measured {} on {} cores ({}); store: {} ({}).\n",
            first.date, first.machine.cores, first.machine.note, first.store, first.store_settings
        );
    }
    out.push_str("| # | run | load | req/s | p50 ms | p95 ms | p99 ms | max ms | non-2xx | transport err | server CPU µs/req | server peak RSS MB | generator CPU s/s | load avg |\n");
    out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        for m in &r.measurements {
            let load = match m.mode {
                Mode::Closed { clients } => format!("{clients} client{}", if clients == 1 { "" } else { "s" }),
                Mode::Open { rate, connections } => format!("{rate:.0}/s open, {connections} conns"),
            };
            let t = &m.total;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} | {} | {} |",
                r.scenario,
                m.label,
                load,
                rate(t.throughput_per_second),
                t.latency_ms.p50,
                t.latency_ms.p95,
                t.latency_ms.p99,
                t.latency_ms.max,
                t.non_2xx,
                t.transport_errors,
                opt(m.server.as_ref().and_then(|s| s.cpu_us_per_request), 0),
                opt(m.server.as_ref().and_then(|s| s.peak_rss_mb), 0),
                opt(m.generator_cpu_seconds.map(|c| c / m.duration_seconds.max(1e-9)), 2),
                opt(m.load_average_1m, 1),
            );
        }
    }
    let notes: Vec<String> = results
        .iter()
        .flat_map(|r| {
            let figures = r.figures.iter().map(move |(k, v)| format!("- scenario {}: {k} = {v}", r.scenario));
            let notes = r.notes.iter().map(move |n| format!("- scenario {}: {n}", r.scenario));
            figures.chain(notes)
        })
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn today_is_a_date() {
        let d = super::today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
    }
}
