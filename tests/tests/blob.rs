//! End-to-end: bulk jobs on Azure Blob Storage through the real binary, against Azurite (the
//! local emulator; Shared Key, as it takes OAuth tokens over HTTPS only: production uses the
//! gateway's managed identity, `blob.auth`): `$import` reads NDJSON from a blob of an allowed
//! container and keeps its error report in the export container; `$export` writes its NDJSON
//! as blobs and its manifest names their URLs (`requiresAccessToken: false`, as Microsoft's
//! FHIR service answers); a cancelled job's blobs are removed, and a finished job's once its
//! retention ran out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fhirgate_e2e::azurite::{ACCOUNT, Azurite, KEY};
use fhirgate_e2e::bulk::{import_patients, kickoff, manifest, runs_remote, status_path};
use fhirgate_e2e::{Server, TestResult, temp_dir};
use fhirgate_engine::bulk::blob::{Account, Auth, Container};
use serde_json::{Value, json};

fn account(azurite: &Azurite) -> TestResult<Arc<Account>> {
    let key = base64::engine::general_purpose::STANDARD.decode(KEY)?;
    Ok(Arc::new(Account::new(&azurite.endpoint, ACCOUNT, Auth::SharedKey(key))))
}

fn import(s: &Server, url: &str) -> TestResult<Value> {
    let kicked = import_patients(s, s.token.as_deref().ok_or("no token")?, "IncrementalLoad", url)?;
    let status = status_path(s, &kicked)?;
    manifest(s, s.token.as_deref().ok_or("no token")?, &status)
}

/// The blob names (in the export container) of a manifest's output URLs.
fn blob_names(exports: &Container, manifest: &Value) -> TestResult<Vec<String>> {
    let base = exports.url("");
    let mut names = Vec::new();
    for output in manifest["output"].as_array().ok_or("no output")? {
        let url = output["url"].as_str().ok_or("no url")?;
        names.push(
            url.strip_prefix(&base).ok_or_else(|| format!("`{url}` is not a blob of the export container"))?.into(),
        );
    }
    Ok(names)
}

/// Waits until no blob of job `job` is left in `exports`.
fn until_gone(rt: &tokio::runtime::Runtime, exports: &Container, job: &str, within: Duration) -> TestResult {
    let deadline = Instant::now() + within;
    loop {
        let left = rt.block_on(exports.list(&format!("{job}/")))?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("blobs of job {job} left: {left:?}").into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn imports_from_blobs_and_exports_to_blobs_that_expire() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let dir = temp_dir("blob")?;
    let Some(azurite) = Azurite::start(&dir)? else { return Ok(()) };
    let rt = tokio::runtime::Runtime::new()?;
    let account = account(&azurite)?;
    let (imports, exports) = (account.container("imports"), account.container("exports"));
    let lines = [
        json!({"resourceType": "Patient", "id": "b1", "name": [{"family": "Blobone"}]}).to_string(),
        "{ not json".to_owned(),
        json!({"resourceType": "Patient", "id": "b2", "name": [{"family": "Blobtwo"}]}).to_string(),
        json!({"resourceType": "Patient", "id": "b3", "name": [{"family": "Blobthree"}]}).to_string(),
    ];
    rt.block_on(async {
        imports.create().await?;
        exports.create().await?;
        imports.put_block("in/patients.ndjson", 0, (lines.join("\n") + "\n").into_bytes()).await
    })?;
    let mut env = azurite.server_env(&dir)?;
    env.push(("FHIRGATE_EXPORT_RETENTION_SECONDS".into(), "6".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start_with(&dir, &env)?;
    let token = s.token.clone().ok_or("no token")?;

    // Import from a blob URL, read with the gateway's credentials; the error report is kept in
    // the export container and served through the status URL.
    let done = import(&s, &imports.url("in/patients.ndjson"))?;
    assert_eq!((done["output"][0]["count"].as_u64(), done["error"][0]["count"].as_u64()), (Some(3), Some(1)), "{done}");
    let errors_url = done["error"][0]["url"].as_str().ok_or("no error url")?;
    let errors = s.get(fhirgate_e2e::bulk::below_base(&s, errors_url)?)?;
    assert_eq!(errors.status, 200, "{}", errors.body);
    assert_eq!(errors.body.lines().count(), 1, "{}", errors.body);
    assert!(errors.body.contains("line 2:"), "{}", errors.body);
    assert_eq!(s.get("Patient/b3")?.status, 200);

    // Export to blobs: the manifest names blob URLs that the client reads with its own Azure
    // credential (here the account key), not the gateway's token.
    let status = status_path(&s, &kickoff(&s, &token, "$export?_type=Patient")?)?;
    let job = status.rsplit_once("_job=").map(|(_, j)| j.to_owned()).ok_or("no job id")?;
    let m = manifest(&s, &token, &status)?;
    assert_eq!(m["requiresAccessToken"], false, "{m}");
    let names = blob_names(&exports, &m)?;
    assert_eq!(names, [format!("{job}/Patient-1.ndjson")], "{m}");
    let body = rt.block_on(exports.read(&names[0], 1 << 20))?;
    let mut ids: Vec<String> = String::from_utf8(body)?
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).map(|v| v["id"].as_str().unwrap_or("").to_owned()))
        .collect::<Result<_, _>>()?;
    ids.sort();
    assert_eq!(ids, ["b1", "b2", "b3"]);

    // A cancelled job's blobs go with it.
    let cancelled = status_path(&s, &kickoff(&s, &token, "$export")?)?;
    let cancelled_job = cancelled.rsplit_once("_job=").map(|(_, j)| j.to_owned()).ok_or("no job id")?;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.delete(&cancelled)?.status, 202);
    until_gone(&rt, &exports, &cancelled_job, Duration::from_secs(30))?;

    // After the retention, the finished jobs and their blobs are removed.
    until_gone(&rt, &exports, &job, Duration::from_secs(60))?;
    assert_eq!(s.get(&status)?.status, 404);
    Ok(())
}
