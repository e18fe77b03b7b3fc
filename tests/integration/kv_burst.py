#!/usr/bin/env python3
"""kv_burst.py - the write burst of the key-value durability test (python3
standard library only).

  kv_burst.py URL ACKFILE CLIENTS

CLIENTS threads, each on a keep-alive connection, send GET URL&key=b<c>-<n>&
val=v<c>-<n> (the kv_ops guest with op=set) for n = 0, 1, ... until the
server goes away. A write counts as acknowledged only when the answer is
HTTP 200 (the guest got rc=0 from kv_set); each acknowledged key is appended
to ACKFILE and flushed at once, so the file lists every key the server
confirmed before it died. Runs until every client has seen the connection
fail (the test kills the server with SIGKILL), or 60 s.
"""
import http.client
import sys
import threading
import time
import urllib.parse


def client(url, cid, out, lock, stop_at):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    n = 0
    while time.time() < stop_at:
        key = "b%d-%d" % (cid, n)
        try:
            conn.request("GET", "%s?%s&key=%s&val=v%s" % (u.path, u.query, key, key))
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            return
        if resp.status == 200:
            with lock:
                out.write(key + "\n")
                out.flush()
        n += 1


def main():
    url, ackfile, clients = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lock = threading.Lock()
    stop_at = time.time() + 60
    with open(ackfile, "w") as out:
        threads = [threading.Thread(target=client, args=(url, c, out, lock, stop_at))
                   for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


if __name__ == "__main__":
    main()
