//! Where a version's write position comes from, without a sequence every write shares: its
//! bucket, a stable hash of the resource's type and id, whose row in `write_bucket` the writer
//! draws positions from and holds locked until it commits (migrations/0006_distributable.sql).
//! Also the key of a guard's row in `write_guard`.

/// Position buckets; fixed by the schema (`write_bucket` has a row for each, and a `CHECK`).
pub(crate) const BUCKETS: u64 = 16;

/// FNV-1a, 64 bits: stable across processes, versions and platforms (unlike `std`'s hasher).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The bucket of `resource_type/id`: every version of a resource lands in one bucket.
pub(crate) fn bucket(resource_type: &str, id: &str) -> i16 {
    // `/` never appears in a type name, so no two (type, id) pairs hash the same bytes.
    let hash = fnv1a(&[resource_type.as_bytes(), b"/", id.as_bytes()]);
    i16::try_from(hash % BUCKETS).unwrap_or(0)
}

/// The `write_guard` row of a guard's key. Two keys that collide only serialise each other's
/// batches (each batch still checks its own criteria), which is safe.
pub(crate) fn guard_row(key: &str) -> i64 {
    i64::from_ne_bytes(fnv1a(&[key.as_bytes()]).to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_spread() {
        // Pinned: a change of the hash would move resources between buckets of a live store.
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(bucket("Patient", "a"), bucket("Patient", "a"));
        let used: std::collections::BTreeSet<i16> = (0..200).map(|n| bucket("Patient", &format!("p{n}"))).collect();
        assert_eq!(used.len(), usize::try_from(BUCKETS).unwrap_or(0), "200 ids use every bucket");
        assert!(used.iter().all(|b| (0..16).contains(b)));
        assert_ne!(guard_row("Patient?identifier=x"), guard_row("Patient?identifier=y"));
    }
}
