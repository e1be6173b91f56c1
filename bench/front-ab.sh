#!/usr/bin/env bash
# Before/after on a busy machine: fhirgate builds (or settings) as the front, measured back to
# back in the same conditions, round after round: the proxied read (`/remote/Patient/{id}`, 5
# Patients on a remote fhirgate, bearer-file credentials) and the local read (`/Patient/{id}`,
# SQLite), authentication and Cedar on, CPU µs per request of each front from /proc.
#
#   bench/front-ab.sh BENCH_BIN ROUNDS DURATION CLIENTS LABEL=BIN[,VAR=VALUE]...
#   e.g. bench/front-ab.sh target/release/fhirgate-bench 3 5 16 before=/tmp/fhirgate-old \
#            after=target/release/fhirgate after-steal=target/release/fhirgate,FHIRGATE_WORK_STEALING=true
#
# Keep the "before" binary aside (copy it) before building the change. The remote is the first
# variant's binary with default settings; each variant runs its own front at once, only the one
# measured is loaded.
set -euo pipefail
bench="$1"; rounds="$2"; duration="$3"; clients="$4"; shift 4
variants=("$@")
work="$(mktemp -d /tmp/fhirgate-front-ab.XXXXXX)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/lib/front.sh
source "$(dirname "$0")/lib/front.sh"
first="${variants[0]#*=}"; first="${first%%,*}"
rport="$(free_port)"; mkdir -p "$work/remote"
FHIRGATE_LOG_LEVEL=warn "$first" serve --listen "127.0.0.1:$rport" --data-dir "$work/remote" >"$work/remote.log" 2>&1 &
pids+=("$!"); wait_up "127.0.0.1:$rport"
rtoken="$(FHIRGATE_DATA_DIR="$work/remote" FHIRGATE_LISTEN="127.0.0.1:$rport" "$first" token --role globalAdmin --ttl-seconds 86400)"
post() { curl -fsS -X POST "http://$1/Patient" -H "Authorization: Bearer $2" -H 'Content-Type: application/fhir+json' \
  -d '{"resourceType":"Patient","name":[{"family":"Smith","given":["P"]}],"gender":"female","birthDate":"1970-01-01"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
rid=""; for _ in 1 2 3 4 5; do id="$(post "127.0.0.1:$rport" "$rtoken")"; [ -z "$rid" ] && rid="$id"; done
declare -A port pid tok lid
names=()
for v in "${variants[@]}"; do
  name="${v%%=*}"; rest="${v#*=}"; bin="${rest%%,*}"; envs=(); [ "$rest" != "$bin" ] && IFS=',' read -ra envs <<<"${rest#*,}"
  names+=("$name"); d="$work/$name"; mkdir -p "$d"; front_config "$d" "$rport" "$rtoken"
  port[$name]="$(free_port)"
  env FHIRGATE_LOG_LEVEL=warn "${envs[@]}" "$bin" serve --config "$d/fhirgate.toml" --listen "127.0.0.1:${port[$name]}" --data-dir "$d" >"$d/front.log" 2>&1 &
  pid[$name]=$!; pids+=("$!"); wait_up "127.0.0.1:${port[$name]}"
  tok[$name]="$(FHIRGATE_DATA_DIR="$d" FHIRGATE_LISTEN="127.0.0.1:${port[$name]}" "$bin" token --config "$d/fhirgate.toml" --role globalAdmin --ttl-seconds 86400)"
  l=""; for _ in 1 2 3 4 5; do id="$(post "127.0.0.1:${port[$name]}" "${tok[$name]}")"; [ -z "$l" ] && l="$id"; done; lid[$name]="$l"
done
m() { "$bench" http --url "$1" --bearer "$2" --server-pid "$3" --clients "$clients" --duration "$duration" --warmup 1 | python3 -c 'import json,sys; d=json.load(sys.stdin); t=d["total"]; print("%6.0f req/s %5.1f us/req p50 %.2f p99 %.2f errors %d" % (t["throughput_per_second"], d["server"]["cpu_us_per_request"], t["latency_ms"]["p50"], t["latency_ms"]["p99"], t["non_2xx"]+t["transport_errors"]))'; }
for r in $(seq 1 "$rounds"); do
  for name in "${names[@]}"; do
    echo "round $r $name proxied: $(m "http://127.0.0.1:${port[$name]}/remote/Patient/$rid" "${tok[$name]}" "${pid[$name]}")"
  done
  for name in "${names[@]}"; do
    echo "round $r $name local:   $(m "http://127.0.0.1:${port[$name]}/Patient/${lid[$name]}" "${tok[$name]}" "${pid[$name]}")"
  done
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S)"
done
