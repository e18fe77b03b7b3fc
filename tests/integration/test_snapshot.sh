#!/bin/sh
# test_snapshot.sh - `snapshot: true` over HTTP (docs/internals/snapshot.md):
# an Extism plugin with an expensive initialisation answers exactly as
# without snapshot, on every request, while each request scribbles over the
# initialised state (isolation over many requests and both workers); an
# initialisation that makes an Extism host call
# makes the function unavailable (503) with a message naming the call, while
# the same module without snapshot serves; a reload after the configuration
# (the environment init reads) or the module changed rebuilds the image;
# images on disk survive a restart (loaded, not rebuilt), a changed
# configuration or a corrupt file builds a new one; a function's previous
# image is removed when it moves to another; WASI-CGI commands with a
# `wizer.initialize` export start each request from an image, a plain
# command is refused saying what to export.
# Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

XG=$KILN_BUILD/guests_extism
if ! sh "$ROOT/tests/guests_extism/build.sh" "$XG" >"$T/guests.log" 2>&1 ||
    [ ! -f "$XG/snap_init.wasm" ] || [ ! -f "$XG/snap_bad.wasm" ]; then
    not_ok "extism guests build" "$(tail -5 "$T/guests.log")"
    finish
    exit 1
fi
D=$T/site
mkdir -p "$D/mods"
cp "$XG/snap_init.wasm" "$XG/snap_bad.wasm" "$D/mods/"
cp "$G/cgi_hello.wasm" "$D/mods/" 2>/dev/null
cat >"$D/kiln.yaml" <<YAML
functions:
  snap:
    module: mods/snap_init.wasm
    abi: extism
    export: run
    routes: [/snap]
    env: {SNAP_TAG: one}
    snapshot: true
  fresh:
    module: mods/snap_init.wasm
    abi: extism
    export: run
    routes: [/fresh]
    env: {SNAP_TAG: one}
  bad:
    module: mods/snap_bad.wasm
    abi: extism
    export: run
    routes: [/bad]
    snapshot: true
  badplain:
    module: mods/snap_bad.wasm
    abi: extism
    export: run
    routes: [/badplain]
YAML

if ! serve_start snap --config "$D/kiln.yaml" --threads 2; then
    not_ok "server starts with snapshot functions" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts with snapshot functions"
L=$(cat "$LOG")
check_contains "bad: unavailable, the log says why" "$L" "function 'bad' is unavailable"
check_contains "bad: the log names the refused call" "$L" "extism:host/env.alloc"
check_contains "bad: the log says snapshot" "$L" "snapshot"

req "$URL/fresh"
check_eq "fresh: 200" 200 "$CODE"
FRESH=$BODY
check_contains "fresh: init ran once in its instance" "$FRESH" "inits=1 calls=1"
same=0
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    req "$URL/snap"
    [ "$CODE" = 200 ] && [ "$BODY" = "$FRESH" ] && same=$((same + 1))
done
check_eq "snapshot: 20 requests answer exactly as without snapshot" 20 "$same"
# Concurrent requests on both workers: every one from the pristine image.
cnt=$(for i in $(seq 1 40); do curl -s "$URL/snap" & done; wait)
n_ok=$(printf '%s' "$cnt" | grep -o "inits=1 calls=1" | wc -l)
check_eq "snapshot: 40 parallel requests all see the initialised state" 40 "$n_ok"
expect "bad: 503" 503 "" "$URL/bad"
expect "badplain: the same module without snapshot serves" 200 "ok" "$URL/badplain"
check_contains "snapshot: init saw the configured environment" "$FRESH" "tag=one"
# A configuration change (what init reads) rebuilds the image on reload.
# reload_wait: SIGHUP and wait for one more "reloaded in" line (tier swaps log
# reloads too, so count them).
reload_wait() {
    before=$(grep -c "reloaded in" "$LOG")
    kill -HUP "$SPID"
    i=0
    while [ $i -lt 300 ] && [ "$(grep -c "reloaded in" "$LOG")" -le "$before" ]; do
        sleep 0.1
        i=$((i + 1))
    done
}
sed -i 's/SNAP_TAG: one/SNAP_TAG: two/' "$D/kiln.yaml"
reload_wait
expect "reload: the image is rebuilt with the new configuration" 200 "inits=1 calls=1 tag=two" \
    "$URL/snap"
# A new module (same path, different code) rebuilds it too.
cp "$XG/snap_bad.wasm" "$D/mods/snap_init.wasm"
reload_wait
expect "reload: a changed module's init is run again (now refused: 503)" 503 "" "$URL/snap"
serve_stop

