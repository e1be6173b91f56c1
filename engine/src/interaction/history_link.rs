//! The state a history page link carries in `_snapshot`, sealed with the paging keys
//! ([`crate::seal`]): where the store's writes stood when the history's first page was read, the
//! page's offset, and the key it starts after ([`HistoryCursor`]). Links of the earlier form,
//! the snapshot sealed alone (format 1) with a plain `_offset`, still open, so links in flight
//! across an upgrade keep working (by offset).

use crate::error::{Error, Result};
use crate::seal::Keys;
use crate::storage::{HistoryCursor, HistoryKey, HistorySnapshot};

/// The format byte of a sealed history snapshot alone (links from before pages went by key).
const SNAPSHOT_FORMAT: u8 = 1;
/// The format byte of a sealed page state: the page's offset, its cursor, the snapshot.
const PAGE_FORMAT: u8 = 2;
/// What a sealed history snapshot is, so no other sealed value opens as one.
const SNAPSHOT_AAD: &[u8] = b"fhirgate history snapshot";
/// Buckets a snapshot may name: far above any store's (PostgreSQL has 16).
const MAX_BUCKETS: usize = 1024;
/// The longest store key a page link carries (a store's keys are far shorter).
const MAX_KEY: usize = 1024;

/// What a page link carries, sealed: the snapshot, the page's offset (`None` in links of the
/// earlier form, which carry it in `_offset`) and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct State {
    pub snapshot: HistorySnapshot,
    pub offset: Option<u64>,
    pub cursor: Option<HistoryCursor>,
}

/// The `_snapshot` value of `state`: offset (8 bytes), cursor kind (0 none, 1 older than,
/// 2 newer than), key length (2 bytes) and key, then the positions (8 bytes each), little-endian.
pub(super) fn seal_state(keys: &Keys, state: &State) -> Result<String> {
    let (kind, key): (u8, &[u8]) = match &state.cursor {
        None => (0, &[]),
        Some(HistoryCursor::OlderThan(key)) => (1, key.0.as_bytes()),
        Some(HistoryCursor::NewerThan(key)) => (2, key.0.as_bytes()),
    };
    let length = u16::try_from(key.len()).ok().filter(|n| usize::from(*n) <= MAX_KEY);
    let length = length.ok_or_else(|| Error::Internal("a history key too long for a page link".into()))?;
    let mut plain = Vec::with_capacity(11 + key.len() + 8 * state.snapshot.0.len());
    plain.extend_from_slice(&state.offset.unwrap_or(0).to_le_bytes());
    plain.push(kind);
    plain.extend_from_slice(&length.to_le_bytes());
    plain.extend_from_slice(key);
    plain.extend(state.snapshot.0.iter().flat_map(|p| p.to_le_bytes()));
    keys.seal(PAGE_FORMAT, SNAPSHOT_AAD, plain)
        .ok_or_else(|| Error::Internal("no randomness to seal a history link with".into()))
}

/// The state a `_snapshot` value carries, of either form; 410 when it was forged, altered, or
/// sealed with a key this server no longer holds (as for a search page link).
pub(super) fn open_state(keys: &Keys, sealed: &str) -> Result<State> {
    let gone = || Error::Gone("this history page link was not issued by this server: read the history again".into());
    if let Some(plain) = keys.open(PAGE_FORMAT, SNAPSHOT_AAD, sealed) {
        return parse_state(&plain).ok_or_else(gone);
    }
    let plain = keys.open(SNAPSHOT_FORMAT, SNAPSHOT_AAD, sealed).ok_or_else(gone)?;
    Ok(State { snapshot: positions(&plain).ok_or_else(gone)?, offset: None, cursor: None })
}

