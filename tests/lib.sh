# tests/lib.sh - helpers for shell integration tests. Source it, call check/
# check_eq/check_contains, and end with `finish` (prints "N passed, N failed").
KILN=${KILN:-build/kiln}
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $1"; [ -n "$2" ] && echo "$2" | head -n 20 | sed 's/^/    /'; }
# check NAME CMD...: passes when CMD exits 0
check() { n=$1; shift; if out=$("$@" 2>&1); then ok "$n"; else not_ok "$n" "$out"; fi; }
# check_eq NAME EXPECTED ACTUAL
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: [$2]
actual:   [$3]"; fi; }
# check_contains NAME HAYSTACK NEEDLE
check_contains() { case "$2" in *"$3"*) ok "$1" ;; *) not_ok "$1" "missing [$3] in:
$2" ;; esac; }
finish() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; }
