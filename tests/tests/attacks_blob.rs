//! End-to-end attacks on the Blob Storage paths of bulk jobs (Azurite, as in `blob.rs`): an
//! `$import` input may only be a blob of a container the operator allowed. Another container of
//! the same account, a container whose name starts like the allowed one, a path that climbs out
//! of it (plain or percent-encoded), another account on the same emulator and the same account
//! under another host name are all refused with a 400 before anything is read, and nothing of
//! them is imported.

use std::sync::Arc;

use base64::Engine as _;
use fhirgate_e2e::azurite::{ACCOUNT, Azurite, KEY};
use fhirgate_e2e::bulk::{import_patients, runs_remote};
use fhirgate_e2e::{Server, TestResult, temp_dir};
use fhirgate_engine::bulk::blob::{Account, Auth};
use serde_json::json;

#[test]
fn blobs_outside_the_allowed_containers_are_refused() -> TestResult {
    if runs_remote()? {
        return Ok(());
    }
    let dir = temp_dir("attacks-blob")?;
    let Some(azurite) = Azurite::start(&dir)? else { return Ok(()) };
    let rt = tokio::runtime::Runtime::new()?;
    let key = base64::engine::general_purpose::STANDARD.decode(KEY)?;
    let account = Arc::new(Account::new(&azurite.endpoint, ACCOUNT, Auth::SharedKey(key)));
    let secret = json!({"resourceType": "Patient", "id": "secret1"}).to_string() + "\n";
    rt.block_on(async {
        for container in ["imports", "private", "imports-evil", "exports"] {
            account.container(container).create().await?;
        }
        account.container("private").put_block("secret.ndjson", 0, secret.clone().into_bytes()).await?;
        account.container("imports-evil").put_block("secret.ndjson", 0, secret.into_bytes()).await
    })?;
    let env = azurite.server_env(&dir)?;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start_with(&dir, &env)?;
    let endpoint = &azurite.endpoint;
    let other_host = endpoint.replace("127.0.0.1", "localhost");
    for url in [
        format!("{endpoint}/private/secret.ndjson"),
        format!("{endpoint}/imports-evil/secret.ndjson"),
        format!("{endpoint}/imports/../private/secret.ndjson"),
        format!("{endpoint}/imports/%2e%2e/private/secret.ndjson"),
        format!("{endpoint}/imports/a/..%2F..%2Fprivate/secret.ndjson"),
        format!("{endpoint}/imports"),
        format!("{endpoint}/imports/"),
        format!("{}/otheraccount/imports/secret.ndjson", endpoint.trim_end_matches(ACCOUNT).trim_end_matches('/')),
        format!("{other_host}/imports/secret.ndjson"),
        format!("{endpoint}/imports/secret.ndjson?comp=list"),
    ] {
        let reply = import_patients(&s, s.token.as_deref().ok_or("no token")?, "IncrementalLoad", &url)?;
        assert_eq!(reply.status, 400, "{url}: {}", reply.body);
        assert!(reply.body.contains("OperationOutcome"), "{url}: {}", reply.body);
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(s.get("Patient/secret1")?.status, 404);
    Ok(())
}
