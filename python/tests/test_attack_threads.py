"""Threads come and go (a web server's request threads, a thread pool that is replaced): the HTTP client
keeps one keep-alive connection per *live* thread; a dead thread's connection is closed, not kept open for
the life of the Client."""

from __future__ import annotations

import gc
import os
import threading

import tensorcast
from conftest import wait_until


def open_sockets() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def test_dead_threads_leave_no_connections(make_daemon):
    d = make_daemon()
    with tensorcast.Client(d.url, token=d.token) as client:
        client.info()
        before = open_sockets()

        def one() -> None:
            client.info(refresh=True)

        for _ in range(40):
            t = threading.Thread(target=one)
            t.start()
            t.join()
        gc.collect()
        wait_until(lambda: open_sockets() <= before + 2, what=f"sockets of dead threads closed ({open_sockets()} open, {before} before)")
