//! TLS for tests: a test CA ([`TestCa`]: its PEM in a file, a server certificate for
//! `localhost` and `127.0.0.1`) and a TLS front ([`TlsRelay`]) that terminates TLS with that
//! certificate and relays the bytes to a plain loopback server, so any plain test server (the
//! misbehaving upstream, a fhirgate) can be reached over HTTPS.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::TestResult;

/// A certificate authority made for one test, and a server configuration signed by it.
pub struct TestCa {
    /// The CA's certificate (PEM).
    pub ca_file: PathBuf,
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A new CA, its PEM written to `dir/{name}.pem`.
    pub fn new(dir: &Path, name: &str) -> TestResult<Self> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, format!("fhirgate test CA {name}"));
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()])?;
        leaf_params.subject_alt_names.push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
        let ca_file = dir.join(format!("{name}.pem"));
        std::fs::write(&ca_file, ca.pem())?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)?;
        Ok(Self { ca_file, server: Arc::new(server) })
    }
}

/// Accepts TLS connections on a loopback port and relays each to a plain server; stops
/// accepting when dropped.
pub struct TlsRelay {
    pub port: u16,
    stopped: Arc<AtomicBool>,
}

/// A TLS stream accepted by [`serve`].
pub type Stream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// Accepts TLS connections with `ca`'s server certificate on a free loopback port and hands
/// each to `handle` on its own thread, until `stopped` is set (and a connection wakes the loop).
pub fn serve(ca: &TestCa, handle: impl Fn(Stream) + Send + Sync + 'static) -> TestResult<(u16, Arc<AtomicBool>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let stopped = Arc::new(AtomicBool::new(false));
    let (stop, config, handle) = (stopped.clone(), ca.server.clone(), Arc::new(handle));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let Ok(tls) = rustls::ServerConnection::new(config.clone()) else { continue };
            let handle = handle.clone();
            std::thread::spawn(move || handle(rustls::StreamOwned::new(tls, stream)));
        }
    });
    Ok((port, stopped))
}

impl TlsRelay {
    /// Relays to `127.0.0.1:backend` with `ca`'s server certificate.
    pub fn start(ca: &TestCa, backend: u16) -> TestResult<Self> {
        let (port, stopped) = serve(ca, move |tls| relay(tls, backend))?;
        Ok(Self { port, stopped })
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies bytes both ways until either side closes. One thread: reads from the TLS side with a
/// short timeout, then from the backend, in turns.
fn relay(mut tls: Stream, backend: u16) {
    let Ok(mut plain) = TcpStream::connect(("127.0.0.1", backend)) else { return };
    let short = Some(std::time::Duration::from_millis(5));
    if tls.sock.set_read_timeout(short).is_err() || plain.set_read_timeout(short).is_err() {
        return;
    }
    let mut buffer = [0u8; 16 * 1024];
    let idle = |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
    loop {
        match tls.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                if plain.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
        match plain.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                if tls.write_all(&buffer[..n]).and_then(|()| tls.flush()).is_err() {
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
    }
}
