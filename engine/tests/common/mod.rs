//! What the engine's integration tests share: where the checkout and the official R4 package are.

#![allow(dead_code, reason = "each test binary uses only some of these helpers")]

use std::path::PathBuf;
use std::process::Command;

/// The engine's directory in the checkout under test. Read at run time (cargo sets it for test
/// processes): a test binary reused from a shared target directory may have been compiled in
/// another checkout, so the compile-time value can name a stale or deleted tree.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The extracted `package/` directory of `hl7.fhir.r4.examples`: `FHIR_R4_PACKAGE`, or else what
/// `scripts/fetch-r4-package.sh` downloads and extracts once into the user's cache.
#[expect(clippy::expect_used, reason = "a test fails by panicking")]
pub fn package_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FHIR_R4_PACKAGE") {
        return PathBuf::from(dir);
    }
    let script = manifest_dir().join("../scripts/fetch-r4-package.sh");
    let output = Command::new("sh").arg(&script).output().expect("run scripts/fetch-r4-package.sh");
    assert!(
        output.status.success(),
        "scripts/fetch-r4-package.sh failed (set FHIR_R4_PACKAGE to an extracted package/): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}
