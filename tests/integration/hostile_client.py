#!/usr/bin/env python3
"""hostile_client.py - hostile HTTP clients for test_serve_hostile.sh (python3 standard
library only). Every command prints `key=value` lines for the shell test to check; timings
are reported, never judged here.

  hostile_client.py slowloris HOST:PORT N TRICKLE_S CHECK1_S CHECK2_S
      Opens N connections from 127.0.0.1, each sending a request line and then one header
      line every TRICKLE_S seconds, never finishing the head. Meanwhile a good client bound
      to 127.0.0.2 sends one GET /hello at a time on fresh connections, and a slow uploader
      from 127.0.0.5 sends a request head announcing 100000 body bytes, then 10 of them and
      nothing more. Reports how many trickling connections were open CHECK1_S after the
      start (open1) and CHECK2_S after it (open2), whether the slow upload was closed
      (slow_body_closed), and the good client's ok / failed counts and slowest answer.
  hostile_client.py flood HOST:PORT N
      Opens N connections that send nothing, holds them 2 s, closes them all, then times
      how long until a fresh GET /hello is answered 200 (fresh_after=SECONDS or none).
  hostile_client.py uploads HOST:PORT PID N SIZE SEND
      Opens N uploads (POST /echo, Content-Length SIZE) spread over 127.0.0.3/.4/.6, each
      sending SEND bytes and stalling. Reports how many got a 503 with Retry-After (busy),
      how many got another answer (other), how many are pending; a small GET's status
      while they stall (small), the status of a 96 KiB chunked upload then (chunked); VmRSS of PID before and during (rss_before_kb,
      rss_during_kb); then closes them and reports the status of one complete upload of
      SIZE bytes (after).
  hostile_client.py framing HOST:PORT
      Sends each malformed request (followed by a smuggled GET /smuggled on the same
      connection) and prints `CASE status=N json=0|1 closed=0|1 second=0|1` per case.
"""
import json
import re
import socket
import sys
import threading
import time


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def connect(addr, source=None, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(addr)
    return s


def is_open(s):
    """True while the server has not closed (or reset) the connection."""
    try:
        s.setblocking(False)
        d = s.recv(1, socket.MSG_PEEK)
        return len(d) > 0  # data (an answer) counts as open; b"" is end-of-file
    except BlockingIOError:
        return True
    except OSError:
        return False


def read_response(s, limit=2.0):
    """Read until the server closes or `limit` seconds of silence; return the bytes and
    whether the server closed."""
    s.settimeout(limit)
    out = b""
    closed = False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
    except socket.timeout:
        pass
    except OSError:
        closed = True
    return out, closed


def get(addr, path, source=None, timeout=5):
    s = connect(addr, source, timeout)
    try:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        out, _ = read_response(s, timeout)
    finally:
        s.close()
    return int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else 0


def slowloris(addr, n, trickle, check1, check2):
    socks = []
    for _ in range(n):
        try:
            s = connect(addr, "127.0.0.1", 2)
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n")
            socks.append(s)
        except OSError:
            pass
    slow = connect(addr, "127.0.0.5")
    slow.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n0123456789")
    t0 = time.time()
    stop = threading.Event()
    good = {"ok": 0, "failed": 0, "slowest": 0.0}

    def good_client():
        while not stop.is_set():
            t = time.time()
            try:
                st = get(addr, "/hello", "127.0.0.2", 10)
            except OSError:
                st = 0
            good["slowest"] = max(good["slowest"], time.time() - t)
            good["ok" if st == 200 else "failed"] += 1
            time.sleep(0.1)

    th = threading.Thread(target=good_client)
    th.start()
    res = {}
    i = 0
    while time.time() - t0 < check2:
        time.sleep(trickle)
        i += 1
        for s in socks:
            try:
                s.setblocking(True)
                s.settimeout(0.5)
                s.sendall(b"X-Trickle-%d: x\r\n" % i)
            except OSError:
                pass
        el = time.time() - t0
        if "open1" not in res and el >= check1:
            res["open1"] = sum(1 for s in socks if is_open(s))
    res["open2"] = sum(1 for s in socks if is_open(s))
    res["slow_body_closed"] = int(not is_open(slow))
    stop.set()
    th.join()
    res["connected"] = len(socks)
    res["good_ok"] = good["ok"]
    res["good_failed"] = good["failed"]
    res["good_slowest_ms"] = int(good["slowest"] * 1000)
    for s in socks:
        s.close()
    slow.close()
    return res


def flood(addr, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(addr)
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        socks.append(s)
    time.sleep(2)
    for s in socks:
        s.close()
    t0 = time.time()
    while time.time() - t0 < 15:
        try:
            if get(addr, "/hello", None, 1) == 200:
                return {"flood": n, "fresh_after": "%.2f" % (time.time() - t0)}
        except OSError:
            pass
        time.sleep(0.05)
    return {"flood": n, "fresh_after": "none"}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def uploads(addr, pid, n, size, send):
    before = rss_kb(pid)
    sources = ["127.0.0.3", "127.0.0.4", "127.0.0.6"]
    socks = []
    chunk = b"u" * send
    for i in range(n):
        s = connect(addr, sources[i % len(sources)])
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
        try:
            s.sendall(chunk)
        except OSError:
            pass
        socks.append(s)
    time.sleep(1.0)
    busy = other = pending = 0
    for s in socks:
        s.settimeout(0.2)
        try:
            d = s.recv(4096)
        except socket.timeout:
            pending += 1
            continue
        except OSError:
            other += 1
            continue
        if d.startswith(b"HTTP/1.1 503") and b"Retry-After:" in d and b'"error"' in d:
            busy += 1
        else:
            other += 1
    small = get(addr, "/hello", "127.0.0.2")
    # A chunked body has no length to reserve up front: it is refused when it grows.
    s = connect(addr, "127.0.0.2", 10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" + (b"4000\r\n" + b"c" * 0x4000 + b"\r\n") * 6
              + b"0\r\n\r\n")
    out, _ = read_response(s, 10)
    s.close()
    chunked = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else 0
    during = rss_kb(pid)
    for s in socks:
        s.close()
    time.sleep(1.0)
    s = connect(addr, "127.0.0.2", 10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
              % size + b"v" * size)
    out, _ = read_response(s, 10)
    s.close()
    after = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else 0
    return {"busy": busy, "other": other, "pending": pending, "small": small, "chunked": chunked,
            "rss_before_kb": before, "rss_during_kb": during, "after": after}


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
CASES = [
    ("cl_conflict", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     b"Content-Length: 41\r\n\r\nhello" + SMUGGLED),
    ("cl_duplicate", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
     b"Content-Length: 5\r\n\r\nhello" + SMUGGLED),
    ("cl_and_te", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 41\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    ("te_space_colon", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n"
     b"Content-Length: 5\r\n\r\nhello" + SMUGGLED),
    ("te_gzip", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     b"0\r\n\r\n" + SMUGGLED),
    ("te_identity", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n"
     + SMUGGLED),
    ("te_twice", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED),
    ("te_http10", b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
     + SMUGGLED),
    ("method_nul", b"PO\x00ST /echo HTTP/1.1\r\nHost: t\r\n\r\n" + SMUGGLED),
    ("method_ctl", b"PO\x01ST /echo HTTP/1.1\r\nHost: t\r\n\r\n" + SMUGGLED),
    ("method_nontoken", b"PO(ST /echo HTTP/1.1\r\nHost: t\r\n\r\n" + SMUGGLED),
    ("obs_fold", b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\r\n  folded\r\n\r\n" + SMUGGLED),
    ("obs_fold_te", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\n"
     b"Content-Length: 5\r\n\r\nhello" + SMUGGLED),
    ("header_nul", b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n" + SMUGGLED),
    ("bare_lf", b"GET /echo HTTP/1.1\nHost: t\n\n" + SMUGGLED),
    ("target_space", b"GET /echo /x HTTP/1.1\r\nHost: t\r\n\r\n" + SMUGGLED),
    ("no_host", b"GET /echo HTTP/1.1\r\n\r\n" + SMUGGLED),
]


def framing(addr):
    lines = []
    for name, data in CASES:
        s = connect(addr)
        s.sendall(data)
        out, closed = read_response(s, 2.0)
        s.close()
        status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else 0
        body = out.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in out else b""
        try:
            js = 1 if "error" in json.loads(body.decode("latin-1")) else 0
        except ValueError:
            js = 0
        second = int(len(re.findall(rb"HTTP/1\.[01] [0-9]{3} ", out)) > 1)
        lines.append("%s status=%d json=%d closed=%d second=%d" %
                     (name, status, js, int(closed), second))
    return lines


def main(argv):
    if len(argv) == 7 and argv[1] == "slowloris":
        r = slowloris(hostport(argv[2]), int(argv[3]), float(argv[4]), float(argv[5]),
                      float(argv[6]))
    elif len(argv) == 4 and argv[1] == "flood":
        r = flood(hostport(argv[2]), int(argv[3]))
    elif len(argv) == 7 and argv[1] == "uploads":
        r = uploads(hostport(argv[2]), int(argv[3]), int(argv[4]), int(argv[5]), int(argv[6]))
    elif len(argv) == 3 and argv[1] == "framing":
        print("\n".join(framing(hostport(argv[2]))))
        return 0
    else:
        sys.stderr.write(__doc__)
        return 2
    for k, v in r.items():
        print("%s=%s" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
