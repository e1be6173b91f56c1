#!/usr/bin/env bash
# Builds the container image of deploy/container/Containerfile around a fhirgate binary
# ($FHIRGATE_BIN, or the first argument) and checks it running with a read-only root filesystem:
# runs as uid 10001, GET /health 200, the image's HEALTHCHECK passes, GET /metadata 200 without a
# token, GET /Patient 401 without one and 200 with a token of the local issuer, the root
# filesystem refuses writes, and SIGTERM stops it cleanly within its grace period.
# Needs rootful podman (Debian's podman, runc, busybox-static; installed with apt-get when
# missing and possible). Where podman cannot build or run containers here, it prints
# "SKIP test-image: <why>" and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-${FHIRGATE_BIN:-}}"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "test-image: no binary: set FHIRGATE_BIN or pass its path" >&2; exit 1
fi

skip() { echo "SKIP test-image: $*"; exit 0; }

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || [ ! -x /bin/busybox ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc busybox-static >/dev/null 2>&1 \
      || skip "apt-get install podman runc busybox-static failed"
  else
    skip "podman, runc and busybox-static are not installed, and cannot be installed (not root or no apt-get)"
  fi
fi
[ "$(id -u)" = 0 ] || skip "rootless podman is not tried here; run as root"

name="fhirgate-test-image-$$"
image="localhost/$name:test"
context="$(mktemp -d)"
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman volume rm -f "$name-data" >/dev/null 2>&1 || true
  podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$context"
}
trap cleanup EXIT

bash deploy/container/stage.sh "$bin" "$context" >/dev/null
if ! out="$(podman build -q --format docker -f deploy/container/Containerfile -t "$image" "$context" 2>&1)"; then
  skip "podman cannot build images here: $(echo "$out" | tail -1)"
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# runc, and limits below the machine's hard limits: podman's defaults (nofile 1048576) need
# CAP_SYS_RESOURCE, which sandboxed machines (this one) do not give; crun cannot run here at all.
if ! out="$(podman --runtime runc run -d --name "$name" --read-only \
    --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    -e FHIRGATE_SHUTDOWN_GRACE_SECONDS=2 --no-healthcheck \
    -v "$name-data:/var/lib/fhirgate" -p "127.0.0.1:$port:8080" "$image" 2>&1)"; then
  skip "podman cannot run containers here: $(echo "$out" | grep -v 'level=' | tail -1)"
fi

fail() { echo "FAIL test-image: $*" >&2; podman logs "$name" 2>&1 | tail -20 >&2; exit 1; }
base="http://127.0.0.1:$port"
status() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }
for _ in $(seq 1 50); do
  [ "$(status "$base/health")" = 200 ] && break
  sleep 0.2
done
[ "$(status "$base/health")" = 200 ] || fail "GET /health did not answer 200"
[ "$(podman exec "$name" /bin/busybox id -u)" = 10001 ] || fail "the server does not run as uid 10001"
# The HEALTHCHECK's command, run as podman would (its timers need systemd, which may be absent).
podman image inspect "$image" --format '{{json .Config.Healthcheck}}' | grep -q 'http://127.0.0.1:8080/health/ready' \
  || fail "the image has no HEALTHCHECK on /health/ready"
podman exec "$name" /bin/busybox wget -q -O /dev/null http://127.0.0.1:8080/health/ready || fail "the image's HEALTHCHECK command fails"
[ "$(status "$base/metadata")" = 200 ] || fail "GET /metadata without a token did not answer 200"
[ "$(status "$base/Patient")" = 401 ] || fail "GET /Patient without a token did not answer 401"
token="$(podman exec "$name" /usr/local/bin/fhirgate token --role globalReader)"
[ "$(status -H "Authorization: Bearer $token" "$base/Patient")" = 200 ] || fail "GET /Patient with a globalReader token did not answer 200"
if podman exec "$name" /bin/busybox touch /usr/local/bin/x 2>/dev/null; then fail "the root filesystem is writable"; fi

start="$(date +%s)"
podman stop -t 20 "$name" >/dev/null
took=$(( $(date +%s) - start ))
code="$(podman inspect "$name" --format '{{.State.ExitCode}}')"
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
[ "$took" -le 10 ] || fail "SIGTERM took $took s (grace 2 s)"
podman logs "$name" 2>&1 | grep -q '"fhirgate stopped"' || fail "no 'fhirgate stopped' after SIGTERM"
echo "test-image: image built from $(basename "$bin"); /health, HEALTHCHECK, /metadata, 401 and token read, read-only root, uid 10001, SIGTERM in ${took} s: ok"
