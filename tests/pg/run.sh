#!/bin/sh
# PostgreSQL scale-out tests (SPEC §9): a throwaway PostgreSQL server
# (tests/pg/pg.sh), two moat-server replicas on one database on 127.0.0.1,
# and what they must agree on — a write through A read through B, a
# long-poll on B woken by a write through A within 1 s, concurrent creates
# of one name through both (exactly one wins), the revision counter under
# writes through both, kill -9 of A during writes and event batches (every
# acknowledged write kept, every batch counted once after the agents move to
# B, B keeps serving writes); moat and moatd's lists of servers; the
# password options; `moat-server migrate` of a populated SQLite install,
# checked field by field. Prints `ok NAME` per check and `N passed, N failed`.
# Usage: tests/pg/run.sh BUILD_DIR
set -u
B=${1:?build dir}
S=$B/moat-server
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d)
PASS=0
FAIL=0
PIDS=
PY=/usr/bin/python3
MOAT_POLICY_VERIFY=1 # every policy build compared with one from scratch (server/api_agents.c)
export MOAT_POLICY_VERIFY
. "$HERE/pg.sh"

cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    pg_stop
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() {
    PASS=$((PASS + 1))
    echo "ok $1"
}
nok() {
    FAIL=$((FAIL + 1))
    echo "FAIL $1: $2"
}
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit
}

[ -x "$S" ] || {
    echo "pg: $S is not built"
    FAIL=1
    finish
}
# TLS to the database: a CA of the test's own and a certificate for localhost
# (the server listens on 127.0.0.1 too), and another CA that did not sign it.
mkdir -p "$T/ssl"
(
    cd "$T/ssl" &&
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=moat-test-ca &&
        openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 2 -subj /CN=other-ca &&
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost &&
        printf 'subjectAltName=DNS:localhost\n' >ext &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext
) >"$T/ssl.log" 2>&1 || nok "test certificates" "$(cat "$T/ssl.log")"
PG_TCP=1
PG_SSL_DIR=$T/ssl
if ! pg_start >"$T/pg.log" 2>&1; then
    nok "a throwaway PostgreSQL starts" "$(tail -5 "$T/pg.log")"
    finish
fi
ok "a throwaway PostgreSQL starts (socket in $PG_DIR)"
pg_url moat_rep >/dev/null
DB="postgresql:///moat_rep?host=$PG_DIR&port=$PG_PORT&user=postgres"

# serve NAME ARGS...: starts a replica (its PID in PID_NAME, its URL in URL_NAME), bounded wait.
serve() {
    name=$1
    shift
    : >"$T/$name.log"
    "$S" --listen 127.0.0.1:0 "$@" >"$T/$name.log" 2>&1 &
    pid=$!
    PIDS="$PIDS $pid"
    eval "PID_$name=$pid"
    i=0
    port=
    while [ $i -lt 200 ]; do
        port=$(sed -n 's/^moat-server: listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$T/$name.log")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    eval "URL_$name=http://127.0.0.1:$port"
    [ -n "$port" ]
}
# stop_one NAME: SIGTERM and wait; true when it exited 0 without a sanitizer report.
stop_one() {
    eval "pid=\$PID_$1"
    kill "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$pid" | tr '\n' ' ')
    [ "$rc" -eq 0 ] && ! grep -q Sanitizer "$T/$1.log"
}
# api BASE METHOD PATH [BODY] [TOKEN]: status in $CODE, body in $T/out.
api() {
    CODE=$(curl -s -o "$T/out" -w '%{http_code}' -X "$2" -H "Authorization: Bearer ${5:-$ADMIN}" \
        -H 'Content-Type: application/json' ${4:+--data-binary "$4"} "$1$3")
}
jget() { $PY -c "import json,sys; j=json.load(open('$T/out')); print($1)"; }
expect() { # NAME CODE [PYTHON over j]
    if [ "$CODE" = "$2" ] && { [ -z "${3:-}" ] || $PY -c "import json,sys; j=json.load(open('$T/out')); sys.exit(0 if ($3) else 1)" 2>/dev/null; }; then
        ok "$1"
    else
        nok "$1" "status $CODE, wanted $2: $(head -c 400 "$T/out")"
    fi
}

