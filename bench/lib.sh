# bench/lib.sh - shell helpers shared by the bench scripts (sourced; no .sh
# in run lists): set-up (tools, open-file limit, build, output directory),
# servers (start, cleanup), CPU accounting from /proc, wrk runs repeated when
# something else loaded the machine, medians and markdown report lines.
# The caller sets SECTION (its name, for messages) before sourcing, or
# defines its own say() and die(); it sets B (its output directory), and
# PIDS lists the servers to stop at exit (servers_init, start).

# say TEXT / die TEXT : a progress line on stderr / that and exit 1.
say() { echo "bench${SECTION:+ $SECTION}: $*" >&2; }
die() {
    echo "bench${SECTION:+ $SECTION}: $*" >&2
    exit 1
}

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

# need_tools TOOL... : die unless every TOOL is on PATH.
need_tools() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; run 'make deps' (scripts/install-deps.sh)"
    done
}

# nofile_at_least N : raise the soft limit on open files to the hard one;
# false when it is still below N.
nofile_at_least() {
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=65536
    ulimit -n "$hard" 2>/dev/null || true
    [ "$(ulimit -n)" -ge "$1" ]
}

# make_kiln TARGET : make TARGET (relative to BUILD_ARG's make) and set BUILT.
# Another engineer's half-written file can break the build of a shared tree:
# then the last good BUILD_ARG/kiln is measured (and the report says so).
make_kiln() {
    say "building kiln (make -s BUILD=$BUILD_ARG $1)"
    BUILT=yes
    make -s --no-print-directory BUILD="$BUILD_ARG" "$1" >&2 || BUILT=no
    [ -x "$BUILD_ARG/kiln" ] || die "make failed and there is no $BUILD_ARG/kiln"
    [ $BUILT = yes ] || say "warning: make failed; measuring the existing $BUILD_ARG/kiln"
}

