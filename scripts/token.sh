#!/usr/bin/env bash
# Prints a token from the local development issuer of the server that ./scripts/serve.sh runs
# (same configuration and data directory), e.g. ./scripts/token.sh --role globalAdmin.
# More: --scope 'patient/Observation.rs' --patient p1, --sub NAME, --app, --ttl-seconds N.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --quiet -p fhirgate -- token "$@"
