//! The command line: `fhirgate serve` and `fhirgate config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::error::GatewayError;

/// fhirgate: a FHIR R4 server and gateway.
///
/// Settings come from, in rising order of precedence: built-in defaults, the TOML file given
/// with --config, FHIRGATE_* environment variables, and command-line flags.
#[derive(Debug, Parser)]
#[command(name = "fhirgate", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the FHIR server (default: http://127.0.0.1:8080/ on SQLite under ./data/).
    Serve(ServeArgs),
    /// Print the effective configuration as TOML (after file, environment and flags) and exit.
    Config(ServeArgs),
    /// Create or upgrade the store's schema (`serve` does this too at start) and exit.
    Migrate(ServeArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 [env: FHIRGATE_LISTEN]
    #[arg(long)]
    listen: Option<String>,
    /// TOML configuration file (see deploy/fhirgate.example.toml) [env: FHIRGATE_CONFIG]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Store URL: `sqlite:PATH` (default `sqlite:<data-dir>/fhirgate.db`) or
    /// `postgres://USER@HOST:PORT/DB` [env: FHIRGATE_STORE]
    #[arg(long)]
    store: Option<String>,
    /// Directory for the default SQLite store [env: FHIRGATE_DATA_DIR]
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> Result<(), GatewayError> {
        match self.command {
            Command::Serve(args) => {
                let config = args.load()?;
                crate::logging::init(&config.log);
                crate::server::run(config)
            }
            Command::Migrate(args) => {
                let config = args.load()?;
                crate::logging::init(&config.log);
                crate::server::check_store(&config)
            }
            Command::Config(args) => {
                let config = args.load()?;
                print!("{}", config.to_toml()?);
                Ok(())
            }
        }
    }
}

impl ServeArgs {
    fn load(self) -> Result<Config, GatewayError> {
        let file = self.config.or_else(|| std::env::var_os("FHIRGATE_CONFIG").map(PathBuf::from));
        Config::load(
            file.as_deref(),
            &std::env::vars().collect(),
            Overrides { listen: self.listen, store: self.store, data_dir: self.data_dir },
        )
    }
}
