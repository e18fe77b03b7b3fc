# bench/lib.sh - shell helpers shared by the bench scripts (sourced; no .sh
# in run lists). The caller defines die() and sets B (its output directory)
# and PIDS (servers to stop at exit).

# stale OUT IN... : true when OUT is missing or older than any IN.
stale() {
    out=$1
    shift
    [ -e "$out" ] || return 0
    for f in "$@"; do
        [ "$f" -nt "$out" ] && return 0
    done
    return 1
}

# start NAME COMMAND... : start a server in the background, logging to
# B/NAME.log; sets PORT from its "listening on http://127.0.0.1:PORT" line.
start() {
    name=$1
    shift
    # Truncate here, not only in the child: the loop below could otherwise
    # read a previous run's log (its port, its "final tier") before the
    # child has opened the file.
    : >"$B/$name.log"
    "$@" >"$B/$name.log" 2>&1 &
    pid=$!
    PIDS="$PIDS $pid"
    eval "PID_$name=$pid"
    i=0
    PORT=""
    while [ -z "$PORT" ]; do
        PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$B/$name.log")
        # kiln listens at once and compiles in tiers: measure its final tier.
        if [ -n "$PORT" ] && grep -q "kiln serve:" "$B/$name.log" &&
            ! grep -q "all functions at their final tier" "$B/$name.log"; then
            PORT=""
        fi
        [ -n "$PORT" ] && break
        kill -0 "$pid" 2>/dev/null || die "$name exited at start-up: $(tail -5 "$B/$name.log")"
        i=$((i + 1))
        # Up to 120 s: kiln listens at once, then compiles; wait for its final tier.
        [ $i -lt 1200 ] || die "$name did not report its port within 120 s (see $B/$name.log)"
        sleep 0.1
    done
}
