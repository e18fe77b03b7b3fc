#!/bin/sh
# test_component_tiers.sh - compile tiers for served WebAssembly components
# (docs/internals/component.md "Tiers"), over real sockets:
#   - a component deployed on a cold cache answers 503 "compiling" until its
#     fast tier (tcc) is compiled, then serves at the fast tier, then at the
#     optimised tier once that lands; answers are identical before and after
#     the swap and a loop of requests across the swap never fails;
#   - every embedded core module has its own artifact per tier, so the same
#     modules deployed under another name serve at once from the cache;
#   - --no-tiers serves at O2 from the first request;
#   - the JavaScript component (componentize-js), whose -O2 compile runs out
#     of memory, keeps serving at the fast tier with the reason logged once
#     (no retry, no reload loop); and a core module whose -O2 fails, the same.
# The compilers are gated by files the test creates, so which tier is
# serving when is decided by the test, not by timing; every wait is bounded
# (120 s). Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

C="$KILN_BUILD/components"
if ! blog=$(sh "$KILN_ROOT/tests/components/build.sh" "$C" 2>&1); then
    not_ok "build the test components" "$blog"
    finish
    exit 1
fi
ok "build the test components"
CMD=$C/cgi_cmd.wasm
SHARED_CACHE=${KILN_BUILD}/test-home/cache
mkdir -p "$SHARED_CACHE"
unset KILN_ADMIN_TOKEN KILN_TOKEN KILN_ADMIN KILN_CC KILN_AOT_FAST_CC KILN_AOT_MAX_MEMORY
# A gated compile waits for its gate; give every tool run room for that.
export KILN_AOT_TIMEOUT=300

# eventually SECONDS CMD...: run CMD every 0.2 s until it succeeds (0) or
# SECONDS have passed (1).
eventually() {
    limit=$(($1 * 5))
    shift
    n=0
    while [ $n -lt "$limit" ]; do
        "$@" && return 0
        sleep 0.2
        n=$((n + 1))
    done
    return 1
}

# admin_url: the server's admin API, from its log (sets ADMIN and TOKEN).
admin_url() {
    ADMIN=""
    i=0
    while [ -z "$ADMIN" ] && [ $i -lt 100 ]; do
        ADMIN=$(sed -n 's/.*admin API on \(http:[^ ]*\).*/\1/p' "$LOG" | head -n 1)
        [ -n "$ADMIN" ] || sleep 0.1
        i=$((i + 1))
    done
    TOKEN=$(cat "$KILN_HOME/admin.token")
}

# fn_get NAME: GET /functions/NAME into FN (status and tier in ST, TIER).
fn_get() {
    FN=$(curl -s -m 30 -H "Authorization: Bearer $TOKEN" "$ADMIN/functions/$1")
    ST=$(printf '%s' "$FN" | jq -r '.status // empty' 2>/dev/null)
    TIER=$(printf '%s' "$FN" | jq -r '.tier // empty' 2>/dev/null)
}
status_is() { fn_get "$1" && [ "$ST" = "$2" ]; }
tier_is() { fn_get "$1" && [ "$ST" = serving ] && [ "$TIER" = "$2" ]; }

# gate NAME REAL: a compiler that answers --version at once (its identity is
# part of every cache key) and compiles once $T/gate.NAME exists.
gate() {
    cat >"$T/gated-$1" <<EOF
#!/bin/sh
case "\$*" in *--version*) exec $2 "\$@" ;; esac
while [ ! -f "$T/gate.$1" ]; do sleep 0.1; done
exec $2 "\$@"
EOF
    chmod +x "$T/gated-$1"
}
gate fast tcc
gate opt cc

# ---- a cold cache: 503 compiling, the fast tier, then the optimised one ---------
export KILN_HOME="$T/home"
mkdir -p "$KILN_HOME" "$T/dir"
if ! KILN_AOT_FAST_CC="$T/gated-fast" KILN_CC="$T/gated-opt" \
    serve_start tiers --threads 2 --admin-listen 127.0.0.1:0 "$T/dir"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts (tiers on, own cold cache)"
