#!/usr/bin/env bash
# Runs every test of the workspace: unit, storage contract, end-to-end through the real binary
# and the official R4 examples. Installs or starts what the tests need (cmake; the R4 package from
# npm) on its own. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-build-tools.sh

# One shared target directory keeps rebuilds incremental between runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fhirgate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

FHIR_R4_PACKAGE="$(bash scripts/fetch-r4-package.sh)"
export FHIR_R4_PACKAGE

cargo build --workspace --all-targets --locked
# --show-output prints what passing tests report (e.g. how many R4 examples were accepted).
cargo test --workspace --locked --no-fail-fast "$@" -- --show-output
