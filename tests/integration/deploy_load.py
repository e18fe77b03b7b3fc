#!/usr/bin/env python3
"""deploy_load.py - load generator for test_deploy.sh: THREADS keep-alive
clients GET URL until the file STOPFILE exists, and check every answer: status
200 and a body matching one of the given regular expressions (one per valid
version). Prints one summary line
    requests=N failed=F bad=B
and up to 10 examples of failures; exits 0 when F and B are 0 and N > 0.
Usage: deploy_load.py URL STOPFILE THREADS REGEX..."""
import http.client
import os
import re
import sys
import threading
import time
import urllib.parse

url, stopfile, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
valid = [re.compile(r, re.S) for r in sys.argv[4:]]
u = urllib.parse.urlsplit(url)
lock = threading.Lock()
stats = {"requests": 0, "failed": 0, "bad": 0}
examples = []


def note(kind, text):
    with lock:
        stats[kind] += 1
        if len(examples) < 10:
            examples.append(f"{kind}: {text}")


def worker():
    conn = None
    while not os.path.exists(stopfile):
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            conn.request("GET", u.path or "/")
            r = conn.getresponse()
            body = r.read().decode("utf-8", "replace")
            with lock:
                stats["requests"] += 1
            if r.status != 200:
                note("failed", f"{r.status} {body[:200]!r}")
            elif not any(v.search(body) for v in valid):
                note("bad", body[:200])
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # a dropped connection is a failed request
            note("failed", repr(e))
            try:
                conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.01)


ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("requests=%d failed=%d bad=%d" % (stats["requests"], stats["failed"], stats["bad"]))
for e in examples:
    print("  " + e)
sys.exit(0 if stats["requests"] > 0 and stats["failed"] == 0 and stats["bad"] == 0 else 1)
