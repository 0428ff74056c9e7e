"""pytest fixtures: real daemon processes (the built CLI, ``node dist/src/cli/main.js serve``) on free
ports with their own data directories, models written by transformers' ``save_pretrained``, and the
skip-or-fail rule of the whole suite: a missing dependency skips loudly, and fails instead under
``TENSORCAST_REQUIRE_SERVICES=1`` (set by ``.ci/run``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = REPO_ROOT / "dist" / "src" / "cli" / "main.js"
FIXTURES = REPO_ROOT / "test" / "fixtures"
NODE = os.environ.get("TENSORCAST_NODE") or shutil.which("node") or "node"
sys.path.insert(0, str(REPO_ROOT / "python"))


def services_required() -> bool:
    return os.environ.get("TENSORCAST_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skips the calling test with ``reason``, or fails it under ``TENSORCAST_REQUIRE_SERVICES=1``."""
    if services_required():
        pytest.fail(f"{reason} [TENSORCAST_REQUIRE_SERVICES=1 turns this skip into a failure]", pytrace=False)
    pytest.skip(reason)


def require_module(name: str):
    """Imports ``name`` or skips/fails the test loudly."""
    try:
        return __import__(name)
    except ImportError:
        skip_or_fail(f"needs the python module {name!r} ({sys.executable} cannot import it; pip install {name})")


class Daemon:
    """A ``tensorcast serve`` process for a test."""

    def __init__(self, data_dir: Path, extra_args: Sequence[str] = (), env: Optional[Dict[str, str]] = None) -> None:
        if not CLI.exists():
            skip_or_fail(f"the CLI is not built ({CLI} is missing): run `npm run build` first")
        self.data_dir = data_dir
        args = [NODE, str(CLI), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0",
                "--log-level", "warn", *extra_args]
        full_env = {**os.environ, "TENSORCAST_TOKEN": "", "TENSORCAST_TOKEN_FILE": "", "TENSORCAST_DAEMON": "",
                    "TENSORCAST_SHM_RESERVE": "16MiB", **(env or {})}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, text=True)
        self._stderr: List[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        line = self._ready_line(30.0)
        m = re.match(r"tensorcast ready (\S+) data (\S+) daemon (\S+) token-file (\S+)(?: handshake (\S+))?", line)
        if m is None:
            self.kill()
            raise RuntimeError(f"unexpected ready line: {line!r}")
        self.url, self.data_address, self.daemon_id = m.group(1), m.group(2), m.group(3)
        self.handshake_url = m.group(5)
        i = list(extra_args).index("--token-file") if "--token-file" in extra_args else -1
        self.token_file = Path(extra_args[i + 1]) if i >= 0 else data_dir / "token"
        self.token = self.token_file.read_text().strip()
        self.shm_dir = self.info()["shmDir"]

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _ready_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        box: List[str] = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        t.start()
        t.join(timeout)
        if not box or not box[0]:
            self.kill()
            raise RuntimeError(f"daemon did not become ready in {timeout} s: {''.join(self._stderr)[-2000:]}")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        return box[0].strip()

    def stderr(self) -> str:
        return "".join(self._stderr)

    def request(self, method: str, path: str, body=None):
        """A control request with the daemon's token; the parsed JSON answer (raises on HTTP errors)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")

    def info(self):
        return self.request("GET", "/v1/info")

    def cli(self, *args: str, check: bool = True, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        """Runs ``tensorcast ARGS --daemon URL --token-file F`` as a user would."""
        r = subprocess.run([NODE, str(CLI), *args, "--daemon", self.url, "--token-file", str(self.token_file)],
                           capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)
        if check and r.returncode != 0:
            raise RuntimeError(f"tensorcast {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def import_model(self, path: Path, key: str) -> str:
        """Imports a model directory under ``key``; returns its artifact id."""
        r = self.cli("import", str(path), "--key", key, "--json")
        return json.loads(r.stdout)["artifactId"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        shm = getattr(self, "shm_dir", None)
        if shm:
            shutil.rmtree(shm, ignore_errors=True)


@pytest.fixture
def make_daemon(tmp_path_factory):
    """A factory of daemons, all killed (and their data removed) after the test: ``make_daemon(*flags)``."""
    started: List[Daemon] = []

    def make(*extra_args: str, import_root: Optional[Path] = None, data_dir: Optional[Path] = None,
             env: Optional[Dict[str, str]] = None) -> Daemon:
        d = data_dir or tmp_path_factory.mktemp("daemon")
        root = import_root or MODELS_ROOT
        daemon = Daemon(d, ["--import-root", str(root), *extra_args], env)
        started.append(daemon)
        return daemon

    yield make
    for d in started:
        d.kill()


MODELS_ROOT = Path(tempfile.mkdtemp(prefix="tensorcast-pytest-models-"))


@pytest.fixture(scope="session")
def hf_model() -> Path:
    """A tiny bf16 LlamaForCausalLM written by transformers' ``save_pretrained`` (sharded), under the
    import root of every test daemon."""
    require_module("torch")
    require_module("transformers")
    path = MODELS_ROOT / "hf-llama"
    if not path.exists():
        r = subprocess.run([sys.executable, str(FIXTURES / "make_transformers_model.py"), str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"make_transformers_model.py failed: {r.stderr}")
    return path


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory, request):
    """One daemon for a test module (faster than one per test), with the hf model imported as
    ``model:hf:v1`` when the module asks for ``hf_model`` too."""
    daemon = Daemon(tmp_path_factory.mktemp("daemon"), ["--import-root", str(MODELS_ROOT)])
    request.addfinalizer(daemon.kill)
    return daemon


HF_KEY = "model:hf:v1"


def model_daemon(tmp_path_factory, request, hf_model: Path, env: Optional[Dict[str, str]] = None,
                 extra_args: Sequence[str] = ()) -> Daemon:
    """A daemon for a test module with the hf model imported as ``HF_KEY``, killed when the module ends."""
    require_module("torch")
    d = Daemon(tmp_path_factory.mktemp("daemon"), ["--import-root", str(MODELS_ROOT), *extra_args], env)
    request.addfinalizer(d.kill)
    d.import_model(hf_model, HF_KEY)
    return d


def module_client(request, d: Daemon) -> Any:
    """A ``tensorcast.Client`` of ``d``, closed when the module ends."""
    import tensorcast

    client = tensorcast.Client(d.url, d.token)
    request.addfinalizer(client.close)
    return client


@pytest.fixture(scope="module")
def listener(tmp_path_factory):
    """A daemon with the handshake listener on (``.handshake_url``) for a test module."""
    d = Daemon(tmp_path_factory.mktemp("daemon"), ["--import-root", str(MODELS_ROOT), "--handshake-listen", "127.0.0.1:0"])
    yield d
    d.kill()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(MODELS_ROOT, ignore_errors=True)


def wait_until(cond, timeout: float = 10.0, step: float = 0.02, what: str = "condition"):
    """Polls ``cond()`` until it is truthy (returned) or raises AssertionError after ``timeout`` seconds.
    For waiting on another process's state, never for timing assertions."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)
