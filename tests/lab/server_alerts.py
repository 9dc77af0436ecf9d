#!/usr/bin/env python3
"""Queries the alerts moat-server holds (the JSON of `moat alert list -o json`
on stdin: {"items": [...]}). Usage:
  server_alerts.py count|attempts [key=value ...]
Keys: src, dst (workload names), srcaddr, dport, applied, rule (name or
"none"), node, kind. count: matching alerts; attempts: their attempts summed.
"""
import json
import sys


def fields(a):
    src = a.get("source") or {}
    dst = a.get("destination") or {}
    rule = a.get("rule")
    return {
        "src": src.get("name", "-"),
        "dst": dst.get("name", "-"),
        "srcaddr": src.get("address", "-"),
        "dport": str(dst.get("port", "-")),
        "applied": a.get("applied_action"),
        "rule": rule["name"] if rule else "none",
        "node": a.get("node"),
        "kind": a.get("kind"),
    }


def main():
    what = sys.argv[1]
    want = dict(kv.split("=", 1) for kv in sys.argv[2:])
    try:
        items = json.load(sys.stdin).get("items", [])
    except ValueError:
        items = []
    hits = [a for a in items if all(fields(a).get(k) == v for k, v in want.items())]
    print(len(hits) if what == "count" else sum(a.get("attempts", 0) for a in hits))


main()
