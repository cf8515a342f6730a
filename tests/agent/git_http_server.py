#!/usr/bin/python3
"""A git smart-HTTP server for the agent's tests: `git http-backend` (CGI) behind HTTP
Basic auth, on 127.0.0.1 only, standard library only.

Usage: git_http_server.py --port N --root DIR
The user and password come from GIT_TEST_USER and GIT_TEST_PASSWORD (not argv, so they
stay out of ps). Each request is logged to stderr as `METHOD path -> status` (never the
Authorization header).
"""

import argparse
import base64
import http.server
import os
import subprocess
import sys


def make_handler(root, expected):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("git-http: " + (fmt % args) + "\n")
            sys.stderr.flush()

        def read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return body
                    body += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def reply(self, status, headers, body):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle_git(self):
            body = self.read_body() if self.command == "POST" else b""
            if self.headers.get("Authorization", "") != expected:
                self.reply(401, [("WWW-Authenticate", 'Basic realm="git"')], b"unauthorized\n")
                return
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": root,
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "test",
                "REMOTE_ADDR": "127.0.0.1",
            }
            for header, variable in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                                     ("Git-Protocol", "HTTP_GIT_PROTOCOL")):
                if self.headers.get(header):
                    env[variable] = self.headers[header]
            result = subprocess.run(["git", "http-backend"], input=body, env=env,
                                    capture_output=True, check=False)
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = result.stdout.partition(b"\n\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name.strip(), value.strip()))
            self.reply(status, headers, payload)

        do_GET = handle_git
        do_POST = handle_git

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    credentials = os.environ["GIT_TEST_USER"] + ":" + os.environ["GIT_TEST_PASSWORD"]
    expected = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.root, expected))
    sys.stderr.write("git-http: listening on 127.0.0.1:%d\n" % args.port)
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
