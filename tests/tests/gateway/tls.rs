//! A remote target's `tls_ca_file` is added to the system's trust anchors: with the front's
//! system anchors standing for a public CA (`SSL_CERT_FILE`, which the system loader reads) and
//! a private CA in `tls_ca_file`, a remote with a certificate of either is trusted; with
//! `tls_system_anchors = false` only the private CA is, and the other remote's answer is a 502
//! OperationOutcome naming no address.

use fhirgate_e2e::tls::{TestCa, TlsRelay};
use fhirgate_e2e::topology::{self, Credentials, quoted, remote_target, route};
use fhirgate_e2e::upstream::{Mode, Upstream};
use fhirgate_e2e::{TestResult, temp_dir};

use super::{expect, expect_outcome, no_upstream_address, runs_here};

#[test]
fn tls_ca_file_adds_to_the_system_anchors_unless_told_otherwise() -> TestResult {
    if !runs_here("tls anchors") {
        return Ok(());
    }
    let dir = temp_dir("gw-tls")?;
    let upstream = Upstream::start(Mode::Good)?;
    let public = TestCa::new(&dir, "public-ca")?;
    let private = TestCa::new(&dir, "private-ca")?;
    let (by_public, by_private) = (TlsRelay::start(&public, upstream.port)?, TlsRelay::start(&private, upstream.port)?);
    let private_ca = format!("tls_ca_file = {}", quoted(&private.ca_file.display().to_string()));
    let target = |id: &str, port: u16, extra: &str| {
        let base = format!("https://localhost:{port}");
        let extra = format!("addresses = [\"127.0.0.1:{port}\"]\n{extra}");
        remote_target(id, &base, &Credentials::None, &extra)
    };
    let toml = [
        target("system", by_public.port, ""),
        target("private", by_private.port, &private_ca),
        target("public-with-ca-file", by_public.port, &private_ca),
        target("public-private-only", by_public.port, &format!("{private_ca}\ntls_system_anchors = false")),
        route("system", "system", &["system"], ""),
        route("private", "private", &["private"], ""),
        route("union", "union", &["public-with-ca-file"], ""),
        route("only", "only", &["public-private-only"], ""),
    ]
    .concat();
    let anchors = public.ca_file.display().to_string();
    let s = topology::start(&dir, &toml, &[("SSL_CERT_FILE", anchors.as_str())])?;
    // (The upstream behind the relays writes its own plain address in references: not checked.)
    let ports = [by_public.port, by_private.port];
    for prefix in ["system", "private", "union"] {
        let r = s.get(&format!("{prefix}/Patient/1"))?;
        expect(&format!("GET /{prefix}/Patient/1 over verified TLS"), &r, 200)?;
        no_upstream_address(prefix, &r, &ports)?;
    }
    let r = s.get("only/Patient/1")?;
    expect_outcome("a certificate of a CA the target does not trust", &r, 502)?;
    no_upstream_address("only", &r, &ports)?;
    Ok(())
}
