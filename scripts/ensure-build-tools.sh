#!/usr/bin/env bash
# Makes sure the tools a build needs are present: cargo, a C compiler, and cmake (pingora builds
# zlib-ng with it). Installs cmake with apt-get when it is missing and we may; otherwise says what
# to install.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "fhirgate needs a Rust toolchain (cargo): see https://rustup.rs" >&2
  exit 1
fi
if ! command -v cc >/dev/null 2>&1; then
  echo "fhirgate needs a C compiler (e.g. 'apt-get install build-essential')" >&2
  exit 1
fi
if ! command -v cmake >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing cmake (needed to build pingora's zlib-ng)..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null
  else
    echo "fhirgate needs cmake to build: install it (e.g. 'sudo apt-get install cmake' or 'brew install cmake')" >&2
    exit 1
  fi
fi
