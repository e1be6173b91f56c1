#!/usr/bin/env python3
"""The Entra app roles deploy/azure/entra-app-roles.sh creates (deploy/azure/app-roles.json) are
exactly the roles the shipped policy sets it names grant (`Fhir::Role::"..."` outside comments
in policies/sets/<set>/*.cedar), each under the set that grants it, and every role those sets'
tests give a token that is allowed (`"roles": [...]` in policies/sets/<set>/tests/*.json) is one of them.
A role given as `"set": "config:<section>.<key>"` is checked against that setting's list in
deploy/fhirgate.example.toml instead (smartLauncher: smart.proxy.launch_roles).
Exits 1 naming each difference."""
import json
import pathlib
import re
import sys
import tomllib

root = pathlib.Path(__file__).resolve().parent.parent
spec = json.loads((root / "deploy/azure/app-roles.json").read_text())
role_ref = re.compile(r'Fhir::Role::"([A-Za-z0-9_]+)"')
errors = []

example = tomllib.loads((root / "deploy/fhirgate.example.toml").read_text())
declared = {}
for role in spec["roles"]:
    if role["set"].startswith("config:"):
        value = example
        for key in role["set"].removeprefix("config:").split("."):
            value = value.get(key, {}) if isinstance(value, dict) else {}
        if not isinstance(value, list) or role["value"] not in value:
            errors.append(f"app-roles.json: role {role['value']} is not in {role['set']} of deploy/fhirgate.example.toml")
        continue
    if role["value"] in declared:
        errors.append(f"app-roles.json: role {role['value']} twice")
    declared[role["value"]] = role["set"]
if len({r["id"] for r in spec["roles"]}) != len(spec["roles"]):
    errors.append("app-roles.json: two roles share an id")

granted, tested = {}, set()
for set_name in spec["sets"]:
    set_dir = root / "policies/sets" / set_name
    files = sorted(set_dir.glob("*.cedar"))
    if not files:
        errors.append(f"policies/sets/{set_name} has no .cedar files")
    for path in files:
        for line in path.read_text().splitlines():
            code = line.split("//", 1)[0]
            for name in role_ref.findall(code):
                granted.setdefault(name, set_name)
    for path in sorted((set_dir / "tests").glob("*.json")):
        for case in json.loads(path.read_text()).get("cases", []):
            # Cases that expect a denial may use unknown roles on purpose.
            if case.get("expect") == "allow":
                tested.update(case.get("claims", {}).get("roles", []))

for name in sorted(set(granted) - set(declared)):
    errors.append(f"policies/sets/{granted[name]} grants role {name}, app-roles.json lacks it")
for name in sorted(set(declared) - set(granted)):
    errors.append(f"app-roles.json has role {name}, no set of {spec['sets']} grants it")
for name in sorted(set(granted) & set(declared)):
    if granted[name] != declared[name]:
        errors.append(f"role {name}: app-roles.json says set {declared[name]}, granted in {granted[name]}")
for name in sorted(tested - set(declared)):
    errors.append(f"the tests of {spec['sets']} allow a token with role {name}, app-roles.json lacks it")

if errors:
    print("app roles and policy sets differ:\n  " + "\n  ".join(errors), file=sys.stderr)
    sys.exit(1)
config_roles = sorted(r["value"] for r in spec["roles"] if r["set"].startswith("config:"))
print(f"app roles match the policy sets {', '.join(spec['sets'])}: {', '.join(sorted(declared))}"
      f"; and settings: {', '.join(config_roles)}")
