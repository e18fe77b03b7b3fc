#!/bin/sh
# test_deploy.sh - deploying to a running `kiln serve` through the admin API
# and the CLI (src/admin, src/cli/cmd_deploy.c), end to end over real
# sockets: auth (no token, wrong token, /healthz), deploy by curl and by
# `kiln deploy`, list/get (version, tier, status), refused modules and
# settings (nothing changes, the old version serves), a version that fails
# to compile never replaces a serving one, rollback (previous and by number),
# delete (history kept), restart persistence (served again without a
# redeploy), two deploys racing on one name, 50 redeploys under load with no
# failed request, and the CLI's exit codes. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

# A state directory of its own (registry, token, managed directory), sharing
# the compiled-artifact cache of the other suites.
export KILN_HOME="$T/home"
mkdir -p "$KILN_HOME"
SHARED_CACHE=${KILN_BUILD}/test-home/cache
mkdir -p "$SHARED_CACHE" && ln -s "$SHARED_CACHE" "$KILN_HOME/cache"
unset KILN_ADMIN_TOKEN KILN_TOKEN KILN_ADMIN
HELLO=$G/cgi_hello.wasm
ECHO=$G/cgi_echo.wasm
D=$T/fns
mkdir -p "$D"
for f in "$HELLO" "$ECHO"; do
    [ -f "$f" ] || { not_ok "guest $f built" "see $KILN_BUILD/guests_http.log"; finish; exit 1; }
done
sha() { sha256sum "$1" | cut -d' ' -f1; }
SHA_HELLO=$(sha "$HELLO")
SHA_ECHO=$(sha "$ECHO")

# start_server NAME: kiln serve on port 0 with the admin API on port 0; sets
# URL (public), ADMIN (admin API) and TOKEN.
start_server() {
    if ! serve_start "$1" --admin-listen 127.0.0.1:0 "$D"; then
        not_ok "server $1 starts" "$(cat "$LOG")"
        finish
        exit 1
    fi
    ADMIN=""
    i=0
    while [ -z "$ADMIN" ] && [ $i -lt 100 ]; do
        ADMIN=$(sed -n 's/.*admin API on \(http:[^ ]*\).*/\1/p' "$LOG" | head -n 1)
        [ -n "$ADMIN" ] || sleep 0.1
        i=$((i + 1))
    done
    TOKEN=$(cat "$KILN_HOME/admin.token")
}

# api NAME CODE [BODY-SUBSTRING] METHOD PATH [CURL ARGS]: an authenticated
# admin request, checked like `expect`.
api() {
    n=$1
    c=$2
    s=$3
    m=$4
    p=$5
    shift 5
    expect "$n" "$c" "$s" -X "$m" -H "Authorization: Bearer $TOKEN" "$@" "$ADMIN$p"
}
# jv FILTER: jq on the last body.
jv() { printf '%s' "$BODY" | jq -r "$1" 2>/dev/null; }
jvc() { printf '%s' "$BODY" | jq -c "$1" 2>/dev/null; }
# eventually SECONDS CMD...: true once CMD succeeds, polling every 0.1 s.
eventually() {
    limit=$(($1 * 10))
    shift
    i=0
    while [ $i -lt $limit ]; do
        "$@" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
serves() { B=$(body_of "$1"); case "$B" in *"$2"*) return 0 ;; esac; return 1; }
# body_of PATH: the public server's answer body (status must be 200).
body_of() {
    req "$URL$1"
    [ "$CODE" = 200 ] && printf '%s' "$BODY"
}

start_server first
ok "server starts with the admin API"
L=$(cat "$LOG")
check_contains "startup: the admin API address is logged" "$L" "admin API on http://127.0.0.1:"
check_contains "startup: the token file is named, not the token" "$L" "admin.token"
case "$L" in *"$TOKEN"*) not_ok "the token itself is never logged" ;; *) ok "the token itself is never logged" ;; esac
check_eq "admin.token is mode 0600" "600" "$(stat -c %a "$KILN_HOME/admin.token")"
check_eq "admin.token holds a 64-digit random token" "64" "$(printf '%s' "$TOKEN" | tr -cd '0-9a-f' | wc -c)"
[ "$ADMIN" != "$URL" ] && ok "the admin API is not on the public port" || not_ok "the admin API is not on the public port"

