#!/bin/sh
# `make bench`: runs Moat's benchmarks and writes their results to
# docs/benchmarks.md. Usage: bench/run.sh BUILD_DIR
set -eu
B=${1:?build dir}
OUT=docs/benchmarks.md
TMP=$(mktemp)
trap 'rm -f "$TMP"' EXIT INT TERM

field() { # line key
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

{
    echo "# Benchmarks"
    echo
    echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(uname -r))."
    echo "Numbers are from one run on this machine; compare runs on the same machine only."
    echo
    echo "## Policy compiler (one core)"
    echo
    echo "Synthetic cluster: 50 namespaces x 20 apps, workloads spread over them, ~500"
    echo "objects (per-app, per-namespace, label and ipblock objects), rules between"
    echo "random objects with 1-2 port ranges (bench/bench_compile.c). Goals: full"
    echo "compile of 10k workloads x 10k rules under 1 s, incremental under 10 ms."
    echo
    echo "| workloads | rules | load (s) | compile (s) | identities | policy intervals | LPM entries | peak RSS (MiB) | incr. workload, same identity (ms) | incr. workload, new identity (ms) | incr. rule (ms) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$TMP"

for wl in 1000 10000; do
    for rules in 100 1000 10000; do
        line=$("$B/bench/bench_compile" "$wl" "$rules" 500)
        echo "$line"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$wl" "$rules" "$(field "$line" load_s)" "$(field "$line" compile_s)" \
            "$(field "$line" identities)" "$(field "$line" intervals)" \
            "$(field "$line" lpm_entries)" "$(field "$line" peak_rss_mib)" \
            "$(field "$line" incr_workload_same_ms)" "$(field "$line" incr_workload_new_ms)" \
            "$(field "$line" incr_rule_ms)" >>"$TMP"
    done
done

{
    echo
    echo "Load is parsing and validating the YAML text (libyaml) into the model; compile"
    echo "is policy_compile() alone. Peak RSS is the whole process (YAML text, model and"
    echo "tables). LPM entries count the port intervals split into the prefixes the"
    echo "datapath's LPM trie stores."
} >>"$TMP"
mkdir -p docs
cp "$TMP" "$OUT"
echo "bench: results written to $OUT"
