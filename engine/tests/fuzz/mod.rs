//! What the fuzz targets share: a deterministic proptest runner (fixed seed, few cases, no
//! failure files), so a run in CI is short and repeatable and a failure names its input.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Cases per target: enough to reach the odd corners, quick in a debug build.
pub const CASES: u32 = 256;

/// Runs `test` on `cases` inputs of `strategy`, from a fixed seed; panics with the (shrunk)
/// failing input.
#[expect(clippy::panic, reason = "a test fails by panicking")]
pub fn run<S: Strategy>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 200, ..Config::default() };
    let seed: [u8; 32] = *b"fhirgate fuzz, fixed seed 2026.\0";
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("fuzz target `{name}` failed: {failure}");
    }
}
