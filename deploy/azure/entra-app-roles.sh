#!/usr/bin/env bash
# Registers (or updates) the fhirgate API application in Microsoft Entra ID:
#   - the app roles of app-roles.json (exactly the roles the shipped policy sets grant:
#     microsoft-roles and consent; and smartLauncher, smart.proxy.launch_roles' default, for EHRs
#     registering SMART launches; scripts/check-app-roles.py keeps them in step),
#   - the identifier URI (default api://fhirgate) and the delegated scopes SMART apps ask for,
#     named as fhirgate's SMART proxy asks for them: `patient.Observation.rs`, `user.all.read`, ...
#     (`<context>.<type or all>.<cruds letters, read, write or all>`),
#   - v2 access tokens (issuer https://login.microsoftonline.com/<tenant>/v2.0),
#   - a service principal, with app role assignment required,
# and, with --assign, gives a user or group one of the roles. Re-running it updates in place:
# role and scope ids are fixed (roles) or derived from the scope name (scopes).
#
# Usage:
#   entra-app-roles.sh [--name fhirgate] [--identifier-uri api://fhirgate]
#   entra-app-roles.sh --assign ROLE --user alice@contoso.org   (or --group "FHIR readers", an
#                                                                object id works for both)
#   entra-app-roles.sh --preauthorize-azure-cli   lets the Azure CLI ask for the scope
#       user.all.read without a consent prompt, so that `az account get-access-token --scope
#       <identifier-uri>/user.all.read` gives a token for trying the API (the quickstart's)
# Needs: az (logged in with `az login`, rights to register applications), python3.
# Prints the application (client) id and the settings for fhirgate's [[auth.issuers]].
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
roles_file="$here/app-roles.json"
name="fhirgate"
identifier_uri="api://fhirgate"
assign_role=""
user=""
group=""
preauthorize_cli=""
# Microsoft's well-known application id of the Azure CLI.
azure_cli_app_id="04b07795-8ddb-461a-bbee-02f9e1bf7b46"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --identifier-uri) identifier_uri="$2"; shift 2 ;;
    --assign) assign_role="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --group) group="$2"; shift 2 ;;
    --preauthorize-azure-cli) preauthorize_cli=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done

command -v az >/dev/null || { echo "az (Azure CLI) is needed: https://aka.ms/azcli" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
tenant="$(az account show --query tenantId -o tsv)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The appRoles and oauth2PermissionScopes arrays, from app-roles.json.
python3 - "$roles_file" "$name" "$work" <<'PY'
import json, sys, uuid
spec = json.load(open(sys.argv[1]))
name, work = sys.argv[2], sys.argv[3]
roles = [{"id": r["id"], "value": r["value"], "displayName": r["displayName"],
          "description": r["description"], "allowedMemberTypes": r["allowedMemberTypes"],
          "isEnabled": True} for r in spec["roles"]]
json.dump(roles, open(f"{work}/roles.json", "w"))
namespace = uuid.UUID("0b5e7a52-6c7e-4d6f-8f3e-2f0c9d1a6e10")
scopes = []
for ctx in spec["scopeContexts"]:
    for rtype in spec["scopeResourceTypes"]:
        for perm in spec["scopePermissions"]:
            value = f"{ctx}.{rtype}.{perm}"
            what = "all resources" if rtype == "all" else f"{rtype} resources"
            who = "of the patient in context" if ctx == "patient" else "the signed-in user may reach"
            text = f"SMART {ctx}/{'*' if rtype == 'all' else rtype}.{perm}: {what} {who} ({perm})"
            scopes.append({"id": str(uuid.uuid5(namespace, value)), "value": value, "type": "User",
                           "isEnabled": True,
                           "adminConsentDisplayName": f"{name} {value}", "adminConsentDescription": text,
                           "userConsentDisplayName": f"{name} {value}", "userConsentDescription": text})
json.dump({"oauth2PermissionScopes": scopes, "requestedAccessTokenVersion": 2},
          open(f"{work}/api.json", "w"))
PY

app_id="$(az ad app list --display-name "$name" --query '[0].appId' -o tsv)"
if [ -z "$app_id" ]; then
  echo "registering application $name"
  app_id="$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --query appId -o tsv)"
else
  echo "updating application $name ($app_id)"
fi
object_id="$(az ad app show --id "$app_id" --query id -o tsv)"

az ad app update --id "$app_id" --identifier-uris "$identifier_uri" --app-roles "@$work/roles.json"
# Scopes go through Microsoft Graph: `az ad app update` has no flag for them. A scope still
# enabled cannot be removed in the same call, which only matters when scopes are dropped from
# app-roles.json (disable them first).
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
api = json.load(open(f"{work}/api.json"))
json.dump({"api": api}, open(f"{work}/patch.json", "w"))
PY
az rest --method PATCH --uri "https://graph.microsoft.com/v1.0/applications/$object_id" \
  --headers 'Content-Type=application/json' --body "@$work/patch.json"

if [ -n "$preauthorize_cli" ]; then
  # A second PATCH: the scope it names must exist first.
  python3 - "$work" "$azure_cli_app_id" <<'PY'
import json, sys
work, cli = sys.argv[1], sys.argv[2]
api = json.load(open(f"{work}/api.json"))
scope = next(s["id"] for s in api["oauth2PermissionScopes"] if s["value"] == "user.all.read")
json.dump({"api": {"preAuthorizedApplications": [{"appId": cli, "delegatedPermissionIds": [scope]}]}},
          open(f"{work}/preauthorize.json", "w"))
PY
  az rest --method PATCH --uri "https://graph.microsoft.com/v1.0/applications/$object_id" \
    --headers 'Content-Type=application/json' --body "@$work/preauthorize.json"
  echo "the Azure CLI may ask for $identifier_uri/user.all.read"
fi

sp_id="$(az ad sp list --filter "appId eq '$app_id'" --query '[0].id' -o tsv)"
if [ -z "$sp_id" ]; then
  sp_id="$(az ad sp create --id "$app_id" --query id -o tsv)"
fi
# Only users, groups and apps given a role get tokens for the API at all.
az ad sp update --id "$sp_id" --set appRoleAssignmentRequired=true

if [ -n "$assign_role" ]; then
  role_id="$(python3 -c 'import json,sys; print(next((r["id"] for r in json.load(open(sys.argv[1]))["roles"] if r["value"] == sys.argv[2]), ""))' "$roles_file" "$assign_role")"
  [ -n "$role_id" ] || { echo "no role $assign_role in $roles_file" >&2; exit 2; }
  if [ -n "$user" ]; then
    principal="$(az ad user show --id "$user" --query id -o tsv)"
  elif [ -n "$group" ]; then
    principal="$(az ad group show --group "$group" --query id -o tsv)"
  else
    echo "--assign needs --user or --group" >&2; exit 2
  fi
  python3 -c 'import json,sys; print(json.dumps({"principalId": sys.argv[1], "resourceId": sys.argv[2], "appRoleId": sys.argv[3]}))' \
    "$principal" "$sp_id" "$role_id" > "$work/assignment.json"
  az rest --method POST --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$sp_id/appRoleAssignedTo" \
    --headers 'Content-Type=application/json' --body "@$work/assignment.json" >/dev/null
  echo "assigned $assign_role to ${user:-$group}"
fi

cat <<OUT
application (client) id: $app_id
tenant id:               $tenant
fhirgate settings:
  [[auth.issuers]]
  issuer = "https://login.microsoftonline.com/$tenant/v2.0"
  audiences = ["$identifier_uri", "$app_id"]
OUT
