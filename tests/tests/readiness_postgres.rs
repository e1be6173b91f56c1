//! End-to-end, PostgreSQL only: readiness follows the store. With PostgreSQL stopped under the
//! server, `/health/ready` answers 503 while `/health/live` keeps answering 200 (an orchestrator
//! takes the pod out of rotation without restarting it); with PostgreSQL back, ready again.
//! A file of its own: it stops the shared PostgreSQL server, which no other test of the same
//! binary may use meanwhile. Ignored in the SQLite pass; the test command's PostgreSQL pass runs
//! it (`--include-ignored`), where `scripts/with-postgres.sh` provides `FHIRGATE_TEST_POSTGRES_CTL`.

use std::time::{Duration, Instant};

use fhirgate_e2e::{Server, TestResult, pg_ctl};

#[test]
#[ignore = "PostgreSQL only: run by the test command's PostgreSQL pass"]
fn unready_while_postgres_is_down_and_ready_when_it_is_back() -> TestResult {
    if fhirgate_e2e::backend() != "postgres" {
        return Err("run with FHIRGATE_E2E_STORE=postgres".into());
    }
    let s = Server::start("ready-pg")?;
    let probe = |path: &str| s.send_as(None, "GET", path, None, &[]);
    assert_eq!(probe("health/ready")?.status, 200);
    pg_ctl("stop")?;
    let down = (|| -> TestResult<(u16, u16, String)> {
        let started = Instant::now();
        let ready = probe("health/ready")?;
        assert!(started.elapsed() < Duration::from_secs(10), "the probe answers fast: {:?}", started.elapsed());
        Ok((ready.status, probe("health/live")?.status, ready.body))
    })();
    pg_ctl("start")?;
    let (ready, live, body) = down?;
    assert_eq!((ready, live), (503, 200), "unready but live while the store is down: {body}");
    assert!(body.contains(r#""store":"unavailable""#), "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe("health/ready")?.status != 200 {
        assert!(Instant::now() < deadline, "not ready again: {}", s.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
