"""Argument checks shared by the modules: one rule and one message per kind of argument.

Every failure is ``TC_ERR_INVALID_ARGUMENT`` (the TypeScript SDK's code for the same inputs), raised before
anything is sent.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from .errors import tc_error

#: Data-plane connections per load (the TypeScript SDK's range).
MAX_CONNECTIONS = 64


def check_connections(value: Any, name: str = "connections") -> int:
    """``value`` as a connection count, 1..64. @raises TC_ERR_INVALID_ARGUMENT"""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONNECTIONS:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"{name} must be 1..{MAX_CONNECTIONS}, got {value!r}")
    return value


def positive_number(name: str, value: Any, unit: str) -> float:
    """``value`` as a finite number > 0 (not a bool) of ``unit``. @raises TC_ERR_INVALID_ARGUMENT"""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"{name} must be a positive number of {unit}, got {value!r}")
    return float(value)


def check_timeout(value: Any, what: str = "timeout", optional: bool = True) -> Optional[float]:
    """``value`` as a positive, finite number of seconds (None allowed when ``optional``); below 1e9 (a socket
    timeout beyond that overflows).

    :raises TensorcastError: TC_ERR_INVALID_ARGUMENT (0, negative, NaN, infinite, a bool, not a number), as the
        TypeScript SDK's option checks (a positive integer of milliseconds)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e9:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"{what} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def positive_seconds(name: str, value: Any) -> float:
    """A timeout or period in seconds, required. @raises TC_ERR_INVALID_ARGUMENT"""
    return check_timeout(value, name, optional=False)  # type: ignore[return-value]


def positive_ms(name: str, value: Any) -> float:
    """A timeout or period in milliseconds (the handshake API). @raises TC_ERR_INVALID_ARGUMENT"""
    return positive_number(name, value, "ms")
