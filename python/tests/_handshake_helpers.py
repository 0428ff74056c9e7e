"""Shared pieces of the handshake tests: a rank's metadata, the TypeScript peer, a counting slow relay."""

from __future__ import annotations

import http.client
import http.server
import json
import subprocess
import threading
import time
from typing import Any, Dict, List

from conftest import NODE, REPO_ROOT

from tensorcast.handshake import RankMetadata

TS_PEER = REPO_ROOT / "dist" / "test" / "python" / "ts-peer.js"


def rank_meta(engine: str = "prefill-0", tp_rank: int = 0, tp_size: int = 2, incarnation: str = "inc-1",
              compat: str = "vllm-0.9-llama-bf16", **over: Any) -> RankMetadata:
    fields: Dict[str, Any] = dict(
        engine_id=engine, tp_rank=tp_rank, dp_rank=0, compatibility_hash=compat, incarnation=incarnation,
        agent_metadata=bytes(range(256)) * 3 + b"\x00end", kv_caches_base_addr=[2**64 - 1, 0x7F0000001000, 0],
        block_lens=[65536, 65536, 1], block_strides=[65536, 131072, 7], num_blocks=1024, block_size=16,
        kv_cache_layout="HND", tp_size=tp_size, device_id=tp_rank,
        extra={"attn_backend": "FLASH_ATTN", "layers": [1, 2, 3], "nested": {"x": True}},
    )
    fields.update(over)
    return RankMetadata(**fields)


def as_ts(meta: RankMetadata) -> Dict[str, Any]:
    """The TypeScript RankMetadata as ts_peer.mjs takes it (camelCase; bytes hex; addresses decimal strings)."""
    out = {
        "engineId": meta.engine_id, "tpRank": meta.tp_rank, "dpRank": meta.dp_rank,
        "compatibilityHash": meta.compatibility_hash, "incarnation": meta.incarnation,
        "agentMetadata": meta.agent_metadata.hex(), "kvCachesBaseAddr": [str(a) for a in meta.kv_caches_base_addr],
        "blockLens": meta.block_lens, "blockStrides": meta.block_strides, "numBlocks": meta.num_blocks,
        "blockSize": meta.block_size, "kvCacheLayout": meta.kv_cache_layout, "tpSize": meta.tp_size,
        "deviceId": meta.device_id,
    }
    if meta.extra is not None:
        out["extra"] = meta.extra
    return out


def ts(op: str, **args: Any) -> Dict[str, Any]:
    """Runs one command of the TypeScript peer (the built SDK); its JSON result."""
    if not TS_PEER.exists():
        raise RuntimeError(f"{TS_PEER} is missing: run `npm run build` first")
    cmd = [NODE, str(TS_PEER), json.dumps({"op": op, **args})]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"ts_peer {op} exited {r.returncode}: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


class SlowRelay:
    """An HTTP relay in front of a real handshake listener that holds every rank GET until released and counts
    the requests by path and the most rank GETs of one engine it ever held at once."""

    def __init__(self, target: str) -> None:
        host, port = target.split("//", 1)[1].split(":")
        self.target = (host, int(port.rstrip("/")))
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.paths: List[str] = []
        self.holding: Dict[str, int] = {}
        self.max_holding: Dict[str, int] = {}
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _relay(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else None
                engine = self.path.split("/")[3] if self.path.startswith("/v1/engines/") else ""
                is_rank_get = self.command == "GET" and "/ranks/" in self.path
                with relay.lock:
                    relay.paths.append(f"{self.command} {self.path}")
                    if is_rank_get:
                        relay.holding[engine] = relay.holding.get(engine, 0) + 1
                        relay.max_holding[engine] = max(relay.max_holding.get(engine, 0), relay.holding[engine])
                try:
                    if is_rank_get:
                        relay.gate.wait(30)
                    conn = http.client.HTTPConnection(*relay.target, timeout=30)
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                    conn.close()
                finally:
                    if is_rank_get:
                        with relay.lock:
                            relay.holding[engine] -= 1
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rank_gets(self, engine: str) -> List[str]:
        with self.lock:
            return [p for p in self.paths if p.startswith(f"GET /v1/engines/{engine}/ranks/")]

    def held(self, engine: str) -> int:
        with self.lock:
            return self.holding.get(engine, 0)

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def wait_for(cond, timeout: float = 20.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
