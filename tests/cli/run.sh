#!/bin/sh
# End-to-end tests of the `moat` CLI on files: explain, validate, compile,
# compat check, help and exit codes, then tests/cli/api.sh (the commands over
# moat-server's API). Usage: tests/cli/run.sh BUILD_DIR
# Prints `ok NAME` per check and a closing `N passed, N failed`.
set -u
B=${1:?build dir}
M="$B/moat"
D=tests/cli/data
P=examples/policy.yaml
I=examples/inventory.yaml
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }

# expect NAME WANT_RC CMD... : runs CMD, keeps stdout in $T/out and stderr in $T/err.
expect() {
    name=$1 want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$name"; else bad "$name" "exit $rc, want $want: $(head -5 "$T/err")"; fi
}
# has NAME FILE TEXT : FILE contains TEXT (fixed string)
has() {
    if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1" "no \"$3\" in: $(head -20 "$2")"; fi
}
# json_field NAME KEY WANT : top-level key of $T/out as JSON equals WANT
json_field() {
    got=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = None if v is None else (v[int(k)] if isinstance(v, list) else v[k])
print("null" if v is None else (str(v).lower() if isinstance(v,bool) else v))' "$T/out" "$2" 2>&1)
    if [ "$got" = "$3" ]; then ok "$1"; else bad "$1" "$2 = $got, want $3"; fi
}

# --- explain: decisions from the sample policy
expect explain-allow 0 "$M" explain -f $P -i $I --from lb-0 --to web-7d9f --port 443 --proto tcp -o json
json_field explain-allow-action action allow
json_field explain-allow-rule rule.name web-from-lb
json_field explain-allow-default default false
expect explain-default-block 0 "$M" explain -f $P -i $I --from lb-0 --to web-7d9f --port 8080 --proto tcp -o json
json_field explain-default-block-action action block
json_field explain-default-block-rule rule null
json_field explain-default-block-default default true
expect explain-alert-any 0 "$M" explain -f $P -i $I --from web-7d9f --to db-0 --port 5432 --proto tcp -o json
json_field explain-alert-any-rule rule.name db-watch
expect explain-priority 0 "$M" explain -f $P -i $I --from api-5c4b --to db-0 --port 5432 --proto tcp -o json
json_field explain-priority-rule rule.name db-from-api
expect explain-by-ip 0 "$M" explain -f $P -i $I --from 10.244.1.6 --to 10.244.1.7 --port 5432 --proto tcp -o json
json_field explain-by-ip-rule rule.name db-from-api
expect explain-ipblock-source 0 "$M" explain -f $P -i $I --from 203.0.113.77 --to shop/api-5c4b --port 22 --proto tcp -o json
json_field explain-ipblock-source-rule rule.name office-ssh
expect explain-outside-blocked 0 "$M" explain -f $P -i $I --from 198.51.100.1 --to api-5c4b --port 22 --proto tcp -o json
json_field explain-outside-blocked-action action block
expect explain-dns-system 0 "$M" explain -f $P -i $I --from web-7d9f --to coredns-1 --port 53 --proto udp -o json
json_field explain-dns-system-rule rule.name allow-cluster-dns
expect explain-host 0 "$M" explain -f $P -i $I --from host --to db-0 --port 9999 --proto tcp -o json
json_field explain-host-rule rule.name allow-host
expect explain-icmp 0 "$M" explain -f $P -i $I --from host --to db-0 --proto icmp -o json
json_field explain-icmp-action action allow
expect explain-egress 0 "$M" explain -f $P -i $I --from web-7d9f --to 169.254.169.254 --port 80 --proto tcp -o json
json_field explain-egress-dir direction egress
json_field explain-egress-action action block
expect explain-egress-except 0 "$M" explain -f $P -i $I --from web-7d9f --to 169.254.1.9 --port 80 --proto tcp -o json
json_field explain-egress-except-action action allow
expect explain-table 0 "$M" explain -f $P -i $I --from lb-0 --to web-7d9f --port 80 --proto tcp
has explain-table-text "$T/out" "applied_action  allow"
# monitor mode and defense off
expect explain-monitor 0 "$M" explain -f $D/monitor.yaml --from cli-0 --to api-0 --port 80 --proto tcp -o json
json_field explain-monitor-action action block
json_field explain-monitor-applied applied_action alert
expect explain-defense-off 0 "$M" explain -f $D/monitor.yaml --from cli-0 --to q-0 --port 80 --proto tcp -o json
json_field explain-defense-off-action action allow
has explain-defense-off-reason "$T/out" "defense is off"
# JSON policy files
expect explain-json-policy 0 "$M" explain -f $D/policy.json --from 10.7.7.7 --to web-0 --port 8085 --proto tcp -o json
json_field explain-json-policy-rule rule.name r1
# usage errors
expect explain-no-port 2 "$M" explain -f $P -i $I --from lb-0 --to web-7d9f --proto tcp
has explain-no-port-msg "$T/err" "--port"
expect explain-unknown-workload 2 "$M" explain -f $P -i $I --from nobody --to web-7d9f --port 80
has explain-unknown-workload-msg "$T/err" 'no workload named "nobody"'
expect explain-bad-proto 2 "$M" explain -f $P -i $I --from lb-0 --to web-7d9f --port 80 --proto sctpx
# invalid files: exit 2, every error printed
expect explain-invalid 2 "$M" explain -f $D/invalid.yaml --from a --to b --port 80
has explain-invalid-1 "$T/err" 'clusters "Prod": name: "Prod" must be'
has explain-invalid-2 "$T/err" 'clusters "Prod": defense: must be true or false'
has explain-invalid-3 "$T/err" 'objects "web": labels[0]: "app==x" is not key=value'
has explain-invalid-4 "$T/err" 'invalid.yaml:16: rules "web-from-lb": destinations[0].ports: ranges 80/90 and 85/100 overlap'
has explain-invalid-5 "$T/err" 'action: "deny" is not one of block, alert, allow'
has explain-invalid-6 "$T/err" 'priority: 0 is out of range 1..1000'
expect explain-missing-file 2 "$M" explain -f /nonexistent/policy.yaml --from a --to b --port 80
has explain-missing-file-msg "$T/err" "cannot open"

