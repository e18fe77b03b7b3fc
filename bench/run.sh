#!/bin/sh
# bench/run.sh - Kiln's benchmark: builds what it needs under BUILD/bench,
# runs the selected sections and prints one markdown document (also saved as
# BUILD/bench/results.md). Every number is compared with peers measured in
# the same run; docs/internals/bench.md says what each section measures.
#
# Usage: sh bench/run.sh BUILD [instantiate] [cpu] [startup] [compile] [http] [kv] [io] [deploy] [pipeline] [proxywasm] [snapshot] [snapshot_http] [embed] [component]
#        (no section names: all of them). `make bench` runs `sh bench/run.sh build`.
# Environment: BENCH_RUNS (hyperfine runs for cpu, default 5),
#              BENCH_ITER (instantiate iterations, default 20000).
# Not part of the tests: nothing here passes or fails on a number.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
cd "$ROOT"
BUILD=${1:-build}
[ $# -gt 0 ] && shift
SECTIONS=${*:-instantiate cpu startup compile http kv io deploy pipeline proxywasm snapshot snapshot_http embed component}
for s in $SECTIONS; do
    case $s in
    instantiate | cpu | startup | compile | http | kv | io | deploy | pipeline | proxywasm | snapshot | snapshot_http | embed | component) ;;
    *)
        echo "bench/run.sh: unknown section '$s' (instantiate, cpu, startup, compile, http, kv, io, deploy, pipeline, proxywasm, snapshot, snapshot_http, embed, component)" >&2
        exit 2
        ;;
    esac
done
has_section() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }

BUILD=$(mkdir -p "$BUILD" && cd "$BUILD" && pwd)
B=$BUILD/bench
KILN=$BUILD/kiln
RUNS=${BENCH_RUNS:-5}
ITER=${BENCH_ITER:-20000}
CC=${CC:-cc}
# Artifacts go to a cache of the bench's own, never ~/.kiln.
export KILN_HOME="$B/home"
unset KILN_CC
mkdir -p "$B/gen" "$B/wasm" "$B/native" "$B/json" "$KILN_HOME"

say() { echo "bench: $*" >&2; }
die() {
    echo "bench: $*" >&2
    exit 1
}

# ---- tools -------------------------------------------------------------------
for tool in hyperfine node clang gcc awk; do
    command -v $tool >/dev/null 2>&1 || die "'$tool' not found; run 'make deps' (scripts/install-deps.sh)"
done
[ -x "$KILN" ] || die "$KILN not built; run 'make -s all' (or 'make bench')"
[ -f "$BUILD/libkiln.a" ] || die "$BUILD/libkiln.a not built; run 'make -s all'"
# Measure a snapshot: a rebuild of BUILD/kiln during the run (another make)
# must not change the binary between sections, or make it vanish mid-run.
cp "$KILN" "$B/kiln.tmp" && mv "$B/kiln.tmp" "$B/kiln"
KILN=$B/kiln
WASI_CC="clang --target=wasm32-wasi --sysroot=/usr"
NODE="node --no-warnings $ROOT/bench/node-run.mjs"

# The link line comes from the Makefile so the bench links libkiln exactly
# like the kiln executable does.
make_var() {
    make -s --no-print-directory -C "$ROOT" BUILD="$BUILD" \
        --eval="bench-print-var: ; @echo \$($1)" bench-print-var 2>/dev/null
}
LIBS=$(make_var LIBS) || LIBS=""
[ -n "$LIBS" ] || LIBS="-lcrypto -ljansson -lm -lpthread -ldl -lrt"
LDEXPORT=$(make_var LDEXPORT) || LDEXPORT=""
[ -n "$LDEXPORT" ] || LDEXPORT="-Wl,--export-dynamic-symbol=wasm_rt_*"


