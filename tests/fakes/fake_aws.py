#!/usr/bin/python3
"""A strict fake of the EBS direct APIs and the EC2 Query API calls `build-image register
--to ec2` makes, on loopback, for tests and the benchmark (there is no EC2 emulator on
Debian). Python standard library only.

Strict: every request's SigV4 signature is verified with this file's own implementation
(canonical request, scope, signing key), the clock skew is bounded, blocks are checked
(length, per-block SHA-256 checksum, index inside the volume), CompleteSnapshot's
ChangedBlocksCount and LINEAR aggregate checksum are recomputed, RegisterImage's
parameters are validated. Anything wrong is a 4xx with an AWS-style error, and counted
in /_state["errors"], so a test can assert there were none.

Start lag (EBS's eventual consistency): for S seconds after StartSnapshot the new snapshot
does not exist for anyone but StartSnapshot's own retry (same ClientToken): PutSnapshotBlock
and CompleteSnapshot get 404 ResourceNotFoundException "The snapshot 'snap-..' does not
exist.", DescribeSnapshots does not list it (InvalidSnapshot.NotFound when asked by ID),
RegisterImage and DeleteSnapshot get InvalidSnapshot.NotFound. Each such answer is counted
in /_state["lag_hits"]; none is a strictness error (AWS really answers so).

Usage: fake_aws.py --port-file F [--latency-ms N] [--data-dir D] [--start-lag S]   (credentials:
FAKE_AWS_ACCESS_KEY_ID, FAKE_AWS_SECRET_ACCESS_KEY, optional FAKE_AWS_SESSION_TOKEN in the environment)
Test hooks (unsigned): GET /_state, POST /_control {"faults": [...], "reset": true, "start_lag": S}
  fault: {"method": "PUT", "path": "/blocks/", "after": N, "times": K, "status": 500,
          "code": "InternalError"}  -> the (N+1)th..(N+K)th matching requests fail.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCK = 524288
LOCK = threading.Lock()
STATE = {}


def reset_state():
    STATE.clear()
    STATE.update({
        "snapshots": {},      # id -> {status, volume_size, tags, blocks: {index: b64 digest}, token}
        "images": {},         # id -> {name, state, params, token}
        "requests": 0,
        "requests_by_action": {},
        "block_puts": 0,
        "block_bytes": 0,
        "inflight": 0,
        "max_inflight": 0,
        "errors": [],         # strictness failures (signature, checksum, params)
        "faults": [],
        "faults_fired": 0,
        "lag_hits": 0,        # requests answered "does not exist" because of the start lag
    })


reset_state()

ACCESS_KEY = os.environ.get("FAKE_AWS_ACCESS_KEY_ID", "AKIDFAKE")
SECRET_KEY = os.environ.get("FAKE_AWS_SECRET_ACCESS_KEY", "fake-secret")
SESSION_TOKEN = os.environ.get("FAKE_AWS_SESSION_TOKEN", "")
LATENCY = 0.0
START_LAG = 0.0  # --start-lag / _control start_lag: seconds a new snapshot stays invisible
DATA_DIR = ""  # --data-dir: blocks are also written to DATA_DIR/<snapshot>.raw (content checks)


class Reject(Exception):
    def __init__(self, status, code, message, strict=True):
        super().__init__(message)
        self.status, self.code, self.message, self.strict = status, code, message, strict


def q(s):
    return urllib.parse.quote(s, safe="-_.~")


def canonical_uri(raw_path):
    path = urllib.parse.unquote(raw_path)
    segs = []
    for s in path.split("/"):
        if s in ("", "."):
            continue
        if s == "..":
            if segs:
                segs.pop()
            continue
        segs.append(q(s))
    out = "/" + "/".join(segs)
    if path.endswith("/") and out != "/":
        out += "/"
    return out


def canonical_query(raw_query):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((q(urllib.parse.unquote(k)), q(urllib.parse.unquote(v))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def sign_key(secret, date, region, service):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;\-]+), Signature=([0-9a-f]{64})$")


def verify_sigv4(handler, body, allow_unsigned):
    auth = handler.headers.get("Authorization", "")
    m = AUTH_RE.match(auth)
    if not m:
        raise Reject(403, "IncompleteSignature", "missing or malformed Authorization header")
    key_id, date, region, service, signed, signature = m.groups()
    if key_id != ACCESS_KEY:
        raise Reject(403, "InvalidClientTokenId", "unknown access key")
    amz_date = handler.headers.get("X-Amz-Date", "")
    try:
        t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Reject(403, "IncompleteSignature", "bad X-Amz-Date")
    if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 900:
        raise Reject(403, "RequestExpired", "X-Amz-Date is more than 15 minutes off")
    if amz_date[:8] != date:
        raise Reject(403, "SignatureDoesNotMatch", "credential scope date differs from X-Amz-Date")
    names = signed.split(";")
    for required in ("host", "x-amz-date"):
        if required not in names:
            raise Reject(403, "SignatureDoesNotMatch", f"{required} is not signed")
    if SESSION_TOKEN:
        if handler.headers.get("X-Amz-Security-Token") != SESSION_TOKEN:
            raise Reject(403, "InvalidToken", "missing or wrong session token")
        if "x-amz-security-token" not in names:
            raise Reject(403, "SignatureDoesNotMatch", "session token is not signed")
    lines = []
    for n in names:
        values = handler.headers.get_all(n)
        if values is None:
            raise Reject(403, "SignatureDoesNotMatch", f"signed header {n} is missing")
        lines.append(n + ":" + ",".join(" ".join(v.split()) for v in values))
    payload_header = handler.headers.get("x-amz-content-sha256")
    actual = hashlib.sha256(body).hexdigest()
    if payload_header == "UNSIGNED-PAYLOAD":
        if not allow_unsigned:
            raise Reject(403, "SignatureDoesNotMatch", "UNSIGNED-PAYLOAD is not allowed here")
        payload_hash = payload_header
    elif payload_header is not None:
        if payload_header != actual:
            raise Reject(400, "XAmzContentSHA256Mismatch", "x-amz-content-sha256 does not match the body")
        payload_hash = payload_header
    else:
        payload_hash = actual
    raw_path, _, raw_query = handler.path.partition("?")
    creq = "\n".join([handler.command, canonical_uri(raw_path), canonical_query(raw_query),
                      "\n".join(lines) + "\n", signed, payload_hash])
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    expected = hmac.new(sign_key(SECRET_KEY, date, region, service), sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Reject(403, "SignatureDoesNotMatch", "signature mismatch; canonical request was:\n" + creq)
    return region, service


def new_id(prefix):
    return prefix + "-" + secrets.token_hex(8)


def xml_response(action, inner):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            f"<requestId>{secrets.token_hex(8)}</requestId>{inner}</{action}Response>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-aws"

    def log_message(self, fmt, *args):  # quiet; the state endpoint tells what happened
        pass

    def send(self, status, body, ctype="application/json", headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def reject(self, r, ec2):
        if r.strict:
            with LOCK:
                STATE["errors"].append(f"{self.command} {self.path}: {r.code}: {r.message}")
        if ec2:
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{r.code}</Code>'
                    f"<Message>{r.message}</Message></Error></Errors><RequestID>x</RequestID></Response>")
            self.send(r.status, body, "text/xml")
        else:
            self.send(r.status, json.dumps({"__type": r.code, "message": r.message}), "application/json",
                      {"x-amzn-ErrorType": r.code})

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.partition("?")[0]
        if path == "/_state":
            with LOCK:
                return self.send(200, json.dumps(STATE, default=list))
        if path == "/_control":
            ctl = json.loads(body or b"{}")
            with LOCK:
                if ctl.get("reset"):
                    reset_state()
                if "faults" in ctl:
                    STATE["faults"] = [dict(f, seen=0) for f in ctl["faults"]]
                if "start_lag" in ctl:
                    global START_LAG
                    START_LAG = float(ctl["start_lag"])
            return self.send(200, "{}")
        ec2 = path == "/"
        with LOCK:
            STATE["requests"] += 1
            STATE["inflight"] += 1
            STATE["max_inflight"] = max(STATE["max_inflight"], STATE["inflight"])
        try:
            if LATENCY:
                time.sleep(LATENCY)
            self.maybe_fault()
            region, service = verify_sigv4(self, body, allow_unsigned=(self.command == "PUT" and "/blocks/" in path))
            if ec2:
                if service != "ec2":
                    raise Reject(403, "SignatureDoesNotMatch", f"signed for service {service}, not ec2")
                self.ec2(urllib.parse.parse_qs(body.decode(), keep_blank_values=True))
            else:
                if service != "ebs":
                    raise Reject(403, "SignatureDoesNotMatch", f"signed for service {service}, not ebs")
                self.ebs(path, body)
        except Reject as r:
            self.reject(r, ec2)
        finally:
            with LOCK:
                STATE["inflight"] -= 1

    def maybe_fault(self):
        with LOCK:
            for f in STATE["faults"]:
                if f.get("method", self.command) != self.command or f.get("path", "") not in self.path:
                    continue
                if f.get("action"):
                    continue  # EC2 action faults are applied in ec2(), once the action is known
                f["seen"] += 1
                if f.get("after", 0) < f["seen"] <= f.get("after", 0) + f.get("times", 1):
                    STATE["faults_fired"] += 1
                    raise Reject(f.get("status", 500), f.get("code", "InternalError"), "injected fault", strict=False)

    # ------------------------------------------------------------------ EBS
    def ebs(self, path, body):
        parts = [p for p in path.split("/") if p]
        if self.command == "POST" and parts == ["snapshots"]:
            return self.start_snapshot(json.loads(body or b"{}"))
        if self.command == "PUT" and len(parts) == 4 and parts[0] == "snapshots" and parts[2] == "blocks":
            return self.put_block(parts[1], parts[3], body)
        if self.command == "POST" and len(parts) == 3 and parts[:2] == ["snapshots", "completion"]:
            return self.complete(parts[2])
        raise Reject(404, "ResourceNotFoundException", f"no such EBS operation {self.command} {path}")

    def start_snapshot(self, req):
        size = req.get("VolumeSize")
        if not isinstance(size, int) or not 1 <= size <= 65536:
            raise Reject(400, "ValidationException", "VolumeSize must be an integer 1..65536")
        timeout = req.get("Timeout", 60)
        if not 10 <= timeout <= 4320:
            raise Reject(400, "ValidationException", "Timeout must be 10..4320")
        token = req.get("ClientToken")
        with LOCK:
            for sid, s in STATE["snapshots"].items():
                if token and s["token"] == token:
                    return self.send(201, json.dumps(self.snapshot_json(sid, s)))
            sid = new_id("snap")
            STATE["snapshots"][sid] = {"status": "pending", "volume_size": size, "token": token,
                                       "visible_at": time.monotonic() + START_LAG,
                                       "tags": {t["Key"]: t["Value"] for t in req.get("Tags", [])},
                                       "description": req.get("Description", ""), "blocks": {}}
            s = STATE["snapshots"][sid]
        self.send(201, json.dumps(self.snapshot_json(sid, s)))

    @staticmethod
    def hidden(sid, s):
        """True (and counted) while snapshot `sid` is inside its start lag. Called under LOCK."""
        if s is not None and time.monotonic() < s.get("visible_at", 0):
            STATE["lag_hits"] += 1
            return True
        return False

    def ebs_snapshot(self, sid):
        """The snapshot for an EBS call, or 404 as AWS answers (also during the start lag)."""
        s = STATE["snapshots"].get(sid)
        if s is None:
            raise Reject(404, "ResourceNotFoundException", f"no snapshot {sid}")
        if self.hidden(sid, s):
            raise Reject(404, "ResourceNotFoundException", f"The snapshot '{sid}' does not exist.", strict=False)
        return s

    @staticmethod
    def snapshot_json(sid, s):
        return {"SnapshotId": sid, "BlockSize": BLOCK, "Status": s["status"], "VolumeSize": s["volume_size"],
                "Tags": [{"Key": k, "Value": v} for k, v in s["tags"].items()]}

    def put_block(self, sid, index, body):
        try:
            index = int(index)
        except ValueError:
            raise Reject(400, "ValidationException", "block index is not a number")
        if self.headers.get("x-amz-Data-Length") != str(BLOCK) or len(body) != BLOCK:
            raise Reject(400, "ValidationException", f"block must be {BLOCK} bytes (got {len(body)})")
        if self.headers.get("x-amz-Checksum-Algorithm") != "SHA256":
            raise Reject(400, "ValidationException", "x-amz-Checksum-Algorithm must be SHA256")
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if self.headers.get("x-amz-Checksum") != digest:
            raise Reject(400, "ValidationException", f"checksum mismatch for block {index}")
        if body.count(0) == len(body):
            with LOCK:
                STATE["errors"].append(f"block {index}: an all-zero block was sent (should be skipped)")
        with LOCK:
            s = self.ebs_snapshot(sid)
            if s["status"] != "pending":
                raise Reject(400, "ValidationException", f"snapshot {sid} is {s['status']}")
            if index < 0 or index >= s["volume_size"] * (1 << 30) // BLOCK:
                raise Reject(400, "ValidationException", f"block index {index} outside the volume")
            s["blocks"][index] = digest
            STATE["block_puts"] += 1
            STATE["block_bytes"] += len(body)
        if DATA_DIR:
            fd = os.open(os.path.join(DATA_DIR, sid + ".raw"), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.pwrite(fd, body, index * BLOCK)
            finally:
                os.close(fd)
        self.send(201, json.dumps({"Checksum": digest, "ChecksumAlgorithm": "SHA256"}))

    def complete(self, sid):
        with LOCK:
            s = self.ebs_snapshot(sid)
            if s["status"] != "pending":
                raise Reject(400, "ValidationException", f"snapshot {sid} is {s['status']}")
            count = self.headers.get("x-amz-ChangedBlocksCount")
            if count != str(len(s["blocks"])):
                raise Reject(400, "ValidationException",
                             f"ChangedBlocksCount {count} but {len(s['blocks'])} blocks were written")
            if self.headers.get("x-amz-Checksum-Aggregation-Method") != "LINEAR" or \
               self.headers.get("x-amz-Checksum-Algorithm") != "SHA256":
                raise Reject(400, "ValidationException", "expected SHA256 with LINEAR aggregation")
            agg = b"".join(base64.b64decode(s["blocks"][i]) for i in sorted(s["blocks"]))
            expected = base64.b64encode(hashlib.sha256(agg).digest()).decode()
            if self.headers.get("x-amz-Checksum") != expected:
                s["status"] = "error"
                raise Reject(400, "ValidationException", "LINEAR aggregate checksum mismatch")
            s["status"] = "completed"
        self.send(202, json.dumps({"Status": "completed"}))

    # ------------------------------------------------------------------ EC2
    def ec2(self, params):
        p = {k: v[0] for k, v in params.items()}
        action = p.get("Action", "")
        if p.get("Version") != "2016-11-15":
            raise Reject(400, "InvalidParameterValue", "Version must be 2016-11-15")
        with LOCK:
            STATE["requests_by_action"][action] = STATE["requests_by_action"].get(action, 0) + 1
            for f in STATE["faults"]:
                if f.get("action") == action:
                    f["seen"] += 1
                    if f.get("after", 0) < f["seen"] <= f.get("after", 0) + f.get("times", 1):
                        STATE["faults_fired"] += 1
                        raise Reject(f.get("status", 500), f.get("code", "InternalError"), "injected fault",
                                     strict=False)
        handler = getattr(self, "ec2_" + action, None)
        if handler is None:
            raise Reject(400, "InvalidAction", f"unsupported action {action}")
        self.send(200, xml_response(action, handler(p)), "text/xml")

    @staticmethod
    def filters(p):
        out = {}
        i = 1
        while f"Filter.{i}.Name" in p:
            vals = []
            j = 1
            while f"Filter.{i}.Value.{j}" in p:
                vals.append(p[f"Filter.{i}.Value.{j}"])
                j += 1
            out[p[f"Filter.{i}.Name"]] = vals
            i += 1
        return out

    def ec2_DescribeImages(self, p):
        f = self.filters(p)
        items = ""
        with LOCK:
            for iid, img in STATE["images"].items():
                if "name" in f and img["name"] not in f["name"]:
                    continue
                items += f"<item><imageId>{iid}</imageId><name>{img['name']}</name><imageState>{img['state']}</imageState></item>"
        return f"<imagesSet>{items}</imagesSet>"

    def ec2_DescribeSnapshots(self, p):
        f = self.filters(p)
        ids = [v for k, v in p.items() if k.startswith("SnapshotId.")]
        items = ""
        with LOCK:
            for sid in ids:
                if sid not in STATE["snapshots"] or self.hidden(sid, STATE["snapshots"][sid]):
                    raise Reject(400, "InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.", strict=False)
            for sid, s in STATE["snapshots"].items():
                if ids and sid not in ids:
                    continue
                if self.hidden(sid, s):
                    continue
                ok = True
                for name, vals in f.items():
                    if name == "status":
                        ok = ok and s["status"] in vals
                    elif name.startswith("tag:"):
                        ok = ok and s["tags"].get(name[4:]) in vals
                    else:
                        raise Reject(400, "InvalidParameterValue", f"unsupported filter {name}")
                if ok:
                    items += (f"<item><snapshotId>{sid}</snapshotId><status>{s['status']}</status>"
                              f"<volumeSize>{s['volume_size']}</volumeSize><progress>100%</progress></item>")
        return f"<snapshotSet>{items}</snapshotSet>"

    def ec2_DeleteSnapshot(self, p):
        sid = p.get("SnapshotId", "")
        with LOCK:
            if sid not in STATE["snapshots"] or self.hidden(sid, STATE["snapshots"][sid]):
                raise Reject(400, "InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.", strict=False)
            for img in STATE["images"].values():
                if img["params"].get("BlockDeviceMapping.1.Ebs.SnapshotId") == sid:
                    raise Reject(400, "InvalidSnapshot.InUse", "snapshot is used by an image")
            del STATE["snapshots"][sid]
        return "<return>true</return>"

    def ec2_RegisterImage(self, p):
        required = {"Name", "RootDeviceName", "BlockDeviceMapping.1.DeviceName", "BlockDeviceMapping.1.Ebs.SnapshotId"}
        missing = sorted(required - set(p))
        if missing:
            raise Reject(400, "MissingParameter", "missing " + ", ".join(missing))
        # What AWS itself refuses: a value outside the parameter's set.
        valid = {"EnaSupport": ("true", "false"), "ImdsSupport": ("v2.0",), "SriovNetSupport": ("simple",),
                 "TpmSupport": ("v2.0",)}
        for k, allowed in valid.items():
            if k in p and p[k] not in allowed:
                raise Reject(400, "InvalidParameterValue",
                             f"Value ({p[k]}) for parameter {k} is invalid. Valid values: {', '.join(allowed)}")
        # What a build-image image must be registered with (docs/register.md): ENA (Nitro's
        # only NIC), IMDSv2 only (the image's cartridge-init asks for a token first).
        checks = {"VirtualizationType": "hvm", "EnaSupport": "true", "ImdsSupport": "v2.0", "Architecture": "x86_64"}
        for k, v in checks.items():
            if p.get(k) != v:
                raise Reject(400, "InvalidParameterValue", f"{k} must be {v} (got {p.get(k)})")
        if p.get("BootMode") not in ("legacy-bios", "uefi", "uefi-preferred"):
            raise Reject(400, "InvalidParameterValue", f"Value ({p.get('BootMode')}) for parameter bootMode is invalid.")
        if "TpmSupport" in p and (p["TpmSupport"] != "v2.0" or p["BootMode"] == "legacy-bios"):
            raise Reject(400, "InvalidParameterCombination", "TpmSupport v2.0 needs BootMode uefi or uefi-preferred")
        # UefiData (AWS's variable store blob): base64 of at most 64000 characters, for UEFI
        # boot only. build-image sends none (README: without it EC2 leaves Secure Boot off); one
        # that appears must at least be well formed.
        if "UefiData" in p:
            data = p["UefiData"]
            if p["BootMode"] == "legacy-bios":
                raise Reject(400, "InvalidParameterCombination", "UefiData needs BootMode uefi or uefi-preferred")
            try:
                if not data or len(data) > 64000:
                    raise ValueError("length")
                base64.b64decode(data, validate=True)
            except ValueError:
                raise Reject(400, "InvalidParameterValue", "Value for parameter UefiData is invalid.")
        if p["RootDeviceName"] != p["BlockDeviceMapping.1.DeviceName"]:
            raise Reject(400, "InvalidBlockDeviceMapping", "no mapping for the root device")
        with LOCK:
            token = p.get("ClientToken")
            for iid, img in STATE["images"].items():
                if token and img["token"] == token:
                    return f"<imageId>{iid}</imageId>"
            sid = p["BlockDeviceMapping.1.Ebs.SnapshotId"]
            s = STATE["snapshots"].get(sid)
            if self.hidden(sid, s):
                raise Reject(400, "InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.", strict=False)
            if s is None or s["status"] != "completed":
                raise Reject(400, "InvalidSnapshot.NotFound", "snapshot missing or not completed")
            if int(p.get("BlockDeviceMapping.1.Ebs.VolumeSize", s["volume_size"])) < s["volume_size"]:
                raise Reject(400, "InvalidBlockDeviceMapping", "volume smaller than the snapshot")
            if any(img["name"] == p["Name"] for img in STATE["images"].values()):
                raise Reject(400, "InvalidAMIName.Duplicate", f"AMI name {p['Name']} is already in use", strict=False)
            iid = new_id("ami")
            STATE["images"][iid] = {"name": p["Name"], "state": "available", "params": p, "token": token}
        return f"<imageId>{iid}</imageId>"


def main():
    global LATENCY, DATA_DIR, START_LAG
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--start-lag", type=float, default=0)
    args = ap.parse_args()
    START_LAG = args.start_lag
    LATENCY = args.latency_ms / 1000.0
    DATA_DIR = args.data_dir
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
