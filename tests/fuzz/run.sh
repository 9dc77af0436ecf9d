#!/bin/sh
# Runs each libFuzzer target for a bounded number of inputs (seeded from
# tests/fuzz/corpus) and prints `ok NAME` and a closing `N passed, N failed`.
# Longer runs: FUZZ_RUNS=1000000 sh tests/fuzz/run.sh build/fuzz
set -u
B=${1:?build dir}
RUNS=${FUZZ_RUNS:-20000}
pass=0
fail=0
for t in "$B"/tests/fuzz/fuzz_*; do
    case "$t" in *.o | *.d) continue ;; esac
    [ -x "$t" ] || continue
    name=$(basename "$t")
    work=$(mktemp -d)
    cp tests/fuzz/corpus/* "$work/"
    if "$t" -runs="$RUNS" -max_len=4096 -seed=1 -timeout=10 "$work" >"$work.log" 2>&1; then
        pass=$((pass + 1))
        echo "ok $name ($RUNS inputs)"
    else
        fail=$((fail + 1))
        echo "FAIL $name"
        tail -40 "$work.log"
    fi
    rm -rf "$work" "$work.log"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
