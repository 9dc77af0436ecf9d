#!/usr/bin/env python3
"""Policy deltas by revision (issue 17), run by `make bench` (bench/run.sh).

A real moat-server (SQLite) with a cluster of W workloads, reported by
simulated nodes of 2,000 workloads each through the agent API, 20 rules.

1. Bytes per change per agent: after one change (a rule changed, one
   workload added, one removed, 100 workloads changed in one report: 50 gone
   and 50 new), the answer an agent at the previous revision
   gets with delta=1 and without (the full state). Rounds interleaved (delta
   first, then full, then the other way round); the first answer after a
   change also builds the snapshot, so its time is the build cost, and a
   second ask of the same (R -> now) shows the shared answer's cost. The
   server's own figure is in raw build_ms (moat_policy_build_seconds_total
   around the asks; servers before it have none: nan) with records_parsed.
2. Propagation (--agents N): N simulated agents (asyncio, one keep-alive
   connection each from 127.1.X.Y, 100 per address) long-poll with delta=1
   from the current revision, as moatd does. (a) Rule change rounds: the time
   from just before the PATCH to each agent receiving the new revision. (b)
   Pod churn: five more simulated nodes of 100 workloads report R workloads/s
   (each report 10 added and 10 removed on one node) for D seconds; per report, the time from sending
   it to each agent receiving a revision at least the report's. p50/p99/max,
   and (raw) how long the reports took to be answered and how many builds the
   server made meanwhile, with their time.
   The agents are Python on the same cores as the server: they add their own
   delay, so the figures are an upper bound.

Prints markdown table rows (lines starting with '|') and notes; raw rounds
after 'raw:'.
Usage: bench/delta.py BUILD_DIR [--workloads 10000,100000] [--agents 1000]
       [--rounds 5] [--churn-s 10] [--churn-rate 100] [--perf FILE]
"""
import argparse
import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

PER_NODE = 2000


class Api:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def raw(self, method, path, body=None, token=None, timeout=300):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + (token or self.token))
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def call(self, method, path, body=None, token=None):
        code, text = self.raw(method, path, body, token)
        if code >= 300 and code != 304:
            raise RuntimeError("%s %s: %d %s" % (method, path, code, text[:200]))
        return json.loads(text) if text else None


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else float("nan")


PERF = None  # --perf FILE: the server runs under `perf record -g -o FILE`


def start_server(build, tmp):
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    admin = subprocess.check_output([build + "/moat-server", "token", "create", "--data", data,
                                     "--role", "admin"], text=True).strip()
    log = open(os.path.join(tmp, "server.log"), "w")
    cmd = [build + "/moat-server", "--listen", "127.0.0.1:0", "--data", data,
           "--auth-failures", "1000000/1"]
    if PERF:
        cmd = ["perf", "record", "-g", "-o", PERF, "--"] + cmd
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.time()
    while time.time() - t0 < 30:
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log.name).read())
        if m:
            return p, int(m.group(1)), admin
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit("bench/delta: moat-server did not start: " + open(log.name).read()[-500:])


def workload(node, i):
    return {"name": "w-%s-%d" % (node, i), "namespace": "ns-%d" % (i % 50),
            "image": "registry.example/shop/app:1.2.3",
            "labels": {"app": "app-%d" % (i % 20), "tier": "back", "team": "payments"},
            "ips": ["10.%d.%d.%d" % (sum(node.encode()) % 200, (i >> 8) & 255, i & 255)]}


class Feeders:
    """Simulated nodes that report workloads (PER_NODE each)."""

    def __init__(self, api, jt, count, per=PER_NODE, prefix="feed"):
        self.api, self.nodes = api, []
        for n in range(count):
            name = "%s-%d" % (prefix, n)
            tok = api.call("POST", "/api/v1/agents/register",
                           {"cluster": "bench", "node": name, "join_token": jt}, token="")["token"]
            wl = {w["name"]: w for w in (workload(name, i) for i in range(per))}
            self.nodes.append({"name": name, "token": tok, "wl": wl, "next": per, "n": name})
            self.report(n)

    def report(self, n):
        node = self.nodes[n]
        return self.api.call("PUT", "/api/v1/agents/workloads",
                             {"workloads": list(node["wl"].values())}, token=node["token"])["revision"]

    def churn(self, n, k):
        node = self.nodes[n]
        for name in list(node["wl"])[:k]:
            del node["wl"][name]
        for _ in range(k):
            w = workload(node["n"], node["next"])
            node["next"] += 1
            node["wl"][w["name"]] = w
        return self.report(n)


