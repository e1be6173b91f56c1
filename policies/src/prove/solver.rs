//! The cvc5 process the symbolic compiler talks to: `cedar-policy-symcc` 0.8 writes SMT-LIB 2
//! to `<cvc5> --lang smt --tlimit=<ms>` on stdin and reads each answer from stdout, one command
//! at a time. It needs cvc5 1.3.1: Debian 12 ships 1.0.3; `scripts/install-cvc5.sh` installs
//! PyPI's cvc5 1.3.1 (the library and its Python bindings) with a small executable over them.

use std::path::PathBuf;

use cedar_policy_symcc::solver::LocalSolver;

use crate::error::Error;

/// Where the solver is and how long one check may take.
#[derive(Debug, Clone)]
pub struct Cvc5 {
    /// The executable: given, else `$CVC5`, else `cvc5` on the `PATH`.
    pub path: PathBuf,
    /// Wall-clock limit per check, in milliseconds.
    pub time_limit_ms: u64,
}

impl Cvc5 {
    /// The solver at `path`, or the one `$CVC5` names, or `cvc5` on the `PATH`.
    pub fn find(path: Option<PathBuf>) -> Self {
        let path = path
            .or_else(|| std::env::var_os("CVC5").filter(|p| !p.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("cvc5"));
        Self { path, time_limit_ms: 60_000 }
    }

    /// A new solver process.
    pub(crate) fn spawn(&self) -> Result<LocalSolver, Error> {
        let mut command = tokio::process::Command::new(&self.path);
        command.args(["--lang", "smt"]).arg(format!("--tlimit={}", self.time_limit_ms)).kill_on_drop(true);
        LocalSolver::from_command(&mut command).map_err(|e| {
            Error::Proof(format!(
                "cannot start the cvc5 solver `{}` ({e}): install cvc5 1.3.1 (`scripts/install-cvc5.sh` installs it \
                 from PyPI) and name it with --solver or CVC5",
                self.path.display()
            ))
        })
    }
}
