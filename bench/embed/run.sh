#!/bin/sh
# bench/embed/run.sh - the `embed` section of Kiln's benchmark (issue 14,
# Kiln as an embeddable library): calls/s and µs per call of an in-process
# count_vowels plugin (tests/guests_extism/count_vowels.c) through
# libkiln.so's Extism C API from a C program (bench/embed/embed_bench.c),
# next to Node + @extism/extism 2.0.0-rc13 (bench/embed/node_bench.mjs,
# pinned by bench/embed/package-lock.json, installed with `npm ci`) calling
# the same plugin in-process, in the same run, rounds interleaved. Prints a
# markdown section (also saved as BUILD/bench/embed/embed.md);
# docs/internals/bench.md explains it.
#
# Usage: sh bench/embed/run.sh [BUILD]            (default: build)
# Environment: BENCH_EMBED_RUNS   runs per side, median reported (default 5)
#              BENCH_EMBED_CALLS  calls per run (default 200000)
# Not a test: nothing here passes or fails on a number.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECTION=embed # say and die (bench/lib.sh) print "bench embed: ..."
. "$ROOT/bench/lib.sh"
cd "$ROOT"
BUILD_ARG=${1:-build}
RUNS=${BENCH_EMBED_RUNS:-5}
CALLS=${BENCH_EMBED_CALLS:-200000}
INPUT="Hello, World! A benchmark input for count_vowels, of modest length."

need_tools make clang cc awk sort

# ---- build -------------------------------------------------------------------
say "building libkiln.so (make -s BUILD=$BUILD_ARG $BUILD_ARG/libkiln.so)"
BUILT=yes
make -s --no-print-directory BUILD="$BUILD_ARG" "$BUILD_ARG/libkiln.so" >&2 || BUILT=no
[ -f "$BUILD_ARG/libkiln.so" ] || die "make failed and there is no $BUILD_ARG/libkiln.so"
[ $BUILT = yes ] || say "warning: make failed; measuring the existing $BUILD_ARG/libkiln.so"
BUILD=$(cd "$BUILD_ARG" && pwd)
B=$BUILD/bench/embed
mkdir -p "$B/home"
# Measure a snapshot of the library, so a rebuild during the run cannot change it.
cp "$BUILD/libkiln.so" "$B/libkiln.so.tmp" && mv "$B/libkiln.so.tmp" "$B/libkiln.so"
export KILN_HOME="$B/home"
unset KILN_CC

say "building embed_bench (cc -O2, linked against libkiln.so)"
cc -O2 -Wall -Wextra -Werror -I "$ROOT/include/kiln" -o "$B/embed_bench" \
    "$ROOT/bench/embed/embed_bench.c" -L "$B" -lkiln -Wl,-rpath,"$B" ||
    die "cannot build bench/embed/embed_bench.c"
GH=$ROOT/tests/guests_extism
if stale "$B/count_vowels.wasm" "$GH/count_vowels.c" "$GH/guest.h"; then
    say "building count_vowels.wasm (clang wasm32-wasi)"
    clang --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror -mexec-model=reactor \
        -o "$B/count_vowels.wasm" "$GH/count_vowels.c" || die "cannot build count_vowels.c"
fi

NODE=no
E=$ROOT/bench/embed
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    if [ ! -d "$E/node_modules/@extism/extism" ] ||
        [ "$E/package-lock.json" -nt "$E/node_modules/.package-lock.json" ]; then
        say "installing @extism/extism with npm ci in bench/embed"
        (cd "$E" && timeout 300 npm ci --no-audit --no-fund >/dev/null 2>&1) || say "npm ci failed"
    fi
    [ -d "$E/node_modules/@extism/extism" ] && NODE=yes
fi
[ $NODE = yes ] || say "warning: no node/npm or @extism/extism; measuring libkiln only"

# ---- runs --------------------------------------------------------------------
: >"$B/results.txt"
# The first load compiles count_vowels.wasm into $KILN_HOME's cache (not timed).
"$B/embed_bench" "$B/count_vowels.wasm" 10 "$INPUT" >/dev/null || die "embed_bench failed"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
r=1
while [ $r -le "$RUNS" ]; do
    say "round $r/$RUNS: libkiln, $CALLS calls"
    line=$("$B/embed_bench" "$B/count_vowels.wasm" "$CALLS" "$INPUT") || die "embed_bench failed"
    echo "kiln $line" >>"$B/results.txt"
    if [ $NODE = yes ]; then
        say "round $r/$RUNS: node + @extism/extism, $CALLS calls"
        line=$(cd "$E" && node --no-warnings node_bench.mjs "$B/count_vowels.wasm" "$CALLS" "$INPUT") ||
            die "node_bench.mjs failed"
        echo "node $line" >>"$B/results.txt"
    fi
    r=$((r + 1))
done

# med SIDE FIELD: the median of FIELD over SIDE's runs.
med() {
    awk -v s="$1" -v f="$2" '$1 == s { print $f }' "$B/results.txt" | sort -n | awk '
        { a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2];
        else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
OUT=$B/embed.md.tmp
: >"$OUT"
NPROC=$(nproc)
cpu_model=$(cpu_model)
kv=$(med kiln 4)
nv=$(med node 4)
ratio=$(awk -v a="$kv" -v b="$nv" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.1f", a / b }')
emit "## Embedding: in-process calls through libkiln vs Node + @extism/extism"
emit ""
emit "One \`count_vowels\` plugin (tests/guests_extism/count_vowels.c: input scan, config_get,"
emit "var_get/var_set, JSON output) created once, then $CALLS calls with the same"
emit "${#INPUT}-byte input, in-process, after 1,000 warm-up calls; median of $RUNS runs per side,"
emit "rounds interleaved. libkiln: \`bench/embed/embed_bench.c\` on \`libkiln.so\` through"
emit "\`extism.h\` (\`extism_plugin_new\`, \`extism_plugin_call\`). Node $(node --version 2>/dev/null || echo -):"
emit "\`@extism/extism\` 2.0.0-rc13, \`createPlugin(..., {useWasi: false, runInWorker: false})\`,"
emit "\`await plugin.call\`. $NPROC CPUs ($cpu_model), load average $LOAD_START at the start."
emit ""
emit "| host | calls/s | µs per call |"
emit "|---|---:|---:|"
emit "| C program + libkiln.so | $(med kiln 4) | $(med kiln 5) |"
emit "| Node + @extism/extism 2.0.0-rc13 | $(med node 4) | $(med node 5) |"
emit ""
emit "libkiln / Node (calls/s): ${ratio}×."
[ $NODE = yes ] || emit "**Node or @extism/extism was not available: only libkiln was measured.**"
[ $BUILT = yes ] || emit "**make failed before this run: the library measured is the last one built in $BUILD_ARG.**"
mv "$OUT" "$B/embed.md"
cat "$B/embed.md"
say "saved $B/embed.md; raw lines in $B/results.txt"