# ---- auth ----------------------------------------------------------------------
expect "healthz answers without a token" 200 '{"ok":true}' "$ADMIN/healthz"
check_eq "healthz says nothing more" '{"ok":true}' "$BODY"
expect "no token: 401" 401 "missing admin token" "$ADMIN/functions"
check_eq "401 carries WWW-Authenticate: Bearer" 'Bearer realm="kiln-admin"' "$(header WWW-Authenticate)"
check_eq "401 is JSON" "application/json" "$(header Content-Type)"
expect "wrong token: 401" 401 "wrong admin token" -H "Authorization: Bearer ${TOKEN}x" "$ADMIN/functions"
expect "token prefix only: 401" 401 "" -H "Authorization: Bearer $(printf '%s' "$TOKEN" | cut -c1-32)" "$ADMIN/functions"
expect "wrong scheme: 401" 401 "" -H "Authorization: Basic $TOKEN" "$ADMIN/functions"
expect "upload without a token: 401, nothing deployed" 401 "" -X PUT -T "$HELLO" "$ADMIN/functions/sneaky"
[ -e "$KILN_HOME/functions/sneaky.wasm" ] && not_ok "unauthenticated upload wrote nothing" || ok "unauthenticated upload wrote nothing"
expect "the public port has no admin API" 404 "" -H "Authorization: Bearer $TOKEN" "$URL/functions"

# ---- deploy by API -------------------------------------------------------------
api "PUT deploys (201)" 201 '"status":"serving"' PUT "/functions/greet?route=/greet" -T "$HELLO"
check_eq "deploy: version 1" "1" "$(jv .version)"
check_eq "deploy: the module's sha256" "$SHA_HELLO" "$(jv .sha256)"
check_eq "deploy: a tier is reported" "true" "$(jv '.tier != null')"
check_eq "deployed function answers on its route" "hello from /greet" "$(body_of /greet)"
check_eq "managed directory: module" "$SHA_HELLO" "$(sha "$KILN_HOME/functions/greet.wasm")"
check_eq "managed directory: sidecar with the routes" '["/greet"]' "$(jq -c .routes "$KILN_HOME/functions/greet.json")"
check_eq "module stored by content hash" "$SHA_HELLO" "$(sha "$KILN_HOME/modules/$SHA_HELLO.wasm")"
ls -a "$KILN_HOME/functions" | grep -q '\.tmp\.' && not_ok "no temporary files left" || ok "no temporary files left"

api "PUT with X-Kiln-Settings (env)" 201 '"status":"serving"' PUT "/functions/greet" -T "$ECHO" \
    -H 'X-Kiln-Settings: {"routes": ["/greet"], "env": {"FLAVOUR": "v2"}}'
check_eq "redeploy: version 2" "2" "$(jv .version)"
check_eq "redeploy: previous version 1" "1" "$(jv .previous_version)"
B=$(body_of /greet)
check_contains "redeploy: the new module answers" "$B" "REQUEST_METHOD=GET"
check_contains "redeploy: the settings apply" "$B" "FLAVOUR=v2"

# ---- list / get ----------------------------------------------------------------
api "GET /functions" 200 '"name":"greet"' GET /functions
check_eq "list: active version" "2" "$(jv '.functions[] | select(.name=="greet") | .active_version')"
check_eq "list: status" "serving" "$(jv '.functions[] | select(.name=="greet") | .status')"
check_eq "list: tier" "true" "$(jv '.functions[] | select(.name=="greet") | (.tier | type) == "string"')"
check_eq "list: routes" '["/greet"]' "$(jvc '.functions[] | select(.name=="greet") | .routes')"
api "GET /functions/NAME" 200 '"versions"' GET /functions/greet
check_eq "get: two versions, newest first" "2 1" "$(jv '[.versions[].version] | map(tostring) | join(" ")')"
check_eq "get: the active flag" "2" "$(jv '.versions[] | select(.active) | .version')"
check_eq "get: serving, with its tier" "serving true" "$(jv '"\(.status) \(.tier != null)"')"
check_eq "get: versions carry their hashes" "$SHA_HELLO" "$(jv '.versions[] | select(.version==1) | .sha256')"
api "GET unknown function: 404" 404 "was ever deployed" GET /functions/nosuch
api "GET /status" 200 '"ok":true' GET /status
check_eq "status: the deployed function is served" "true" "$(jv '[.functions[] | select(.name=="greet") | .available] | .[0]')"
api "unknown endpoint: 404 JSON" 404 "no endpoint" GET /nothing
api "wrong method: 405" 405 "" POST /functions/greet
check_eq "405 names the allowed methods" "GET, PUT, DELETE" "$(header Allow)"
api "bad name: 400" 400 "bad function name" PUT "/functions/.hidden" -T "$HELLO"