# With no function yet every function is at its final tier: said once.
final_lines() { grep -c 'all functions at their final tier' "$LOG"; }
FINAL0=$(final_lines)
admin_url
api() {
    n=$1 c=$2 s=$3 m=$4 p=$5
    shift 5
    expect "$n" "$c" "$s" -X "$m" -H "Authorization: Bearer $TOKEN" "$@" "$ADMIN$p"
}
api "deploy a command component without waiting (201)" 201 '"status":"pending"' PUT \
    "/functions/tcmd?route=/tcmd&wait=0" -T "$CMD"
if eventually 120 status_is tcmd compiling; then
    ok "admin: the function is compiling (no tier cached)"
else
    not_ok "admin: the function is compiling (no tier cached)" "$FN"
fi
check_eq "admin: no tier while compiling" "" "$TIER"
expect "the route answers 503 compiling while no tier exists" 503 "compiling" "$URL/tcmd"
check_eq "503 compiling: Retry-After" "1" "$(header Retry-After)"

touch "$T/gate.fast"
if eventually 120 status_is tcmd serving; then
    ok "the fast tier lands: serving"
else
    not_ok "the fast tier lands: serving" "$FN$(tail -n 20 "$LOG")"
fi
check_eq "served at the fast tier (the optimised one is gated)" "fast" "$TIER"
check_contains "kiln ls shows the fast tier" \
    "$(KILN_ADMIN="$ADMIN" KILN_ADMIN_TOKEN="$TOKEN" "$KILN" ls 2>&1 | grep '^tcmd')" "fast"
expect "fast tier: the command answers" 201 "script=/tcmd" -X POST --data-binary "abc" \
    "$URL/tcmd?q=1"
BEFORE=$BODY
check_contains "fast tier: the body on stdin" "$BODY" "body=abc"
check_contains "the log says the fast tier compiled" "$(cat "$LOG")" \
    "function 'tcmd': fast tier compiled"
check_eq "at the fast tier the log does not say final tier" "$FINAL0" "$(final_lines)"

# Requests across the swap: a loop until told to stop.
: >"$T/codes"
(
    while [ ! -f "$T/stop" ]; do
        curl -s -m 30 -o /dev/null -w '%{http_code}\n' -X POST --data-binary "abc" \
            "$URL/tcmd?q=1" >>"$T/codes"
    done
) &
LOOP=$!
codes() { wc -l <"$T/codes" | tr -d ' '; }
more_codes() { [ "$(codes)" -ge "$1" ]; }
eventually 120 more_codes 3 || true
touch "$T/gate.opt"
if eventually 120 tier_is tcmd optimized; then
    ok "the optimised tier is swapped in (tier optimized)"
else
    not_ok "the optimised tier is swapped in (tier optimized)" "$FN$(tail -n 20 "$LOG")"
fi
AT_SWAP=$(codes)
eventually 120 more_codes $((AT_SWAP + 5)) || true
touch "$T/stop"
wait "$LOOP"
N=$(codes)
BAD=$(grep -cv '^201$' "$T/codes")
check "requests ran on both sides of the swap ($AT_SWAP, then $((N - AT_SWAP)))" \
    test "$AT_SWAP" -ge 3 -a "$N" -ge $((AT_SWAP + 5))
check_eq "every request across the swap answered 201 ($N requests)" "0" "$BAD"
expect "optimised tier: the command answers" 201 "script=/tcmd" -X POST --data-binary "abc" \
    "$URL/tcmd?q=1"
check_eq "the same answer before and after the swap" "$BEFORE" "$BODY"
check_eq "a fresh instance after the swap (counter 1)" "1" "$(header X-Counter)"
check_contains "kiln ls shows the optimised tier" \
    "$(KILN_ADMIN="$ADMIN" KILN_ADMIN_TOKEN="$TOKEN" "$KILN" ls 2>&1 | grep '^tcmd')" "optimized"
