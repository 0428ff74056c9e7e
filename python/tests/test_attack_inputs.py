"""Bad input from a user, against a real daemon: every case is a tensorcast error with the code the
TypeScript SDK gives (its load-options checks: ``tp.size`` a positive integer, ``tp.rank`` a non-negative
integer, ``tensors`` an array of strings, ``view`` an object), never a raw Python exception."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcast
from conftest import Daemon, require_module

KEY = "model:hf:v1"


@pytest.fixture(scope="module")
def env(tmp_path_factory, request, hf_model):
    from conftest import MODELS_ROOT

    d = Daemon(tmp_path_factory.mktemp("daemon"), ["--import-root", str(MODELS_ROOT)])
    request.addfinalizer(d.kill)
    d.import_model(hf_model, KEY)
    c = tensorcast.Client(d.url, token=d.token)
    request.addfinalizer(c.close)
    return d, c


LOAD_CASES = {
    "tp size 0": (dict(tp=(0, 0)), "TC_ERR_INVALID_ARGUMENT"),
    "tp rank -1": (dict(tp=(2, -1)), "TC_ERR_INVALID_ARGUMENT"),
    "tp size a string": (dict(tp=("2", 1)), "TC_ERR_INVALID_ARGUMENT"),
    "tp size a bool": (dict(tp=(True, 0)), "TC_ERR_INVALID_ARGUMENT"),
    "tp of three": (dict(tp=(2, 0, 1)), "TC_ERR_INVALID_ARGUMENT"),
    "tp a dict": (dict(tp={"size": 2, "rank": 0}), "TC_ERR_INVALID_ARGUMENT"),
    "view a list": (dict(view=[["model.norm.weight"]]), "TC_ERR_INVALID_ARGUMENT"),
    "view with a non-string name": (dict(view={1: None}), "TC_ERR_VIEW_UNKNOWN_TENSOR"),  # JS: {1: null} names "1"
    "view with NaN": (dict(view={"model.norm.weight": [[float("nan"), 2]]}), "TC_ERR_INVALID_ARGUMENT"),
    "view with an object": (dict(view={"model.norm.weight": [[object(), 2]]}), "TC_ERR_INVALID_ARGUMENT"),
    "tensors a string": (dict(tensors="model.norm.weight"), "TC_ERR_INVALID_ARGUMENT"),
    "tensors of ints": (dict(tensors=[1, 2]), "TC_ERR_INVALID_ARGUMENT"),
    "key None": (dict(key=None), "TC_ERR_INVALID_ARGUMENT"),
    "key an int": (dict(key=5), "TC_ERR_INVALID_ARGUMENT"),
    "timeout NaN": (dict(timeout=float("nan")), "TC_ERR_INVALID_ARGUMENT"),
    "timeout inf": (dict(timeout=float("inf")), "TC_ERR_INVALID_ARGUMENT"),
    "timeout a string": (dict(timeout="5"), "TC_ERR_INVALID_ARGUMENT"),
    "into an object array": (dict(into=np.empty(4, dtype=object)), "TC_ERR_INVALID_ARGUMENT"),
    "into a str": (dict(into="abc"), "TC_ERR_INVALID_ARGUMENT"),
    "into bytes": (dict(into=b"abc"), "TC_ERR_INVALID_ARGUMENT"),
    "into non-contiguous": (dict(into=np.zeros((64, 64), np.uint8)[:, ::2]), "TC_ERR_INVALID_ARGUMENT"),
    "into read-only": (dict(into=np.zeros(64, np.uint8).setflags(write=False) or None), None),
    "unicode key": (dict(key="model:ünïcødé/%3F?x#y"), "TC_ERR_INVALID_ARGUMENT"),  # the daemon's key grammar
    "key with / % ?": (dict(key="model:a/b%2F?c=1#d"), None),
    "huge tp": (dict(tp=(2**70, 0)), None),
    "huge box": (dict(view={"model.norm.weight": [[0, 2**70]]}), None),
    "negative box": (dict(view={"model.norm.weight": [[0, -5]]}), None),
}


@pytest.mark.parametrize("transport", ["tcp", "shm", "files"])
@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_bad_load_input(env, case, transport):
    _d, c = env
    kw, code = LOAD_CASES[case]
    kw = dict(kw)
    key = kw.pop("key", KEY)
    if case == "into read-only":
        ro = np.zeros(64, np.uint8)
        ro.setflags(write=False)
        kw["into"] = ro
        code = "TC_ERR_INVALID_ARGUMENT"
    with pytest.raises(tensorcast.TensorcastError) as e:
        c.load(key, transport=transport, **kw).release()
    if code is not None:
        assert e.value.code == code, e.value


@pytest.mark.parametrize("case", ["tp size 0", "tensors a string", "view a list", "key None", "timeout NaN"])
def test_bad_iter_weights_input(env, case):
    _d, c = env
    kw, code = LOAD_CASES[case]
    kw = dict(kw)
    key = kw.pop("key", KEY)
    with pytest.raises(tensorcast.TensorcastError) as e:
        list(c.iter_weights(key, transport="tcp", as_torch=False, **kw))
    assert e.value.code == code, e.value


def test_numpy_integers_in_a_view_are_numbers(env):
    _d, c = env
    n = c.plan(KEY).tensors[0]
    rows = np.int64(1)
    with c.load(KEY, view={n.name: [[np.int64(0), rows]] + [None] * (len(n.shape) - 1)}, transport="tcp") as r:
        assert r[n.name].shape[0] == 1


@pytest.mark.parametrize(
    "kw",
    [dict(timeout=0), dict(timeout=-1), dict(timeout="x"), dict(timeout=float("nan")), dict(connections=0),
     dict(connections=True), dict(connections="4")],
)
def test_bad_client_options(env, kw):
    d, _c = env
    with pytest.raises(tensorcast.TensorcastError) as e:
        tensorcast.Client(d.url, token=d.token, **kw).info()
    assert e.value.code == "TC_ERR_INVALID_ARGUMENT", e.value


@pytest.mark.parametrize("url", ["127.0.0.1:7070", "ftp://x", "http://", "http://[::1", "http://host:99999"])
def test_bad_urls(url):
    with pytest.raises(tensorcast.TensorcastError) as e:
        tensorcast.Client(url, token="t").info()
    assert e.value.code in ("TC_ERR_INVALID_ARGUMENT",), e.value


def test_https_to_an_http_daemon(env):
    d, _c = env
    with pytest.raises(tensorcast.TensorcastError) as e:
        tensorcast.Client(d.url.replace("http://", "https://"), token=d.token, timeout=30).info()
    assert e.value.code == "TC_ERR_UNAVAILABLE", e.value
