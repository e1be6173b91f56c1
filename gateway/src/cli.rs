//! The command line: `fhirgate serve`, `config`, `migrate`, `token` (a development token from
//! the local issuer), `policy validate|test|explain|schema|prove|impact`, `views export` and
//! `store migrate-cosmos`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides, Sources};
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
    /// Print every setting, its value and where it came from (default, file, env VAR, flag), as
    /// TOML, and exit.
    Config(ServeArgs),
    /// Create or upgrade the store's schema (`serve` does this too at start) and exit.
    Migrate(ServeArgs),
    /// Print a token signed by the local development issuer (same configuration and data
    /// directory as `serve`), e.g. `fhirgate token --role globalAdmin`.
    Token(TokenArgs),
    /// Check, test, explain and prove Cedar policies, and replay audit logs against them.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// SQL on FHIR views over the whole local store.
    #[command(subcommand)]
    Views(ViewsCommand),
    /// Store maintenance.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy a Cosmos DB store of the one-partition layout into the partitioned layout
    /// (same container), e.g. `fhirgate store migrate-cosmos --store cosmos:https://…`; once it is
    /// done, `store.cosmos.layout = "auto"` (the default) serves the copy. Resumable: run it
    /// again after an interruption. Stop the gateways that write first.
    MigrateCosmos {
        #[command(flatten)]
        serve: ServeArgs,
        /// The one-partition store's partition key value (default: `store.cosmos.partition`).
        #[arg(long)]
        from_partition: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ViewsCommand {
    /// Write one file per ViewDefinition (Parquet by default) with its rows over every resource
    /// of its type in the store, e.g. `fhirgate views export --view patients.json --out DIR`.
    /// An operator's tool: no token, no policies (clients use `$viewdefinition-run`).
    Export {
        #[command(flatten)]
        serve: ServeArgs,
        /// A ViewDefinition (JSON file); repeatable.
        #[arg(long, required = true)]
        view: Vec<PathBuf>,
        /// Directory for the files (created if missing); each is named after the view's
        /// `name`, else its file name.
        #[arg(long)]
        out: PathBuf,
        /// `parquet`, `csv`, `ndjson` or `json`.
        #[arg(long, default_value = "parquet")]
        format: String,
    },
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
    /// Directory for the default SQLite store and the local issuer's key [env: FHIRGATE_DATA_DIR]
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct TokenArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// An app role (`roles` claim), e.g. globalAdmin, globalReader, smartUser; repeatable.
    #[arg(long)]
    role: Vec<String>,
    /// A scope (`scope` claim), e.g. `patient/Observation.rs`; repeatable.
    #[arg(long)]
    scope: Vec<String>,
    /// Subject (`sub` and `oid`).
    #[arg(long, default_value = "dev-user")]
    sub: String,
    /// Patient in context (SMART `patient` claim).
    #[arg(long)]
    patient: Option<String>,
    /// `fhirUser` claim, e.g. Practitioner/123.
    #[arg(long)]
    fhir_user: Option<String>,
    /// Tenant (`tid` claim).
    #[arg(long, default_value = "local")]
    tenant: String,
    /// The client application (`azp` claim, the principal's `clientId`).
    #[arg(long)]
    client_id: Option<String>,
    /// An application token (`idtyp: app`) instead of a user's.
    #[arg(long)]
    app: bool,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl_seconds: u64,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate policy sets (shipped names or directories of *.cedar files; default: the
    /// configured ones) against the schema; problems are printed as file:line:column.
    Validate {
        #[command(flatten)]
        serve: ServeArgs,
        sets: Vec<String>,
    },
    /// Run the JSON test cases of policy sets: `<set dir>/tests/*.json` (a shipped set's name
    /// resolves to `policies/sets/<name>`).
    Test {
        /// Set directories (e.g. policies/sets/smart) or shipped set names.
        #[arg(required = true)]
        sets: Vec<String>,
        /// Also print which policies determined a decision and which `when` / `unless`
        /// conditions the cases saw both true and false.
        #[arg(long)]
        coverage: bool,
    },
    /// Print the Cedar schema policies are validated against: the hand-written part and one
    /// entity type per R4 resource type with its search parameters as attributes.
    Schema,
    /// Print the decision and the determining policies for a token or claims and a request.
    /// The token is decoded, not verified: this is an offline tool.
    Explain {
        #[command(flatten)]
        serve: ServeArgs,
        /// HTTP method, e.g. GET.
        method: String,
        /// URL below the FHIR base, e.g. `Observation/1` or `Patient?name=x`.
        url: String,
        /// A bearer token whose claims to use.
        #[arg(long, conflicts_with = "claims")]
        token: Option<String>,
        /// Claims as JSON, e.g. '{"sub":"u1","roles":["globalReader"]}'.
        #[arg(long)]
        claims: Option<String>,
        /// A JSON file with the resource, for the data-level decision.
        #[arg(long)]
        resource: Option<PathBuf>,
        /// A JSON file with a stored Consent the data-level decision sees (`resource.consent`);
        /// repeatable.
        #[arg(long = "consent", requires = "resource")]
        consents: Vec<PathBuf>,
        /// A request header `Name: value`; repeatable.
        #[arg(long)]
        header: Vec<String>,
        /// Policy sets (names or directories) instead of the configured ones; repeatable.
        #[arg(long = "set")]
        sets: Vec<String>,
    },
    /// Prove properties of policy sets for every possible request, with the cvc5 SMT solver
    /// (1.3.1; `scripts/install-cvc5.sh`): that no policy errors, the properties a set states
    /// in `properties/*.cedar`, or with --implies A B that A allows no more than B. A property
    /// that fails prints a counterexample; the exit status is then 1.
    Prove {
        /// A set to prove (shipped name or directory); several are combined. Default: each
        /// shipped set on its own.
        #[arg(long = "set")]
        sets: Vec<String>,
        /// Only this property (`never-errors`, `smart/patient-compartment`, ...); repeatable.
        #[arg(long = "property")]
        properties: Vec<String>,
        /// Prove that set A allows no more than set B (sets joined by commas are combined).
        #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with_all = ["sets", "properties"])]
        implies: Vec<String>,
        /// The cvc5 executable [default: $CVC5, else `cvc5` on the PATH]
        #[arg(long)]
        solver: Option<PathBuf>,
    },
    /// Decide the requests recorded in an audit log (written with `policy.audit_inputs =
    /// true`) with two policy sets and list every decision that changes, grouped by policy.
    Impact {
        /// The audit log: the server's JSON lines (other lines are skipped).
        #[arg(long)]
        audit: PathBuf,
        /// The sets in force (shipped names or directories; join several with commas).
        old: String,
        /// The candidate sets.
        new: String,
    },
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> Result<(), GatewayError> {
        match self.command {
            Command::Serve(args) => {
                let config = args.load()?;
                let _log = crate::logging::init(&config.log, &config.tracing)?;
                crate::server::run(config)
            }
            Command::Migrate(args) => {
                let config = args.load()?;
                let _log = crate::logging::init(&config.log, &crate::config::TracingConfig::default())?;
                crate::server::check_store(&config)
            }
            Command::Config(args) => {
                let (config, sources) = args.load_with_sources()?;
                print!("{}", config.describe(&sources)?);
                Ok(())
            }
            Command::Token(args) => token(args),
            Command::Policy(command) => crate::policy::tools::run(command.into()),
            Command::Store(StoreCommand::MigrateCosmos { serve, from_partition }) => {
                let config = serve.load()?;
                let _log = crate::logging::init(&config.log, &crate::config::TracingConfig::default())?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| GatewayError::Store(e.to_string()))?;
                let url = config.store.url.clone().unwrap_or_default();
                runtime.block_on(crate::stores::migrate_cosmos(&url, &config.store, from_partition.as_deref()))
            }
            Command::Views(ViewsCommand::Export { serve, view, out, format }) => {
                let config = serve.load()?;
                let _log = crate::logging::init(&config.log, &crate::config::TracingConfig::default())?;
                crate::views::export(&config, &view, &out, &format)
            }
        }
    }
}

fn token(args: TokenArgs) -> Result<(), GatewayError> {
    let config = args.serve.load()?;
    if !config.local_issuer_on() {
        return Err(GatewayError::Config(
            "the local issuer is off in this configuration (`auth.enabled = false`, `auth.local_issuer = false`, \
             or real `[[auth.issuers]]` configured without `auth.local_issuer = true`): its tokens would not be \
             accepted"
                .into(),
        ));
    }
    let issuer = crate::auth::local::LocalIssuer::open(&config)?;
    let mut claims = serde_json::json!({
        "sub": args.sub,
        "oid": args.sub,
        "tid": args.tenant,
        "idtyp": if args.app { "app" } else { "user" },
    });
    if !args.role.is_empty() {
        claims["roles"] = serde_json::json!(args.role);
    }
    if !args.scope.is_empty() {
        claims["scope"] = serde_json::json!(args.scope.join(" "));
    }
    if let Some(patient) = args.patient {
        claims["patient"] = serde_json::json!(patient);
    }
    if let Some(client_id) = args.client_id {
        claims["azp"] = serde_json::json!(client_id);
    }
    if let Some(fhir_user) = args.fhir_user {
        claims["fhirUser"] = serde_json::json!(fhir_user);
    }
    println!("{}", issuer.sign(claims, args.ttl_seconds)?);
    Ok(())
}

impl From<PolicyCommand> for crate::policy::tools::Tool {
    fn from(command: PolicyCommand) -> Self {
        use crate::policy::tools::Tool;
        match command {
            PolicyCommand::Validate { serve, sets } => Tool::Validate { config: serve.load(), sets },
            PolicyCommand::Test { sets, coverage } => Tool::Test { sets, coverage },
            PolicyCommand::Schema => Tool::Schema,
            PolicyCommand::Prove { sets, properties, implies, solver } => {
                Tool::Prove(crate::policy::proofs::Prove { sets, properties, implies, solver })
            }
            PolicyCommand::Impact { audit, old, new } => {
                Tool::Impact(crate::policy::impact::Impact { audit, old, new })
            }
            PolicyCommand::Explain { serve, method, url, token, claims, resource, consents, header, sets } => {
                let config = serve.load();
                Tool::Explain { config, method, url, token, claims, resource, consents, headers: header, sets }
            }
        }
    }
}

impl ServeArgs {
    fn load(self) -> Result<Config, GatewayError> {
        Ok(self.load_with_sources()?.0)
    }

    /// The configuration of the file, the process's environment and these flags.
    fn load_with_sources(self) -> Result<(Config, Sources), GatewayError> {
        let file = self.config.or_else(|| std::env::var_os("FHIRGATE_CONFIG").map(PathBuf::from));
        Config::load_with_sources(
            file.as_deref(),
            &std::env::vars().collect(),
            Overrides { listen: self.listen, store: self.store, data_dir: self.data_dir },
        )
    }
}
