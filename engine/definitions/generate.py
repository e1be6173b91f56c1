#!/usr/bin/env python3
"""Derive engine/definitions/r4.json.gz from the official FHIR R4 package.

Usage: generate.py PACKAGE_DIR [OUTPUT]
  PACKAGE_DIR  the extracted `package/` directory of hl7.fhir.r4.examples@4.0.1
               (scripts/fetch-r4-package.sh prints it)
  OUTPUT       defaults to r4.json.gz next to this script

Python 3 standard library only. The output is deterministic (sorted keys, fixed gzip
mtime), so regenerating from the same package gives the same bytes.

Format (version 1), all names as in the spec:
  {
    "format": 1,
    "fhirVersion": "4.0.1",
    "types": {                                   # base definitions only, no profiles
      "Patient": {
        "kind": "resource" | "complex-type" | "primitive-type",
        "abstract": true,                        # only when true
        "base": "DomainResource",                # absent for Element, Resource
        "regex": "...",                          # primitive types: the spec's regex
        "elements": [                            # snapshot order, root element left out
          # [path relative to the type, min, max ("*" or number), [type codes], extra]
          ["name", 0, "*", ["HumanName"]],
          ["deceased[x]", 0, 1, ["boolean", "dateTime"]],
          ["contact.id", 0, 1, ["string"], {"system": true}],
          ["name", 0, "*", ["HumanName"], {"summary": true}],   # isSummary
          ["item.item", 0, "*", [], {"ref": "#Questionnaire.item"}],
          ["gender", 0, 1, ["code"], {"codeSystem": "http://hl7.org/fhir/administrative-gender"}]
        ]
      }
    },
    "searchParams": [ {"url", "code", "base": [], "type", "expression"?, "target"?: [],
                       "multipleOr"?, "multipleAnd"?, "modifier"?: [], "comparator"?: [],
                       "component"?: [{"definition", "expression"}]} ],
    "compartments": { "Patient": { "Observation": ["subject", "performer"], ... } }
  }

Type codes of FHIRPath system types (http://hl7.org/fhirpath/System.String, used by Element.id
and Extension.url) are replaced by the FHIR type named in their structuredefinition-fhir-type
extension (or `string`) and the element is marked {"system": true}: in JSON such elements are
plain values and cannot carry a `_name` extension sibling. Resource.id, typed the same way in
the snapshots, is written as type `id` instead. The `value` elements of primitive
types are left out (primitives are checked by their regex, not by elements).

A `code` element with a required binding to a value set drawn from one code system records that
system ("codeSystem"): the search index gives such codes their system, so that
`gender=http://hl7.org/fhir/administrative-gender|male` matches as search.html asks.
"""

import gzip
import io
import json
import os
import sys

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}
KINDS = ("resource", "complex-type", "primitive-type")


def load(package, name):
    with open(os.path.join(package, name), encoding="utf-8") as f:
        return json.load(f)


def bundle_resources(package, name):
    return [e["resource"] for e in load(package, name).get("entry", []) if "resource" in e]


def write_gzipped(output, data):
    """Writes `data` as compact, key-sorted JSON, gzipped reproducibly (no name, no time);
    returns the JSON's and the file's sizes."""
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    with open(output, "wb") as f:
        f.write(buf.getvalue())
    return len(raw), len(buf.getvalue())


def element_types(el):
    """Type codes of an element, and whether it is a FHIRPath system type."""
    codes, system = [], False
    for t in el.get("type", []):
        code = t["code"]
        if code in SYSTEM_TYPES:
            system = True
            fhir_type = next(
                (x.get("valueUrl") for x in t.get("extension", []) if x.get("url") == FHIR_TYPE_EXT),
                None,
            )
            code = fhir_type or SYSTEM_TYPES[code]
        if code not in codes:
            codes.append(code)
    return codes, system


def primitive_regex(sd):
    for el in sd["snapshot"]["element"]:
        if el["path"] == sd["type"] + ".value":
            for t in el.get("type", []):
                for x in t.get("extension", []):
                    if x.get("url") == REGEX_EXT:
                        return x.get("valueString")
    return None


