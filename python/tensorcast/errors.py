"""The tensorcast errors: one base class carrying a stable code, one subclass per category.

The codes, their categories and whether a retry can help are the TypeScript SDK's catalogue
(``src/core/error-codes.ts``), shipped as ``error_codes.json``; a test keeps the two in step. Callers
match on ``err.code``::

    try:
        client.load("model:missing")
    except tensorcast.NotFoundError as err:
        assert err.code == "TC_ERR_NOT_FOUND"
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Dict, Mapping, Optional, Type


def _load_codes() -> Dict[str, Dict[str, Any]]:
    text = resources.files(__package__).joinpath("error_codes.json").read_text("utf-8") if hasattr(
        resources, "files"
    ) else resources.read_text(__package__, "error_codes.json")
    return json.loads(text)


#: Every stable error code: ``{code: {"category", "retryable", "summary"}}``.
ERROR_CODES: Dict[str, Dict[str, Any]] = _load_codes()


class TensorcastError(Exception):
    """Base class of every error tensorcast raises.

    Attributes: ``code`` (``TC_ERR_...``), ``category``, ``retryable``, ``details`` (a dict of
    machine-readable facts; ``details.get("reason")`` where the daemon gave one).
    """

    def __init__(self, code: str, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(message)
        info = ERROR_CODES.get(code) or ERROR_CODES["TC_ERR_INTERNAL"]
        self.code = code if code in ERROR_CODES else "TC_ERR_INTERNAL"
        self.category: str = info["category"]
        self.retryable: bool = bool(info["retryable"])
        self.details: Dict[str, Any] = dict(details or {})
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __reduce__(self):  # picklable across processes (multiprocessing, concurrent.futures)
        return (_rebuild, (self.code, self.message, self.details))


class InvalidArgumentError(TensorcastError):
    """A malformed or out-of-range argument."""


class FormatError(TensorcastError):
    """A malformed file (safetensors header, index)."""


class NotFoundError(TensorcastError):
    """Something named does not exist."""


class ConflictError(TensorcastError):
    """A lost compare-and-swap or other conflicting state."""


class AuthError(TensorcastError):
    """A missing or wrong credential."""


class TimeoutError(TensorcastError):  # noqa: A001 - the category's name, as in the TypeScript SDK
    """A deadline ran out."""


class ClosedError(TensorcastError):
    """The resource was closed."""


class ProtocolError(TensorcastError):
    """A peer broke the wire protocol."""


class BackendError(TensorcastError):
    """An operating-system or backend call failed."""


class DataLossError(TensorcastError):
    """Bytes that should exist could not be read in full."""


class InternalError(TensorcastError):
    """An invariant of tensorcast itself broke."""


_CLASSES: Dict[str, Type[TensorcastError]] = {
    "InvalidArgument": InvalidArgumentError,
    "Format": FormatError,
    "NotFound": NotFoundError,
    "Conflict": ConflictError,
    "Auth": AuthError,
    "Timeout": TimeoutError,
    "Closed": ClosedError,
    "Protocol": ProtocolError,
    "Backend": BackendError,
    "DataLoss": DataLossError,
    "Internal": InternalError,
}


def tc_error(code: str, message: str, details: Optional[Mapping[str, Any]] = None) -> TensorcastError:
    """The error of the right subclass for ``code`` (an unknown code becomes ``TC_ERR_INTERNAL``)."""
    info = ERROR_CODES.get(code)
    if info is None:
        return InternalError("TC_ERR_INTERNAL", f"unknown error code {code!r} from peer: {message}", details)
    return _CLASSES[info["category"]](code, message, details)


def from_wire(body: Any, fallback_message: str = "") -> TensorcastError:
    """The error an answer body describes: ``{"error": {code, message, details}}`` (control API) or
    ``{code, message, reason?}`` (a data-plane ERROR frame)."""
    err = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        return tc_error("TC_ERR_PROTOCOL", f"malformed error answer: {fallback_message or body!r}"[:500])
    details = dict(err.get("details") or {}) if isinstance(err.get("details"), dict) else {}
    if isinstance(err.get("reason"), str):
        details.setdefault("reason", err["reason"])
    return tc_error(err["code"], str(err.get("message", fallback_message)), details)


def _rebuild(code: str, message: str, details: Dict[str, Any]) -> TensorcastError:
    return tc_error(code, message, details)