# Images on disk: a restart reuses the image its artifact and configuration
# were given (the log says "loaded", init is not run again), answers alike; a
# configuration change builds a new one. The tag is unique per run, so the
# first start always builds.
TAG=run$$
cp "$XG/snap_init.wasm" "$D/mods/snap_init.wasm"
cat >"$D/disk.yaml" <<YAML
functions:
  snap:
    module: mods/snap_init.wasm
    abi: extism
    export: run
    routes: [/snap]
    env: {SNAP_TAG: $TAG}
    snapshot: true
  plain:
    module: mods/snap_init.wasm
    abi: extism
    export: run
    routes: [/plain]
    snapshot: true
YAML
if serve_start disk1 --config "$D/disk.yaml" --threads 2; then
    check_contains "disk: first start builds and saves the image" "$(cat "$LOG")" \
        "snapshot image built and saved to"
    req "$URL/snap"
    FIRST=$BODY
    check_contains "disk: first start answers from its image" "$FIRST" "inits=1 calls=1 tag=$TAG"
    serve_stop
    IMG=$(sed -n "s/.*function 'snap': snapshot image built and saved to \([^ ]*\.img\).*/\1/p" \
        "$LOG" | tail -n 1)
    check_eq "disk: the image file is in the artifact cache" yes \
        "$([ -f "$IMG" ] && case "$IMG" in "$KILN_HOME"/cache/images/*) echo yes ;; esac)"
else
    not_ok "disk: first start" "$(cat "$LOG")"