# ---- refused modules and settings ----------------------------------------------
printf 'this is not WebAssembly' >"$T/bad.wasm"
api "malformed module: 422" 422 "module refused" PUT /functions/greet -T "$T/bad.wasm"
check_contains "malformed module: says nothing changed" "$BODY" "previous version keeps serving"
api "malformed module: no new version" 200 "" GET /functions/greet
check_eq "malformed module: still 2 versions, 2 active" "2 2" "$(jv '"\(.versions | length) \(.active_version)"')"
check_contains "malformed module: the old version still serves" "$(body_of /greet)" "FLAVOUR=v2"
api "unknown settings key: 400 naming it" 400 "unknown key 'memroy'" PUT /functions/greet -T "$HELLO" \
    -H 'X-Kiln-Settings: {"memroy": "1MiB"}'
api "settings not JSON: 400" 400 "X-Kiln-Settings" PUT /functions/greet -T "$HELLO" -H 'X-Kiln-Settings: {nope'
api "module in settings: 400" 400 "'module' is not a setting" PUT /functions/greet -T "$HELLO" \
    -H 'X-Kiln-Settings: {"module": "/etc/passwd"}'
api "empty body: 400" 400 "no module" PUT /functions/greet -H 'Content-Type: application/wasm' --data-binary ''
head -c $((64 * 1024 * 1024 + 1)) /dev/zero >"$T/huge.wasm"
api "upload over 64 MiB: 413" 413 "limit" PUT /functions/huge -T "$T/huge.wasm"
rm -f "$T/huge.wasm"
# A module whose structure is fine but whose code does not validate: the
# server refuses it at compile time; the serving version must stay.
printf '(module (func (export "_start") i32.add))' >"$T/invalid.wat"
if wat2wasm --no-check "$T/invalid.wat" -o "$T/invalid.wasm" 2>/dev/null; then
    api "uncompilable module: 422 after the server refused it" 422 "refused by the server" \
        PUT /functions/greet -T "$T/invalid.wasm"
    check_contains "uncompilable module: names the version that keeps serving" "$BODY" "version 2 keeps serving"
    check_eq "uncompilable module: active version is 2 again" "2" "$(jv .active_version)"
    # The revert rewrites the managed files; the server applies them on its next scan.
    eventually 10 serves /greet FLAVOUR=v2 && ok "uncompilable module: the old version still serves" ||
        not_ok "uncompilable module: the old version still serves" "$B"
    check_eq "uncompilable module: managed directory holds version 2" "$SHA_ECHO" "$(sha "$KILN_HOME/functions/greet.wasm")"
    api "uncompilable module: recorded as failed with its error" 200 "" GET /functions/greet
    check_eq "uncompilable module: version 3 failed" "failed" "$(jv '.versions[] | select(.version==3) | .status')"
    check_eq "uncompilable module: last_error set" "true" "$(jv '.last_error != null')"
else
    not_ok "wat2wasm --no-check builds an invalid module"
fi

# ---- rollback -------------------------------------------------------------------
api "rollback to the previous version" 200 '"status":"serving"' POST /functions/greet/rollback
check_eq "rollback: version 1 active" "1" "$(jv .version)"
check_eq "rollback: version 1 answers" "hello from /greet" "$(body_of /greet)"
api "rollback to version 2 by number" 200 '"version":2' POST /functions/greet/rollback -d '{"version": 2}'
check_contains "rollback by number: version 2 answers" "$(body_of /greet)" "FLAVOUR=v2"
api "rollback to a missing version: 404" 404 "no version 99" POST /functions/greet/rollback -d '{"version": 99}'
api "rollback of an unknown function: 404" 404 "" POST /functions/nosuch/rollback

