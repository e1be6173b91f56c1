//! The dataset: Synthea transaction Bundles (one per patient) posted to the FHIR base, which is
//! scenario 3 (transaction ingest, resources per second). What later scenarios need — the ids the
//! server gave the patients and the most frequent Observation codes — is kept in `dataset.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::driver::{Measurement, Mode};
use crate::error::BenchError;
use crate::http::{Call, Connection, Target};
use crate::procfs::Watch;
use crate::stats::Recorder;

/// An Observation code and how many Observations carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeCount {
    pub system: String,
    pub code: String,
    pub count: u64,
}

impl CodeCount {
    /// `system|code`, URL-encoded for a query string.
    pub fn token(&self) -> String {
        format!("{}%7C{}", self.system, self.code)
    }
}

/// What the scenarios need to know about the loaded data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dataset {
    pub bundles: u64,
    pub resources: u64,
    pub patients: Vec<String>,
    pub observation_codes: Vec<CodeCount>,
    /// The loaded patients' official family names (for `Patient?name=`).
    #[serde(default)]
    pub families: Vec<String>,
}

impl Dataset {
    pub fn read(path: &Path) -> Result<Self, BenchError> {
        Ok(serde_json::from_slice(&std::fs::read(path).map_err(BenchError::file(path))?)?)
    }

    pub fn write(&self, path: &Path) -> Result<(), BenchError> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?).map_err(BenchError::file(path))
    }

    /// The most frequent Observation code.
    pub fn top_code(&self) -> Result<&CodeCount, BenchError> {
        self.observation_codes.first().ok_or_else(|| BenchError::Dataset("no Observation codes".into()))
    }
}

