# Sourced by the suites that need PostgreSQL: a throwaway server of
# Debian's postgresql (initdb in a temporary folder, as the postgres user),
# listening only on a UNIX socket inside that folder; with PG_TCP=1 also on
# 127.0.0.1 at a free port. pg_start makes the folder (mktemp, owned by
# postgres: the suites' own folders are root's 0700) and starts it; pg_stop
# stops it and removes the folder (call it from the suite's EXIT trap: it is
# safe to call twice or when nothing started).
# pg_url DB: a connection string for database DB (made when missing).
# With PG_SSL_DIR set (server.crt and server.key there), the server also takes
# TLS (ssl = on) with that certificate.
PG_DIR=
PG_BIN=
PG_PORT=5432
pg_bin() {
    v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
    [ -n "$v" ] && [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ] || return 1
    PG_BIN=/usr/lib/postgresql/$v/bin
}
pg_as() { runuser -u postgres -- "$@"; }

# pg_start [extra postgresql.conf lines]: 0 when the server accepts connections.
pg_start() {
    pg_bin || { echo "pg: postgresql is not installed (make deps)"; return 1; }
    PG_DIR=$(mktemp -d /tmp/moat-pg.XXXXXX) || return 1
    chown postgres "$PG_DIR" && chmod 0700 "$PG_DIR" || return 1
    pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -E UTF8 --locale=C.UTF-8 -U postgres \
        --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 || {
        cat "$PG_DIR/initdb.log"
        return 1
    }
    # a role that must give its password (scram over the socket): first in pg_hba.conf
    printf 'local all moatpw scram-sha-256\n%s\n' "$(cat "$PG_DIR/data/pg_hba.conf")" \
        >"$PG_DIR/hba.tmp" && mv "$PG_DIR/hba.tmp" "$PG_DIR/data/pg_hba.conf" &&
        chown postgres "$PG_DIR/data/pg_hba.conf"
    listen="''"
    if [ "${PG_TCP:-0}" = 1 ]; then
        PG_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        listen="'127.0.0.1'"
    fi
    {
        echo "listen_addresses = $listen"
        echo "port = $PG_PORT"
        echo "unix_socket_directories = '$PG_DIR'"
        echo "max_connections = 300"
        echo "fsync = on"
        echo "log_min_messages = warning"
        [ $# -gt 0 ] && printf '%s\n' "$@"
    } >>"$PG_DIR/data/postgresql.conf"
    if [ -n "${PG_SSL_DIR:-}" ]; then
        install -o postgres -m 0600 "$PG_SSL_DIR/server.key" "$PG_DIR/data/server.key" &&
            install -o postgres -m 0644 "$PG_SSL_DIR/server.crt" "$PG_DIR/data/server.crt" || return 1
        echo "ssl = on" >>"$PG_DIR/data/postgresql.conf"
    fi
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
        >/dev/null 2>&1 || {
        tail -20 "$PG_DIR/server.log"
        return 1
    }
    PGHOST=$PG_DIR
    export PGHOST
}

pg_stop() {
    [ -n "$PG_DIR" ] || return 0
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1
    fi
    rm -rf "$PG_DIR"
    PG_DIR=
}

# psql as postgres on the throwaway server: pg_sql DB SQL
pg_sql() {
    pg_as "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -d "$1" -c "$2"
}

# pg_url DB: the conninfo of database DB (created when missing), as postgres over the socket.
pg_url() {
    if [ -z "$(pg_sql postgres "SELECT 1 FROM pg_database WHERE datname = '$1'")" ]; then
        pg_sql postgres "CREATE DATABASE $1" >/dev/null || return 1
    fi
    echo "host=$PG_DIR port=$PG_PORT user=postgres dbname=$1"
}
