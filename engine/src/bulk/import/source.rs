//! Where an import's NDJSON comes from: a file in a directory the operator allowed, an `http(s)`
//! URL under a prefix the operator allowed, or a blob of a Blob Storage container the operator
//! allowed (read with the gateway's credentials); anything else is refused at kick-off, and
//! checked again when the job runs.
//! Lines are read on a blocking thread and handed over with the byte offset after each, so a
//! resumed job starts reading where its recorded progress ends.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::ImportSettings;
use crate::error::{Error, Result};

/// Longest line read; a longer one is reported as a failed line and skipped.
pub(super) const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// A checked input location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Location {
    File(PathBuf),
    Http(String),
    Blob(String),
}

/// One line read: its bytes (`Err` with the reason for a line that could not be taken) and the
/// offset just after it.
pub(super) struct Line {
    pub(super) text: std::result::Result<Vec<u8>, String>,
    pub(super) end: u64,
}

/// The location `url` names, if the operator allows reading it: a `file:` URL or absolute path
/// inside one of the allowed directories (after resolving links and `..`), or an `http(s)` URL
/// starting with one of the allowed prefixes. A 400 otherwise.
pub(super) fn check(settings: &ImportSettings, url: &str) -> Result<Location> {
    if let Some(account) = &settings.blob
        && account.locate(url, &settings.input_containers).is_some()
    {
        return Ok(Location::Blob(url.to_owned()));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        if settings.input_urls.iter().any(|prefix| under(url, prefix)) {
            return Ok(Location::Http(url.to_owned()));
        }
        return Err(Error::bad_request(format!("input `{url}` is not under a URL this server may import from")));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    if !Path::new(path).is_absolute() {
        return Err(Error::bad_request(format!(
            "input `{url}` is neither an absolute file path, a `file:` URL nor an `http(s)` URL"
        )));
    }
    let refused = || Error::bad_request(format!("input `{url}` is not in a directory this server may import from"));
    let resolved = std::fs::canonicalize(path).map_err(|_| refused())?;
    let allowed = settings
        .input_dirs
        .iter()
        .filter_map(|dir| std::fs::canonicalize(dir).ok())
        .any(|dir| resolved.starts_with(&dir) && resolved != dir);
    if allowed && resolved.is_file() { Ok(Location::File(resolved)) } else { Err(refused()) }
}

/// Whether `url` is `prefix` or below it, at a boundary (`https://a.example` does not allow
/// `https://a.example.evil/`).
fn under(url: &str, prefix: &str) -> bool {
    let Some(rest) = url.strip_prefix(prefix) else { return false };
    !prefix.is_empty() && (prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?']))
}

/// Reads `location` from byte `offset` on a blocking thread; lines arrive on the receiver, which
/// ends after the last line or with one `Err` line when reading fails. (A blob's credentials are
/// got first: a token source that fails is an error of the run, which is tried again.)
pub(super) async fn read(settings: &ImportSettings, location: Location, offset: u64) -> Result<mpsc::Receiver<Line>> {
    let blob = match (&location, &settings.blob) {
        (Location::Blob(_), Some(account)) => Some(account.reader_auth().await?),
        _ => None,
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || {
        let opened: std::result::Result<Box<dyn Read + Send>, String> = match &location {
            Location::File(path) => std::fs::File::open(path)
                .and_then(|mut f| f.seek(SeekFrom::Start(offset)).map(|_| f))
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display())),
            Location::Http(url) => http(url, offset),
            Location::Blob(url) => match &blob {
                Some(reader) => reader.open(url, offset),
                None => Err(format!("no Blob Storage account to read `{url}` with")),
            },
        };
        let reader = match opened {
            Ok(reader) => reader,
            Err(reason) => {
                let _ = tx.blocking_send(Line { text: Err(reason), end: offset });
                return;
            }
        };
        lines(BufReader::with_capacity(256 * 1024, reader), offset, &tx);
    });
    Ok(rx)
}

