"""Policy deltas by revision through the API (issue 17), driven by tests/api/delta.sh.

Random changes through every write path that moves a cluster's revision
(objects global and of the cluster, rules, workloads reported by agents,
cluster settings, quarantines, the threat list, node removal, the cluster
deleted and made again); after each, the full answer at the new revision is
kept. Then at many revisions R: full(R) + delta(R -> now) == full(now), the
delta applied by this file's own code (not the agent's). Prints `ok NAME` or
`FAIL NAME: why` per check.
Usage: delta.py URL ADMIN_TOKEN SEED STATE_FILE
"""
import json
import random
import sys
import time
import urllib.error
import urllib.request

URL, ADMIN, SEED = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(SEED)
KINDS = ("objects", "rules", "workloads")


def call(method, path, body=None, token=None, ctype="application/json", raw=False):
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    r = urllib.request.Request(URL + path, data=data, method=method)
    r.add_header("Authorization", "Bearer " + (token or ADMIN))
    if data is not None:
        r.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            text = resp.read()
            code = resp.status
    except urllib.error.HTTPError as e:
        text, code = e.read(), e.code
    if raw:
        return code, text
    return code, (json.loads(text) if text else None)


passed = failed = 0


def check(name, cond, why=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok delta: " + name)
    else:
        failed += 1
        print("FAIL delta: %s: %s" % (name, why))


def must(code_body, want, what):
    code, body = code_body
    if code != want and not (isinstance(want, tuple) and code in want):
        raise SystemExit("FAIL delta: %s: status %d (%s)" % (what, code, str(body)[:300]))
    return body


def apply(base, d):
    """full(R) + delta(R -> now), as the wire contract says."""
    assert d["delta"] is True and d["since"] == base["revision"]
    out = {k: v for k, v in d.items() if k not in ("since", "delta") and k not in KINDS}
    for k in KINDS:
        recs = {r["id"]: r for r in base[k]}
        for i in d[k]["removed"]:
            assert i in recs, "removed id %d not held" % i
            del recs[i]
        for r in d[k]["set"]:
            recs[r["id"]] = r
        out[k] = [recs[i] for i in sorted(recs)]
    return out


CLUSTER = "dl"
must(call("POST", "/api/v1/clusters", {"name": CLUSTER, "defense": "on"}), 201, "cluster")
must(call("POST", "/api/v1/clusters", {"name": "dl-other", "defense": "on"}), 201, "cluster")
# reported quarantines are spread (so a report changes the answer) only when they block
must(call("PATCH", "/api/v1/clusters/" + CLUSTER,
          {"detections": {"port_scan": {"action": "block", "quarantine": 14400}}}), 200, "detections")
nodes = {}


def join():
    return must(call("POST", "/api/v1/clusters/%s/join-tokens" % CLUSTER, {"ttl": "1h", "uses": 100}),
                201, "join token")["join_token"]


def register(jt, name):
    b = must(call("POST", "/api/v1/agents/register",
                  {"cluster": CLUSTER, "node": name, "join_token": jt}, token=""), 201, "register")
    nodes[name] = {"token": b["token"], "id": b["node"]["id"], "wl": {}}


jt = join()
for n in ("dn-1", "dn-2", "dn-3"):
    register(jt, n)
agent = nodes["dn-1"]["token"]


def full():
    code, body = call("GET", "/api/v1/agents/policy?revision=0", token=agent)
    assert code == 200, (code, body)
    return body


def report(name):
    n = nodes[name]
    wl = [dict(w) for w in n["wl"].values()]
    must(call("PUT", "/api/v1/agents/workloads", {"workloads": wl}, token=n["token"]), 200,
         "workloads")


objects, rules, counter = [], [], [0]


def fresh(prefix):
    counter[0] += 1
    return "%s%d" % (prefix, counter[0])


def change():
    """One random write that moves the revision; returns what it was."""
    what = rnd.choice(["object+", "object+", "object~", "object-", "rule+", "rule+", "rule~",
                       "rule-", "wl+", "wl+", "wl~", "wl-", "cluster", "quarantine", "threat",
                       "other-cluster-object"])
    if what in ("object~", "object-") and not objects:
        what = "object+"
    if what in ("rule~", "rule-") and not rules:
        what = "rule+"
    if what == "object+":
        body = {"name": fresh("o"), "namespace": "ns", "app": fresh("a")}
        if rnd.random() < 0.5:
            body["cluster"] = CLUSTER
        objects.append(must(call("POST", "/api/v1/objects", body), 201, what)["id"])
    elif what == "other-cluster-object":
        must(call("POST", "/api/v1/objects",
                  {"name": fresh("x"), "namespace": "ns", "app": "x", "cluster": "dl-other"}),
             201, what)
    elif what == "object~":
        oid = rnd.choice(objects)
        must(call("PATCH", "/api/v1/objects/%d" % oid, {"app": fresh("a")}), 200, what)
    elif what == "object-":
        oid = rnd.choice(objects)
        code, _ = call("DELETE", "/api/v1/objects/%d" % oid)
        if code == 204:
            objects.remove(oid)
        else:  # named by a rule: change the rule away from it, then delete it
            for rid in list(rules):
                must(call("DELETE", "/api/v1/clusters/%s/rules/%d" % (CLUSTER, rid)), 204, what)
                rules.remove(rid)
            must(call("DELETE", "/api/v1/objects/%d" % oid), 204, what)
            objects.remove(oid)
    elif what == "rule+":
        if not objects:
            return change()
        code, o = call("GET", "/api/v1/objects/%d" % rnd.choice(objects))
        body = {"name": fresh("r"), "source": "any",
                "destinations": [{"object": o["name"], "ports": str(rnd.randint(1, 9000))}],
                "action": rnd.choice(["allow", "block", "alert"]),
                "priority": rnd.randint(1, 900)}
        rules.append(must(call("POST", "/api/v1/clusters/%s/rules" % CLUSTER, body), 201, what)["id"])
    elif what == "rule~":
        rid = rnd.choice(rules)
        must(call("PATCH", "/api/v1/clusters/%s/rules/%d" % (CLUSTER, rid),
                  {"priority": rnd.randint(1, 900)}), 200, what)
    elif what == "rule-":
        rid = rnd.choice(rules)
        must(call("DELETE", "/api/v1/clusters/%s/rules/%d" % (CLUSTER, rid)), 204, what)
        rules.remove(rid)
    elif what.startswith("wl"):
        name = rnd.choice(list(nodes))
        wl = nodes[name]["wl"]
        if what == "wl+" or not wl:
            w = fresh("w")
            wl[w] = {"name": w, "namespace": "ns", "labels": {"app": fresh("a")},
                     "ips": ["10.%d.%d.%d" % (rnd.randint(0, 255), rnd.randint(0, 255),
                                              rnd.randint(1, 254))]}
        elif what == "wl~":
            w = rnd.choice(list(wl))
            wl[w] = dict(wl[w], labels={"app": fresh("a")})
        else:
            del wl[rnd.choice(list(wl))]
        report(name)
    elif what == "cluster":
        must(call("PATCH", "/api/v1/clusters/" + CLUSTER,
                  {"mode": rnd.choice(["protect", "monitor"])}), 200, what)
    elif what == "quarantine":
        name = rnd.choice(list(nodes))
        q = [{"address": "10.99.0.%d" % rnd.randint(1, 200), "reason": "port_scan",
              "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "until": "2099-01-01T00:00:00Z"}]
        must(call("PUT", "/api/v1/agents/quarantines", {"quarantines": q},
                  token=nodes[name]["token"]), 200, what)
    elif what == "threat":
        must(call("PUT", "/api/v1/clusters/%s/threat-intel" % CLUSTER,
                  "198.51.100.%d\n" % rnd.randint(1, 254), ctype="text/plain"), (200, 201), what)
    return what


def compare_all(states, label):
    now = full()
    tried = deltas = 0
    bad = []
    for rev, st in sorted(states.items()):
        if rev >= now["revision"]:
            continue
        tried += 1
        code, d = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % rev,
                       token=agent)
        if code != 200:
            bad.append("R=%d: status %d" % (rev, code))
            continue
        if d.get("delta") is True:
            deltas += 1
            try:
                got = apply(st, d)
            except AssertionError as e:
                bad.append("R=%d: %s" % (rev, e))
                continue
        else:
            got = dict(d)
            got.pop("delta", None)
            if d.get("delta") is not False:
                bad.append("R=%d: neither a delta nor marked full" % rev)
        if got != now:
            keys = [k for k in now if got.get(k) != now.get(k)]
            bad.append("R=%d: differs in %s" % (rev, keys))
    check("%s: full(R) + delta(R -> now) == full(now) at %d revisions" % (label, tried),
          tried > 0 and not bad, "; ".join(bad[:5]))
    return tried, deltas, now


# A cluster that changes through every path, the full answer kept at every revision. It
# starts with 300 workloads, so that a delta is well below half the full answer (above
# that the full answer is sent).
for i in range(300):
    nodes["dn-2"]["wl"]["base-%d" % i] = {"name": "base-%d" % i, "namespace": "ns",
                                           "labels": {"app": "base"},
                                           "ips": ["10.250.%d.%d" % (i // 200, i % 200 + 1)]}
report("dn-2")
states = {}
first = full()
states[first["revision"]] = first
seen = set()
for step in range(120):
    seen.add(change())
    f = full()
    states[f["revision"]] = f
    if step % 40 == 39:
        tried, deltas, _ = compare_all(states, "after %d changes" % (step + 1))
        check("after %d changes: answered as deltas (%d of %d)" % (step + 1, deltas, tried),
              deltas == tried, "answered in full from a revision the server built")
check("every kind of write was made (%d)" % len(seen), len(seen) == 13, sorted(seen))

# Deltas are shared: the same (R -> now) twice is the same text.
now = full()
r0 = sorted(states)[-5]
a = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % r0, token=agent, raw=True)
b = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % r0,
         token=nodes["dn-2"]["token"], raw=True)
check("the answer for (R -> now) is the same for two agents", a == b and a[0] == 200)
d = json.loads(a[1])
check("a delta names its base and revision", d.get("delta") is True and d["since"] == r0
      and d["revision"] == now["revision"], str(d)[:200])
check("a delta is smaller than the full answer",
      len(a[1]) < len(call("GET", "/api/v1/agents/policy?revision=0", token=agent, raw=True)[1]))

# An agent that does not ask for deltas gets exactly today's answer.
plain = call("GET", "/api/v1/agents/policy?revision=%d&wait=0" % r0, token=agent, raw=True)
zero = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=0" % r0, token=agent, raw=True)
check("without delta=1 the full answer (no delta member)",
      plain[0] == 200 and "delta" not in json.loads(plain[1]) and json.loads(plain[1]) == now)
check("delta=0 is the same answer", zero == plain)
code, f0 = call("GET", "/api/v1/agents/policy?revision=0&delta=1", token=agent)
check("revision 0 with delta=1: the full state, marked", code == 200 and f0.get("delta") is False
      and {k: v for k, v in f0.items() if k != "delta"} == now)
code, _ = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % now["revision"],
               token=agent)
check("nothing newer: 304", code == 304, code)

# Bad values.
for q, field in (("delta=2", "delta"), ("delta=yes", "delta"), ("delta=-1", "delta"),
                 ("delta=", "delta"), ("revision=x&delta=1", "revision"),
                 ("revision=-3&delta=1", "revision"), ("revision=1.5", "revision")):
    code, body = call("GET", "/api/v1/agents/policy?" + q, token=agent)
    check("%s: 400 naming %s" % (q, field), code == 400 and any(
        e.get("field") == field for e in (body or {}).get("errors", [])), (code, body))

# Node removal takes its workloads: a delta removes them.
before = full()
gone_ids = [w["id"] for w in before["workloads"] if w["node"] == "dn-3"]
if not gone_ids:
    nodes["dn-3"]["wl"]["last"] = {"name": "last", "namespace": "ns", "ips": ["10.200.0.1"]}
    report("dn-3")
    before = full()
    gone_ids = [w["id"] for w in before["workloads"] if w["node"] == "dn-3"]
states[before["revision"]] = before
must(call("DELETE", "/api/v1/nodes/%d" % nodes["dn-3"]["id"]), (200, 204), "node delete")
del nodes["dn-3"]
code, d = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % before["revision"],
               token=agent)
check("node removal: its workloads removed in the delta",
      code == 200 and d.get("delta") is True and sorted(d["workloads"]["removed"]) == sorted(gone_ids)
      and gone_ids, str(d)[:300])
compare_all(states, "after node removal")

# A workload reported again unchanged keeps its id: the next delta does not carry it.
before = full()
report("dn-1")
code, d = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % before["revision"],
               token=agent)
