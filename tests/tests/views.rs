//! End-to-end: SQL on FHIR views through the real binary. `$viewdefinition-run` answers the same
//! rows as CSV, NDJSON, JSON and Parquet (read back with the `parquet` crate's reader), for an
//! inline view and for one stored in a `Binary`; `_limit` and `header` apply; bad views are 400
//! OperationOutcomes, a costly FHIRPath a 422 within seconds; `fhirgate views export` writes one
//! Parquet file per view over the whole store.
//!
//! Views run on the engine's own stores: with `FHIRGATE_E2E_STORE=remote` the tests skip (an
//! operation on a remote target is the remote's).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fhirgate_e2e::{Server, TestResult, backend};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Map, Value, json};

const RUN: &str = "$viewdefinition-run";

fn view() -> Value {
    json!({
        "resourceType": "ViewDefinition",
        "name": "patient_names",
        "resource": "Patient",
        "status": "active",
        "select": [
            {"column": [
                {"name": "id", "path": "getResourceKey()", "type": "string"},
                {"name": "active", "path": "active", "type": "boolean"},
                {"name": "names", "path": "name.count()", "type": "integer"},
                {"name": "weight", "path": "extension('http://x/weight').value.ofType(decimal)", "type": "decimal"}
            ]},
            {"forEachOrNull": "name", "column": [
                {"name": "family", "path": "family", "type": "string"},
                {"name": "given", "path": "given", "type": "string", "collection": true}
            ]}
        ]
    })
}

fn seed(s: &Server) -> TestResult {
    let patients = [
        json!({"resourceType": "Patient", "id": "v1", "active": true,
               "extension": [{"url": "http://x/weight", "valueDecimal": 71.5}],
               "name": [{"family": "Smith, \"Jr\"", "given": ["Ann", "B"]}, {"family": "Jones"}]}),
        json!({"resourceType": "Patient", "id": "v2", "active": false, "name": [{"family": "Lee"}]}),
        json!({"resourceType": "Patient", "id": "v3"}),
    ];
    for p in &patients {
        let r = s.put(&format!("Patient/{}", p["id"].as_str().unwrap_or_default()), p)?;
        if r.status != 200 && r.status != 201 {
            return Err(format!("seeding: {} {}", r.status, r.body).into());
        }
    }
    Ok(())
}

/// The rows the view gives over the seeded patients.
fn expected() -> Vec<Value> {
    vec![
        json!({"id": "Patient/v1", "active": true, "names": 2, "weight": 71.5, "family": "Smith, \"Jr\"", "given": ["Ann", "B"]}),
        json!({"id": "Patient/v1", "active": true, "names": 2, "weight": 71.5, "family": "Jones", "given": []}),
        json!({"id": "Patient/v2", "active": false, "names": 1, "weight": null, "family": "Lee", "given": []}),
        json!({"id": "Patient/v3", "active": null, "names": 0, "weight": null, "family": null, "given": []}),
    ]
}

fn parameters(params: Vec<Value>) -> Value {
    json!({"resourceType": "Parameters", "parameter": params})
}

fn run_body(format: &str) -> Value {
    parameters(vec![
        json!({"name": "viewResource", "resource": view()}),
        json!({"name": "_format", "valueCode": format}),
    ])
}

/// A POST answered as bytes (Parquet is not text), with the harness's token.
fn post_bytes(s: &Server, path: &str, body: &Value) -> TestResult<(u16, String, Vec<u8>)> {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.post(&s.url(path)).header("Content-Type", "application/fhir+json");
    if let Some(token) = &s.token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let response = request.send(body.to_string())?;
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = response.into_body().with_config().limit(64 * 1024 * 1024).read_to_vec()?;
    Ok((status, content_type, bytes))
}

/// Every row of a Parquet file as a JSON object (collections are JSON text in the file).
pub fn parquet_rows(file: &Path) -> TestResult<Vec<Value>> {
    let reader = SerializedFileReader::new(std::fs::File::open(file)?)?;
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None)? {
        let row = row?;
        let mut object = Map::new();
        for (name, field) in row.get_column_iter() {
            let value = match field {
                Field::Null => Value::Null,
                Field::Bool(b) => json!(b),
                Field::Long(i) => json!(i),
                Field::Double(d) => json!(d),
                Field::Str(s) if s.starts_with('[') => serde_json::from_str(s)?,
                Field::Str(s) => json!(s),
                other => return Err(format!("unexpected parquet field {other:?}").into()),
            };
            object.insert(name.clone(), value);
        }
        rows.push(Value::Object(object));
    }
    Ok(rows)
}