/// An `http(s)` input, its first `offset` bytes skipped.
fn http(url: &str, offset: u64) -> std::result::Result<Box<dyn Read + Send>, String> {
    let agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(30)))
        .max_redirects(0)
        .build()
        .new_agent();
    let response = agent.get(url).call().map_err(|e| format!("cannot fetch `{url}`: {e}"))?;
    let mut reader = response.into_body().into_reader();
    std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink())
        .map_err(|e| format!("cannot fetch `{url}`: {e}"))?;
    Ok(Box::new(reader))
}

/// Sends each line of `reader` (from byte `offset`), blank lines left out.
fn lines(mut reader: impl BufRead, mut offset: u64, tx: &mpsc::Sender<Line>) {
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = match (&mut reader).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut buffer) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.blocking_send(Line { text: Err(format!("reading failed: {e}")), end: offset });
                return;
            }
        };
        if read == 0 {
            return;
        }
        let text = if buffer.len() > MAX_LINE_BYTES && !buffer.ends_with(b"\n") {
            // Too long: skip to the end of the line.
            let mut skipped = 0u64;
            loop {
                let mut rest = Vec::new();
                match (&mut reader).take(1024 * 1024).read_until(b'\n', &mut rest) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        skipped += n as u64;
                        if rest.ends_with(b"\n") {
                            break;
                        }
                    }
                }
            }
            offset += skipped;
            Err(format!("the line is longer than {MAX_LINE_BYTES} bytes"))
        } else {
            Ok(std::mem::take(&mut buffer))
        };
        offset += read as u64;
        if matches!(&text, Ok(t) if t.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if tx.blocking_send(Line { text, end: offset }).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> ImportSettings {
        ImportSettings {
            input_dirs: vec![dir.to_path_buf()],
            input_urls: vec!["https://data.example/exports/".into(), "https://b.example".into()],
            ..ImportSettings::default()
        }
    }

    #[test]
    fn only_allowed_places_are_read() -> std::io::Result<()> {
        let root = std::env::temp_dir().join(format!("fhirgate-import-source-{}", std::process::id()));
        let allowed = root.join("allowed");
        std::fs::create_dir_all(&allowed)?;
        std::fs::write(allowed.join("a.ndjson"), "{}\n")?;
        std::fs::write(root.join("secret.ndjson"), "{}\n")?;
        let s = settings(&allowed);
        let inside = allowed.join("a.ndjson");
        assert_eq!(check(&s, inside.to_str().unwrap_or_default()).ok(), Some(Location::File(inside.clone())));
        assert!(check(&s, &format!("file://{}", inside.display())).is_ok());
        for refused in [
            format!("{}/../secret.ndjson", allowed.display()),
            root.join("secret.ndjson").display().to_string(),
            allowed.display().to_string(),
            "relative.ndjson".into(),
            "/etc/passwd".into(),
            "ftp://data.example/exports/a.ndjson".into(),
            "https://data.example/other/a.ndjson".into(),
            "https://data.example.evil/exports/a.ndjson".into(),
            "https://b.example.evil/a.ndjson".into(),
        ] {
            assert!(check(&s, &refused).is_err(), "{refused}");
        }
        assert!(check(&s, "https://data.example/exports/a.ndjson").is_ok());
        assert!(check(&s, "https://b.example/a.ndjson").is_ok());
        let _ = std::fs::remove_dir_all(&root);
        Ok(())
    }

    #[test]
    fn lines_carry_the_offset_after_them() {
        let (tx, mut rx) = mpsc::channel(16);
        let text = b"{\"a\":1}\n\n  \n{\"b\":2}\n{\"c\":3}";
        std::thread::spawn(move || lines(&text[..], 100, &tx));
        let mut got = Vec::new();
        while let Some(line) = rx.blocking_recv() {
            got.push((line.text.unwrap_or_default(), line.end));
        }
        assert_eq!(
            got,
            vec![(b"{\"a\":1}\n".to_vec(), 108), (b"{\"b\":2}\n".to_vec(), 120), (b"{\"c\":3}".to_vec(), 127)]
        );
    }
}
