# TLS (--tls-cert/--tls-key): sourced by tests/api/run.sh, whose helpers and
# counters it uses. Makes a self-signed certificate for 127.0.0.1 with the
# openssl CLI, serves HTTPS with it, and checks that curl --cacert works,
# that plain HTTP to the TLS port fails, and that bad certificate options
# stop the server with exit status 2 and a message naming the file.
if ! command -v openssl >/dev/null; then
    nok "tls: openssl CLI" "openssl is missing (make deps)"
else
    mkdir -p "$T/tls"
    if openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$T/tls/key.pem" -out "$T/tls/cert.pem" \
        >"$T/tls/openssl.log" 2>&1; then
        ok "tls: self-signed certificate made"
    else
        nok "tls: self-signed certificate made" "$(cat "$T/tls/openssl.log")"
    fi
    SERVER_ARGS="--tls-cert $T/tls/cert.pem --tls-key $T/tls/key.pem"
    if start; then
        ok "tls: server starts with --tls-cert/--tls-key"
    else
        nok "tls: server starts with --tls-cert/--tls-key" "$(cat "$T/log")"
    fi
    HTTPS=https://${URL#http://}
    code=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/cert.pem" \
        -H "Authorization: Bearer $ADMIN" "$HTTPS/api/v1/clusters")
    CODE=$code
    check "tls: curl --cacert over https" 200 "j['total'] >= 1"
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$HTTPS/healthz")
    if [ "$code" = 000 ]; then
        ok "tls: an unknown certificate is refused by the client"
    else
        nok "tls: an unknown certificate is refused by the client" "status $code"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$URL/healthz")
    if [ "$code" = 000 ] || [ "$code" -ge 400 ]; then
        ok "tls: plain http to the TLS port fails ($code)"
    else
        nok "tls: plain http to the TLS port fails" "status $code"
    fi
    if stop; then ok "tls: clean shutdown"; else nok "tls: clean shutdown" "$(tail -20 "$T/log")"; fi
    # tls_bad NAME ARGS...: the server refuses to start: exit 2 and a message naming the problem.
    tls_bad() {
        name=$1
        shift
        "$S" --listen 127.0.0.1:0 $(store_opt "$DATA") "$@" >"$T/tls/out" 2>&1 &
        bad=$!
        i=0
        while kill -0 "$bad" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.05
            i=$((i + 1))
        done
        if kill -0 "$bad" 2>/dev/null; then
            kill "$bad"
            wait "$bad"
            nok "tls: $name" "the server started: $(cat "$T/tls/out")"
            return
        fi
        wait "$bad"
        rc=$?
        if [ "$rc" -eq 2 ] && grep -q 'moat-server: --tls-' "$T/tls/out"; then
            ok "tls: $name: exit 2, $(head -n 1 "$T/tls/out")"
        else
            nok "tls: $name" "exit $rc: $(cat "$T/tls/out")"
        fi
    }
    tls_bad "missing certificate file" --tls-cert "$T/tls/nope.pem" --tls-key "$T/tls/key.pem"
    tls_bad "missing key file" --tls-cert "$T/tls/cert.pem" --tls-key "$T/tls/nope.pem"
    echo "not a certificate" >"$T/tls/junk.pem"
    tls_bad "a file that is not PEM" --tls-cert "$T/tls/junk.pem" --tls-key "$T/tls/key.pem"
    "$S" --listen 127.0.0.1:0 $(store_opt "$DATA") --tls-cert "$T/tls/cert.pem" >/dev/null 2>&1
    rc=$?
    if [ "$rc" -eq 2 ]; then ok "tls: --tls-cert without --tls-key is a usage error"; else nok "tls: --tls-cert without --tls-key is a usage error" "exit $rc"; fi
    SERVER_ARGS=""
fi
