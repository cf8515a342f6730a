#!/usr/bin/python3
"""A strict plain-HTTP object store for `build-image --cache-url http://...` tests.

GET, HEAD and PUT of objects under ROOT; anything else is 405. PUT needs a Content-Length
(411 without), writes to a temp file and renames it into place (a reader never sees half an
object), and answers 201. Object names must be plain relative paths (no '..', no '//', no
query): 400 otherwise. Every request is appended to ROOT/../requests.log as
"METHOD PATH STATUS" before the answer is sent, so tests can check the order of uploads. Listens on 127.0.0.1 only;
the port is written to PORT_FILE once the socket is bound.

Usage: http_cache.py ROOT PORT_FILE
"""
import http.server
import os
import re
import sys
import tempfile
import threading

ROOT = os.path.abspath(sys.argv[1])
PORT_FILE = sys.argv[2]
LOG = os.path.join(os.path.dirname(ROOT), "requests.log")
LOG_LOCK = threading.Lock()
NAME = re.compile(r"^/[A-Za-z0-9._~/-]+$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self, status):
        with LOG_LOCK, open(LOG, "a") as f:
            f.write(f"{self.command} {self.path} {status}\n")

    def reply(self, status, body=b"", ctype="text/plain"):
        # Recorded before the client can see the answer (and send its next request).
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def target(self):
        p = self.path
        if not NAME.match(p) or "//" in p or any(s in (".", "..") for s in p.split("/")):
            return None
        return os.path.join(ROOT, p.lstrip("/"))

    def do_GET(self):
        t = self.target()
        if t is None:
            return self.reply(400, b"bad object name\n")
        if not os.path.isfile(t):
            return self.reply(404, b"no such object\n")
        size = os.path.getsize(t)
        self.record(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "GET":
            with open(t, "rb") as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    self.wfile.write(chunk)

    do_HEAD = do_GET

    def do_PUT(self):
        t = self.target()
        if t is None:
            return self.reply(400, b"bad object name\n")
        if "Content-Length" not in self.headers:
            return self.reply(411, b"Content-Length required\n")
        length = int(self.headers["Content-Length"])
        os.makedirs(os.path.dirname(t), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(t), prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as f:
                left = length
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        raise ConnectionError("client went away")
                    f.write(chunk)
                    left -= len(chunk)
            os.rename(tmp, t)
        except Exception:
            os.unlink(tmp)
            raise
        self.reply(201)

    def do_POST(self):
        self.reply(405, b"method not allowed\n")

    do_DELETE = do_PATCH = do_POST


def main():
    os.makedirs(ROOT, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(PORT_FILE + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(PORT_FILE + ".tmp", PORT_FILE)
    server.serve_forever()


if __name__ == "__main__":
    main()
