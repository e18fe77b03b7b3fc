# tests/support/build_lib.sh - what the test guest build scripts
# (tests/*/build.sh OUTDIR) share. Source it from a build script:
#     . "$SRC/../support/build_lib.sh"
# pass/fail count the outputs built (or already up to date) and those that
# failed; build_done prints the last line of every build script,
#   N passed, N failed
# and returns nonzero when something failed.
pass=0
fail=0

# up_to_date OUT_FILE SOURCES...: is OUT_FILE there and newer than every
# source and the calling build script ($0)? If so it counts as passed.
# A source that does not exist (an unmatched glob) is passed over.
up_to_date() {
    _o=$1
    shift
    [ -f "$_o" ] || return 1
    for _s in "$@" "$0"; do
        [ -e "$_s" ] || continue
        [ "$_o" -nt "$_s" ] || return 1
    done
    pass=$((pass + 1))
    return 0
}

# build_step OUT_FILE LABEL CMD...: run CMD with a temporary file name beside
# OUT_FILE appended as its last argument (CMD writes the module there), then
# rename it to OUT_FILE: an interrupted build never leaves a truncated module
# that would look up to date. Prints "built NAME.wasm" or "FAIL LABEL" and
# counts it.
build_step() {
    _out=$1
    _label=$2
    shift 2
    _tmp="$_out.tmp.$$.wasm"
    if "$@" "$_tmp" && mv -f "$_tmp" "$_out"; then
        echo "built $(basename "$_out")"
        pass=$((pass + 1))
    else
        rm -f "$_tmp"
        echo "FAIL $_label"
        fail=$((fail + 1))
    fi
}

# guest_flags SOURCE: the extra compiler flags a source asks for with a
# comment line "kiln-guest-flags: ..." (empty when it has none).
guest_flags() {
    sed -n 's/.*kiln-guest-flags:\(.*\)$/\1/p' "$1" | head -n 1
}

# npm_ci DIR WHAT SKIPPED: install WHAT into DIR/node_modules from DIR's
# package-lock.json (npm ci); when npm is missing or fails, say so: SKIPPED
# are not built (and not counted).
npm_ci() {
    if command -v npm >/dev/null 2>&1; then
        echo "installing $2 with npm ci in $1"
        (cd "$1" && timeout 300 npm ci --no-audit --no-fund >/dev/null 2>&1) ||
            echo "skip: npm ci failed in $1 (registry unreachable?); $3 not built"
    else
        echo "skip: npm not found; $3 not built"
    fi
}

# build_done: print "N passed, N failed"; nonzero when something failed.
build_done() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
