#!/usr/bin/env bash
# Installs the cvc5 1.3.1 SMT solver that `fhirgate policy prove` (cedar-policy-symcc 0.8)
# needs, from PyPI: the `cvc5` wheel holds the solver library and its Python bindings but no
# executable, so a small one is written over them (scripts/cvc5/repl.py: the binary's
# read-eval-print loop on the library's own SMT-LIB parser). Debian 12's cvc5 is 1.0.3.
#
# Prints the executable's path: `export CVC5=$(scripts/install-cvc5.sh)`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${FHIRGATE_CVC5_DIR:-$HOME/.cache/fhirgate/cvc5-1.3.1}
if ! "$dir/venv/bin/python" -c 'import cvc5, sys; sys.exit(cvc5.__version__ != "1.3.1")' 2>/dev/null; then
  if ! python3 -m venv "$dir/venv" >&2; then
    # Debian's python3 needs python3-venv for this.
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv >&2
      python3 -m venv "$dir/venv" >&2
    else
      echo "install-cvc5: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check cvc5==1.3.1 >&2
fi
cp "$here/cvc5/repl.py" "$dir/repl.py"
cat > "$dir/cvc5" <<SH
#!/bin/sh
exec "$dir/venv/bin/python" "$dir/repl.py" "\$@"
SH
chmod +x "$dir/cvc5"
echo "$dir/cvc5"