# ---------- tokens, two replicas ----------
ADMIN=$("$S" token create --database "$DB" --role admin 2>"$T/err")
if [ -n "$ADMIN" ]; then ok "token create --database"; else nok "token create --database" "$(cat "$T/err")"; fi
if serve A --database "$DB" --heartbeat-interval 2 && serve B --database "$DB" --heartbeat-interval 2; then
    ok "two replicas serve one database"
else
    nok "two replicas serve one database" "$(cat "$T/A.log" "$T/B.log")"
    finish
fi
"$S" token list --database "$DB" >"$T/tokens" 2>&1
if grep -q "admin" "$T/tokens"; then ok "token list --database"; else nok "token list --database" "$(cat "$T/tokens")"; fi

api "$URL_A" POST /api/v1/clusters '{"name":"prod","defense":"on"}'
expect "a cluster created through A" 201
api "$URL_A" POST /api/v1/objects '{"name":"web","namespace":"shop","app":"web","labels":["tier=front"]}'
expect "an object created through A" 201
WEB=$(jget "j['id']")
api "$URL_B" GET "/api/v1/objects/$WEB"
expect "... is read through B" 200 "j['namespace'] == 'shop' and j['labels'] == ['tier=front']"
api "$URL_B" PATCH "/api/v1/objects/$WEB" '{"app":"web2"}'
expect "... changed through B" 200
api "$URL_A" GET "/api/v1/objects/$WEB"
expect "... and the change read through A" 200 "j['app'] == 'web2'"
api "$URL_B" GET /api/v1/clusters/prod
expect "the cluster's health through B" 200 "j['status'] == 'unknown'"

# ---------- propagation: a long-poll on B woken by a write through A ----------
if $PY "$HERE/replicas.py" wake "$URL_A" "$URL_B" "$ADMIN" prod >"$T/wake" 2>&1; then
    ok "a rule written through A wakes a long-poll held by B ($(cat "$T/wake" | $PY -c 'import json,sys; print("worst %.3f s" % json.load(sys.stdin)["worst_s"])'))"
else
    nok "a rule written through A wakes a long-poll held by B" "$(cat "$T/wake")"
fi
# a heartbeat through A: B's health view of the node follows (its fleet index, by notice)
api "$URL_A" POST /api/v1/clusters/prod/join-tokens '{"uses":1}'
JT=$(jget "j['join_token']")
api "$URL_B" POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"hb\",\"join_token\":\"$JT\"}" ""
expect "an agent registers through B" 201
AG=$(jget "j['token']")
api "$URL_A" POST /api/v1/agents/heartbeat '{"agent_version":"0.1.0","datapath":{"state":"enforcing","reason":""}}' "$AG"
expect "... its heartbeat goes to A" 200
i=0 # B learns of it by A's notice: bounded wait
while :; do
    api "$URL_B" GET '/api/v1/nodes?cluster=prod'
    jget "[n['state'] for n in j['items'] if n['name'] == 'hb']" 2>/dev/null | grep -q enforcing && break
    [ $i -ge 40 ] && break
    sleep 0.05
    i=$((i + 1))
done
expect "... and B shows the node enforcing (within $((i * 50)) ms)" 200 "[n['state'] for n in j['items'] if n['name'] == 'hb'] == ['enforcing']"
api "$URL_A" POST /api/v1/clusters/prod/join-tokens '{"uses":1}'
JT1=$(jget "j['join_token']")
api "$URL_A" POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"once-a\",\"join_token\":\"$JT1\"}" ""
expect "a join token of one use, spent through A" 201
api "$URL_B" POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"once-b\",\"join_token\":\"$JT1\"}" ""
expect "... is spent for B too" 401

# ---------- concurrency ----------
if $PY "$HERE/replicas.py" unique "$URL_A" "$URL_B" "$ADMIN" 30 >"$T/uniq" 2>&1; then
    ok "30 creates of one name through A and B at once: exactly one wins each time ($(cat "$T/uniq"))"
else
    nok "creates of one name through A and B at once: exactly one wins" "$(cat "$T/uniq")"
fi
api "$URL_A" POST /api/v1/clusters '{"name":"count"}'
if $PY "$HERE/replicas.py" revision "$URL_A" "$URL_B" "$ADMIN" count 25 >"$T/rev" 2>&1; then
    ok "rule writes through A and B at once: the revision moves once per write ($(cat "$T/rev"))"
