# Policy deltas by revision (issue 17): GET /agents/policy?delta=1 through
# random changes on every write path (tests/api/delta.py checks full(R) +
# delta(R -> now) == full(now) at many revisions, sharing, bad values), then
# a restart: the history is the process's, so a delta from before it is
# answered in full. Sourced by tests/api/run.sh (its helpers and $T, $S).
#
# Each revision's answer is built from the last one (server/polbuild.c: only
# records whose stored text changed are parsed). The server runs with
# MOAT_POLICY_VERIFY=1, so every such build is compared with one from
# scratch: a write the incremental build missed shows as "DIFFERS" in its
# log. A record changed behind the server's back (in the database, not
# through it) must show at the next revision, and the answer after a restart
# (built from scratch) must be the same bytes as the one before it.
DATA=$T/delta
mkdir -p "$DATA"
D_ADMIN=$("$S" token create $(store_opt "$DATA") --role admin)
SERVER_ARGS=
MOAT_POLICY_VERIFY=1
export MOAT_POLICY_VERIFY
if start; then ok "delta: server starts"; else nok "delta: server starts" "$(cat "$T/log")"; fi
/usr/bin/python3 "$HERE/delta.py" "$URL" "$D_ADMIN" 17 "$T/delta.state" >"$T/delta.out" 2>&1
D_RC=$?
while IFS= read -r line; do
    case "$line" in
    "ok "*) ok "${line#ok }" ;;
    "FAIL "*) nok "${line#FAIL }" "see above" ;;
    esac
done <"$T/delta.out"
grep -q '^delta.py: ' "$T/delta.out" || nok "delta: the driver ran to its end" "rc $D_RC: $(tail -5 "$T/delta.out")"
read -r D_REV D_AG <"$T/delta.state" 2>/dev/null || D_REV=
# every build checked against one from scratch
D_SAME=$(grep -c '^moat-server: policy verify: .* same' "$T/log")
D_DIFF=$(grep -c 'policy verify: .* DIFFERS' "$T/log")
if [ "$D_SAME" -gt 1000 ] && [ "$D_DIFF" -eq 0 ]; then
    ok "delta: every answer built from the last one equals one built from scratch ($D_SAME builds)"
else
    nok "delta: every answer built from the last one equals one built from scratch" \
        "$D_SAME same, $D_DIFF differ: $(grep -m3 'DIFFERS\|no scratch' "$T/log")"
fi
# a workload record changed in the database itself, not through the server: the next
# revision's answer has it (nothing is trusted but the stored text)
if [ -n "$D_REV" ]; then
    D_SQL="UPDATE workloads SET doc = replace(doc, '\"namespace\":\"ns\"', '\"namespace\":\"behind\"') WHERE id = (SELECT max(id) FROM workloads)"
    [ "$STORE" = sqlite ] || D_SQL=$(echo "$D_SQL" | sed 's/replace(doc,/replace(doc::text,/; s/) WHERE/)::json WHERE/')
    if [ "$STORE" = sqlite ]; then
        /usr/bin/python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=30); c.execute(sys.argv[2]); c.commit()" "$DATA/moat.db" "$D_SQL"
    else
        pg_sql "moat_$(basename "$DATA")" "$D_SQL"
    fi
    req PATCH /api/v1/clusters/dl '{"description":"after a write behind the server"}' "$D_ADMIN"
    req GET "/api/v1/agents/policy?revision=0" "" "$D_AG"
    check "delta: a record changed in the database itself shows at the next revision" 200 \
        "max(j['workloads'], key=lambda w: w['id'])['namespace'] == 'behind'"
    curl -s -o "$T/delta.before" -H "Authorization: Bearer $D_AG" "$URL/api/v1/agents/policy?revision=0"
fi
D_DIFF=$(grep -c 'policy verify: .* DIFFERS' "$T/log")
if [ "$D_DIFF" -eq 0 ]; then ok "delta: ... and no build differed from one from scratch"; else nok "delta: ... and no build differed from one from scratch" "$(grep -m3 DIFFERS "$T/log")"; fi
if stop; then ok "delta: clean shutdown"; else nok "delta: clean shutdown" "$(tail -20 "$T/log")"; fi
if [ -n "$D_REV" ] && start; then
    req GET "/api/v1/agents/policy?revision=$D_REV&wait=0&delta=1" "" "$D_AG"
    check "delta: after a restart, a revision from before is answered in full" 200 \
        "j['delta'] is False and j['revision'] > $D_REV and 'since' not in j"
    req GET "/api/v1/agents/policy?revision=$D_REV&wait=0" "" "$D_AG"
    check "delta: ... and without delta=1 as before" 200 "'delta' not in j and j['revision'] > $D_REV"
    curl -s -o "$T/delta.after" -H "Authorization: Bearer $D_AG" "$URL/api/v1/agents/policy?revision=0"
    if [ -s "$T/delta.before" ] && cmp -s "$T/delta.before" "$T/delta.after"; then
        ok "delta: the answer after a restart (from scratch) is the same bytes as before it"
    else
        nok "delta: the answer after a restart (from scratch) is the same bytes as before it" \
            "$(wc -c <"$T/delta.before") vs $(wc -c <"$T/delta.after") bytes"
    fi
    if stop; then ok "delta: clean shutdown after the restart"; else nok "delta: clean shutdown after the restart" "$(tail -20 "$T/log")"; fi
else
    nok "delta: restart" "no state from delta.py or the server did not start"
fi
unset MOAT_POLICY_VERIFY
