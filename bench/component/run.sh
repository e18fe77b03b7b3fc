#!/bin/sh
# bench/component/run.sh - the `component` section of Kiln's benchmark
# (issue 13): per-event latency (p50) and events/s of a trivial kiln:faas
# `handle` (tests/components/guests/faas.c), a fresh instance per event:
#   component         cm_inst_new + cm_inst_call + cm_inst_free (`kiln call`'s
#                     path: the AOT cache is consulted per event)
#   component-loaded  cm_mods_load and cm_plan_new once, cm_inst_new_plan per
#                     event (the serve path; only when the tree has them)
#   component-snapshot  the same with the plan's graph captured once
#                     (cm_image_build): cm_inst_new_image per event
#   core              the same core module, kiln_instance_new + the canonical
#                     ABI done by hand (cabi_realloc, handle, cabi_post_handle)
#   node-once/-fresh  Node running the `jco transpile`d component
#                     (@bytecodealliance/preview2-shim): one instance for all
#                     events / a new instance per event
# In-process C harness bench/component/component_bench.c linked with
# libkiln.a; bench/component/node_bench.mjs for Node. Median of RUNS runs,
# rounds interleaved. Prints a markdown section (also saved as
# BUILD/bench/component/component.md); docs/internals/bench.md explains it.
#
# Usage: sh bench/component/run.sh [BUILD]               (default: build)
# Environment: BENCH_COMPONENT_RUNS   runs per side (default 5)
#              BENCH_COMPONENT_EVENTS events per run (default 20000; Node's
#                                     fresh instances: a tenth of it)
# Not a test: nothing here passes or fails on a number.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECTION=component # say and die (bench/lib.sh) print "bench component: ..."
. "$ROOT/bench/lib.sh"
cd "$ROOT"
BUILD_ARG=${1:-build}
RUNS=${BENCH_COMPONENT_RUNS:-5}
EVENTS=${BENCH_COMPONENT_EVENTS:-20000}
FRESH_EVENTS=$((EVENTS / 10))

need_tools make clang cc awk sort node

# ---- build -------------------------------------------------------------------
say "building libkiln.a (make -s BUILD=$BUILD_ARG $BUILD_ARG/libkiln.a)"
BUILT=yes
make -s --no-print-directory BUILD="$BUILD_ARG" "$BUILD_ARG/libkiln.a" >&2 || BUILT=no
[ -f "$BUILD_ARG/libkiln.a" ] || die "make failed and there is no $BUILD_ARG/libkiln.a"
[ $BUILT = yes ] || say "warning: make failed; measuring the existing $BUILD_ARG/libkiln.a"
BUILD=$(cd "$BUILD_ARG" && pwd)
B=$BUILD/bench/component
mkdir -p "$B/home"
export KILN_HOME="$B/home"
unset KILN_CC
LIBS=$(make -s --no-print-directory BUILD="$BUILD_ARG" --eval='bench-print-var: ; @echo $(LIBS)' \
    bench-print-var 2>/dev/null) || LIBS="-lyaml -ljansson -lyajl -lsqlite3 -lffi -lm -lpthread -ldl -lrt"
LOADED=no
DEF=""
if grep -q 'cm_mods_load' src/component/cm_inst.h; then
    LOADED=yes
    DEF=-DHAVE_CM_MODS
fi
if grep -q 'cm_plan_new' src/component/cm_inst.h; then
    DEF="$DEF -DHAVE_CM_PLAN" # component-loaded: the plan made once (the serve path)
fi
say "building component_bench (cc -O2, linked with libkiln.a)"
cc -std=c11 -D_GNU_SOURCE -O2 -g $DEF -Iinclude -Isrc -Wl,--export-dynamic-symbol=wasm_rt_* \
    -o "$B/component_bench" bench/component/component_bench.c "$BUILD/libkiln.a" $LIBS ||
    die "cannot build bench/component/component_bench.c"