/// The fields [`seal_state`] wrote; `None` for anything else.
fn parse_state(plain: &[u8]) -> Option<State> {
    let (offset, rest) = plain.split_at_checked(8)?;
    let (&kind, rest) = rest.split_first()?;
    let (length, rest) = rest.split_at_checked(2)?;
    let length = usize::from(u16::from_le_bytes(length.try_into().ok()?));
    if length > MAX_KEY {
        return None;
    }
    let (key, rest) = rest.split_at_checked(length)?;
    let key = HistoryKey(String::from_utf8(key.to_vec()).ok()?);
    let cursor = match kind {
        0 if key.0.is_empty() => None,
        1 => Some(HistoryCursor::OlderThan(key)),
        2 => Some(HistoryCursor::NewerThan(key)),
        _ => return None,
    };
    Some(State { snapshot: positions(rest)?, offset: Some(u64::from_le_bytes(offset.try_into().ok()?)), cursor })
}

/// Write positions, 8 bytes each, little-endian, at most [`MAX_BUCKETS`].
fn positions(plain: &[u8]) -> Option<HistorySnapshot> {
    if plain.len() % 8 != 0 || plain.len() / 8 > MAX_BUCKETS {
        return None;
    }
    Some(HistorySnapshot(
        plain.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0xff; 8]))).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(cursor: Option<HistoryCursor>) -> State {
        State { snapshot: HistorySnapshot(vec![7, 0, 12]), offset: Some(40), cursor }
    }

    #[test]
    fn every_cursor_round_trips_and_no_other_key_opens_it() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let keys = Keys::random();
        let key = || HistoryKey("1700000000000.3.41".into());
        for cursor in [None, Some(HistoryCursor::OlderThan(key())), Some(HistoryCursor::NewerThan(key()))] {
            let sealed = seal_state(&keys, &state(cursor.clone()))?;
            assert_eq!(open_state(&keys, &sealed)?, state(cursor));
            assert!(matches!(open_state(&Keys::random(), &sealed), Err(Error::Gone(_))), "another key: 410");
        }
        Ok(())
    }

    #[test]
    fn a_link_of_the_earlier_form_still_opens_without_offset_or_cursor()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let keys = Keys::random();
        let plain = [5u64, 9].iter().flat_map(|p| p.to_le_bytes()).collect();
        let sealed = keys.seal(SNAPSHOT_FORMAT, SNAPSHOT_AAD, plain).ok_or("no randomness")?;
        let opened = open_state(&keys, &sealed)?;
        assert_eq!(opened, State { snapshot: HistorySnapshot(vec![5, 9]), offset: None, cursor: None });
        Ok(())
    }

    #[test]
    fn malformed_states_are_refused() {
        let good = {
            let mut plain = 3u64.to_le_bytes().to_vec();
            plain.push(1);
            plain.extend_from_slice(&2u16.to_le_bytes());
            plain.extend_from_slice(b"42");
            plain.extend_from_slice(&8u64.to_le_bytes());
            plain
        };
        assert!(parse_state(&good).is_some());
        for cut in 0..good.len() {
            // Every truncation but the one that drops a whole position is refused.
            if cut != good.len() - 8 {
                assert_eq!(parse_state(&good[..cut]), None, "cut at {cut}");
            }
        }
        let mut kind = good.clone();
        kind[8] = 3;
        assert_eq!(parse_state(&kind), None, "unknown cursor kind");
        let mut empty_with_key = good.clone();
        empty_with_key[8] = 0;
        assert_eq!(parse_state(&empty_with_key), None, "no cursor but a key");
        let mut long = 0u64.to_le_bytes().to_vec();
        long.push(1);
        long.extend_from_slice(&u16::MAX.to_le_bytes());
        long.extend(std::iter::repeat_n(b'9', usize::from(u16::MAX)));
        assert_eq!(parse_state(&long), None, "a key longer than any store writes");
        let mut not_text = good;
        not_text[11] = 0xff;
        assert_eq!(parse_state(&not_text), None, "a key that is not UTF-8");
        let keys = Keys::random();
        let too_long =
            State { cursor: Some(HistoryCursor::OlderThan(HistoryKey("x".repeat(MAX_KEY + 1)))), ..state(None) };
        assert!(seal_state(&keys, &too_long).is_err(), "sealing a key too long is an error, not a panic");
    }
}
