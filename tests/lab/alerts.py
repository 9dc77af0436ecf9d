#!/usr/bin/env python3
"""Queries a moatd alerts file (JSON lines; an alert is re-emitted each time it
changes, the last line per id wins). Usage:
  alerts.py FILE count [key=value ...]     -> number of matching alerts
  alerts.py FILE attempts [key=value ...]  -> attempts summed over matching alerts
Keys: src (source workload name), dst (destination workload name), dport,
applied, configured, rule (rule name or "none"), kind, would_block (true/false),
srcaddr.
"""
import json
import sys


def fields(a):
    src = a["source"]["workload"] or {}
    dst = a["destination"]["workload"] or {}
    return {
        "src": src.get("name", "-"),
        "dst": dst.get("name", "-"),
        "srcaddr": a["source"]["address"],
        "dport": str(a["destination"]["port"]),
        "applied": a["applied_action"],
        "configured": a["configured_action"],
        "rule": a["rule"]["name"] if a["rule"] else "none",
        "kind": a["kind"],
        "would_block": "true" if a.get("would_block") else "false",
    }


def main():
    path, what = sys.argv[1], sys.argv[2]
    want = dict(kv.split("=", 1) for kv in sys.argv[3:])
    last = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    a = json.loads(line)
                    last[a["id"]] = a
    except FileNotFoundError:
        pass
    hits = [a for a in last.values() if all(fields(a).get(k) == v for k, v in want.items())]
    print(len(hits) if what == "count" else sum(a["attempts"] for a in hits))


main()