else
    nok "rule writes through A and B at once: the revision moves once per write" "$(cat "$T/rev")"
fi

# ---------- the policy answer, built from the last one on each replica ----------
# Both replicas run with MOAT_POLICY_VERIFY=1 (every build compared with one from scratch).
if $PY "$HERE/replicas.py" policy "$URL_A" "$URL_B" "$ADMIN" pol 60 >"$T/pol" 2>&1; then
    ok "60 random writes through A and B by turns: both replicas' full answers are the same bytes after each ($(cat "$T/pol"))"
else
    nok "random writes through A and B by turns: both replicas' full answers are the same bytes after each" "$(cat "$T/pol")"
fi
P_DIFF=$(cat "$T/A.log" "$T/B.log" | grep -c 'policy verify: .* DIFFERS')
P_SAME=$(cat "$T/A.log" "$T/B.log" | grep -c 'policy verify: .* same')
if [ "$P_SAME" -ge 60 ] && [ "$P_DIFF" -eq 0 ]; then
    ok "... and every build on either equals one from scratch ($P_SAME builds)"
else
    nok "... and every build on either equals one from scratch" "$P_SAME same, $P_DIFF differ"
fi

# ---------- kill -9 of A during writes and event batches ----------
api "$URL_A" POST /api/v1/clusters '{"name":"crash","defense":"on"}'
if $PY "$HERE/replicas.py" crash "$URL_A" "$URL_B" "$ADMIN" crash "$PID_A" 60 >"$T/crash" 2>&1; then
    ok "kill -9 of A: every acknowledged write kept, every batch counted once through B ($(cat "$T/crash"))"
else
    nok "kill -9 of A: every acknowledged write kept, every batch counted once through B" "$(cat "$T/crash")"
fi
wait "$PID_A" 2>/dev/null
PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$PID_A" | tr '\n' ' ')
api "$URL_B" POST /api/v1/objects '{"name":"after-crash","namespace":"shop"}'
expect "B keeps serving writes after A is gone" 201
AFTER=$(jget "j['id']")

# ---------- the CLI and moatd with several servers ----------
if serve A --database "$DB" --heartbeat-interval 2; then ok "A serves again"; else nok "A serves again" "$(cat "$T/A.log")"; fi
DEAD=http://127.0.0.1:1 # nothing listens on port 1 here
if "$B/moat" object get "$AFTER" --server "$DEAD,$URL_B" --token "$ADMIN" -o json >"$T/cli" 2>"$T/clierr" &&
    grep -q '"after-crash"' "$T/cli"; then
    ok "moat --server DEAD,B: the first reachable answers"
else
    nok "moat --server DEAD,B: the first reachable answers" "$(cat "$T/cli" "$T/clierr")"
fi
if ! "$B/moat" object get web --server "$DEAD,http://127.0.0.1:2" --token "$ADMIN" >/dev/null 2>"$T/clierr" &&
    grep -q "127.0.0.1:2" "$T/clierr"; then
    ok "moat: none reachable: exit 1 naming the last tried"
else
    nok "moat: none reachable: exit 1 naming the last tried" "$(cat "$T/clierr")"
fi
if [ -x "$B/moatd" ]; then
    "$B/moatd" --server "http://127.0.0.1:1,ftp://x" --cluster prod --join-token x --node n >/dev/null 2>"$T/derr"
    rc=$?
    if [ "$rc" = 2 ] && grep -q -- "--server: must start with http" "$T/derr"; then
        ok "moatd --server: every URL of the list is checked"
    else
        nok "moatd --server: every URL of the list is checked" "rc $rc: $(cat "$T/derr")"
    fi
fi

# ---------- the database restarts under both replicas ----------
if pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 restart >"$T/restart.log" 2>&1; then
    ok "the database restarts"
else
    nok "the database restarts" "$(cat "$T/restart.log")"
fi
api "$URL_A" POST /api/v1/objects '{"name":"after-restart","namespace":"shop"}'
expect "A writes again after the database restarted (its connection made anew)" 201
RESTARTED=$(jget "j['id']")
api "$URL_B" GET "/api/v1/objects/$RESTARTED"
expect "... B reads it (its pooled connections made anew)" 200
# B's listening connection comes back by itself (a back-off of at most 5 s): the next
# rule through A wakes B's long-poll again
if $PY "$HERE/replicas.py" wake "$URL_A" "$URL_B" "$ADMIN" prod 20 >"$T/wake2" 2>&1; then
    ok "after the restart a write through A still wakes a long-poll on B"
