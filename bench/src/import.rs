//! `fhirgate-bench import`: `$import` in initial-load mode into a fresh server, in resources per
//! second and the server's peak RSS. The NDJSON comes from Synthea transaction Bundles (one file
//! per resource type, `urn:uuid:` references turned into `Type/id`) or, without Bundles, from a
//! small synthetic set (patients with observations) for a smoke run. Reported as scenario 9.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use crate::dataset::Scan;
use crate::error::BenchError;
use crate::http::{Call, Connection, Target};
use crate::procfs;
use crate::report::{Machine, ScenarioResult};
use crate::server::{self, Server, ServerSpec};

/// 503 answers to status polls in a row after which the scenario gives up.
const BUSY_POLLS: u32 = 30;

/// What the import scenario needs.
pub struct ImportRun {
    pub spec: ServerSpec,
    pub token_command: Option<String>,
    /// A fixed bearer token, without a token command.
    pub bearer: Option<String>,
    /// Synthea Bundles; `None`: `synthetic_patients` made-up patients.
    pub bundles: Option<PathBuf>,
    pub synthetic_patients: usize,
    pub store: String,
    pub machine: Machine,
    /// After the import, export everything (scenario 8) from the same server.
    pub export: bool,
    /// Where to write what the request scenarios need to know about the imported Bundles
    /// (`suite --dataset`); the NDJSON files are removed after the import then.
    pub dataset: Option<PathBuf>,
}

impl ImportRun {
    /// Scenario 9's result, then scenario 8's when [`ImportRun::export`] is set.
    pub async fn run(&self) -> Result<Vec<ScenarioResult>, BenchError> {
        let inputs = self.spec.data_dir.join("import-inputs");
        let _ = std::fs::remove_dir_all(&inputs);
        std::fs::create_dir_all(&inputs).map_err(BenchError::file(&inputs))?;
        let mut scan = Scan::default();
        let (files, bundles, patients) = match &self.bundles {
            Some(dir) => from_bundles(dir, &inputs, &mut scan)?,
            None => synthetic(self.synthetic_patients, &inputs, &mut scan)?,
        };
        let lines: u64 = files.iter().map(|(_, _, n)| n).sum();
        eprintln!("import: {lines} resources in {} NDJSON files", files.len());
        let mut env = BTreeMap::new();
        env.insert("FHIRGATE_IMPORT_INPUT_DIRS".to_string(), inputs.display().to_string());
        let server = Server::start(&self.spec, &env).await?;
        let bearer = match &self.token_command {
            Some(cmd) => Some(server::token_from_command(cmd, &server::token_env(&self.spec, &env, &server.listen))?),
            None => self.bearer.clone(),
        };
        let target = Target::parse(&server.base_url, bearer)?;
        let mut conn = Connection::new(target.clone());
        let reset = procfs::reset_peak(server.pid);
        let before = procfs::sample(server.pid);
        let sampler = procfs::Sampler::start(server.pid);
        let started = Instant::now();
        let status = kick_off(&mut conn, &files).await?;
        let mut busy = 0;
        let manifest = poll(&mut conn, &status, &mut busy).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = procfs::sample(server.pid).zip(before).map(|(end, start)| end.cpu_seconds - start.cpu_seconds);
        let peak = procfs::peak_rss_mb(server.pid);
        let peaks = sampler.stop();
        let exported = if self.export { Some(self.export(&target, server.pid).await?) } else { None };
        server.stop().await?;

        let count = |key: &str| -> u64 {
            manifest[key].as_array().into_iter().flatten().filter_map(|o| o["count"].as_u64()).sum()
        };
        let (imported, failed) = (count("output"), count("error"));
        if let Some(path) = &self.dataset {
            scan.finish(bundles, imported, patients).write(path)?;
            std::fs::remove_dir_all(&inputs).map_err(BenchError::file(&inputs))?;
        }
        let per_second = imported as f64 / elapsed.max(1e-9);
        eprintln!("import: {imported} imported, {failed} failed in {elapsed:.1} s: {per_second:.0} resources/s");
        let mut r = ScenarioResult {
            scenario: 9,
            name: "$import, initial load (NDJSON files from an allowed directory)".into(),
            date: crate::report::today(),
            store: self.store.clone(),
            store_settings: String::new(),
            machine: self.machine.clone(),
            notes: vec![match &self.bundles {
                Some(dir) => format!("Synthea Bundles from `{}`, one NDJSON file per type", dir.display()),
                None => format!("synthetic: {} patients with 5 observations each", self.synthetic_patients),
            }],
            measurements: Vec::new(),
            figures: serde_json::Map::new(),
        };
        r.figures.insert("resources".into(), json!(imported));
        r.figures.insert("failed_lines".into(), json!(failed));
        r.figures.insert("seconds".into(), json!((elapsed * 100.0).round() / 100.0));
        r.figures.insert("resources_per_second".into(), json!(per_second.round()));
        r.figures.insert("server_cpu_seconds".into(), json!(cpu));
        r.figures.insert("peak_rss_mb".into(), json!(peak));
        r.figures.insert("peak_rss_reset".into(), json!(reset));
        r.figures.insert("sampled_peaks".into(), json!(peaks));
        r.figures.insert("status_polls_answered_503".into(), json!(busy));
        Ok(std::iter::once(r).chain(exported).collect())
    }

