# Detections kept by the server (issue 11): quarantines nodes report, listed per address and
# released on every node; each cluster's threat list, uploaded as text. Sourced by
# tests/api/run.sh in its main run (its helpers req, check, jget, err_field; $ADMIN,
# $VIEWER; node-1 and node-2 of cluster prod with credentials $AG1 and $AG2).

# treq METHOD PATH FILE CONTENT_TYPE [TOKEN]: req with a file body of another media type.
treq() {
    CODE=$(curl -s -o "$T/out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer ${5-$ADMIN}" \
        -H "Content-Type: $4" --data-binary @"$3" "$URL$2")
}
# revision TOKEN: the cluster revision the agent's policy answer has now.
revision() {
    req GET /api/v1/agents/policy "" "$1"
    jget "j['revision']"
}
soon=$(day '+1 hour')
later=$(day '+2 hours')
past=$(day '-1 hour')

# ---- quarantines ----
# A node's report is spread only as far as the cluster's settings go: prod's brute force and
# port scans block and quarantine for 4 hours (the defaults alert only).
req PATCH /api/v1/clusters/prod '{"detections":{"brute_force":{"action":"block","quarantine":14400},"port_scan":{"action":"block","quarantine":14400}}}'
check "quarantines: prod's brute force and port scans quarantine for 4 hours" 200 "j['defense'] == 'on' and j['detections']['port_scan']['quarantine'] == 14400"
req GET /api/v1/clusters/prod/quarantines "" "$VIEWER"
check "quarantines: none at first (viewer reads)" 200 "j == {'items': [], 'total': 0}"
req GET /api/v1/clusters/nope/quarantines
check "quarantines: unknown cluster 404" 404
req PUT /api/v1/agents/quarantines '{"quarantines":[]}' "$ADMIN"
check "quarantines: a report needs an agent credential" 403
req PUT /api/v1/agents/quarantines '{"quarantines":{}}' "$AG1"
check "quarantines: a report is a list" 400 "$(err_field quarantines)"
req PUT /api/v1/agents/quarantines '{"quarantines":[],"colour":1}' "$AG1"
check "quarantines: unknown field 400" 400 "$(err_field colour)"
req PUT /api/v1/agents/quarantines '{"quarantines":[],"cluster":"dev"}' "$AG1"
check "quarantines: another cluster 403" 403 "$(err_field cluster)"
BAD="{\"quarantines\":[{\"address\":\"10.9.9.300\",\"reason\":\"brute_force\",\"since\":\"$past\",\"until\":\"$soon\"},
 {\"address\":\"10.9.9.9\",\"reason\":\"fun\",\"since\":\"$past\",\"until\":\"$soon\"},
 {\"address\":\"10.9.9.9\",\"reason\":\"port_scan\",\"since\":\"soon\",\"until\":\"$soon\"},
 {\"address\":\"10.9.9.9\",\"reason\":\"port_scan\",\"since\":\"$soon\",\"until\":\"$past\"},
 {\"address\":\"10.9.9.9\",\"reason\":\"port_scan\",\"since\":\"$past\",\"until\":\"$soon\",\"x\":1}, 7]}"
req PUT /api/v1/agents/quarantines "$BAD" "$AG1"
check "quarantines: every bad entry named" 400 "[e['field'] for e in j['errors']] == ['quarantines[0].address', 'quarantines[1].reason', 'quarantines[2].since', 'quarantines[3].until', 'quarantines[4].x', 'quarantines[5]']"
/usr/bin/python3 -c "
import json
e = {'address': '10.9.9.9', 'reason': 'port_scan', 'since': '$past', 'until': '$soon'}
print(json.dumps({'quarantines': [e] * 10001}))" >"$T/q-many"
req PUT /api/v1/agents/quarantines "@$T/q-many" "$AG1"
check "quarantines: at most 10,000 in a report" 400 "$(err_field quarantines)"
req GET /api/v1/clusters/prod/quarantines
check "quarantines: refused reports stored nothing" 200 "j['total'] == 0"
R0=$(revision "$AG1")
REPORT1="{\"quarantines\":[{\"address\":\"10.9.9.9\",\"reason\":\"brute_force\",\"since\":\"$past\",\"until\":\"$soon\"},
 {\"address\":\"2001:DB8:0::7\",\"reason\":\"port_scan\",\"since\":\"$past\",\"until\":\"$later\"},
 {\"address\":\"10.9.9.10\",\"reason\":\"port_scan\",\"since\":\"$past\",\"until\":\"$past\"}]}"
req PUT /api/v1/agents/quarantines "$REPORT1" "$AG1"
check "quarantines: node-1's report" 200 "j == {'quarantines': 3, 'changed': True, 'ignored': 0, 'not_spread': []}"
R1=$(revision "$AG1")
[ "$R1" -gt "$R0" ] && ok "quarantines: a changed report moves the revision" || nok "quarantines: a changed report moves the revision" "$R0 -> $R1"
req PUT /api/v1/agents/quarantines "$REPORT1" "$AG1"
check "quarantines: the same report again changes nothing" 200 "j['changed'] is False"
R2=$(revision "$AG1")
[ "$R2" = "$R1" ] && ok "quarantines: ... and keeps the revision" || nok "quarantines: ... and keeps the revision" "$R1 -> $R2"
req PUT /api/v1/agents/quarantines "{\"quarantines\":[{\"address\":\"10.9.9.9\",\"reason\":\"port_scan\",\"since\":\"$past\",\"until\":\"$later\"}]}" "$AG2"
check "quarantines: node-2 holds one of the same address" 200 "j['changed'] is True"
req GET /api/v1/clusters/prod/quarantines "" "$VIEWER"
check "quarantines: one per address, its nodes, an ended one not listed" 200 "j['total'] == 2 and sorted(q['address'] for q in j['items']) == ['10.9.9.9', '2001:db8::7'] and [sorted(q['nodes']) for q in j['items'] if q['address'] == '10.9.9.9'] == [['node-1', 'node-2']]"
check "quarantines: the longest until of its nodes" 200 "[q['until'] for q in j['items'] if q['address'] == '10.9.9.9'] == ['$later']"
req GET /api/v1/clusters/prod/quarantines/2001:db8:0:0::7
check "quarantines: one address (any spelling)" 200 "j['address'] == '2001:db8::7' and j['reason'] == 'port_scan' and j['nodes'] == ['node-1']"
req GET /api/v1/clusters/prod/quarantines/10.1.1.1
check "quarantines: an address not held 404" 404 "$(err_field address)"
req GET /api/v1/clusters/prod/quarantines/ten
check "quarantines: not an address 400" 400 "$(err_field address)"
req GET /api/v1/agents/policy "" "$AG2"
check "quarantines: every node's policy carries them" 200 "sorted(q['address'] for q in j['quarantines']) == ['10.9.9.9', '2001:db8::7'] and j['quarantine_releases'] == [] and j['threat_intel'] is None"
req DELETE /api/v1/clusters/prod/quarantines/10.9.9.9 "" "$VIEWER"
check "quarantines: release needs admin" 403
req DELETE /api/v1/clusters/prod/quarantines/10.1.1.1
check "quarantines: release of an address not held 404" 404
R3=$(revision "$AG1")
req DELETE /api/v1/clusters/prod/quarantines/10.9.9.9
check "quarantines: release" 200 "j['address'] == '10.9.9.9' and sorted(j['nodes']) == ['node-1', 'node-2'] and j['released_at']"
R4=$(revision "$AG1")
[ "$R4" -gt "$R3" ] && ok "quarantines: a release moves the revision" || nok "quarantines: a release moves the revision" "$R3 -> $R4"
req GET /api/v1/clusters/prod/quarantines/10.9.9.9
check "quarantines: released, gone from every node's list" 404
req GET /api/v1/agents/policy "" "$AG1"
check "quarantines: the release reaches every node's policy" 200 "[q['address'] for q in j['quarantines']] == ['2001:db8::7'] and [r['address'] for r in j['quarantine_releases']] == ['10.9.9.9']"
req PUT /api/v1/agents/quarantines "$REPORT1" "$AG1"
check "quarantines: a report sent before the release does not bring it back" 200 "j['quarantines'] == 2"
req GET /api/v1/clusters/prod/quarantines/10.9.9.9
check "quarantines: ... still released" 404
fresh=$(day '+1 minute')
req PUT /api/v1/agents/quarantines "{\"quarantines\":[{\"address\":\"10.9.9.9\",\"reason\":\"brute_force\",\"since\":\"$fresh\",\"until\":\"$later\"}]}" "$AG2"
req GET /api/v1/clusters/prod/quarantines/10.9.9.9
check "quarantines: a new quarantine after the release is held" 200 "j['nodes'] == ['node-2'] and j['since'] == '$fresh'"
req GET '/api/v1/audit?kind=quarantine&action=release'
check "quarantines: a release is audited with what it ended" 200 "j['total'] == 1 and j['items'][0]['before']['address'] == '10.9.9.9' and j['items'][0]['after'] is None"
req GET /api/v1/clusters/prod/status "" "$VIEWER"
check "quarantines: active ones in the protection status" 200 "j['quarantines'] == {'active': 2}"

# ---- a stolen node credential cannot quarantine beyond the cluster's settings ----
future=$(day '+1 day')
month=$(day '+30 days')
GUARD="{\"quarantines\":[{\"address\":\"203.0.113.5\",\"reason\":\"brute_force\",\"since\":\"$past\",\"until\":\"$soon\"},
 {\"address\":\"127.0.0.1\",\"reason\":\"brute_force\",\"since\":\"$past\",\"until\":\"$soon\"},
 {\"address\":\"ff02::1\",\"reason\":\"port_scan\",\"since\":\"$past\",\"until\":\"$soon\"},
 {\"address\":\"169.254.1.1\",\"reason\":\"port_scan\",\"since\":\"$past\",\"until\":\"$soon\"},
 {\"address\":\"0.0.0.0\",\"reason\":\"port_scan\",\"since\":\"$past\",\"until\":\"$soon\"},
 {\"address\":\"255.255.255.255\",\"reason\":\"port_scan\",\"since\":\"$past\",\"until\":\"$soon\"},
 {\"address\":\"198.51.100.9\",\"reason\":\"brute_force\",\"since\":\"$future\",\"until\":\"$month\"},
 {\"address\":\"203.0.113.6\",\"reason\":\"port_scan\",\"since\":\"$past\",\"until\":\"$month\"}]}"
req PUT /api/v1/agents/quarantines "$GUARD" "$AG1"
check "quarantine guard: what is not a unicast source, or starts tomorrow, is not spread, and the answer says why" 200 "j['quarantines'] == 2 and j['ignored'] == 6 and {n['address']: n['why'] for n in j['not_spread']} == {'127.0.0.1': 'loopback', 'ff02::1': 'multicast', '169.254.1.1': 'link-local', '0.0.0.0': 'unspecified', '255.255.255.255': 'broadcast', '198.51.100.9': \"since is ahead of the server's clock\"}"
if grep -q 'node "node-1" of cluster "prod" reported 6 quarantine(s) its cluster does not allow, not spread' "$T/log"; then
    ok "quarantine guard: the server log names the node"
else
    nok "quarantine guard: the server log names the node" "$(tail -n 3 "$T/log")"
fi
cut4=$(/usr/bin/python3 -c "import datetime as d; t = d.datetime.strptime('$past', '%Y-%m-%dT%H:%M:%SZ'); print((t + d.timedelta(hours=4)).strftime('%Y-%m-%dT%H:%M:%SZ'))")
req GET /api/v1/clusters/prod/quarantines/203.0.113.6
check "quarantine guard: a quarantine longer than the cluster's is cut to its 4 hours" 200 "j['until'] == '$cut4'"
req GET /api/v1/agents/policy "" "$AG2"
check "quarantine guard: the other nodes get only what the cluster allows" 200 "sorted(q['address'] for q in j['quarantines'] if q['address'].startswith(('203.', '127.', 'ff02', '169.', '0.', '255.', '198.'))) == ['203.0.113.5', '203.0.113.6'] and [q['until'] for q in j['quarantines'] if q['address'] == '203.0.113.6'] == ['$cut4']"
req PATCH /api/v1/clusters/prod '{"detections":{"port_scan":{"action":"alert"}}}'
req PUT /api/v1/agents/quarantines "$GUARD" "$AG1"
check "quarantine guard: a detection that only alerts spreads no quarantine" 200 "j['quarantines'] == 1 and [n['why'] for n in j['not_spread'] if n['address'] == '203.0.113.6'] == ['port_scan does not quarantine in this cluster']"
req PATCH /api/v1/clusters/prod '{"defense":"off"}'
req PUT /api/v1/agents/quarantines "$GUARD" "$AG1"
check "quarantine guard: with defense off nothing is spread" 200 "j['quarantines'] == 0 and j['ignored'] == 8"
req PATCH /api/v1/clusters/prod '{"defense":"on","detections":{"port_scan":{"action":"block"}}}'
check "quarantine guard: defense and port scans back on" 200 "j['defense'] == 'on'"
req POST /api/v1/agents/register "{\"cluster\":\"prod\",\"node\":\"node-q\",\"join_token\":\"$JOIN\"}" ""
AGQ=$(jget "j['token']")
NQ=$(jget "j['node']['id']")
req PUT /api/v1/agents/quarantines "{\"quarantines\":[{\"address\":\"192.0.2.77\",\"reason\":\"brute_force\",\"since\":\"$past\",\"until\":\"$soon\"}]}" "$AGQ"
check "quarantine guard: a third node holds 192.0.2.77" 200 "j['quarantines'] == 1"
req DELETE "/api/v1/nodes/$NQ"
check "quarantine guard: the node is removed" 200
req GET /api/v1/clusters/prod/quarantines/192.0.2.77
check "quarantine guard: ... and what it held is no longer spread" 404
req PUT /api/v1/agents/quarantines "$REPORT1" "$AG1"
check "quarantine guard: node-1's report as before" 200 "j['quarantines'] == 2"

# ---- threat lists ----
req GET /api/v1/clusters/prod/threat-intel "" "$VIEWER"
check "threat-intel: none at first" 404
req GET /api/v1/clusters/prod/threat-intel/summary "" "$VIEWER"
check "threat-intel: the summary of none is nulls, 0 prefixes" 200 "j == {'version': None, 'prefixes': 0, 'updated': None}"
req GET /api/v1/clusters/nope/threat-intel/summary "" "$VIEWER"
check "threat-intel: the summary of an unknown cluster is 404" 404
printf '# feed\n198.51.100.0/24\n203.0.113.7 # one host\n\n2001:db8:bad::/48\n198.51.100.0/24\n' >"$T/ti"
treq PUT /api/v1/clusters/prod/threat-intel "$T/ti" application/json
check "threat-intel: a JSON body 415 names text/plain" 415 "$(err_field Content-Type) and 'text/plain' in j['errors'][0]['message']"
printf '198.51.100.0/24\nnot-an-address\n10.0.0.0/33\n' >"$T/ti-bad"
treq PUT /api/v1/clusters/prod/threat-intel "$T/ti-bad" text/plain
check "threat-intel: errors name their lines" 400 "$(err_field 'line 2') and $(err_field 'line 3') and len(j['errors']) == 2"
treq PUT /api/v1/clusters/prod/threat-intel "$T/ti" text/plain "$VIEWER"
check "threat-intel: upload needs admin" 403
treq PUT /api/v1/clusters/nope/threat-intel "$T/ti" text/plain
check "threat-intel: unknown cluster 404" 404
req GET /api/v1/clusters/prod/threat-intel
check "threat-intel: refused uploads stored nothing" 404
R5=$(revision "$AG1")
treq PUT /api/v1/clusters/prod/threat-intel "$T/ti" 'text/plain; charset=utf-8'
check "threat-intel: upload" 201 "j['prefixes'] == 3 and len(j['version']) == 16 and j['updated']"
TIV=$(jget "j['version']")
R6=$(revision "$AG1")
[ "$R6" -gt "$R5" ] && ok "threat-intel: an upload moves the revision" || nok "threat-intel: an upload moves the revision" "$R5 -> $R6"
req GET /api/v1/clusters/prod/threat-intel/summary "" "$VIEWER"
check "threat-intel: the summary names version, prefixes and update time" 200 "j['version'] == '$TIV' and j['prefixes'] == 3 and j['updated'].endswith('Z')"
curl -s -o "$T/ti-got" -D "$T/ti-hdr" -H "Authorization: Bearer $VIEWER" "$URL/api/v1/clusters/prod/threat-intel"
if grep -qi '^content-type: text/plain' "$T/ti-hdr" && [ "$(grep -c . "$T/ti-got")" = 3 ] &&
    grep -qx '198.51.100.0/24 listed' "$T/ti-got" && grep -qx '203.0.113.7/32 listed' "$T/ti-got" &&
    grep -qx '2001:db8:bad::/48 listed' "$T/ti-got"; then
    ok "threat-intel: read back as text, one canonical prefix and label a line"
else
    nok "threat-intel: read back as text" "$(cat "$T/ti-hdr" "$T/ti-got" | head -c 400)"
fi
req GET /api/v1/agents/policy "" "$AG2"
check "threat-intel: every node's policy names its version" 200 "j['threat_intel'] == {'version': '$TIV', 'prefixes': 3}"
curl -s -o "$T/ti-agent" -H "Authorization: Bearer $AG2" "$URL/api/v1/agents/threat-intel"
if cmp -s "$T/ti-got" "$T/ti-agent"; then ok "threat-intel: agents fetch the same text"; else nok "threat-intel: agents fetch the same text" "$(head -c 200 "$T/ti-agent")"; fi
req GET /api/v1/agents/threat-intel "" "$VIEWER"
check "threat-intel: the agents' route needs an agent credential" 403
printf '203.0.113.7\n2001:db8:bad::/48\n198.51.100.0/24\n' >"$T/ti-same"
treq PUT /api/v1/clusters/prod/threat-intel "$T/ti-same" text/plain
check "threat-intel: the same list in another order, same version" 200 "j['version'] == '$TIV'"
R7=$(revision "$AG1")
[ "$R7" = "$R6" ] && ok "threat-intel: ... and the revision stays" || nok "threat-intel: ... and the revision stays" "$R6 -> $R7"
req GET '/api/v1/audit?kind=threat_intel'
check "threat-intel: audited without its text" 200 "j['total'] == 2 and j['items'][0]['after'].get('prefixes') == 3 and '198.51.100' not in json.dumps(j['items'])"
req DELETE /api/v1/clusters/prod/threat-intel "" "$VIEWER"
check "threat-intel: removal needs admin" 403
req DELETE /api/v1/clusters/prod/threat-intel
check "threat-intel: removal" 200
req DELETE /api/v1/clusters/prod/threat-intel
check "threat-intel: removal twice 404" 404
req GET /api/v1/agents/policy "" "$AG1"
check "threat-intel: removed from the policy" 200 "j['threat_intel'] is None"
curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $AG1" "$URL/api/v1/agents/threat-intel" >"$T/code"
[ "$(cat "$T/code")" = 404 ] && ok "threat-intel: agents get 404 when there is none" || nok "threat-intel: agents get 404 when there is none" "$(cat "$T/code")"
treq PUT /api/v1/clusters/prod/threat-intel "$T/ti" text/plain
check "threat-intel: uploaded again (kept for the restart check)" 201
