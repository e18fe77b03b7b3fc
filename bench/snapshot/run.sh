#!/bin/sh
# bench/snapshot/run.sh BUILD - the `snapshot` section of bench/run.sh: per
# request latency and requests/s of a fresh instance per request, with and
# without a snapshot image, next to one reused instance, for trivial C
# guests and an interpreter (Duktape, from Debian's source package, built by
# the deploy section: bench/deploy/run.sh); then `kiln run` start-up next to
# `sh -c true` and `node -e 0`. Prints one markdown section (also saved as
# BUILD/bench/snapshot.md). docs/internals/snapshot.md explains the numbers.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${1:-build}
B=$ROOT/$BUILD/bench
mkdir -p "$B/wasm" "$B/json"
export KILN_HOME=$B/home
WASI_CC="clang --target=wasm32-wasi --sysroot=/usr"
say() { echo "bench: $*" >&2; }
LIBS=$(make -s --no-print-directory BUILD="$BUILD" --eval='p: ; @echo $(LIBS)' p 2>/dev/null)
LDEXPORT="-Wl,--export-dynamic-symbol=wasm_rt_*"
[ -n "${BENCH_NO_MAKE:-}" ] || make -s BUILD="$BUILD" "$BUILD/libkiln.a" "$BUILD/kiln" >&2 || exit 1
# shellcheck disable=SC2086 # LIBS is a word list
cc -std=c11 -D_GNU_SOURCE -O2 -g -Iinclude -Isrc $LDEXPORT -o "$B/snapshot" \
    bench/snapshot/snapshot.c "$BUILD/libkiln.a" $LIBS || exit 1
# Guests: the instantiate section's noop guests, a sparse one (17 pages like
# a Rust guest, touching one), and the Duktape reactor.
[ -f "$B/wasm/noop_100k.wasm" ] || sh bench/run.sh "$BUILD" instantiate >/dev/null 2>&1
echo '1,2,3,4' >"$B/blob_small.inc"
$WASI_CC -O2 -nostdlib -Wl,--no-entry -Wl,--export=noop -Wl,-z,stack-size=1048576 \
    -Wl,--initial-memory=1114112 -DBLOB_INC="\"$B/blob_small.inc\"" \
    -o "$B/wasm/noop_sparse.wasm" bench/guests/noop.c || exit 1
DUK_O=$B/deploy/obj/duktape.o
DUK_SRC=$(ls -d "$B"/deploy/src/duktape-*/src 2>/dev/null | head -1)
duk=""
if [ -f "$DUK_O" ] && [ -n "$DUK_SRC" ]; then
    $WASI_CC -O2 -mexec-model=reactor -Ibench/deploy/shim -I"$DUK_SRC" \
        -o "$B/wasm/duk_snap.wasm" bench/guests/duk_snap.c "$DUK_O" && duk=1
fi
N=${BENCH_ITER:-20000}
say "section snapshot"
{
    echo "## Snapshot: fresh instance per request, with and without an image"
    echo
    echo "In-process (\`bench/snapshot/snapshot.c\`), one thread, each request with its own WASI context;"
    echo "fresh = instantiate + init + call + free, snapshot = restore from the image + call + free,"
    echo "reuse = one instance, call only (no isolation). p50 of each phase in µs."
    echo
    "$B/snapshot" -n "$N" -w 500 "noop 100 KB=$B/wasm/noop_100k.wasm:-:noop" \
        "noop 1 MB=$B/wasm/noop_1m.wasm:-:noop" "noop sparse 1.1 MiB=$B/wasm/noop_sparse.wasm:-:noop"
    if [ -n "$duk" ]; then
        "$B/snapshot" -n 60 -w 3 "Duktape=$B/wasm/duk_snap.wasm:init:handle" | tail -n 3
    else
        echo
        echo "(Duktape guest skipped: run the deploy section first, it fetches Duktape's source.)"
    fi
} >"$B/snapshot.tmp" || exit 1
cat "$B/snapshot.tmp"
echo
# Verdicts from the p50s (1e6 / p50 = requests/s of one thread): the loop's
# own req/s column also counts time the shared machine took elsewhere.
echo "Targets (from p50; 1e6/p50 = requests/s on one thread):"
echo
awk -F'|' '$3 ~ /snapshot|reuse|fresh/ { g = $2; m = $3; gsub(/^ +| +$/, "", g); gsub(/ /, "", m)
        p[g "," m] = $4 + 0; if (!(g in seen)) { seen[g] = 1; order[++n] = g } }
    END { for (i = 1; i <= n; i++) { g = order[i]; s = p[g ",snapshot"]; f = p[g ",fresh"]; u = p[g ",reuse"]
        if (g == "Duktape")
            printf "- %s: snapshot %.0f req/s = %.0f%% of reuse (%.0f), %.0fx fresh (%.0f): target >= 50%% of reuse: %s\n",
                g, 1e6 / s, 100 * u / s, 1e6 / u, f / s, 1e6 / f, (u / s >= 0.5) ? "met" : "**missed**"
        else
            printf "- %s: snapshot p50 %.1f us vs fresh %.1f us (%.2fx): never slower: %s\n",
                g, s, f, f / s, (s <= f * 1.05) ? "met" : "**missed**" } }' "$B/snapshot.tmp"
echo
say "kiln run start-up"
"$BUILD/kiln" run "$B/wasm/hello.wasm" >/dev/null 2>&1 ||
    $WASI_CC -O2 -o "$B/wasm/hello.wasm" bench/guests/hello.c
"$BUILD/kiln" run "$B/wasm/hello.wasm" >/dev/null 2>&1
hyperfine -N --style none --warmup 10 --runs 100 --export-csv "$B/json/snapshot-startup.csv" \
    -n "kiln run hello.wasm" "$BUILD/kiln run $B/wasm/hello.wasm" \
    -n "sh -c true" "sh -c true" -n "node -e 0" "node -e 0" >/dev/null 2>&1
echo "\`kiln run\` of a cached module (hyperfine -N, 100 runs, median ms; target ≤ 3 ms):"
echo
echo "| command | median ms |"
echo "|---|---:|"
awk -F, 'NR > 1 { printf "| `%s` | %.2f |\n", $1, $4 * 1000 }' "$B/json/snapshot-startup.csv"
echo
