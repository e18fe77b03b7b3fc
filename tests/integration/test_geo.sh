#!/bin/sh
# test_geo.sh - the geolocation-cache scenario end to end, written twice:
# as a Kiln-native C guest (examples/sdk/geo.c: sdk/c/kiln.h over the "kiln"
# module's kv_* and http_*) and as an Otoroshi WasmBackend
# (tests/guests_extism/geo_otoroshi.c: proxy_plugin_map_* and
# proxy_http_call). GET /search?q=... looks q up in the function's KV
# namespace; a miss asks the upstream address API (net_upstream.py stands in
# for the public one), stores the answer and returns it. Checked: the second
# identical request is served from KV (the upstream's counter does not move),
# a different q goes upstream, the cache outlives a server restart (SQLite),
# and the two functions' private namespaces are separate.
# Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"
. "$(dirname "$0")/net_lib"

XG=$KILN_BUILD/guests_extism
if ! sdk_build "$ROOT/examples/sdk/geo.c" geo; then
    not_ok "examples/sdk/geo.c builds"
    finish
    exit 1
fi
ok "examples/sdk/geo.c builds"
if ! sh "$ROOT/tests/guests_extism/build.sh" "$XG" >"$T/xbuild.log" 2>&1 ||
    [ ! -f "$XG/geo_otoroshi.wasm" ]; then
    not_ok "geo_otoroshi.c builds" "$(tail -n 5 "$T/xbuild.log")"
    finish
    exit 1
fi
ok "geo_otoroshi.c builds"
if ! up_start; then
    not_ok "upstream starts" "$(cat "$T/upstream.log")"
    finish
    exit 1
fi
ok "upstream starts on $UP"

D=$T/fns
mkdir -p "$D"
cp "$SG/geo.wasm" "$XG/geo_otoroshi.wasm" "$D/"
cat >"$D/kiln.yaml" <<EOF
server: {threads: 2, quiet: true}
kv: {path: $T/kv.db}
functions:
  geo:
    module: geo.wasm
    allowed_hosts: ["http://127.0.0.1:$UPORT"]
    config: {upstream: "$UP/search"}
    routes: [/search]
  geo_oto:
    module: geo_otoroshi.wasm
    abi: otoroshi
    allowed_hosts: ["http://127.0.0.1:$UPORT"]
    config: {upstream: "$UP/search"}
    routes: [/oto/search]
EOF
if ! serve_start geo --config "$D/kiln.yaml"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts"

# scenario NAME PATH: the cache checks against route PATH.
scenario() {
    n=$1
    p=$2
    base=$(up_stat search_hits)
    req "$URL$p?q=paris"
    check_eq "$n: first request: 200" 200 "$CODE"
    check_eq "$n: first request: a miss" miss "$(header X-Cache)"
    check_contains "$n: first request: the upstream's answer" "$BODY" '"q": "paris"'
    first=$BODY
    check_eq "$n: first request went upstream once" $((base + 1)) "$(up_stat search_hits)"
    req "$URL$p?q=paris"
    check_eq "$n: second identical request: 200" 200 "$CODE"
    check_eq "$n: second identical request: served from KV" hit "$(header X-Cache)"
    check_eq "$n: second identical request: same body" "$first" "$BODY"
    check_eq "$n: second identical request: upstream counter did not move" $((base + 1)) \
        "$(up_stat search_hits)"
    req "$URL$p?q=lyon"
    check_eq "$n: a different q: a miss" miss "$(header X-Cache)"
    check_contains "$n: a different q: its own answer" "$BODY" '"q": "lyon"'
    check_eq "$n: a different q went upstream" $((base + 2)) "$(up_stat search_hits)"
    req "$URL$p?q=lyon"
    check_eq "$n: lyon again: from KV" hit "$(header X-Cache)"
    check_eq "$n: lyon again: upstream counter did not move" $((base + 2)) "$(up_stat search_hits)"
    # 40 distinct misses, then the same 40 again as hits, on one keep-alive
    # connection: median server round trip of each path.
    out=$(python3 - "$HOSTPORT" "$p" "$n" <<'PY'
import http.client, statistics, sys, time
c = http.client.HTTPConnection(sys.argv[1], timeout=30)
res = {}
for kind in ("miss", "hit"):
    ts, bad = [], 0
    for i in range(40):
        t = time.perf_counter()
        c.request("GET", "%s?q=bench-%s-%d" % (sys.argv[2], sys.argv[3], i))
        r = c.getresponse()
        r.read()
        ts.append(time.perf_counter() - t)
        bad += r.status != 200 or r.getheader("X-Cache") != kind
    res[kind] = (statistics.median(ts) * 1000, bad)
print("%d %.2f %.2f" % (res["miss"][1] + res["hit"][1], res["miss"][0], res["hit"][0]))
PY
)
    check_eq "$n: 40 misses then 40 hits on one connection: each as expected" 0 "${out%% *}"
    rest=${out#* }
    echo "# $n: median over 40 on a keep-alive connection: miss ${rest% *} ms, hit ${rest#* } ms"
}

scenario "native" /search
req "$URL/search?q=new%20york"
check_contains "native: q is encoded for the upstream" "$BODY" '"q": "new york"'
check_eq "native: the upstream saw the decoded q once" 1 "$(up_q 'new york')"
expect "native: missing q is a 400" 400 "missing ?q=" "$URL/search"

scenario "otoroshi" /oto/search
check_eq "private namespaces: each function fetched paris itself" 2 "$(up_q paris)"
expect "otoroshi: missing q is a 400" 400 "missing ?q=" "$URL/oto/search"

# The cache is in SQLite: a restarted server still has it.
serve_stop
check_eq "server stops cleanly" 0 "$SRC"
before=$(up_stat search_hits)
if serve_start geo2 --config "$D/kiln.yaml"; then
    req "$URL/search?q=paris"
    check_eq "after a restart: native paris from KV" hit "$(header X-Cache)"
    req "$URL/oto/search?q=lyon"
    check_eq "after a restart: otoroshi lyon from KV" hit "$(header X-Cache)"
    check_eq "after a restart: the upstream was not asked" "$before" "$(up_stat search_hits)"
    serve_stop
else
    not_ok "server restarts" "$(cat "$LOG")"
fi

finish
