#!/bin/sh
# Runs Moat's test suites and prints one closing line per suite and a total:
# `SUITE: N passed, N failed`, then `N passed, N failed`.
# Usage: tests/run.sh BUILD_DIR [unit|golden|cli|api|api-postgresql|pg|...]
set -u
B=${1:?build dir}
ONLY=${2:-all}
TOTAL_P=0
TOTAL_F=0

count() { # suite passed failed
    echo "$1: $2 passed, $3 failed"
    TOTAL_P=$((TOTAL_P + $2))
    TOTAL_F=$((TOTAL_F + $3))
}

run_cmocka() { # binary
    name=$(basename "$1")
    out=$("$1" 2>&1)
    rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed or sanitizer report
    if [ "$f" -ne 0 ]; then printf '%s\n' "$out" | tail -60; fi
    count "$name" "$p" "$f"
}

if [ "$ONLY" = all ] || [ "$ONLY" = unit ]; then
    for t in "$B"/tests/unit/test_*; do
        case "$t" in *.o | *.d) continue ;; esac
        [ -x "$t" ] && run_cmocka "$t"
    done
fi
if [ "$ONLY" = all ] || [ "$ONLY" = bpf ]; then
    for t in "$B"/tests/bpf/test_*; do
        case "$t" in *.o | *.d) continue ;; esac
        [ -x "$t" ] && run_cmocka "$t"
    done
    # A test that crashed could not unpin its maps: remove what is left by
    # test processes that are gone (another checkout's suite may be running).
    for d in /sys/fs/bpf/moat/test-*; do
        [ -d "$d" ] || continue
        kill -0 "${d##*/test-}" 2>/dev/null || rm -rf "$d"
    done
    rmdir /sys/fs/bpf/moat 2>/dev/null
fi
# A suite may take a parameter after a colon: the API suite runs on each store.
for entry in tests/fuzz/run.sh tests/golden/run.sh tests/cli/run.sh tests/api/run.sh:sqlite \
    tests/api/run.sh:postgresql tests/pg/run.sh tests/lab/run.sh tests/browser/run.sh \
    tests/containers/run.sh; do
    suite=${entry%%:*}
    param=
    [ "$suite" != "$entry" ] && param=${entry#*:}
    name=$(basename "$(dirname "$suite")")
    if [ "$ONLY" = all ] || [ "$ONLY" = "$name" ] || [ "$ONLY" = "$name-$param" ]; then
        [ -f "$suite" ] || continue
        dir=$B
        [ "$name" = fuzz ] && dir=$(dirname "$B")/fuzz # the fuzzers are a build of their own
        [ -n "$param" ] && name=$name-$param
        # shellcheck disable=SC2086 # no parameter: no argument
        out=$(sh "$suite" "$dir" $param 2>&1)
        rc=$?
        line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
        p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
        f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
        p=${p:-0}
        f=${f:-0}
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        if [ "$f" -ne 0 ]; then # every failure, then the end of the suite's output
            printf '%s\n' "$out" | grep -E '^(== |FAIL)' | grep -B1 '^FAIL' | grep -v '^--$'
            printf '%s\n' "$out" | grep -v '^ok ' | tail -60
        fi
        count "$name" "$p" "$f"
    fi
done
echo "$TOTAL_P passed, $TOTAL_F failed"
[ "$TOTAL_F" -eq 0 ]
