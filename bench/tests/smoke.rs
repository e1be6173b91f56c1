//! Smoke test of the load generator against a tiny in-process HTTP/1.1 server: the reports'
//! counts add up and match what the server saw. Behaviour only, never timing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Serves keep-alive HTTP/1.1: `/fail…` answers 500, POST answers 201 with a Location, anything
/// else 200 `{}`. Counts the requests it answered.
fn tiny_server() -> TestResult<(String, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}/", listener.local_addr()?);
    let count = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let _ = serve(stream, &seen);
            });
        }
    });
    Ok((base, count))
}

fn serve(stream: TcpStream, seen: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (status, extra) = if path.starts_with("/fail") {
            ("500 Internal Server Error", String::new())
        } else if method == "POST" {
            ("201 Created", format!("Location: http://x/Patient/p{}/_history/1\r\n", seen.load(Ordering::SeqCst)))
        } else {
            ("200 OK", String::new())
        };
        seen.fetch_add(1, Ordering::SeqCst);
        write!(
            out,
            "HTTP/1.1 {status}\r\n{extra}Content-Type: application/fhir+json\r\nContent-Length: 2\r\n\r\n{{}}"
        )?;
        out.flush()?;
    }
}

fn bench(args: &[&str]) -> TestResult<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_fhirgate-bench")).args(args).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

fn counts(summary: &Value) -> (u64, u64, u64, u64) {
    let n = |k: &str| summary[k].as_u64().unwrap_or(u64::MAX);
    (n("requests"), n("ok"), n("non_2xx"), n("transport_errors"))
}

#[test]
fn closed_loop_counts_add_up() -> TestResult {
    let (base, seen) = tiny_server()?;
    let url = format!("{base}Patient/1");
    let m: Value =
        serde_json::from_str(&bench(&["http", "--url", &url, "--clients", "4", "--duration", "1", "--warmup", "0"])?)?;
    let (requests, ok, non_2xx, transport) = counts(&m["total"]);
    assert!(requests > 0);
    assert_eq!(requests, ok + non_2xx + transport);
    assert_eq!((non_2xx, transport), (0, 0));
    assert!(seen.load(Ordering::SeqCst) >= requests, "the server saw every counted request");
    assert_eq!(m["total"]["statuses"]["200"].as_u64(), Some(ok));
    Ok(())
}

#[test]
fn errors_are_counted_and_open_loop_keeps_its_schedule() -> TestResult {
    let (base, _) = tiny_server()?;
    let url = format!("{base}fail");
    let args = ["http", "--url", &url, "--clients", "2", "--rate", "50", "--duration", "1", "--warmup", "0"];
    let m: Value = serde_json::from_str(&bench(&args)?)?;
    let (requests, ok, non_2xx, transport) = counts(&m["total"]);
    assert!(requests > 0 && requests <= 51, "{requests} requests at 50/s for 1 s");
    assert_eq!((ok, non_2xx, transport), (0, requests, 0));
    Ok(())
}

#[test]
fn suite_writes_results_whose_counts_add_up() -> TestResult {
    let (base, _) = tiny_server()?;
    let dir: PathBuf = std::env::temp_dir().join(format!("fhirgate-bench-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let dataset = dir.join("dataset.json");
    std::fs::write(
        &dataset,
        r#"{"bundles":1,"resources":2,"patients":["a","b"],
            "observation_codes":[{"system":"http://loinc.org","code":"8302-2","count":3}]}"#,
    )?;
    let dir_arg = dir.to_string_lossy().to_string();
    let dataset_arg = dataset.to_string_lossy().to_string();
    let args = [
        "suite",
        "--base-url",
        &base,
        "--dataset",
        &dataset_arg,
        "--scenarios",
        "1,2,4,5,6",
        "--read-clients",
        "1,2",
        "--clients",
        "2",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--out",
        &dir_arg,
    ];
    let table = bench(&args)?;
    assert!(table.contains("| 6 | CRUD cycle |"), "{table}");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") || path == dataset {
            continue;
        }
        files += 1;
        let result: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        for m in result["measurements"].as_array().ok_or("no measurements")? {
            let (requests, ok, non_2xx, transport) = counts(&m["total"]);
            assert!(requests > 0, "{}", path.display());
            assert_eq!(requests, ok + non_2xx + transport);
            let kinds: u64 = m["kinds"].as_object().ok_or("no kinds")?.values().map(|k| counts(k).0).sum();
            assert_eq!(kinds, requests, "kinds add up to the total");
        }
    }
    assert_eq!(files, 5, "one JSON file per scenario");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
