#!/usr/bin/env bash
# Bulk data benchmarks (issue 21): `$import` in initial-load mode (scenario 9) of N Synthea
# patients turned into NDJSON, then a system-level `$export` of everything imported (scenario 8)
# from the same server, on SQLite and on PostgreSQL (a throwaway cluster). Each run records
# resources/s, the server's CPU seconds and its peak RSS (VmHWM, plus the sampled anonymous and
# file-backed peaks) in bench/results/<date>-s9-<store>-p<N>.json and -s8-; the machine's load
# average before and after goes to the terminal (note it with the results: this is a shared
# 2-core machine).
#
#   bench/bulk.sh [--patients 100] [--stores sqlite,postgres] [--label NAME] [--bin-dir DIR]
#
# `--label` goes into the result files' names (`-s9-sqlite-p100-NAME.json`), so a run does not
# overwrite the same day's files; `--bin-dir` takes `fhirgate` and `fhirgate-bench` from DIR
# instead of building them (to run an older build's binaries, kept aside, in the same
# conditions as the new ones).
#
# Goals (issue 21): export >= 20,000 resources/s, import >= 5,000 resources/s, peak RSS <= 300 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

patients=100
stores="sqlite,postgres"
label=""
bin=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --patients) patients="$2"; shift 2 ;;
        --stores) stores="$2"; shift 2 ;;
        --label) label="-$2"; shift 2 ;;
        --bin-dir) bin="$2"; shift 2 ;;
        *) echo "usage: $0 [--patients N] [--stores sqlite,postgres] [--label NAME] [--bin-dir DIR]" >&2; exit 2 ;;
    esac
done

if [ -z "$bin" ]; then
    bash scripts/ensure-build-tools.sh
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fhirgate/target}"
    # Two builds, as in run.sh: together, cargo would unify features and rebuild the server.
    cargo build --release --locked -p fhirgate
    cargo build --release --locked -p fhirgate-bench
    bin="$CARGO_TARGET_DIR/release"
fi

# The same seeded dataset as run.sh (and its cache), so both suites measure the same patients.
cache="${FHIRGATE_CACHE:-$HOME/.cache/fhirgate}"
bundles="$cache/bench-data/synthea-p$patients-s42-r20260101/fhir"
if [ ! -d "$bundles" ]; then
    synthea="$(bash scripts/fetch-synthea.sh)"
    tmp="$cache/bench-data/tmp-p$patients-s42-$$"
    echo "bulk.sh: generating $patients Synthea patients (a few seconds each)" >&2
    "$synthea" generate -p "$patients" -s 42 -r 20260101 --profile none -o "$tmp" >&2
    mkdir -p "$(dirname "$bundles")"
    mv "$tmp/fhir" "$bundles"
    rm -rf "$tmp"
fi

token="FHIRGATE_AUTH_ENABLED=true $bin/fhirgate token --role globalAdmin --ttl-seconds 86400"
work="$cache/bench-bulk"
for store in ${stores//,/ }; do
    echo "bulk.sh: $store, $patients patients; load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    case "$store" in
        sqlite)
            "$bin/fhirgate-bench" import --server-bin "$bin/fhirgate" --data-dir "$work" --bundles "$bundles" \
                --export --store-label "sqlite-p$patients$label" --token-command "$token" ;;
        postgres)
            # The throwaway cluster's URL arrives in FHIRGATE_TEST_POSTGRES_URL.
            bash scripts/with-postgres.sh bash -c '"$0" import --server-bin "$1" --data-dir "$2" --bundles "$3" \
                --store "$FHIRGATE_TEST_POSTGRES_URL" --export --store-label "postgres-p$4" --token-command "$5"' \
                "$bin/fhirgate-bench" "$bin/fhirgate" "$work" "$bundles" "$patients$label" "$token" ;;
        *) echo "bulk.sh: unknown store \`$store\` (sqlite, postgres)" >&2; exit 2 ;;
    esac
    echo "bulk.sh: $store done; load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
rm -rf "$work"