check_eq "after the swap the log says all functions are at their final tier" \
    "$((FINAL0 + 1))" "$(final_lines)"
# Each embedded core module has one artifact per tier, under its own key.
NMODS=$("$KILN" inspect "$CMD" 2>/dev/null | sed -n 's/^core modules (\([0-9]*\)).*/\1/p')
NSO=$(ls "$KILN_HOME/cache" | grep -c '\.so$')
check_eq "one artifact per embedded core module ($NMODS) and tier" "$((2 * ${NMODS:-0}))" "$NSO"
check_eq "no compile failed" "" "$(grep -m1 'tier failed' "$LOG")"

# The same component under another name: its modules' artifacts are cached.
api "deploy the same component as another function: serving at once" 201 \
    '"status":"serving"' PUT "/functions/tcmd2?route=/tcmd2" -T "$CMD"
check_eq "...at the optimised tier (artifacts shared by content)" "optimized" \
    "$(printf '%s' "$BODY" | jq -r .tier)"
expect "the second function answers" 201 "script=/tcmd2" "$URL/tcmd2"
check_eq "no new artifact for it" "$NSO" "$(ls "$KILN_HOME/cache" | grep -c '\.so$')"
serve_stop
check_eq "tiered server stops cleanly (exit 0)" "0" "$SRC"
check_eq "no sanitizer report in the tiered server's log" "" "$(grep -m1 'Sanitizer' "$LOG")"

# ---- --no-tiers: compiled with the configured compiler before serving ----------------
export KILN_HOME="$T/home-nt"
mkdir -p "$KILN_HOME" "$T/dir-nt"
cp "$CMD" "$T/dir-nt/ntcmd.wasm"
if serve_start notiers --threads 2 --no-tiers --admin-listen 127.0.0.1:0 "$T/dir-nt"; then
    ok "--no-tiers server starts (own cold cache)"
    admin_url
    expect "--no-tiers: the first request is served" 201 "script=/ntcmd" "$URL/ntcmd"
    ST=$(curl -s -m 30 -H "Authorization: Bearer $TOKEN" "$ADMIN/status" |
        jq -r '.functions[] | select(.name=="ntcmd") | .tier')
    check_eq "--no-tiers: served at O2 from the first request" "O2" "$ST"
    check_eq "--no-tiers: nothing compiled in the background" "" \
        "$(grep -m1 'tier compiled' "$LOG")"
    serve_stop
    check_eq "--no-tiers server stops cleanly (exit 0)" "0" "$SRC"
else
    not_ok "--no-tiers server starts (own cold cache)" "$(cat "$LOG")"
fi

# ---- a core module whose -O2 fails: the same rule (it used to reload ~10 times a second) --
export KILN_HOME="$T/home-core"
mkdir -p "$KILN_HOME" "$T/dir-core"
cp "$G/cgi_hello.wasm" "$T/dir-core/hello.wasm"
cat >"$T/oomcc" <<'EOF'
#!/bin/sh
case "$*" in *--version*) exec cc "$@" ;; esac
echo "cc1: out of memory allocating 65536 bytes" >&2
exit 1
EOF
chmod +x "$T/oomcc"
if KILN_CC="$T/oomcc" serve_start core --threads 2 --admin-listen off "$T/dir-core"; then
    ok "server with a core module whose -O2 fails starts"
    core_failed() { grep -q "function 'hello': optimized tier failed" "$LOG"; }
    if eventually 120 core_failed; then
        ok "core module: the optimised tier's failure is logged"
    else
        not_ok "core module: the optimised tier's failure is logged" "$(tail -n 20 "$LOG")"
    fi
    expect "core module: served at the fast tier" 200 "" "$URL/hello"
    kill -HUP "$SPID"
    reloaded() { [ "$(grep -c 'reloaded in' "$LOG")" -ge 2 ]; }
    eventually 120 reloaded || true
    expect "core module: still served after a reload" 200 "" "$URL/hello"
    sleep 1
    check_eq "core module: the failure is logged once" "1" \
        "$(grep -c "function 'hello': optimized tier failed" "$LOG")"
    serve_stop
    check_eq "core-module server stops cleanly (exit 0)" "0" "$SRC"