/// Numbers compared by value (`71.5` read back from a DOUBLE).
fn same_rows(actual: &[Value], expected: &[Value]) -> bool {
    let normal =
        |v: &Value| -> Value { serde_json::from_str(&v.to_string().replace(".0,", ",")).unwrap_or(Value::Null) };
    actual.len() == expected.len() && actual.iter().zip(expected).all(|(a, e)| normal(a) == normal(e))
}

fn skip() -> bool {
    if backend() == "remote" {
        println!("skipped: views run on the engine's own stores (FHIRGATE_E2E_STORE=remote)");
        return true;
    }
    false
}

#[test]
fn views_run_over_http_as_json_ndjson_csv_and_parquet() -> TestResult {
    if skip() {
        return Ok(());
    }
    let s = Server::start("views-run")?;
    seed(&s)?;

    let r = s.post(RUN, &run_body("json"))?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let rows = r.json()?;
    let rows = rows.as_array().ok_or("json output is an array")?;
    assert!(same_rows(rows, &expected()), "json rows {rows:?}");

    let r = s.post(RUN, &run_body("ndjson"))?;
    assert_eq!(r.status, 200, "{}", r.body);
    let lines: Vec<Value> = r.body.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert!(same_rows(&lines, &expected()), "ndjson rows {lines:?}");

    let r = s.post(RUN, &run_body("csv"))?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/csv")));
    let lines: Vec<&str> = r.body.split("\r\n").collect();
    assert_eq!(lines[0], "id,active,names,weight,family,given");
    assert_eq!(lines[1], r#"Patient/v1,true,2,71.5,"Smith, ""Jr""","[""Ann"",""B""]""#);
    assert_eq!(lines[4], "Patient/v3,,0,,,[]");
    assert_eq!(lines.len(), 6, "four rows, a header and the final CRLF: {:?}", r.body);

    let (status, content_type, bytes) = post_bytes(&s, RUN, &run_body("parquet"))?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(content_type, "application/vnd.apache.parquet");
    let file = s.data_dir.join("run.parquet");
    std::fs::write(&file, &bytes)?;
    let rows = parquet_rows(&file)?;
    assert!(same_rows(&rows, &expected()), "parquet rows {rows:?}");
    Ok(())
}

#[test]
fn stored_views_limits_and_headers() -> TestResult {
    if skip() {
        return Ok(());
    }
    let s = Server::start("views-stored")?;
    seed(&s)?;
    let data = base64::engine::general_purpose::STANDARD.encode(view().to_string());
    let binary = json!({"resourceType": "Binary", "id": "names-view", "contentType": "application/json", "data": data});
    let r = s.put("Binary/names-view", &binary)?;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);

    let r = s.get(&format!("Binary/names-view/{RUN}?_format=csv&header=false"))?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.starts_with("Patient/v1,true,2"), "no header row: {}", r.body);

    let r = s.get(&format!("{RUN}?viewReference=Binary/names-view&_format=ndjson&_limit=2"))?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.lines().count(), 2, "{}", r.body);

    let r = s.get(&format!("{RUN}?viewReference=Binary/names-view&_format=ndjson&patient=Patient/v2"))?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.lines().count() == 1 && r.body.contains("Patient/v2"), "the patient's compartment only: {}", r.body);

    let by_reference = parameters(vec![
        json!({"name": "viewReference", "valueReference": {"reference": "Binary/names-view"}}),
        json!({"name": "_format", "valueCode": "json"}),
        json!({"name": "resource", "resource": {"resourceType": "Patient", "id": "inline", "name": [{"family": "X"}]}}),
    ]);
    let r = s.post(RUN, &by_reference)?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()?[0]["id"], "Patient/inline", "the resources given replace the store's: {}", r.body);

    let r = s.get(&format!("Binary/nope/{RUN}"))?;
    assert_eq!(r.status, 404, "{}", r.body);
    Ok(())
}

