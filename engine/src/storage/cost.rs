//! What the requests of this process cost their store, in the store's own unit (Cosmos DB: request
//! units; SQLite and PostgreSQL charge nothing): per request, summed through a task-local while
//! the request runs inside [`metered`], and per process ([`total`], for `/metrics`).
//!
//! A store reports each call's cost with [`charge`]; a front end wraps each request in
//! [`metered`]. Neither names the other, so a front end knows no store and a store no front end.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

tokio::task_local! {
    /// What the request the current task serves has cost so far.
    static REQUEST: Cell<f64>;
}

/// What every store of this process has been charged, in thousandths.
static TOTAL_MILLI: AtomicU64 = AtomicU64::new(0);

/// Records what one store call cost: in the total of the request being served (if it runs
/// inside [`metered`]) and in the process's. Amounts that are not finite and positive are
/// ignored.
pub fn charge(amount: f64) {
    if amount.is_finite() && amount > 0.0 {
        let _ = REQUEST.try_with(|total| total.set(total.get() + amount));
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "positive and finite")]
        TOTAL_MILLI.fetch_add((amount * 1000.0).round() as u64, Ordering::Relaxed);
    }
}

/// Runs `work` (one request) and returns what it gives with what the store calls inside it cost
/// (0 on stores that charge nothing).
pub async fn metered<F: Future>(work: F) -> (F::Output, f64) {
    REQUEST
        .scope(Cell::new(0.0), async {
            let output = work.await;
            (output, REQUEST.with(Cell::get))
        })
        .await
}

/// What every store of this process has been charged since it started.
pub fn total() -> f64 {
    TOTAL_MILLI.load(Ordering::Relaxed) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_sums_its_own_charges_and_the_process_all() {
        let before = total();
        charge(1.5); // outside any request: the process's only
        let ((), spent) = metered(async {
            charge(2.25);
            charge(f64::NAN);
            charge(-4.0);
            tokio::task::yield_now().await;
            charge(0.25);
        })
        .await;
        assert!((spent - 2.5).abs() < 1e-9, "{spent}");
        // Other tests may charge in parallel: the total grows by at least this test's charges.
        assert!(total() - before >= 4.0 - 1e-9, "{} -> {}", before, total());
        let ((), nothing) = metered(async {}).await;
        assert!(nothing.abs() < f64::EPSILON);
    }
}
