#!/bin/sh
# Install and deploy (issue 13): `make install` with PREFIX and with DESTDIR,
# the installed programs (--version, --help, the data file found where it was
# installed), the man pages against the programs' own help, the systemd units
# (systemd-analyze verify, and their hardening), and the Kubernetes manifests:
# `kubectl apply --dry-run=client` against the recorded API's discovery
# answers (kubectl needs an API server to map kinds; schema validation needs
# its OpenAPI document, which is not here: --validate=false), then what they
# grant, read from kubectl's own output.
# Usage (root, repo root): tests/containers/deploy.sh BUILD
set -u
B=${1:?build dir}
TMP=$(mktemp -d)
pass=0
fail=0
API=""

ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }
check() { # NAME GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}
cleanup() {
    [ -n "$API" ] && kill "$API" 2>/dev/null && wait "$API" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- make install PREFIX=...: everything where it belongs, and working from there
P="$TMP/prefix"
if make -s install PREFIX="$P" >"$TMP/install.log" 2>&1; then ok install; else bad install "$(tail -5 "$TMP/install.log")"; fi
for f in bin/moat bin/moat-traffic sbin/moatd sbin/moat-server share/moat/kernel-support.tsv \
    share/man/man1/moat.1 share/man/man8/moatd.8 share/man/man8/moat-server.8 \
    lib/systemd/system/moatd.service lib/systemd/system/moat-server.service; do
    if [ -s "$P/$f" ]; then ok "installed-$f"; else bad "installed-$f" missing; fi
done
V=$(sed -n 's/^#define MOAT_VERSION "\(.*\)"/\1/p' include/moat/version.h)
for b in bin/moat bin/moat-traffic sbin/moatd sbin/moat-server; do
    n=$(basename "$b")
    check "$n-version" "$("$P/$b" --version 2>&1; echo "rc=$?")" "$n $V
rc=0"
    "$P/$b" --help >"$TMP/help.$n" 2>&1
    check "$n-help-exit-0" "$? $(grep -c . "$TMP/help.$n" | awk '{print ($1 > 3)}')" "0 1"
done
check compat-finds-installed-table \
    "$("$P/bin/moat" compat check --os "CentOS 7.9-2009" --kernel 3.10.0-1160.el7.x86_64 >/dev/null 2>&1; echo $?)" 0
"$P/sbin/moat-server" --listen 127.0.0.1:0 --data "$TMP/sdata" >"$TMP/server.log" 2>&1 &
SP=$!
i=0
while ! grep -q "listening on" "$TMP/server.log" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
kill "$SP"
wait "$SP" 2>/dev/null
check server-finds-installed-table "$(grep -c "not found" "$TMP/server.log")" 0

# ---- the man pages say what --help says: every option of moatd and moat-server
for n in moatd moat-server; do
    missing=""
    for opt in $(grep -o '^  --[a-z-]*' "$TMP/help.$n"); do
        esc=$(echo "$opt" | sed 's/-/\\\\-/g') # roff writes every - as \-
        grep -q "^\.B $esc\( \|\$\)" "$P/share/man/man8/$n.8" || missing="$missing $opt"
    done
    check "man-$n-has-every-option" "$missing" ""
done
missing=""
"$P/bin/moat" help | sed -n 's/^  \([a-z-]*\( [a-z-]*\)\?\)  .*/\1/p' >"$TMP/commands"
while read -r c; do
    grep -q "^\.SS $(echo "$c" | sed 's/-/\\\\-/g')\$" "$P/share/man/man1/moat.1" || missing="$missing [$c]"
done <"$TMP/commands"
check man-moat-has-every-command "$missing" ""
check man-moat-command-count "$(grep -c '^\.SS' "$P/share/man/man1/moat.1")" "$(grep -c . "$TMP/commands")"
if command -v man >/dev/null 2>&1; then
    check man-renders "$(man -l "$P/share/man/man8/moatd.8" 2>/dev/null | grep -c -- '--runtime-socket' | awk '{print ($1 >= 1)}')" 1
fi

# ---- make install DESTDIR=... PREFIX=/usr: staged for a package, nothing outside DESTDIR
S="$TMP/stage"
make -s install DESTDIR="$S" PREFIX=/usr >"$TMP/stage.log" 2>&1
check destdir-layout "$(cd "$S" && find . -type f | sort | tr '\n' ' ')" \
    "./usr/bin/moat ./usr/bin/moat-traffic ./usr/lib/systemd/system/moat-server.service ./usr/lib/systemd/system/moatd.service ./usr/sbin/moat-server ./usr/sbin/moatd ./usr/share/containers/oci/hooks.d/moatd.json ./usr/share/man/man1/moat.1 ./usr/share/man/man8/moat-server.8 ./usr/share/man/man8/moatd.8 ./usr/share/moat/kernel-support.tsv "
check destdir-hook-points-at-prefix "$(/usr/bin/python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); print(h["hook"]["path"], h["hook"]["args"], h["stages"])' "$S/usr/share/containers/oci/hooks.d/moatd.json")" \
    "/usr/sbin/moatd ['moatd', 'hook'] ['prestart']"
check destdir-units-point-at-prefix "$(grep -h '^ExecStart=' "$S/usr/lib/systemd/system/"*.service | cut -d' ' -f1 | sort | tr '\n' ' ')" \
    "ExecStart=/usr/sbin/moat-server ExecStart=/usr/sbin/moatd "
make -s uninstall DESTDIR="$S" PREFIX=/usr >/dev/null 2>&1
check uninstall "$(find "$S" -type f | wc -l)" 0

# ---- systemd units: valid, and hardened
U="$P/lib/systemd/system"
mkdir -p "$TMP/etc"
if command -v systemd-analyze >/dev/null 2>&1; then
    out=$(systemd-analyze verify --man=no "$U/moatd.service" "$U/moat-server.service" 2>&1)
    check units-verify "$(echo "$out" | grep -v 'EnvironmentFile' | grep -c .)" 0
    [ -n "$out" ] && echo "$out" | head -5
    for u in moatd moat-server; do
        score=$(systemd-analyze security --offline=true --no-pager "$U/$u.service" 2>/dev/null |
            sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
        echo "measured: systemd-analyze security exposure of $u.service: ${score:-n/a} (0 = most protected, 10 = none)"
    done
else
    bad units-verify "systemd-analyze is missing"
fi
unit() { sed -n "s/^$2=//p" "$U/$1.service" | tr '\n' '|'; }
check moatd-caps "$(unit moatd CapabilityBoundingSet)" "CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SYS_RESOURCE|"
check moatd-protect-system "$(unit moatd ProtectSystem)$(unit moatd ReadWritePaths)" "strict|/sys/fs/bpf|"
check moatd-dirs "$(unit moatd RuntimeDirectory)$(unit moatd StateDirectory)" "moat|moat|"
check moatd-no-new-privileges "$(unit moatd NoNewPrivileges)" "yes|"
check server-caps "$(unit moat-server CapabilityBoundingSet)" "|"
check server-user "$(unit moat-server DynamicUser)$(unit moat-server StateDirectory)" "yes|moat-server|"
check server-protect-system "$(unit moat-server ProtectSystem)" "strict|"

# ---- Kubernetes manifests
/usr/bin/python3 tests/containers/kubeapi.py "$TMP" none none >"$TMP/api.port" 2>"$TMP/api.err" &
API=$!
i=0
while [ ! -s "$TMP/api.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
cat >"$TMP/kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: recorded
clusters: [{name: rec, cluster: {server: "http://127.0.0.1:$(cat "$TMP/api.port")"}}]
users: [{name: u, user: {}}]
contexts: [{name: recorded, context: {cluster: rec, user: u}}]
YAML
K="kubectl --kubeconfig $TMP/kubeconfig --cache-dir $TMP/kcache"
if ! command -v kubectl >/dev/null 2>&1; then
    bad kubectl "missing (make deps installs kubernetes-client)"
else
    out=$(HOME="$TMP" $K apply --dry-run=client --validate=false -f deploy/kubernetes/ 2>&1)
    check kubectl-dry-run-all-created "$(echo "$out" | grep -c 'created (dry run)')" 9
    echo "$out" | grep -v 'created (dry run)' | head -5
    HOME="$TMP" $K apply --dry-run=client --validate=false -o json -f deploy/kubernetes/ >"$TMP/objects.json" 2>&1
    /usr/bin/python3 - "$TMP/objects.json" >"$TMP/facts" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
objs, dec, i = [], json.JSONDecoder(), 0
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    o, i = dec.raw_decode(text, i)
    objs.extend(o.get("items", [o]) if o.get("kind") == "List" else [o])
by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
ds = by[("DaemonSet", "moatd")]["spec"]["template"]["spec"]
c = ds["containers"][0]
sc = c["securityContext"]
print("ds-host-network", ds.get("hostNetwork"))
print("ds-privileged", sc.get("privileged", False))
print("ds-caps-add", ",".join(sorted(sc["capabilities"]["add"])))
print("ds-caps-drop", ",".join(sc["capabilities"]["drop"]))
print("ds-host-pid", ds.get("hostPID", False))
print("ds-bpffs", [m["mountPath"] for m in c["volumeMounts"] if m["name"] == "bpffs"] == ["/sys/fs/bpf"])
print("ds-runtime", "--runtime=kubernetes" in c["args"])
print("ds-sa", ds["serviceAccountName"])
role = by[("ClusterRole", "moat:moatd")]
print("rbac-rules", ";".join("%s:%s" % (",".join(sorted(r["resources"])), ",".join(sorted(r["verbs"])))
                              for r in role["rules"]))
print("rbac-kinds", ",".join(sorted(k for k, _ in by if k in ("Role", "ClusterRole"))))
srv = by[("Deployment", "moat-server")]["spec"]["template"]["spec"]
ssc = srv["containers"][0]["securityContext"]
print("server-non-root", srv["securityContext"].get("runAsNonRoot"))
print("server-caps-drop", ",".join(ssc["capabilities"]["drop"]), ssc.get("capabilities", {}).get("add"))
print("server-no-token", srv.get("automountServiceAccountToken"))
svc = by[("Service", "moat-server")]["spec"]
print("service-port", svc["ports"][0]["port"])
PY
    fact() { sed -n "s/^$1 //p" "$TMP/facts"; }
    check ds-host-network "$(fact ds-host-network)" True
    check ds-not-privileged "$(fact ds-privileged)" False
    check ds-capabilities "$(fact ds-caps-add)" "BPF,NET_ADMIN,PERFMON,SYS_ADMIN,SYS_RESOURCE"
    check ds-drops-all "$(fact ds-caps-drop)" ALL
    check ds-no-host-pid "$(fact ds-host-pid)" False
    check ds-bpffs-mount "$(fact ds-bpffs)" True
    check ds-runtime-kubernetes "$(fact ds-runtime)" True
    check ds-service-account "$(fact ds-sa)" moatd
    check rbac-read-pods-namespaces-only "$(fact rbac-rules)" "namespaces,pods:get,list,watch"
    check rbac-one-role "$(fact rbac-kinds)" ClusterRole
    check server-non-root "$(fact server-non-root)" True
    check server-no-capabilities "$(fact server-caps-drop)" "ALL None"
    check server-no-api-token "$(fact server-no-token)" False
    check server-service "$(fact service-port)" 8080
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