def revision(api, tok):
    return json.loads(api.raw("GET", "/api/v1/agents/policy?revision=0", token=tok)[1])["revision"]


def build_metrics(api):
    """(builds, seconds, parsed, reused) from /metrics; NaN where the server has none (before)."""
    text = api.raw("GET", "/metrics")[1].decode()
    out = []
    for name in ("moat_policy_builds_total", "moat_policy_build_seconds_total",
                 "moat_policy_records_parsed_total", "moat_policy_records_reused_total"):
        m = re.search(r"^%s ([0-9.]+)" % name, text, re.M)
        out.append(float(m.group(1)) if m else float("nan"))
    return out


CHANGES = ("rule", "add", "remove", "churn100")


def bytes_rounds(api, tok, feeders, rule_path, rounds):
    """[(what, full_bytes, delta_bytes, first_delta_ms, shared_delta_ms, full_ms, delta_first,
    build_ms, parsed)]"""
    out = []
    for r in range(rounds):
        for what in CHANGES:
            rev = revision(api, tok)
            if what == "rule":
                api.call("PATCH", rule_path, {"priority": 100 + r})
            elif what == "add":
                node = feeders.nodes[0]
                w = workload(node["n"], 900000 + r)
                node["wl"][w["name"]] = w
                feeders.report(0)
            elif what == "remove":
                node = feeders.nodes[0]
                del node["wl"][next(iter(node["wl"]))]
                feeders.report(0)
            else:  # 100 workloads changed in one report: 50 gone, 50 new
                feeders.churn(0, 50)
            m0 = build_metrics(api)
            qd = "/api/v1/agents/policy?revision=%d&wait=0&delta=1" % rev
            qf = "/api/v1/agents/policy?revision=%d&wait=0" % rev
            order = [qd, qf] if r % 2 == 0 else [qf, qd]  # interleaved: who builds alternates
            res = {}
            for q in order:
                t0 = time.time()
                code, body = api.raw("GET", q, token=tok)
                res[q] = (len(body), (time.time() - t0) * 1000, body[:40])
            m1 = build_metrics(api)
            t0 = time.time()
            api.raw("GET", qd, token=tok)
            shared_ms = (time.time() - t0) * 1000
            if b'"delta":true' not in res[qd][2]:
                print("note: %s round %d was answered in full" % (what, r))
            out.append((what, res[qf][0], res[qd][0], res[qd][1], shared_ms, res[qf][1],
                        order[0] == qd, (m1[1] - m0[1]) * 1000, m1[2] - m0[2]))
    return out


LATEST = {}  # agent -> newest revision received