# section_dirs NAME : after the build, set BUILD (absolute), B=BUILD/bench/NAME
# (raw/ emptied, home/ made) and KILN, a copy of BUILD/kiln, so a rebuild
# during the run cannot change the binary; artifacts go to a cache of the
# bench's own (B/home), never ~/.kiln.
section_dirs() {
    BUILD=$(cd "$BUILD_ARG" && pwd)
    B=$BUILD/bench/$1
    mkdir -p "$B/raw" "$B/home"
    rm -f "$B"/raw/*
    cp "$BUILD/kiln" "$B/kiln.tmp" && mv "$B/kiln.tmp" "$B/kiln"
    KILN=$B/kiln
    export KILN_HOME="$B/home"
    unset KILN_CC
}

# servers_init : no servers yet; stop the ones start() started (and a
# SAMPLER, when set) at exit or on a signal.
servers_init() {
    PIDS=""
    SAMPLER=""
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
cleanup() {
    [ -z "${SAMPLER:-}" ] || kill "$SAMPLER" 2>/dev/null || true
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $PIDS; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=""
}

# ---- CPU accounting, in clock ticks (USER_HZ) like /proc/PID/stat -----------
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
# machine_ticks prints "busy total" summed over all CPUs (steal counts as busy).
machine_ticks() {
    awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat
}
# proc_ticks PID : user + system ticks of a process.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# cpu_busy : busy share (%) of all CPUs over one second.
cpu_busy() {
    a=$(machine_ticks)
    sleep 1
    b=$(machine_ticks)
    echo "$a $b" | awk '{ t = $4 - $2; printf "%.0f", (t > 0 ? 100 * ($3 - $1) / t : 0) }'
}
# busy_before : set BUSY and LOAD_START, warning when the machine is loaded.
busy_before() {
    BUSY=$(cpu_busy)
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    [ "$BUSY" -le 20 ] || say "warning: the CPUs were ${BUSY}% busy before the run; other load depresses every number"
}

# wrk_ticks RAW WRK-ARG... : run wrk under its own sh, output to RAW; prints
# the CPU ticks wrk used (that sh's cutime + cstime).
wrk_ticks() {
    sh -c 'wrk "$@" >"$0" 2>&1; awk "{ print \$16 + \$17 }" /proc/$$/stat' "$@"
}

# wrk_measure CASE RAW [WRK-ARG...] : one wrk run of DURATION s at URL_CASE
# with WRK_OPTS (and the extra arguments); prints
#   req/s p50us p99us errors requests server-us/req upstream-us/req other-load-%
# The server is PID_CASE (for the upstream itself, PID_upstream); other load
# is the CPU spent by neither it, the upstream nor wrk.
wrk_measure() {
    mcase=$1 raw=$2
    shift 2
    eval "url=\$URL_$mcase"
    eval "spid=\$PID_$mcase"
    upid=$PID_upstream
    m0=$(machine_ticks)
    s0=$(proc_ticks "$spid")
    u0=$(proc_ticks "$upid")
    # shellcheck disable=SC2086 # WRK_OPTS is a word list
    wticks=$(wrk_ticks "$raw" $WRK_OPTS "$@" -d"${DURATION}s" --latency "$url")
    log="$B/*.log"
    [ -e "$B/$mcase.log" ] && log=$B/$mcase.log
    kill -0 "$spid" 2>/dev/null || die "$mcase died during the run (see $log)"
    s1=$(proc_ticks "$spid")
    u1=$(proc_ticks "$upid")
    m1=$(machine_ticks)
    res=$(awk '$1 == "RESULT" { print $2, $3, $4, $5, $6 }' "$raw")
    [ -n "$res" ] || die "wrk gave no result for $mcase (see $raw)"
    same=0
    [ "$spid" = "$upid" ] && same=1
    echo "$res $s0 $s1 $u0 $u1 $m0 $m1 $wticks" | awk -v hz="$HZ" -v same=$same '{
        tick = 1e6 / hz; req = $5 > 0 ? $5 : 1
        srv = $7 - $6; up = same ? 0 : $9 - $8; tot = $13 - $11
        other = ($12 - $10) - srv - up - $14
        if (other < 0) other = 0
        printf "%s %s %s %s %s %.2f %.2f %.1f\n", $1, $2, $3, $4, $5, srv * tick / req,
            (same ? srv : up) * tick / req, (tot > 0 ? 100 * other / tot : 0) }'
}

# run_rounds SAY-AWK : RUNS rounds over CASES, each case measured by the
# caller's `measure CASE RAW` (column 8 of its line: other load %); lines go
# to B/results.txt as "CASE LINE", and SAY-AWK (an awk program over the line)
# says each run. Rounds interleave the cases, so a slow minute on the
# machine hits all of them. A run with more than OTHER_MAX% other load is
# repeated, up to REPEAT_MAX times per bench (counted in `repeats`); the
# discarded output stays in raw/.
run_rounds() {
    : >"$B/results.txt"
    repeats=0
    r=1
    while [ $r -le "$RUNS" ]; do
        for c in $CASES; do
            while :; do
                line=$(measure "$c" "$B/raw/$c.$r.txt")
                say "  run $r $c: $(echo "$line" | awk "$1")"
                echo "$line" | awk -v m="$OTHER_MAX" '{ exit !($8 > m) }' && [ "$repeats" -lt "$REPEAT_MAX" ] || break
                repeats=$((repeats + 1))
                mv "$B/raw/$c.$r.txt" "$B/raw/$c.$r.discarded$repeats.txt"
                say "  run $r $c: more than $OTHER_MAX% other load; repeating it"
                sleep 2
            done
            echo "$c $line" >>"$B/results.txt"
        done
        r=$((r + 1))
    done
}

# ---- report ------------------------------------------------------------------
# agg CASE COLUMN [sum|max] : median (or sum, max) of a B/results.txt column
# over the runs of CASE; "-" without runs.
agg() {
    awk -v id="$1" -v c="$2" '$1 == id { print $c }' "$B/results.txt" | sort -n |
        awk -v mode="${3:-median}" '{ a[NR] = $1; s += $1 }
            END { if (NR == 0) print "-"; else if (mode == "sum") print s; else if (mode == "max") print a[NR];
                  else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
rps() { agg "$1" 2; }
# ms CASE COLUMN : a median in µs as ms, MS_DIGITS decimals (default 2).
ms() { agg "$1" "$2" | awk -v d="${MS_DIGITS:-2}" '{ if ($1 == "-") print "-"; else printf "%.*f", d, $1 / 1000 }'; }
us() { agg "$1" "$2" | awk '{ if ($1 == "-") print "-"; else printf "%.1f", $1 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
fmt_rps() { echo "$1" | awk '{ if ($1 == "-") print "-"; else printf "%.0f", $1 }'; }
# emit TEXT... : a line of the report being written to OUT.
emit() { printf '%s\n' "$*" >>"$OUT"; }
cpu_model() { awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown; }
# other_load COLUMN : "N% median, M% max" of results.txt's other-load column.
other_load() {
    awk -v c="$1" '{ print $c }' "$B/results.txt" | sort -n | awk '{ a[NR] = $1 } END {
        printf "%.0f%% median, %.0f%% max", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[NR] }'
}
# dirty_runs COLUMN : how many runs kept more than OTHER_MAX% other load.
dirty_runs() { awk -v m="$OTHER_MAX" -v c="$1" '$c > m' "$B/results.txt" | wc -l; }
