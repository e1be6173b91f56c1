//! Page links of proxied and federated searches: where each target continues
//! ([`fhirgate_engine::federation::Cursor`]), sealed (AES-256-GCM) into an opaque `_getpages`
//! value, so the links survive a restart, work on any replica, cannot be forged, and reveal no
//! target's URL.
//!
//! A state also says where the earlier pages started ([`PageState::back`]), so a page has a
//! `previous` link that is sealed the same way (and bound to the same caller) as `next`; the
//! first page is the search's own URL (`first`).
//!
//! The sealing is the engine's ([`fhirgate_engine::seal`]: AES-256-GCM, a random nonce per
//! seal, the associated data naming this kind of link and its format, so a value of another
//! format, or an engine `_page` value, never opens as this one) with the same keys as the
//! engine's own search page links ([`keys`]: the current paging key and retired ones). The
//! plaintext is the [`PageState`] as a compact JSON array (no field names). States are at most [`MAX_STATE`] bytes of JSON,
//! so a `_getpages` value is at most about 8.2 KB (well within the URL sizes the front end
//! accepts); the page URLs in the cursors are most of it. When the starts of earlier pages
//! would make a state larger, the oldest are left out: paging back then ends at the oldest
//! page still carried (its `first` link still leads to the start).

use std::path::Path;
use std::sync::Arc;

use fhirgate_engine::federation::Cursor;
use fhirgate_engine::seal::{Keys, unix_now as now};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::GatewayError;
use crate::keyfile;

/// The format of sealed values (the first byte, and part of the associated data).
const VERSION: u8 = 2;
/// The associated data of every seal: the format version.
const AAD: &[u8] = b"fhirgate _getpages v2";
/// The length of a paging key: AES-256.
pub const KEY_LEN: usize = fhirgate_engine::seal::KEY_LEN;
/// The most bytes of serialised state a link may carry.
pub const MAX_STATE: usize = 6 * 1024;

/// The paging keys of `config`: `federation.paging_key_file` (created, random, mode 0600, when
/// there is none) seals; it and every `federation.retired_paging_key_files` open. Replicas
/// share these files, so each serves the page links of the others.
pub fn keys(config: &Config) -> Result<Arc<Keys>, GatewayError> {
    let current = read_key(&config.paging_key_file(), true)?;
    let retired = config.federation.retired_paging_key_files.iter().map(|p| read_key(p, false));
    let retired = retired.collect::<Result<Vec<_>, _>>()?;
    let keys = Keys::new(&current, &retired).map_err(|e| GatewayError::Config(format!("paging keys: {e}")))?;
    Ok(Arc::new(keys))
}

/// The key in `path`, created when there is none and `create`; a file that is not a 32-byte
/// key is refused.
fn read_key(path: &Path, create: bool) -> Result<Vec<u8>, GatewayError> {
    let err = |e: String| GatewayError::Config(format!("paging key `{}`: {e}", path.display()));
    let key = if create { keyfile::load_or_create(path, || keyfile::random(KEY_LEN)) } else { std::fs::read(path) };
    let key = key.map_err(|e| err(e.to_string()))?;
    if key.len() != KEY_LEN {
        return Err(err(format!("{} bytes, not a {KEY_LEN}-byte key", key.len())));
    }
    Ok(key)
}

/// What a `_getpages` link carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageState {
    /// The route the search ran on.
    pub route: String,
    /// The client the pages belong to ([`crate::policy::owner`]: a digest of the token's whole
    /// principal; `""` without authentication).
    pub owner: String,
    /// The resource type searched (`""` for a system search).
    pub resource_type: String,
    /// `_count` and `_sort` of the search.
    pub count: usize,
    pub sort: String,
    /// Where each target continues: the start of the page this state leads to.
    pub cursors: Vec<Cursor>,
    /// The first page: the search as a GET, relative to the route's base (`Patient?name=a`).
    pub first: String,
    /// Where the earlier pages started, oldest first: `[]` for the first page (the search's
    /// own URL, [`Self::first`]), else each target's cursor that was not done. The last one is
    /// this page's `previous`. The oldest may have been left out ([`MAX_STATE`]).
    pub back: Vec<Vec<Cursor>>,
    /// The search's `total` as its first page gave it (the sum over every target); `None`
    /// when not every target gave one.
    pub total: Option<u64>,
    /// Unix seconds after which the link is gone.
    pub expires: i64,
}