# --- validate
expect validate-ok 0 "$M" validate -f $P -f $I
has validate-ok-summary "$T/out" "ok: 1 cluster"
expect validate-invalid 2 "$M" validate -f $D/invalid.yaml
n=$(grep -c 'invalid.yaml' "$T/err")
if [ "$n" -ge 6 ]; then ok validate-all-errors; else bad validate-all-errors "only $n errors printed"; fi
expect validate-json 2 "$M" validate -f $D/invalid.yaml -o json
json_field validate-json-valid valid false
expect validate-json-file 2 "$M" validate -f $D/badjson.json
has validate-json-doc "$T/err" 'document 1: rules "r1"'
has validate-json-port "$T/err" 'ports must be in 1..65535'
has validate-json-type "$T/err" 'priority: must be an integer'
expect validate-positional 0 "$M" validate $P $I
expect validate-none 2 "$M" validate

# --- compile
expect compile-text 0 "$M" compile -f $P -f $I
has compile-header "$T/out" "identities"
expect compile-json 0 "$M" compile -f $P -f $I -o json
json_field compile-json-parses addresses.0.prefix 10.244.1.1/32

# --- compat check
expect compat-certified 0 "$M" compat check --os "CentOS 7.9-2009" --kernel 3.10.0-1160.el7.x86_64
expect compat-bound-in 0 "$M" compat check --os "CentOS 8.2-2004" --kernel 4.18.0-240.15.1.el8_3.x86_64
expect compat-bound-out 3 "$M" compat check --os "CentOS 8.2-2004" --kernel 4.18.0-240.22.1.el8_3
expect compat-json 3 "$M" compat check --os "Ubuntu 22.04" --kernel 5.15.0-91-generic -o json
json_field compat-json-certified certified false
expect compat-usage 2 "$M" compat check --os "Ubuntu 20.04"

