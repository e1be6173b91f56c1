#!/usr/bin/env bash
# Runs the benchmark suite end to end: builds the release `fhirgate` and `fhirgate-bench`, makes
# (once, cached) N seeded Synthea patients, starts the server on a fresh data directory (SQLite, a
# throwaway PostgreSQL through scripts/with-postgres.sh, or the Cosmos DB emulator, for a functional
# comparison only), loads the patients (scenario 3), runs
# the chosen scenarios and writes bench/results/<date>-s<N>-<store>.json and <date>-<store>.md.
#
#   bench/run.sh --scenarios 1,4 --store sqlite --patients 100 [--env FILE] [-- extra fhirgate-bench suite flags]
#   bench/run.sh --scenarios 8 --store postgres --patients 1000   # $export: resources/s, peak RSS
#   bench/run.sh --load import --store sqlite --patients 1000     # load through $import instead
#
# --load import: the patients are loaded through `$import` (scenario 9, `fhirgate-bench import`:
# resources/s and peak RSS of the bulk load) instead of as transactions (scenario 3, which is then
# not run): at 1,000 patients the transactions take hours, the import minutes. SQLite and
# PostgreSQL only (the Cosmos DB emulator keeps nothing between server starts).
#
# --env FILE: KEY=VALUE lines added to the server's environment for the whole run, e.g.
# bench/env/auth-off.env to measure scenarios 1-6 without authentication.
#
# --peer URL: afterwards, the same data and the HTTP-only scenarios (1, 2, 4, 6; 3 loads the data)
# against another FHIR R4 server already running at URL (e.g. Helios HFS), with the same suite
# flags; --peer-pid PID reports its CPU and peak RSS (same machine), --peer-bearer TOKEN sends a
# token. Results: bench/results/<date>-s<N>-peer-<store>-p<patients>.json and <date>-peer-....md.
#
# Extra flags, e.g.: --duration 10 --warmup 2 --clients 16 --rate 5000
#                    --env-a bench/env/auth-off.env --env-b bench/env/auth-on.env (scenario 7)
#                    --bearer T | --token-command CMD
# Authentication and Cedar are on (the server's default, and what the targets are stated for):
# unless --bearer or --token-command is given, every request carries a globalAdmin token that the
# started server's local issuer signed (`fhirgate token`, run after each start).
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios="1,2,3,4,5,6"
store="sqlite"
patients=100
seed=42
extra_env=""
peer=""
peer_pid=""
peer_bearer=""
load="transactions"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --scenarios) scenarios="$2"; shift 2 ;;
        --store) store="$2"; shift 2 ;;
        --patients) patients="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --env) extra_env="$(realpath "$2")"; shift 2 ;;
        --peer) peer="$2"; shift 2 ;;
        --peer-pid) peer_pid="$2"; shift 2 ;;
        --peer-bearer) peer_bearer="$2"; shift 2 ;;
        --load) load="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [--scenarios 1,2,3,4,5,6,7,8] [--store sqlite|postgres|cosmos] [--patients N] [--seed S] [--load transactions|import] [--env FILE] [--peer URL [--peer-pid PID] [--peer-bearer TOKEN]] [-- suite flags]" >&2; exit 2 ;;
    esac
done
case "$load" in
    transactions) ;;
    import) [ "$store" != cosmos ] || { echo "run.sh: --load import needs --store sqlite or postgres" >&2; exit 2; } ;;
    *) echo "run.sh: --load transactions or import" >&2; exit 2 ;;
esac

if [ "$store" = postgres ] && [ -z "${FHIRGATE_TEST_POSTGRES_URL:-}" ]; then
    exec bash scripts/with-postgres.sh bash bench/run.sh --scenarios "$scenarios" --store postgres \
        --patients "$patients" --seed "$seed" --load "$load" ${extra_env:+--env "$extra_env"} ${peer:+--peer "$peer"} \
        ${peer_pid:+--peer-pid "$peer_pid"} ${peer_bearer:+--peer-bearer "$peer_bearer"} -- "$@"
fi

bash scripts/ensure-build-tools.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fhirgate/target}"
# Two builds, not one: built together, cargo would unify tokio's features across both packages and
# rebuild the whole server (~15 min) instead of reusing the release build of `fhirgate` alone.
# Cosmos DB runs on the SDK's in-process emulator, a test-only feature kept out of the shipped
# build: a functional comparison, not a measurement of Cosmos DB.
features=()
[ "$store" = cosmos ] && features=(--features fhirgate-cosmos/emulator)
cargo build --release --locked -p fhirgate "${features[@]}"
cargo build --release --locked -p fhirgate-bench
bin="$CARGO_TARGET_DIR/release"

# The dataset: seeded and with a fixed reference date, so the same N and seed give the same data.
cache="${FHIRGATE_CACHE:-$HOME/.cache/fhirgate}/bench-data"
bundles="$cache/synthea-p$patients-s$seed-r20260101/fhir"
if [ ! -d "$bundles" ]; then
    synthea="$(bash scripts/fetch-synthea.sh)"
    tmp="$cache/tmp-p$patients-s$seed-$$"
    echo "run.sh: generating $patients Synthea patients (a few seconds each)" >&2
    "$synthea" generate -p "$patients" -s "$seed" -r 20260101 --profile none -o "$tmp" >&2
    mkdir -p "$(dirname "$bundles")"
    mv "$tmp/fhir" "$bundles"
    rm -rf "$tmp"
fi

