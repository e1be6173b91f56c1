//! Instants and versions as the integers both databases store (`INTEGER` / `bigint`), encoded as
//! the engine's `storage::encoding` says, with this crate's errors for values that do not fit.

use fhirgate_engine::storage::encoding;
use time::OffsetDateTime;

use crate::Error;

fn out_of_range(what: &str, value: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{what} `{value}` is out of range"))
}

pub(crate) fn millis_floor(instant: OffsetDateTime) -> Result<i64, Error> {
    encoding::millis_floor(instant).ok_or_else(|| out_of_range("instant", instant))
}

pub(crate) fn millis_ceil(instant: OffsetDateTime) -> Result<i64, Error> {
    encoding::millis_ceil(instant).ok_or_else(|| out_of_range("instant", instant))
}

pub(crate) fn from_millis(millis: i64) -> Result<OffsetDateTime, Error> {
    encoding::from_millis(millis).ok_or_else(|| Error::Corrupt(format!("last_updated `{millis}` is out of range")))
}

/// A version as stored.
pub fn version_to_sql(version: u64) -> Result<i64, Error> {
    encoding::version_to_i64(version).ok_or_else(|| out_of_range("version", version))
}

/// A stored version (or write position, or count), which cannot be negative.
pub fn version_from_sql(version: i64) -> Result<u64, Error> {
    encoding::version_from_i64(version).ok_or_else(|| Error::Corrupt(format!("version `{version}` is negative")))
}
