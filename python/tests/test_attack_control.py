"""A control API that answers with malformed bodies (a daemon of another version, a proxy): loads fail with
TC_ERR_PROTOCOL, never a raw KeyError / TypeError / ZeroDivisionError."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import tensorcast

PLAN = {
    "artifactId": "tc1:x",
    "totalBytes": 16,
    "tensors": [{"name": "a", "dtype": "F32", "shape": [2, 2], "offset": 0, "byteLength": 16}],
}


def serve(answers):
    class H(BaseHTTPRequestHandler):
        def _answer(self):
            n = int(self.headers.get("content-length") or 0)
            if n:
                self.rfile.read(n)
            path = self.path.split("?")[0]
            body = next((v for k, v in answers.items() if path.startswith(k)), {"error": {"code": "TC_ERR_NOT_FOUND", "message": path}})
            status = 404 if "error" in body and isinstance(body, dict) else 200
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = _answer

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


@pytest.mark.parametrize(
    "transport,answers",
    [
        ("shm", {"/v1/shm-leases": {}}),
        ("shm", {"/v1/shm-leases": {"leaseId": "l", "path": "FILE16", "bytes": 16, "expiresAt": 0, "checksums": {"algorithm": "crc32c", "chunkBytes": 0, "crcs": []}}}),
        ("shm", {"/v1/shm-leases": {"leaseId": "l", "path": "/dev/null", "bytes": "many"}}),
        ("files", {"/v1/artifacts/tc1%3Ax/placement": {"shards": 5}, "/v1/artifacts/tc1%3Ax": {}}),
        ("files", {"/v1/artifacts/tc1%3Ax/placement": {"dir": "/", "shards": [], "tensors": [["a", 0, 0]]}, "/v1/artifacts/tc1%3Ax": {"index": {"tensors": []}}}),
        ("tcp", {"/v1/info": {"daemonId": "x"}}),
    ],
)
def test_malformed_control_answers(tmp_path, transport, answers):
    shm = tmp_path / "shm"
    shm.mkdir()
    (shm / "f16").write_bytes(bytes(16))
    answers = json.loads(json.dumps(answers).replace("FILE16", str(shm / "f16")))
    srv = serve({**answers, "/v1/plans": PLAN, "/v1/info": answers.get("/v1/info", {"daemonId": "x", "dataAddress": "127.0.0.1:1", "shmDir": str(shm)})})
    try:
        with tensorcast.Client(f"http://127.0.0.1:{srv.server_address[1]}", token="t", timeout=10) as c:
            with pytest.raises(tensorcast.TensorcastError) as e:
                c.load("model:x", transport=transport)
            assert e.value.code == "TC_ERR_PROTOCOL", e.value
    finally:
        srv.shutdown()
        srv.server_close()
