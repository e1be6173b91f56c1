//! The front's policies on the remote path: a SMART patient token for `p1` reaches, through a
//! front whose only target is a remote fhirgate (which sees a `globalAdmin` token, so every
//! decision is the front's), nothing outside `p1`'s compartment — reads, vreads and history of
//! hidden resources are 404, searches, includes and history list only visible resources, totals
//! and counts count only them (or are left out / refused), chain criteria answer the same whether
//! true on hidden data or not, and writes that would create, replace, patch or delete hidden
//! data are refused with nothing changed. Every check runs; the test lists every one that failed.

use fhirgate_e2e::topology::{self, RemoteFhirgate, remote_target, route};
use fhirgate_e2e::{Reply, Server, TestResult, temp_dir};
use serde_json::{Value, json};

use super::{expect_written, references, runs_here};

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": {"coding": [{"system": "urn:e", "code": id}]},
           "subject": {"reference": format!("Patient/{patient}")},
           "performer": [{"reference": "Practitioner/doc1"}]})
}

struct Checks<'a> {
    s: &'a Server,
    token: String,
    failures: Vec<String>,
}

impl Checks<'_> {
    fn send(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> TestResult<Reply> {
        let body = body.map(Value::to_string);
        self.s.send_as(Some(&self.token), method, path, body.as_deref().map(str::as_bytes), headers)
    }

    /// Records a failed check instead of stopping.
    fn check(&mut self, what: &str, ok: Result<bool, Box<dyn std::error::Error>>, detail: impl FnOnce() -> String) {
        match ok {
            Ok(true) => {}
            Ok(false) => self.failures.push(format!("{what}: {}", detail())),
            Err(e) => self.failures.push(format!("{what}: {e}")),
        }
    }

    /// `GET path` as the attacker: the status is one of `statuses`.
    fn status(&mut self, path: &str, statuses: &[u16]) -> Option<Reply> {
        match self.send("GET", path, None, &[]) {
            Ok(r) => {
                if !statuses.contains(&r.status) {
                    self.failures.push(format!(
                        "GET {path}: expected {statuses:?}, got {} {}",
                        r.status,
                        clip(&r.body)
                    ));
                }
                Some(r)
            }
            Err(e) => {
                self.failures.push(format!("GET {path}: {e}"));
                None
            }
        }
    }

    /// `GET path` is a 200 Bundle listing exactly `expected` (`Type/id`, any order).
    fn lists(&mut self, path: &str, expected: &[&str]) {
        let Some(r) = self.status(path, &[200]) else { return };
        let Ok(bundle) = r.json() else { return };
        let mut got = references(&bundle);
        got.sort();
        got.dedup();
        let mut want: Vec<String> = expected.iter().map(|e| (*e).to_string()).collect();
        want.sort();
        if got != want {
            self.failures.push(format!("GET {path}: expected {want:?}, got {got:?}"));
        }
        let total = bundle.get("total").and_then(Value::as_u64);
        if let Some(total) = total {
            let matches = bundle["entry"]
                .as_array()
                .map_or(0, |es| es.iter().filter(|e| e["search"]["mode"] != "include").count());
            if total as usize != matches && bundle["type"] == "searchset" {
                self.failures.push(format!("GET {path}: total {total} counts what the caller cannot see"));
            }
        }
    }
}

fn clip(body: &str) -> String {
    body.chars().take(300).collect()
}

#[test]
fn the_fronts_policies_hold_on_the_remote_path() -> TestResult {
    if !runs_here("remote enforcement") {
        return Ok(());
    }
    let remote = RemoteFhirgate::start("gw-enforce-remote")?;
    let dir = temp_dir("gw-enforce")?;
    let toml = [remote_target("remote", &remote.base(), &remote.credentials(), ""), route("all", "", &["remote"], "")]
        .concat();
    let s = topology::start(&dir, &toml, &[])?;
    run_checks(&s, &remote.server)
}

/// The same checks on a plain server: what the remote path must match.
#[test]
fn the_same_checks_hold_on_a_local_store() -> TestResult {
    if !runs_here("local enforcement") {
        return Ok(());
    }
    let s = Server::start("gw-enforce-local")?;
    run_checks(&s, &s)
}

