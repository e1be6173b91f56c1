//! The worker of bulk jobs (`$export` and `$import`, [`fhirgate_engine::bulk::worker`]), one per local target, started when its engine opens (in
//! the serving runtime, whose pools the engine's store belongs to).
//!
//! It takes over running jobs that no worker holds (new ones as soon as they are kicked off,
//! abandoned ones once their lease ran out: after a restart, or another replica gone), at most
//! `export.max_running` at a time, and runs each under the decisions of the client that kicked
//! it off: the Cedar access rebuilt from the job's persona (its principal and request
//! circumstances, [`Persona`]) on the policies in force when it takes the job, so every exported resource is decided
//! as that client's search would be (every imported one as that client's write), audited under
//! request id `export-<job>` or `import-<job>`. It removes expired jobs and their files on the way.

use std::sync::Arc;
use std::time::Duration;

use fhirgate_engine::Engine;
use fhirgate_engine::access::Unrestricted;
use fhirgate_engine::bulk::worker::{self, Claimed, Kind};
use tokio::sync::Semaphore;

use crate::policy::Policies;
use crate::policy::access::Persona;
use crate::policy::audit::AuditInfo;

/// How often the worker looks for jobs when none is kicked off here (another replica's, an
/// abandoned one, expiries).
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Starts the worker of `engine` (`policies`: `None` when authorization is off).
pub fn start(engine: Arc<Engine>, policies: Option<Arc<Policies>>, target: String, max_running: usize) {
    tokio::spawn(async move {
        if !worker::available(&engine).await {
            tracing::info!(target = %target, "bulk jobs off for this target (no export output, or its store keeps no jobs)");
            return;
        }
        let holder = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let slots = Arc::new(Semaphore::new(max_running.max(1)));
        loop {
            if let Err(e) = worker::sweep(&engine).await {
                tracing::warn!(target = %target, error = %e, "export sweep failed");
            }
            while let Ok(slot) = slots.clone().try_acquire_owned() {
                match worker::claim(&engine, &holder).await {
                    Ok(Some(claimed)) => {
                        let (engine, policies, holder) = (engine.clone(), policies.clone(), holder.clone());
                        tokio::spawn(async move {
                            run(&engine, policies.as_deref(), &claimed, &holder).await;
                            drop(slot);
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(target = %target, error = %e, "export jobs could not be read");
                        break;
                    }
                }
            }
            engine.export_wait(LOOK_EVERY).await;
        }
    });
}

/// Runs one job as its client.
async fn run(engine: &Engine, policies: Option<&Policies>, claimed: &Claimed, holder: &str) {
    let result = match policies {
        None => worker::run(engine, claimed, holder, &Unrestricted).await,
        Some(policies) => match serde_json::from_str::<Persona>(&claimed.persona) {
            Ok(persona) => {
                let kind = if claimed.kind == Kind::Export { "export" } else { "import" };
                let audit = AuditInfo { request_id: format!("{kind}-{}", claimed.job), ..AuditInfo::default() };
                let access = policies.access(&persona.principal, persona.context, &audit);
                worker::run(engine, claimed, holder, &access).await
            }
            // Fail closed: a job whose client cannot be rebuilt exports nothing.
            Err(e) => {
                tracing::error!(job = %claimed.job, error = %e, "bulk job's client cannot be rebuilt");
                worker::fail(engine, claimed, holder, "the job's client could not be restored").await
            }
        },
    };
    if let Err(e) = result {
        tracing::warn!(job = %claimed.job, error = %e, "bulk job stopped");
    }
}