# ---- build -------------------------------------------------------------------
G=bench/guests
CPU_GUESTS="fib sha256 memwalk nbody"
say "building guests and tools in $B"
for g in hello $CPU_GUESTS; do
    if stale "$B/wasm/$g.wasm" $G/$g.c; then
        $WASI_CC -O2 -o "$B/wasm/$g.wasm" $G/$g.c
    fi
    if stale "$B/native/$g" $G/$g.c; then
        gcc -O2 -o "$B/native/$g" $G/$g.c -lm
    fi
    if stale "$B/native/$g-clang" $G/$g.c; then
        clang -O2 -o "$B/native/$g-clang" $G/$g.c -lm
    fi
done
# Instantiate guests: import nothing, export `noop`, padded with a data blob
# of pseudo-random bytes (so the data segment is real bytes, not BSS).
for spec in 100k:100000 1m:900000; do
    name=${spec%%:*}
    bytes=${spec#*:}
    inc=$B/gen/blob_$name.inc
    if stale "$inc" bench/run.sh; then
        awk -v n="$bytes" 'BEGIN { s = 1; for (i = 0; i < n; i++) {
            s = (s * 75 + 74) % 65537; printf "%d,", s % 256; if (i % 40 == 39) printf "\n" } }' \
            >"$inc"
    fi
    if stale "$B/wasm/noop_$name.wasm" $G/noop.c "$inc"; then
        $WASI_CC -O2 -nostdlib -Wl,--no-entry -Wl,--export=noop -DBLOB_INC="\"$inc\"" \
            -o "$B/wasm/noop_$name.wasm" $G/noop.c
    fi
done
if stale "$B/instantiate" bench/instantiate.c "$BUILD/libkiln.a"; then
    # shellcheck disable=SC2086 # LIBS and LDEXPORT are word lists
    $CC -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Iinclude -Isrc $LDEXPORT \
        -o "$B/instantiate" bench/instantiate.c "$BUILD/libkiln.a" $LIBS
fi

# ---- helpers -----------------------------------------------------------------
OUT=$B/results.md.tmp
: >"$OUT"

# median_ms CSV NAME: hyperfine's median for command NAME, in milliseconds.
median_ms() {
    awk -F, -v n="$2" 'NR > 1 && $1 == n { printf "%.1f", $4 * 1000 }' "$1"
}
# rounds_to_csv FILE: hyperfine CSV rows (one run each, several per command)
# -> one CSV in hyperfine's columns whose median/mean/min/max are over rows.
rounds_to_csv() {
    echo "command,mean,stddev,median,user,system,min,max"
    sort -t, -k1,1 -k2,2g "$1" | awk -F, '
        function flush() { if (n == 0) return
            m = (n % 2) ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
            printf "%s,%.9f,0,%.9f,%.9f,%.9f,%.9f,%.9f\n", cmd, sum / n, m, u / n, sy / n, t[1], t[n] }
        $1 != cmd { flush(); cmd = $1; n = 0; sum = 0; u = 0; sy = 0 }
        { t[++n] = $2; sum += $2; u += $5; sy += $6 }
        END { flush() }'
}
# cpu_ms CSV NAME: mean user + system CPU time of NAME (children included), ms.
cpu_ms() {
    awk -F, -v n="$2" 'NR > 1 && $1 == n { printf "%.1f", ($5 + $6) * 1000 }' "$1"
}
# ratio A B: A/B with two decimals, "-" when either is missing.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-";
        else printf "%.2f", a / b }'
}
# geomean R...: geometric mean of ratios, skipping "-".
geomean() {
    echo "$*" | awk '{ s = 0; c = 0; for (i = 1; i <= NF; i++) if ($i != "-") { s += log($i); c++ }
        if (c) printf "%.2f", exp(s / c); else print "-" }'
}
filesize_kb() { awk -v b="$(wc -c <"$1")" 'BEGIN { printf "%.0f KB", b / 1000 }'; }

# Pre-compile an artifact into the bench cache (the arguments choose -O and
# --cc), so the timed `kiln run` finds it there and never compiles.
precompile() {
    "$KILN" compile "$@" >/dev/null || die "kiln compile $* failed"
}

