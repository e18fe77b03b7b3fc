#!/bin/sh
# first_request.sh - time from `kiln serve` start (the component in its
# served directory, a cold artifact cache) to the first answer that is not
# 503/refused, with tiers on (the fast tier, tcc) and with --no-tiers (the
# configured compiler, -O2), RUNS times each; prints every run and the
# median (docs/internals/component.md "Tiers").
# Usage: bench/component/first_request.sh BUILD COMPONENT.wasm ROUTE METHOD EXPECT [RUNS] [MODES]
#   e.g. first_request.sh build build/components/cgi_cmd.wasm /c GET 201
#        first_request.sh build build/components/js_handler.wasm /c/k POST 204 3 tiers
# MODES: "tiers no-tiers" (default); "no-tiers-tcc" is --no-tiers --cc tcc.
# KILN_AOT_MAX_MEMORY is passed through (the optimised tier compiled after
# the first answer does not change the number, only how long a stop waits).
BUILD=${1:?build dir}
WASM=${2:?component}
ROUTE=${3:?route}
METHOD=${4:?method}
EXPECT=${5:?expected status}
RUNS=${6:-3}
MODES=${7:-tiers no-tiers}
KILN=$BUILD/kiln
T=$(mktemp -d /tmp/kiln-first-XXXXXX)
trap 'rm -rf "$T"' EXIT
now_ms() { date +%s%3N; }

for mode in $MODES; do
    times=""
    for r in $(seq 1 "$RUNS"); do
        home=$T/home-$mode-$r
        mkdir -p "$home" "$T/dir-$mode-$r"
        cp "$WASM" "$T/dir-$mode-$r/c.wasm"
        case $mode in
        tiers) flags="" ;;
        no-tiers) flags="--no-tiers" ;;
        no-tiers-tcc) flags="--no-tiers --cc tcc" ;;
        esac
        t0=$(now_ms)
        KILN_HOME=$home "$KILN" serve --listen 127.0.0.1:0 --admin-listen off --threads 2 \
            $flags "$T/dir-$mode-$r" >"$T/log" 2>&1 &
        pid=$!
        url=""
        code=""
        while kill -0 "$pid" 2>/dev/null; do
            [ -n "$url" ] || url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$T/log" 2>/dev/null | head -n 1)
            if [ -n "$url" ]; then
                code=$(curl -s -m 60 -o /dev/null -w '%{http_code}' -X "$METHOD" \
                    --data-binary hi "$url$ROUTE")
                [ "$code" = "$EXPECT" ] && break
                grep -q "unavailable (its routes answer 503)" "$T/log" && break
            fi
            sleep 0.05
        done
        t1=$(now_ms)
        if [ "$code" = "$EXPECT" ]; then
            ms=$((t1 - t0))
            times="$times $ms"
            echo "$mode run $r: first $EXPECT after $ms ms"
        else
            echo "$mode run $r: no $EXPECT after $((t1 - t0)) ms: $(grep -m1 'unavailable' "$T/log")"
        fi
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    med=$(printf '%s\n' $times | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}')
    echo "$mode: median ${med:-n/a} ms over$(printf ' %s' $times)"
done
