#!/usr/bin/python3
"""Reads `moatd status -o json` on stdin and answers one question (tests/containers).

  status.py workload NAME      -> "NAMESPACE APP IMAGE IPS LABELS SOURCE ATTACHED" or "absent"
  status.py names              -> the workloads' names, sorted, comma-separated
  status.py held               -> "TOTAL WHILE_DOWN WHILE_UP" of the hold counters
  status.py discovery          -> "connected synced" as 1/0 pairs
"""
import json
import sys

try:
    st = json.load(sys.stdin)
except ValueError:
    print("no-status")
    sys.exit(0)
what = sys.argv[1]
wls = st.get("interfaces", [])
if what == "workload":
    for w in wls:
        if w.get("workload") == sys.argv[2]:
            labels = ",".join("%s=%s" % kv for kv in sorted(w.get("labels", {}).items()))
            print(w.get("namespace"), w.get("labels", {}).get("app", "-"), w.get("image"),
                  ",".join(w.get("ips", [])), labels, w.get("source", "").split(":")[0],
                  "attached" if w.get("attached") else "waiting")
            break
    else:
        print("absent")
elif what == "names":
    print(",".join(sorted(w.get("workload", "") for w in wls)))
elif what == "held":
    h = st.get("hold", {})
    print(h.get("held_total", 0), h.get("held_while_down", 0), h.get("held_while_up", 0))
elif what == "discovery":
    d = st.get("discovery", {})
    print(int(bool(d.get("connected"))), int(bool(d.get("synced"))))