else
    nok "after the restart a write through A still wakes a long-poll on B" "$(cat "$T/wake2")"
fi

# ---------- the password options ----------
pg_sql postgres "CREATE ROLE moatpw LOGIN PASSWORD 's3cret-pw'" >/dev/null
pg_sql postgres "CREATE DATABASE moat_pw OWNER moatpw" >/dev/null
PWDB="postgresql:///moat_pw?host=$PG_DIR&port=$PG_PORT&user=moatpw"
printf 's3cret-pw\n' >"$T/pw"
chmod 600 "$T/pw"
if "$S" token create --database "$PWDB" --database-password-file "$T/pw" --role viewer >/dev/null 2>"$T/err"; then
    ok "--database-password-file"
else
    nok "--database-password-file" "$(cat "$T/err")"
fi
printf 'wrong\n' >"$T/pw2"
chmod 600 "$T/pw2"
if ! "$S" token create --database "$PWDB" --database-password-file "$T/pw2" --role viewer >/dev/null 2>"$T/err" &&
    grep -q "password authentication failed" "$T/err" && ! grep -q wrong "$T/err"; then
    ok "a wrong password: refused, said, not printed"
else
    nok "a wrong password: refused, said, not printed" "$(cat "$T/err")"
fi
printf '*:*:*:moatpw:s3cret-pw\n' >"$T/pgpass"
chmod 600 "$T/pgpass"
if PGPASSFILE=$T/pgpass "$S" token list --database "$PWDB" >"$T/out" 2>"$T/err" && grep -q viewer "$T/out"; then
    ok "PGPASSFILE"
else
    nok "PGPASSFILE" "$(cat "$T/err")"
fi
: >"$T/pw3"
if ! "$S" token list --database "$PWDB" --database-password-file "$T/pw3" >/dev/null 2>"$T/err" &&
    grep -q "database-password-file.*empty" "$T/err"; then
    ok "an empty password file: usage error naming the option"
else
    nok "an empty password file: usage error naming the option" "$(cat "$T/err")"
fi
if ! "$S" token list --data "$T/x" --database "$DB" >/dev/null 2>"$T/err" && grep -q "one of --data" "$T/err"; then
    ok "--data and --database together: refused"
else
    nok "--data and --database together: refused" "$(cat "$T/err")"
fi

# ---------- TLS to the database (sslmode passes through to libpq) ----------
TLSDB="postgresql://moatpw@localhost:$PG_PORT/moat_pw?sslmode=verify-full&sslrootcert=$T/ssl/ca.crt"
if "$S" token list --database "$TLSDB" --database-password-file "$T/pw" >"$T/out" 2>"$T/err" && grep -q viewer "$T/out"; then
    ok "sslmode=verify-full with the CA that signed the server's certificate"
else
    nok "sslmode=verify-full with the CA that signed the server's certificate" "$(cat "$T/err")"
fi
if ! "$S" token list --database "postgresql://moatpw@localhost:$PG_PORT/moat_pw?sslmode=verify-full&sslrootcert=$T/ssl/other.crt" \
    --database-password-file "$T/pw" >/dev/null 2>"$T/err" && grep -q "certificate verify failed" "$T/err"; then
    ok "sslmode=verify-full with another CA: refused"
else
    nok "sslmode=verify-full with another CA: refused" "$(cat "$T/err")"
fi
if ! "$S" token list --database "postgresql://moatpw@127.0.0.1:$PG_PORT/moat_pw?sslmode=verify-full&sslrootcert=$T/ssl/ca.crt" \
    --database-password-file "$T/pw" >/dev/null 2>"$T/err" && grep -q "does not match host name" "$T/err"; then
    ok "sslmode=verify-full to a name the certificate does not hold: refused"
else
    nok "sslmode=verify-full to a name the certificate does not hold: refused" "$(cat "$T/err")"
fi

# ---------- migrate a populated SQLite install ----------
. "$HERE/migrate.sh"

stop_one B && ok "B: clean shutdown" || nok "B: clean shutdown" "$(tail -20 "$T/B.log")"
stop_one A && ok "A: clean shutdown" || nok "A: clean shutdown" "$(tail -20 "$T/A.log")"
finish
