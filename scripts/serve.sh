#!/usr/bin/env bash
# Builds and runs the gateway: FHIR R4 at http://127.0.0.1:8080/ on SQLite under ./data/.
# Extra arguments go to `fhirgate serve` (e.g. --listen 0.0.0.0:8080, --config FILE, --store URL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-build-tools.sh
exec cargo run --release --quiet -p fhirgate -- serve "$@"
