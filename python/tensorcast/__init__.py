"""tensorcast: the Python client of the tensorcast tensor store.

    import tensorcast
    with tensorcast.Client() as client:
        weights = client.load("model:llama-8b:v1", tp=(4, 1), as_torch=True)

See the README's Python section and docs/python.md.
"""

from __future__ import annotations

from .client import Client
from .errors import (
    ERROR_CODES,
    AuthError,
    BackendError,
    ClosedError,
    ConflictError,
    DataLossError,
    FormatError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    ProtocolError,
    TensorcastError,
    TimeoutError,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ERROR_CODES",
    "AuthError",
    "BackendError",
    "ClosedError",
    "ConflictError",
    "DataLossError",
    "FormatError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "ProtocolError",
    "TensorcastError",
    "TimeoutError",
    "map_ranks",
]


def __getattr__(name: str):  # map_ranks lives with the handshake client, imported on first use
    if name == "map_ranks":
        from .handshake import map_ranks

        return map_ranks
    raise AttributeError(name)
