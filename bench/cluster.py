#!/usr/bin/env python3
"""Cluster-mode benchmarks (issue 5), run by `make bench` (bench/run.sh).

1. Propagation: a real moat-server and N real moatd agents in cluster mode
   (eBPF datapath loaded, each its own node with 3 workloads whose
   interfaces do not exist, so nothing is attached). Each round changes one
   rule through the API (PATCH) and takes, for every agent, the time from just
   before the request until the agent had compiled and installed the new
   revision (`applied_at` in its status file). p50/p99 over all agents and
   rounds, and the per-round slowest agent ("all nodes").
2. Agent memory: moatd's resident set with a cluster of 0 and of W workloads
   (reported by registered nodes of 2,000 workloads each through the agent API); the difference
   divided by W is the memory per cluster workload.

Prints markdown table rows (lines starting with '|') and notes.
Usage: bench/cluster.py BUILD_DIR [--agents 1,10,50] [--rounds 20] [--workloads 10000[,100000]]
       [--memory-only] [--churn 1,100[,rule]]
3. Pod churn (--churn K,...: only this): one real moatd with W remote
   workloads; a simulated node reports K more workloads, then K fewer; each
   round the time from the report to the agent having the revision in force,
   moatd's own apply time and which path it took (status "policy_apply").
   `rule` in the list: rounds of one rule changed (PATCH of its priority)
   instead, into the same agent (what a rule change costs it at W).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

RUN = "/run/moat"


class Api:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def call(self, method, path, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + (token or self.token))
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            return json.loads(text) if text else None


def wait(cond, bound, what):
    t0 = time.time()
    while time.time() - t0 < bound:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise SystemExit("bench/cluster: timed out waiting for " + what)


def status(node):
    try:
        with open(f"{RUN}/moatd-{node}.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def cpu_s(pid):
    """User + system CPU seconds the process used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Bench:
    def __init__(self, build, tmp):
        self.b, self.tmp = os.path.abspath(build), tmp
        self.procs = []  # (Popen, node)

    def start_server(self):
        data = os.path.join(self.tmp, "data")
        tok = subprocess.run([f"{self.b}/moat-server", "token", "create", "--data", data, "--role",
                              "admin"], check=True, capture_output=True, text=True).stdout.strip()
        log = open(os.path.join(self.tmp, "server.log"), "w")
        self.server = subprocess.Popen([f"{self.b}/moat-server", "--listen", "127.0.0.1:0", "--data",
                                        data], stdout=log, stderr=subprocess.STDOUT)
        addr = wait(lambda: next((l.split("listening on ")[1].strip() for l in
                                  open(os.path.join(self.tmp, "server.log")) if "listening on" in l),
                                 None), 10, "moat-server")
        self.url = "http://" + addr
        self.api = Api(self.url, tok)

    def start_agent(self, node, workloads, cluster="bench", build=None):
        inv = os.path.join(self.tmp, f"inv-{node}.yaml")
        with open(inv, "w") as f:
            for name, ip in workloads:
                f.write(f"---\nkind: Workload\ncluster: {cluster}\nnode: {node}\nname: {name}\n"
                        f"namespace: shop\nlabels: {{app: web}}\nips: [{ip}]\n"
                        f"interface: bx{abs(hash(node + name)) % 10**9}\n")
        log = open(os.path.join(self.tmp, f"moatd-{node}.log"), "w")
        p = subprocess.Popen([f"{build or self.b}/moatd", "--server", self.url, "--cluster", cluster,
                              "--join-token", self.join[cluster], "--node", node, "--inventory", inv,
                              "--state-dir", os.path.join(self.tmp, "state-" + node), "--alerts",
                              "/dev/null"], stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((p, node))
        return p

    def stop_agents(self):
        for p, _ in self.procs:
            p.send_signal(signal.SIGTERM)
        for p, node in self.procs:
            p.wait(timeout=30)
            subprocess.run([f"{self.b}/moatd", "remove", "--node", node], capture_output=True)
        self.procs = []

    def cleanup(self):
        self.stop_agents()
        if getattr(self, "server", None):
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=30)


def revisions(nodes):
    out = {}
    for n in nodes:
        s = status(n)
        out[n] = (s or {}).get("revision", 0), (s or {}).get("applied_at", 0.0)
    return out