async def agent(i, port, tok, start_rev, got, stop):
    src = "127.1.%d.%d" % (1 + i // 100 // 250, 1 + (i // 100) % 250)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0),
                                                   limit=1 << 26)
    rev = start_rev
    while not stop.is_set():
        writer.write(("GET /api/v1/agents/policy?revision=%d&wait=20&delta=1 HTTP/1.1\r\n"
                      "Host: x\r\nAuthorization: Bearer %s\r\n\r\n" % (rev, tok)).encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
        body = await reader.readexactly(int(m.group(1))) if m else b""
        now = time.time()
        if status == 200:
            mr = re.search(rb'"revision":(\d+)', body[:200])
            rev = int(mr.group(1))
            got.append((now, i, rev, len(body), b'"delta":true' in body[:200]))
            LATEST[i] = rev
    writer.close()


def propagation(port, tokens, start_rev, api, rule_path, feeders, rounds, churn_s, churn_rate):
    got, stop = [], None
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def main():
        nonlocal stop
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(agent(i, port, t, start_rev, got, stop))
                 for i, t in enumerate(tokens)]
        ready.set()
        await stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    th = threading.Thread(target=lambda: loop.run_until_complete(main()))
    th.start()
    ready.wait()

    def waiting():
        text = api.raw("GET", "/metrics")[1].decode()
        m = re.search(r"^moat_long_polls (\d+)", text, re.M)
        return int(m.group(1)) if m else 0

    def all_at(rev, bound=60):
        t0 = time.time()
        while time.time() - t0 < bound:
            have = dict(LATEST)
            if len(have) == len(tokens) and min(have.values()) >= rev:
                return True
            time.sleep(0.05)
        return False

    t0 = time.time()
    while waiting() < len(tokens) and time.time() - t0 < 120:
        time.sleep(0.2)
    polls = waiting()
    rule_lat, rule_rounds = [], []
    for r in range(rounds):
        rev = revision(api, feeders.nodes[0]["token"])
        mark = len(got)
        t0 = time.time()
        api.call("PATCH", rule_path, {"priority": 200 + r})
        ok = all_at(rev + 1)
        lat = [(t - t0) * 1000 for (t, _, rv, _, _) in got[mark:] if rv >= rev + 1]
        per_agent = {}
        for (t, i, rv, _, _) in got[mark:]:
            if rv >= rev + 1 and i not in per_agent:
                per_agent[i] = (t - t0) * 1000
        rule_lat += per_agent.values()
        rule_rounds.append(max(per_agent.values()) if per_agent else float("nan"))
        if not ok:
            print("note: rule round %d: not every agent got it within 60 s" % r)
        t1 = time.time()
        while waiting() < len(tokens) and time.time() - t1 < 30:
            time.sleep(0.05)
    # churn: reports of 20 workloads (10 added, 10 removed), churn_rate workloads/s in all,
    # one thread per churning node (a slow answer to one does not hold the others back)
    sent, put_ms = [], []
    m0 = build_metrics(api)
    nodes = len(feeders.nodes)
    interval = 20.0 * nodes / churn_rate
    t_end = time.time() + churn_s
    mark = len(got)

    def churner(n):
        while time.time() < t_end:
            t0 = time.time()
            rev = feeders.churn(n, 10)
            sent.append((t0, rev))
            put_ms.append((time.time() - t0) * 1000)
            pause = interval - (time.time() - t0)
            if pause > 0:
                time.sleep(pause)

    threads = [threading.Thread(target=churner, args=(n,)) for n in range(nodes)]
    for n, t in enumerate(threads):
        time.sleep(interval / nodes)  # spread over the interval
        t.start()
    for t in threads:
        t.join()
    last = max(r for (_, r) in sent)
    all_at(last, 120)
    m1 = build_metrics(api)
    recv = got[mark:]
    churn_lat = []
    per_agent = {}
    for (t, i, rv, _, _) in recv:
        per_agent.setdefault(i, []).append((t, rv))
    for (ts, rv) in sent:
        for i, seq in per_agent.items():
            first = next((t for (t, r) in seq if r >= rv), None)
            if first is not None:
                churn_lat.append((first - ts) * 1000)
    answers = len(recv)
    deltas = sum(1 for x in recv if x[4])
    nbytes = sum(x[3] for x in recv)
    loop.call_soon_threadsafe(stop.set)
    th.join(30)
    return {"polls": polls, "rule": rule_lat, "rule_rounds": rule_rounds, "churn": churn_lat,
            "reports": len(sent), "achieved_rate": 20 * len(sent) / churn_s,
            "answers": answers, "deltas": deltas, "bytes": nbytes, "put_ms": put_ms,
            "builds": m1[0] - m0[0], "build_s": m1[1] - m0[1]}


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--workloads", default="10000,100000")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--churn-s", type=float, default=10)
    ap.add_argument("--churn-rate", type=float, default=100)
    ap.add_argument("--perf", help="record the server with perf into this file")
    a = ap.parse_args()
    global PERF
    PERF = a.perf
    sizes = [int(x) for x in a.workloads.split(",")]
    rows_bytes, rows_prop, raw = [], [], []
    for w in sizes:
        tmp = tempfile.mkdtemp(prefix="moat-bench-delta-")
        proc, port, admin = start_server(a.build, tmp)
        try:
            api = Api("http://127.0.0.1:%d" % port, admin)
            api.call("POST", "/api/v1/clusters", {"name": "bench", "defense": "on"})
            api.call("POST", "/api/v1/objects", {"name": "web", "namespace": "ns-1", "app": "app-1"})
            rule = None
            for i in range(20):
                rule = api.call("POST", "/api/v1/clusters/bench/rules",
                                {"name": "r%d" % i, "source": "any",
                                 "destinations": [{"object": "web", "ports": str(8000 + i)}],
                                 "action": "allow", "priority": 10 + i})["id"]
            rule_path = "/api/v1/clusters/bench/rules/%d" % rule
            jt = api.call("POST", "/api/v1/clusters/bench/join-tokens", {"ttl": "2h"})["join_token"]
            t0 = time.time()
            feeders = Feeders(api, jt, max(1, w // PER_NODE))
            churners = Feeders(api, jt, 5, per=100, prefix="churn")  # small nodes: cheap reports
            setup_s = time.time() - t0
            tok = feeders.nodes[0]["token"]
            rounds = bytes_rounds(api, tok, feeders, rule_path, a.rounds)
            for what in CHANGES:
                rs = [x for x in rounds if x[0] == what]
                full = sorted(x[1] for x in rs)[len(rs) // 2]
                delta = sorted(x[2] for x in rs)[len(rs) // 2]
                first_d = pct([x[3] for x in rs if x[6]], 50)
                first_f = pct([x[5] for x in rs if not x[6]], 50)
                shared = pct([x[4] for x in rs], 50)
                rows_bytes.append("| %d | %s | %d | %d | %.5f | %.1f | %.1f | %.1f |" % (
                    w, {"rule": "rule changed", "add": "one workload added",
                        "remove": "one workload removed",
                        "churn100": "100 workloads changed (50 gone, 50 new)"}[what], full, delta,
                    delta / full,
                    first_f, first_d, shared))
                raw.append("raw: workloads=%d %s full_b=%s delta_b=%s delta_first_ms=%s "
                           "shared_ms=%s full_ms=%s delta_asked_first=%s build_ms=%s "
                           "records_parsed=%s" % (
                               w, what, ",".join(str(x[1]) for x in rs),
                               ",".join(str(x[2]) for x in rs),
                               ",".join("%.1f" % x[3] for x in rs),
                               ",".join("%.1f" % x[4] for x in rs),
                               ",".join("%.1f" % x[5] for x in rs),
                               ",".join(str(int(x[6])) for x in rs),
                               ",".join("%.1f" % x[7] for x in rs),
                               ",".join("%.0f" % x[8] for x in rs)))
            if a.agents and w == sizes[-1]:
                tf = os.path.join(tmp, "tokens")
                subprocess.check_call([a.build + "/moat-fleet", "--port", str(port), "--cluster",
                                       "bench", "--join-token", jt, "--agents", str(a.agents),
                                       "--register-only", "--tokens", tf],
                                      stdout=subprocess.DEVNULL)
                tokens = [x.strip() for x in open(tf) if x.strip()]
                start_rev = revision(api, tok)
                p = propagation(port, tokens, start_rev, api, rule_path, churners, a.rounds,
                                a.churn_s, a.churn_rate)
                rows_prop.append("| %d | %d | rule change (%d rounds) | %.0f | %.0f | %.0f | - |" % (
                    w, len(tokens), a.rounds, pct(p["rule"], 50), pct(p["rule"], 99),
                    max(p["rule"]) if p["rule"] else float("nan")))
                rows_prop.append("| %d | %d | pod churn, %.0f workloads/s for %.0f s (%d reports) "
                                 "| %.0f | %.0f | %.0f | %d answers, %d deltas, %.1f MB |" % (
                                     w, len(tokens), p["achieved_rate"], a.churn_s, p["reports"],
                                     pct(p["churn"], 50), pct(p["churn"], 99),
                                     max(p["churn"]) if p["churn"] else float("nan"),
                                     p["answers"], p["deltas"], p["bytes"] / 1e6))
                raw.append("raw: workloads=%d agents=%d polls_held=%d rule_round_slowest_ms=%s" % (
                    w, len(tokens), p["polls"], ",".join("%.0f" % x for x in p["rule_rounds"])))
                pm = p["put_ms"]
                raw.append("raw: churn reports=%d put_ms p50=%.0f p99=%.0f max=%.0f builds=%.0f "
                           "build_s=%.2f" % (len(pm), pct(pm, 50), pct(pm, 99),
                                             max(pm) if pm else float("nan"), p["builds"],
                                             p["build_s"]))
            print("note: %d workloads set up in %.1f s" % (w, setup_s))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            subprocess.call(["rm", "-rf", tmp])
    print("| workloads | change | full answer (B) | delta (B) | delta/full | first ask, full (ms) "
          "| first ask, delta (ms) | the same delta again (ms) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows_bytes:
        print(r)
    if rows_prop:
        print()
        print("| workloads | agents | change | p50 (ms) | p99 (ms) | max (ms) | answers |")
        print("|---:|---:|---|---:|---:|---:|---|")
        for r in rows_prop:
            print(r)
    for r in raw:
        print(r)


if __name__ == "__main__":
    sys.exit(main())
