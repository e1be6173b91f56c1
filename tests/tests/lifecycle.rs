//! End-to-end: the binary's life: start, health, request ids, restart with data kept, SIGTERM,
//! the command line and configuration.

use std::process::Command;
use std::time::Duration;

use fhirgate_e2e::{Server, TestResult, binary, temp_dir};
use serde_json::json;

#[test]
fn restart_keeps_data_and_history() -> TestResult {
    if !fhirgate_e2e::store_outlives_the_server() {
        eprintln!("not applicable: the {} store does not outlive the server process", fhirgate_e2e::backend());
        return Ok(());
    }
    let dir = temp_dir("restart")?;
    {
        let mut s = Server::start_with(&dir, &[])?;
        assert_eq!(s.put("Patient/r1", &json!({"resourceType": "Patient", "id": "r1", "active": true}))?.status, 201);
        assert_eq!(s.put("Patient/r1", &json!({"resourceType": "Patient", "id": "r1", "active": false}))?.status, 200);
        assert_eq!(s.delete("Patient/r1")?.status, 204);
        assert_eq!(s.put("Patient/r2", &json!({"resourceType": "Patient", "id": "r2"}))?.status, 201);
        s.terminate()?;
    }
    if fhirgate_e2e::backend() == "sqlite" {
        assert!(dir.join("fhirgate.db").exists(), "the SQLite file lives in the data directory");
    }
    let s = Server::start_with(&dir, &[])?;
    assert_eq!(s.get("Patient/r1")?.status, 410);
    assert_eq!(s.get("Patient/r1/_history/2")?.json()?["active"], false);
    assert_eq!(s.get("Patient/r2")?.status, 200);
    assert_eq!(s.get("Patient/r1/_history")?.json()?["total"], 3);
    assert_eq!(s.get("_history")?.json()?["total"], 4);
    Ok(())
}

/// Writes acknowledged before a crash (`kill -9` in the middle of concurrent creates, which the
/// SQLite store commits in groups) are all there after a restart, each whole: readable, and
/// found by a search (its search rows committed with it); nothing is found that cannot be read.
#[test]
fn acknowledged_creates_survive_kill_9() -> TestResult {
    if !fhirgate_e2e::store_outlives_the_server() {
        eprintln!("not applicable: the {} store does not outlive the server process", fhirgate_e2e::backend());
        return Ok(());
    }
    let dir = temp_dir("kill-9")?;
    let mut acknowledged: Vec<String> = Vec::new();
    {
        let s = Server::start_with(&dir, &[])?;
        let patient = json!({"resourceType": "Patient", "name": [{"family": "Crashtest"}]});
        let stop = std::sync::atomic::AtomicBool::new(false);
        // Fewer than a search page holds (1,000), so one page shows them all.
        let sent = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| -> TestResult {
            let clients: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        let mut ids = Vec::new();
                        while !stop.load(std::sync::atomic::Ordering::Relaxed)
                            && sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 900
                        {
                            match s.post("Patient", &patient) {
                                Ok(reply) if reply.status == 201 => {
                                    ids.extend(reply.json().ok().and_then(|v| v["id"].as_str().map(String::from)))
                                }
                                _ => break, // the server is gone
                            }
                        }
                        ids
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(1500));
            s.signal("KILL")?;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for client in clients {
                acknowledged.extend(client.join().map_err(|_| "a client thread panicked")?);
            }
            Ok(())
        })?;
    }
    assert!(acknowledged.len() > 20, "only {} creates before the kill", acknowledged.len());
    let s = Server::start_with(&dir, &[])?;
    let found = s.get("Patient?family=Crashtest&_count=1000&_elements=id")?.json()?;
    let found: Vec<&str> =
        found["entry"].as_array().into_iter().flatten().filter_map(|e| e["resource"]["id"].as_str()).collect();
    for id in &acknowledged {
        assert_eq!(s.get(&format!("Patient/{id}"))?.status, 200, "acknowledged Patient/{id} is readable");
        assert!(found.contains(&id.as_str()), "acknowledged Patient/{id} is found by a search");
    }
    for id in found {
        assert_eq!(s.get(&format!("Patient/{id}"))?.status, 200, "found Patient/{id} is readable");
    }
    Ok(())
}

#[test]
fn sigterm_stops_within_a_few_seconds() -> TestResult {
    let mut s = Server::start("sigterm")?;
    assert_eq!(s.get("health")?.status, 200);
    let took = s.terminate()?;
    assert!(took < Duration::from_secs(10), "took {took:?}");
    Ok(())
}

