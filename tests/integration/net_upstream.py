#!/usr/bin/env python3
"""net_upstream.py - the stand-in upstream of the outbound-HTTP tests
(test_net.sh, test_geo.sh): an HTTP/1.1 keep-alive server on 127.0.0.1 that
counts what it serves. Usage: net_upstream.py PORTFILE; it writes its port to
PORTFILE once listening.

  /search?q=X        a geocoder-style JSON answer for X (counted per q)
  /stats             {"hits", "search_hits", "per_q", "connections"}: requests
                     served, /search requests, /search per q, and distinct
                     client ports seen (one per TCP connection); /stats and
                     /reset themselves are not counted
  /reset             zero the counters
  /redirect?to=URL   302 to URL (307 with &code=307)
  /big?n=N           N bytes of 'x'
  /slow?ms=N         answer after N ms
  /echo              method, selected request headers and the body
  /auth?user=U[&ms=N] 200 "welcome" for U = alice, else 403 (proxy-wasm http_call),
                     after N ms if given
  /echoall           JSON {"method", "path" (with the query), "headers" (every
                     one, names lower-cased), "body"}
"""
import http.server
import json
import sys
import threading
import time
import urllib.parse

lock = threading.Lock()
stats = {"hits": 0, "search_hits": 0, "per_q": {}, "ports": set()}


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, the body of every
    # response after the first on a kept-alive connection would wait for
    # the client's delayed ACK (40 ms), which would swamp what is measured.
    disable_nagle_algorithm = True

    def reply(self, code, body, ctype="application/json", extra=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        n = int(self.headers.get("Content-Length", "0") or "0")
        body = self.rfile.read(n) if n else b""
        if u.path not in ("/stats", "/reset"):
            with lock:
                stats["hits"] += 1
                stats["ports"].add(self.client_address[1])
        if u.path == "/search":
            term = q.get("q", [""])[0]
            with lock:
                stats["search_hits"] += 1
                stats["per_q"][term] = stats["per_q"].get(term, 0) + 1
            h = sum(term.encode()) % 1000
            self.reply(200, json.dumps({"q": term, "lat": 45 + h / 1000.0,
                                        "lon": 4 + h / 1000.0, "source": "upstream"}))
        elif u.path == "/stats":
            with lock:
                s = {"hits": stats["hits"], "search_hits": stats["search_hits"],
                     "per_q": stats["per_q"], "connections": len(stats["ports"])}
            self.reply(200, json.dumps(s))
        elif u.path == "/reset":
            with lock:
                stats["hits"] = stats["search_hits"] = 0
                stats["per_q"] = {}
                stats["ports"] = set()
            self.reply(200, "{}")
        elif u.path == "/redirect":
            code = int(q.get("code", ["302"])[0])
            self.reply(code, "", "text/plain", {"Location": q.get("to", ["/"])[0]})
        elif u.path == "/big":
            self.reply(200, "x" * int(q.get("n", ["1000"])[0]), "text/plain")
        elif u.path == "/slow":
            time.sleep(int(q.get("ms", ["1000"])[0]) / 1000.0)
            self.reply(200, "late", "text/plain")
        elif u.path == "/echo":
            lines = ["%s %s" % (self.command, self.path)]
            for k in ("X-Test", "Content-Type", "Authorization", "X-Forwarded-For",
                      "X-Forwarded-Host", "X-Forwarded-Proto", "X-Drop", "Keep-Alive", "Upgrade"):
                if k in self.headers:
                    lines.append("%s: %s" % (k.lower(), self.headers[k]))
            self.reply(200, "\n".join(lines) + "\n" + body.decode("latin-1"), "text/plain",
                       {"X-Upstream": "yes"})
        elif u.path == "/auth":
            # proxy-wasm http_call tests: alice is let in (after ms=N ms, if given)
            if "ms" in q:
                time.sleep(int(q["ms"][0]) / 1000.0)
            ok = q.get("user", [""])[0] == "alice"
            self.reply(200 if ok else 403, "welcome" if ok else "nope", "text/plain")
        elif u.path == "/echoall":
            self.reply(200, json.dumps({"method": self.command, "path": self.path,
                                        "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": body.decode("latin-1")}),
                       "application/json", {"X-Upstream": "yes"})
        else:
            self.reply(404, "not here", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024  # hundreds of concurrent clients (test_serve_async.sh)
    daemon_threads = True


srv = Server(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
