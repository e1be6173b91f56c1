//! The hybrid logical clock that orders history in the partitioned layout: microseconds of the
//! wall clock, raised above every position this process handed out or saw in a document it
//! read. Positions are unique within a process and grow along every chain of writes that read
//! each other (a resource's versions, a transaction after what it read); independent writes of
//! two processes are ordered by their wall clocks, within their skew.

use std::sync::atomic::{AtomicU64, Ordering};

/// A hybrid logical clock.
#[derive(Debug, Default)]
pub(crate) struct Hlc {
    last: AtomicU64,
}

impl Hlc {
    /// A new position, above every earlier one.
    pub(crate) fn now(&self) -> u64 {
        self.reserve(1)
    }

    /// The first of `n` consecutive new positions (a transaction's versions, in write order).
    pub(crate) fn reserve(&self, n: u64) -> u64 {
        let n = n.max(1);
        let wall = wall_micros();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let first = wall.max(last + 1);
            match self.last.compare_exchange_weak(last, first + n - 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return first,
                Err(seen) => last = seen,
            }
        }
    }

    /// Raises the clock to at least `seen` (a position read from a document).
    pub(crate) fn observe(&self, seen: u64) {
        self.last.fetch_max(seen, Ordering::AcqRel);
    }
}

/// The wall clock in Unix microseconds.
pub(crate) fn wall_micros() -> u64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
    u64::try_from(now).unwrap_or(0)
}

/// The wall clock in Unix milliseconds (leases).
pub(crate) fn wall_millis() -> i64 {
    i64::try_from(wall_micros() / 1_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::Hlc;

    #[test]
    fn positions_grow_and_reservations_do_not_overlap() {
        let clock = Hlc::default();
        let a = clock.now();
        let b = clock.reserve(1_000);
        let c = clock.now();
        assert!(a < b && b + 999 < c, "{a} {b} {c}");
        clock.observe(c + 1_000_000_000);
        assert!(clock.now() > c + 1_000_000_000);
    }
}
