"""fork() with a live Client (the PyTorch DataLoader's default start method on Linux): the child never uses
the parent's pooled sockets (HTTP keep-alive or data plane), never renews or releases the parent's shm
leases, and its shm loads work (the CRC pool's threads did not survive the fork)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys

import numpy as np
import pytest

import tensorcast
import tensorcast._load.mapped as mapped_module
from conftest import Daemon
from tensorcast._http import HttpClient

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="fork() on Linux only")
KEY = "model:hf:v1"


@pytest.fixture(scope="module")
def env(tmp_path_factory, request, hf_model):
    from conftest import MODELS_ROOT

    d = Daemon(tmp_path_factory.mktemp("daemon"), ["--import-root", str(MODELS_ROOT)], {})
    request.addfinalizer(d.kill)
    d.import_model(hf_model, KEY)
    return d


def lease_alive(d: Daemon, lease_id: str) -> bool:
    http = HttpClient(d.url, d.token)
    try:
        http.request("POST", f"/v1/shm-leases/{lease_id}/renew")
        return True
    except tensorcast.TensorcastError as e:
        if e.code == "TC_ERR_LEASE_NOT_FOUND":
            return False
        raise
    finally:
        http.close()


def _child(client, result, parent_ports, q) -> None:
    try:
        out = {}
        # The parent's result and arrays, inherited: dropping them here must not release the parent's lease.
        del result
        gc.collect()
        info = client.info(refresh=True)
        out["http_port"] = client.http._local.conn.sock.getsockname()[1]
        r = client.load(KEY, tp=(2, 0), transport="tcp")
        out["tcp_sum"] = int(sum(int(a.view(np.uint8).sum()) for a in r.values()))
        out["dp_ports"] = [c._sock.getsockname()[1] for c in client.dataplane._idle if c._sock is not None]
        r2 = client.load(KEY, tp=(2, 0), transport="shm")
        out["shm_sum"] = int(sum(int(a.view(np.uint8).sum()) for a in r2.values()))
        r2.release()
        client.close()
        out["daemon"] = info["daemonId"]
        q.put(out)
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        q.put({"error": repr(e)})


def test_a_forked_child_uses_its_own_connections_and_leaves_the_parents_leases(env, monkeypatch):
    d = env
    # Every shm load checks its chunks on the CRC pool (as large views do), so the child needs a working pool.
    monkeypatch.setattr(mapped_module, "_PARALLEL_CHUNKS", 1)
    client = tensorcast.Client(d.url, token=d.token)
    try:
        r = client.load(KEY, tp=(2, 0), transport="shm")
        lease_id = client._leases.held()[0]
        want = int(sum(int(a.view(np.uint8).sum()) for a in r.values()))
        tcp = client.load(KEY, tp=(2, 0), transport="tcp")  # pooled data-plane connections
        del tcp
        http_port = client.http._local.conn.sock.getsockname()[1]
        dp_ports = [c._sock.getsockname()[1] for c in client.dataplane._idle]
        assert dp_ports
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(client, r, (http_port, dp_ports), q))
        p.start()
        got = q.get(timeout=120)
        p.join(60)
        assert p.exitcode == 0
        assert "error" not in got, got["error"]
        assert got["tcp_sum"] == want and got["shm_sum"] == want
        assert got["http_port"] != http_port, "the child reused the parent's HTTP connection"
        assert not set(got["dp_ports"]) & set(dp_ports), "the child reused the parent's data-plane connections"
        assert lease_alive(d, lease_id), "the child released the parent's lease"
        assert lease_id in client._leases.held()
        # The parent's pooled connections still work (nobody else read from them).
        again = client.load(KEY, tp=(2, 0), transport="tcp")
        assert int(sum(int(a.view(np.uint8).sum()) for a in again.values())) == want
        assert client.info(refresh=True)["daemonId"] == got["daemon"]
        r.release()
    finally:
        client.close()


def test_a_forked_child_exiting_does_not_release_the_parents_leases(env):
    d = env
    client = tensorcast.Client(d.url, token=d.token)
    try:
        r = client.load(KEY, tp=(2, 1), transport="shm")
        lease_id = client._leases.held()[0]
        pid = os.fork()
        if pid == 0:  # the child: a plain fork() whose interpreter exits normally runs the atexit hook
            code = 1
            try:
                from tensorcast._load import leases

                leases._release_at_exit()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert lease_alive(d, lease_id), "the child's exit released the parent's lease"
        r.release()
    finally:
        client.close()
