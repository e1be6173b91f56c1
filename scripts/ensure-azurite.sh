#!/usr/bin/env bash
# Installs Azurite, Microsoft's Azure Storage emulator (npm `azurite`, pinned: 3.35.0 is the
# last release that runs on Node 20, which these machines have), into the cache directory once,
# and prints the path of its `azurite-blob` command. The Blob Storage tests
# (tests/tests/blob.rs) run it with the well-known development account and Shared Key
# authentication.
set -euo pipefail
dir="${FHIRGATE_CACHE:-$HOME/.cache/fhirgate}/azurite-3.35.0"
if [ ! -x "$dir/node_modules/.bin/azurite-blob" ]; then
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" azurite@3.35.0 >&2
fi
echo "$dir/node_modules/.bin/azurite-blob"
