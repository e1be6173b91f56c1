//! `fhirgate-conformance run`: runs TestScripts against a FHIR R4 server and reports: progress
//! on stderr, a line per script and the total `N passed, N failed` (per assertion) on stdout.
//! Exit code 0 when no script failed (skipped ones do not), 1 when one failed, 2 when the run
//! itself could not be done.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use fhirgate_conformance::report;
use fhirgate_conformance::run::{Options, Runner};
use fhirgate_conformance::token_from_command;

#[derive(Debug, Parser)]
#[command(name = "fhirgate-conformance", version, about = "Runs FHIR R4 TestScripts against a FHIR server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every TestScript found under the paths (files, or directories searched recursively).
    Run(RunArgs),
    /// Run the same scripts against several servers and write one HTML matrix (script × server).
    Compare(CompareArgs),
    /// Generate a TestScript per R4 resource type from the definitions and the official
    /// examples (the checked-in corpus is `conformance/testscripts/generated`).
    Generate(GenerateArgs),
}

/// What `run` and `compare` share: how scripts run.
#[derive(Debug, Args)]
struct SuiteArgs {
    /// A variable value overriding the scripts' own (`NAME=VALUE`); repeatable.
    #[arg(long = "var", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Seconds one HTTP exchange may take.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Run scripts even when the server's CapabilityStatement does not claim what they require
    /// (`metadata.capability` with `required`); by default they are skipped.
    #[arg(long)]
    no_capability_check: bool,
    /// A directory of CapabilityStatements (JSON or XML) that scripts may name by canonical URL
    /// in `metadata.capability.capabilities`; repeatable. The R4 package (`FHIR_R4_PACKAGE`) is
    /// searched too when that variable is set.
    #[arg(long = "capabilities", value_name = "DIR")]
    capability_dirs: Vec<PathBuf>,
    /// TestScript files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

impl SuiteArgs {
    /// The runner's options for a server at `base_url` (without a token).
    fn options(&self, base_url: &str) -> Options {
        let mut options = Options::new(base_url);
        options.timeout = Duration::from_secs(self.timeout);
        options.variables = self.vars.iter().cloned().collect();
        options.capability_check = !self.no_capability_check;
        options.capability_dirs.clone_from(&self.capability_dirs);
        options.capability_dirs.extend(std::env::var_os("FHIR_R4_PACKAGE").map(PathBuf::from));
        options
    }
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// A server to compare; repeat for each (two or more).
    #[arg(long = "base-url", required = true, num_args = 1)]
    base_urls: Vec<String>,
    /// A bearer token: one for every server, or one per `--base-url` in the same order.
    #[arg(long = "bearer")]
    bearers: Vec<String>,
    /// The HTML page to write.
    #[arg(long, default_value = "conformance-matrix.html")]
    out: PathBuf,
    #[command(flatten)]
    suite: SuiteArgs,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// The R4 package directory (`scripts/fetch-r4-package.sh` prints it).
    #[arg(long, env = "FHIR_R4_PACKAGE")]
    package: PathBuf,
    /// Where the corpus goes.
    #[arg(long, default_value = "conformance/testscripts/generated")]
    out: PathBuf,
    /// Compare with the files in `--out` instead of writing; exit 1 when they differ.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The FHIR base URL of the server under test.
    #[arg(long, env = "FHIRGATE_CONFORMANCE_BASE_URL")]
    base_url: String,
    /// A bearer token sent with every request.
    #[arg(long, conflicts_with = "token_command")]
    bearer: Option<String>,
    /// A shell command printing the bearer token, run once.
    #[arg(long)]
    token_command: Option<String>,
    /// Where to write TestReports, `junit.xml` and `report.html`.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// Capability-driven: run only the scripts whose requirements the server's
    /// CapabilityStatement claims (the others are left out, not skipped), and report each claim
    /// the run exercised as honoured or not; a claim not honoured fails the run.
    #[arg(long, conflicts_with = "no_capability_check")]
    from_capabilities: bool,
    #[command(flatten)]
    suite: SuiteArgs,
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, found `{text}`"))
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Compare(args) => compare(args),
        Command::Generate(args) => generate(&args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fhirgate-conformance: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs and reports; `Ok(true)` when every script passed.
fn run(args: RunArgs) -> fhirgate_conformance::Result<bool> {
    let mut options = args.suite.options(&args.base_url);
    options.from_capabilities = args.from_capabilities;
    options.bearer = match (&args.bearer, &args.token_command) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(command)) => Some(token_from_command(command)?),
        (None, None) => None,
    };
    let stderr = std::io::stderr();
    let terminal = stderr.is_terminal();
    let mut display = fhirgate_conformance::progress::Display::new(stderr.lock(), terminal);
    let runner = Runner::new(options);
    let results = runner.run_paths_with(&args.suite.paths, &mut |event| display.show(event))?;
    drop(display);
    if results.is_empty() {
        return Err(fhirgate_conformance::Error::Script("no TestScript found under the given paths".into()));
    }
    let written = args.report_dir.as_deref().map(|dir| report::write_all(dir, &results)).transpose()?;
    // A closed stdout (`| head`) must not stop the run from ending with its status.
    let mut out = std::io::stdout().lock();
    for result in &results {
        let _ = writeln!(out, "{}", report::summary::line(result));
    }
    if let (Some(dir), Some(written)) = (&args.report_dir, written) {
        let _ = writeln!(out, "reports in {} ({} files)", dir.display(), written.len());
    }
    let _ = writeln!(out, "{}", report::summary::scripts(&results));
    let mut honoured = true;
    if args.from_capabilities {
        let claims = runner.honour(&results).map_err(fhirgate_conformance::Error::Http)?;
        let broken: Vec<_> = claims.iter().filter(|c| !c.honoured()).collect();
        for claim in &broken {
            let _ = writeln!(out, "NOT HONOURED  {}  — {}", claim.claim, claim.failed.join("; "));
        }
        let _ = writeln!(
            out,
            "claims exercised: {}, honoured {}, not honoured {}",
            claims.len(),
            claims.len() - broken.len(),
            broken.len()
        );
        honoured = broken.is_empty();
    }
    // The last line, per assertion, as CI logs are read.
    let _ = writeln!(out, "{}", report::summary::total(&results));
    Ok(honoured && results.iter().all(|r| r.passed()))
}

/// Writes or checks the generated corpus; `Ok(true)` when it was written or is current.
fn generate(args: &GenerateArgs) -> fhirgate_conformance::Result<bool> {
    use fhirgate_conformance::generate;
    let files = generate::files(&args.package)?;
    if !args.check {
        let written = generate::write(&args.out, &files)?;
        println!("{written} files written to {}", args.out.display());
        return Ok(true);
    }
    let differences = generate::differences(&args.out, &files)?;
    for (path, difference) in &differences {
        println!("{difference:?}: {}", args.out.join(path).display());
    }
    if differences.is_empty() {
        println!("{} files in {} are current", files.len(), args.out.display());
    } else {
        println!(
            "the generated corpus is not current: run `fhirgate-conformance generate --package $FHIR_R4_PACKAGE --out {}`",
            args.out.display()
        );
    }
    Ok(differences.is_empty())
}

/// Runs the scripts against every server and writes the matrix; `Ok(true)` when every script
/// passed on every server.
fn compare(args: CompareArgs) -> fhirgate_conformance::Result<bool> {
    use fhirgate_conformance::compare::{Server, compare};
    let usage = |m: &str| fhirgate_conformance::Error::Script(m.to_owned());
    if args.base_urls.len() < 2 {
        return Err(usage("compare needs two or more `--base-url`"));
    }
    let bearer = |i: usize| match args.bearers.len() {
        0 => Ok(None),
        1 => Ok(args.bearers.first().cloned()),
        n if n == args.base_urls.len() => Ok(args.bearers.get(i).cloned()),
        _ => Err(usage("give one `--bearer` for every server, or one per `--base-url`")),
    };
    let servers = args
        .base_urls
        .iter()
        .enumerate()
        .map(|(i, base_url)| Ok(Server { base_url: base_url.clone(), bearer: bearer(i)? }))
        .collect::<fhirgate_conformance::Result<Vec<_>>>()?;
    let options = args.suite.options(&args.base_urls[0]);
    let stderr = std::io::stderr();
    let terminal = stderr.is_terminal();
    let mut display = fhirgate_conformance::progress::Display::new(stderr.lock(), terminal);
    let columns = compare(&options, &servers, &args.suite.paths, &mut |_, event| display.show(event))?;
    drop(display);
    if columns.iter().all(|c| c.results.is_empty()) {
        return Err(usage("no TestScript found under the given paths"));
    }
    let page = report::matrix::html(&columns);
    std::fs::write(&args.out, page).map_err(|e| fhirgate_conformance::Error::io(&args.out, e))?;
    let mut out = std::io::stdout().lock();
    for column in &columns {
        let _ = writeln!(
            out,
            "{}: {}; {}",
            column.server,
            report::summary::scripts(&column.results),
            report::summary::total(&column.results)
        );
    }
    let _ = writeln!(out, "matrix in {}", args.out.display());
    Ok(columns.iter().all(|c| c.results.iter().all(|r| r.passed())))
}
