"""The Python client's load benchmark (``npm run bench -- python`` runs it from bench/python.ts).

One TP rank of a stored model into torch parameters the way an engine loads: every path ends with the
rank's bytes copied once into preallocated torch parameter buffers (``param.copy_(tensor)``, what vLLM's and
SGLang's weight loaders do), so a mapped path that only maps pages without touching them is not counted as
loaded. Measured in one process, warm page cache for all (one warm-up run each), best and median of N:

- ``shm``: ``client.load(key, tp=..., transport="shm", as_torch=True)`` (the daemon's shm file mapped,
  every chunk CRC32C-checked, tensors are views) + copy into the params.
- ``files``: the same with ``transport="files"`` (the artifact's files mapped, strided views) + copy.
- ``tcp``: ``transport="tcp"`` (data plane into a fresh torch buffer) + copy into the params.
- ``shm into`` / ``files into`` / ``tcp into``: ``into=`` a flat torch arena the params are views of (what
  an engine that allocates its rank's parameters in one arena can pass): the mapped paths copy once into it
  (shm: each 4 MiB chunk right after its CRC32C check), tcp receives straight into it.
- baseline ``safe_open``: ``safetensors.safe_open(file, "pt").get_slice(name)[slices]`` for each tensor of the
  rank (slices from the plan's view boxes), on the same stored files (the slice is read into a new tensor),
  + copy into the params: what vLLM's and SGLang's loaders do today.
- baseline ``page cache``: ``os.preadv`` of exactly the rank's byte runs of the same files (one run per row of
  a strided slice) straight into the params.

Every path ends with each byte of the rank written once into its destination (params or arena); none is
credited for pages mapped but never read. bench/python.ts states each path's ratio against ``safe_open`` and
against ``page cache``.

Prints one JSON object: ``{"bytes", "results": {name: {"best", "median"}}}`` (seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import torch
from safetensors import safe_open

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import tensorcast  # noqa: E402


def timed(fn: Callable[[], Any], repeats: int) -> Dict[str, float]:
    fn()  # warm-up (page cache, replicas, connections)
    times: List[float] = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"best": min(times), "median": statistics.median(times)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--tp", type=int, default=4)
    ap.add_argument("--rank", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    tp = (a.tp, a.rank)
    client = tensorcast.Client(a.url, token_file=a.token_file)
    plan = client.plan(a.key, tp=tp)
    params = {t.name: torch.empty(t.shape, dtype=torch.bfloat16) for t in plan.tensors}
    arena = torch.empty(plan.total_bytes, dtype=torch.uint8)

    def ours(transport: str) -> Callable[[], None]:
        def run() -> None:
            with client.load(a.key, tp=tp, transport=transport, as_torch=True) as r:
                for name, t in r.items():
                    params[name].copy_(t)
                del t

        return run

    # An engine that allocates its rank's parameters as views of one arena passes it as into=.
    arena_params = {t.name: arena[t.offset : t.offset + t.byte_length].view(torch.bfloat16).view(t.shape) for t in plan.tensors}

    def ours_into(transport: str) -> Callable[[], None]:
        def run() -> None:
            client.load(a.key, tp=tp, transport=transport, into=arena, as_torch=True).release()

        return run

    # The stored files, as the daemon placed them; the slices of the rank from the plan's view.
    placement = client.http.json("GET", f"/v1/artifacts/{plan.artifact_id}/placement")
    files = {name: os.path.join(placement["dir"], placement["shards"][shard]["file"]) for name, shard, _pos in placement["tensors"]}
    positions = {name: pos for name, _shard, pos in placement["tensors"]}
    detail = client.http.json("GET", f"/v1/artifacts/{plan.artifact_id}")
    shapes = {t[0]: t[2] for t in detail["index"]["tensors"]}
    boxes: Dict[str, List[Tuple[int, int]]] = {}
    for t in plan.tensors:
        spec = (plan.view or {}).get(t.name)
        if spec is None:
            boxes[t.name] = [(0, d) for d in shapes[t.name]]
            continue
        pieces = spec["pieces"] if isinstance(spec, dict) else [spec]
        if len(pieces) != 1 or (isinstance(spec, dict) and spec.get("padDim0")):
            raise SystemExit(f"bench: {t.name} is fused or padded; this bench expects single boxes")
        boxes[t.name] = [(int(r[0]), int(r[1])) if r is not None else (0, shapes[t.name][d]) for d, r in enumerate(pieces[0])]

    by_file: Dict[str, List[str]] = {}
    for t in plan.tensors:
        by_file.setdefault(files[t.name], []).append(t.name)

    def safe_open_run() -> None:
        for path, names in by_file.items():
            with safe_open(path, "pt") as f:
                for name in names:
                    sl = f.get_slice(name)
                    idx = tuple(slice(s, s + n) for s, n in boxes[name])
                    params[name].copy_(sl[idx])

    # Exact byte runs of the rank in the files: (fd path, file offset, length, destination offset in param).
    runs: Dict[str, List[Tuple[int, int, np.ndarray]]] = {}
    for t in plan.tensors:
        shape = shapes[t.name]
        box = boxes[t.name]
        item = 2
        dest = params[t.name].view(torch.uint8).numpy().reshape(-1)
        if len(shape) == 1:
            s, n = box[0]
            runs.setdefault(files[t.name], []).append((positions[t.name] + s * item, n * item, dest))
            continue
        (r0, rn), (c0, cn) = box
        row = shape[1] * item
        if cn == shape[1]:
            runs.setdefault(files[t.name], []).append((positions[t.name] + r0 * row, rn * row, dest))
        else:
            for i in range(rn):
                off = positions[t.name] + (r0 + i) * row + c0 * item
                runs.setdefault(files[t.name], []).append((off, cn * item, dest[i * cn * item : (i + 1) * cn * item]))

    def page_cache_run() -> None:
        for path, rs in runs.items():
            fd = os.open(path, os.O_RDONLY)
            try:
                for off, n, dest in rs:
                    got = os.preadv(fd, [dest], off)
                    if got != n:
                        raise SystemExit(f"bench: short read of {path}")
            finally:
                os.close(fd)

    paths = {
        "shm": ours("shm"),
        "files": ours("files"),
        "tcp": ours("tcp"),
        "shm_into": ours_into("shm"),
        "files_into": ours_into("files"),
        "tcp_into": ours_into("tcp"),
        "safe_open": safe_open_run,
        "page_cache": page_cache_run,
    }
    results: Dict[str, Any] = {}
    for name, fn in paths.items():
        try:
            results[name] = timed(fn, a.repeats)
        except Exception as e:  # noqa: BLE001 - reported in the table, the other paths still run
            results[name] = {"error": f"{type(e).__name__}: {e}"}
    # The paths agree on the bytes (every path's result against the page-cache read).
    page_cache_run()
    ref = {n: p.clone() for n, p in params.items()}
    for name in ("shm", "files", "tcp", "safe_open", "shm_into", "files_into", "tcp_into"):
        if "error" in results[name]:
            continue
        fn = paths[name]
        for p in params.values():
            p.zero_()
        arena.zero_()
        fn()
        got = arena_params if name.endswith("_into") else params
        for n in ref:
            if not torch.equal(got[n].view(torch.int16), ref[n].view(torch.int16)):
                raise SystemExit(f"bench: {n} differs between paths ({name})")
    client.close()
    print(json.dumps({"bytes": plan.total_bytes, "tensors": len(plan.tensors), "results": results}))


if __name__ == "__main__":
    main()
