"""Where a client finds its daemon and token: the CLI's and the TypeScript SDK's defaults.

Precedence: explicit arguments (``token``, then ``token_file``), ``TENSORCAST_DAEMON`` /
``TENSORCAST_TOKEN`` (the token itself) / ``TENSORCAST_TOKEN_FILE`` (a file holding it), else
``http://127.0.0.1:7070`` and the token file ``~/.tensorcast/token`` that ``tensorcast serve`` writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

from .errors import tc_error

DEFAULT_DAEMON_URL = "http://127.0.0.1:7070"


@dataclass(frozen=True)
class Resolved:
    url: str
    token: str
    #: Where the token came from, named when the daemon rejects it (``TENSORCAST_TOKEN``, a file path...).
    token_source: str


def resolve_connect(
    url: Optional[str] = None,
    token: Optional[str] = None,
    token_file: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> Resolved:
    """Resolves URL and token.

    Raises ``TC_ERR_NOT_FOUND`` when a named token file does not exist, ``TC_ERR_AUTH`` when no token can
    be found at all or the file is empty.
    """
    env = os.environ if env is None else env
    url = url or _non_empty(env.get("TENSORCAST_DAEMON")) or DEFAULT_DAEMON_URL
    url = url.rstrip("/")
    if _non_empty(token) is not None:
        return Resolved(url, token.strip(), "the token argument")  # type: ignore[union-attr]
    if token_file is not None:
        return Resolved(url, _read_token_file(token_file, "the token_file argument"), f"the token_file argument {token_file}")
    env_token = _non_empty(env.get("TENSORCAST_TOKEN"))
    if env_token is not None:
        return Resolved(url, env_token, "TENSORCAST_TOKEN")
    env_file = _non_empty(env.get("TENSORCAST_TOKEN_FILE"))
    if env_file is not None:
        return Resolved(url, _read_token_file(env_file, "TENSORCAST_TOKEN_FILE"), f"TENSORCAST_TOKEN_FILE={env_file}")
    path = os.path.join(os.path.expanduser("~"), ".tensorcast", "token")
    if not os.path.exists(path):
        raise tc_error(
            "TC_ERR_AUTH",
            "no token: set TENSORCAST_TOKEN (the token) or TENSORCAST_TOKEN_FILE (a file holding it), pass "
            f"token= or token_file=, or start the daemon so it writes {path}",
        )
    return Resolved(url, _read_token_file(path, "the default"), f"the default token file {path}")


def _read_token_file(path: str, source: str) -> str:
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise tc_error("TC_ERR_NOT_FOUND", f"token file ({source}) not found: {path}", {"path": path}) from None
    except OSError as e:
        raise tc_error("TC_ERR_IO", f"token file ({source}) cannot be read: {path}: {e}", {"path": path}) from e
    token = text.strip()
    if not token:
        raise tc_error("TC_ERR_AUTH", f"token file ({source}) is empty: {path}", {"path": path})
    return token


def _non_empty(value: Optional[str]) -> Optional[str]:
    return value if value else None
