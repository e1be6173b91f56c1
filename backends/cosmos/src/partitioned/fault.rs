//! The crash hook of the transaction tests: with the `emulator` feature a test can make the
//! store stop before its `n`-th protocol request, as if the process died there (nothing is
//! cleaned up, nothing more is sent). Without the feature [`step`] does nothing.

use crate::CosmosStore;
use crate::error::Error;

/// Called before each request of the transaction protocol; fails once the test's budget of
/// steps is spent.
pub(crate) fn step(store: &CosmosStore, what: &'static str) -> Result<(), Error> {
    #[cfg(feature = "emulator")]
    {
        let mut left = store.inner.crash_after.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = left.as_mut() {
            if *n == 0 {
                return Err(Error::Crashed(what));
            }
            *n -= 1;
        }
    }
    #[cfg(not(feature = "emulator"))]
    let _ = (store, what);
    Ok(())
}

#[cfg(feature = "emulator")]
impl CosmosStore {
    /// Test hook: the store sends `steps` more requests of the transaction protocol, then acts
    /// as if its process died (`None`: never).
    pub fn crash_after(&self, steps: Option<usize>) {
        *self.inner.crash_after.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = steps;
    }
}
