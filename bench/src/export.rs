//! Scenario 8: bulk `$export` of the whole loaded store (system level, every type): the time
//! from the kick-off to the manifest, resources exported per second, the server's peak RSS
//! during the job, then the download of every file.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::BenchError;
use crate::http::{Call, Connection, Target};
use crate::report::ScenarioResult;

/// The longest a job may take before the scenario gives up.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Runs one export into `r` (server `pid` watched when known).
pub async fn run(target: &Target, pid: Option<u32>, r: &mut ScenarioResult) -> Result<(), BenchError> {
    let mut connection = Connection::new(target.clone());
    let peak_reset = pid.is_some_and(crate::procfs::reset_peak);
    let started = Instant::now();
    let kick = Call { headers: vec![("prefer", "respond-async".to_owned())], ..Call::get("$export") };
    let kicked = connection.send(&kick).await?;
    let status_url = match (kicked.status, kicked.location) {
        (202, Some(url)) => url,
        (status, _) => {
            let body = String::from_utf8_lossy(&kicked.body).into_owned();
            return Err(BenchError::Dataset(format!("$export kick-off answered {status}: {body}")));
        }
    };
    let status_path = below_base(target, &status_url);
    let manifest: Value = loop {
        let reply = connection.send(&Call::get(status_path.clone())).await?;
        match reply.status {
            200 => break serde_json::from_slice(&reply.body).map_err(|e| BenchError::Dataset(e.to_string()))?,
            202 if started.elapsed() < MAX_WAIT => tokio::time::sleep(Duration::from_millis(200)).await,
            status => {
                let body = String::from_utf8_lossy(&reply.body).into_owned();
                return Err(BenchError::Dataset(format!("$export status answered {status}: {body}")));
            }
        }
    };
    let job = started.elapsed().as_secs_f64();
    let peak = pid.filter(|_| peak_reset).and_then(crate::procfs::peak_rss_mb);
    let outputs = manifest["output"].as_array().cloned().unwrap_or_default();
    let resources: u64 = outputs.iter().filter_map(|o| o["count"].as_u64()).sum();
    let downloading = Instant::now();
    let mut bytes = 0usize;
    for output in &outputs {
        let url = output["url"].as_str().unwrap_or_default();
        let reply = connection.send(&Call::get(below_base(target, url))).await?;
        if reply.status != 200 {
            return Err(BenchError::Dataset(format!("download of `{url}` answered {}", reply.status)));
        }
        bytes += reply.body.len();
    }
    let download = downloading.elapsed().as_secs_f64();
    let per_second = resources as f64 / job.max(f64::EPSILON);
    eprintln!("scenario 8: {resources} resources in {job:.1} s ({per_second:.0} resources/s), peak RSS {peak:?} MB");
    r.figures.insert("resources".into(), json!(resources));
    r.figures.insert("files".into(), json!(outputs.len()));
    r.figures.insert("job_seconds".into(), json!((job * 100.0).round() / 100.0));
    r.figures.insert("resources_per_second".into(), json!(per_second.round()));
    r.figures.insert("download_seconds".into(), json!((download * 100.0).round() / 100.0));
    r.figures.insert("download_mb".into(), json!((bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0));
    if let Some(peak) = peak {
        r.figures.insert("peak_rss_mb".into(), json!(peak.round()));
    } else {
        r.notes.push("peak RSS not measured (server pid unknown, or clear_refs not allowed)".into());
    }
    let _ = connection
        .send(&Call { method: hyper::Method::DELETE, path: status_path, body: None, headers: Vec::new() })
        .await;
    Ok(())
}

/// The path below the target's base of a URL the server gave.
fn below_base(target: &Target, url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split_once('/').map_or("", |(_, path)| path);
    let base = target.base_path.trim_start_matches('/');
    path.strip_prefix(base).unwrap_or(path).to_owned()
}
