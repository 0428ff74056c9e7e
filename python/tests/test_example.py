"""The README's Python example (python/examples/load_rank.py) runs as a user runs it: a daemon found through
TENSORCAST_DAEMON / TENSORCAST_TOKEN, a model imported with the CLI, every transport, iter_weights, an error code."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO_ROOT


def test_readme_example(make_daemon, hf_model):
    d = make_daemon()
    d.import_model(hf_model, "model:example:v1")
    env = {**os.environ, "TENSORCAST_DAEMON": d.url, "TENSORCAST_TOKEN": d.token, "PYTHONPATH": str(REPO_ROOT / "python")}
    r = subprocess.run([sys.executable, str(REPO_ROOT / "python" / "examples" / "load_rank.py"), "model:example:v1"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["shm", "files", "tcp"]
    assert len({line.split(";")[0].split(None, 1)[1] for line in lines[:3]}) == 1  # same tensors and bytes
    assert "torch.bfloat16" in lines[0]
    assert lines[3].startswith("iter_weights: ") and lines[4] == "TC_ERR_NOT_FOUND"
