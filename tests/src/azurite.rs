//! Azurite, Microsoft's Azure Storage emulator (npm `azurite`), for the Blob Storage tests: its
//! Blob service on a free loopback port with a data directory of its own, stopped when dropped.
//! It is found through `FHIRGATE_TEST_AZURITE` (the path `scripts/ensure-azurite.sh` prints, as
//! `scripts/test.sh` sets it) or installed by running that script. Without npm the tests skip,
//! saying why, unless `FHIRGATE_TEST_REQUIRE_AZURITE=1` (the test script) makes that a failure.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TestResult, free_port};

/// The emulator's well-known development account and key (public, in Microsoft's documentation).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite Blob service.
pub struct Azurite {
    child: Child,
    /// `http://127.0.0.1:<port>/devstoreaccount1`.
    pub endpoint: String,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("FHIRGATE_TEST_AZURITE") {
        return Ok(PathBuf::from(path));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ensure-azurite.sh");
    let out =
        Command::new("bash").arg(&script).output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

impl Azurite {
    /// Starts the emulator with its data in `dir`; `Ok(None)` (after printing why) when it cannot
    /// be installed and the run does not require it.
    pub fn start(dir: &Path) -> TestResult<Option<Self>> {
        let command = match command() {
            Ok(command) => command,
            Err(why) if std::env::var("FHIRGATE_TEST_REQUIRE_AZURITE").is_ok_and(|v| v == "1") => {
                return Err(why.into());
            }
            Err(why) => {
                println!("skipped: no Azurite ({why})");
                return Ok(None);
            }
        };
        let port = free_port()?;
        let data = dir.join("azurite");
        std::fs::create_dir_all(&data)?;
        let log = std::fs::File::create(dir.join("azurite.log"))?;
        let child = Command::new(&command)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--location"])
            .arg(&data)
            .args(["--skipApiVersionCheck", "--loose"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", command.display()))?;
        let azurite = Self { child, endpoint: format!("http://127.0.0.1:{port}/{ACCOUNT}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("azurite.log")).unwrap_or_default();
                return Err(format!("Azurite did not listen on {port}: {log}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Some(azurite))
    }

    /// The server settings that put bulk jobs in this account (shared key in `dir`), export
    /// output in container `exports`, import inputs allowed from container `imports`.
    pub fn server_env(&self, dir: &Path) -> TestResult<Vec<(String, String)>> {
        let key_file = dir.join("blob.key");
        std::fs::write(&key_file, KEY)?;
        Ok(vec![
            ("FHIRGATE_BLOB_ENDPOINT".into(), self.endpoint.clone()),
            ("FHIRGATE_BLOB_AUTH".into(), "shared-key".into()),
            ("FHIRGATE_BLOB_SHARED_KEY_FILE".into(), key_file.display().to_string()),
            ("FHIRGATE_EXPORT_BLOB_CONTAINER".into(), "exports".into()),
            ("FHIRGATE_IMPORT_INPUT_CONTAINERS".into(), "imports".into()),
        ])
    }
}
