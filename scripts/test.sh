#!/usr/bin/env bash
# Checks formatting and lints (clippy, warnings as errors), then runs every test of the
# workspace: unit, fuzz (fixed seeds), storage contract, end-to-end through the real binary (the
# attack suite included) and the official R4 examples. Installs or starts what the tests need
# (cmake; the R4 package and Azurite from npm; Chromium for the browser test) on its own. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Everything below runs with a PostgreSQL server: a throwaway cluster unless
# FHIRGATE_TEST_POSTGRES_URL already names one.
if [ -z "${FHIRGATE_TEST_POSTGRES_URL:-}" ]; then
  exec bash scripts/with-postgres.sh bash scripts/test.sh "$@"
fi

bash scripts/ensure-build-tools.sh
# Headless Chromium for the browser test of SMART apps (skipped, saying why, without it).
bash scripts/ensure-browser.sh
# Debian's prometheus: promtool lints /metrics and the server scrapes it in tests/tests/metrics.rs
# (both skipped, saying why, without it).
bash scripts/ensure-promtool.sh

# One shared target directory keeps rebuilds incremental between runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fhirgate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

FHIR_R4_PACKAGE="$(bash scripts/fetch-r4-package.sh)"
export FHIR_R4_PACKAGE
# Azurite (npm), the Azure Storage emulator the Blob Storage tests of bulk jobs run against
# (tests/tests/blob.rs, attacks_blob.rs); they must run, not skip.
FHIRGATE_TEST_AZURITE="$(bash scripts/ensure-azurite.sh)"
export FHIRGATE_TEST_AZURITE FHIRGATE_TEST_REQUIRE_AZURITE=1
# The cvc5 1.3.1 solver of `fhirgate policy prove`, from PyPI; its tests must run, not skip.
CVC5="$(bash scripts/install-cvc5.sh)"
export CVC5 FHIRGATE_TEST_REQUIRE_CVC5=1

# Formatting and lints are part of the contract: a warning fails the run.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
# The end-to-end tests run this build's binary (it has the in-process Cosmos DB emulator, which
# test builds of the workspace enable), instead of building `fhirgate` again on their own.
export FHIRGATE_BIN="$CARGO_TARGET_DIR/debug/fhirgate"
status=0
# Everything below is also kept in a log, so the end of the output names what failed (CI keeps
# only the head and the tail of a long output).
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
logged() {
  "$@" 2>&1 | tee -a "$log"
  return "${PIPESTATUS[0]}"
}
# The generated TestScript corpus (a script per R4 resource type) is current: regenerated from
# the R4 package and compared with the checked-in one. Its run on every store is the end-to-end
# test `generated_corpus` (below, once per store), which prints `N passed, N failed`.
logged "$CARGO_TARGET_DIR/debug/fhirgate-conformance" generate --package "$FHIR_R4_PACKAGE" \
  --out conformance/testscripts/generated --check || status=$?
# The SMART set's stated properties (patient scopes stay in the compartment, no scope no
# access, no policy errors), and the consent set's over the roles' permits, proved for every
# request, as a release would.
logged "$FHIRGATE_BIN" policy prove --set smart || status=$?
logged "$FHIRGATE_BIN" policy prove --set microsoft-roles --set consent || status=$?
# deploy/: app roles against the policy sets, manifests and templates (schemas, checkov), the
# example configurations, and the container image built around this binary (skipped, saying
# why, where podman cannot run).
logged bash scripts/check-deploy.sh || status=$?
# --show-output prints what passing tests report (e.g. how many R4 examples were accepted).
logged cargo test --workspace --locked --no-fail-fast "$@" -- --show-output || status=$?
echo "== the end-to-end tests again, with the gateway on PostgreSQL ==" | tee -a "$log"
logged env FHIRGATE_E2E_STORE=postgres cargo test -p fhirgate-e2e --locked --no-fail-fast "$@" -- --show-output --include-ignored || status=$?
echo "== the end-to-end tests again, with the gateway on Cosmos DB (the SDK's in-process emulator), one-partition layout ==" | tee -a "$log"
logged env FHIRGATE_E2E_STORE=cosmos FHIRGATE_COSMOS_LAYOUT=single cargo test -p fhirgate-e2e --locked --no-fail-fast "$@" -- --show-output || status=$?
echo "== the writes, transactions, history and search tests again, on Cosmos DB's partitioned layout (a partition per resource; what \`auto\`, the default, gives a new store) ==" | tee -a "$log"
logged env FHIRGATE_E2E_STORE=cosmos FHIRGATE_COSMOS_LAYOUT=auto cargo test -p fhirgate-e2e --locked --no-fail-fast \
  --test crud --test bundles --test conditional --test history --test search --test attacks \
  --test search_params --test attacks_search_params "$@" -- --show-output || status=$?
echo "== the attack, conformance (hand-written, generated, official examples), CRUD, consent and XML tests again, through a front gateway to a remote fhirgate ==" | tee -a "$log"
logged env FHIRGATE_E2E_STORE=remote cargo test -p fhirgate-e2e --locked --no-fail-fast --test attacks --test attacks_import --test conformance \
  --test crud --test consent --test attacks_consent --test generated_corpus --test official_testscripts --test xml "$@" \
  -- --show-output || status=$?
if [ "$status" -ne 0 ]; then
  echo "== what failed: the phases, and in them each failed test, panic and error =="
  grep -E "^== |\.\.\. FAILED$|^error: |^thread '.*' panicked at" "$log" | head -300 || true
fi
exit "$status"