else
    not_ok "server with a core module whose -O2 fails starts" "$(tail -n 20 "$LOG")"
fi

# ---- the JavaScript component: -O2 runs out of memory, the fast tier stays ------------
# StarlingMonkey is 9 MB of code; under a 1.5 GiB compiler memory limit tcc
# builds it and cc -O2 runs out of memory (under the default 4 GiB too, later).
COMP="$KILN_ROOT/tests/components"
JSC="$C/js_handler.wasm"
if [ -f "$JSC" ] && [ "$JSC" -nt "$COMP/js/handler.js" ] && [ "$JSC" -nt "$KILN_ROOT/wit/kiln-faas.wit" ]; then
    ok "componentize-js builds the JS handler (up to date)"
elif blog=$(cd "$T" && node "$COMP/componentize.mjs" "$COMP/js/handler.js" "$KILN_ROOT/wit" handler \
    "$JSC.tmp" 2>&1) && mv -f "$JSC.tmp" "$JSC"; then
    ok "componentize-js builds the JS handler"
else
    not_ok "componentize-js builds the JS handler" "$blog"
fi
export KILN_HOME="$T/home-js"
mkdir -p "$KILN_HOME" "$T/dir-js"
# The fast tier of the shared cache (the key is the same as KILN_CC=tcc's,
# which test_component_reference.sh builds); compiled here if missing.
ln -s "$SHARED_CACHE" "$KILN_HOME/cache"
KILN_CC=tcc "$KILN" call "$JSC" handle --input-json \
    '[{"event-type":"message","event-timestamp":{"seconds":1,"nanoseconds":0},"event-version":"1","source":"kv:x","key":"k","payload":[]}]' \
    >/dev/null 2>&1
cp "$JSC" "$T/dir-js/js.wasm"
if KILN_AOT_MAX_MEMORY=1536M serve_start js --threads 2 --admin-listen 127.0.0.1:0 "$T/dir-js"; then
    ok "server with the JS component starts"
    admin_url
    expect "JS component: served at the fast tier (204)" 204 "" -X POST --data-binary "hi" \
        "$URL/js/key"
    failed_logged() { grep -q "function 'js': optimized tier failed" "$LOG"; }
    if eventually 120 failed_logged; then
        ok "the optimised tier's failure is logged"
    else
        not_ok "the optimised tier's failure is logged" "$(tail -n 20 "$LOG")"
    fi
    check_contains "...with the reason (the compiler ran out of memory)" \
        "$(grep "function 'js': optimized tier failed" "$LOG")" "ran out of memory"
    check_contains "...and that it is not retried" \
        "$(grep "function 'js': optimized tier failed" "$LOG")" "not tried again"
    # A rebuild after the failure, and one more (a request and a SIGHUP):
    # neither asks for the failed tier again.
    kill -HUP "$SPID"
    reloaded() { [ "$(grep -c 'reloaded in' "$LOG")" -ge 2 ]; }
    eventually 120 reloaded || true
    expect "JS component: still served after the failure (204)" 204 "" -X POST \
        --data-binary "hi" "$URL/js/key"
    expect "JS component: its failed() answer (500)" 500 "the handler failed: no" -X POST \
        --data-binary "!no" "$URL/js/k"
    ST=$(curl -s -m 30 -H "Authorization: Bearer $TOKEN" "$ADMIN/status" |
        jq -r '.functions[] | select(.name=="js") | "\(.available) \(.tier)"')
    check_eq "JS component: available at the fast tier" "true fast" "$ST"
    sleep 1
    check_eq "the failure is logged once (no retry, no reload loop)" "1" \
        "$(grep -c "function 'js': optimized tier failed" "$LOG")"
    serve_stop
    check_eq "JS server stops cleanly (exit 0)" "0" "$SRC"
else
    not_ok "server with the JS component starts" "$(tail -n 20 "$LOG")"
fi
finish