#[test]
fn bad_views_are_400_and_costly_views_end_in_422() -> TestResult {
    if skip() {
        return Ok(());
    }
    let s = Server::start("views-bad")?;
    seed(&s)?;
    let refused = |body: Value, status: u16, what: &str| -> TestResult {
        let r = s.post(RUN, &body)?;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert!(!r.outcome_issues()?.is_empty(), "{what}: an OperationOutcome");
        assert_eq!(s.get("health")?.status, 200, "after {what}");
        Ok(())
    };
    let with_view = |view: Value| parameters(vec![json!({"name": "viewResource", "resource": view})]);
    refused(with_view(json!({"select": [{"column": [{"name": "id", "path": "id"}]}]})), 400, "no resource")?;
    refused(
        with_view(json!({"resource": "Nope", "select": [{"column": [{"name": "id", "path": "id"}]}]})),
        400,
        "type",
    )?;
    refused(with_view(json!({"resource": "Patient", "select": [{"forEach": "@@"}]})), 400, "bad FHIRPath")?;
    refused(
        with_view(json!({"resource": "Patient", "select": [{"column": [{"name": "1x", "path": "id"}]}]})),
        400,
        "name",
    )?;
    refused(
        with_view(json!({"resource": "Patient", "select": [{"unionAll": [
            {"column": [{"name": "a", "path": "id"}]}, {"column": [{"name": "b", "path": "id"}]}]}]})),
        400,
        "unionAll columns",
    )?;
    refused(json!({"resourceType": "Patient"}), 400, "not Parameters")?;
    refused(parameters(vec![]), 400, "no view")?;
    refused(
        parameters(vec![
            json!({"name": "viewResource", "resource": view()}),
            json!({"name": "_format", "valueCode": "xlsx"}),
        ]),
        406,
        "unknown format",
    )?;
    refused(
        with_view(json!({"resource": "Patient", "where": [{"path": "name.family"}],
                         "select": [{"column": [{"name": "id", "path": "id"}]}]})),
        422,
        "a where that is not boolean",
    )?;
    refused(
        with_view(json!({"resource": "Patient", "select": [{"column": [{"name": "f", "path": "name.family"}]}]})),
        422,
        "several values in a column that is not a collection",
    )?;

    // A path whose cost is the square of a large resource's size: the budget ends it.
    let names: Vec<Value> = (0..2_000).map(|i| json!({"family": format!("F{i}"), "given": ["a", "b"]})).collect();
    s.put("Patient/big", &json!({"resourceType": "Patient", "id": "big", "name": names}))?;
    let costly = json!({"resource": "Patient", "select": [{"column": [{"name": "n", "type": "integer",
        "path": "name.select(%resource.descendants().count()).count()"}]}]});
    let started = Instant::now();
    refused(with_view(costly), 422, "a costly FHIRPath")?;
    assert!(started.elapsed() < Duration::from_secs(20), "the costly view took {:?}", started.elapsed());
    Ok(())
}

#[test]
fn views_export_writes_one_parquet_file_per_view() -> TestResult {
    if skip() {
        return Ok(());
    }
    if backend() == "cosmos" {
        println!("skipped: the Cosmos DB emulator lives in the server's process, out of the CLI's reach");
        return Ok(());
    }
    let s = Server::start("views-export")?;
    seed(&s)?;
    let dir = s.data_dir.join("export");
    let patients = s.data_dir.join("patients.json");
    std::fs::write(&patients, view().to_string())?;
    let ids = s.data_dir.join("ids.json");
    std::fs::write(
        &ids,
        json!({"resourceType": "ViewDefinition", "resource": "Patient",
               "select": [{"column": [{"name": "id", "path": "id", "type": "id"}]}]})
        .to_string(),
    )?;
    let (view_a, view_b, out) =
        (patients.to_str().ok_or("path")?, ids.to_str().ok_or("path")?, dir.to_str().ok_or("path")?);
    let output = s.cli(&["views", "export", "--view", view_a, "--view", view_b, "--out", out])?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows = parquet_rows(&dir.join("patient_names.parquet"))?;
    assert!(same_rows(&rows, &expected()), "exported rows {rows:?}");
    let ids = parquet_rows(&dir.join("ids.parquet"))?;
    assert_eq!(ids, vec![json!({"id": "v1"}), json!({"id": "v2"}), json!({"id": "v3"})]);
    Ok(())
}
