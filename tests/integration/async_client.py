#!/usr/bin/env python3
"""async_client.py - many concurrent HTTP/1.1 requests from one process
(asyncio, raw sockets, one connection per request), for the concurrency
tests of `kiln serve` (test_serve_async.sh). Python standard library only.

  async_client.py burst HOST:PORT N PATH EXPECT [N2 PATH2 EXPECT2 ...]
      Sends N GETs of PATH (and N2 of PATH2, ...) all at once; every answer
      must be 200 and contain EXPECT. Prints "ok=K bad=B wall_ms=W" and up to
      three bad answers; exits 1 if any is bad.
  async_client.py hangup HOST:PORT N PATH AFTER_MS
      Opens N connections, sends GET PATH on each, closes them all after
      AFTER_MS without reading. Prints "closed=N".
  async_client.py timed HOST:PORT PATH
      One GET; prints "status=S ms=M body=<first 200 bytes>".
Environment: AC_HEADER="Name: value" adds that header to every request.
"""
import asyncio
import os
import sys
import time

EXTRA = os.environ.get("AC_HEADER", "")


async def get(host, port, path, timeout=60):
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    extra = EXTRA + "\r\n" if EXTRA else ""
    w.write(("GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n"
             % (path, host, extra)).encode())
    await w.drain()
    data = await asyncio.wait_for(r.read(), timeout)
    w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return status, body.decode("utf-8", "replace")


async def burst(host, port, jobs):
    async def one(path, expect):
        try:
            st, body = await get(host, port, path)
        except Exception as e:  # noqa: BLE001 - report every failure
            return "%s: %r" % (path, e)
        if st != 200 or expect not in body:
            return "%s: %d %s" % (path, st, body[:160].strip())
        return None

    t0 = time.monotonic()
    res = await asyncio.gather(*[one(p, e) for (p, e) in jobs])
    wall = (time.monotonic() - t0) * 1000
    bad = [x for x in res if x is not None]
    print("ok=%d bad=%d wall_ms=%.0f %s" % (len(res) - len(bad), len(bad), wall, bad[:3]))
    return 1 if bad else 0


async def hangup(host, port, n, path, after_ms):
    conns = []
    for _ in range(n):
        r, w = await asyncio.open_connection(host, port)
        w.write(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
        await w.drain()
        conns.append(w)
    await asyncio.sleep(after_ms / 1000)
    for w in conns:
        w.close()
    print("closed=%d" % len(conns))
    return 0


async def timed(host, port, path):
    t0 = time.monotonic()
    st, body = await get(host, port, path)
    print("status=%d ms=%.0f body=%s" % (st, (time.monotonic() - t0) * 1000, body[:200].strip()))
    return 0


def main():
    cmd, hp = sys.argv[1], sys.argv[2]
    host, port = hp.rsplit(":", 1)
    port = int(port)
    a = sys.argv[3:]
    if cmd == "burst":
        jobs = []
        for i in range(0, len(a), 3):
            jobs += [(a[i + 1].replace("{i}", str(k)), a[i + 2].replace("{i}", str(k)))
                     for k in range(int(a[i]))]
        return asyncio.run(burst(host, port, jobs))
    if cmd == "hangup":
        return asyncio.run(hangup(host, port, int(a[0]), a[1], int(a[2])))
    if cmd == "timed":
        return asyncio.run(timed(host, port, a[0]))
    print("unknown command", cmd)
    return 2


if __name__ == "__main__":
    sys.exit(main())