# The programs a cached `kiln run` executes (strace, when available).
children_of_run() {
    command -v strace >/dev/null 2>&1 || {
        echo "(strace not installed)"
        return
    }
    strace -f -qq -e trace=execve -o "$B/strace.txt" "$KILN" run "$1" >/dev/null 2>&1 || true
    kids=$(awk -F'"' '/execve\(/ && !/= -1/ { print $2 }' "$B/strace.txt" | tail -n +2 |
        awk '{ printf "%s%s", sep, $0; sep = ", " }')
    echo "${kids:-none}"
}

# Run a command once and print its stdout (for the output cross-check).
out_of() { "$@" 2>/dev/null || true; }

# ---- header ------------------------------------------------------------------
cpu_model=$(cpu_model)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || commit="$commit (+ uncommitted changes)"
emit "# Kiln benchmark results"
emit ""
emit "| | |"
emit "|---|---|"
emit "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
emit "| machine | $(nproc) CPUs, $cpu_model, $(uname -sr) |"
emit "| kiln | $("$KILN" --version 2>/dev/null | head -1) at $commit |"
emit "| toolchain | $(gcc --version | head -1); $(clang --version | head -1); wasm2c $(wasm2c --version 2>/dev/null | head -1) |"
emit "| peers | node $(node --version); hyperfine $(hyperfine --version | awk '{ print $2 }') |"
emit "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) |"
emit ""
emit "Medians on a shared machine: compare ratios within one run, not absolute numbers across runs."
emit ""

# ---- instantiate -------------------------------------------------------------
if has_section instantiate; then
    say "section instantiate ($ITER iterations per mode)"
    emit "## Instantiate (in-process, libkiln)"
    emit ""
    emit "Guests: \`bench/guests/noop.c\` padded to ~100 KB and ~1 MB with a data segment; no imports."
    emit ""
    "$B/instantiate" -n "$ITER" -w 2000 -t 0.5 -r 5 \
        "~100 KB=$B/wasm/noop_100k.wasm" "~1 MB=$B/wasm/noop_1m.wasm" >"$B/instantiate.md"
    cat "$B/instantiate.md" >>"$OUT"
    emit ""
fi

