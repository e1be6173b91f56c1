//! How stores encode instants and versions in integer columns: `last_updated` as milliseconds
//! since the epoch (sortable, exact at the engine's millisecond precision), versions as `i64`.
//! Each function gives `None` when the value does not fit; stores turn that into their errors.

use time::OffsetDateTime;

const NANOS_PER_MILLI: i128 = 1_000_000;

/// The instant in whole milliseconds, rounded down (the engine passes millisecond instants).
pub fn millis_floor(instant: OffsetDateTime) -> Option<i64> {
    i64::try_from(instant.unix_timestamp_nanos().div_euclid(NANOS_PER_MILLI)).ok()
}

/// The instant in whole milliseconds, rounded up: `last_updated >= since` stays exact for a
/// `since` with finer precision than the store.
pub fn millis_ceil(instant: OffsetDateTime) -> Option<i64> {
    let nanos = instant.unix_timestamp_nanos();
    let floor = nanos.div_euclid(NANOS_PER_MILLI);
    i64::try_from(if nanos.rem_euclid(NANOS_PER_MILLI) == 0 { floor } else { floor + 1 }).ok()
}

/// Stored milliseconds as a UTC instant.
pub fn from_millis(millis: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * NANOS_PER_MILLI).ok()
}

/// A version number as stored.
pub fn version_to_i64(version: u64) -> Option<i64> {
    i64::try_from(version).ok()
}

/// A stored version number.
pub fn version_from_i64(version: i64) -> Option<u64> {
    u64::try_from(version).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn milliseconds_round_trip_on_both_sides_of_the_epoch() {
        for instant in [datetime!(2024-02-29 12:34:56.789 UTC), datetime!(1969-12-31 23:59:59.999 UTC)] {
            assert_eq!(millis_floor(instant).and_then(from_millis), Some(instant));
        }
    }

    #[test]
    fn sub_millisecond_instants_round_down_or_up() {
        let instant = datetime!(1969-12-31 23:59:59.9995 UTC);
        assert_eq!(millis_floor(instant), Some(-1));
        assert_eq!(millis_ceil(instant), Some(0));
        assert_eq!(millis_ceil(datetime!(1970-01-01 00:00:00.002 UTC)), Some(2));
        assert_eq!(version_from_i64(-1), None);
        assert_eq!(version_to_i64(u64::MAX), None);
    }
}
