//! The patient picker of a standalone launch by a user who is no patient (a practitioner): after
//! the upstream sign-in, the browser gets fhirgate's own page (`GET /auth/pick`, its session
//! one-time, 10 minutes) where the user names the patient; fhirgate accepts the choice
//! only when the user may read that Patient (`GET Patient/<id>` answered 200 through the one
//! enforcement point, under the user's own upstream token: its roles and scopes). The app
//! never sees the session, so it cannot choose for the user; the page cannot be framed and
//! sends no referrer.
//!
//! The session is the waiting launch and the user's upstream access token, sealed
//! ([`super::sealed`], kind `Pick`): the replica that takes the choice verifies that token
//! again (signature, issuer, audience, expiry) for the user's identity, and claims the
//! session ([`super::claims`]) so it is used once on any replica.

use std::sync::Arc;

use fhirgate_engine::interaction::{Request, Response, parse_query};
use fhirgate_engine::storage::Store;
use serde::{Deserialize, Serialize};

use super::sealed::Kind;
use super::{Launch, Pending, SmartProxy, page, redirect};
use crate::auth::{Authenticator, Identity};

/// What a picker session carries.
#[derive(Serialize, Deserialize)]
struct Session {
    #[serde(rename = "p")]
    pending: Pending,
    /// The user's upstream access token.
    #[serde(rename = "t")]
    token: String,
}

/// A launch waiting for its patient.
pub struct Picking {
    pending: Pending,
    identity: Arc<Identity>,
}

impl Picking {
    /// The signed-in user, under whose rights the chosen patient must be readable.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`).
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

impl SmartProxy {
    /// Sends the browser to the picker page.
    pub(super) fn start_pick(&self, pending: Pending, token: String) -> Response {
        let session = Session { pending, token };
        let Some(sealed) = self.sealer.seal(Kind::Pick, &session) else {
            tracing::error!("SMART proxy: cannot seal a picker session");
            return Self::back(&session.pending, &[("error", "server_error")]);
        };
        redirect(&format!("{}/auth/pick?session={sealed}", self.base))
    }

    /// `GET /auth/pick`: the form.
    pub fn pick_form(&self, request: &Request) -> Response {
        let session = request.param("session").unwrap_or_default();
        // Only a session this server sealed is echoed into the page (base64url: nothing to escape).
        if self.sealer.open::<Session>(Kind::Pick, session).is_none() {
            return page(400, "unknown or expired launch: start again from the app");
        }
        let html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Choose the patient</title></head><body>\
             <form method=\"post\" action=\"{base}/auth/pick\"><input type=\"hidden\" name=\"session\" value=\"{session}\">\
             <label>Patient id <input name=\"patient\" pattern=\"[A-Za-z0-9.\\-]{{1,64}}\" required autofocus></label>\
             <button type=\"submit\">Open</button></form></body></html>",
            base = self.base
        );
        Response::rendered(200, "text/html; charset=utf-8", html.into_bytes())
            .with_header("Cache-Control", "no-store")
            .with_header("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
            .with_header("X-Frame-Options", "DENY")
            .with_header("Referrer-Policy", "no-referrer")
    }

    /// `POST /auth/pick`: the launch waiting and the patient chosen; the session is used up,
    /// on every replica, whatever follows. `Err`: the answer refusing it.
    pub async fn take_pick(
        &self,
        request: &Request,
        auth: &Authenticator,
        store: Option<&Arc<dyn Store>>,
    ) -> Result<(Picking, String), Box<Response>> {
        let form = parse_query(&String::from_utf8_lossy(&request.body));
        let get = |name: &str| form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
        let session = match self.use_once::<Session>(store, Kind::Pick, get("session")).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(Box::new(page(400, "unknown, expired or used launch: start again from the app"))),
            Err(e) => {
                tracing::error!(error = %e, "SMART proxy: a picker session cannot be claimed");
                return Err(Box::new(page(503, "the server cannot take the choice now: start again from the app")));
            }
        };
        let identity = match self.verify_upstream(&session.token, auth).await {
            Ok(identity) => identity,
            Err(why) => {
                tracing::warn!(error = %why, "SMART proxy: the picker's upstream token is no longer accepted");
                return Err(Box::new(Self::back(
                    &session.pending,
                    &[("error", "access_denied"), ("error_description", "the sign-in has expired")],
                )));
            }
        };
        let picking = Picking { pending: session.pending, identity };
        let patient = get("patient").trim().trim_start_matches("Patient/").to_string();
        if !is_id(&patient) {
            return Err(Box::new(Self::back(
                &picking.pending,
                &[("error", "access_denied"), ("error_description", "no valid patient was chosen")],
            )));
        }
        Ok((picking, patient))
    }

    /// Ends the launch with the chosen patient when the user may read it (`readable`), else
    /// refuses it.
    pub fn finish_pick(&self, picking: &Picking, patient: String, readable: bool) -> Response {
        if !readable {
            return Self::back(
                &picking.pending,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the chosen patient cannot be opened by this user"),
                ],
            );
        }
        self.issue(&picking.pending, &picking.identity, &Launch { patient, encounter: String::new() })
    }
}