/// Seeds through `s` as its admin, attacks through `s`, and looks at the data in `store` (the
/// server holding it) with `store`'s admin token.
fn run_checks(s: &Server, store: &Server) -> TestResult {
    for (path, body) in [
        ("Patient/p1", json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Visible"}]})),
        ("Patient/p2", json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Hidden"}]})),
        ("Practitioner/doc1", json!({"resourceType": "Practitioner", "id": "doc1", "name": [{"family": "Secret"}]})),
        ("Observation/o1", observation("o1", "p1")),
        ("Observation/o2", observation("o2", "p2")),
    ] {
        expect_written(&format!("seeding {path}"), &s.put(path, &body)?)?;
    }
    let hidden_o2 = store.get("Observation/o2")?.body;
    let visible_o1 = store.get("Observation/o1")?.body;

    let token = s.mint(&["--scope", "patient/*.rs patient/Observation.cruds", "--patient", "p1"])?;
    let mut c = Checks { s, token, failures: Vec::new() };

    // Reads.
    c.status("Observation/o1", &[200]);
    c.status("Patient/p1", &[200]);
    for hidden in [
        "Observation/o2",
        "Observation/o2/_history/1",
        "Observation/o2/_history",
        "Patient/p2",
        "Practitioner/doc1",
        "Observation/o2?_elements=status",
    ] {
        c.status(hidden, &[404]);
    }

    // Searches, includes, history.
    c.lists("Observation", &["Observation/o1"]);
    c.lists("Observation?_total=accurate", &["Observation/o1"]);
    c.lists("Observation?code=urn:e|o2", &[]);
    c.lists("Observation?_include=Observation:subject", &["Observation/o1", "Patient/p1"]);
    c.lists("Observation?_include=Observation:performer", &["Observation/o1"]);
    c.lists("Patient?_revinclude=Observation:subject", &["Patient/p1", "Observation/o1"]);
    c.lists("Observation/_history", &["Observation/o1"]);
    c.lists("Patient/p1/Observation", &["Observation/o1"]);
    if let Some(r) = c.status("Patient/p2/Observation", &[200, 403, 404]) {
        c.check("p2's compartment", Ok(!r.body.contains("\"o2\"")), || clip(&r.body));
    }
    // A count is the visible count, or refused (GATEWAY.md: a partial grant gets no count).
    if let Some(r) = c.status("Observation?_summary=count", &[200, 403]) {
        if r.status == 200 {
            let total = r.json().ok().and_then(|b| b["total"].as_u64());
            c.check("_summary=count", Ok(total == Some(1)), || format!("not the visible count: {}", r.body));
        }
    }
    // The oracle: a chain true on hidden data answers as one that is false.
    let true_on_hidden = c.send("GET", "Observation?performer:Practitioner.name=Secret", None, &[])?;
    let false_anyway = c.send("GET", "Observation?performer:Practitioner.name=Nobody", None, &[])?;
    let answer = |r: &Reply| (r.status, r.json().map(|b| references(&b)).unwrap_or_default());
    c.check("chain oracle", Ok(answer(&true_on_hidden) == answer(&false_anyway)), || {
        format!(
            "true on hidden: {} {}; false: {} {}",
            true_on_hidden.status,
            clip(&true_on_hidden.body),
            false_anyway.status,
            clip(&false_anyway.body)
        )
    });
    let has_true = c.send("GET", "Patient?_has:Observation:subject:code=urn:e|o2", None, &[])?;
    let has_false = c.send("GET", "Patient?_has:Observation:subject:code=urn:e|none", None, &[])?;
    c.check("_has oracle", Ok(answer(&has_true) == answer(&has_false)), || {
        format!(
            "true on hidden: {} {}; false: {} {}",
            has_true.status,
            clip(&has_true.body),
            has_false.status,
            clip(&has_false.body)
        )
    });

    // Writes that would create, replace, patch or delete hidden data.
    let refused = |r: &Reply| r.status == 403 || r.status == 404;
    let r = c.send("POST", "Observation", Some(&observation("new", "p2")), &[])?;
    c.check("create for p2", Ok(r.status == 403), || format!("{} {}", r.status, clip(&r.body)));
    let r = c.send("PUT", "Observation/o2", Some(&observation("o2", "p1")), &[])?;
    c.check("update of the hidden o2", Ok(refused(&r) || r.status == 409 || r.status == 412), || {
        format!("{} {}", r.status, clip(&r.body))
    });
    let r = c.send("DELETE", "Observation/o2", None, &[])?;
    c.check("delete of the hidden o2", Ok(refused(&r) || r.status == 204), || {
        format!("{} {}", r.status, clip(&r.body))
    });
    let r = c.send("DELETE", "Observation?code=urn:e|o2", None, &[])?;
    c.check("conditional delete matching the hidden o2", Ok(r.status < 500), || {
        format!("{} {}", r.status, clip(&r.body))
    });
    let patch = json!([{"op": "replace", "path": "/subject/reference", "value": "Patient/p2"}]);
    let r = c.send("PATCH", "Observation/o1", Some(&patch), &[("Content-Type", "application/json-patch+json")])?;
    c.check("a patch moving o1 to p2", Ok(r.status == 403), || format!("{} {}", r.status, clip(&r.body)));
    let r = c.send("POST", "Observation", Some(&observation("dup", "p1")), &[("If-None-Exist", "code=urn:e|o2")])?;
    let created = r.json().ok().and_then(|b| b["id"].as_str().map(str::to_string));
    c.check(
        "If-None-Exist matching only the hidden o2",
        Ok(r.status == 201 && created.as_deref() != Some("o2")),
        || format!("{} {}", r.status, clip(&r.body)),
    );

    // Nothing hidden changed; the patch changed nothing either.
    let now_o2 = store.get("Observation/o2")?;
    c.check("o2 unchanged on the remote", Ok(now_o2.status == 200 && now_o2.body == hidden_o2), || now_o2.body.clone());
    let now_o1 = store.get("Observation/o1")?;
    c.check("o1 unchanged on the remote", Ok(now_o1.body == visible_o1), || now_o1.body.clone());
    let for_p2 = store.get("Observation?subject=Patient/p2")?.json()?;
    c.check("no Observation of p2 but o2", Ok(references(&for_p2) == vec!["Observation/o2".to_string()]), || {
        format!("{:?}", references(&for_p2))
    });

    assert!(c.failures.is_empty(), "the front's policies did not hold on the remote path:\n{}", c.failures.join("\n"));
    Ok(())
}
