//! End-to-end attacks on terminology: a client must not learn the content of a ValueSet or
//! CodeSystem it may not read, through `$expand`, `$validate-code`, `$lookup`, an import from a
//! value set it may read, or a `:in` search; and a `:in` search shows only what a search shows.
//!
//! Policies: `microsoft-roles` with the shipped `tenant-isolation` forbid, a `termReader` role
//! that may read and search, and an `opsOnly` role that may only run operations. The attacker
//! is a `termReader` of tenant `tA`; hidden are the resources of tenant `tB`.

use fhirgate_e2e::{Server, TestResult, backend, temp_dir};
use serde_json::{Value, json};

const POLICIES: &str = r#"
@id("termReader")
permit (
  principal in Fhir::Role::"termReader",
  action in [Fhir::Action::"reads", Fhir::Action::"searches"],
  resource
);
@id("opsOnly")
permit (principal in Fhir::Role::"opsOnly", action == Fhir::Action::"operation", resource);
"#;

const STATUS: &str = "http://hl7.org/fhir/observation-status";

fn server() -> TestResult<Server> {
    let dir = temp_dir("attacks-terminology")?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)?;
    let shipped = fhirgate_e2e::manifest_dir().join("../policies/sets/examples");
    std::fs::copy(shipped.join("tenant-isolation.cedar"), policies.join("tenant-isolation.cedar"))?;
    std::fs::write(policies.join("terminology.cedar"), POLICIES)?;
    let policies = policies.to_str().ok_or("policy path")?;
    Server::start_with(&dir, &[("FHIRGATE_POLICY_SETS", "microsoft-roles"), ("FHIRGATE_POLICY_DIR", policies)])
}

fn tenant(code: &str) -> Value {
    json!({"tag": [{"system": "urn:fhirgate:tenant", "code": code}]})
}

fn seed(s: &Server, admin_a: &str, admin_b: &str) -> TestResult {
    let resources = [
        (
            admin_b,
            json!({"resourceType": "ValueSet", "id": "hid-vs", "meta": tenant("tB"), "url": "http://x/vs/hidden",
            "status": "active", "compose": {"include": [{"system": STATUS, "concept": [{"code": "cancelled"}]}]}}),
        ),
        (
            admin_b,
            json!({"resourceType": "CodeSystem", "id": "hid-cs", "meta": tenant("tB"), "url": "http://x/cs/hidden",
            "status": "active", "content": "complete", "concept": [{"code": "secret", "display": "Top Secret Display"}]}),
        ),
        (
            admin_b,
            json!({"resourceType": "Observation", "id": "hid-obs", "meta": tenant("tB"), "status": "final",
            "code": {"text": "x"}}),
        ),
        (
            admin_a,
            json!({"resourceType": "Observation", "id": "vis-obs", "meta": tenant("tA"), "status": "final",
            "code": {"text": "x"}}),
        ),
        (
            admin_a,
            json!({"resourceType": "ValueSet", "id": "vis-vs", "meta": tenant("tA"), "url": "http://x/vs/visible",
            "status": "active", "compose": {"include": [{"system": STATUS, "concept": [{"code": "final"}]}]}}),
        ),
        (
            admin_a,
            json!({"resourceType": "ValueSet", "id": "vis-imports", "meta": tenant("tA"),
            "url": "http://x/vs/imports-hidden", "status": "active",
            "compose": {"include": [{"valueSet": ["http://x/vs/hidden"]}, {"system": "http://x/cs/hidden"}]}}),
        ),
    ];
    for (token, r) in &resources {
        let path =
            format!("{}/{}", r["resourceType"].as_str().unwrap_or_default(), r["id"].as_str().unwrap_or_default());
        let reply = s.send_as(Some(token), "PUT", &path, Some(r.to_string().as_bytes()), &[])?;
        if reply.status != 200 && reply.status != 201 {
            return Err(format!("seeding {path}: {} {}", reply.status, reply.body).into());
        }
    }
    Ok(())
}