#[test]
fn health_and_request_ids() -> TestResult {
    let s = Server::start("health")?;
    let r = s.get("health")?;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()?["status"], "ok");
    let r = s.get_with("metadata", &[("X-Request-Id", "abc-123")])?;
    assert_eq!(r.header("X-Request-Id"), Some("abc-123"));
    let generated = s.get("metadata")?;
    assert!(generated.header("X-Request-Id").is_some_and(|id| id.len() >= 16));
    // Errors carry it too, and the log names it.
    let r = s.get_with("Patient/missing", &[("X-Request-Id", "trace-me-42")])?;
    assert_eq!(r.header("X-Request-Id"), Some("trace-me-42"));
    std::thread::sleep(Duration::from_millis(200));
    let log = s.log_text();
    assert!(log.contains("trace-me-42"), "request id in the logs");
    // The request's own audit event (each authorization decision has one too).
    let audit = log
        .lines()
        .find(|l| l.contains("audit") && l.contains("trace-me-42") && l.contains("fhir request"))
        .ok_or("no audit event")?;
    assert!(log.lines().any(|l| l.contains("authorization") && l.contains("trace-me-42")), "decision audited");
    // Audit lines are JSON whatever the log format, the event under `record`.
    let line: serde_json::Value = serde_json::from_str(audit)?;
    assert_eq!(line["target"], "audit");
    let record = &line["record"];
    assert_eq!(record["status"], 404);
    assert_eq!(record["path"], "/Patient/missing");
    Ok(())
}

#[test]
fn health_is_503_when_the_sqlite_file_is_gone() -> TestResult {
    let dir = temp_dir("unhealthy")?;
    let url = format!("sqlite:{}", dir.join("fhirgate.db").display());
    let s = Server::start_with(&dir, &[("FHIRGATE_STORE", &url)])?;
    assert_eq!(s.get("health")?.status, 200);
    // Take the database away underneath the running server.
    std::fs::remove_dir_all(&dir)?;
    std::fs::write(&dir, b"not a directory")?;
    let mut reply = s.get("health")?;
    for _ in 0..50 {
        if reply.status == 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        reply = s.get("health")?;
    }
    let _ = std::fs::remove_file(&dir);
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("Retry-After"), Some("5"));
    assert_eq!(reply.outcome_issues()?[0]["code"], "transient");
    Ok(())
}

#[test]
fn help_explains_every_subcommand() -> TestResult {
    let out = Command::new(binary()?).arg("--help").output()?;
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains("serve") && text.contains("config") && text.contains("migrate"), "{text}");
    let out = Command::new(binary()?).args(["serve", "--help"]).output()?;
    let text = String::from_utf8(out.stdout)?;
    for flag in ["--listen", "--config", "--store", "--data-dir", "FHIRGATE_LISTEN"] {
        assert!(text.contains(flag), "{flag} missing: {text}");
    }
    Ok(())
}

#[test]
fn config_file_env_and_flags() -> TestResult {
    let dir = temp_dir("config")?;
    let file = dir.join("fhirgate.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:1111\"\n[fhir]\ndefault_page_size = 7\n")?;
    let out = Command::new(binary()?)
        .args(["config", "--config"])
        .arg(&file)
        .args(["--store", "sqlite:/tmp/elsewhere.db"])
        .env("FHIRGATE_LISTEN", "127.0.0.1:2222")
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains("listen = \"127.0.0.1:2222\""), "env beats file: {text}");
    assert!(text.contains("default_page_size = 7"), "file beats defaults: {text}");
    assert!(text.contains("sqlite:/tmp/elsewhere.db"), "flag beats all: {text}");
    let out = Command::new(binary()?).args(["serve", "--listen", "nowhere"]).output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));
    let out = Command::new(binary()?).args(["serve", "--store", "mysql://x"]).output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported store"));
    Ok(())
}

#[test]
fn the_store_flag_picks_the_sqlite_file() -> TestResult {
    let dir = temp_dir("storeflag")?;
    let db = dir.join("custom.db");
    let url = format!("sqlite:{}", db.display());
    let s = Server::start_with(&dir, &[("FHIRGATE_STORE", &url)])?;
    assert_eq!(s.put("Patient/x", &json!({"resourceType": "Patient", "id": "x"}))?.status, 201);
    assert!(db.exists());
    assert!(!dir.join("fhirgate.db").exists());
    Ok(())
}

#[test]
fn migrate_creates_the_schema_and_exits() -> TestResult {
    let dir = temp_dir("migrate")?;
    let db = dir.join("nested").join("migrated.db");
    let out = Command::new(binary()?).args(["migrate", "--store"]).arg(format!("sqlite:{}", db.display())).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.exists(), "the database was created");
    let out = Command::new(binary()?).args(["migrate", "--store", "sqlite:/proc/no/such/dir/x.db"]).output()?;
    assert!(!out.status.success(), "an unusable store fails the command");
    Ok(())
}

/// `store.cosmos.search_queries = "exists"` against the in-process emulator (which refuses
/// `EXISTS` sub-queries) stops the server at start with the setting named and the way out, not
/// with an error on every search.
#[test]
fn exists_search_queries_on_the_emulator_stop_the_start() -> TestResult {
    let dir = temp_dir("cosmos-exists")?;
    let mut child = Command::new(binary()?)
        .args(["serve", "--store", "cosmos:emulator", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("FHIRGATE_COSMOS_SEARCH_QUERIES", "exists")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill()?;
            return Err("the server started with EXISTS queries on the emulator".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().ok_or("no stderr")?, &mut stderr)?;
    assert!(!status.success());
    assert!(stderr.contains("store.cosmos.search_queries") && stderr.contains("key-set"), "{stderr}");
    Ok(())
}
