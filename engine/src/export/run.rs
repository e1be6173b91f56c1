//! The worker's side of an export: take a job over ([`claim`]), run it a chunk at a time with
//! the client's decisions ([`run`]), remove what expired ([`sweep`]).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::files::Committed;
use super::job::{Job, Output, State, Stored};
use crate::access::{Access, Interaction, Phase, Target};
use crate::bulk::worker::{Claimed, Lease};
use crate::definitions::Definitions;
use crate::error::{Error, Result};
use crate::interaction::{Engine, Gate};
use crate::search::index::extract_only;
use crate::search::query::{self, Compartment, Limits, SearchQuery};
use crate::storage::{IndexValue, ResourceVersion};

/// Matches one search finds for a chunk (one file append and one checkpoint), at most.
const CHUNK: u32 = 5_000;
/// The same when every resource is decided on its data (a patient's token, a policy on tags):
/// the decisions dominate, and a checkpoint comes sooner.
const DECIDED_CHUNK: u32 = 1_000;
/// Versions read per round trip (and decided together), at most.
const READ: usize = 500;
/// Stored JSON bytes one read aims at: the next read takes as many versions as the previous
/// ones' average size fits in this (Synthea's Provenance resources are ~120 KB each: 500 of
/// them would hold 60 MB of text, twice over while they are copied into the chunk).
const READ_BYTES: usize = 1024 * 1024;
/// Versions of a chunk's first read, before any size is known: few, since a chunk of large
/// resources ends after one read (64 of Synthea's Provenance resources, up to 865 KB each, were
/// ~10 MB read at once at the start of every chunk, and the export's peak).
const FIRST_READ: usize = 8;
/// NDJSON bytes after which a chunk ends early (at the end of a read): what it holds in memory
/// is bounded by this plus one read, whatever the resources' size.
const CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Failed attempts in a row after which a job fails.
const MAX_ATTEMPTS: u32 = 3;

async fn end(engine: &Engine, stored: &mut Stored, state: State) -> Result<bool> {
    stored.job.state = state;
    stored.finish(engine).await
}

/// Runs a claimed job to its end with `access`, the decisions of the client that asked,
/// checkpointing after every chunk. Stops early, without error, when the job is cancelled or
/// taken over by another worker (its record changed under it).
pub(crate) async fn run(engine: &Engine, claimed: &Claimed, holder: &str, access: &dyn Access) -> Result<()> {
    let Some(mut stored) = Stored::load(engine.store.as_ref(), &claimed.job).await? else { return Ok(()) };
    let lease = engine.config.export.as_ref().map_or(Duration::from_secs(30), |s| s.lease);
    let quiet = (lease / 4).min(Duration::from_secs(1));
    let mut saved = Instant::now();
    loop {
        let ours = stored.job.lease.as_ref().is_some_and(|l| l.holder == holder);
        if stored.job.state != State::Running || !ours {
            return Ok(());
        }
        if stored.job.cursor.part >= stored.job.parts() {
            end(engine, &mut stored, State::Done).await?;
            tracing::info!(job = %stored.id, resources = stored.job.exported(), "export done");
            return Ok(());
        }
        match step(engine, &mut stored.job, &stored.id, access).await {
            Ok(wrote) => {
                stored.job.attempts = 0;
                // A part with nothing to export (most types of a system export) moves the
                // cursor only: redone after a crash at no cost, it is saved with the next
                // chunk that writes, or when the lease needs renewing.
                if !wrote && saved.elapsed() < quiet {
                    continue;
                }
            }
            Err(e) => {
                tracing::warn!(job = %stored.id, error = %e, "export chunk failed");
                stored.job.attempts += 1;
                if stored.job.attempts >= MAX_ATTEMPTS {
                    end(engine, &mut stored, State::Failed(e.to_string())).await?;
                    return Err(e);
                }
            }
        }
        stored.job.lease = Some(Lease::new(engine, holder));
        saved = Instant::now();
        if !stored.save(engine.store.as_ref()).await? {
            tracing::info!(job = %stored.id, "export job cancelled or taken over; stopping");
            return gone(engine, &stored.id).await;
        }
    }
}

/// After a lost checkpoint: when the job was cancelled (its record is gone), removes what this
/// run wrote after the cancellation removed the files (a blob's late block would revive it).
pub(crate) async fn gone(engine: &Engine, id: &str) -> Result<()> {
    if engine.store.job(id).await?.is_none()
        && let Some(settings) = &engine.config.export
    {
        settings.output.remove(id).await?;
    }
    Ok(())
}

