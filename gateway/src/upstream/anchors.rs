//! The trust anchors a remote target's TLS certificate is verified against: the system's
//! (what rustls-native-certs finds, `SSL_CERT_FILE` / `SSL_CERT_DIR` included) and the
//! target's `tls_ca_file` added to them, or `tls_ca_file` alone with `tls_system_anchors =
//! false` (a target that must only ever present a private CA's certificate).
//!
//! pingora's connector takes its anchors as one PEM file, read once when the connector is
//! built: the union is written to a file in a new owner-only directory (so no other local user
//! can swap the anchors between writing and reading), the connectors are built, and the
//! directory is removed when the [`Anchors`] is dropped.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::address::config_error;
use crate::config::TargetConfig;
use crate::error::GatewayError;
use crate::keyfile;

/// The PEM file a target's connectors read their anchors from, while it exists.
pub struct Anchors {
    /// The owner-only directory holding a union file, removed on drop; `None` for the file
    /// given in the configuration as it is.
    dir: Option<PathBuf>,
    file: PathBuf,
}

impl Anchors {
    /// The anchors of `config`'s target: `None` when it has no `tls_ca_file` (the connector
    /// then loads the system's itself).
    pub fn of(config: &TargetConfig) -> Result<Option<Self>, GatewayError> {
        let Some(ca) = &config.tls_ca_file else { return Ok(None) };
        let err = |m: String| config_error(&config.id, format!("`tls_ca_file` `{}`: {m}", ca.display()));
        // Checked here: pingora's connector would panic on an unreadable file.
        let mut store = pingora::tls::RootCertStore::empty();
        pingora::tls::load_ca_file_into_store(ca, &mut store).map_err(|e| err(e.to_string()))?;
        if store.is_empty() {
            return Err(err("holds no certificate".into()));
        }
        if !config.tls_system_anchors {
            return Ok(Some(Self { dir: None, file: ca.clone() }));
        }
        let mut pem = std::fs::read_to_string(ca).map_err(|e| err(e.to_string()))?;
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        let system = rustls_native_certs::load_native_certs();
        for e in &system.errors {
            tracing::warn!(target_id = %config.id, "a system trust anchor could not be read: {e}");
        }
        // Only anchors rustls takes: pingora's connector panics on one it refuses.
        for cert in system.certs {
            if store.add(cert.clone()).is_ok() {
                pem.push_str(&to_pem(cert.as_ref()));
            }
        }
        let dir = private_dir().map_err(|e| err(format!("cannot write the union of anchors: {e}")))?;
        let file = dir.join("anchors.pem");
        let anchors = Self { dir: Some(dir), file };
        std::fs::write(&anchors.file, pem).map_err(|e| err(format!("cannot write the union of anchors: {e}")))?;
        let mut union = pingora::tls::RootCertStore::empty();
        pingora::tls::load_ca_file_into_store(&anchors.file, &mut union)
            .map_err(|e| err(format!("the union of anchors is unreadable: {e}")))?;
        Ok(Some(anchors))
    }

    pub fn file(&self) -> &Path {
        &self.file
    }
}

impl Drop for Anchors {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A new directory only this user can enter, under the system's temporary directory.
fn private_dir() -> std::io::Result<PathBuf> {
    let name: String = keyfile::random(12)?.iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("fhirgate-anchors-{name}"));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    // Fails when the name exists: never a directory someone else made.
    builder.create(&dir)?;
    Ok(dir)
}

/// One DER certificate as PEM.
fn to_pem(der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    fn certificates(pem: &str) -> usize {
        pem.matches("-----BEGIN CERTIFICATE-----").count()
    }

    #[test]
    fn the_ca_file_is_added_to_the_system_anchors_unless_told_otherwise() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = std::env::temp_dir().join(format!("fhirgate-anchors-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let config = TargetConfig { id: "lab".into(), tls_ca_file: Some(ca_file.clone()), ..TargetConfig::default() };

        let system = rustls_native_certs::load_native_certs().certs.len();
        let anchors = Anchors::of(&config).unwrap().unwrap();
        let union = std::fs::read_to_string(anchors.file()).unwrap();
        assert!(union.starts_with(&ca.pem()), "the target's CA first");
        assert_eq!(certificates(&union), 1 + system, "and every system anchor rustls takes");
        let private = anchors.dir.clone().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o700, "owner only");
        }
        drop(anchors);
        assert!(!private.exists(), "removed once the connectors have read it");

        let only = TargetConfig { tls_system_anchors: false, ..config.clone() };
        let anchors = Anchors::of(&only).unwrap().unwrap();
        assert_eq!(anchors.file(), ca_file.as_path(), "the file alone, as it is");
        assert!(Anchors::of(&TargetConfig { tls_ca_file: None, ..config }).unwrap().is_none(), "the system's only");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
