#!/usr/bin/python3
"""A fake cloud metadata service for the cartridge-init tests (standard library only).

Listens on 127.0.0.1 on a free port and writes that port to --port-file. Serves:
  EC2 IMDS   PUT /latest/api/token (header X-aws-ec2-metadata-token-ttl-seconds: 1..21600)
             GET /latest/user-data, GET /latest/meta-data/instance-id
             --ec2 off          everything under /latest is 404
             --ec2 v1           IMDSv1 only: the token PUT answers 405, GETs need no token
             --ec2 v2           IMDSv2 optional: tokens are checked when sent
             --ec2 v2-required  GETs without a valid token answer 401
  OpenStack  GET /openstack/latest/user_data, GET /openstack/latest/meta_data.json ({"uuid": ...})
             (--openstack on|off)
             GET /latest/meta-data/public-keys/0/openssh-key (the first --public-key)
  OpenStack  meta_data.json also has "public_keys": {"key0": ..., "key1": ...} (--public-key, repeatable)
Without --user-data the user-data paths answer 404 (a source that has no payload).
--delay S sleeps before every answer (a slow or hung service); --fail-first N answers 500
to the first N requests. Every request is appended to --log as one line:
  METHOD PATH token=<none|valid|invalid> ttl=<header value or ->
"""
import argparse
import http.server
import json
import os
import secrets
import sys
import threading
import time


class State:
    def __init__(self, args):
        self.args = args
        self.tokens = set()
        self.requests = 0
        self.lock = threading.Lock()
        self.user_data = None
        if args.user_data is not None:
            with open(args.user_data, "rb") as f:
                self.user_data = f.read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-metadata/1"

    def log_message(self, fmt, *a):  # no stderr noise
        pass

    def _state(self):
        return self.server.state

    def _record(self):
        st = self._state()
        tok = self.headers.get("X-aws-ec2-metadata-token")
        tok_state = "none" if tok is None else ("valid" if tok in st.tokens else "invalid")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds") or "-"
        with st.lock:
            st.requests += 1
            n = st.requests
            if st.args.log:
                with open(st.args.log, "a") as f:
                    f.write(f"{self.command} {self.path} token={tok_state} ttl={ttl}\n")
        return n, tok_state

    def _send(self, code, body=b"", ctype="text/plain"):
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _pre(self):
        n, tok_state = self._record()
        args = self._state().args
        if args.delay > 0:
            time.sleep(args.delay)
        if n <= args.fail_first:
            self._send(500, b"internal error\n")
            return None
        return tok_state

    def do_PUT(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        tok_state = self._pre()
        if tok_state is None:
            return
        st = self._state()
        if self.path != "/latest/api/token" or st.args.ec2 == "off":
            return self._send(404, b"not found\n")
        if st.args.ec2 == "v1":
            return self._send(405, b"method not allowed\n")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self._send(400, b"missing or invalid ttl\n")
        token = secrets.token_urlsafe(24)
        with st.lock:
            st.tokens.add(token)
        self._send(200, token.encode())

    def do_GET(self):
        tok_state = self._pre()
        if tok_state is None:
            return
        st = self._state()
        a = st.args
        path = self.path
        if path.startswith("/latest/"):
            if a.ec2 == "off":
                return self._send(404, b"not found\n")
            if a.ec2 in ("v2", "v2-required") and tok_state == "invalid":
                return self._send(401, b"invalid token\n")
            if a.ec2 == "v2-required" and tok_state != "valid":
                return self._send(401, b"token required\n")
            if path == "/latest/user-data":
                if st.user_data is None:
                    return self._send(404, b"not found\n")
                return self._send(200, st.user_data, "application/octet-stream")
            if path == "/latest/meta-data/instance-id" and a.instance_id:
                return self._send(200, a.instance_id.encode())
            if path == "/latest/meta-data/public-keys/0/openssh-key" and a.public_key:
                return self._send(200, (a.public_key[0] + "\n").encode())
            return self._send(404, b"not found\n")
        if path.startswith("/openstack/") and a.openstack == "on":
            if path == "/openstack/latest/user_data":
                if st.user_data is None:
                    return self._send(404, b"not found\n")
                return self._send(200, st.user_data, "application/octet-stream")
            if path == "/openstack/latest/meta_data.json":
                md = {"name": "test-instance", "availability_zone": "nova"}
                if a.instance_id:
                    md["uuid"] = a.instance_id
                if a.public_key:
                    md["public_keys"] = {f"key{i}": k + "\n" for i, k in enumerate(a.public_key)}
                return self._send(200, json.dumps(md).encode(), "application/json")
        return self._send(404, b"not found\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--user-data")
    p.add_argument("--ec2", choices=["off", "v1", "v2", "v2-required"], default="off")
    p.add_argument("--openstack", choices=["off", "on"], default="off")
    p.add_argument("--instance-id", default="")
    p.add_argument("--public-key", action="append", default=[])
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--log")
    args = p.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
