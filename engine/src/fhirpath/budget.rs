//! The work budget of an evaluation: a count of steps (nodes evaluated, items produced, and the
//! comparisons of the functions that compare every item with every other) and a deadline.
//! Expressions come from clients (FHIRPath Patch paths), and a short one can cost the square of
//! the resource (`name.where(%resource.descendants().count() < 0)`): past the budget the
//! evaluation ends with an [`ErrorKind::Budget`](super::ErrorKind::Budget) error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::{FhirPathError, Result};

/// How much work evaluations may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Steps: nodes evaluated, plus items produced, plus pairs compared (16 to a step).
    pub max_steps: u64,
    /// Wall-clock time from the start of the budget.
    pub max_time: Duration,
}

impl Budget {
    /// Generous for the specification's own expressions (search index extraction of large
    /// resources stays far below it), small enough that a costly expression ends in a fraction
    /// of a second.
    pub(crate) const DEFAULT: Self = Self { max_steps: 2_000_000, max_time: Duration::from_secs(2) };

    /// Search index extraction: the specification's own expressions, whose work grows with the
    /// resource, which the body limit bounds. Steps only, and many: what is indexed must not
    /// depend on how loaded the machine is, nor lose entries of a large resource.
    pub(crate) const INDEXING: Self = Self { max_steps: 500_000_000, max_time: Duration::MAX };

    /// Search index extraction of a custom parameter (`search::custom`): anyone allowed to write a
    /// SearchParameter chooses its expression, which then runs on every write of its types.
    pub(crate) const CUSTOM_INDEXING: Self = Self { max_steps: 2_000_000, max_time: Duration::MAX };
}

impl Default for Budget {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl From<&crate::interaction::EngineConfig> for Budget {
    /// The budget of a request's expressions (FHIRPath Patch paths).
    fn from(config: &crate::interaction::EngineConfig) -> Self {
        Self { max_steps: config.fhirpath_max_steps, max_time: config.fhirpath_timeout }
    }
}

/// Steps between two looks at the clock.
const CLOCK_EVERY: u64 = 4096;

/// A budget being spent, shared by every evaluation given the same [`super::Env`] (all the
/// operations of one patch spend one budget).
#[derive(Debug)]
pub(crate) struct Meter {
    spent: AtomicU64,
    max_steps: u64,
    deadline: Option<Instant>,
    max_time: Duration,
}

impl Meter {
    /// Starts spending `budget` now.
    pub(crate) fn start(budget: Budget) -> Arc<Self> {
        Arc::new(Self {
            spent: AtomicU64::new(0),
            max_steps: budget.max_steps,
            deadline: Instant::now().checked_add(budget.max_time),
            max_time: budget.max_time,
        })
    }

    /// Spends `steps`; fails once the steps or the time are used up.
    pub(crate) fn spend(&self, steps: u64) -> Result<()> {
        let before = self.spent.fetch_add(steps, Ordering::Relaxed);
        let after = before.saturating_add(steps);
        if after > self.max_steps {
            return Err(FhirPathError::budget(format!(
                "the expression exceeds the work budget of {} steps",
                self.max_steps
            )));
        }
        if before / CLOCK_EVERY != after / CLOCK_EVERY && self.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(FhirPathError::budget(format!(
                "the expression exceeds the time budget of {} ms",
                self.max_time.as_millis()
            )));
        }
        Ok(())
    }
}

/// Comparisons of two items counted as one step: comparing is far cheaper than evaluating a
/// node or producing an item (the R4 ValueSet examples union thousands of codes).
const COMPARISONS_PER_STEP: u64 = 16;

/// The steps of comparing each of `a` items with each of `b` items, for functions comparing
/// every item of one collection with every item of another (`union`, `distinct`...).
pub(crate) fn pairs(a: usize, b: usize) -> u64 {
    let comparisons = u64::try_from(a).unwrap_or(u64::MAX).saturating_mul(u64::try_from(b).unwrap_or(u64::MAX));
    comparisons / COMPARISONS_PER_STEP
}
