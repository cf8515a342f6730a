#!/usr/bin/python3
"""An HTTP forwarding proxy on loopback that damages image uploads on purpose, placed
between `build-image register` (OS_IMAGE_URL) and a real Glance, for the failure tests.
Python standard library only.

  fault_proxy.py --upstream http://127.0.0.1:9292 --port-file F --mode corrupt|abort|stall|pass
                 [--abort-after BYTES]

corrupt: flips one byte of the body of every PUT .../file (Glance stores different bytes,
         so its os_hash_value differs from the client's).
abort:   forwards BYTES of the PUT .../file body, then closes both connections (an upload
         that dies halfway).
stall:   forwards BYTES of the PUT .../file body, then neither reads nor answers, keeping
         the connection open (a server that stops answering).
Everything else is forwarded unchanged.
"""
import argparse
import http.client
import os
import socket
import time
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def forward(self):
        up = urllib.parse.urlsplit(ARGS.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        length = int(self.headers.get("Content-Length") or 0)
        upload = self.command == "PUT" and self.path.endswith("/file")
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding"):
                conn.putheader(k, v)
        conn.putheader("Connection", "close")
        conn.endheaders()
        sent = 0
        first = True
        while sent < length:
            chunk = self.rfile.read(min(65536, length - sent))
            if not chunk:
                break
            if upload and ARGS.mode == "corrupt" and first:
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            first = False
            if upload and ARGS.mode == "abort" and sent + len(chunk) > ARGS.abort_after:
                conn.send(chunk[: max(0, ARGS.abort_after - sent)])
                conn.sock.shutdown(socket.SHUT_RDWR)
                conn.close()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if upload and ARGS.mode == "stall" and sent + len(chunk) > ARGS.abort_after:
                # The server stops answering: no more reads, no response, the connection kept
                # open until the client gives up (it must, on its own timeout).
                conn.close()
                time.sleep(3600)  # the process is stopped at the end of the test
                self.close_connection = True
                return
            conn.send(chunk)
            sent += len(chunk)
        resp = conn.getresponse()
        body = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = forward


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--mode", choices=["pass", "corrupt", "abort", "stall"], default="pass")
    ap.add_argument("--abort-after", type=int, default=8 << 20)
    ARGS = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    with open(ARGS.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
