//! `fhirgate`: the FHIR R4 server and gateway binary.
//!
//! A pingora front end ([`proxy`]) authenticates each request ([`auth`]), asks the Cedar
//! policies ([`policy`]) and hands it to the FHIR engine over the configured store. Configuration is one typed structure ([`config`]) read from a TOML file, environment
//! variables and command-line flags.

mod auth;
mod cli;
mod client_format;
mod config;
mod cors;
mod error;
mod exchange;
mod export;
mod keyfile;
mod links;
mod logging;
mod metrics;
mod paging;
mod policy;
mod probes;
mod proxy;
mod routing;
mod server;
mod smart;
mod stores;
mod telemetry;
mod upstream;
mod views;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: cheaper allocation on the request path, and memory given
/// back to the system after a large Bundle (gateway/Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fhirgate: {e}");
            ExitCode::FAILURE
        }
    }
}