# ---- deploy by CLI ---------------------------------------------------------------
export KILN_ADMIN="$ADMIN"
OUT=$("$KILN" deploy --route /cli --env WHO=cli --wait clifn "$ECHO" 2>&1)
check_eq "kiln deploy --wait: exit 0" "0" "$?"
check_contains "kiln deploy: prints version and status" "$OUT" "deployed clifn version 1"
check_contains "kiln deploy: serving" "$OUT" "status serving"
check_contains "kiln deploy: the function answers with its env" "$(body_of /cli)" "WHO=cli"
OUT=$("$KILN" ls 2>&1)
check_eq "kiln ls: exit 0" "0" "$?"
check_contains "kiln ls: header" "$OUT" "NAME"
check_contains "kiln ls: lists clifn with version and status" "$(printf '%s\n' "$OUT" | grep '^clifn')" " 1  serving"
check_contains "kiln ls: lists greet at version 2" "$(printf '%s\n' "$OUT" | grep '^greet')" " 2  serving"
OUT=$("$KILN" ls --json 2>&1)
check_eq "kiln ls --json: JSON with a tier" "true" "$(printf '%s' "$OUT" | jq '.functions[] | select(.name=="clifn") | .tier != null')"
OUT=$("$KILN" deploy clifn "$T/bad.wasm" 2>&1)
check_eq "kiln deploy of a malformed module: exit 1" "1" "$?"
check_contains "kiln deploy prints the server's message" "$OUT" "module refused"
OUT=$("$KILN" ls --token wrong-token-wrong-token 2>&1)
check_eq "kiln ls with a wrong token: exit 4" "4" "$?"
check_contains "kiln ls with a wrong token: says so" "$OUT" "refused the token (401)"
OUT=$(KILN_HOME=$T/empty "$KILN" ls 2>&1)
check_eq "kiln ls without a token: exit 4" "4" "$?"
OUT=$("$KILN" ls --admin http://127.0.0.1:1 2>&1)
check_eq "kiln ls with no server: exit 3" "3" "$?"
check_contains "kiln ls with no server: says so" "$OUT" "is \`kiln serve\` running?"
OUT=$("$KILN" deploy onlyname 2>&1)
check_eq "kiln deploy without a module: exit 2" "2" "$?"
OUT=$("$KILN" deploy --env NOEQUALS x "$ECHO" 2>&1)
check_eq "kiln deploy --env without '=': exit 2" "2" "$?"
OUT=$("$KILN" deploy --wait clifn "$HELLO" --route /cli 2>&1)
check_eq "kiln deploy of version 2: exit 0" "0" "$?"
OUT=$("$KILN" rollback --wait clifn 2>&1)
check_eq "kiln rollback: exit 0" "0" "$?"
check_contains "kiln rollback: version 1 active" "$OUT" "version 1 active (was version 2)"
check_contains "kiln rollback: version 1 answers" "$(body_of /cli)" "WHO=cli"
OUT=$("$KILN" rollback clifn 9 2>&1)
check_eq "kiln rollback to a missing version: exit 1" "1" "$?"
OUT=$("$KILN" rm clifn 2>&1)
check_eq "kiln rm: exit 0" "0" "$?"
check_contains "kiln rm: history kept" "$OUT" "2 versions kept"
i=0
while [ $i -lt 50 ]; do req "$URL/cli"; [ "$CODE" = 404 ] && break; sleep 0.1; i=$((i + 1)); done
check_eq "kiln rm: the route is gone" "404" "$CODE"
[ -e "$KILN_HOME/functions/clifn.wasm" ] || [ -e "$KILN_HOME/functions/clifn.json" ] &&
    not_ok "kiln rm: managed files removed" || ok "kiln rm: managed files removed"
OUT=$("$KILN" rm clifn 2>&1)
check_eq "kiln rm of an undeployed function: exit 1" "1" "$?"
check_contains "kiln ls --all: shows undeployed functions" "$("$KILN" ls --all 2>&1)" "undeployed"
api "DELETE of an undeployed function: 404" 404 "not deployed" DELETE /functions/clifn
api "GET of an undeployed function keeps its history" 200 '"status":"undeployed"' GET /functions/clifn
check_eq "undeployed: 2 versions kept" "2" "$(jv '.versions | length')"

# ---- a module never compiled before: fast tier first, then the optimised one ---------
# A custom section with random bytes makes a module whose artifacts are not cached.
cp "$HELLO" "$T/fresh.wasm"
printf '\000\012\001t' >>"$T/fresh.wasm"
head -c 8 /dev/urandom >>"$T/fresh.wasm"
api "fresh module: deployed and serving" 201 '"status":"serving"' PUT "/functions/fresh?route=/fresh" -T "$T/fresh.wasm"
FIRST_TIER=$(jv .tier)
check_eq "fresh module: it answers" "hello from /fresh" "$(body_of /fresh)"
opt_tier() {
    BODY=$(curl -s -H "Authorization: Bearer $TOKEN" "$ADMIN/functions/fresh")
    T2=$(jv .tier)
    [ -n "$T2" ] && [ "$T2" != null ] && [ "$T2" != "$FIRST_TIER" ]
}
if eventually 120 opt_tier; then
    ok "fresh module: the tier changes ($FIRST_TIER -> $T2)"
    check_contains "kiln ls shows the new tier" "$("$KILN" ls 2>&1 | grep '^fresh')" "$T2"
    check_eq "fresh module: still serving after the switch" "hello from /fresh" "$(body_of /fresh)"
else
    not_ok "fresh module: the tier changes (first $FIRST_TIER)" "$BODY"
fi

# ---- two deploys racing on one name ----------------------------------------------
for round in 1 2 3; do
    curl -s -o "$T/race.a" -H "Authorization: Bearer $TOKEN" -T "$HELLO" "$ADMIN/functions/race?route=/race" &
    pa=$!
    curl -s -o "$T/race.b" -H "Authorization: Bearer $TOKEN" -T "$ECHO" "$ADMIN/functions/race?route=/race" &
    pb=$!
    wait $pa $pb
done
api "race: the function exists" 200 "" GET /functions/race
ACTIVE=$(jv .active_version)
ASHA=$(jv '.sha256')
check_eq "race: six versions recorded, numbered 1..6" "6 5 4 3 2 1" "$(jv '[.versions[].version] | map(tostring) | join(" ")')"
check_eq "race: the managed module is the active version's" "$ASHA" "$(sha "$KILN_HOME/functions/race.wasm")"
i=0
while [ $i -lt 100 ]; do
    api "race: status" 200 "" GET /functions/race >/dev/null
    [ "$(jv .status)" = serving ] && break
    sleep 0.1
    i=$((i + 1))
done
check_eq "race: the active version is serving" "serving" "$(jv .status)"
B=$(body_of /race)
if [ "$ASHA" = "$SHA_HELLO" ]; then
    check_eq "race: the route answers with the active module (hello)" "hello from /race" "$B"
else
    check_contains "race: the route answers with the active module (echo)" "$B" "REQUEST_METHOD=GET"
fi

# ---- 50 redeploys under load -------------------------------------------------------
api "load: first version" 201 '"status":"serving"' PUT "/functions/live?route=/live" -T "$HELLO"
rm -f "$T/stop"
python3 "$ROOT/tests/integration/deploy_load.py" "$URL/live" "$T/stop" 8 \
    '^hello from /live$' 'REQUEST_METHOD=GET.*SCRIPT_NAME=/live' >"$T/load.out" 2>&1 &
LPID=$!
n=0
fails=0
while [ $n -lt 50 ]; do
    if [ $((n % 2)) -eq 0 ]; then m=$ECHO; else m=$HELLO; fi
    code=$(curl -s -o "$T/dep.out" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -T "$m" \
        "$ADMIN/functions/live?route=/live")
    if [ "$code" != 201 ] || ! grep -q '"status":"serving"' "$T/dep.out"; then
        fails=$((fails + 1))
        echo "redeploy $n: $code $(cat "$T/dep.out")"
    fi
    n=$((n + 1))
done
touch "$T/stop"
wait $LPID
LRC=$?
check_eq "load: 50 redeploys, each serving" "0" "$fails"
LOUT=$(cat "$T/load.out")
echo "load: $LOUT" | head -n 3
if [ "$LRC" = 0 ]; then ok "load: zero failed requests, every answer from a valid version"; else
    not_ok "load: zero failed requests, every answer from a valid version" "$LOUT"; fi
REQS=$(printf '%s' "$LOUT" | sed -n 's/.*requests=\([0-9]*\).*/\1/p' | head -n 1)
[ "${REQS:-0}" -ge 100 ] && ok "load: the generator ran ($REQS requests)" || not_ok "load: the generator ran" "$LOUT"
api "load: 51 versions of live" 200 "" GET /functions/live
check_eq "load: 51 versions of live" "51" "$(jv '.versions | length')"

# ---- restart persistence -------------------------------------------------------------
api "before restart: list" 200 "" GET /functions
BEFORE=$(jvc '[.functions[] | "\(.name):\(.active_version)"] | sort | join(",")')
serve_stop
check_eq "server stops cleanly" "0" "$SRC"
start_server second
check_eq "restart: the same token" "$TOKEN" "$(cat "$KILN_HOME/admin.token")"
# The server may still be loading (tiers compile in the background): poll, 30 s at most.
eventually 30 serves /greet FLAVOUR=v2 && ok "restart: greet serves without a redeploy" ||
    not_ok "restart: greet serves without a redeploy" "$CODE $B"
live_ok() { B=$(body_of /live); case "$B" in "hello from /live" | *REQUEST_METHOD=GET*) return 0 ;; esac; return 1; }
eventually 30 live_ok && ok "restart: live serves without a redeploy" ||
    not_ok "restart: live serves without a redeploy" "$CODE $B"
