#!/bin/sh
# test_hostile_guest.sh - hostile guests against a real `kiln serve`:
#  - a guest recurses to every depth near the end of its (small, 64 KiB)
#    stack and then calls kiln.kv_incr on the SQLite store: every request is
#    answered 200 or 500 "call stack exhausted", and the store, the other
#    routes and the same route keep working (before, a fault inside the
#    host function left the writer lock held and the server deadlocked);
#  - a module declaring 4 tables of 10 M elements fails with a clear 500
#    and the server's RSS does not move (it took the server from 424 to
#    999 MB before);
#  - a module with 100,000 tables or 100,000 locals is refused at load.
# Ends with "N passed, N failed".
. "$(dirname "$0")/serve_lib"

GK=$KILN_BUILD/guests_kv
out=$(sh "$ROOT/tests/guests_kv/build.sh" "$GK" 2>&1)
case "$out" in
*" 0 failed") ok "guests build" ;;
*)
    not_ok "guests build" "$out"
    finish
    exit 1
    ;;
esac

D=$T/hostile
mkdir -p "$D"
cp "$GK/kv_deep.wasm" "$GK/kv_counter.wasm" "$D/"
# Four 10M-element tables in 40-odd bytes (and a CGI entry point).
cat >"$D/tables.wat" <<'WAT'
(module
  (table 10000000 funcref) (table 10000000 funcref)
  (table 10000000 funcref) (table 10000000 funcref)
  (memory (export "memory") 1)
  (func (export "_start")))
WAT
wat2wasm "$D/tables.wat" -o "$D/tables.wasm" || not_ok "wat2wasm tables"

cat >"$D/kiln.yaml" <<'YAML'
server: {threads: 2}
kv:
  path: data/kv.db
functions:
  deep:
    module: kv_deep.wasm
    max_stack: 64KiB
    kv: {grants: {shared: rw}}
    routes: [/deep]
  counter:
    module: kv_counter.wasm
    routes: [/counter]
  tables:
    module: tables.wasm
    max_memory: 1MiB
    routes: [/tables]
YAML

if ! serve_start hostile --config "$D/kiln.yaml"; then
    not_ok "server starts" "$(cat "$LOG")"
    finish
    exit 1
fi
ok "server starts"

# --- host calls at the stack edge -------------------------------------------------
# Three clients sweep depths 0..4000 in parallel (the edge of a 64 KiB
# stack is a thousand-odd levels deep), each request checked.
sweep=$(python3 - "$URL" <<'PY'
import sys, threading, urllib.request, urllib.error
url = sys.argv[1]
res = {"ok": 0, "exhausted": 0, "bad": []}
lock = threading.Lock()
def run(start):
    for d in range(start, 4000, 3):
        try:
            with urllib.request.urlopen("%s/deep?depth=%d" % (url, d), timeout=20) as r:
                body = r.read().decode()
                good = r.status == 200 and body.startswith("deep=%d hits=" % d)
                key = "ok" if good else None
        except urllib.error.HTTPError as e:
            body = e.read().decode()
            key = "exhausted" if e.code == 500 and "call stack exhausted" in body else None
        except Exception as e:
            body, key = repr(e), None
        with lock:
            if key:
                res[key] += 1
            else:
                res["bad"].append("%d: %s" % (d, body[:200]))
ts = [threading.Thread(target=run, args=(s,)) for s in (0, 1, 2)]
[t.start() for t in ts]
[t.join() for t in ts]
print("ok=%d exhausted=%d bad=%d %s" % (res["ok"], res["exhausted"], len(res["bad"]), res["bad"][:3]))
PY
)
echo "# $sweep"
case "$sweep" in
*" bad=0 "*) ok "every depth near the stack edge: an answer or a clean trap" ;;
*) not_ok "every depth near the stack edge: an answer or a clean trap" "$sweep" ;;
esac
case "$sweep" in
ok=0\ *) not_ok "shallow requests reach the store" "$sweep" ;;
*" exhausted=0 "*) not_ok "deep requests trap" "$sweep" ;;
*) ok "shallow requests reach the store, deep ones trap" ;;
esac
expect "the store is not locked: same route" 200 "deep=3 hits=" "$URL/deep?depth=3"
expect "the store is not locked: another function" 200 "hits=1" "$URL/counter"
check_contains "the trap is logged with the function and the cause" "$(cat "$LOG")" \
    "call stack exhausted"

# --- tables ----------------------------------------------------------------------------
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SPID/status"; }
before=$(rss)
expect "4 x 10M tables under a 1 MiB limit: 500 naming the table limit" 500 "max_table_elems" \
    "$URL/tables"
expect "again" 500 "out of memory" "$URL/tables"
after=$(rss)
echo "# RSS ${before} -> ${after} KiB"
if [ $((after - before)) -lt 65536 ]; then ok "tables did not grow the server (RSS +$((after - before)) KiB)"
else not_ok "tables did not grow the server" "RSS $before -> $after KiB"; fi
expect "the server still answers" 200 "hits=2" "$URL/counter"

# --- absurd counts are refused at load -----------------------------------------------
python3 - "$D" <<'PY'
import sys
d = sys.argv[1]
def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
hdr = b"\0asm\1\0\0\0"
n = 100000
body = leb(n) + b"\x70\x00\x00" * n
open(d + "/tables100k.wasm", "wb").write(hdr + b"\x04" + leb(len(body)) + body)
code = b"\x01" + leb(n) + b"\x7e" + b"\x0b"
code = b"\x01" + leb(len(code)) + code
mod = hdr + b"\x01\x04\x01\x60\x00\x00" + b"\x03\x02\x01\x00" + b"\x0a" + leb(len(code)) + code
open(d + "/locals100k.wasm", "wb").write(mod)
PY
out=$("$KILN" inspect "$D/tables100k.wasm" 2>&1)
check_contains "100,000 tables: refused, naming the limit" "$out" "table count 100000 is over Kiln's limit"
out=$("$KILN" compile "$D/locals100k.wasm" 2>&1)
check_contains "100,000 locals: refused, naming the limit" "$out" "locals, over Kiln's limit"

finish