check("a report that changes nothing: an empty delta",
      code == 200 and d.get("delta") is True and all(
          not d[k]["set"] and not d[k]["removed"] for k in KINDS), str(d)[:300])

# The cluster deleted and made again: nothing of the old history answers for it.
for rid in rules:  # what names the cluster goes first
    must(call("DELETE", "/api/v1/clusters/%s/rules/%d" % (CLUSTER, rid)), 204, "rule delete")
for oid in objects:
    must(call("DELETE", "/api/v1/objects/%d" % oid), 204, "object delete")
old_states = dict(states)
f = full()
old_states[f["revision"]] = f
must(call("DELETE", "/api/v1/clusters/" + CLUSTER), 204, "cluster delete")
must(call("POST", "/api/v1/clusters", {"name": CLUSTER, "defense": "on"}), 201, "cluster again")
nodes.clear()
jt = join()
for n in ("dn-1", "dn-2"):
    register(jt, n)
agent = nodes["dn-1"]["token"]
objects[:] = []
rules[:] = []
new_states = {}
f = full()
new_states[f["revision"]] = f
for _ in range(25):
    change()
    f = full()
    new_states[f["revision"]] = f
now = full()
wrong = []
for rev, st in sorted(old_states.items()):
    if rev >= now["revision"]:
        continue
    code, d = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % rev, token=agent)
    if code == 200 and d.get("delta") is True:
        if rev not in new_states:
            wrong.append("R=%d: a delta from a revision of the old cluster" % rev)
        elif apply(new_states[rev], d) != now:
            wrong.append("R=%d: wrong" % rev)
check("cluster made again: no delta from the old cluster's history", not wrong, wrong[:3])
compare_all(new_states, "cluster made again")

# A revision older than the history (1,000 steps, docs/server.md): the full state, marked.
# Each step is one revision the server built an answer for, so each write here is read.
old = full()
for i in range(1001):
    must(call("PATCH", "/api/v1/clusters/" + CLUSTER, {"description": "step %d" % i}), 200,
         "cluster description")
    full()
now = full()
code, d = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % old["revision"],
               token=agent)
check("a revision 1,001 steps back: the full state, marked delta false",
      code == 200 and d.get("delta") is False and {k: v for k, v in d.items() if k != "delta"} == now,
      (code, str(d)[:200]))
code, d = call("GET", "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % (now["revision"] - 3),
               token=agent)
check("... while 3 steps back is still a delta",
      code == 200 and d.get("delta") is True and d["cluster"]["description"] == "step 1000",
      (code, str(d)[:200]))

with open(sys.argv[4], "w") as out:  # for the shell: a revision and a token to ask again
    out.write("%d %s\n" % (now["revision"] - 3, agent))  # a delta before the restart (above)
print("delta.py: %d passed, %d failed" % (passed, failed))
