"""The plan of a load (``POST /v1/plans``): which artifact, the normalized view, and where each tensor sits
in the view's dense output (the bytes every transport delivers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from ._http import HttpClient
from .errors import tc_error


@dataclass(frozen=True)
class PlannedTensor:
    name: str
    dtype: str
    shape: Tuple[int, ...]
    #: Byte offset in the view's output.
    offset: int
    byte_length: int


@dataclass(frozen=True)
class Plan:
    artifact_id: str
    #: ``{"key", "version"}`` when a key was resolved.
    key: Optional[Dict[str, Any]]
    #: The normalized view spec (None: the whole artifact) and its id, sent as they are with LOAD / leases.
    view: Optional[Dict[str, Any]]
    view_id: Optional[str]
    total_bytes: int
    tensors: Tuple[PlannedTensor, ...]
    metadata: Dict[str, str]
    files: Tuple[str, ...]

    @staticmethod
    def from_json(body: Any) -> "Plan":
        """The plan a ``POST /v1/plans`` answer describes, checked: every tensor a known dtype whose shape
        fits its byte length, inside the output. :raises TensorcastError: TC_ERR_PROTOCOL"""
        try:
            tensors = tuple(
                PlannedTensor(str(t["name"]), str(t["dtype"]), tuple(int(d) for d in list(t["shape"])), int(t["offset"]), int(t["byteLength"]))
                for t in list(body["tensors"])
            )
            plan = Plan(
                body["artifactId"],
                body.get("key"),
                body.get("view"),
                body.get("viewId"),
                int(body["totalBytes"]),
                tensors,
                dict(body.get("metadata") or {}),
                tuple(body.get("files") or ()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise tc_error("TC_ERR_PROTOCOL", f"malformed plan answer: {e!r}") from e
        _check_layout(plan)
        return plan


def _check_layout(plan: Plan) -> None:
    # A plan the arrays are cut from: a wrong one would surface as numpy's ValueError, or as arrays over
    # the wrong bytes.
    from ._dtypes import byte_length, numpy_dtype

    if plan.total_bytes < 0:
        raise tc_error("TC_ERR_PROTOCOL", f"malformed plan answer: totalBytes {plan.total_bytes}")
    for t in plan.tensors:
        try:
            numpy_dtype(t.dtype)
        except Exception as e:  # noqa: BLE001 - reported as the answer's fault
            raise tc_error("TC_ERR_PROTOCOL", f"malformed plan answer: tensor '{t.name}': {e}") from None
        if (
            any(d < 0 for d in t.shape)
            or byte_length(t.dtype, t.shape) != t.byte_length
            or t.offset < 0
            or t.offset + t.byte_length > plan.total_bytes
        ):
            raise tc_error(
                "TC_ERR_PROTOCOL",
                f"malformed plan answer: tensor '{t.name}' ({t.dtype} {list(t.shape)}, {t.byte_length} bytes at "
                f"{t.offset}) does not fit an output of {plan.total_bytes} bytes",
            )


def request_plan(
    http: HttpClient,
    key: str,
    tp: Optional[Tuple[int, int]] = None,
    view: Optional[Dict[str, Any]] = None,
    tensors: Optional[Sequence[str]] = None,
    rules: Optional[Dict[str, Any]] = None,
    timeout: Optional[float] = None,
) -> Plan:
    """Plans a load of ``key`` (a key or an artifact id): a TP rank ``tp=(size, rank)``, a view spec, or a
    list of tensor names (at most one of them; none: the whole artifact)."""
    if not isinstance(key, str) or not key:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"key must be a non-empty string, got {key!r}")
    if sum(x is not None for x in (tp, view, tensors)) > 1:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", "give at most one of tp, view and tensors")
    # As the TypeScript SDK's load-options checks: tp.size a positive integer, tp.rank a non-negative one,
    # tensors a list of names, view an object (name -> spec); the daemon checks the rest.
    if view is not None and not isinstance(view, dict):
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"view must be a dict of tensor name to spec, got {type(view).__name__}")
    if tensors is not None and (isinstance(tensors, (str, bytes)) or not all(isinstance(t, str) for t in tensors)):
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"tensors must be a list of tensor names, got {tensors!r:.200}")
    body: Dict[str, Any] = {}
    if key.startswith("tc") and ":" in key and (key.startswith("tcl:") or key[2 : key.index(":")].isdigit()):
        body["artifactId"] = key
    else:
        body["key"] = key
    if tp is not None:
        if not (
            isinstance(tp, (tuple, list))
            and len(tp) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in tp)
            and tp[0] >= 1
            and tp[1] >= 0
        ):
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"tp must be (size, rank) with size >= 1 and rank >= 0, got {tp!r}")
        body["tp"] = {"size": tp[0], "rank": tp[1], **({"rules": rules} if rules is not None else {})}
    if view is not None:
        body["view"] = view
    if tensors is not None:
        body["tensors"] = list(tensors)
    return Plan.from_json(http.json("POST", "/v1/plans", body, timeout=timeout))
