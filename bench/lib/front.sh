# shellcheck shell=bash
# Shared by bench/proxy.sh and bench/front-ab.sh (sourced, not run): a free local port, waiting
# for a server's /health, and the front's configuration — a local SQLite store of its own and a
# remote fhirgate behind the `remote` prefix, reached with a bearer token from a file.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_up HOST:PORT — up to 30 s, then the calling script exits.
wait_up() {
    for _ in $(seq 1 300); do
        curl -fsS "http://$1/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): $1 did not start" >&2
    exit 1
}

# front_config DIR REMOTE_PORT TOKEN — writes DIR/remote.token (TOKEN, mode 600) and
# DIR/fhirgate.toml.
front_config() {
    printf '%s\n' "$3" >"$1/remote.token"
    chmod 600 "$1/remote.token"
    cat >"$1/fhirgate.toml" <<TOML
[[targets]]
id = "local"
store = "sqlite:$1/fhirgate.db"

[[targets]]
id = "remote"
base_url = "http://127.0.0.1:$2"
credentials = "bearer-file"
bearer_file = "$1/remote.token"

[[routes]]
id = "remote"
prefix = "remote"
targets = ["remote"]

[[routes]]
id = "local"
targets = ["local"]
TOML
}
