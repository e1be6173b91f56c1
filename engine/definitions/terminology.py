#!/usr/bin/env python3
"""Derive engine/definitions/r4-terminology.json.gz from the official FHIR R4 package.

Usage: terminology.py PACKAGE_DIR [OUTPUT]
  PACKAGE_DIR  the extracted `package/` directory of hl7.fhir.r4.examples@4.0.1
               (scripts/fetch-r4-package.sh prints it)
  OUTPUT       defaults to r4-terminology.json.gz next to this script

Python 3 standard library only; deterministic output (sorted keys, fixed gzip mtime).

Format (version 1):
  {
    "format": 1,
    "fhirVersion": "4.0.1",
    "resources": [ CodeSystem and ValueSet resources, as FHIR JSON, reduced to what the
                   terminology engine reads:
                   CodeSystem: url, version, name, title, status, content, caseSensitive,
                     hierarchyMeaning, valueSet, property, filter, supplements, and each
                     concept's code, display, designation, property, concept (nested)
                     (definitions and narrative left out, to keep the file small);
                   ValueSet: url, version, name, title, status, compose ],
    "bindings": { "Patient.gender": "http://hl7.org/fhir/ValueSet/administrative-gender", ... }
                   # every element of a base resource or data type typed `code`, `Coding` or
                   # `CodeableConcept` whose binding is `required` (value set url, no version)
  }
"""

import os
import sys

# The package reading and the reproducible gzip writing of the definitions' generator.
from generate import bundle_resources, write_gzipped

BUNDLES = ("Bundle-valuesets.json", "Bundle-v3-valuesets.json", "Bundle-v2-valuesets.json")
CODE_SYSTEM_KEYS = (
    "resourceType", "url", "version", "name", "title", "status", "content", "caseSensitive",
    "hierarchyMeaning", "valueSet", "property", "filter", "supplements",
)
VALUE_SET_KEYS = ("resourceType", "url", "version", "name", "title", "status", "compose")
CODED = {"code", "Coding", "CodeableConcept"}


def concept(c):
    out = {k: c[k] for k in ("code", "display", "designation", "property") if k in c}
    if "concept" in c:
        out["concept"] = [concept(x) for x in c["concept"]]
    return out


def reduced(resource):
    if resource["resourceType"] == "CodeSystem":
        out = {k: resource[k] for k in CODE_SYSTEM_KEYS if k in resource}
        if "concept" in resource:
            out["concept"] = [concept(c) for c in resource["concept"]]
        return out
    return {k: resource[k] for k in VALUE_SET_KEYS if k in resource}


def bindings(package):
    out = {}
    for bundle in ("Bundle-types.json", "Bundle-resources.json"):
        for sd in bundle_resources(package, bundle):
            if sd.get("resourceType") != "StructureDefinition":
                continue
            if sd.get("derivation", "specialization") != "specialization":
                continue
            for el in sd.get("snapshot", {}).get("element", []):
                binding = el.get("binding", {})
                types = {t["code"] for t in el.get("type", [])}
                if binding.get("strength") != "required" or not binding.get("valueSet"):
                    continue
                if not types or not types <= CODED:
                    continue
                out[el["path"]] = binding["valueSet"].split("|")[0]
    return out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    package = argv[1]
    output = argv[2] if len(argv) > 2 else os.path.join(os.path.dirname(__file__), "r4-terminology.json.gz")
    resources = {}
    for bundle in BUNDLES:
        for r in bundle_resources(package, bundle):
            if r.get("resourceType") in ("CodeSystem", "ValueSet") and r.get("url"):
                resources[(r["resourceType"], r["url"])] = reduced(r)
    data = {
        "format": 1,
        "fhirVersion": "4.0.1",
        "resources": [resources[k] for k in sorted(resources)],
        "bindings": bindings(package),
    }
    raw, gzipped = write_gzipped(output, data)
    print(
        f"{output}: {len(data['resources'])} code systems and value sets, {len(data['bindings'])} required "
        f"bindings, {raw} bytes, {gzipped} gzipped"
    )


if __name__ == "__main__":
    main(sys.argv)