# --- compat check --file: the fleet report (issue 15)
printf '# the fleet\nCentOS 7.9-2009|3.10.0-1160.el7.x86_64\n\nCentOS 6.10|2.6.32-754.el6.x86_64\nUbuntu 20.04|5.4.0-42-generic\nCentOS 8.2-2004|4.18.0-193.el8.x86_64\nDebian 12|6.1.0-18-amd64\n' >"$T/fleet.txt"
expect fleet-all-can-enforce 0 "$M" compat check --file "$T/fleet.txt"
has fleet-centos7-iptables "$T/out" "3.10.0-1160.el7.x86_64           yes       iptables"
has fleet-ubuntu-missing-ringbuf "$T/out" "ebpf: BPF ring buffers (5.8)"
has fleet-rhel8-probe-decides "$T/out" "the node's probe (moatd --check) decides"
has fleet-new-kernel-ebpf "$T/out" "6.1.0-18-amd64                   no        ebpf"
has fleet-summary "$T/out" "5 nodes: 4 certified, 1 would run ebpf, 4 iptables (1 of them ebpf if the node's probe finds it), 0 cannot enforce"
printf 'CentOS 5.11|2.6.18-398.el5\n' >>"$T/fleet.txt"
expect fleet-cannot-enforce-exit-1 1 "$M" compat check --file "$T/fleet.txt"
has fleet-cannot-enforce-says-why "$T/out" "iptables: a kernel of 2.6.32 or later (2.6.18-398.el5 is older)"
printf '[{"name": "db-1", "os": "CentOS 7.9-2009", "kernel": "3.10.0-1160.el7.x86_64"},\n {"name": "old", "os": "Debian 6", "kernel": "2.6.32-5-amd64"}]\n' >"$T/fleet.json"
expect fleet-json 1 "$M" compat check --file "$T/fleet.json" -o json
json_field fleet-json-backend nodes.0.backend iptables
json_field fleet-json-name nodes.0.name db-1
json_field fleet-json-no-ipset nodes.1.backend null
json_field fleet-json-summary summary.cannot_enforce 1
printf '{"os": "Ubuntu 20.04", "kernel": "5.4.0-42-generic"}\n{"os": "Ubuntu 22.04", "kernel": "5.15.0-91-generic"}\n' >"$T/fleet.jsonl"
expect fleet-json-lines 0 "$M" compat check --file "$T/fleet.jsonl" -o json
json_field fleet-json-lines-count summary.nodes 2
printf 'CentOS 7.9-2009|3.10.0\nno bar here\n|3.10.0\nA|B|C\n' >"$T/bad.txt"
expect fleet-invalid-exit-2 2 "$M" compat check --file "$T/bad.txt"
has fleet-invalid-line-2 "$T/err" "bad.txt:2: expected OS|KERNEL"
has fleet-invalid-line-3 "$T/err" "bad.txt:3: os: missing"
has fleet-invalid-line-4 "$T/err" "bad.txt:4: expected OS|KERNEL: more than one '|'"
has fleet-invalid-nothing-checked "$T/err" "3 errors, nothing checked"
printf '[{"os": "CentOS 7.9-2009", "kernal": "3.10.0"}]' >"$T/bad.json"
expect fleet-invalid-json-field 2 "$M" compat check --file "$T/bad.json"
has fleet-invalid-json-field-named "$T/err" "kernal: unknown field"
expect fleet-missing-file 1 "$M" compat check --file "$T/none.txt"
expect fleet-not-with-os 2 "$M" compat check --file "$T/fleet.txt" --os "CentOS 7.9-2009"

# --- help and every command's --help
expect help 0 "$M" help
has help-lists-explain "$T/out" "explain"
expect help-exit-codes 0 "$M" help exit-codes
has help-exit-codes-2 "$T/out" "invalid input"
for c in explain validate compile "compat check"; do
    # shellcheck disable=SC2086 # "compat check" is two words on purpose
    expect "help-$c" 0 "$M" $c --help
    has "help-$c-usage" "$T/out" "usage: moat $c"
done
expect unknown-command 2 "$M" frobnicate
expect no-command 2 "$M"

# --- the commands over moat-server's API (tests/cli/api.sh starts its own server)
sh tests/cli/api.sh "$B" >"$T/api" 2>&1
sed '$d' "$T/api"
last=$(tail -1 "$T/api")
ap=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
af=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
if [ -n "$ap" ]; then
    pass=$((pass + ap))
    fail=$((fail + af))
else
    bad api "tests/cli/api.sh ended with: $last"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