req "$URL/cli"
check_eq "restart: the undeployed function stays undeployed" "404" "$CODE"
api "restart: list" 200 "" GET /functions
check_eq "restart: same functions and active versions" "$BEFORE" \
    "$(jvc '[.functions[] | "\(.name):\(.active_version)"] | sort | join(",")')"
all_serving() {
    BODY=$(curl -s -H "Authorization: Bearer $TOKEN" "$ADMIN/functions")
    [ "$(jv '[.functions[].status] | unique | join(",")')" = serving ]
}
eventually 30 all_serving && ok "restart: all serving" || not_ok "restart: all serving" "$BODY"
L2=$(cat "$LOG")
case "$L2" in *"admin: deployed"*) not_ok "restart: nothing was redeployed" "$L2" ;; *) ok "restart: nothing was redeployed" ;; esac
# A managed file damaged while the server was down is repaired from the registry.
serve_stop
printf 'junk' >"$KILN_HOME/functions/greet.wasm"
rm -f "$KILN_HOME/functions/race.json"
start_server third
check_eq "restart: a damaged managed module is restored" "$SHA_ECHO" "$(sha "$KILN_HOME/functions/greet.wasm")"
check_eq "restart: a missing sidecar is restored" "true" "$([ -f "$KILN_HOME/functions/race.json" ] && echo true)"
eventually 30 serves /greet FLAVOUR=v2 && ok "restart: greet serves after the repair" ||
    not_ok "restart: greet serves after the repair" "$CODE $B"
