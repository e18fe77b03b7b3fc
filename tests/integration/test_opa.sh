#!/bin/sh
# test_opa.sh - OPA policies as access validators in a route's pipeline, over
# real sockets. The policy modules are hand-written implementations of the
# OPA Wasm ABI (tests/guests_opa/policy.c; `opa build -t wasm` is not
# available offline): allow if header x-role is admin, or a GET below
# /public; entrypoint kiln/authz/decision returns {"allow", "status": 401,
# "message"}. Checked: allow and deny through both evaluation paths (ABI 1.2
# opa_eval and ABI 1.1 eval contexts), entrypoint chosen by name, the denial
# carries the policy's status and message, a policy that aborts fails the
# request (500 naming it) without reaching the backend, a policy needing
# builtins Kiln lacks is refused at start-up, and an OPA module as a backend
# answers its result set; with snapshot: true the same decisions come from
# an image. With server.server_timing, responses carry a
# Server-Timing entry per stage. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

GO=$KILN_BUILD/guests_opa
GX=$KILN_BUILD/guests_extism
# Both guest sets are built here too: this suite must not depend on others
# having run before it (the builders skip what is up to date).
sh "$ROOT/tests/guests_opa/build.sh" "$GO" >"$T/obuild.log" 2>&1
sh "$ROOT/tests/guests_extism/build.sh" "$GX" >"$T/xbuild.log" 2>&1
for m in "$GO/policy.wasm" "$GO/policy_ctx.wasm" "$GO/policy_hostile.wasm" \
    "$GO/policy_builtins.wasm" "$GX/pl_echo.wasm"; do
    if [ ! -f "$m" ]; then
        not_ok "test module $(basename "$m") is built" "missing $m"
        finish
        exit 1
    fi
done

D=$T/opa
mkdir -p "$D"
cp "$GO/policy.wasm" "$GO/policy_ctx.wasm" "$GO/policy_hostile.wasm" "$GX/pl_echo.wasm" "$D/"
cat >"$D/kiln.yaml" <<'YAML'
server: {threads: 2, server_timing: true}
functions:
  echo: {module: pl_echo.wasm, abi: otoroshi}
  policy: {module: policy.wasm, abi: opa}
  policy_ctx: {module: policy_ctx.wasm, abi: opa}
  hostile: {module: policy_hostile.wasm, abi: opa}
  result: {module: policy.wasm, abi: opa}
  policy_snap: {module: policy.wasm, abi: opa, snapshot: true}
routes:
  - path: /api/...
    function: echo
    plugins: [{function: policy, kind: access}]
  - path: /public/...
    function: echo
    plugins: [{function: policy, kind: access}]
  - path: /ctx/...
    function: echo
    plugins: [{function: policy_ctx, kind: access}]
  - path: /decision/...
    function: echo
    plugins: [{function: policy, kind: access, config: {entrypoint: "kiln/authz/decision"}}]
  - path: /abort
    function: echo
    plugins: [{function: hostile, kind: access, config: {entrypoint: 2}}]
  - path: /opa/...
    function: result
  - path: /snap/...
    function: echo
    plugins: [{function: policy_snap, kind: access, config: {entrypoint: "kiln/authz/decision"}}]
YAML
if ! serve_start opa --config "$D/kiln.yaml"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts with OPA policies as access validators"
check_contains "the route table shows the OPA plugin" "$(cat "$LOG")" "plugin 1: policy (access, opa)"

# code URL [curl args...]: the status of one request
code() {
    u=$1
    shift
    curl -s -o "$T/body" -w '%{http_code}' "$@" "$u"
}
hits() { curl -s -o /dev/null -D - -H "x-role: admin" "$URL/api/hits" | tr -d '\r' | sed -n 's/^[Xx]-[Hh]its: //p'; }