# ---- cpu ---------------------------------------------------------------------
if has_section cpu; then
    say "section cpu (hyperfine --warmup 1 --runs $RUNS)"
    emit "## CPU work (whole process, hyperfine, median of $RUNS interleaved rounds after 1 warm-up, ms)"
    emit ""
    emit "The same C source as native \`gcc -O2\` and \`clang -O2\` executables, as wasm32-wasi (clang -O2)"
    emit "run by \`kiln run\` with the artifact pre-compiled at -O2 by gcc (the default) and by clang, and"
    emit "as the same .wasm run by Node.js's WASI. kiln and node include process start (see Startup)"
    emit "and node its compile; kiln's artifact comes from the cache. native clang is the fairer"
    emit "baseline for what wasm costs, since the .wasm is clang's output."
    emit ""
    emit "| workload | native gcc | native clang | kiln | kiln (clang) | node | kiln/native gcc | kiln/native clang | kiln (clang)/native gcc | kiln/node | output |"
    emit "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    geo_g=""
    geo_c=""
    geo_kc=""
    geo_n=""
    for g in $CPU_GUESTS; do
        w=$B/wasm/$g.wasm
        precompile -O2 "$w"
        precompile -O2 --cc clang "$w"
        # Every runtime must print the same output, or its timing is void.
        o_native=$(out_of "$B/native/$g")
        check=same
        for o in "$(out_of "$B/native/$g-clang")" "$(out_of "$KILN" run "$w")" \
            "$(out_of "$KILN" run --cc clang "$w")" "$(out_of node --no-warnings bench/node-run.mjs "$w")"; do
            [ "$o" = "$o_native" ] || check="**differs**"
        done
        say "  $g"
        # Rounds of one run per command, so that a burst of outside load
        # lands on every command alike instead of on whichever hyperfine
        # happened to be timing (it finishes one command before the next).
        csv=$B/json/cpu-$g.csv
        rm -f "$B/json/cpu-$g"*.json
        : >"$csv.rounds"
        r=1
        while [ $r -le "$RUNS" ]; do
            warm=0
            [ $r -eq 1 ] && warm=1
            hyperfine -N --style none --warmup $warm --runs 1 \
                --export-json "$B/json/cpu-$g-$r.json" --export-csv "$csv.$r" \
                -n native "$B/native/$g" \
                -n native-clang "$B/native/$g-clang" \
                -n kiln "$KILN run $w" \
                -n kiln-clang "$KILN run --cc clang $w" \
                -n node "$NODE $w" >/dev/null
            tail -n +2 "$csv.$r" >>"$csv.rounds"
            rm -f "$csv.$r"
            r=$((r + 1))
        done
        rounds_to_csv "$csv.rounds" >"$csv"
        n=$(median_ms "$csv" native)
        nc=$(median_ms "$csv" native-clang)
        k=$(median_ms "$csv" kiln)
        kc=$(median_ms "$csv" kiln-clang)
        nd=$(median_ms "$csv" node)
        r_g=$(ratio "$k" "$n")
        r_c=$(ratio "$k" "$nc")
        r_kc=$(ratio "$kc" "$n")
        r_n=$(ratio "$k" "$nd")
        geo_g="$geo_g $r_g"
        geo_c="$geo_c $r_c"
        geo_kc="$geo_kc $r_kc"
        geo_n="$geo_n $r_n"
        emit "| $g | $n | $nc | $k | $kc | $nd | $r_g× | $r_c× | $r_kc× | $r_n× | $check |"
    done
    geo=$(geomean $geo_g)
    verdict=$(awk -v g="$geo" 'BEGIN { print (g != "-" && g <= 1.3) ? "met" : "**missed**" }')
    emit "| **geometric mean** | | | | | | **$geo×** | $(geomean $geo_c)× | $(geomean $geo_kc)× | $(geomean $geo_n)× | |"
    emit ""
    emit "Target: geometric mean of kiln/native gcc ≤ 1.3×: $verdict."
    emit ""
fi

# ---- startup -----------------------------------------------------------------
if has_section startup; then
    say "section startup"
    hello=$B/wasm/hello.wasm
    precompile -O2 "$hello"
    csv=$B/json/startup.csv
    hyperfine -N --style none --warmup 5 --runs 40 \
        --export-json "$B/json/startup.json" --export-csv "$csv" \
        -n "kiln run hello.wasm" "$KILN run $hello" \
        -n "native hello (gcc -O2)" "$B/native/hello" \
        -n "sh -c 'echo hello'" "sh -c 'echo hello'" \
        -n "node hello.js" "node bench/hello.js" \
        -n "node-run.mjs hello.wasm" "$NODE $hello" \
        -n "kiln --version" "$KILN --version" \
        -n "wasm2c --version" "wasm2c --version" \
        -n "cc --version" "cc --version" >/dev/null
    base=$(median_ms "$csv" "sh -c 'echo hello'")
    emit "## Startup (hyperfine -N --warmup 5 --runs 40, median ms)"
    emit ""
    emit "\`hello.wasm\` ($(filesize_kb "$hello"), wasi-libc \`puts\`), artifact cached."
    emit ""
    emit "| command | median ms | CPU ms (user+sys) | vs \`sh -c 'echo hello'\` | target |"
    emit "|---|---:|---:|---:|---|"
    for name in "kiln run hello.wasm" "native hello (gcc -O2)" "sh -c 'echo hello'" "node hello.js" \
        "node-run.mjs hello.wasm"; do
        m=$(median_ms "$csv" "$name")
        target=-
        [ "$name" = "kiln run hello.wasm" ] &&
            target=$(awk -v m="$m" 'BEGIN { print (m != "" && m <= 3) ? "≤ 3 ms: met" : "≤ 3 ms: **missed**" }')
        emit "| \`$name\` | $m | $(cpu_ms "$csv" "$name") | $(ratio "$m" "$base")× | $target |"
    done
    emit ""
    emit ""
    emit "Components (for reading the kiln row, not peers): a cached \`kiln run\` starts the kiln"
    emit "process with its shared libraries (libcurl, libmicrohttpd, ... : most of the time) and reads"
    emit "the tool identities from the cache (no child process; the tool rows show what a probe would"
    emit "cost). Wall time well above CPU time is time spent waiting, not working."
    emit ""
    emit "| component | median ms |"
    emit "|---|---:|"
    for name in "kiln --version" "wasm2c --version" "cc --version"; do
        emit "| \`$name\` | $(median_ms "$csv" "$name") |"
    done
    emit "| children \`kiln run\` starts (strace -f, execve) | $(children_of_run "$hello") |"
    emit ""
