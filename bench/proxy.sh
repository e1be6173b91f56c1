#!/usr/bin/env bash
# What the gateway adds to a remote FHIR server: the same read and search sent directly to a
# "remote" fhirgate and through a "front" fhirgate that routes `/remote/...` to it, in one run.
#
#   bench/proxy.sh [--patients N] [--duration S] [--clients C] [--label NAME]
#
# Both processes run release builds with authentication and Cedar on (each its own local issuer;
# the front reaches the remote with `credentials = "bearer-file"`, a token the remote signed, so
# the front's cached token is what a proxied request costs). The front's CPU per request (from
# /proc, over the measured seconds) is the CPU the gateway adds; the latency columns compare p50
# and p99 of both paths. Results go to bench/results/<date>-proxy[-NAME].md (and .json).
set -euo pipefail
cd "$(dirname "$0")/.."

patients=200
duration=10
clients=16
label=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --patients) patients="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        --label) label="-$2"; shift 2 ;;
        *) echo "usage: $0 [--patients N] [--duration S] [--clients C] [--label NAME]" >&2; exit 2 ;;
    esac
done

bash scripts/ensure-build-tools.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fhirgate/target}"
cargo build --release --locked -p fhirgate
cargo build --release --locked -p fhirgate-bench
bin="$CARGO_TARGET_DIR/release"

work="$(mktemp -d /tmp/fhirgate-proxy-bench.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/lib/front.sh
source bench/lib/front.sh

remote_port="$(free_port)"
front_port="$(free_port)"
mkdir -p "$work/remote" "$work/front"

# The remote: a plain fhirgate on SQLite, its own local issuer.
FHIRGATE_LOG_LEVEL=warn "$bin/fhirgate" serve --listen "127.0.0.1:$remote_port" --data-dir "$work/remote" \
    >"$work/remote.log" 2>&1 &
remote_pid=$!
pids+=("$remote_pid")
wait_up "127.0.0.1:$remote_port"
remote_token="$(FHIRGATE_DATA_DIR="$work/remote" FHIRGATE_LISTEN="127.0.0.1:$remote_port" \
    "$bin/fhirgate" token --role globalAdmin --ttl-seconds 86400)"

# The front: a local store of its own, and the remote behind the `remote` prefix.
front_config "$work/front" "$remote_port" "$remote_token"
FHIRGATE_LOG_LEVEL=warn "$bin/fhirgate" serve --config "$work/front/fhirgate.toml" \
    --listen "127.0.0.1:$front_port" --data-dir "$work/front" >"$work/front.log" 2>&1 &
front_pid=$!
pids+=("$front_pid")
wait_up "127.0.0.1:$front_port"
front_token="$(FHIRGATE_DATA_DIR="$work/front" FHIRGATE_LISTEN="127.0.0.1:$front_port" \
    "$bin/fhirgate" token --config "$work/front/fhirgate.toml" --role globalAdmin --ttl-seconds 86400)"

# Data on the remote: N small Patients with a few family names, the first a Smith (the name the
# search asks for, so it matches at least one Patient whatever N is: 1 of 5, 25 of 200).
families=(Smith Jones Garcia Nguyen Okafor Schmidt Rossi Tanaka)
first_id=""
for i in $(seq 1 "$patients"); do
    family="${families[$(((i - 1) % ${#families[@]}))]}"
    id="$(curl -fsS -X POST "http://127.0.0.1:$remote_port/Patient" \
        -H "Authorization: Bearer $remote_token" -H 'Content-Type: application/fhir+json' \
        -d "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"$family\",\"given\":[\"P$i\"]}],\"gender\":\"female\",\"birthDate\":\"1970-01-01\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
    [ -z "$first_id" ] && first_id="$id"
done

# The search must find something through both paths, or it measures an empty searchset.
search="Patient?name=Smith&_count=10"
smiths="$(curl -fsS "http://127.0.0.1:$front_port/remote/$search" -H "Authorization: Bearer $front_token" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("entry", [])))')"
if [ "$smiths" -lt 1 ]; then
    echo "proxy.sh: the proxied search \`$search\` matches nothing" >&2
    exit 1
fi

measure() { # label url token pid
    "$bin/fhirgate-bench" http --url "$2" --bearer "$3" --server-pid "$4" \
        --clients "$clients" --duration "$duration" --warmup 2 >"$work/$1.json"
}
measure direct-read "http://127.0.0.1:$remote_port/Patient/$first_id" "$remote_token" "$remote_pid"
measure proxied-read "http://127.0.0.1:$front_port/remote/Patient/$first_id" "$front_token" "$front_pid"
measure direct-search "http://127.0.0.1:$remote_port/$search" "$remote_token" "$remote_pid"
measure proxied-search "http://127.0.0.1:$front_port/remote/$search" "$front_token" "$front_pid"

mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d)-proxy$label"
python3 - "$work" "$out" "$(git rev-parse --short HEAD)" "$patients" "$clients" "$duration" "$smiths" <<'PY'
import json, sys
work, out, commit, patients, clients, duration, smiths = sys.argv[1:]
runs = {name: json.load(open(f"{work}/{name}.json")) for name in
        ["direct-read", "proxied-read", "direct-search", "proxied-search"]}
def row(kind):
    d, p = runs[f"direct-{kind}"], runs[f"proxied-{kind}"]
    lat = lambda m, q: m["total"]["latency_ms"][q]
    cpu = (p.get("server") or {}).get("cpu_us_per_request")
    return (f"| {kind} | {d['total']['throughput_per_second']:.0f} | {p['total']['throughput_per_second']:.0f} "
            f"| {lat(d,'p50'):.2f} / {lat(d,'p99'):.2f} | {lat(p,'p50'):.2f} / {lat(p,'p99'):.2f} "
            f"| {lat(p,'p99') - lat(d,'p99'):+.2f} | {cpu:.0f} | {p['total']['non_2xx'] + p['total']['transport_errors']} |"
            if cpu is not None else f"| {kind} | no CPU figure |")
lines = [
    f"# Proxied vs direct — commit {commit}",
    "",
    f"{patients} Patients on a remote fhirgate (SQLite); front fhirgate routes `/remote` to it "
    f"(bearer-file credentials); both release builds, authentication and Cedar on; {clients} clients, "
    f"{duration} s per measurement; load average at the end: "
    f"{runs['proxied-read'].get('load_average_1m')}.",
    "",
    "| request | direct req/s | proxied req/s | direct p50 / p99 ms | proxied p50 / p99 ms | p99 added ms "
    "| front CPU µs / request | proxied errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    row("read"),
    row("search"),
    "",
    f"The search is `Patient?name=Smith&_count=10`: {smiths} match(es) on its first page.",
    "",
    "Front CPU µs / request is everything the gateway spends on a proxied request: authentication "
    "(cached token), Cedar, routing, the remote path's decisions and the HTTP exchange with the remote.",
]
open(out + ".md", "w").write("\n".join(lines) + "\n")
json.dump(runs, open(out + ".json", "w"), indent=1)
print("\n".join(lines))
PY
