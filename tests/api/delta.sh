# Policy deltas by revision (issue 17): GET /agents/policy?delta=1 through
# random changes on every write path (tests/api/delta.py checks full(R) +
# delta(R -> now) == full(now) at many revisions, sharing, bad values), then
# a restart: the history is the process's, so a delta from before it is
# answered in full. Sourced by tests/api/run.sh (its helpers and $T, $S).
DATA=$T/delta
mkdir -p "$DATA"
D_ADMIN=$("$S" token create $(store_opt "$DATA") --role admin)
SERVER_ARGS=
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
if stop; then ok "delta: clean shutdown"; else nok "delta: clean shutdown" "$(tail -20 "$T/log")"; fi
if [ -n "$D_REV" ] && start; then
    req GET "/api/v1/agents/policy?revision=$D_REV&wait=0&delta=1" "" "$D_AG"
    check "delta: after a restart, a revision from before is answered in full" 200 \
        "j['delta'] is False and j['revision'] > $D_REV and 'since' not in j"
    req GET "/api/v1/agents/policy?revision=$D_REV&wait=0" "" "$D_AG"
    check "delta: ... and without delta=1 as before" 200 "'delta' not in j and j['revision'] > $D_REV"
    if stop; then ok "delta: clean shutdown after the restart"; else nok "delta: clean shutdown after the restart" "$(tail -20 "$T/log")"; fi
else
    nok "delta: restart" "no state from delta.py or the server did not start"
fi
