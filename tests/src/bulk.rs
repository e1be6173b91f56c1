//! Bulk `$export` and `$import` from the client's side, for the end-to-end tests: kick off,
//! poll until the manifest, download every file.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Reply, Server, TestResult, backend};

/// `GET <path>` with `Prefer: respond-async` as `token`.
pub fn kickoff(s: &Server, token: &str, path: &str) -> TestResult<Reply> {
    s.send_as(Some(token), "GET", path, None, &[("Prefer", "respond-async")])
}

/// `POST $import` (`Prefer: respond-async`) as `token` of one Patient input at `url` in `mode`.
pub fn import_patients(s: &Server, token: &str, mode: &str, url: &str) -> TestResult<Reply> {
    let body = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "mode", "valueString": mode },
        { "name": "input", "part": [{ "name": "type", "valueString": "Patient" }, { "name": "url", "valueUri": url }] } ] });
    s.send_as(Some(token), "POST", "$import", Some(body.to_string().as_bytes()), &[("Prefer", "respond-async")])
}

/// The path below the base of an absolute URL the server gave (on its address, or on its
/// configured `server.base_url`).
pub fn below_base<'a>(s: &Server, url: &'a str) -> TestResult<&'a str> {
    let base = s.base();
    if let Some(path) = url.strip_prefix(base.as_str()) {
        return Ok(path.trim_start_matches('/'));
    }
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).ok_or_else(|| format!("`{url}` is not absolute"))?;
    Ok(after_scheme.split_once('/').map_or("", |(_, path)| path))
}

/// The status URL path of a kick-off answer (checked: 202 with `Content-Location`).
pub fn status_path(s: &Server, kicked: &Reply) -> TestResult<String> {
    if kicked.status != 202 {
        return Err(format!("kick-off answered {}: {}", kicked.status, kicked.body).into());
    }
    let location = kicked.header("Content-Location").ok_or("no Content-Location")?;
    Ok(below_base(s, location)?.to_owned())
}

/// Polls the status URL as `token` until the manifest (200), checking the 202s on the way.
pub fn manifest(s: &Server, token: &str, status: &str) -> TestResult<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = s.send_as(Some(token), "GET", status, None, &[])?;
        match r.status {
            200 => return r.json(),
            202 => {
                if r.header("X-Progress").is_none() || r.header("Retry-After").is_none() {
                    return Err(format!("a 202 poll without X-Progress and Retry-After: {:?}", r.headers).into());
                }
            }
            other => return Err(format!("poll answered {other}: {}", r.body).into()),
        }
        if Instant::now() > deadline {
            return Err("the export did not finish within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every resource of the manifest's `output` files, downloaded as `token`.
pub fn download(s: &Server, token: &str, manifest: &Value) -> TestResult<Vec<Value>> {
    let mut resources = Vec::new();
    for output in manifest["output"].as_array().ok_or("no output")? {
        let url = output["url"].as_str().ok_or("output without url")?;
        let r = s.send_as(Some(token), "GET", below_base(s, url)?, None, &[])?;
        if r.status != 200 {
            return Err(format!("download answered {}: {}", r.status, r.body).into());
        }
        let lines: Vec<Value> = r.body.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
        if lines.len() as u64 != output["count"].as_u64().unwrap_or(u64::MAX) {
            return Err(format!("`{url}` holds {} lines, the manifest says {}", lines.len(), output["count"]).into());
        }
        if lines.iter().any(|l| l["resourceType"] != output["type"]) {
            return Err(format!("`{url}` holds resources of another type than {}", output["type"]).into());
        }
        resources.extend(lines);
    }
    Ok(resources)
}

/// Kick-off, poll, download: every resource exported.
pub fn export_all(s: &Server, token: &str, path: &str) -> TestResult<Vec<Value>> {
    let status = status_path(s, &kickoff(s, token, path)?)?;
    let manifest = manifest(s, token, &status)?;
    download(s, token, &manifest)
}

/// `Type/id` of each resource, sorted.
pub fn keys(resources: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = resources
        .iter()
        .map(|r| format!("{}/{}", r["resourceType"].as_str().unwrap_or("?"), r["id"].as_str().unwrap_or("?")))
        .collect();
    keys.sort();
    keys
}

/// Through a remote target (`FHIRGATE_E2E_STORE=remote`) bulk jobs are refused: a remote's job
/// would run under the gateway's credentials, its files (export) or writes (import) beyond any
/// data-level decision of the gateway. Checks both refusals and tells the caller to skip the rest.
pub fn runs_remote() -> TestResult<bool> {
    if backend() != "remote" {
        return Ok(false);
    }
    let s = Server::start("bulk-remote")?;
    let token = s.token.clone().ok_or("no token")?;
    let r = kickoff(&s, &token, "$export")?;
    if r.status != 400 || !r.body.contains("not-supported") {
        return Err(format!("through a remote target `$export` answered {}: {}", r.status, r.body).into());
    }
    let body = serde_json::json!({"resourceType": "Parameters", "parameter": [
        {"name": "mode", "valueString": "IncrementalLoad"},
        {"name": "input", "part": [{"name": "type", "valueString": "Patient"}, {"name": "url", "valueUri": "/tmp/p.ndjson"}]}]});
    let r =
        s.send_as(Some(&token), "POST", "$import", Some(body.to_string().as_bytes()), &[("Prefer", "respond-async")])?;
    let status = s.send_as(Some(&token), "GET", "$import-status?job=0123456789abcdef0123456789abcdef", None, &[])?;
    if r.status != 400 || !r.body.contains("not-supported") || status.status != 400 {
        return Err(
            format!("through a remote target `$import` answered {} {}: {}", r.status, status.status, r.body).into()
        );
    }
    Ok(true)
}
