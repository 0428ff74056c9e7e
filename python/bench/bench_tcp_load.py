"""TCP load throughput: the Python data plane (``DataPlane.load_into`` into a numpy buffer) against the
TypeScript SDK's ``client.load(..., {transport: 'tcp'})`` of the same view from the same daemon, in one run.

    flock /tmp/tensorcast-bench.lock python python/bench/bench_tcp_load.py [--mib 256] [--rounds 3] [--connections 4]

Writes a synthetic f32 safetensors model of twice ``--mib`` MiB, imports it into a fresh daemon (the built
CLI), and loads a view of the top half of every tensor's rows (``--mib`` MiB): one warm-up load each (the
daemon materializes the replica), then ``--rounds`` timed loads each, alternating. Prints GB/s of each
(best and median) and the ratio Python / TS. Not a test: no timed assertions anywhere.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import NODE, REPO_ROOT, Daemon  # noqa: E402

import tensorcast  # noqa: E402


def write_model(folder: Path, total_mib: int) -> dict:
    """A safetensors file of 8 f32 tensors [rows, 4096]; returns the view of each tensor's top half."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = total_mib * (1 << 20) // 8 // (4096 * 4)
    header, offset = {}, 0
    for i in range(8):
        n = rows * 4096 * 4
        header[f"layer{i}.weight"] = {"dtype": "F32", "shape": [rows, 4096], "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(0)
    with open(folder / "model.safetensors", "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for _ in range(8):
            f.write(rng.integers(0, 1 << 32, rows * 4096, dtype=np.uint32).tobytes())
    return {name: [[0, rows // 2], None] for name in header}


TS_SCRIPT = """
const [url, token, key, viewJson, rounds, connections] = process.argv.slice(1);
const { connect } = await import(%s);
const c = await connect({ url, token, connections: Number(connections) });
const view = JSON.parse(viewJson);
const out = [];
let into;
for (let i = 0; i < Number(rounds); i++) {
  const r = await c.load(key, { view, transport: 'tcp', ...(into ? { into } : {}) });
  into = r.buffer;
  const { timesMs, bytesDelivered, connections: used } = r.stats;
  out.push({ seconds: timesMs.transfer / 1000, bytes: bytesDelivered, connections: used });
}
console.log(JSON.stringify(out));
await c.close();
"""


def ts_loads(d: Daemon, key: str, view: dict, rounds: int, connections: int) -> list:
    script = TS_SCRIPT % json.dumps(str(REPO_ROOT / "dist" / "src" / "index.js"))
    r = subprocess.run(
        [
            NODE,
            "--input-type=module",
            "-e",
            script,
            d.url,
            d.token,
            key,
            json.dumps(view),
            str(rounds),
            str(connections),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--profile", action="store_true", help="cProfile one Python load and print the top entries")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tc-bench-"))
    view = write_model(root / "models" / "synth", 2 * args.mib)
    d = Daemon(root / "data", ["--import-root", str(root / "models")])
    try:
        d.import_model(root / "models" / "synth", "model:bench:v1")
        client = tensorcast.Client(d.url, token=d.token, connections=args.connections)
        plan = client.plan("model:bench:v1", view=view)
        buf = np.empty(plan.total_bytes, np.uint8)
        dp = client.dataplane

        def py_load() -> float:
            t = time.perf_counter()
            st = dp.load_into(plan.artifact_id, plan.view, plan.view_id, buf)
            assert st["bytes"] == plan.total_bytes
            return time.perf_counter() - t

        py_load()  # warm-up: the daemon materializes the view
        ts_loads(d, "model:bench:v1", view, 1, args.connections)
        py, ts = [], []
        for _ in range(args.rounds):
            py.append(py_load())
            ts.extend(r["seconds"] for r in ts_loads(d, "model:bench:v1", view, 2, args.connections)[1:])
        gb = plan.total_bytes / 1e9
        py_rate = [gb / s for s in py]
        ts_rate = [gb / s for s in ts]
        print(f"view: {plan.total_bytes / (1 << 20):.0f} MiB, {args.connections} connections, {args.rounds} rounds")
        print(f"python: best {max(py_rate):.2f} GB/s, median {statistics.median(py_rate):.2f} GB/s")
        print(f"ts sdk: best {max(ts_rate):.2f} GB/s, median {statistics.median(ts_rate):.2f} GB/s")
        print(f"ratio python/ts (median): {statistics.median(py_rate) / statistics.median(ts_rate):.2f}")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            py_load()
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(15)
        client.close()
    finally:
        d.kill()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