check_eq "admin allowed (opa_eval)" 200 "$(code "$URL/api/x" -H "x-role: admin")"
check_contains "... and the backend answered" "$(cat "$T/body")" '"method":"GET"'
h0=$(hits)
check_eq "no role: denied 403 (the policy's result is false)" 403 "$(code "$URL/api/x")"
check_contains "... with a JSON error naming the plugin" "$(cat "$T/body")" '"plugin":"policy"'
check_eq "GET below /public allowed without a role" 200 "$(code "$URL/public/page")"
check_eq "POST below /public denied" 403 "$(code "$URL/public/page" -X POST -d x)"
check_eq "guest role denied" 403 "$(code "$URL/api/x" -H "x-role: guest")"
h1=$(hits)
# Between the two counts: the allowed GET below /public and the second count itself.
check_eq "denied requests never reached the backend" "$((h0 + 2))" "$h1"
check_eq "ABI 1.1 policy (eval contexts): admin allowed" 200 "$(code "$URL/ctx/x" -H "x-role: admin")"
check_eq "ABI 1.1 policy: no role denied" 403 "$(code "$URL/ctx/x")"
check_eq "entrypoint by name: the decision's status" 401 "$(code "$URL/decision/x")"
check_contains "... and its message" "$(cat "$T/body")" "admin role or public GET required"
check_eq "entrypoint by name: allowed" 200 "$(code "$URL/decision/x" -H "x-role: admin")"
st=$(curl -s -o /dev/null -D - -H "x-role: admin" "$URL/decision/x" | tr -d '\r' | sed -n 's/^[Ss]erver-[Tt]iming: //p')
check_contains "server_timing: the access stage is timed, naming its function" "$st" 'access;desc="policy";dur='
check_contains "server_timing: ... and the backend" "$st" 'backend;desc="echo";dur='
h2=$(hits)
check_eq "a policy that aborts: 500" 500 "$(code "$URL/abort" -H "x-role: admin")"
check_contains "... naming the plugin function" "$(cat "$T/body")" '"function":"hostile"'
check_contains "... with the policy's abort message" "$(cat "$T/body")" "policy aborted on purpose"
h3=$(hits)
check_eq "the aborted request never reached the backend (only the count itself)" "$((h2 + 1))" "$h3"
check_contains "snapshot: the policy's image is made at start-up" "$(cat "$LOG")" \
    "function 'policy_snap': snapshot image built in memory"
snap_same=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    a=$(code "$URL/decision/p$i" -H "x-role: admin")
    b=$(code "$URL/snap/p$i" -H "x-role: admin")
    c=$(code "$URL/decision/p$i")
    ab=$(cat "$T/body")
    d=$(code "$URL/snap/p$i")
    [ "$a" = 200 ] && [ "$b" = 200 ] && [ "$c" = 401 ] && [ "$d" = 401 ] &&
        [ "$(sed s/policy_snap/policy/ "$T/body")" = "$ab" ] && snap_same=$((snap_same + 1))
done
check_eq "snapshot: 20 decisions as without snapshot (allow; deny with the same body but the plugin name)" 10 \
    "$snap_same"
check_eq "an OPA module as a backend answers its result set" 200 \
    "$(code "$URL/opa/x" -H "x-role: admin")"
check_contains "... [{\"result\": true}]" "$(tr -d ' ' <"$T/body")" '[{"result":true}]'
serve_stop

# A policy that needs builtins Kiln does not implement is refused with their names.
B=$T/builtins
mkdir -p "$B"
cp "$GO/policy_builtins.wasm" "$GX/pl_echo.wasm" "$B/"
cat >"$B/kiln.yaml" <<'YAML'
server: {threads: 1}
functions:
  echo: {module: pl_echo.wasm, abi: otoroshi}
  needs: {module: policy_builtins.wasm, abi: opa}
routes:
  - {path: /x, function: echo, plugins: [{function: needs, kind: access}]}
YAML
if serve_start builtins --config "$B/kiln.yaml"; then
    check_eq "a policy needing missing builtins: 503, never allowed" 503 "$(code "$URL/x" -H "x-role: admin")"
    check_contains "... the log names a builtin it lacks" "$(cat "$LOG")" "builtin"
    serve_stop
else
    check_contains "a policy needing missing builtins is refused, naming them" "$(cat "$LOG")" "builtin"
fi
finish