/// A cursor as sealed: target, page, skip, done.
type WireCursor = (String, Option<String>, usize, bool);

/// [`PageState`] as sealed: a JSON array, without field names.
#[derive(Serialize, Deserialize)]
struct Wire(String, String, String, usize, String, Vec<WireCursor>, String, Vec<Vec<WireCursor>>, Option<u64>, i64);

fn to_wire(cursors: &[Cursor]) -> Vec<WireCursor> {
    cursors.iter().map(|c| (c.target.clone(), c.page.clone(), c.skip, c.done)).collect()
}

fn from_wire(cursors: Vec<WireCursor>) -> Vec<Cursor> {
    cursors.into_iter().map(|(target, page, skip, done)| Cursor { target, page, skip, done }).collect()
}

impl From<&PageState> for Wire {
    fn from(s: &PageState) -> Self {
        Self(
            s.route.clone(),
            s.owner.clone(),
            s.resource_type.clone(),
            s.count,
            s.sort.clone(),
            to_wire(&s.cursors),
            s.first.clone(),
            s.back.iter().map(|b| to_wire(b)).collect(),
            s.total,
            s.expires,
        )
    }
}

impl From<Wire> for PageState {
    fn from(Wire(route, owner, resource_type, count, sort, cursors, first, back, total, expires): Wire) -> Self {
        let cursors = from_wire(cursors);
        let back = back.into_iter().map(from_wire).collect();
        Self { route, owner, resource_type, count, sort, cursors, first, back, total, expires }
    }
}

/// The JSON of `state`, without the oldest starts of [`PageState::back`] that would make it
/// larger than [`MAX_STATE`]; an error when even the state without them is larger.
fn serialised(state: &PageState) -> Result<Vec<u8>, GatewayError> {
    let mut wire = Wire::from(state);
    loop {
        let data = serde_json::to_vec(&wire)
            .map_err(|e| GatewayError::Config(format!("cannot serialise a page state: {e}")))?;
        if data.len() <= MAX_STATE {
            return Ok(data);
        }
        if wire.7.is_empty() {
            return Err(GatewayError::Config(format!(
                "the page state of this search is {} bytes, more than the {MAX_STATE} a link carries",
                data.len()
            )));
        }
        // Bounded: one start fewer each round.
        wire.7.remove(0);
    }
}

/// Seals and opens page states with the gateway's paging keys.
pub struct Sealer {
    /// `None` when the key given was not [`KEY_LEN`] bytes: every seal and open then fails.
    keys: Option<Arc<Keys>>,
}

impl Sealer {
    /// The sealer of a key (32 bytes).
    #[cfg(test)]
    fn new(key: Vec<u8>) -> Self {
        Self { keys: Keys::new(&key, &[]).ok().map(Arc::new) }
    }

    /// The sealer of `keys` ([`keys`]).
    pub fn with_keys(keys: Arc<Keys>) -> Self {
        Self { keys: Some(keys) }
    }

    fn keys(&self) -> Result<&Keys, GatewayError> {
        self.keys.as_deref().ok_or_else(|| GatewayError::Config(format!("the paging key is not {KEY_LEN} bytes")))
    }

    /// The opaque `_getpages` value for `state`. The oldest starts of earlier pages are left
    /// out when the state is larger than [`MAX_STATE`]; a state larger without them is refused.
    pub fn seal(&self, state: &PageState) -> Result<String, GatewayError> {
        let keys = self.keys()?;
        keys.seal(VERSION, AAD, serialised(state)?)
            .ok_or_else(|| GatewayError::Config("cannot seal a page state".into()))
    }

    /// The state a `_getpages` value carries, for `owner`; 410 when forged, expired or another
    /// client's.
    pub fn open(&self, sealed: &str, owner: &str) -> Result<PageState, GatewayError> {
        self.open_at(sealed, owner, now())
    }

