"""A daemon stopped (SIGSTOP) or killed (-9) in the middle of a load or an iteration, on every transport:
the call ends with TC_ERR_TIMEOUT (the client's ``timeout`` or the call's) or TC_ERR_UNAVAILABLE, never
hangs, never returns half-filled arrays as a success."""

from __future__ import annotations

import os
import signal
import threading

import pytest

import tensorcast
from conftest import Daemon

KEY = "model:hf:v1"


@pytest.fixture
def daemon(tmp_path, hf_model):
    from conftest import MODELS_ROOT

    d = Daemon(tmp_path / "d", ["--import-root", str(MODELS_ROOT)])
    d.import_model(hf_model, KEY)
    yield d
    try:
        os.kill(d.proc.pid, signal.SIGCONT)
    except OSError:
        pass
    d.kill()


def run_bounded(fn):
    """Runs ``fn`` in a thread; returns (finished, error). A hang shows as finished == False."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(90)
    return not t.is_alive(), box.get("error"), box.get("value")


@pytest.mark.parametrize("transport", ["tcp", "shm", "files"])
def test_stopped_daemon_and_the_clients_timeout(daemon, transport):
    client = tensorcast.Client(daemon.url, token=daemon.token, timeout=2)
    try:
        client.load(KEY, tp=(2, 0), transport="tcp").release()  # pooled connections, info cached
        it = client.iter_weights(KEY, tp=(2, 1), transport="tcp", as_torch=False, max_in_flight_bytes=1 << 12)
        os.kill(daemon.proc.pid, signal.SIGSTOP)
        finished, err, _ = run_bounded(lambda: list(it))
        assert finished, "iter_weights hung on a stopped daemon past the client's timeout"
        assert isinstance(err, tensorcast.TensorcastError) and err.code == "TC_ERR_TIMEOUT", err
        finished, err, _ = run_bounded(lambda: client.load(KEY, tp=(2, 1), transport=transport))
        assert finished, f"a {transport} load hung on a stopped daemon"
        assert isinstance(err, tensorcast.TensorcastError) and err.code == "TC_ERR_TIMEOUT", err
        finished, err, _ = run_bounded(lambda: client.load(KEY, tp=(2, 1), transport=transport, timeout=1))
        assert finished and isinstance(err, tensorcast.TensorcastError) and err.code == "TC_ERR_TIMEOUT", err
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
        client.close()


@pytest.mark.parametrize("transport", ["tcp", "shm", "files"])
def test_killed_daemon(daemon, transport):
    client = tensorcast.Client(daemon.url, token=daemon.token, timeout=30)
    try:
        client.load(KEY, tp=(2, 0), transport=transport).release()
        it = client.iter_weights(KEY, tp=(2, 1), transport="tcp", as_torch=False, max_in_flight_bytes=1 << 12)
        next(it)
        daemon.kill()
        finished, err, _ = run_bounded(lambda: list(it))
        assert finished, "iter_weights hung on a dead daemon"
        assert isinstance(err, tensorcast.TensorcastError) and err.code == "TC_ERR_UNAVAILABLE", err
        finished, err, _ = run_bounded(lambda: client.load(KEY, tp=(2, 1), transport=transport))
        assert finished, f"a {transport} load hung on a dead daemon"
        assert isinstance(err, tensorcast.TensorcastError) and err.code == "TC_ERR_UNAVAILABLE", err
    finally:
        client.close()
