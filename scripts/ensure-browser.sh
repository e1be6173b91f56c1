#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian's `chromium` and `chromium-driver`) for the
# browser test of SMART apps (tests/tests/browser.rs), when they are missing and we may (root with
# apt-get). Never fails: without them that test is skipped, saying why.
set -uo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver (for the browser test of SMART apps)..." >&2
  apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
    || echo "could not install chromium: the browser test will be skipped" >&2
else
  echo "chromium and chromedriver are not installed: the browser test will be skipped" \
    "(Debian: apt-get install chromium chromium-driver)" >&2
fi
exit 0
