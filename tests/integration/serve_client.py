#!/usr/bin/env python3
"""serve_client.py - HTTP helpers for the `kiln serve` integration tests (python3
standard library only).

  serve_client.py hammer URL CLIENTS REQUESTS
      CLIENTS concurrent keep-alive clients, each sending REQUESTS GETs to
      URL?id=<client>-<n> and checking every response is exactly
      "id=<client>-<n> count=1 heap=clean" (the cgi_counter guest): any
      cross-talk between requests or instances shows up as a wrong id, a
      count above 1 or a dirty heap. Prints one summary line, exits 1 on any
      mismatch or error.
  serve_client.py slowloris HOST:PORT SECONDS
      Opens a connection, sends half a request header and waits up to
      SECONDS for the server to close it. Prints "closed after N s" or
      "still open".
  serve_client.py raw HOST:PORT
      Sends stdin as-is on one connection and prints what comes back until
      the server closes it (or 5 s of silence).
"""
import http.client
import multiprocessing
import os
import socket
import sys
import threading
import time
import urllib.parse


def _hammer_part(args):
    """Run clients [first, last) as threads; return (checked, errors)."""
    url, first, last, requests = args
    u = urllib.parse.urlsplit(url)
    errors = []
    checked = [0]
    lock = threading.Lock()

    def fetch(conn, rid):
        conn.request("GET", "%s?id=%s" % (u.path, rid))
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")

    def client(c):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        for n in range(requests):
            rid = "%d-%d" % (c, n)
            try:
                status, body = fetch(conn, rid)
            except (OSError, http.client.HTTPException) as e:
                # One retry on a fresh connection (a keep-alive race is not cross-talk).
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                try:
                    status, body = fetch(conn, rid)
                except (OSError, http.client.HTTPException) as e2:
                    with lock:
                        errors.append("%s: %r then %r" % (rid, e, e2))
                    continue
            want = "id=%s count=1 heap=clean\n" % rid
            with lock:
                checked[0] += 1
                if status != 200 or body != want:
                    errors.append("%s: status %d body %r" % (rid, status, body[:200]))
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(first, last)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return checked[0], errors


def hammer(url, clients, requests):
    # Several processes, each with its share of client threads: one Python
    # process cannot keep 100 connections busy.
    procs = max(1, min(clients, os.cpu_count() or 1, 8))
    bounds = [clients * i // procs for i in range(procs + 1)]
    parts = [(url, bounds[i], bounds[i + 1], requests) for i in range(procs)]
    t0 = time.time()
    with multiprocessing.Pool(procs) as pool:
        results = pool.map(_hammer_part, parts)
    secs = time.time() - t0
    total = sum(r[0] for r in results)
    errors = [e for r in results for e in r[1]]
    print("hammer: %d clients x %d requests: %d checked, %d errors, %.1f s, %.0f req/s"
          % (clients, requests, total, len(errors), secs, total / secs if secs else 0))
    for e in errors[:10]:
        print("  " + e)
    return 0 if not errors and total == clients * requests else 1


def slowloris(hostport, seconds):
    host, port = hostport.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    s.settimeout(seconds)
    t0 = time.time()
    try:
        data = s.recv(4096)
        print("closed after %.0f s%s" % (time.time() - t0, "" if not data else " (with data)"))
    except socket.timeout:
        print("still open")
    s.close()
    return 0


def raw(hostport):
    host, port = hostport.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(sys.stdin.buffer.read())
    s.settimeout(5)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    sys.stdout.write(out.decode("latin-1"))
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "hammer":
        return hammer(argv[2], int(argv[3]), int(argv[4]))
    if len(argv) == 4 and argv[1] == "slowloris":
        return slowloris(argv[2], float(argv[3]))
    if len(argv) == 3 and argv[1] == "raw":
        return raw(argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
