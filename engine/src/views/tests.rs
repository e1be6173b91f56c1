//! Unit tests of the views module beyond the official suite (`engine/tests/sql_on_fhir.rs`):
//! the output formats, Parquet read back with the `parquet` crate's reader, and the bounds.

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Value, json};

use super::View;
use super::output::{Format, Sink};
use crate::fhirpath::Budget;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn view(definition: Value) -> TestResult<View> {
    Ok(View::parse(&definition)?)
}

fn patients() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "a", "active": true, "name": [{"family": "O'Hara, \"Jr\"", "given": ["x", "y"]}]}),
        json!({"resourceType": "Patient", "id": "b", "multipleBirthInteger": 2}),
    ]
}

fn columns_view() -> TestResult<View> {
    view(json!({"resource": "Patient", "select": [{"column": [
        {"name": "id", "path": "id", "type": "id"},
        {"name": "active", "path": "active", "type": "boolean"},
        {"name": "births", "path": "multipleBirth.ofType(integer)", "type": "integer"},
        {"name": "family", "path": "name.family", "type": "string"},
        {"name": "given", "path": "name.given", "type": "string", "collection": true}
    ]}]}))
}

fn write(format: Format) -> TestResult<Vec<u8>> {
    let v = columns_view()?;
    let mut sink = Sink::new(format, v.columns(), Vec::new())?;
    for p in patients() {
        for row in v.rows(&p, Budget::default())? {
            sink.push(&row)?;
        }
    }
    Ok(sink.finish()?)
}

#[test]
fn csv_quotes_what_needs_it_and_leaves_nulls_empty() -> TestResult {
    let text = String::from_utf8(write(Format::Csv { header: true })?)?;
    assert_eq!(
        text,
        "id,active,births,family,given\r\na,true,,\"O'Hara, \"\"Jr\"\"\",\"[\"\"x\"\",\"\"y\"\"]\"\r\nb,,2,,[]\r\n"
    );
    let bare = String::from_utf8(write(Format::Csv { header: false })?)?;
    assert!(bare.starts_with("a,true"));
    Ok(())
}

#[test]
fn json_and_ndjson_hold_one_object_per_row() -> TestResult {
    let rows: Value = serde_json::from_slice(&write(Format::Json)?)?;
    assert_eq!(rows[1], json!({"id": "b", "active": null, "births": 2, "family": null, "given": []}));
    let text = String::from_utf8(write(Format::Ndjson)?)?;
    let lines: Vec<Value> = text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["given"], json!(["x", "y"]));
    Ok(())
}

#[test]
fn parquet_reads_back_with_typed_columns() -> TestResult {
    let bytes = write(Format::Parquet)?;
    let path = std::env::temp_dir().join(format!("fhirgate-views-{}.parquet", std::process::id()));
    std::fs::write(&path, &bytes)?;
    let reader = SerializedFileReader::new(std::fs::File::open(&path)?)?;
    let mut rows: Vec<Vec<(String, Field)>> = Vec::new();
    for row in reader.get_row_iter(None)? {
        rows.push(row?.get_column_iter().map(|(n, f)| (n.clone(), f.clone())).collect());
    }
    std::fs::remove_file(&path)?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][1], ("active".to_owned(), Field::Bool(true)));
    assert_eq!(rows[1][2], ("births".to_owned(), Field::Long(2)));
    assert_eq!(rows[1][3], ("family".to_owned(), Field::Null));
    assert_eq!(rows[0][4], ("given".to_owned(), Field::Str("[\"x\",\"y\"]".to_owned())));
    Ok(())
}

#[test]
fn formats_are_named_by_code_or_media_type() {
    assert_eq!(Format::parse("text/csv", false).ok(), Some(Format::Csv { header: false }));
    assert_eq!(Format::parse("application/fhir+ndjson", true).ok(), Some(Format::Ndjson));
    assert_eq!(Format::parse("PARQUET", true).ok(), Some(Format::Parquet));
    assert!(Format::parse("xlsx", true).is_err());
}

#[test]
fn products_of_iterations_are_bounded() -> TestResult {
    // 400 x 400 x 400 rows from one resource: refused, not built.
    let items: Vec<Value> = (0..400).map(|i| json!({"value": format!("{i}")})).collect();
    let patient = json!({"resourceType": "Patient", "id": "p", "identifier": items});
    let v = view(json!({"resource": "Patient", "select": [
        {"forEach": "identifier", "column": [{"name": "a", "path": "value"}]},
        {"forEach": "identifier", "column": [{"name": "b", "path": "value"}]},
        {"forEach": "identifier", "column": [{"name": "c", "path": "value"}]}
    ]}))?;
    let e = v.rows(&patient, Budget::default()).err().map(|e| e.status());
    assert_eq!(e, Some(422));
    Ok(())
}

#[test]
fn costly_paths_end_with_the_budget() -> TestResult {
    let names: Vec<Value> = (0..2_000).map(|i| json!({"family": format!("f{i}")})).collect();
    let patient = json!({"resourceType": "Patient", "id": "p", "name": names});
    let v = view(json!({"resource": "Patient", "select": [{"column": [
        {"name": "n", "path": "name.select(%resource.descendants().count()).count()"}
    ]}]}))?;
    let started = std::time::Instant::now();
    let e = v.rows(&patient, Budget::default()).err();
    assert_eq!(e.as_ref().map(crate::Error::status), Some(422), "{e:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    Ok(())
}

#[test]
fn definitions_are_checked_before_running() {
    let bad = [
        json!([]),
        json!({"resource": "Patient"}),
        json!({"resource": "Patient", "select": [{"column": [{"name": "a b", "path": "id"}]}]}),
        json!({"resource": "Patient", "select": [{"column": [{"name": "a", "path": "id"}, {"name": "a", "path": "id"}]}]}),
        json!({"resource": "Patient", "select": [{"forEach": "name", "forEachOrNull": "name", "column": [{"name": "a", "path": "id"}]}]}),
        json!({"resource": "Patient", "select": [{"repeat": [], "column": [{"name": "a", "path": "id"}]}]}),
        json!({"resource": "Patient", "constant": [{"name": "c", "valueHumanName": {}}], "select": [{"column": [{"name": "a", "path": "id"}]}]}),
        json!({"resource": "Patient", "select": [{"column": [{"name": "a", "path": "id", "type": "nope"}]}]}),
    ];
    for definition in bad {
        assert_eq!(View::parse(&definition).err().map(|e| e.status()), Some(400), "{definition}");
    }
    let mut deep = json!({"column": [{"name": "a", "path": "id"}]});
    for _ in 0..100 {
        deep = json!({"select": [deep]});
    }
    let nested = json!({"resource": "Patient", "select": [deep]});
    assert_eq!(View::parse(&nested).err().map(|e| e.status()), Some(400));
}