    /// [`Self::open`] at the time `now` (Unix seconds).
    fn open_at(&self, sealed: &str, owner: &str, now: i64) -> Result<PageState, GatewayError> {
        let keys = self.keys()?;
        let gone = |why: &str| {
            tracing::debug!(reason = why, "a `_getpages` value was refused");
            GatewayError::PageGone
        };
        let plain = keys.open(VERSION, AAD, sealed).ok_or_else(|| gone("forged, altered or of an unknown format"))?;
        let state: PageState = serde_json::from_slice::<Wire>(&plain).map_err(|_| gone("unreadable state"))?.into();
        if state.expires < now {
            return Err(gone("expired"));
        }
        if state.owner != owner {
            return Err(gone("another client's"));
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn state(owner: &str, expires: i64) -> PageState {
        PageState {
            route: "cardiology".into(),
            owner: owner.into(),
            resource_type: "Observation".into(),
            count: 20,
            sort: "-date,code".into(),
            cursors: vec![
                Cursor {
                    target: "lab".into(),
                    page: Some("https://gw.example/c?_getpages=x&o=20".into()),
                    skip: 3,
                    done: false,
                },
                Cursor { target: "local".into(), page: None, skip: 0, done: true },
            ],
            first: "Observation?code=x&_count=20".into(),
            back: vec![
                Vec::new(),
                vec![Cursor { target: "lab".into(), page: Some("p2".into()), skip: 1, done: false }],
            ],
            total: Some(42),
            expires,
        }
    }

    fn gone(result: Result<PageState, GatewayError>) -> bool {
        matches!(result, Err(GatewayError::PageGone))
    }

    #[test]
    fn a_sealed_state_opens_for_its_owner_and_reveals_nothing() -> Result<(), GatewayError> {
        let sealer = Sealer::new(vec![7; 32]);
        let original = state("alice", now() + 600);
        let sealed = sealer.seal(&original)?;
        assert_eq!(sealer.open(&sealed, "alice")?, original);
        assert!(sealed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {sealed}");
        // Nothing of the state can be read off the sealed bytes (a search for two-letter
        // strings in the base64 text would fail by chance now and then).
        let bytes = URL_SAFE_NO_PAD.decode(&sealed).map_err(|_| GatewayError::PageGone)?;
        let shows = |text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
        assert!(!shows("gw.example") && !shows("cardiology") && !shows("alice"), "opaque");
        assert_ne!(sealer.seal(&original)?, sealed, "a new nonce each time");
        Ok(())
    }

    #[test]
    fn forged_altered_expired_and_other_clients_values_are_gone() -> Result<(), GatewayError> {
        let sealer = Sealer::new(vec![7; 32]);
        let at = now();
        let sealed = sealer.seal(&state("alice", at + 600))?;
        assert!(gone(sealer.open("not*base64!", "alice")), "bad base64");
        assert!(gone(sealer.open("", "alice")), "empty");
        assert!(gone(Sealer::new(vec![8; 32]).open(&sealed, "alice")), "another key");
        assert!(gone(sealer.open(&sealed, "bob")), "another client");
        assert!(gone(sealer.open_at(&sealed, "alice", at + 601)), "expired");
        assert!(sealer.open_at(&sealed, "alice", at + 600).is_ok(), "valid up to its expiry");
        let bytes = URL_SAFE_NO_PAD.decode(&sealed).map_err(|e| GatewayError::Config(e.to_string()))?;
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            assert!(gone(sealer.open(&URL_SAFE_NO_PAD.encode(&tampered), "alice")), "byte {i} altered");
        }
        assert!(gone(sealer.open(&URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]), "alice")), "truncated");
        let response = GatewayError::PageGone.response();
        assert_eq!(response.status, 410);
        Ok(())
    }

    #[test]
    fn oversized_states_and_bad_keys_are_refused_when_sealing() {
        let sealer = Sealer::new(vec![7; 32]);
        let mut big = state("alice", now() + 600);
        big.cursors[0].page = Some("x".repeat(MAX_STATE));
        assert!(matches!(sealer.seal(&big), Err(GatewayError::Config(_))));
        assert!(matches!(Sealer::new(vec![7; 16]).seal(&state("a", 0)), Err(GatewayError::Config(_))));
    }