/// What one chunk found.
struct Chunk {
    lines: Vec<u8>,
    count: u64,
    /// The last key read, when more matches follow.
    next: Option<(String, String)>,
}

/// Exports the next chunk of the job's current part and moves its cursor (the caller
/// checkpoints it); whether it wrote anything (resources or an error line).
async fn step(engine: &Engine, job: &mut Job, id: &str, access: &dyn Access) -> Result<bool> {
    let settings = engine.config.export.as_ref().ok_or_else(|| Error::Internal("export settings gone".into()))?;
    let Some((resource_type, patient)) = job.part(job.cursor.part).map(|(t, p)| (t.to_owned(), p.map(str::to_owned)))
    else {
        return Ok(false);
    };
    let nth_patient = job.cursor.part % job.patients.len().max(1);
    let first_of_type = nth_patient == 0;
    let earlier = job.patients.get(..nth_patient).unwrap_or_default();
    let chunk = match chunk(engine, job, &resource_type, (patient.as_deref(), earlier), access).await {
        Ok(chunk) => chunk,
        Err(refusal @ (Error::Forbidden(_) | Error::BadRequest(_))) => {
            let asked = job.named_types || job.filters.iter().any(|(t, _)| *t == resource_type);
            if asked && first_of_type && job.cursor.after.is_none() {
                let outcome = refusal.context(&format!("`{resource_type}` is not exported")).outcome_json();
                let mut line = serde_json::to_vec(&outcome).map_err(|e| Error::Internal(e.to_string()))?;
                line.push(b'\n');
                write(settings, id, &mut job.errors, "OperationOutcome", "errors", line, 1).await?;
                job.cursor.part += 1;
                job.cursor.after = None;
                return Ok(true);
            }
            job.cursor.part += 1;
            job.cursor.after = None;
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    if chunk.count > 0 {
        write(settings, id, &mut job.outputs, &resource_type, &resource_type, chunk.lines, chunk.count).await?;
    }
    match chunk.next {
        Some(after) => job.cursor.after = Some(after),
        None => {
            job.cursor.part += 1;
            job.cursor.after = None;
        }
    }
    Ok(chunk.count > 0)
}

/// Appends `lines` to the open file of `resource_type` in `list` (or a new one when there is
/// none or it is full).
async fn write(
    settings: &super::ExportSettings,
    id: &str,
    list: &mut Vec<Output>,
    resource_type: &str,
    stem: &str,
    lines: Vec<u8>,
    count: u64,
) -> Result<()> {
    let open = list.iter().rposition(|o| o.resource_type == resource_type && o.bytes < settings.file_max_bytes);
    let index = match open {
        Some(index) => index,
        None => {
            let n = list.iter().filter(|o| o.resource_type == resource_type).count() + 1;
            list.push(Output {
                resource_type: resource_type.to_owned(),
                file: format!("{stem}-{n}.ndjson"),
                count: 0,
                bytes: 0,
                chunks: 0,
            });
            list.len() - 1
        }
    };
    let output = &mut list[index];
    let at = Committed { bytes: output.bytes, chunks: output.chunks };
    let next = settings.output.append(id, &output.file, at, lines).await?;
    (output.bytes, output.chunks) = (next.bytes, next.chunks);
    output.count += count;
    Ok(())
}

/// The next chunk of `resource_type` (in `patient`'s compartment, leaving out what the
/// compartments of the `earlier` patients held: exported with them already), decided as the
/// client's search of the type and as its export: a type it may not search or export is
/// refused (`Forbidden`), every match it may not see on its data is left out.
async fn chunk(
    engine: &Engine,
    job: &Job,
    resource_type: &str,
    (patient, earlier): (Option<&str>, &[String]),
    access: &dyn Access,
) -> Result<Chunk> {
    let search = Gate::open(access, Target::new(Interaction::SearchType, resource_type, ""))?;
    let export = Gate::open(
        access,
        Target { operation: "export".into(), ..Target::new(Interaction::Operation, resource_type, "") },
    )?;
    let query = query(engine, job, resource_type, patient)?;
    search.check_traversals(&query)?;
    let decided = !(search.covers_data() && export.covers_data());
    let most = if decided { DECIDED_CHUNK } else { CHUNK };
    let mut matches = engine.store.search(&query, most + 1).await?;
    let more = matches.len() > most as usize;
    matches.truncate(most as usize);
    let earlier: HashSet<&str> = earlier.iter().map(String::as_str).collect();
    let mut out = Chunk { lines: Vec::new(), count: 0, next: None };
    let (mut at, mut read_bytes, mut read_count) = (0, 0usize, 0usize);
    while at < matches.len() {
        let take = read_bytes.checked_div(read_count).map_or(FIRST_READ, |average| READ_BYTES / average.max(1));
        let slice = &matches[at..(at + take.clamp(1, READ)).min(matches.len())];
        at += slice.len();
        let versions = engine.store.vread_many(slice).await?;
        read_count += versions.len();
        read_bytes += versions.iter().map(|v| v.json.as_ref().map_or(0, String::len)).sum::<usize>();
        let parse = decided || !earlier.is_empty();
        let parsed: Vec<(ResourceVersion, Option<Value>)> = versions
            .into_iter()
            .map(|v| {
                let value = if parse { v.json.as_deref().and_then(|j| serde_json::from_str(j).ok()) } else { None };
                (v, value)
            })
            .filter(|(_, value)| !value.as_ref().is_some_and(|r| in_compartments(resource_type, r, &earlier)))
            .collect();
        if decided {
            let resources: Vec<&Value> = parsed.iter().filter_map(|(_, r)| r.as_ref()).collect();
            search.load_consents(engine, &resources).await?;
            export.load_consents(engine, &resources).await?;
        }
        for (version, resource) in &parsed {
            let Some(json) = version.json.as_deref() else { continue };
            if decided {
                let Some(resource) = resource else { continue };
                if !(search.allows(resource, Phase::Outgoing) && export.allows(resource, Phase::Outgoing)) {
                    continue;
                }
            }
            if json.contains('\n') {
                let value: Value = serde_json::from_str(json).map_err(|e| Error::Internal(e.to_string()))?;
                out.lines.extend(serde_json::to_vec(&value).map_err(|e| Error::Internal(e.to_string()))?);
            } else {
                out.lines.extend_from_slice(json.as_bytes());
            }
            out.lines.push(b'\n');
            out.count += 1;
        }
        let last = slice.last().map(|m| (m.resource_type.clone(), m.id.clone()));
        if at == matches.len() {
            out.next = last.filter(|_| more);
        } else if out.lines.len() >= CHUNK_BYTES {
            out.next = last;
            break;
        }
    }
    Ok(out)
}

/// Whether `resource` is in the compartment of one of `patients`: it is one of them, or refers
/// to one through a parameter of the Patient compartment.
fn in_compartments(resource_type: &str, resource: &Value, patients: &HashSet<&str>) -> bool {
    if patients.is_empty() {
        return false;
    }
    if resource_type == "Patient" && resource.get("id").and_then(Value::as_str).is_some_and(|id| patients.contains(id))
    {
        return true;
    }
    let defs = Definitions::r4();
    let Some(compartment) = defs.compartment("Patient") else { return false };
    let codes: Vec<&str> = compartment.params(resource_type).iter().map(String::as_str).collect();
    extract_only(defs, resource, &codes).iter().any(|entry| match &entry.value {
        IndexValue::Reference { resource_type: Some(t), id: Some(id), .. } => {
            t == "Patient" && patients.contains(id.as_str())
        }
        _ => false,
    })
}

/// The search of one part: the job's criteria (`_since`, the type's `_typeFilter`), the patient's
/// compartment, after the cursor.
fn query(engine: &Engine, job: &Job, resource_type: &str, patient: Option<&str>) -> Result<SearchQuery> {
    let defs = Definitions::r4();
    let mut params = job.common.clone();
    if let Some((_, filter)) = job.filters.iter().find(|(t, _)| t == resource_type) {
        params.extend(filter.iter().cloned());
    }
    let limits = Limits::from(&engine.config);
    let mut query = query::parse_within(defs, Some(resource_type), &params, true, &limits)?.query;
    if let Some(patient) = patient {
        let compartment =
            defs.compartment("Patient").ok_or_else(|| Error::Internal("no Patient compartment definition".into()))?;
        let params = compartment.params(resource_type).to_vec();
        query.compartment = Some(Compartment {
            resource_type: "Patient".into(),
            id: patient.to_owned(),
            params: vec![(resource_type.to_owned(), params)],
        });
    }
    query.after = job.cursor.after.clone();
    Ok(query)
}