say "building the test components (tests/components/build.sh)"
sh tests/components/build.sh "$BUILD/components" >&2 || die "tests/components/build.sh failed"
C=$BUILD/components
say "jco transpile faas.wasm"
rm -rf "$B/js"
tests/components/node_modules/.bin/jco transpile "$C/faas.wasm" --name faas --instantiation async \
    -q -o "$B/js" >&2 || die "jco transpile failed"
ln -sfn "$ROOT/tests/components/node_modules" "$B/node_modules"

# ---- runs --------------------------------------------------------------------
: >"$B/results.txt"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
MODES="component core"
[ $LOADED = yes ] && MODES="component component-loaded core"
grep -q 'cm_image_build' src/component/cm_inst.h && MODES="$MODES component-snapshot"
r=1
while [ $r -le "$RUNS" ]; do
    for m in $MODES; do
        f=$C/faas.wasm
        [ $m = core ] && f=$C/faas.core.wasm
        say "round $r/$RUNS: $m, $EVENTS events"
        "$B/component_bench" $m "$f" "$EVENTS" >>"$B/results.txt" || die "component_bench $m failed"
    done
    say "round $r/$RUNS: node, $EVENTS events on one instance, $FRESH_EVENTS fresh"
    node --no-warnings bench/component/node_bench.mjs "$B/js/faas.js" "$EVENTS" once >>"$B/results.txt" ||
        die "node_bench.mjs once failed"
    node --no-warnings bench/component/node_bench.mjs "$B/js/faas.js" "$FRESH_EVENTS" fresh \
        >>"$B/results.txt" || die "node_bench.mjs fresh failed"
    r=$((r + 1))
done

# med MODE FIELD: the median of FIELD (2 events/s, 3 p50, 4 p99) over MODE's runs.
med() {
    awk -v s="$1" -v f="$2" '$1 == s { print $f }' "$B/results.txt" | sort -n | awk '
        { a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2];
        else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.1f", a / b }'; }
OUT=$B/component.md.tmp
: >"$OUT"
row() { emit "| $1 | $(med "$2" 3) | $(med "$2" 4) | $(med "$2" 2) |"; }
emit "## Components: a trivial kiln:faas handler, component vs core module vs Node"
emit ""
emit "\`handle\` of tests/components/guests/faas.c (the kiln:faas world; an object-added event"
emit "with a 4-byte payload, answered ok), a fresh instance per event unless said otherwise;"
emit "$EVENTS events per run after 200 warm-up events ($FRESH_EVENTS for Node's fresh instances),"
emit "median of $RUNS runs, rounds interleaved. Kiln: in process, bench/component/component_bench.c"
emit "on libkiln.a. Node $(node --version): the component after \`jco transpile --instantiation async\`,"
emit "@bytecodealliance/preview2-shim 0.26.1. $(nproc) CPUs ($(cpu_model)), load average $LOAD_START at the start."
emit ""
emit "| path | p50 µs | p99 µs | events/s |"
emit "|---|---:|---:|---:|"
row "Kiln, component: cm_inst_new + call + free (AOT cache consulted per event)" component
[ $LOADED = yes ] && row "Kiln, component: modules loaded once, linked once (the plan), instance + call + free" component-loaded
case $MODES in *component-snapshot*)
    row "Kiln, component, \`snapshot: true\`: restored from the image + call + free" component-snapshot ;;
esac
row "Kiln, the same core module, canonical ABI by hand" core
row "Node, transpiled component, one instance for all events" node-once
row "Node, transpiled component, a new instance per event" node-fresh
emit ""
best=component
[ $LOADED = yes ] && best=component-loaded
emit "Ratios (p50): $best / core $(ratio "$(med $best 3)" "$(med core 3)")×;"
emit "node-fresh / $best $(ratio "$(med node-fresh 3)" "$(med $best 3)")×;"
emit "events/s $best / node-once $(ratio "$(med $best 2)" "$(med node-once 2)")×."
[ $BUILT = yes ] || emit "**make failed before this run: the library measured is the last one built in $BUILD_ARG.**"
mv "$OUT" "$B/component.md"
cat "$B/component.md"
say "saved $B/component.md; raw lines in $B/results.txt"
