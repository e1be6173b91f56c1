#!/bin/sh
# Fetches the official FHIR R4 package (hl7.fhir.r4.examples@4.0.1, CC0) once, extracts it, and
# prints the path of its `package/` directory. Used by engine/definitions/generate.py and by
# engine/tests/r4_examples.rs. Needs npm only when the tarball is not cached yet.
set -eu
dir="${XDG_CACHE_HOME:-$HOME/.cache}/fhirgate-r4"
tgz="$dir/hl7.fhir.r4.examples-4.0.1.tgz"
mkdir -p "$dir"
if [ ! -f "$tgz" ]; then
    (cd "$dir" && npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null)
fi
if [ ! -f "$dir/package/package.json" ]; then
    tmp=$(mktemp -d "$dir/extract.XXXXXX")
    tar -xzf "$tgz" -C "$tmp"
    rm -rf "$dir/package"
    mv "$tmp/package" "$dir/package"
    rmdir "$tmp"
fi
echo "$dir/package"
