"""The same bad input gives the same error code from the Python client as from the TypeScript CLI/SDK:
wrong token, unknown key, a view naming a missing tensor, an out-of-range box, a bad TP rank, an
indivisible TP size, a wrong destination size; on every transport."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest

import tensorcast
from conftest import CLI, NODE, REPO_ROOT, Daemon, model_daemon

TRANSPORTS = ("shm", "files", "tcp")
CLI_FLAG = {"shm": ["--shm"], "files": ["--files"], "tcp": []}


@pytest.fixture(scope="module")
def env(tmp_path_factory, request, hf_model):
    d = model_daemon(tmp_path_factory, request, hf_model)
    return d, tmp_path_factory.mktemp("out")


def cli_code(d: Daemon, out_dir, args, token_file=None) -> str:
    cmd = [NODE, str(CLI), "load", *args, "--out", str(out_dir / "o.safetensors"), "--daemon", d.url,
           "--token-file", str(token_file or d.token_file)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, f"the CLI accepted {args}"
    m = re.search(r"error (TC_ERR_[A-Z0-9_]+):", r.stderr)
    assert m, f"no error code in the CLI's stderr: {r.stderr}"
    return m.group(1)


def sdk_code(d: Daemon, script: str) -> str:
    """A node one-liner with the TypeScript SDK; prints the error code it raised."""
    js = (
        "import('./dist/src/index.js').then(async (m) => {"
        f"const c = await m.connect({{ url: {json.dumps(d.url)}, token: {json.dumps(d.token)} }});"
        f"try {{ {script}; console.log('OK'); }} catch (e) {{ console.log(e.code); }} finally {{ await c.close(); }} }})"
    )
    r = subprocess.run([NODE, "-e", js], capture_output=True, text=True, timeout=120, cwd=str(REPO_ROOT))
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else f"node failed: {r.stderr[-500:]}"


def py_code(d: Daemon, token=None, **kw) -> str:
    with tensorcast.Client(d.url, token or d.token) as c:
        with pytest.raises(tensorcast.TensorcastError) as e:
            c.load("model:hf:v1" if "key" not in kw else kw.pop("key"), **kw).release()
        return e.value.code


CASES = {
    "unknown key": (dict(key="model:nope"), ["model:nope"]),
    "view names a missing tensor": (dict(view={"no.such.tensor": None}), ["model:hf:v1", "--view", '{"no.such.tensor": null}']),
    "out-of-range box": (dict(view={"model.norm.weight": [[200, 100]]}), ["model:hf:v1", "--view", '{"model.norm.weight": [[200, 100]]}']),
    "bad tp rank": (dict(tp=(2, 2)), ["model:hf:v1", "--tp-size", "2", "--tp-rank", "2"]),
    "indivisible tp size": (dict(tp=(3, 0)), ["model:hf:v1", "--tp-size", "3", "--tp-rank", "0"]),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", list(CASES))
def test_same_code_as_the_cli(env, case, transport):
    d, out = env
    py_kw, cli_args = CASES[case]
    got = py_code(d, transport=transport, **dict(py_kw))
    want = cli_code(d, out, [*cli_args, *CLI_FLAG[transport]])
    assert got == want, f"{case} over {transport}: python {got}, TypeScript CLI {want}"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_token(env, transport):
    d, out = env
    wrong = out / "wrong-token"
    wrong.write_text("not-the-token-of-this-daemon\n")
    got = py_code(d, token="not-the-token-of-this-daemon", transport=transport)
    want = cli_code(d, out, ["model:hf:v1", *CLI_FLAG[transport]], token_file=wrong)
    assert got == want == "TC_ERR_AUTH"


def test_wrong_destination_size_and_bad_transport_as_the_sdk(env):
    d, _out = env
    got = py_code(d, tp=(2, 0), transport="tcp", into=np.zeros(10, dtype=np.uint8))
    want = sdk_code(d, "await c.load('model:hf:v1', { tp: { size: 2, rank: 0 }, into: new Uint8Array(10) })")
    assert got == want == "TC_ERR_DESTINATION_SIZE"
    got = py_code(d, transport="pigeon")
    want = sdk_code(d, "await c.load('model:hf:v1', { transport: 'pigeon' })")
    assert got == want == "TC_ERR_INVALID_ARGUMENT"
