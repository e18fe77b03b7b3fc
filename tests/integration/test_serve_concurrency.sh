#!/bin/sh
# test_serve_concurrency.sh - 100 concurrent keep-alive clients x 1,000
# requests each (100,000 in all) to a stateful guest (cgi_counter: a global
# counter and a heap buffer), every response checked: with a fresh instance
# per request each answer is "id=<its own id> count=1 heap=clean", so any
# state shared between requests or instances would show. Also checks that a
# SIGHUP reload in the middle of the load loses no request.
# SERVE_CLIENTS / SERVE_REQUESTS override the counts. Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

CLIENTS=${SERVE_CLIENTS:-100}
REQUESTS=${SERVE_REQUESTS:-1000}
D=$T/fns
mkdir -p "$D"
cp "$G/cgi_counter.wasm" "$G/cgi_hello.wasm" "$D/"
# More workers than cores: requests really run side by side on many threads.
if ! serve_start conc --quiet --threads 4 "$D"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts"
check_contains "--threads 4: four workers" "$(cat "$LOG")" "(4 worker threads"
expect "counter: one request" 200 "id=solo count=1 heap=clean" "$URL/cgi_counter?id=solo"

out=$($CLIENT hammer "$URL/cgi_counter" "$CLIENTS" "$REQUESTS")
rc=$?
echo "$out"
check_eq "$CLIENTS clients x $REQUESTS requests: every response is its own, count=1" 0 "$rc"

# Reloads while under load: requests keep their table until they finish.
$CLIENT hammer "$URL/cgi_counter" 20 500 >"$T/reload.out" 2>&1 &
HPID=$!
for i in 1 2 3 4 5; do
    sleep 0.3
    kill -HUP "$SPID"
done
wait "$HPID"
rc=$?
cat "$T/reload.out"
check_eq "5 reloads under load: no error, no cross-talk" 0 "$rc"
n=$(grep -c "reloaded in" "$LOG")
check "reloads happened" test "$n" -ge 1
kill -0 "$SPID" 2>/dev/null && ok "server alive after the load" || not_ok "server alive after the load"
serve_stop
check_eq "SIGTERM after the load: exit 0" 0 "$SRC"
finish
