#!/bin/sh
# The fuzz suite: replay every seed and regression input through its
# libFuzzer harness, then fuzz each target for a share of FUZZ_SECONDS
# (default 60, split evenly). Prints one line per check and, last,
# "N passed, N failed". A crash, sanitizer report, timeout or leak is a
# failure; its reproducer is saved under BUILD/fuzz-artifacts/<target>/ and
# its path printed (copy it to tests/fuzz/regress/<target>/ once fixed).
# Usage: tests/fuzz/run.sh BUILD_DIR [TARGET...]
BUILD=${1:-build}
shift 2>/dev/null
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
FUZZ="$ROOT/tests/fuzz"
SECONDS_TOTAL=${FUZZ_SECONDS:-60}
ART="$BUILD/fuzz-artifacts"
WORK="$BUILD/fuzz-work" # corpus grown by earlier runs (not committed)
# The harnesses install no signal handlers of their own: ASan's defaults,
# whatever a SANITIZE=1 run exported for the runtime.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export LSAN_OPTIONS="suppressions=$FUZZ/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
pass=0
fail=0

targets="$*"
[ -z "$targets" ] && for b in "$BUILD"/fuzz/*; do [ -x "$b" ] && targets="$targets $(basename "$b")"; done
n=$(echo $targets | wc -w)
[ "$n" -eq 0 ] && { echo "no fuzz targets in $BUILD/fuzz (make fuzz)"; echo "0 passed, 1 failed"; exit 1; }
per=$((SECONDS_TOTAL / n))
[ "$per" -lt 1 ] && per=1

ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# Show the report's head: what failed and where.
report() { grep -E 'ERROR|SUMMARY|runtime error|fuzz_[a-z_]*:|    #[0-5] ' "$1" | head -n 10 | sed 's/^/     /'; }

for t in $targets; do
    bin="$BUILD/fuzz/$t"
    mkdir -p "$ART/$t" "$WORK/$t"
    dict=""
    [ -f "$FUZZ/dict/$t.dict" ] && dict="-dict=$FUZZ/dict/$t.dict"
    log="$ART/$t/last.log"
    # Regressions: one check per reproducer, each must run clean.
    for f in "$FUZZ/regress/$t"/*; do
        [ -f "$f" ] || continue
        if "$bin" "$f" >"$log" 2>&1; then
            ok "$t: regress/$t/$(basename "$f")"
        else
            bad "$t: regress/$t/$(basename "$f") ($log)"
            report "$log"
        fi
    done
    # Seeds: one check for the whole corpus.
    seeds=$(find "$FUZZ/corpus/$t" -type f 2>/dev/null | sort)
    if [ -n "$seeds" ]; then
        if "$bin" $seeds >"$log" 2>&1; then
            ok "$t: $(echo "$seeds" | wc -l) seeds"
        else
            bad "$t: seed corpus ($log)"
            report "$log"
        fi
    fi
    # Fuzz: new inputs go to the work corpus, crashes to the artifacts.
    flog="$ART/$t/fuzz.log"
    "$bin" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$ART/$t/" $dict \
        "$WORK/$t" "$FUZZ/corpus/$t" >"$flog" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$flog" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        ok "$t: fuzzed ${per}s, ${runs:-?} executions"
    else
        crash=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$flog" | tail -n 1)
        bad "$t: fuzzing found a failure after ${runs:-?} executions; reproducer: ${crash:-none} (log $flog)"
        report "$flog"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
