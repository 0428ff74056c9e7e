"""One Client shared by 8 threads doing shm, tcp and files loads, tcp ``iter_weights`` and object put/get at
once: every result byte-correct, no deadlock; afterwards no lease held (the daemon's shm replicas have no
readers), no connection or keeper thread left after ``close()``. Then the daemon is killed (-9) and a new
one started on the same data dir while arrays still hold their leases: the keeper's failing renews neither
crash nor spin, the arrays stay readable (the mapping of the file the daemon deleted stays valid on Linux),
and the process exits promptly."""

from __future__ import annotations

import gc
import hashlib
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import tensorcast
from conftest import Daemon, wait_until

KEY = "model:hf:v1"


@pytest.fixture(scope="module")
def env(tmp_path_factory, request, hf_model):
    from conftest import MODELS_ROOT

    d = Daemon(tmp_path_factory.mktemp("daemon"), ["--import-root", str(MODELS_ROOT)])
    request.addfinalizer(d.kill)
    d.import_model(hf_model, KEY)
    return d


def digest(result) -> str:
    h = hashlib.sha256()
    for name, a in result.items() if hasattr(result, "items") else result:
        h.update(name.encode())
        h.update(np.ascontiguousarray(a).view(np.uint8).tobytes())
    return h.hexdigest()


def shm_readers(d: Daemon) -> int:
    return sum(r["readers"] for r in d.request("GET", "/v1/replicas")["replicas"] if r["tier"] == "shm")


def tc_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("tensorcast-") and not t.name.startswith("tensorcast-crc")]


def test_eight_threads_share_one_client(env):
    d = env
    client = tensorcast.Client(d.url, token=d.token, connections=3)
    want = {}
    for rank in (0, 1):
        with client.load(KEY, tp=(2, rank), transport="tcp") as r:
            want[rank] = digest(r)
    errors = []
    kept = []
    lock = threading.Lock()

    def work(i: int) -> None:
        try:
            rng = np.random.default_rng(i)
            for it in range(3):
                rank = (i + it) % 2
                for transport in ("shm", "tcp", "files"):
                    r = client.load(KEY, tp=(2, rank), transport=transport)
                    assert digest(r) == want[rank], (transport, rank)
                    if (i + it) % 3 == 0:
                        with lock:
                            kept.append(r[next(iter(r))])  # an array outliving its result
                    r.release()
                got = list(client.iter_weights(KEY, tp=(2, rank), transport="tcp", as_torch=False, max_in_flight_bytes=1 << 16))
                assert digest(got) == want[rank]
                data = rng.integers(0, 256, 100_000 + i, dtype=np.uint8)
                client.dataplane.put_object(f"conc/t{i}-{it}", data)
                back, _v = client.dataplane.get_object(f"conc/t{i}-{it}")
                assert bytes(back) == data.tobytes()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "deadlock: a worker thread did not finish"
    assert not errors, errors
    assert client._leases.held(), "the kept arrays hold their leases"
    kept.clear()
    gc.collect()
    client._leases.flush()
    wait_until(lambda: not client._leases.held(), what="every lease released")
    wait_until(lambda: shm_readers(d) == 0, what="no shm readers on the daemon")
    client.close()
    wait_until(lambda: not tc_threads(), what=f"no tensorcast thread left after close(): {tc_threads()}")


CHILD = textwrap.dedent(
    """
    import os, sys, time, logging
    import numpy as np
    import tensorcast
    import tensorcast._load.leases as leases
    logging.basicConfig(level=logging.WARNING)
    url, token = sys.argv[1], sys.argv[2]
    c = tensorcast.Client(url, token=token)
    r = c.load("model:hf:v1", tp=(2, 0), transport="shm")
    arrays = dict(r)
    before = {k: np.array(v, copy=True) for k, v in arrays.items()}
    print("LOADED", flush=True)
    sys.stdin.readline()  # the daemon was killed (and maybe restarted)
    k = c._leases
    marks = {}
    with k._cond:
        for le in k._held.values():  # renew now, not in 20 s
            le.renewed_at -= 3600
            marks[le.lease_id] = le.renewed_at
        k._cond.notify_all()
    held = list(k._held.values())
    deadline = time.monotonic() + 60
    # Until each lease's renew was tried twice (failed: retried a second later; 404: dropped).
    while time.monotonic() < deadline and any(le.renewed_at < marks[le.lease_id] + 3000 for le in held if not le.lost):
        time.sleep(0.05)
    tried = [le.renewed_at for le in held]
    while time.monotonic() < deadline and [le.renewed_at for le in held] == tried and k._held:
        time.sleep(0.05)
    assert all(np.array_equal(before[n], arrays[n]) for n in arrays), "mapped bytes changed"
    print("READABLE", k._thread is not None and k._thread.is_alive(), flush=True)
    # exits now with the arrays (and maybe leases) held: must exit promptly
    """
)


@pytest.mark.parametrize("restart", [False, True])
def test_daemon_killed_while_arrays_hold_leases(tmp_path, hf_model, restart):
    from conftest import MODELS_ROOT

    d = Daemon(tmp_path / "d", ["--import-root", str(MODELS_ROOT)])
    try:
        d.import_model(hf_model, KEY)
        p = subprocess.Popen(
            [sys.executable, "-c", CHILD, d.url, d.token],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**__import__("os").environ},
        )
        try:
            assert p.stdout.readline().strip() == "LOADED", p.stderr.read()
            d.kill()
            if restart:
                d = Daemon(tmp_path / "d", ["--import-root", str(MODELS_ROOT)])
            p.stdin.write("go\n")
            p.stdin.flush()
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, err[-3000:]
        assert "READABLE" in out, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
    finally:
        d.kill()
