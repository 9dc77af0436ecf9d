#!/bin/sh
# Golden tests for the policy compiler (`moat compile`).
#
# Usage: sh tests/golden/run.sh BUILD_DIR      (e.g. build/asan)
#
# Each scenario is NN-name.yaml (policy + inventory in one file) with the
# expected `moat compile` text in NN-name.out. Comment lines in the yaml:
#   # args: --node n1        (first line only) extra arguments, given to both
#                            `moat compile` and `moat explain`
#   # flow: EXPLAIN-ARGS => ACTION RULE [APPLIED]
#                            runs `moat explain -f NN-name.yaml EXPLAIN-ARGS -o json`
#                            and checks the top-level "action", the rule id
#                            (RULE is a number, or `-` for no rule) and, when
#                            given, "applied_action".
# Every compile comparison and every flow counts as one test. Prints `ok ...`
# per passing test, a diff or the mismatch per failing one, and ends with
# `N passed, N failed`; exit status 0 only when none failed. POSIX sh.
set -u

B=${1:?usage: run.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
MOAT="$B/moat"
case "$MOAT" in /*) ;; *) MOAT="$(pwd)/$MOAT" ;; esac

PASS=0
FAIL=0

if [ ! -x "$MOAT" ]; then
    echo "run.sh: $MOAT: not found or not executable (build it first)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/moat-golden.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

pass() {
    PASS=$((PASS + 1))
    echo "ok $1"
}

fail() {
    FAIL=$((FAIL + 1))
    echo "FAIL $1"
}

# The first line's `# args: ...`, or nothing.
scenario_args() {
    sed -n '1s/^#[[:space:]]*args:[[:space:]]*//p' "$1"
}

# Reads `moat explain -o json` output on stdin; prints "ACTION RULE APPLIED"
# from the top-level object (jansson's 2-space indentation; nested "ingress"
# or "egress" objects are deeper and ignored). RULE is `-` when null.
explain_fields() {
    awk '
        /^  "action": /         { a = $2 }
        /^  "applied_action": / { ap = $2 }
        /^  "rule": null/       { r = "-" }
        /^  "rule": \{/         { inrule = 1; next }
        inrule && /^    "id": / { r = $2 }
        /^  [}]/                { inrule = 0 }
        END {
            gsub(/[",]/, "", a); gsub(/[",]/, "", ap); gsub(/[",]/, "", r)
            print (a == "" ? "?" : a), (r == "" ? "?" : r), (ap == "" ? "?" : ap)
        }'
}

check_compile() { # yaml name args
    yaml=$1
    name=$2
    args=$3
    exp="${yaml%.yaml}.out"
    if [ ! -f "$exp" ]; then
        fail "$name (no ${exp##*/})"
        return
    fi
    set -f
    # shellcheck disable=SC2086 # args are split on purpose
    "$MOAT" compile -f "$yaml" $args >"$TMP/out" 2>"$TMP/err"
    rc=$?
    set +f
    if [ "$rc" -ne 0 ]; then
        fail "$name (moat compile exited $rc)"
        sed 's/^/    /' "$TMP/err"
        return
    fi
    if diff -u "$exp" "$TMP/out" >"$TMP/diff" 2>&1; then
        pass "$name"
    else
        fail "$name"
        sed -e "1s|^--- .*|--- expected ${exp##*/}|" -e "2s|^+++ .*|+++ moat compile $args|" \
            "$TMP/diff"
        if [ -s "$TMP/err" ]; then
            echo "  stderr:"
            sed 's/^/    /' "$TMP/err"
        fi
    fi
}

check_flow() { # yaml name scenario-args flow-text n
    yaml=$1
    name=$2
    args=$3
    text=$4
    n=$5
    label="$name flow $n:$(echo "$text" | sed 's/[[:space:]]*=>.*//')"
    case "$text" in
    *"=>"*) ;;
    *)
        fail "$label (malformed flow line: no =>)"
        return
        ;;
    esac
    lhs=${text%%=>*}
    rhs=${text#*=>}
    set -f
    # shellcheck disable=SC2086
    set -- $rhs
    want_action=${1:-}
    want_rule=${2:-}
    want_applied=${3:-}
    if [ -z "$want_action" ] || [ -z "$want_rule" ] || [ $# -gt 3 ]; then
        set +f
        fail "$label (malformed flow line: want => ACTION RULE [APPLIED])"
        return
    fi
    # shellcheck disable=SC2086
    "$MOAT" explain -f "$yaml" $args $lhs -o json >"$TMP/json" 2>"$TMP/err"
    rc=$?
    set +f
    if [ "$rc" -ne 0 ]; then
        fail "$label (moat explain exited $rc)"
        sed 's/^/    /' "$TMP/err"
        return
    fi
    got=$(explain_fields <"$TMP/json")
    # shellcheck disable=SC2086
    set -- $got
    got_action=$1
    got_rule=$2
    got_applied=$3
    if [ "$got_action" = "$want_action" ] && [ "$got_rule" = "$want_rule" ] &&
        { [ -z "$want_applied" ] || [ "$got_applied" = "$want_applied" ]; }; then
        pass "$label"
    else
        fail "$label"
        echo "  expected: action=$want_action rule=$want_rule${want_applied:+ applied=$want_applied}"
        echo "  explain:  action=$got_action rule=$got_rule applied=$got_applied"
        sed 's/^/    /' "$TMP/json"
    fi
}

found=0
for yaml in "$HERE"/[0-9]*.yaml; do
    [ -f "$yaml" ] || continue
    found=$((found + 1))
    name=$(basename "$yaml" .yaml)
    args=$(scenario_args "$yaml")
    check_compile "$yaml" "$name" "$args"
    sed -n 's/^#[[:space:]]*flow:[[:space:]]*//p' "$yaml" >"$TMP/flows"
    i=0
    while IFS= read -r flow; do
        i=$((i + 1))
        check_flow "$yaml" "$name" "$args" "$flow" "$i"
    done <"$TMP/flows"
done

if [ "$found" -eq 0 ]; then
    echo "run.sh: no scenarios in $HERE" >&2
    FAIL=$((FAIL + 1))
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
