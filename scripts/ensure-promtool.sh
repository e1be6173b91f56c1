#!/usr/bin/env bash
# Installs Debian's `prometheus` package for the metrics test (tests/tests/metrics.rs), which
# lints the `/metrics` exposition with `promtool check metrics` and has a real `prometheus` server
# scrape it, when they are missing and we may (root with apt-get). Never fails: without them
# those two checks are skipped, saying why (the exposition is still parsed and its counts checked).
set -uo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing prometheus (promtool and the server, for the metrics test)..." >&2
  apt-get update -qq >/dev/null 2>&1
  # The package's service is not started here: only its `promtool` is used.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
    || echo "could not install prometheus: promtool's lint and the real scrape of /metrics will be skipped" >&2
else
  echo "prometheus is not installed: the lint and real scrape of /metrics will be skipped (Debian: apt-get install prometheus)" >&2
fi
exit 0