serve_stop

# ---- options ---------------------------------------------------------------------------
"$KILN" serve --listen 127.0.0.1:18431 --admin-listen 127.0.0.1:18431 "$D" >"$T/same.log" 2>&1
check_eq "--admin-listen equal to --listen: exit 2" "2" "$?"
"$KILN" serve --listen 127.0.0.1:0 --admin-listen nonsense "$D" >"$T/bad.log" 2>&1
check_eq "bad --admin-listen: exit 1" "1" "$?"
check_contains "bad --admin-listen: says what to write" "$(cat "$T/bad.log")" "expected ADDR:PORT"
KILN_ADMIN_TOKEN=from-the-environment-123 serve_start envtok --admin-listen 127.0.0.1:0 "$D" ||
    not_ok "server with KILN_ADMIN_TOKEN starts" "$(cat "$LOG")"
ADMIN=$(sed -n 's/.*admin API on \(http:[^ ]*\).*/\1/p' "$LOG" | head -n 1)
expect "KILN_ADMIN_TOKEN: that token works" 200 "" -H "Authorization: Bearer from-the-environment-123" "$ADMIN/functions"
expect "KILN_ADMIN_TOKEN: the file's token does not" 401 "" -H "Authorization: Bearer $TOKEN" "$ADMIN/functions"
serve_stop
serve_start off --admin-listen off "$D" || not_ok "server with --admin-listen off starts" "$(cat "$LOG")"
check_contains "--admin-listen off: logged" "$(cat "$LOG")" "admin API off"
eventually 30 serves /greet FLAVOUR=v2 && ok "--admin-listen off: deployed functions still serve" ||
    not_ok "--admin-listen off: deployed functions still serve" "$CODE $B"
serve_stop

finish
