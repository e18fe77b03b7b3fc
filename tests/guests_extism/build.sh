#!/bin/sh
# Build the Extism/Otoroshi test guests into OUTDIR:
#   every tests/guests_extism/*.c -> OUTDIR/<name>.wasm (clang wasm32-wasi reactor;
#   the Extism imports are declared in guest.h, no PDK);
#   tests/as/assembly/*.ts -> OUTDIR/as_<name>.wasm (AssemblyScript, installed
#   from tests/as/package-lock.json with `npm ci` on first use).
# Up-to-date outputs are skipped. If npm or the registry is unavailable the
# AssemblyScript guests are skipped with a message (not counted). The last line is
#   N passed, N failed
# counting modules that are built (or already up to date) and that failed.
# Usage: tests/guests_extism/build.sh OUTDIR
OUT=${1:?usage: build.sh OUTDIR}
SRC=$(cd "$(dirname "$0")" && pwd)
AS_DIR=$(cd "$SRC/../as" && pwd)
CC_WASM=${CC_WASM:-clang}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
pass=0
fail=0

# fresh OUT_FILE SOURCES...: is OUT_FILE newer than every source and this script?
fresh() {
    o=$1
    shift
    [ -f "$o" ] || return 1
    for s in "$@" "$0"; do
        [ "$o" -nt "$s" ] || return 1
    done
    return 0
}

for c in "$SRC"/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    out="$OUT/$name.wasm"
    if fresh "$out" "$c" "$SRC"/*.h; then
        pass=$((pass + 1))
        continue
    fi
    # Temporary name + rename: an interrupted build never leaves a truncated
    # module that would look up to date.
    if "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror \
        -mexec-model=reactor -o "$out.tmp.$$" "$c" && mv -f "$out.tmp.$$" "$out"; then
        echo "built $name.wasm"
        pass=$((pass + 1))
    else
        rm -f "$out.tmp.$$"
        echo "FAIL $name.c"
        fail=$((fail + 1))
    fi
done

# AssemblyScript: the compiler comes from npm (tests/as/package-lock.json).
asc="$AS_DIR/node_modules/.bin/asc"
# npm ci again when the lockfile changed since the last install (a new
# dependency, such as assemblyscript-json for the pipeline guests).
if [ ! -x "$asc" ] || [ "$AS_DIR/package-lock.json" -nt "$AS_DIR/node_modules/.package-lock.json" ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "installing AssemblyScript with npm ci in $AS_DIR"
        (cd "$AS_DIR" && timeout 300 npm ci --no-audit --no-fund >/dev/null 2>&1) ||
            echo "skip: npm ci failed in $AS_DIR (registry unreachable?); AssemblyScript guests not built"
    else
        echo "skip: npm not found; AssemblyScript guests not built"
    fi
fi
if [ -x "$asc" ]; then
    for ts in "$AS_DIR"/assembly/*.ts; do
        [ -f "$ts" ] || continue
        name=as_$(basename "$ts" .ts)
        out="$OUT/$name.wasm"
        if fresh "$out" "$ts"; then
            pass=$((pass + 1))
            continue
        fi
        # From tests/as, so that imports of npm packages resolve in its node_modules.
        if (cd "$AS_DIR" && "$asc" "assembly/$(basename "$ts")" -O2 -o "$out.tmp.$$.wasm") && mv -f "$out.tmp.$$.wasm" "$out"; then
            echo "built $name.wasm"
            pass=$((pass + 1))
        else
            rm -f "$out.tmp.$$.wasm"
            echo "FAIL $(basename "$ts")"
            fail=$((fail + 1))
        fi
    done
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