    #[test]
    fn the_oldest_starts_of_earlier_pages_are_left_out_to_fit() -> Result<(), GatewayError> {
        let sealer = Sealer::new(vec![7; 32]);
        let mut deep = state("alice", now() + 600);
        let start =
            |n: usize| vec![Cursor { target: "lab".into(), page: Some(format!("p{n:0>90}")), skip: 0, done: false }];
        deep.back = std::iter::once(Vec::new()).chain((2..200).map(start)).collect();
        let opened = sealer.open(&sealer.seal(&deep)?, "alice")?;
        assert!(opened.back.len() > 10 && opened.back.len() < deep.back.len(), "{} starts kept", opened.back.len());
        assert_eq!(opened.back.last(), deep.back.last(), "the newest kept: `previous` always works one page back");
        assert_eq!(opened.back.first(), Some(&start(200 - opened.back.len())), "the oldest dropped first");
        assert_eq!((opened.cursors, opened.first), (deep.cursors, deep.first));
        Ok(())
    }

    #[test]
    fn sealed_values_stay_small() -> Result<(), GatewayError> {
        let sealer = Sealer::new(vec![7; 32]);
        let s = state("https://login.example/tenant/v2.0|0123456789abcdef", now() + 600);
        let sealed = sealer.seal(&s)?;
        let json = serde_json::to_vec(&s).map_err(|e| GatewayError::Config(e.to_string()))?;
        assert!(
            sealed.len() < json.len() * 4 / 3 + 40,
            "{} chars for {} bytes of named JSON",
            sealed.len(),
            json.len()
        );
        Ok(())
    }

    #[test]
    fn the_key_file_is_created_once_owner_only_and_must_be_a_key() -> Result<(), GatewayError> {
        let io = |e: std::io::Error| GatewayError::Config(e.to_string());
        let dir = std::env::temp_dir().join(format!("fhirgate-paging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("paging.key");
        let sealed = Sealer::new(read_key(&path, true)?).seal(&state("alice", now() + 600))?;
        assert_eq!(std::fs::read(&path).map_err(io)?.len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).map_err(io)?.permissions().mode() & 0o777, 0o600);
        }
        assert!(Sealer::new(read_key(&path, true)?).open(&sealed, "alice").is_ok(), "the same key after a restart");
        std::fs::write(&path, b"short").map_err(io)?;
        assert!(matches!(read_key(&path, true), Err(GatewayError::Config(_))));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn a_rotated_key_still_opens_the_links_it_sealed_until_it_is_dropped() -> Result<(), GatewayError> {
        let io = |e: std::io::Error| GatewayError::Config(e.to_string());
        let dir = std::env::temp_dir().join(format!("fhirgate-paging-rotation-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(io)?;
        let (old, new) = (dir.join("old.key"), dir.join("new.key"));
        let path = |p: &Path| p.display().to_string();
        let env = |current: &Path, retired: &str| {
            let vars = [
                ("FHIRGATE_FEDERATION_PAGING_KEY_FILE".to_owned(), path(current)),
                ("FHIRGATE_FEDERATION_RETIRED_PAGING_KEY_FILES".to_owned(), retired.to_owned()),
            ];
            Config::load(None, &vars.into_iter().collect(), crate::config::Overrides::default())
        };
        let before = Sealer::with_keys(keys(&env(&old, "")?)?);
        let sealed = before.seal(&state("alice", now() + 600))?;
        std::fs::write(&new, [9u8; KEY_LEN]).map_err(io)?;
        let rotated = Sealer::with_keys(keys(&env(&new, &path(&old))?)?);
        assert!(rotated.open(&sealed, "alice").is_ok(), "the retired key opens what it sealed");
        assert!(before.open(&rotated.seal(&state("alice", now() + 600))?, "alice").is_err(), "sealed with the new key");
        let dropped = Sealer::with_keys(keys(&env(&new, "")?)?);
        assert!(dropped.open(&sealed, "alice").is_err(), "gone once the old key is dropped");
        assert!(keys(&env(&new, &path(&dir.join("missing.key")))?).is_err(), "a retired key must exist");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