fi

# ---- compile -----------------------------------------------------------------
if has_section compile; then
    say "section compile"
    emit "## Compile time (\`kiln compile --force\`, hyperfine --runs 3, median s)"
    emit ""
    emit "Wall time of the whole command: validate, wasm2c, the C compiler and the link, all out of process."
    emit "hello and sha256 are mostly wasi-libc code; noop_1m is a 900 KB data segment and one function,"
    emit "so its time is wasm2c's and the compiler's handling of a large byte array, not of code."
    emit ""
    emit "| guest | wasm | compiler | -O0 | -O1 | -O2 |"
    emit "|---|---:|---|---:|---:|---:|"
    for g in hello sha256 noop_1m; do
        w=$B/wasm/$g.wasm
        for cc in gcc clang; do
            say "  $g, $cc"
            csv=$B/json/compile-$g-$cc.csv
            hyperfine -N --style none --runs 3 \
                --export-json "$B/json/compile-$g-$cc.json" --export-csv "$csv" \
                -n O0 "$KILN compile --force -O0 --cc $cc $w" \
                -n O1 "$KILN compile --force -O1 --cc $cc $w" \
                -n O2 "$KILN compile --force -O2 --cc $cc $w" >/dev/null
            s0=$(awk -v m="$(median_ms "$csv" O0)" 'BEGIN { printf "%.2f", m / 1000 }')
            s1=$(awk -v m="$(median_ms "$csv" O1)" 'BEGIN { printf "%.2f", m / 1000 }')
            s2=$(awk -v m="$(median_ms "$csv" O2)" 'BEGIN { printf "%.2f", m / 1000 }')
            emit "| $g | $(filesize_kb "$w") | $cc | $s0 | $s1 | $s2 |"
        done
    done
    emit ""
fi

# ---- http, kv, io, deploy, pipeline and proxywasm: their own scripts print their own sections -----------
# run_section NAME SCRIPT TITLE: when NAME is selected, run its own SCRIPT
# and add the markdown it prints, or a "## TITLE: SCRIPT failed" line.
run_section() {
    has_section "$1" || return 0
    say "section $1 ($2)"
    if sh "$2" "$BUILD" >"$B/$1-section.md"; then
        cat "$B/$1-section.md" >>"$OUT"
    else
        emit "## $3: $2 failed (see its output above)"
    fi
    emit ""
}
run_section http bench/http/run.sh "HTTP"
run_section kv bench/kv.sh "KV"
run_section io bench/io/run.sh "I/O-bound function"
run_section deploy bench/deploy/run.sh "Deploy"
run_section pipeline bench/pipeline/run.sh "Route pipelines"
run_section embed bench/embed/run.sh "Embedding"
run_section snapshot bench/snapshot/run.sh "Snapshot"
run_section snapshot_http bench/snapshot_http/run.sh "Snapshot over HTTP"
run_section proxywasm bench/proxywasm/run.sh "Proxy-wasm filters"
run_section component bench/component/run.sh "Components"

emit "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) (on $(nproc) CPUs; above ~0.5 per CPU"
emit "before the run, other work was competing with the bench)."
mv "$OUT" "$B/results.md"
cat "$B/results.md"
say "saved $B/results.md; raw hyperfine data in $B/json/"