data="$(mktemp -d /tmp/fhirgate-bench.XXXXXX)"
# FHIRGATE_BENCH_KEEP_DATA=1 keeps the loaded data directory (e.g. to profile the server on it).
if [ -z "${FHIRGATE_BENCH_KEEP_DATA:-}" ]; then trap 'rm -rf "$data"' EXIT; else echo "run.sh: data in $data" >&2; fi
# Synthea Bundles reach 11,000 entries and 20 MB for one patient: above the server's defaults
# (5,000 entries, 16 MB), which are right for clients but would drop the oldest patients here.
# (`fhirgate-bench import` empties the data directory: written again after it.)
write_server_env() {
    cat >"$data/server.env" <<ENV
FHIRGATE_MAX_BUNDLE_ENTRIES=50000
FHIRGATE_MAX_BODY_BYTES=134217728
FHIRGATE_REQUEST_TIMEOUT_SECONDS=300
ENV
    if [ -n "$extra_env" ]; then cat "$extra_env" >>"$data/server.env"; fi
}
write_server_env
store_args=()
case "$store" in
    sqlite)
        settings="SQLite WAL, synchronous=NORMAL" ;;
    postgres)
        store_args=(--store "$FHIRGATE_TEST_POSTGRES_URL")
        settings="PostgreSQL (scripts/with-postgres.sh cluster: fsync=off, synchronous_commit=off, full_page_writes=off${FHIRGATE_TEST_POSTGRES_SETTINGS:+; $FHIRGATE_TEST_POSTGRES_SETTINGS})"
        [ -n "${FHIRGATE_BENCH_PG_SETTINGS:-}" ] && settings="$FHIRGATE_BENCH_PG_SETTINGS" ;;
    cosmos)
        # A Synthea patient is one transaction of hundreds to thousands of resources; the Cosmos
        # store takes 49 per transaction, so patients go as batches of 49 (scenario 3).
        store_args=(--store cosmos:emulator --batch-size 49)
        settings="Cosmos DB SDK in-process emulator (functional comparison only)" ;;
    *) echo "run.sh: --store sqlite, postgres or cosmos" >&2; exit 2 ;;
esac

# Results are named after the store, the dataset size and the --env file, if any
# (e.g. 2026-11-27-s1-sqlite-p1000-auth-off.json).
label="$store-p$patients${extra_env:+-$(basename "$extra_env" .env)}"

token_args=()
case " $* " in
    *" --bearer"*|*" --token-command"*) ;;
    # FHIRGATE_AUTH_ENABLED=true: the token is also minted (and sent, and ignored) when the
    # server's environment turns authentication off, so both sides of scenario 7 send the same
    # requests.
    *) token_args=(--token-command "FHIRGATE_AUTH_ENABLED=true '$bin/fhirgate' token --role globalAdmin --ttl-seconds 86400") ;;
esac

suite_scenarios="$scenarios"
load_args=(--bundles "$bundles")
if [ "$load" = import ]; then
    # The store is loaded (and its data directory made) before the suite starts its server on it;
    # the suite then reads the dataset instead of loading, and scenario 3 is left out.
    import_store=()
    [ "$store" = postgres ] && import_store=(--store "$FHIRGATE_TEST_POSTGRES_URL")
    import_auth=("${token_args[@]}")
    for ((i = 1; i <= $#; i++)); do
        case "${!i}" in --bearer|--token-command) j=$((i + 1)); import_auth=("${!i}" "${!j}") ;; esac
    done
    "$bin/fhirgate-bench" import --server-bin "$bin/fhirgate" --data-dir "$data" "${import_store[@]}" \
        --bundles "$bundles" --dataset "$data/dataset.json" --store-label "$label" --out bench/results \
        "${import_auth[@]}"
    write_server_env
    suite_scenarios="$(echo "$scenarios" | tr ',' '\n' | grep -vx 3 | paste -sd, -)"
    load_args=()
fi

[ -n "$suite_scenarios" ] && "$bin/fhirgate-bench" suite \
    --server-bin "$bin/fhirgate" --data-dir "$data" "${store_args[@]}" --env-file "$data/server.env" \
    "${load_args[@]}" --dataset "$data/dataset.json" \
    --scenarios "$suite_scenarios" --store-label "$label" --store-settings "$settings" \
    --out bench/results "${token_args[@]}" "$@"

# The peer: the same Bundles loaded over HTTP, then the scenarios that need nothing but HTTP.
if [ -n "$peer" ]; then
    peer_scenarios="$(echo "$scenarios" | tr ',' '\n' | grep -E '^[12346]$' | paste -sd, -)"
    peer_args=()
    [ -n "$peer_pid" ] && peer_args+=(--server-pid "$peer_pid")
    [ -n "$peer_bearer" ] && peer_args+=(--bearer "$peer_bearer")
    # Suite flags meant for fhirgate's own start (tokens, scenario 7's environments) do not apply.
    suite_flags=()
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --bearer|--token-command|--env-a|--env-b) shift 2 ;;
            *) suite_flags+=("$1"); shift ;;
        esac
    done
    echo "run.sh: peer $peer, scenarios $peer_scenarios" >&2
    "$bin/fhirgate-bench" suite --base-url "$peer" "${peer_args[@]}" \
        --bundles "$bundles" --dataset "$data/peer-dataset.json" \
        --scenarios "$peer_scenarios" --store-label "peer-$label" --store-settings "peer at $peer" \
        --out bench/results "${suite_flags[@]}"
fi