    /// Scenario 8 on the server just loaded: one system-level `$export` of all it imported.
    async fn export(&self, target: &Target, pid: u32) -> Result<ScenarioResult, BenchError> {
        let mut r = ScenarioResult {
            scenario: 8,
            name: "bulk $export (system level, every type)".into(),
            date: crate::report::today(),
            store: self.store.clone(),
            store_settings: String::new(),
            machine: self.machine.clone(),
            notes: vec!["run on the store scenario 9 just loaded, same server process".into()],
            measurements: Vec::new(),
            figures: serde_json::Map::new(),
        };
        let sampler = procfs::Sampler::start(pid);
        let before = procfs::sample(pid);
        crate::export::run(target, Some(pid), &mut r).await?;
        let cpu = procfs::sample(pid).zip(before).map(|(end, start)| end.cpu_seconds - start.cpu_seconds);
        r.figures.insert("server_cpu_seconds".into(), json!(cpu));
        r.figures.insert("sampled_peaks".into(), json!(sampler.stop()));
        Ok(r)
    }
}

/// Kicks off the initial load of `files` (`(type, path, lines)`); the status path.
async fn kick_off(conn: &mut Connection, files: &[(String, PathBuf, u64)]) -> Result<String, BenchError> {
    let mut parameter = vec![json!({ "name": "mode", "valueString": "InitialLoad" })];
    for (t, path, _) in files {
        parameter.push(json!({ "name": "input", "part": [
            { "name": "type", "valueString": t }, { "name": "url", "valueUri": path.display().to_string() } ] }));
    }
    let body = json!({ "resourceType": "Parameters", "parameter": parameter }).to_string();
    let mut call = Call::with_body(Method::POST, "$import", Bytes::from(body));
    call.headers.push(("prefer", "respond-async".into()));
    let reply = conn.send(&call).await?;
    if reply.status != 202 {
        return Err(BenchError::Server(format!(
            "$import kick-off: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )));
    }
    let location = reply.location.ok_or_else(|| BenchError::Server("$import: no Content-Location".into()))?;
    let rest = location.split_once("://").map_or(location.as_str(), |(_, r)| r);
    Ok(rest.split_once('/').map_or("", |(_, p)| p).to_owned())
}

/// Polls the status until the manifest (at most an hour). A 503 (the store busy with the job's
/// own writes) is counted in `busy` and polled again, up to [`BUSY_POLLS`] in a row.
async fn poll(conn: &mut Connection, status: &str, busy: &mut u32) -> Result<Value, BenchError> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut in_a_row = 0;
    while Instant::now() < deadline {
        let reply = conn.send(&Call::get(status)).await?;
        in_a_row = if reply.status == 503 { in_a_row + 1 } else { 0 };
        match reply.status {
            200 => return Ok(serde_json::from_slice(&reply.body)?),
            202 => tokio::time::sleep(Duration::from_millis(200)).await,
            503 if in_a_row < BUSY_POLLS => {
                *busy += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => {
                return Err(BenchError::Server(format!(
                    "$import status: {other} {}",
                    String::from_utf8_lossy(&reply.body)
                )));
            }
        }
    }
    Err(BenchError::Server("$import did not finish within an hour".into()))
}

/// One NDJSON file per resource type in `dir`; `(type, path, lines)` each.
struct Writers {
    dir: PathBuf,
    files: BTreeMap<String, (std::io::BufWriter<std::fs::File>, u64)>,
}

impl Writers {
    fn write(&mut self, resource: &Value) -> Result<(), BenchError> {
        let t = resource["resourceType"].as_str().unwrap_or("Unknown").to_owned();
        if !self.files.contains_key(&t) {
            let path = self.dir.join(format!("{t}.ndjson"));
            let file = std::fs::File::create(&path).map_err(BenchError::file(&path))?;
            self.files.insert(t.clone(), (std::io::BufWriter::new(file), 0));
        }
        if let Some((w, n)) = self.files.get_mut(&t) {
            serde_json::to_writer(&mut *w, resource)?;
            w.write_all(b"\n")?;
            *n += 1;
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<(String, PathBuf, u64)>, BenchError> {
        let mut out = Vec::new();
        for (t, (mut w, n)) in self.files {
            w.flush()?;
            out.push((t.clone(), self.dir.join(format!("{t}.ndjson")), n));
        }
        Ok(out)
    }
}

/// NDJSON files with the Bundles' resources, how many Bundles and the Patients' ids.
type Inputs = (Vec<(String, PathBuf, u64)>, u64, Vec<String>);

/// NDJSON from Synthea transaction Bundles: each entry's resource under the id of its
/// `urn:uuid:` full URL, references to such URLs turned into `Type/id`. `scan` sees every Bundle.
/// An entry whose full URL an earlier Bundle had (Synthea repeats the Organizations, Locations
/// and Practitioners in every patient's Bundle) is written once: an initial load rejects an id it
/// sees twice. (Full URLs are kept as 64-bit hashes: 2 million of them at 1,000 patients.)
fn from_bundles(bundles: &Path, dir: &Path, scan: &mut Scan) -> Result<Inputs, BenchError> {
    let mut writers = Writers { dir: dir.to_path_buf(), files: BTreeMap::new() };
    let files = crate::dataset::bundle_files(bundles)?;
    let mut patients = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for file in &files {
        let mut bundle: Value = serde_json::from_slice(&std::fs::read(file).map_err(BenchError::file(file))?)?;
        scan.add(&bundle);
        let entries = bundle["entry"].take();
        let entries = entries.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut ids: HashMap<String, String> = HashMap::new();
        for e in entries {
            if let (Some(url), Some(t)) = (e["fullUrl"].as_str(), e["resource"]["resourceType"].as_str()) {
                if let Some(uuid) = url.strip_prefix("urn:uuid:") {
                    ids.insert(url.to_owned(), format!("{t}/{uuid}"));
                }
            }
        }
        for e in entries {
            if let Some(url) = e["fullUrl"].as_str() {
                let mut hash = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(url, &mut hash);
                if !seen.insert(std::hash::Hasher::finish(&hash)) {
                    continue;
                }
            }
            let mut resource = e["resource"].clone();
            if let Some(uuid) = e["fullUrl"].as_str().and_then(|u| u.strip_prefix("urn:uuid:")) {
                resource["id"] = json!(uuid);
            }
            rewrite(&mut resource, &ids);
            if resource["resourceType"] == "Patient" {
                patients.extend(resource["id"].as_str().map(str::to_owned));
            }
            writers.write(&resource)?;
        }
    }
    Ok((writers.finish()?, files.len() as u64, patients))
}

/// Replaces `reference` values naming a Bundle's `urn:uuid:` entries.
fn rewrite(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(s) if key == "reference" => {
                        if let Some(to) = ids.get(s.as_str()) {
                            *s = to.clone();
                        }
                    }
                    other => rewrite(other, ids),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, ids)),
        _ => {}
    }
}

/// `patients` made-up patients with five observations each.
fn synthetic(patients: usize, dir: &Path, scan: &mut Scan) -> Result<Inputs, BenchError> {
    let mut writers = Writers { dir: dir.to_path_buf(), files: BTreeMap::new() };
    let mut ids = Vec::new();
    for p in 0..patients {
        let id = format!("bench-p{p}");
        let mut entry = vec![json!({ "resource": { "resourceType": "Patient", "id": id, "gender": "other",
            "name": [{ "family": format!("Bench{p}"), "given": ["Import"] }], "birthDate": "1970-01-01" } })];
        for o in 0..5 {
            entry.push(json!({ "resource": { "resourceType": "Observation", "id": format!("bench-p{p}-o{o}"),
                "status": "final", "subject": { "reference": format!("Patient/{id}") },
                "code": { "coding": [{ "system": "http://loinc.org", "code": "8302-2" }] },
                "effectiveDateTime": "2020-01-01", "valueQuantity": { "value": 170 + o, "unit": "cm" } } }));
        }
        let bundle = json!({ "resourceType": "Bundle", "type": "collection", "entry": entry });
        scan.add(&bundle);
        for e in bundle["entry"].as_array().into_iter().flatten() {
            writers.write(&e["resource"])?;
        }
        ids.push(id);
    }
    Ok((writers.finish()?, patients as u64, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_references_become_type_and_id() {
        let mut ids = HashMap::new();
        ids.insert("urn:uuid:1".to_owned(), "Patient/1".to_owned());
        let mut v = json!({ "subject": { "reference": "urn:uuid:1" }, "x": [{ "reference": "Other/2" }] });
        rewrite(&mut v, &ids);
        assert_eq!(v, json!({ "subject": { "reference": "Patient/1" }, "x": [{ "reference": "Other/2" }] }));
    }
}
