"""The package's seams: errors carry the TypeScript catalogue's codes, the client finds its daemon and token
as the CLI does, plans and daemon facts come over the control API."""

from __future__ import annotations

import pickle

import pytest

import tensorcast
from tensorcast._config import resolve_connect
from tensorcast.errors import ERROR_CODES, tc_error


def test_every_code_has_its_category_class():
    for code, info in ERROR_CODES.items():
        err = tc_error(code, "m")
        assert err.code == code and err.retryable == info["retryable"] and err.category == info["category"]
        assert type(err).__name__ == info["category"] + "Error"
        assert isinstance(err, tensorcast.TensorcastError)
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err) and again.code == code


def test_unknown_code_is_internal():
    assert tc_error("TC_ERR_NOPE", "x").code == "TC_ERR_INTERNAL"


def test_token_precedence(tmp_path, monkeypatch):
    f = tmp_path / "tok"
    f.write_text("from-file\n")
    env = {"TENSORCAST_DAEMON": "http://h:1", "TENSORCAST_TOKEN": "from-env", "TENSORCAST_TOKEN_FILE": str(f)}
    assert resolve_connect(env=env).token == "from-env"
    assert resolve_connect(env=env).url == "http://h:1"
    assert resolve_connect(token="explicit", env=env).token == "explicit"
    assert resolve_connect(env={"TENSORCAST_TOKEN_FILE": str(f)}).token == "from-file"
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(tensorcast.AuthError) as e:
        resolve_connect(env={})
    assert "TENSORCAST_TOKEN" in str(e.value)
    (tmp_path / ".tensorcast").mkdir()
    (tmp_path / ".tensorcast" / "token").write_text("home\n")
    r = resolve_connect(env={})
    assert (r.url, r.token) == ("http://127.0.0.1:7070", "home")
    with pytest.raises(tensorcast.NotFoundError):
        resolve_connect(token_file=str(tmp_path / "missing"), env={})
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(tensorcast.AuthError):
        resolve_connect(token_file=str(tmp_path / "empty"), env={})


def test_info_and_wrong_token(make_daemon):
    d = make_daemon()
    with tensorcast.Client(d.url, d.token) as c:
        assert c.info()["daemonId"] == d.daemon_id
    with tensorcast.Client(d.url, "wrong") as c:
        with pytest.raises(tensorcast.AuthError) as e:
            c.info()
        assert e.value.code == "TC_ERR_AUTH" and "token argument" in str(e.value)


def test_unreachable_daemon():
    with tensorcast.Client("http://127.0.0.1:1", "t") as c:
        with pytest.raises(tensorcast.BackendError) as e:
            c.info()
        assert e.value.code == "TC_ERR_UNAVAILABLE" and e.value.retryable


def test_closed_client(make_daemon):
    d = make_daemon()
    c = tensorcast.Client(d.url, d.token)
    c.close()
    c.close()
    with pytest.raises(tensorcast.ClosedError):
        c.plan("model:x")
