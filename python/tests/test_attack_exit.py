"""Interpreter exit with shm leases held while the daemon does not answer (stopped): the exit-time release
gives up after the first request that cannot get through, instead of waiting a request timeout per lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from conftest import Daemon

CHILD = textwrap.dedent(
    """
    import atexit, sys
    calls = []
    # Registered before tensorcast's hook, so it runs after it (atexit is last in, first out).
    atexit.register(lambda: print("DELETES", len(calls), flush=True))
    import tensorcast
    from tensorcast._http import HttpClient
    real = HttpClient.request
    def counting(self, method, path, *a, **kw):
        if method == "DELETE":
            calls.append(path)
        return real(self, method, path, *a, **kw)
    HttpClient.request = counting
    c = tensorcast.Client(sys.argv[1], token=sys.argv[2])
    keep = [dict(c.load("model:hf:v1", tp=(4, r), transport="shm")) for r in range(4)]
    assert len(c._leases.held()) == 4
    print("LOADED", flush=True)
    sys.stdin.readline()
    """
)


def test_exit_with_leases_held_and_the_daemon_stopped(tmp_path, hf_model):
    from conftest import MODELS_ROOT

    d = Daemon(tmp_path / "d", ["--import-root", str(MODELS_ROOT)])
    try:
        d.import_model(hf_model, "model:hf:v1")
        p = subprocess.Popen([sys.executable, "-c", CHILD, d.url, d.token], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "LOADED", p.stderr.read()
            os.kill(d.proc.pid, signal.SIGSTOP)
            p.stdin.write("exit\n")
            p.stdin.flush()
            out, err = p.communicate(timeout=300)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.kill(d.proc.pid, signal.SIGCONT)
        assert p.returncode == 0, err[-3000:]
        assert "DELETES 1" in out, (out, err[-3000:])
    finally:
        d.kill()