fi
if serve_start disk2 --config "$D/disk.yaml" --threads 2; then
    L=$(cat "$LOG")
    check_contains "disk: restart loads the image" "$L" "snapshot image loaded from $IMG"
    check_eq "disk: restart builds no image" 0 "$(grep -c "snapshot image built" "$LOG")"
    req "$URL/snap"
    check_eq "disk: restart answers exactly as before" "$FIRST" "$BODY"
    # kiln inspect shows the images of the module's cached artifact.
    V=${IMG##*-}
    V=${V%.img}
    out=$("$KILN" inspect "$D/mods/snap_init.wasm")
    check_contains "inspect: lists the image with its configuration" "$out" \
        "any compile tier, config $V (custom (wasi): 1 env, 0 preopens"
    check_contains "inspect: an image under the default configuration" "$out" \
        "under the default configuration: yes"
    out=$("$KILN" inspect --json "$D/mods/snap_init.wasm")
    check_contains "inspect --json: images listed" "$out" "\"snapshot_default_config\": true"
    check_contains "inspect --json: with their size" "$out" "\"memory_image_bytes\":"
    out=$("$KILN" inspect "$XG/snap_bad.wasm")
    check_contains "inspect: a module without images says so" "$out" \
        "under the default configuration: no"
    # kiln ls: a deployed snapshot function under the default configuration
    # starts from the image `plain` left in the cache.
    ADMIN=$(sed -n 's/.*admin API on \(http:[^ ]*\).*/\1/p' "$LOG" | head -n 1)
    printf '{"snapshot": true}' >"$D/snap.json"
    KILN_ADMIN=$ADMIN "$KILN" deploy --abi extism --export run --route /dep --settings "$D/snap.json" \
        --wait depsnap "$D/mods/snap_init.wasm" >"$T/deploy.out" 2>&1
    out=$(KILN_ADMIN=$ADMIN "$KILN" ls 2>&1)
    check_contains "ls: a SNAPSHOT column" "$out" "SNAPSHOT"
    check_contains "ls: the deployed function's image was loaded from the cache" \
        "$(printf '%s\n' "$out" | grep '^depsnap')" " loaded "
    out=$(KILN_ADMIN=$ADMIN "$KILN" ls --json 2>&1)
    check_contains "ls --json: snapshot" "$out" '"snapshot":"loaded"'
    serve_stop
else
    not_ok "disk: restart" "$(cat "$LOG")"
fi
# Cleanup: the function's previous image goes when it moves to another one
# (snapshot.md "Cleanup"); the image other functions start from stays.
PLAIN_IMG=$(sed -n "s/.*function 'plain': snapshot image loaded from \([^ ]*\.img\).*/\1/p" \
    "$LOG" | tail -n 1)
sed -i "s/SNAP_TAG: $TAG/SNAP_TAG: ${TAG}x/" "$D/disk.yaml"
if serve_start disk3 --config "$D/disk.yaml" --threads 2; then
    check_contains "disk: changed configuration builds a new image" "$(cat "$LOG")" \
        "snapshot image built and saved to"
    check_contains "cleanup: ... and removes the function's previous one, saying so" \
        "$(cat "$LOG")" "removed the function's previous image $IMG"
    check_eq "cleanup: the previous image file is gone" no "$([ -f "$IMG" ] && echo yes || echo no)"
    check_eq "cleanup: the image other functions use stays" yes \
        "$([ -n "$PLAIN_IMG" ] && [ -f "$PLAIN_IMG" ] && echo yes || echo no)"
    expect "disk: and answers with it" 200 "inits=1 calls=1 tag=${TAG}x" "$URL/snap"
    serve_stop
else
    not_ok "disk: changed configuration" "$(cat "$LOG")"
fi
IMG2=$(sed -n "s/.*function 'snap': snapshot image built and saved to \([^ ]*\.img\).*/\1/p" \
    "$LOG" | tail -n 1)
# A corrupt image is never used: rebuilt (the log says why) and replaced.
printf 'garbage' >>"$IMG2"
if serve_start disk4 --config "$D/disk.yaml" --threads 2; then
    check_contains "disk: a corrupt image is rebuilt, saying why" "$(cat "$LOG")" \
        "replaced: snapshot image $IMG2: checksum mismatch"
    expect "disk: and the answers are right" 200 "inits=1 calls=1 tag=${TAG}x" "$URL/snap"
    serve_stop
else
    not_ok "disk: corrupt image" "$(cat "$LOG")"
fi

# WASI-CGI (snapshot.md §4): a command whose expensive init is its
# `wizer.initialize` export runs it once at deploy; every request's _start
# starts from the image and answers exactly as a fresh instance that runs
# init itself, while scribbling over the initialised table. An init that
# reads the environment (a request's CGI variables) is refused naming the
# call; a plain command is refused at start-up saying what to export.
cp "$G/cgi_snap.wasm" "$G/cgi_snap_env.wasm" "$D/mods/"
cat >"$D/cgi.yaml" <<YAML
functions:
  csnap:
    module: mods/cgi_snap.wasm
    abi: wasi
    snapshot: true
    routes: [/csnap]
  cfresh:
    module: mods/cgi_snap.wasm
    abi: wasi
    routes: [/cfresh]
  cenv:
    module: mods/cgi_snap_env.wasm
    abi: wasi
    snapshot: true
    routes: [/cenv]
  cenvplain:
    module: mods/cgi_snap_env.wasm
    abi: wasi
    routes: [/cenvplain]
YAML
if serve_start cgi --config "$D/cgi.yaml" --threads 2; then
    L=$(cat "$LOG")
    # Built on the first run, loaded from the cache on later ones.
    check_contains "cgi: the image is made at deploy (or loaded from the cache)" "$L" \
        "function 'csnap': snapshot image"
    check_contains "cgi: ... by running wizer.initialize" \
        "$(grep "function 'csnap': snapshot image" "$LOG")" "init wizer.initialize"
    req "$URL/cfresh?q=1"
    check_eq "cgi fresh: 200" 200 "$CODE"
    CFRESH=$BODY
    check_contains "cgi fresh: init ran in the request" "$CFRESH" \
        "primes=148933 sum=2842621886 inits=1 requests=1 query=q=1 init=request"
    same=0
    for i in $(seq 1 20); do
        req "$URL/csnap?q=1"
        [ "$CODE" = 200 ] && [ "$BODY" = "${CFRESH%request}image" ] && same=$((same + 1))
    done
    check_eq "cgi snapshot: 20 requests answer as without snapshot, init done at deploy" 20 "$same"
    cnt=$(for i in $(seq 1 40); do curl -s "$URL/csnap?q=p" & done; wait)
    n_ok=$(printf '%s' "$cnt" |
        grep -c "primes=148933 sum=2842621886 inits=1 requests=1 query=q=p init=image")
    check_eq "cgi snapshot: 40 parallel requests all start from the image" 40 "$n_ok"
    expect "cgi: init reading the environment: unavailable (503)" 503 "" "$URL/cenv"
    check_contains "cgi: ... the log names the refused call" "$L" "environ_sizes_get"
    expect "cgi: the same module without snapshot serves" 200 "seen=" "$URL/cenvplain"
    serve_stop
else
    not_ok "cgi: server starts with a snapshot CGI function" "$(cat "$LOG")"
fi
cat >"$D/cgiplain.yaml" <<YAML
functions:
  c:
    module: mods/cgi_hello.wasm
    abi: wasi
    snapshot: true
    routes: [/c]
YAML
out=$("$KILN" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --config "$D/cgiplain.yaml" 2>&1 &
    p=$!; sleep 8; kill -TERM $p 2>/dev/null; wait $p)
check_contains "cgi: snapshot on a plain command refused, saying why" "$out" \
    "this module is a plain command"
check_contains "cgi: ... and what to export" "$out" "wizer.initialize"
finish