/// The Bundle files of a directory (`*.json`), sorted by name so runs are repeatable.
pub fn bundle_files(dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(BenchError::file(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(BenchError::Dataset(format!("no *.json Bundles in `{}`", dir.display())));
    }
    Ok(files)
}

/// What a [`Dataset`] says about the data, gathered Bundle by Bundle: Observation codes with
/// their counts and the Patients' family names.
#[derive(Default)]
pub struct Scan {
    codes: BTreeMap<(String, String), u64>,
    families: Vec<String>,
}

impl Scan {
    /// Counts the Observation codes of one Bundle, and keeps its Patients' family names.
    pub fn add(&mut self, bundle: &Value) {
        let entries = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for resource in entries.iter().filter_map(|e| e.get("resource")) {
            match resource.get("resourceType").and_then(Value::as_str) {
                Some("Patient") => {
                    self.families
                        .extend(resource.pointer("/name/0/family").and_then(Value::as_str).map(str::to_string));
                    continue;
                }
                Some("Observation") => {}
                _ => continue,
            }
            let coding = resource.pointer("/code/coding/0");
            let system = coding.and_then(|c| c.get("system")).and_then(Value::as_str);
            let code = coding.and_then(|c| c.get("code")).and_then(Value::as_str);
            if let (Some(system), Some(code)) = (system, code) {
                *self.codes.entry((system.to_string(), code.to_string())).or_default() += 1;
            }
        }
    }

    fn merge(&mut self, other: Scan) {
        for (k, v) in other.codes {
            *self.codes.entry(k).or_default() += v;
        }
        self.families.extend(other.families);
    }

    /// The dataset of the scanned Bundles: the 20 commonest codes first, names sorted once each.
    pub fn finish(mut self, bundles: u64, resources: u64, mut patients: Vec<String>) -> Dataset {
        self.families.sort();
        self.families.dedup();
        patients.sort();
        let mut observation_codes: Vec<CodeCount> =
            self.codes.into_iter().map(|((system, code), count)| CodeCount { system, code, count }).collect();
        observation_codes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
        observation_codes.truncate(20);
        Dataset { bundles, resources, patients, observation_codes, families: self.families }
    }
}

/// The id of the Patient a transaction created, from its response Bundle.
fn patient_id(response: &[u8]) -> Option<String> {
    let bundle: Value = serde_json::from_slice(response).ok()?;
    bundle.get("entry")?.as_array()?.iter().find_map(|e| {
        let location = e.pointer("/response/location")?.as_str()?;
        let rest = location.split("Patient/").nth(1)?;
        Some(rest.split('/').next()?.to_string())
    })
}

/// A Synthea transaction as `batch` Bundles of at most `size` entries, for stores whose
/// transactions are smaller than a patient (Cosmos DB: 49 resources). Each entry becomes a PUT
/// of its resource at the id of its `urn:uuid:` full URL, and every reference to such a URL is
/// rewritten to `Type/id`: a reference cannot resolve across Bundles.
pub fn as_batches(bundle: &Value, size: usize) -> Vec<Value> {
    let entries = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut local = std::collections::HashMap::new();
    for entry in entries {
        let url = entry.get("fullUrl").and_then(Value::as_str).unwrap_or_default();
        let kind = entry.pointer("/resource/resourceType").and_then(Value::as_str);
        if let (Some(id), Some(kind)) = (url.strip_prefix("urn:uuid:"), kind) {
            local.insert(url.to_owned(), (kind.to_owned(), id.to_owned()));
        }
    }
    let puts: Vec<Value> = entries
        .iter()
        .filter_map(|entry| {
            let url = entry.get("fullUrl").and_then(Value::as_str)?;
            let (kind, id) = local.get(url)?;
            let mut resource = entry.get("resource")?.clone();
            rewrite_references(&mut resource, &local);
            resource["id"] = Value::String(id.clone());
            let request = serde_json::json!({"method": "PUT", "url": format!("{kind}/{id}")});
            Some(serde_json::json!({"resource": resource, "request": request}))
        })
        .collect();
    puts.chunks(size.max(1))
        .map(|chunk| serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": chunk}))
        .collect()
}

/// Replaces every string that is a key of `local` (a `urn:uuid:` URL) with `Type/id`.
fn rewrite_references(value: &mut Value, local: &std::collections::HashMap<String, (String, String)>) {
    match value {
        Value::String(s) => {
            if let Some((kind, id)) = local.get(s.as_str()) {
                *s = format!("{kind}/{id}");
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_references(v, local)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite_references(v, local)),
        _ => {}
    }
}

/// The entries of a batch response that succeeded.
fn batch_successes(response: &[u8]) -> u64 {
    let Ok(bundle) = serde_json::from_slice::<Value>(response) else { return 0 };
    let entries = bundle.get("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .filter(|e| e.pointer("/response/status").and_then(Value::as_str).is_some_and(|s| s.starts_with('2')))
        .count() as u64
}

/// One patient's Bundle sent whole (a transaction) or as batches of `batch_size`; the resources
/// stored and the Patient's id, or `None` when it failed.
async fn send_patient(
    conn: &mut Connection,
    recorder: &mut Recorder,
    raw: Vec<u8>,
    bundle: &Value,
    batch_size: Option<usize>,
    path: &Path,
) -> Option<(u64, Option<String>)> {
    let calls: Vec<(&'static str, Bytes)> = match batch_size {
        None => vec![("transaction", Bytes::from(raw))],
        Some(size) => as_batches(bundle, size)
            .iter()
            .map(|b| ("batch", Bytes::from(serde_json::to_vec(b).unwrap_or_default())))
            .collect(),
    };
    let (mut stored, mut patient) = (0, None);
    for (kind, body) in calls {
        let sent = Instant::now();
        match conn.send(&Call::with_body(Method::POST, "", body)).await {
            Ok(reply) if (200..300).contains(&reply.status) => {
                recorder.kind(kind).record(reply.status, sent.elapsed());
                if batch_size.is_some() {
                    stored += batch_successes(&reply.body);
                } else {
                    stored += bundle.get("entry").and_then(Value::as_array).map_or(0, Vec::len) as u64;
                    patient = patient_id(&reply.body);
                }
            }
            Ok(reply) => {
                recorder.kind(kind).record(reply.status, sent.elapsed());
                let text = String::from_utf8_lossy(&reply.body);
                eprintln!("bundle `{}`: {} {:.300}", path.display(), reply.status, text);
                return None;
            }
            Err(e) => {
                recorder.kind(kind).record_transport_error(sent.elapsed());
                eprintln!("bundle `{}`: {e}", path.display());
                return None;
            }
        }
    }
    if batch_size.is_some() {
        patient = bundle.get("entry").and_then(Value::as_array).and_then(|entries| {
            entries.iter().find_map(|e| {
                (e.pointer("/resource/resourceType")? == "Patient")
                    .then(|| e.pointer("/resource/id")?.as_str().map(str::to_owned))
                    .flatten()
            })
        });
    }
    Some((stored, patient))
}

/// Posts every Bundle of `files` with `clients` concurrent connections, whole or as batches of
/// `batch_size`; the measurement is scenario 3 (its throughput counts requests;
/// `resources_per_second` is in the dataset figures).
pub async fn load(
    target: &Target,
    files: Vec<PathBuf>,
    clients: usize,
    batch_size: Option<usize>,
    server_pid: Option<u32>,
) -> Result<(Dataset, Measurement, f64), BenchError> {
    let files = Arc::new(files);
    let next = Arc::new(AtomicUsize::new(0));
    let watch = server_pid.map(Watch::start);
    let generator = crate::procfs::sample(std::process::id());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (files, next, target) = (Arc::clone(&files), Arc::clone(&next), target.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::new(target);
            let mut recorder = Recorder::default();
            let mut scan = Scan::default();
            let (mut resources, mut patients) = (0u64, Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let raw = std::fs::read(path).map_err(BenchError::file(path))?;
                let bundle: Value = serde_json::from_slice(&raw)?;
                scan.add(&bundle);
                if let Some((stored, patient)) =
                    send_patient(&mut conn, &mut recorder, raw, &bundle, batch_size, path).await
                {
                    resources += stored;
                    patients.extend(patient);
                }
            }
            Ok::<_, BenchError>((recorder, scan, resources, patients))
        }));
    }
    let mut recorder = Recorder::default();
    let mut scan = Scan::default();
    let (mut resources, mut patients) = (0u64, Vec::new());
    for task in tasks {
        let (r, s, n, p) = task.await.map_err(|e| BenchError::Dataset(e.to_string()))??;
        recorder.merge(&r);
        scan.merge(s);
        resources += n;
        patients.extend(p);
    }
    let elapsed = start.elapsed();
    let total = recorder.total();
    let dataset = scan.finish(files.len() as u64, resources, patients);
    let measurement = Measurement {
        label: "transaction ingest".into(),
        mode: Mode::Closed { clients },
        duration_seconds: elapsed.as_secs_f64(),
        server: watch.and_then(|w| w.finish(resources)),
        total: total.summary(elapsed),
        kinds: recorder.kinds.iter().map(|(k, s)| ((*k).to_string(), s.summary(elapsed))).collect(),
        load_average_1m: crate::procfs::load_average(),
        generator_cpu_seconds: crate::procfs::cpu_since(generator),
    };
    let per_second = resources as f64 / elapsed.as_secs_f64().max(1e-9);
    Ok((dataset, measurement, per_second))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_transaction_as_batches_of_puts_with_references_rewritten() {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"},
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:o1", "resource": {"resourceType": "Observation", "status": "final",
                "subject": {"reference": "urn:uuid:p1"}, "note": [{"text": "urn:uuid:elsewhere"}]},
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": "urn:uuid:o2", "resource": {"resourceType": "Observation", "status": "final"},
             "request": {"method": "POST", "url": "Observation"}}]});
        let batches = as_batches(&bundle, 2);
        assert_eq!(batches.len(), 2);
        assert!(batches.iter().all(|b| b["type"] == "batch"));
        let entries: Vec<&Value> = batches.iter().flat_map(|b| b["entry"].as_array().into_iter().flatten()).collect();
        let urls: Vec<&str> = entries.iter().filter_map(|e| e["request"]["url"].as_str()).collect();
        assert_eq!(urls, ["Patient/p1", "Observation/o1", "Observation/o2"]);
        assert!(entries.iter().all(|e| e["request"]["method"] == "PUT"));
        assert_eq!(entries[1]["resource"]["subject"]["reference"], "Patient/p1");
        assert_eq!(entries[1]["resource"]["id"], "o1");
        assert_eq!(entries[1]["resource"]["note"][0]["text"], "urn:uuid:elsewhere", "not a URL of this Bundle");
    }
}