#[test]
fn terminology_reveals_nothing_a_read_hides() -> TestResult {
    if backend() == "remote" {
        println!("skipped: the terminology operations run on the engine's own stores (FHIRGATE_E2E_STORE=remote)");
        return Ok(());
    }
    let s = server()?;
    let admin_a = s.mint(&["--role", "globalAdmin", "--tenant", "tA"])?;
    let admin_b = s.mint(&["--role", "globalAdmin", "--tenant", "tB"])?;
    seed(&s, &admin_a, &admin_b)?;
    let attacker = s.mint(&["--role", "termReader", "--tenant", "tA"])?;
    let get = |token: &str, path: &str| s.send_as(Some(token), "GET", path, None, &[]);
    let mut broken = Vec::new();
    let mut check = |what: &str, ok: bool, detail: String| {
        println!("[terminology] {} {what}", if ok { "held  " } else { "BROKEN" });
        if !ok {
            broken.push(format!("{what}: {detail}"));
        }
    };
    let leaks = |body: &str| body.contains("cancelled") || body.contains("secret") || body.contains("Top Secret");

    // The data is there: tenant tB's admin expands its value set and looks up its code.
    let r = get(&admin_b, "ValueSet/$expand?url=http://x/vs/hidden")?;
    check("the owner expands its value set", r.status == 200 && r.body.contains("cancelled"), r.body.clone());
    let r = get(&admin_b, "CodeSystem/$lookup?system=http://x/cs/hidden&code=secret")?;
    check("the owner looks up its code", r.status == 200 && r.body.contains("Top Secret"), r.body.clone());

    // Named by url or by id, a hidden value set or code system does not exist for the attacker.
    for path in [
        "ValueSet/$expand?url=http://x/vs/hidden",
        "ValueSet/hid-vs/$expand",
        "ValueSet/$validate-code?url=http://x/vs/hidden&system=http://hl7.org/fhir/observation-status&code=cancelled",
        "ValueSet/hid-vs/$validate-code?system=http://hl7.org/fhir/observation-status&code=cancelled",
        "CodeSystem/$lookup?system=http://x/cs/hidden&code=secret",
        "CodeSystem/hid-cs/$lookup?code=secret",
        "CodeSystem/$validate-code?url=http://x/cs/hidden&code=secret",
        "CodeSystem/$subsumes?system=http://x/cs/hidden&codeA=secret&codeB=secret",
    ] {
        let r = get(&attacker, path)?;
        check(&format!("{path} is 404"), r.status == 404 && !leaks(&r.body), format!("{} {}", r.status, r.body));
    }
    // A visible value set importing the hidden ones expands to nothing of them.
    let r = get(&attacker, "ValueSet/$expand?url=http://x/vs/imports-hidden")?;
    check(
        "an import of a hidden value set is not expanded",
        (400..500).contains(&r.status) && !leaks(&r.body),
        format!("{} {}", r.status, r.body),
    );
    // `:in` a hidden value set is refused as an unknown one is; `:in` a visible one shows only
    // the visible matches.
    let hidden = get(&attacker, "Observation?status:in=http://x/vs/hidden")?;
    let unknown = get(&attacker, "Observation?status:in=http://x/vs/never")?;
    check(
        "`:in` a hidden value set answers as `:in` an unknown one",
        hidden.status == 400 && unknown.status == 400 && !leaks(&hidden.body),
        format!("{} {}", hidden.status, hidden.body),
    );
    let r = get(&attacker, "Observation?status:in=http://x/vs/visible")?;
    let ok = r.status == 200 && r.body.contains("vis-obs") && !r.body.contains("hid-obs");
    check("`:in` shows only visible matches", ok, r.body.clone());
    let r = get(&attacker, "Observation?status:not-in=http://x/vs/hidden")?;
    check("`:not-in` a hidden value set is refused", r.status == 400 && !r.body.contains("hid-obs"), r.body.clone());

    // A client that may run operations but not read value sets gets nothing.
    let ops_only = s.mint(&["--role", "opsOnly", "--tenant", "tA"])?;
    let r = get(&ops_only, "ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender")?;
    check("expanding needs what searching value sets needs", r.status == 403, format!("{} {}", r.status, r.body));
    let r = get(&ops_only, "ValueSet/vis-vs/$expand")?;
    check("expanding one needs what reading it needs", r.status == 403, format!("{} {}", r.status, r.body));

    check("the server still answers", s.get("health")?.status == 200, String::new());
    if broken.is_empty() {
        return Ok(());
    }
    Err(format!("{} terminology attacks worked:\n{}", broken.len(), broken.join("\n")).into())
}
