#!/bin/sh
# `make lint`: clang-format check and cppcheck over the C sources given.
# Prints a closing `lint: N passed, N failed` line and fails on any finding.
set -u
fail=0
pass=0
if clang-format --dry-run --Werror "$@" 2>/tmp/moat-lint.$$; then
    pass=$((pass + 1))
else
    head -40 /tmp/moat-lint.$$
    echo "lint: clang-format: files above need 'make format'"
    fail=$((fail + 1))
fi
rm -f /tmp/moat-lint.$$
csrc=$(for f in "$@"; do case "$f" in *.c) echo "$f" ;; esac; done)
# missingIncludeSystem: cppcheck does not need the system headers to check our code.
# unusedFunction: exported library functions are used by other programs.
# unknownMacro: without system headers cppcheck cannot see library macros
#   (LIBBPF_OPTS, SEC, json_array_foreach); we do not feed it /usr/include.
if cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,style,performance,portability \
    --inline-suppr --suppress=missingIncludeSystem --suppress=unusedFunction --suppress=unknownMacro \
    -D__GNUC__ -Iinclude -Ilib $csrc; then
    pass=$((pass + 1))
else
    echo "lint: cppcheck found problems"
    fail=$((fail + 1))
fi
echo "lint: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