def propagation(bench, counts, rounds):
    api = bench.api
    api.call("POST", "/api/v1/clusters", {"name": "bench", "defense": "on"})
    api.call("POST", "/api/v1/objects", {"name": "web", "namespace": "shop", "app": "web"})
    rule = api.call("POST", "/api/v1/clusters/bench/rules",
                    {"name": "r1", "source": "web", "destinations": [{"object": "web", "ports": "80"}],
                     "protocol": "tcp", "action": "allow", "priority": 10})
    bench.join = {"bench": api.call("GET", "/api/v1/clusters/bench/join-token")["join_token"]}
    nodes, rows = [], []
    for n in counts:
        while len(nodes) < n:
            i = len(nodes)
            node = f"bn{os.getpid() % 10000}x{i}"
            bench.start_agent(node, [(f"w{i}-{k}", f"10.{100 + i // 250}.{i % 250}.{10 + k}")
                                     for k in range(3)])
            nodes.append(node)
        # settled: every agent has the same revision for a while
        def settled():
            r = revisions(nodes)
            revs = {v[0] for v in r.values()}
            return len(revs) == 1 and 0 not in revs and r
        wait(settled, 120, f"{n} agents to apply the policy")
        time.sleep(1.0)
        wait(settled, 60, f"{n} agents to settle")
        per_agent, slowest = [], []
        cpu0 = cpu_s(bench.server.pid), sum(cpu_s(p.pid) for p, _ in bench.procs)
        for k in range(rounds):
            before = revisions(nodes)
            t0 = time.time()
            api.call("PATCH", f"/api/v1/clusters/bench/rules/{rule['id']}", {"priority": 10 + (k % 2) + 1})
            after = wait(lambda: (lambda r: r if all(r[x][0] > before[x][0] for x in nodes) else None)(
                revisions(nodes)), 30, "the change to reach every agent")
            lat = [(after[x][1] - t0) * 1000 for x in nodes]
            per_agent += lat
            slowest.append(max(lat))
        cpu1 = cpu_s(bench.server.pid), sum(cpu_s(p.pid) for p, _ in bench.procs)
        rss = sorted(rss_kib(p.pid) for p, _ in bench.procs)
        rows.append((n, rounds, pct(per_agent, 50), pct(per_agent, 99), pct(slowest, 50),
                     pct(slowest, 99), rss[len(rss) // 2], (cpu1[0] - cpu0[0]) * 1000 / rounds,
                     (cpu1[1] - cpu0[1]) * 1000 / rounds / n))
        print(f"propagation agents={n} p50={pct(per_agent, 50):.1f}ms p99={pct(per_agent, 99):.1f}ms "
              f"all_p50={pct(slowest, 50):.1f}ms all_p99={pct(slowest, 99):.1f}ms", file=sys.stderr)
    bench.stop_agents()
    return rows


def memory(bench, sizes):
    """moatd's RSS (KiB) with 0 remote workloads, then with each of `sizes` (ascending)."""
    api = bench.api
    api.call("POST", "/api/v1/clusters", {"name": "mem", "defense": "on"})
    api.call("POST", "/api/v1/clusters/mem/rules",
             {"name": "r1", "source": "web", "destinations": [{"object": "web", "ports": "80"}],
              "protocol": "tcp", "action": "allow", "priority": 10})
    bench.join["mem"] = api.call("GET", "/api/v1/clusters/mem/join-token")["join_token"]

    def agent_rss(node):
        p = bench.start_agent(node, [], cluster="mem")
        wait(lambda: (status(node) or {}).get("revision", 0) > 0, 900, "the memory agent's policy")
        # settled: no newer answer applied for 3 s and the resident set flat for 2 s
        # (the agent's own report may bring one more answer, parsed before it applies)
        seen = {"at": None, "since": time.time(), "rss": []}

        def quiet():
            s = status(node) or {}
            now = (s.get("revision"), s.get("applied_at"))
            if now != seen["at"]:
                seen["at"], seen["since"] = now, time.time()
            seen["rss"] = (seen["rss"] + [rss_kib(p.pid)])[-8:]
            r = seen["rss"]
            flat = len(r) == 8 and max(r) - min(r) <= max(r) // 100
            time.sleep(0.23)
            return flat and time.time() - seen["since"] >= 3.0
        wait(quiet, 900, "the memory agent to settle")
        samples = seen["rss"]
        rss = samples[-1]
        print(f"memory node={node} rss samples (KiB): {samples} peak {rss_kib(p.pid, 'VmHWM')}",
              file=sys.stderr)
        with open(os.path.join(bench.tmp, f"moatd-{node}.log")) as f:
            applied = [l.strip() for l in f if "applied (" in l or " taken: " in l]
        print(f"memory node={node} rss_kib={rss} log lines={len(applied)} last: "
              f"{' / '.join(applied[-2:]) or '-'}", file=sys.stderr)
        bench.stop_agents()
        return rss

    out = [(0, agent_rss(f"mem0x{os.getpid() % 10000}"))]
    per_node, done = 2000, 0  # one PUT per node (a node may report 4,096)
    for total in sizes:
        for i in range(done // per_node, total // per_node):
            report_node(api, bench, i, per_node)
        done = total // per_node * per_node
        out.append((total, agent_rss(f"memf{total}x{os.getpid() % 10000}")))
    return out


def sim_workloads(i, per_node, extra=0):
    """The workloads simulated node i reports: `per_node`, then `extra` more (10.200/16 on)."""
    wls = [{"name": f"w{i}-{k}", "namespace": f"ns{k % 20}", "image": f"registry.example.com/app{k % 50}:1",
            "labels": {"app": f"app{k % 50}", "tier": ["web", "api", "db"][k % 3]},
            "ips": [(lambda g: f"10.{128 + g // 65536}.{g // 256 % 256}.{g % 256}")(i * per_node + k)]}
           for k in range(per_node)]
    wls += [{"name": f"x{i}-{k}", "namespace": f"ns{k % 20}", "image": f"registry.example.com/app{k % 50}:1",
             "labels": {"app": f"app{k % 50}", "tier": ["web", "api", "db"][k % 3]},
             "ips": [f"10.{200 + i // 256}.{i % 256}.{k % 250 + 1}"]} for k in range(extra)]
    return wls


def report_node(api, bench, i, per_node, cluster="mem", extra=0):
    """Simulated node i registers (once) and reports `per_node` (+ `extra`) workloads."""
    node = f"sim{i}"
    tokens = bench.__dict__.setdefault("sim_tokens", {})
    if (cluster, node) not in tokens:
        reg = api.call("POST", "/api/v1/agents/register",
                       {"cluster": cluster, "node": node, "join_token": bench.join[cluster]})
        tokens[(cluster, node)] = reg["token"]
    api.call("PUT", "/api/v1/agents/workloads", {"workloads": sim_workloads(i, per_node, extra)},
             token=tokens[(cluster, node)])


def churn(bench, sizes, rounds, changes, other=None):
    """
    Pod churn into one real moatd: with W remote workloads in its cluster, a
    simulated node reports k more workloads, then k fewer (each round a delta
    of k workload changes). Per round: the time from just before the report
    (PUT) until the agent has the new revision in force (`applied_at` in its
    status file), and moatd's own apply time and path from its status.
    With `other` (another build), a second agent of that build follows the
    same cluster and is measured in the same rounds (before / after).
    Returns rows (W, k, build, [ms...], [moatd ms...], paths).
    """
    api = bench.api
    api.call("POST", "/api/v1/clusters", {"name": "churn", "defense": "on"})
    rule = api.call("POST", "/api/v1/clusters/churn/rules",
             {"name": "r1", "source": "web", "destinations": [{"object": "web", "ports": "80"}],
              "protocol": "tcp", "action": "allow", "priority": 10})
    bench.join["churn"] = api.call("GET", "/api/v1/clusters/churn/join-token")["join_token"]
    per_node, done, rows = 2000, 0, []
    for total in sizes:
        for i in range(done // per_node, total // per_node):
            report_node(api, bench, i, per_node, cluster="churn")
        done = total // per_node * per_node
        agents = [(f"churn{total}x{os.getpid() % 10000}", None)]
        if other:
            agents.append((f"churnb{total}x{os.getpid() % 10000}", other))
        for node, build in agents:
            bench.start_agent(node, [], cluster="churn", build=build)
        for node, _ in agents:
            wait(lambda: (status(node) or {}).get("revision", 0) > 0, 900, "the churn agent's policy")
        seen = {"at": None, "since": time.time()}

        def quiet():
            now = tuple(((status(n) or {}).get("revision"), (status(n) or {}).get("applied_at"))
                        for n, _ in agents)
            if now != seen["at"]:
                seen["at"], seen["since"] = now, time.time()
            time.sleep(0.1)
            return time.time() - seen["since"] >= 3.0
        wait(quiet, 900, "the churn agents to settle")
        for k in changes:
            res = {n: ([], [], []) for n, _ in agents}
            for r in range(2 * rounds):
                before = {n: (status(n) or {}).get("revision", 0) for n, _ in agents}
                t0 = time.time()
                if k == "rule":
                    api.call("PATCH", f"/api/v1/clusters/churn/rules/{rule['id']}",
                             {"priority": 11 + r % 2})
                else:
                    report_node(api, bench, 0, per_node, cluster="churn",
                                extra=k if r % 2 == 0 else 0)
                for n, _ in agents:
                    s = wait(lambda: (lambda s: s if s.get("revision", 0) > before[n] and
                                      s.get("applied_at", 0) >= t0 else None)(
                        status(n) or {}), 300, "the churn to reach the agent")
                    ap = s.get("policy_apply") or {}
                    res[n][0].append((s["applied_at"] - t0) * 1000)
                    res[n][1].append(ap.get("last_received_ms", -1))
                    res[n][2].append(ap.get("last_path", "?"))
                time.sleep(0.5)  # the agents' own reports settle
            for n, build in agents:
                lat, own, paths = res[n]
                name = build or bench.b
                rows.append((total, k, name, lat, own, paths))
                print(f"churn workloads={total} changes={k} build={name} report-to-in-force ms raw: "
                      f"{[round(x, 1) for x in lat]} moatd receive-to-in-force ms raw: "
                      f"{[round(x, 2) for x in own]} paths: {paths}", file=sys.stderr)
        for node, _ in agents:
            with open(os.path.join(bench.tmp, f"moatd-{node}.log")) as f:
                tail = [l.strip() for l in f][-8:]
            print(f"churn workloads={total} {node} moatd log tail:\n  " + "\n  ".join(tail),
                  file=sys.stderr)
        bench.stop_agents()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--agents", default="1,10,50")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--workloads", default="10000")
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--churn", default="",
                    help="only pod churn: changes per delta, e.g. 1,100 (rule: a rule changed)")
    ap.add_argument("--compare", default="", help="--churn: also an agent of this build (before)")
    a = ap.parse_args()
    sizes = [int(x) for x in a.workloads.split(",")]
    with tempfile.TemporaryDirectory(dir=os.environ.get("MOAT_BENCH_TMP")) as tmp:
        bench = Bench(a.build, tmp)
        try:
            bench.start_server()
            bench.join = {}
            if a.churn:
                bench.api.call("POST", "/api/v1/objects", {"name": "web", "namespace": "shop", "app": "web"})
                kinds = [x if x == "rule" else int(x) for x in a.churn.split(",")]
                ch = churn(bench, sizes, a.rounds, kinds,
                           os.path.abspath(a.compare) if a.compare else None)
                print("| cluster workloads | changes per delta | moatd build | rounds | report to in force p50 (ms) | max (ms) | moatd receive to in force p50 (ms) | paths |")
                print("|---:|---:|---|---:|---:|---:|---:|---|")
                for total, k, name, lat, own, paths in ch:
                    print(f"| {total} | {k} | {name} | {len(lat)} | {pct(lat, 50):.1f} | {max(lat):.1f} | "
                          f"{pct(own, 50):.2f} | {','.join(sorted(set(paths)))} |")
                return
            if a.memory_only:  # the object memory()'s rule names; propagation() makes it otherwise
                bench.api.call("POST", "/api/v1/objects", {"name": "web", "namespace": "shop", "app": "web"})
            rows = [] if a.memory_only else propagation(bench, [int(x) for x in a.agents.split(",")],
                                                         a.rounds)
            mem = memory(bench, sizes)
        finally:
            bench.cleanup()
    if rows:
        print("| agents | rounds | per agent p50 (ms) | per agent p99 (ms) | all nodes p50 (ms) | all nodes p99 (ms) | server CPU per change (ms) | agent CPU per change, each (ms) | moatd RSS, median (MiB) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, r, p50, p99, a50, a99, rss, scpu, acpu in rows:
            print(f"| {n} | {r} | {p50:.1f} | {p99:.1f} | {a50:.1f} | {a99:.1f} | {scpu:.1f} | {acpu:.1f} | {rss / 1024:.1f} |")
        print()
    print("| cluster workloads | moatd RSS (MiB) | per workload (KiB) |")
    print("|---:|---:|---:|")
    base = mem[0][1]
    print(f"| 0 | {base / 1024:.1f} | - |")
    for total, full in mem[1:]:
        print(f"| {total} | {full / 1024:.1f} | {(full - base) / total:.2f} |")


main()
