//! Instants and versions as PostgreSQL `bigint`s: `last_updated` is milliseconds since the epoch,
//! versions are positive `i64`.

use time::OffsetDateTime;

use crate::Error;

const NANOS_PER_MILLI: i128 = 1_000_000;

/// The instant in whole milliseconds, rounded down (the engine passes millisecond instants).
pub(crate) fn millis_floor(instant: OffsetDateTime) -> Result<i64, Error> {
    to_i64(instant.unix_timestamp_nanos().div_euclid(NANOS_PER_MILLI), instant)
}

/// The instant in whole milliseconds, rounded up: `last_updated >= since` stays exact for a
/// `since` with finer precision than the store.
pub(crate) fn millis_ceil(instant: OffsetDateTime) -> Result<i64, Error> {
    let nanos = instant.unix_timestamp_nanos();
    let floor = nanos.div_euclid(NANOS_PER_MILLI);
    let ceil = if nanos.rem_euclid(NANOS_PER_MILLI) == 0 { floor } else { floor + 1 };
    to_i64(ceil, instant)
}

fn to_i64(millis: i128, instant: OffsetDateTime) -> Result<i64, Error> {
    i64::try_from(millis).map_err(|_| Error::Invalid(format!("instant `{instant}` is out of range")))
}

/// The stored milliseconds as a UTC instant.
pub(crate) fn from_millis(millis: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * NANOS_PER_MILLI)
        .map_err(|_| Error::Corrupt(format!("last_updated `{millis}` is out of range")))
}

/// A version number as stored.
pub(crate) fn version_to_sql(version: u64) -> Result<i64, Error> {
    i64::try_from(version).map_err(|_| Error::Invalid(format!("version `{version}` is out of range")))
}

/// A stored version number.
pub(crate) fn version_from_sql(version: i64) -> Result<u64, Error> {
    u64::try_from(version).map_err(|_| Error::Corrupt(format!("version `{version}` is negative")))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn milliseconds_round_trip_on_both_sides_of_the_epoch() {
        for instant in [datetime!(2024-02-29 12:34:56.789 UTC), datetime!(1969-12-31 23:59:59.999 UTC)] {
            let millis = millis_floor(instant).ok();
            assert_eq!(millis.and_then(|m| from_millis(m).ok()), Some(instant));
        }
    }

    #[test]
    fn sub_millisecond_instants_round_down_or_up() {
        let instant = datetime!(1969-12-31 23:59:59.9995 UTC);
        assert_eq!(millis_floor(instant).ok(), Some(-1));
        assert_eq!(millis_ceil(instant).ok(), Some(0));
        assert_eq!(millis_ceil(datetime!(1970-01-01 00:00:00.002 UTC)).ok(), Some(2));
    }
}
