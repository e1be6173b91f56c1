//! End-to-end, PostgreSQL only: PostgreSQL stops and restarts under a write load. Every write the
//! gateway acknowledged is still there afterwards, requests during the outage fail fast with 503
//! and `Retry-After`, and the gateway recovers by itself. Ignored in the SQLite pass; the test
//! command runs it in the PostgreSQL pass (`--include-ignored`), where `scripts/with-postgres.sh`
//! provides `FHIRGATE_TEST_POSTGRES_CTL`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fhirgate_e2e::{Server, TestResult, pg_ctl};
use serde_json::json;

#[test]
#[ignore = "PostgreSQL only: run by the test command's PostgreSQL pass"]
fn acknowledged_writes_survive_a_postgres_restart() -> TestResult {
    if fhirgate_e2e::backend() != "postgres" {
        return Err("run with FHIRGATE_E2E_STORE=postgres".into());
    }
    let s = Server::start("pgrestart")?;
    let acknowledged = Mutex::new(Vec::<String>::new());
    let failed = Mutex::new(Vec::<u16>::new());
    let stop = AtomicBool::new(false);
    let outage: TestResult<(u16, Option<String>)> = std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            for i in 0..5_000 {
                if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                    break;
                }
                let id = format!("w{i}");
                let body = json!({"resourceType": "Patient", "id": id, "active": true});
                match s.put(&format!("Patient/{id}"), &body) {
                    Ok(r) if r.status == 201 => acknowledged.lock().map(|mut a| a.push(id)).unwrap_or(()),
                    Ok(r) => failed.lock().map(|mut f| f.push(r.status)).unwrap_or(()),
                    Err(_) => failed.lock().map(|mut f| f.push(0)).unwrap_or(()),
                }
            }
        });
        let result = (|| {
            std::thread::sleep(Duration::from_millis(500));
            pg_ctl("stop")?;
            let started = Instant::now();
            let during = s.get("health")?;
            let write = s.put("Patient/during", &json!({"resourceType": "Patient", "id": "during"}))?;
            let answered_in = started.elapsed();
            pg_ctl("start")?;
            assert!(answered_in < Duration::from_secs(20), "requests fail fast during the outage: {answered_in:?}");
            assert_eq!(during.status, 503, "health reports the outage: {}", during.body);
            Ok((write.status, write.header("Retry-After").map(str::to_string)))
        })();
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
        result
    });
    let (status_during, retry_after) = outage?;
    assert_eq!(status_during, 503, "a write during the outage is a 503");
    assert_eq!(retry_after.as_deref(), Some("5"));

    // The gateway recovers by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.get("health")?.status != 200 {
        assert!(Instant::now() < deadline, "the gateway did not recover: {}", s.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let acknowledged = acknowledged.into_inner().map_err(|e| e.to_string())?;
    let failed = failed.into_inner().map_err(|e| e.to_string())?;
    assert!(!acknowledged.is_empty(), "some writes were acknowledged");
    assert!(failed.iter().all(|s| *s == 503), "failures are 503s, not 500s: {failed:?}");
    for id in &acknowledged {
        assert_eq!(s.get(&format!("Patient/{id}"))?.status, 200, "acknowledged {id} is still there");
    }
    assert_eq!(s.put("Patient/after", &json!({"resourceType": "Patient", "id": "after"}))?.status, 201);
    println!(
        "{} writes acknowledged, {} refused during the outage, all acknowledged ones kept",
        acknowledged.len(),
        failed.len()
    );
    Ok(())
}
