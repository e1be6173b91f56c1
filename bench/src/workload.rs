//! What each client does per iteration: reads or searches from a list of paths, creates,
//! updates, or the create–read–update–delete cycle. Every request is recorded under its kind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;

use crate::http::{Call, Connection, Reply};
use crate::payload;
use crate::rng::Rng;
use crate::stats::Recorder;

/// One iteration's recipe.
#[derive(Debug, Clone)]
pub enum Workload {
    /// A GET of one path picked at random from the list.
    Get { kind: &'static str, paths: Arc<Vec<String>> },
    /// POST of a new ~2 KB Patient.
    Create,
    /// POST of the same Patient declaring a profile the server knows (scenario 10).
    CreateProfiled,
    /// PUT of a changed version of a Patient this client created (the first iteration creates
    /// it, counted as `create`).
    Update,
    /// Create, read, update and delete one ~2 KB Patient: four requests per iteration.
    Crud,
}

/// What one client keeps between iterations.
pub struct ClientState {
    pub conn: Connection,
    pub rng: Rng,
    pub recorder: Recorder,
    /// This client's id, mixed into generated content so clients never collide.
    pub client: u64,
    counter: u64,
    own: Option<String>,
}

impl ClientState {
    pub fn new(conn: Connection, client: u64, seed: u64) -> Self {
        Self {
            conn,
            rng: Rng::new(seed ^ client.wrapping_mul(7919)),
            recorder: Recorder::default(),
            client,
            counter: 0,
            own: None,
        }
    }

    fn next_n(&mut self) -> u64 {
        self.counter += 1;
        self.client * 1_000_000_000 + self.counter
    }

    /// Sends one call timed from `origin` and records it; `None` when there was no answer.
    async fn timed(&mut self, kind: &'static str, call: &Call, origin: Instant) -> Option<Reply> {
        let result = self.conn.send(call).await;
        let latency = origin.elapsed();
        match result {
            Ok(reply) => {
                self.recorder.kind(kind).record(reply.status, latency);
                Some(reply)
            }
            Err(_) => {
                self.recorder.kind(kind).record_transport_error(latency);
                // Do not spin on a server that is gone.
                tokio::time::sleep(Duration::from_millis(10)).await;
                None
            }
        }
    }

    async fn create(&mut self, origin: Instant) -> Option<String> {
        let n = self.next_n();
        let call = Call::with_body(Method::POST, "Patient", payload::patient(None, n));
        let reply = self.timed("create", &call, origin).await?;
        created_id(&reply)
    }
}

impl Workload {
    /// Runs one iteration; the first request's latency counts from `origin` (the intended start
    /// in open-loop runs, so waiting for a free connection is part of it).
    pub async fn step(&self, st: &mut ClientState, origin: Instant) {
        match self {
            Workload::Get { kind, paths } => {
                let path = &paths[st.rng.below(paths.len())];
                st.timed(kind, &Call::get(path.clone()), origin).await;
            }
            Workload::Create => {
                st.create(origin).await;
            }
            Workload::CreateProfiled => {
                let n = st.next_n();
                let call = Call::with_body(Method::POST, "Patient", payload::profiled_patient(n));
                st.timed("create-profiled", &call, origin).await;
            }
            Workload::Update => {
                let Some(id) = st.own.clone() else {
                    st.own = st.create(origin).await;
                    return;
                };
                let n = st.next_n();
                let call = Call::with_body(Method::PUT, format!("Patient/{id}"), payload::patient(Some(&id), n));
                st.timed("update", &call, origin).await;
            }
            Workload::Crud => {
                let Some(id) = st.create(origin).await else { return };
                let path = format!("Patient/{id}");
                st.timed("read", &Call::get(path.clone()), Instant::now()).await;
                let n = st.next_n();
                let body = payload::patient(Some(&id), n);
                st.timed("update", &Call::with_body(Method::PUT, path.clone(), body), Instant::now()).await;
                let delete = Call { method: Method::DELETE, path, body: None, headers: Vec::new() };
                st.timed("delete", &delete, Instant::now()).await;
            }
        }
    }
}

/// The id of a created resource, from `Location: .../Patient/{id}/_history/1` or the body.
fn created_id(reply: &Reply) -> Option<String> {
    if !(200..300).contains(&reply.status) {
        return None;
    }
    if let Some(location) = &reply.location {
        let parts: Vec<&str> = location.split('/').collect();
        if let Some(i) = parts.iter().rposition(|p| *p == "Patient") {
            if let Some(id) = parts.get(i + 1) {
                return Some((*id).to_string());
            }
        }
    }
    let body: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
    body.get("id")?.as_str().map(str::to_string)
}
