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
. "$SRC/../support/build_lib.sh"

for c in "$SRC"/*.c; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .c)
    out="$OUT/$name.wasm"
    up_to_date "$out" "$c" "$SRC"/*.h && continue
    build_step "$out" "$name.c" "$CC_WASM" --target=wasm32-wasi --sysroot=/usr -O2 -s -Wall -Werror \
        -mexec-model=reactor "$c" -o
done

# AssemblyScript: the compiler comes from npm (tests/as/package-lock.json).
asc="$AS_DIR/node_modules/.bin/asc"
# npm ci again when the lockfile changed since the last install (a new
# dependency, such as assemblyscript-json for the pipeline guests).
if [ ! -x "$asc" ] || [ "$AS_DIR/package-lock.json" -nt "$AS_DIR/node_modules/.package-lock.json" ]; then
    npm_ci "$AS_DIR" AssemblyScript "AssemblyScript guests"
fi
# as_guest FILE.ts OUT_FILE: compile assembly/FILE.ts from tests/as, so that
# imports of npm packages resolve in its node_modules.
as_guest() {
    (cd "$AS_DIR" && "$asc" "assembly/$1" -O2 -o "$2")
}
if [ -x "$asc" ]; then
    for ts in "$AS_DIR"/assembly/*.ts; do
        [ -f "$ts" ] || continue
        name=as_$(basename "$ts" .ts)
        out="$OUT/$name.wasm"
        up_to_date "$out" "$ts" && continue
        build_step "$out" "$(basename "$ts")" as_guest "$(basename "$ts")"
    done
fi
build_done