def code_systems(package):
    """ValueSet url -> the one code system its compose includes (value sets of several systems,
    or none, are left out)."""
    out = {}
    for bundle in ("Bundle-valuesets.json", "Bundle-v3-valuesets.json", "Bundle-v2-valuesets.json"):
        for vs in bundle_resources(package, bundle):
            if vs.get("resourceType") != "ValueSet":
                continue
            systems = {inc.get("system") for inc in vs.get("compose", {}).get("include", [])}
            if len(systems) == 1 and None not in systems:
                out[vs["url"]] = systems.pop()
    return out


def structure(sd, systems):
    name = sd["type"]
    out = {"kind": sd["kind"]}
    if sd.get("abstract"):
        out["abstract"] = True
    base = sd.get("baseDefinition")
    if base:
        out["base"] = base.rsplit("/", 1)[-1]
    if sd["kind"] == "primitive-type":
        regex = primitive_regex(sd)
        if regex:
            out["regex"] = regex
    elements = []
    for el in sd["snapshot"]["element"]:
        path = el["path"]
        if path == name:
            continue
        rel = path[len(name) + 1 :]
        if sd["kind"] == "primitive-type" and rel == "value":
            continue
        mx = el.get("max", "*")
        row = [rel, int(el.get("min", 0)), mx if mx == "*" else int(mx)]
        codes, system = element_types(el)
        if sd["kind"] == "resource" and rel == "id":
            # Resource.id is typed System.String in the R4 snapshots, but it is an `id`
            # (https://hl7.org/fhir/R4/resource.html#id) and a real element in JSON.
            codes, system = ["id"], False
        row.append(codes)
        extra = {}
        if "contentReference" in el:
            extra["ref"] = el["contentReference"]
        if system:
            extra["system"] = True
        if el.get("isSummary"):
            extra["summary"] = True
        binding = el.get("binding", {})
        if codes == ["code"] and binding.get("strength") == "required" and binding.get("valueSet"):
            code_system = systems.get(binding["valueSet"].split("|")[0])
            if code_system:
                extra["codeSystem"] = code_system
        if extra:
            row.append(extra)
        elements.append(row)
    out["elements"] = elements
    return out


def search_param(sp):
    out = {"url": sp["url"], "code": sp["code"], "base": sp["base"], "type": sp["type"]}
    for key in ("expression", "target", "multipleOr", "multipleAnd", "modifier", "comparator"):
        if key in sp:
            out[key] = sp[key]
    if "component" in sp:
        out["component"] = [
            {"definition": c["definition"], "expression": c["expression"]} for c in sp["component"]
        ]
    return out


def compartments(package):
    out = {}
    for fname in sorted(os.listdir(package)):
        if not (fname.startswith("CompartmentDefinition-") and fname.endswith(".json")):
            continue
        cd = load(package, fname)
        if cd.get("url", "").startswith("http://hl7.org/fhir/CompartmentDefinition/") and cd.get(
            "id"
        ) != "example":
            out[cd["code"]] = {
                r["code"]: r.get("param", []) for r in cd.get("resource", []) if r.get("param")
            }
    return out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    package = argv[1]
    output = argv[2] if len(argv) > 2 else os.path.join(os.path.dirname(__file__), "r4.json.gz")

    types = {}
    systems = code_systems(package)
    for bundle in ("Bundle-types.json", "Bundle-resources.json"):
        for sd in bundle_resources(package, bundle):
            if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") not in KINDS:
                continue
            if sd.get("derivation", "specialization") != "specialization":
                continue
            types[sd["type"]] = structure(sd, systems)

    params = [
        search_param(sp)
        for sp in bundle_resources(package, "Bundle-searchParams.json")
        if sp.get("resourceType") == "SearchParameter"
    ]
    params.sort(key=lambda p: p["url"])

    data = {
        "format": 1,
        "fhirVersion": "4.0.1",
        "types": types,
        "searchParams": params,
        "compartments": compartments(package),
    }
    raw, gzipped = write_gzipped(output, data)
    print(
        f"{output}: {len(types)} types, {len(params)} search parameters, "
        f"{len(data['compartments'])} compartments, {raw} bytes, {gzipped} gzipped"
    )


if __name__ == "__main__":
    main(sys.argv)
