#!/usr/bin/env bash
# Runs the command given as arguments with FHIRGATE_TEST_POSTGRES_URL pointing at a throwaway
# PostgreSQL 15 cluster (trust auth on 127.0.0.1, fsync off), then stops the cluster and removes
# its directory. With FHIRGATE_TEST_POSTGRES_URL already set, it just runs the command.
# FHIRGATE_TEST_POSTGRES_SETTINGS adds server settings (`-c name=value ...`), e.g. a benchmark's
# `-c shared_buffers=4GB`.
#
#   bash scripts/with-postgres.sh cargo test -p fhirgate-postgres
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

if [ -n "${FHIRGATE_TEST_POSTGRES_URL:-}" ]; then
    exec "$@"
fi

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "with-postgres: installing postgresql" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2 \
            || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; }
        # Another Debian version may bring another major version: take the one installed.
        if [ ! -x "$PG_BIN/initdb" ]; then
            PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
        fi
    fi
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
        echo "with-postgres: PostgreSQL server binaries not found in /usr/lib/postgresql/15/bin;" >&2
        echo "install them (Debian/Ubuntu: apt-get install postgresql) or set FHIRGATE_TEST_POSTGRES_URL" >&2
        exit 1
    fi
fi

# initdb refuses to run as root: run the cluster as an unprivileged user.
as_owner() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        echo "with-postgres: running as root but there is no \`postgres\` user to own the cluster" >&2
        exit 1
    fi
    as_owner() { runuser -u postgres -- "$@"; }
fi

# A free port: ask the kernel for one, then let it go (a small race, fine for tests). Without
# python3, a random high port nothing answers on.
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}
PORT="$(free_port)"

DIR="$(mktemp -d /tmp/fhirgate-pg.XXXXXX)"
chmod 700 "$DIR"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DIR"; fi

cleanup() {
    local status=$?
    as_owner "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_owner "$PG_BIN/initdb" -D "$DIR/data" --auth=trust --username=postgres --encoding=UTF8 --no-locale \
    >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
server_options="-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
server_options+=" -c full_page_writes=off -c max_connections=200 ${FHIRGATE_TEST_POSTGRES_SETTINGS:-}"
if ! as_owner "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/data/log" -w -t 30 start -o "$server_options" \
    >/dev/null; then
    cat "$DIR/data/log" >&2 || true
    exit 1
fi
as_owner "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres fhirgate_test

export FHIRGATE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/fhirgate_test"
# For tests that stop and restart the server: `$FHIRGATE_TEST_POSTGRES_CTL stop|start`.
ctl="$DIR/pg-ctl"
{
    echo '#!/usr/bin/env bash'
    if [ "$(id -u)" -eq 0 ]; then printf 'exec runuser -u postgres -- '; else printf 'exec '; fi
    echo "\"$PG_BIN/pg_ctl\" -D \"$DIR/data\" -l \"$DIR/data/log\" -w -t 30 -m fast -o \"$server_options\" \"\$@\""
} >"$ctl"
chmod 755 "$ctl"
export FHIRGATE_TEST_POSTGRES_CTL="$ctl"
echo "with-postgres: PostgreSQL on 127.0.0.1:$PORT (cluster in $DIR)" >&2
"$@"
