//! What the engine's integration tests share: where the official R4 package is.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The extracted `package/` directory of `hl7.fhir.r4.examples`: `FHIR_R4_PACKAGE`, or else what
/// `scripts/fetch-r4-package.sh` downloads and extracts once into the user's cache.
#[expect(clippy::expect_used, reason = "a test fails by panicking")]
pub fn package_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FHIR_R4_PACKAGE") {
        return PathBuf::from(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-r4-package.sh");
    let output = Command::new("sh").arg(&script).output().expect("run scripts/fetch-r4-package.sh");
    assert!(
        output.status.success(),
        "scripts/fetch-r4-package.sh failed (set FHIR_R4_PACKAGE to an extracted package/): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}
