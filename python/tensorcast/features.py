"""The feature store on the daemon: per-sample tensors put by producers and got by trainers into their own
buffers (docs/api.md "Feature store"). A port of ``src/features/feature-store.ts`` with its daemon backend
(``src/client/feature-backend.ts``), interoperable with it: the same keys (``{storeId}/{sampleId}/g{generation}/
{name}``, the manifest ``{storeId}/{sampleId}/manifest``), the same manifest JSON, the same ``SampleRef`` JSON, so
a TypeScript producer's refs are read here and the reverse.

- put: every tensor and the manifest in one daemon transaction, committed with a compare-and-swap on the manifest
  version read before (a concurrent put of the same sample: TC_ERR_CONFLICT, nothing visible). A re-put writes
  generation g+1, then retires g. Tensor bytes go over the data plane straight from the caller's memory (a
  memoryview of the C-contiguous array: no intermediate copy; a non-contiguous array is TC_ERR_INVALID_ARGUMENT).
- get: every tensor read whole, its version checked against the ref's fence (a stale or released ref:
  TC_ERR_NOT_FOUND, never other bytes); ``into`` buffers of exactly the tensor's byte length (larger:
  TC_ERR_SHORT_READ, smaller: TC_ERR_DESTINATION_SIZE, both before any I/O).
- release: a local tombstone at once, the physical delete after (failed deletes retried by gc(), drain()).

- layout='packed': one safetensors object per sample (``{storeId}/{sampleId}/g{generation}.safetensors``, the
  TypeScript header byte for byte). The data plane takes one buffer per object, so a packed put gathers the
  tensors into one buffer (one copy, as the TypeScript daemon backend does) and a packed get reads the object whole
  and copies each tensor out (one copy, as TypeScript does for whole-object backends).

- cluster: a ref names the daemon that holds its objects (``daemonId``); a store whose client is connected to
  another daemon of the same cluster reads and releases it there (found in ``GET /v1/cluster``, connected with this
  client's token, as the TypeScript store does). That daemon unknown or down: TC_ERR_UNAVAILABLE.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _dtypes
from ._http import segment
from .errors import TensorcastError, tc_error

MAX_TENSORS_PER_SAMPLE = 4096
MAX_RANK = 32
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_MAX_SAFE = 2**53 - 1
_SAMPLE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_TENSOR_NAME = re.compile(r"[A-Za-z0-9_:+=@,-][A-Za-z0-9._:+=@,-]{0,199}")
_NAMESPACE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_DAEMON_ID = re.compile(r"[\x21-\x7e]{1,256}")
_PACKED_KEY = re.compile(r"g(\d{1,15})\.safetensors")
_GEN = re.compile(r"g(\d{1,15})")
STORE_TOKEN_HEADER = "x-tensorcast-store-token"
#: Deadline of a put that may wait for room, past the wait itself, when no timeout is given (ms).
_TRANSFER_MS = 60_000
_DRAIN_PASSES = 3
#: Reads and writes of one sample kept in flight at once (as TypeScript).
_CONCURRENCY = 8
#: safetensors dtypes in the reference crate's order; the packed header sorts by it, descending (src/core/dtypes.ts).
_DTYPE_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
                "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
_MAX_HEADER_BYTES = 100_000_000

# numpy dtype -> safetensors dtype (little-endian or byte-order-free only).
_FROM_NUMPY = {
    "|b1": "BOOL", "|u1": "U8", "|i1": "I8", "<i2": "I16", "<u2": "U16", "<f2": "F16", "<i4": "I32", "<u4": "U32",
    "<f4": "F32", "<c8": "C64", "<f8": "F64", "<i8": "I64", "<u8": "U64",
}
_FROM_TORCH = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16", "float16": "F16", "bfloat16": "BF16",
    "int32": "I32", "uint32": "U32", "float32": "F32", "complex64": "C64", "float64": "F64", "int64": "I64",
    "uint64": "U64", "float8_e5m2": "F8_E5M2", "float8_e4m3fn": "F8_E4M3", "float8_e8m0fnu": "F8_E8M0",
    "float8_e4m3fnuz": "F8_E4M3FNUZ", "float8_e5m2fnuz": "F8_E5M2FNUZ",
}


def _bad(message: str, details: Optional[Mapping[str, Any]] = None) -> TensorcastError:
    return tc_error("TC_ERR_INVALID_ARGUMENT", message, details)


def _safe_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= _MAX_SAFE


def check_sample_id(sample_id: Any) -> str:
    """1-200 of ``[A-Za-z0-9._-]``, not starting with '.'. Raises TC_ERR_INVALID_ARGUMENT."""
    if not isinstance(sample_id, str) or not _SAMPLE_ID.fullmatch(sample_id):
        raise _bad(f"bad sample id {json.dumps(sample_id)}: use 1-200 of [A-Za-z0-9._-], not starting with '.'")
    return sample_id


def check_tensor_name(name: Any) -> str:
    """1-200 of ``[A-Za-z0-9._:+=@,-]`` (no '/'), not starting with '.'. Raises TC_ERR_INVALID_ARGUMENT."""
    if not isinstance(name, str) or not _TENSOR_NAME.fullmatch(name):
        raise _bad(
            f"bad tensor name {json.dumps(name)}: use 1-200 of [A-Za-z0-9._:+=@,-] (no '/'), not starting with '.'"
        )
    return name


def check_store_id(store_id: Any) -> str:
    if not isinstance(store_id, str):
        raise _bad(f"a store id must be a string, not {type(store_id).__name__}")
    if not _NAMESPACE.fullmatch(store_id) or store_id in (".", ".."):
        raise _bad(f"bad object namespace '{store_id}': use 1-128 of [A-Za-z0-9._-]")
    return store_id


def spec_byte_length(name: str, dtype: Any, shape: Any) -> int:
    """Checks dtype + shape; the bytes they need. Raises TC_ERR_INVALID_ARGUMENT."""
    if not isinstance(dtype, str) or dtype not in _dtypes._TABLE:
        raise _bad(f"tensor '{name}': unknown dtype {json.dumps(dtype)}")
    if (not isinstance(shape, (list, tuple)) or len(shape) > MAX_RANK
            or not all(_safe_int(d) and d >= 0 for d in shape)):
        got = json.dumps(shape, default=str)
        raise _bad(f"tensor '{name}': shape must be at most {MAX_RANK} non-negative integers, got {got}")
    elements = 1
    for d in shape:
        elements *= d
    bits = elements * _dtypes._BITS.get(dtype, _dtypes.numpy_dtype(dtype).itemsize * 8)
    if bits > _MAX_SAFE:
        raise _bad(f"tensor '{name}': shape {json.dumps(list(shape))} is too large")
    if bits % 8 != 0:
        raise _bad(f"tensor '{name}': shape [{', '.join(str(d) for d in shape)}] of {dtype} does not fill whole bytes")
    return bits // 8


@dataclass(frozen=True)
class FeatureSpec:
    """One tensor of a sample as the ref describes it."""

    name: str
    dtype: str
    shape: Tuple[int, ...]
    byte_length: int

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "byteLength": self.byte_length}


def _check_specs(specs: Any, what: str) -> List[FeatureSpec]:
    if not isinstance(specs, (list, tuple)) or not 0 < len(specs) <= MAX_TENSORS_PER_SAMPLE:
        raise _bad(f"{what}: specs must be 1 to {MAX_TENSORS_PER_SAMPLE} entries")
    seen = set()
    out = []
    for s in specs:
        if isinstance(s, FeatureSpec):
            s = s.to_dict()
        if not isinstance(s, dict):
            raise _bad(f"{what}: a spec must be an object")
        name = check_tensor_name(s.get("name"))
        if name in seen:
            raise _bad(f"{what}: tensor '{name}' appears twice")
        seen.add(name)
        n = spec_byte_length(name, s.get("dtype"), s.get("shape"))
        if not _safe_int(s.get("byteLength")) or s.get("byteLength") != n:
            raise _bad(f"{what}: tensor '{name}': byteLength {s.get('byteLength')} does not match shape x dtype")
        out.append(FeatureSpec(name, s["dtype"], tuple(s["shape"]), n))
    return out


def _is_fence(v: Any) -> bool:
    return (_safe_int(v) and v >= 0) or (isinstance(v, str) and 0 < len(v) <= 256)


@dataclass(frozen=True)
class SampleRef:
    """A handle on one generation of a sample: plain JSON, interoperable with the TypeScript ``SampleRef``.

    ``ref.to_json()`` is what ``JSON.stringify(ref)`` gives in TypeScript; ``SampleRef.from_json(text)`` (or
    ``from_dict``) reads either language's. Every method of ``FeatureStore`` also takes the dict or the JSON text.
    """

    store_id: str
    sample_id: str
    generation: int
    specs: Tuple[FeatureSpec, ...]
    layout: Optional[str] = "per-tensor"
    fences: Optional[Tuple[Union[int, str], ...]] = None
    daemon_id: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        """The TypeScript SampleRef (camelCase keys, in its order)."""
        out: Dict[str, Any] = {
            "storeId": self.store_id,
            "sampleId": self.sample_id,
            "generation": self.generation,
            "specs": [s.to_dict() for s in self.specs],
        }
        if self.layout is not None:
            out["layout"] = self.layout
        if self.fences is not None:
            out["fences"] = list(self.fences)
        if self.daemon_id is not None:
            out["daemonId"] = self.daemon_id
        return out

    def to_json(self) -> str:
        """``JSON.stringify(ref)``, byte for byte."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SampleRef":
        """A ref from its JSON object (checked: ids, generation, specs, fences). Raises TC_ERR_INVALID_ARGUMENT."""
        if not isinstance(d, Mapping):
            raise _bad("a sample ref must be an object")
        store_id = d.get("storeId")
        if not isinstance(store_id, str):
            raise _bad(f"sample ref: bad storeId {json.dumps(store_id, default=str)}")
        check_sample_id(d.get("sampleId"))
        gen = d.get("generation")
        if not _safe_int(gen) or gen < 0:
            raise _bad(f"sample ref: bad generation {json.dumps(gen, default=str)}")
        layout = d.get("layout")
        if layout is not None and layout not in ("per-tensor", "packed"):
            raise _bad(f"sample ref: bad layout {json.dumps(layout, default=str)}")
        specs = _check_specs(d.get("specs"), "sample ref")
        daemon_id = d.get("daemonId")
        if daemon_id is not None and (not isinstance(daemon_id, str) or not _DAEMON_ID.fullmatch(daemon_id)):
            raise _bad(f"sample ref: bad daemonId {json.dumps(daemon_id, default=str)}")
        fences = d.get("fences")
        if fences is not None:
            want = 1 if layout == "packed" else len(specs)
            if not isinstance(fences, (list, tuple)) or len(fences) != want or not all(_is_fence(f) for f in fences):
                raise _bad(f"sample ref: fences must be {want} numbers or strings")
            fences = tuple(fences)
        return cls(store_id, d["sampleId"], gen, tuple(specs), layout, fences, daemon_id)

    @classmethod
    def from_json(cls, text: Union[str, bytes]) -> "SampleRef":
        try:
            d = json.loads(text)
        except ValueError as e:
            raise _bad(f"a sample ref must be JSON: {e}") from e
        return cls.from_dict(d)

    @property
    def identity(self) -> str:
        return "\0".join([self.sample_id, str(self.generation), *(str(f) for f in (self.fences or ()))])

    def object_keys(self) -> List[str]:
        """Every object key this generation owns (not the manifest)."""
        if self.layout == "packed":
            return [packed_key(self.store_id, self.sample_id, self.generation)]
        return [tensor_key(self.store_id, self.sample_id, self.generation, s.name) for s in self.specs]


RefLike = Union[SampleRef, Mapping[str, Any], str, bytes]


def tensor_key(store_id: str, sample_id: str, generation: int, name: str) -> str:
    return f"{store_id}/{sample_id}/g{generation}/{name}"


def packed_key(store_id: str, sample_id: str, generation: int) -> str:
    return f"{store_id}/{sample_id}/g{generation}.safetensors"


@dataclass(frozen=True)
class _PackedPlan:
    header: bytes
    #: (name, dtype, shape, begin, end) in file order
    tensors: Tuple[Tuple[str, str, Tuple[int, ...], int, int], ...]
    data_bytes: int

    @property
    def total(self) -> int:
        return len(self.header) + self.data_bytes


def plan_packed(specs: Sequence[FeatureSpec]) -> _PackedPlan:
    """The safetensors layout of a sample, exactly as src/format/safetensors-writer.ts plans it: tensors by dtype
    descending then name (UTF-8 order), the header JSON padded with spaces to 8 bytes."""
    ordered = sorted(specs, key=lambda s: (-_DTYPE_ORDER.index(s.dtype), s.name.encode("utf-8")))
    cursor = 0
    placed = []
    parts = []
    for t in ordered:
        begin, cursor = cursor, cursor + t.byte_length
        placed.append((t.name, t.dtype, tuple(t.shape), begin, cursor))
        shape = ",".join(str(d) for d in t.shape)
        entry = f'{{"dtype":"{t.dtype}","shape":[{shape}],"data_offsets":[{begin},{cursor}]}}'
        parts.append(f"{json.dumps(t.name, ensure_ascii=False)}:{entry}")
    text = ("{" + ",".join(parts) + "}").encode("utf-8")
    header_bytes = -(-(8 + len(text)) // 8) * 8 - 8
    if header_bytes > _MAX_HEADER_BYTES:
        raise tc_error("TC_ERR_FORMAT_HEADER_TOO_LARGE", f"header of {header_bytes} bytes exceeds {_MAX_HEADER_BYTES}")
    header = header_bytes.to_bytes(8, "little") + text + b" " * (header_bytes - len(text))
    return _PackedPlan(header, tuple(placed), cursor)


def _check_packed_header(data: memoryview, plan: _PackedPlan, key: str) -> None:
    """The stored header must describe exactly the planned tensors (else it is not the object the ref names)."""
    def mismatch(why: str) -> TensorcastError:
        return tc_error("TC_ERR_BACKEND", f"{key}: the packed object does not match its sample ref ({why})",
                        {"key": key, "reason": "packed_mismatch"})

    n = int.from_bytes(bytes(data[:8]), "little")
    if n != len(plan.header) - 8:
        raise mismatch("header length differs")
    try:
        parsed = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise mismatch(f"header is not JSON: {e}") from e
    if not isinstance(parsed, dict):
        raise mismatch("header is not an object")
    parsed.pop("__metadata__", None)
    if len(parsed) != len(plan.tensors):
        raise mismatch("tensor count differs")
    for name, dtype, shape, begin, end in plan.tensors:
        t = parsed.get(name)
        if (not isinstance(t, dict) or t.get("dtype") != dtype or t.get("shape") != list(shape)
                or t.get("data_offsets") != [begin, end]):
            raise mismatch(f"tensor '{name}' differs")


def manifest_key(store_id: str, sample_id: str) -> str:
    return f"{store_id}/{sample_id}/manifest"


def parse_sample_key(store_id: str, key: str) -> Optional[Tuple[str, str, int]]:
    """``(sample_id, kind, generation)`` of a key of the store (kind 'manifest' (generation -1), 'tensor',
    'packed'); None for keys that are not the store's."""
    if not key.startswith(store_id + "/"):
        return None
    parts = key[len(store_id) + 1:].split("/")
    sample_id = parts[0]
    if not _SAMPLE_ID.fullmatch(sample_id):
        return None
    if len(parts) == 2 and parts[1] == "manifest":
        return (sample_id, "manifest", -1)
    if len(parts) == 2:
        m = _PACKED_KEY.fullmatch(parts[1])
        return (sample_id, "packed", int(m.group(1))) if m else None
    if len(parts) == 3:
        m = _GEN.fullmatch(parts[1])
        if m and _TENSOR_NAME.fullmatch(parts[2]):
            return (sample_id, "tensor", int(m.group(1)))
    return None


def _utf8_order(name: str) -> bytes:
    return name.encode("utf-8")


def _tensor_input(name: str, value: Any) -> Tuple[memoryview, str, Tuple[int, ...]]:
    """``(bytes view, dtype, shape)`` of one tensor to put, without a copy.

    Takes a numpy array (dtype from the array), a torch tensor (CPU), ``(buffer, dtype, shape)`` or
    ``{"data", "dtype", "shape"}`` (any C-contiguous buffer, e.g. an int16 array holding BF16 bytes)."""
    if isinstance(value, np.ndarray):
        dtype = _FROM_NUMPY.get(value.dtype.str if value.dtype.str[0] != "=" else value.dtype.newbyteorder("<").str)
        if dtype is None:
            raise _bad(f"tensor '{name}': numpy dtype {value.dtype} has no safetensors dtype (little-endian only); "
                       "pass (buffer, dtype, shape) to name one")
        return _bytes_of(name, value), dtype, tuple(int(d) for d in value.shape)
    if type(value).__module__.startswith("torch") and hasattr(value, "untyped_storage"):
        dtype = _FROM_TORCH.get(str(value.dtype).replace("torch.", ""))
        if dtype is None:
            raise _bad(f"tensor '{name}': torch dtype {value.dtype} has no safetensors dtype")
        if value.device.type != "cpu":
            raise _bad(f"tensor '{name}' is on {value.device}: put takes CPU tensors (copy it with .cpu() first)")
        if not value.is_contiguous():
            raise _bad(f"tensor '{name}' is not contiguous: call .contiguous() first (that is the one copy)")
        import torch

        flat = value.detach().reshape(-1).view(torch.uint8)  # a view of the same memory
        return _bytes_of(name, flat.numpy()), dtype, tuple(int(d) for d in value.shape)
    if isinstance(value, Mapping) and {"data", "dtype", "shape"} <= set(value):
        value = (value["data"], value["dtype"], value["shape"])
    if isinstance(value, tuple) and len(value) == 3:
        data, dtype, shape = value
        if not isinstance(shape, (list, tuple)):
            raise _bad(f"tensor '{name}': shape must be a list of integers, got {shape!r}")
        return _bytes_of(name, data), dtype, tuple(shape)
    raise _bad(
        f"tensor '{name}': give a numpy array, a torch tensor or (buffer, dtype, shape), not {type(value).__name__}"
    )


def _bytes_of(name: str, data: Any) -> memoryview:
    try:
        mv = memoryview(data)
    except TypeError as e:
        raise _bad(f"tensor '{name}': data must support the buffer protocol, not {type(data).__name__}") from e
    if not mv.c_contiguous:
        raise _bad(f"tensor '{name}' is not C-contiguous: pass numpy.ascontiguousarray(x) (that is the one copy)")
    return _flat(mv)


def _writable_bytes(name: str, buf: Any) -> memoryview:
    try:
        mv = memoryview(buf)
    except TypeError as e:
        raise _bad(f"into['{name}'] must support the buffer protocol, not {type(buf).__name__}") from e
    if mv.readonly:
        raise _bad(f"into['{name}'] is read-only")
    if not mv.c_contiguous:
        raise _bad(f"into['{name}'] is not C-contiguous")
    return _flat(mv)


def _flat(mv: memoryview) -> memoryview:
    """A C-contiguous view as flat bytes over the same memory (0-byte views included)."""
    if mv.ndim == 1 and mv.format == "B":
        return mv
    if mv.nbytes == 0:
        return memoryview(bytearray(0)) if not mv.readonly else memoryview(b"")
    try:
        return mv.cast("B")
    except TypeError:  # formats memoryview cannot cast (e.g. complex): numpy can
        return memoryview(np.frombuffer(mv, dtype=np.uint8))


@dataclass
class _Free:
    kind: str  # 'object' | 'manifest'
    key: str
    version: Optional[Union[int, str]] = None
    tomb: Optional[str] = None
    sample_id: str = ""
    generation: int = -1
    fences: Optional[Tuple[Union[int, str], ...]] = None
    last_error: Optional[TensorcastError] = None


@dataclass
class _Frees:
    """Tombstones, pending frees and retained refs of one store (sample-frees.ts)."""

    tombs: Dict[str, set] = field(default_factory=dict)
    pending: Dict[str, _Free] = field(default_factory=dict)
    retained: Dict[str, SampleRef] = field(default_factory=dict)

    def tombstone(self, ref: SampleRef, keys: Sequence[str]) -> str:
        self.tombs[ref.identity] = set(keys)
        self.retained.pop(ref.identity, None)
        return ref.identity

    def freed(self, f: _Free) -> None:
        self.pending.pop(f.key, None)
        if f.tomb is None:
            return
        keys = self.tombs.get(f.tomb)
        if keys is not None:
            keys.discard(f.key)
            if not keys:
                del self.tombs[f.tomb]

    def failed(self, f: _Free, error: TensorcastError) -> None:
        f.last_error = error
        self.pending[f.key] = f


class FeatureStore:
    """The feature store ``store_id`` on the client's daemon (``client.features(store_id, **options)``).

    Options (the TypeScript FeatureStoreOptions): ``token`` (the namespace's store token; wrong or missing when the
    namespace has one: TC_ERR_AUTH), ``max_resident_bytes`` (the namespace's limit: a put beyond it is
    TC_ERR_BACKPRESSURE, retryable), ``wait_for_room_ms`` (a put over the limit waits this long first),
    ``max_hold_age_ms`` (every object expires this long after its put), ``retain_on_release`` (release keeps the
    bytes until drain() or a forced release), ``layout`` ('per-tensor', default: one object per tensor, or
    'packed': one safetensors object per sample), ``timeout_ms`` (each data-plane call).

    Thread-safe: several threads may put and get at once (the data plane pools its connections).

    >>> store = client.features("train")
    >>> ref = store.put("sample-17", {"hidden": hidden_f32, "ids": ids_i64, "bf": (bf16_as_int16, "BF16", [4, 8])})
    >>> msg = ref.to_json()                                  # to a queue; TypeScript reads it as its SampleRef
    >>> got = store.get(msg, into={"hidden": my_buffer})     # got["hidden"] is a numpy array on my_buffer
    >>> store.release(msg)
    """

    def __init__(
        self,
        client: Any,
        store_id: str,
        token: Optional[str] = None,
        max_resident_bytes: Optional[int] = None,
        wait_for_room_ms: Optional[int] = None,
        max_hold_age_ms: Optional[int] = None,
        retain_on_release: bool = False,
        layout: str = "per-tensor",
        timeout_ms: Optional[int] = None,
    ) -> None:
        self.store_id = check_store_id(store_id)
        for name, v, low in (("max_resident_bytes", max_resident_bytes, 1), ("wait_for_room_ms", wait_for_room_ms, 0),
                             ("max_hold_age_ms", max_hold_age_ms, 1), ("timeout_ms", timeout_ms, 1)):
            if v is not None and (not _safe_int(v) or v < low):
                raise _bad(f"{name} must be an integer >= {low}, got {v}")
        if layout not in ("per-tensor", "packed"):
            raise _bad(f"layout must be 'per-tensor' or 'packed', got {json.dumps(layout, default=str)}")
        if token is not None and (not isinstance(token, str) or token == ""):
            raise _bad("token must be a non-empty string")
        self.client = client
        self.token = token
        self.max_resident_bytes = max_resident_bytes
        self.wait_for_room_ms = wait_for_room_ms
        self.max_hold_age_ms = max_hold_age_ms
        self.retain_on_release = bool(retain_on_release)
        self.layout = layout
        self.timeout_ms = timeout_ms
        self._frees = _Frees()
        self._lock = threading.RLock()
        self._prepared = False
        self._closed = False
        self._daemon_id: Optional[str] = None
        self._pool: Optional[ThreadPoolExecutor] = None
        self._options: Dict[str, Any] = dict(
            token=token, max_resident_bytes=max_resident_bytes, wait_for_room_ms=wait_for_room_ms,
            max_hold_age_ms=max_hold_age_ms, retain_on_release=retain_on_release, layout=layout, timeout_ms=timeout_ms,
        )
        #: Stores on other daemons of the cluster (refs put there), by daemon id, each with its own client.
        self._peers: Dict[str, "FeatureStore"] = {}

    # -- the daemon's objects --------------------------------------------------------------------------------

    @property
    def daemon_id(self) -> str:
        if self._daemon_id is None:
            self._daemon_id = self.client.info()["daemonId"]
        return self._daemon_id

    def _headers(self) -> Dict[str, str]:
        return {} if self.token is None else {STORE_TOKEN_HEADER: self.token}

    def _timeout(self) -> Optional[float]:
        return None if self.timeout_ms is None else self.timeout_ms / 1000

    def _control(self, method: str, path: str, body: Any = None, headers: Optional[Dict[str, str]] = None) -> Any:
        kw: Dict[str, Any] = {"headers": headers if headers is not None else self._headers()}
        if self._timeout() is not None:
            kw["timeout"] = self._timeout()
        return self.client.http.json(method, path, body, **kw)

    def _map(self, fn: Any, items: Sequence[Any]) -> List[Any]:
        """``fn`` over ``items``, up to 8 at once (the data plane pools its connections); every call finishes
        before an error is raised (a NOT_FOUND first, as TypeScript picks it), so nothing runs on after a failure."""
        if len(items) <= 1:
            return [fn(i) for i in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_CONCURRENCY, thread_name_prefix=f"tensorcast-features-{self.store_id}")
            pool = self._pool
        futures = [pool.submit(fn, i) for i in items]
        errors = [f.exception() for f in futures]
        failed = [e for e in errors if e is not None]
        if failed:
            raise next((e for e in failed if getattr(e, "code", None) == "TC_ERR_NOT_FOUND"), failed[0])
        return [f.result() for f in futures]

    def _prepare(self) -> None:
        if self._prepared or (self.token is None and self.max_resident_bytes is None):
            return
        settings: Dict[str, Any] = {}
        if self.token is not None:
            settings["token"] = self.token
        if self.max_resident_bytes is not None:
            settings["maxBytes"] = self.max_resident_bytes
        self._control("PUT", f"/v1/namespaces/{segment(self.store_id)}", settings)
        self._prepared = True

    def _read_object(self, key: str) -> Optional[Tuple[Any, int]]:
        try:
            data, version = self.client.dataplane.get_object(key, store_token=self.token, timeout=self._timeout())
        except TensorcastError as e:
            if e.code == "TC_ERR_NOT_FOUND":
                return None
            raise
        return data, version

    def _put_object(self, key: str, data: Any, txn: str, if_version: Any = "unset") -> int:
        wait = self.wait_for_room_ms is not None and self.wait_for_room_ms > 0
        timeout_ms = (self.wait_for_room_ms + (self.timeout_ms or _TRANSFER_MS)) if wait else self.timeout_ms
        kw: Dict[str, Any] = {"txn": txn, "store_token": self.token}
        if if_version != "unset":
            kw["if_version"] = if_version
        if self.max_hold_age_ms is not None:
            kw["ttl_ms"] = self.max_hold_age_ms
        if wait:
            kw["wait_for_room"] = True
        if timeout_ms is not None:
            kw["timeout"] = timeout_ms / 1000
        return int(self.client.dataplane.put_object(key, data, **kw)["version"])

    def _list(self, prefix: str) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        after: Optional[str] = None
        while True:
            q = f"/v1/objects?prefix={segment(prefix)}&limit=1000"
            if after is not None:
                q += f"&after={segment(after)}"
            page = self._control("GET", q)
            out.extend(page["objects"])
            if page.get("next") is None or not page["objects"]:
                return out
            after = page["next"]

    def _delete(self, keys: Sequence[str]) -> List[Optional[TensorcastError]]:
        """One result per key: None when deleted (or already gone), else the error."""
        from .errors import from_wire

        out: List[Optional[TensorcastError]] = []
        for at in range(0, len(keys), 10_000):
            r = self._control("POST", "/v1/objects/delete", {"keys": list(keys[at:at + 10_000])})
            for x in r["results"]:
                error = {"code": x.get("code"), "message": x.get("message")}
                out.append(None if x.get("ok") else from_wire({"error": error}))
        return out

    # -- put -------------------------------------------------------------------------------------------------

    def put(self, sample_id: str, tensors: Mapping[str, Any]) -> SampleRef:
        """Stores a sample: generation 0, or g+1 of the current manifest's g (then g is retired). The sample is
        visible only once every tensor is stored (the manifest commit). Tensors: numpy arrays, torch CPU tensors,
        ``(buffer, dtype, shape)`` or ``{"data", "dtype", "shape"}`` with safetensors dtypes ("BF16", "I64", ...);
        the bytes are sent from their memory (do not change it until put returns).

        Raises TC_ERR_INVALID_ARGUMENT (bad id, name, dtype, shape, byte count, a non-contiguous array);
        TC_ERR_CONFLICT (a concurrent put of the same sample committed first; nothing of this put is visible);
        TC_ERR_BACKPRESSURE (retryable: max_resident_bytes reached); TC_ERR_AUTH; data-plane errors.
        """
        self._check_open()
        check_sample_id(sample_id)
        if not isinstance(tensors, Mapping):
            raise _bad("tensors must be a dict of name -> array, tensor or (buffer, dtype, shape)")
        names = sorted(tensors.keys(), key=lambda n: _utf8_order(n) if isinstance(n, str) else b"")
        if not names:
            raise _bad("a sample needs at least one tensor")
        if len(names) > MAX_TENSORS_PER_SAMPLE:
            raise _bad(f"a sample holds at most {MAX_TENSORS_PER_SAMPLE} tensors, got {len(names)}")
        specs: List[FeatureSpec] = []
        data: List[memoryview] = []
        for name in names:
            check_tensor_name(name)
            mv, dtype, shape = _tensor_input(name, tensors[name])
            n = spec_byte_length(name, dtype, list(shape))
            if mv.nbytes != n:
                raise _bad(
                    f"tensor '{name}': shape [{', '.join(str(d) for d in shape)}] of {dtype} needs {n} bytes, "
                    f"data has {mv.nbytes}",
                    {"tensor": name, "expected": n, "actual": mv.nbytes},
                )
            specs.append(FeatureSpec(name, dtype, tuple(shape), n))
            data.append(mv)
        self._prepare()
        current, version, lost_keys = self._manifest_for_put(sample_id)
        generation = current["generation"] + 1 if current is not None else self._fresh_generation(sample_id)
        base = {"v": 1, "sampleId": sample_id, "generation": generation, "layout": self.layout,
                "specs": [s.to_dict() for s in specs], "createdAt": int(time.time() * 1000)}
        if self.layout == "packed":
            plan = plan_packed(specs)
            whole = bytearray(plan.total)  # the one gather copy: the data plane sends one buffer per object
            whole[: len(plan.header)] = plan.header
            by_name = {s.name: d for s, d in zip(specs, data)}
            at = len(plan.header)
            for name, _, _, begin, end in plan.tensors:
                whole[at + begin: at + end] = by_name[name]
            items = [(packed_key(self.store_id, sample_id, generation), memoryview(whole))]
        else:
            items = [(tensor_key(self.store_id, sample_id, generation, s.name), d) for s, d in zip(specs, data)]
        fences = self._put_atomic(sample_id, items, base, version)
        ref = SampleRef(self.store_id, sample_id, generation, tuple(specs), self.layout, tuple(fences), self.daemon_id)
        if current is not None:
            self._retire(self._ref_from_manifest(current))
        if lost_keys:
            self._free_keys([_Free("object", k) for k in lost_keys])
        with self._lock:
            for old in [r for r in self._frees.retained.values() if r.sample_id == sample_id]:
                if old.generation < generation:
                    self._frees.retained.pop(old.identity, None)
        return ref

    def _put_atomic(self, sample_id: str, items: List[Tuple[str, Any]], base: Dict[str, Any],
                    manifest_version: Optional[int]) -> List[int]:
        """Tensors and manifest in one transaction, committed if the manifest is still the one read."""
        txn = f"txn-{uuid.uuid4()}"
        mkey = manifest_key(self.store_id, sample_id)
        try:
            fences = self._map(lambda item: self._put_object(item[0], item[1], txn, None), items)
            manifest = json.dumps({**base, "fences": fences}, separators=(",", ":"), ensure_ascii=False).encode()
            self._put_object(mkey, manifest, txn)
            conditions = [{"key": mkey, "ifVersion": manifest_version}]
            self._control("POST", "/v1/objects/commit", {"txn": txn, "conditions": conditions})
            return fences
        except TensorcastError as e:
            try:
                self._control("POST", "/v1/objects/abort", {"txn": txn})
            except TensorcastError:
                pass
            if e.code == "TC_ERR_CONFLICT":
                raise tc_error(
                    "TC_ERR_CONFLICT",
                    f"sample '{sample_id}': a concurrent put committed first; nothing of this put is visible",
                    {"sampleId": sample_id, "generation": base["generation"]},
                ) from e
            raise

    def _manifest_for_put(self, sample_id: str) -> Tuple[Optional[Dict[str, Any]], Optional[int], List[str]]:
        try:
            current = self._read_manifest(sample_id)
            return (None, None, []) if current is None else (current[0], current[1], [])
        except TensorcastError as e:
            if e.code != "TC_ERR_OBJECT_LOST":
                raise
        key = manifest_key(self.store_id, sample_id)
        listed = self._list(f"{self.store_id}/{sample_id}/")
        lost = [
            o["key"]
            for o in listed
            if o["key"] != key and (parse_sample_key(self.store_id, o["key"]) or ("",))[0] == sample_id
        ]
        version = next((o["version"] for o in listed if o["key"] == key), None)
        return None, version, lost

    def _read_manifest(self, sample_id: str) -> Optional[Tuple[Dict[str, Any], int]]:
        key = manifest_key(self.store_id, sample_id)
        got = self._read_object(key)
        if got is None:
            return None
        data, version = got
        if len(data) > MAX_MANIFEST_BYTES:
            raise tc_error("TC_ERR_BACKEND", f"daemon: {key} has {len(data)} bytes, more than {MAX_MANIFEST_BYTES}")
        m = _decode_manifest(bytes(data), key)
        if m["sampleId"] != sample_id:
            raise tc_error("TC_ERR_BACKEND", f"{key} names sample '{m['sampleId']}'")
        return m, version

    def _ref_from_manifest(self, m: Dict[str, Any]) -> SampleRef:
        specs = tuple(FeatureSpec(s["name"], s["dtype"], tuple(s["shape"]), s["byteLength"]) for s in m["specs"])
        fences = None if m.get("fences") is None else tuple(m["fences"])
        return SampleRef(self.store_id, m["sampleId"], m["generation"], specs, m["layout"], fences)

    def _fresh_generation(self, sample_id: str) -> int:
        nxt = 0
        for o in self._list(f"{self.store_id}/{sample_id}/"):
            p = parse_sample_key(self.store_id, o["key"])
            if p is not None and p[1] != "manifest" and p[0] == sample_id:
                nxt = max(nxt, p[2] + 1)
        return nxt

    # -- get -------------------------------------------------------------------------------------------------

    def get(self, ref: RefLike, into: Optional[Mapping[str, Any]] = None, as_torch: bool = False) -> Dict[str, Any]:
        """Reads a sample: ``{name: array}`` (numpy; torch tensors with ``as_torch=True``, BF16 as torch.bfloat16),
        each on the caller's ``into`` buffer when given (any writable C-contiguous buffer of exactly the tensor's
        byte length: a numpy array, a torch CPU tensor's ``.numpy()``, a bytearray), else on a new one. Every tensor
        is read whole and exactly: a stale ref (superseded, released, expired) fails, never gives other bytes.

        Raises TC_ERR_NOT_FOUND (stale or released); TC_ERR_SHORT_READ (an ``into`` buffer larger than the tensor);
        TC_ERR_DESTINATION_SIZE (smaller) -- both before any I/O; TC_ERR_INVALID_ARGUMENT; TC_ERR_AUTH.
        """
        self._check_open()
        r = self._ref(ref)
        peer = self._peer_of(r)
        if peer is not None:
            return self._on_peer(peer, lambda: peer.get(r, into=into, as_torch=as_torch))
        if as_torch:
            _dtypes.import_torch()
        with self._lock:
            if r.identity in self._frees.tombs:
                raise self._released(r)
        dests = self._destinations(r, into)
        fences = r.fences
        def read(i: int, key: str, into: Any, size: int) -> None:
            _, version = self.client.dataplane.get_object(
                key, into=into, expect_bytes=size, store_token=self.token, timeout=self._timeout())
            if fences is not None and version != fences[i]:
                raise tc_error(
                    "TC_ERR_NOT_FOUND",
                    f"{key}: stale or released sample (version {version}, the ref holds {fences[i]})",
                    {"key": key, "reason": "stale"},
                )

        try:
            if r.layout == "packed":
                plan = plan_packed(r.specs)
                key = packed_key(self.store_id, r.sample_id, r.generation)
                whole = memoryview(bytearray(plan.total))
                read(0, key, whole, plan.total)
                _check_packed_header(whole, plan, key)
                at = len(plan.header)
                for name, _, _, begin, end in plan.tensors:
                    dests[name][:] = whole[at + begin: at + end]
            else:
                self._map(lambda a: read(*a), [
                    (i, tensor_key(self.store_id, r.sample_id, r.generation, s.name), dests[s.name], s.byte_length)
                    for i, s in enumerate(r.specs)])
        except TensorcastError as e:
            if e.code == "TC_ERR_NOT_FOUND":
                raise tc_error(
                    "TC_ERR_NOT_FOUND",
                    f"sample '{r.sample_id}' generation {r.generation}: stale or released sample ({e.message})",
                    {"storeId": self.store_id, "sampleId": r.sample_id, "generation": r.generation, "reason": "stale"},
                ) from e
            raise
        with self._lock:
            if r.identity in self._frees.tombs:
                raise self._released(r)
        out: Dict[str, Any] = {}
        for s in r.specs:
            arr = _dtypes.array_on(dests[s.name], 0, s.dtype, s.shape)
            out[s.name] = _dtypes.as_torch(arr, s.dtype) if as_torch else arr
        return out

    def _destinations(self, r: SampleRef, into: Optional[Mapping[str, Any]]) -> Dict[str, memoryview]:
        if into is not None and not isinstance(into, Mapping):
            raise _bad("into must be a dict of tensor name -> buffer")
        names = {s.name for s in r.specs}
        for name in (into or {}):
            if name not in names:
                raise _bad(f"into names '{name}', which sample '{r.sample_id}' does not hold")
        dests: Dict[str, memoryview] = {}
        for s in r.specs:
            given = None if into is None else into.get(s.name)
            if given is None:
                dests[s.name] = memoryview(bytearray(s.byte_length))
                continue
            if type(given).__module__.startswith("torch") and hasattr(given, "untyped_storage"):
                if given.device.type != "cpu" or not given.is_contiguous():
                    raise _bad(f"into['{s.name}'] must be a contiguous CPU tensor")
                import torch

                given = given.detach().reshape(-1).view(torch.uint8).numpy()
            mv = _writable_bytes(s.name, given)
            if mv.nbytes > s.byte_length:
                raise tc_error(
                    "TC_ERR_SHORT_READ",
                    f"tensor '{s.name}' has {s.byte_length} bytes; into['{s.name}'] holds {mv.nbytes} "
                    "and would not be filled",
                    {"tensor": s.name, "expected": s.byte_length, "actual": mv.nbytes},
                )
            if mv.nbytes < s.byte_length:
                raise tc_error(
                    "TC_ERR_DESTINATION_SIZE",
                    f"tensor '{s.name}' has {s.byte_length} bytes; into['{s.name}'] holds only {mv.nbytes}",
                    {"tensor": s.name, "expected": s.byte_length, "actual": mv.nbytes},
                )
            dests[s.name] = mv
        return dests

    def _released(self, r: SampleRef) -> TensorcastError:
        return tc_error(
            "TC_ERR_NOT_FOUND",
            f"sample '{r.sample_id}' generation {r.generation} was released",
            {"storeId": self.store_id, "sampleId": r.sample_id, "generation": r.generation, "reason": "released"},
        )

    # -- release, gc, drain ------------------------------------------------------------------------------------

    def release(self, ref: RefLike, force: bool = False) -> None:
        """Releases a sample: at once for this store (get of the ref fails), then its objects and manifest are
        deleted on the daemon; a delete that fails is kept for gc(). With retain_on_release the bytes stay (and the
        ref stays readable) until drain() or ``force=True``."""
        self._check_open()
        r = self._ref(ref)
        peer = self._peer_of(r)
        if peer is not None:
            return self._on_peer(peer, lambda: peer.release(r, force=force))
        if self.retain_on_release and not force:
            with self._lock:
                if r.identity not in self._frees.tombs:
                    self._frees.retained[r.identity] = r
            return
        self._free_ref(r)

    def _free_ref(self, r: SampleRef) -> int:
        keys = r.object_keys()
        mkey = manifest_key(self.store_id, r.sample_id)
        try:
            current = self._read_manifest(r.sample_id)
        except TensorcastError:
            current = None
        if (current is not None and current[0]["generation"] == r.generation
                and not _same_fences(current[0].get("fences"), r.fences)):
            with self._lock:
                self._frees.tombstone(r, [])
            return 0  # put again at the same generation since: nothing here is ours to free
        with self._lock:
            tomb = self._frees.tombstone(r, [*keys, mkey])
        frees = [_Free("manifest", mkey, tomb=tomb, sample_id=r.sample_id, generation=r.generation, fences=r.fences)]
        frees += [_Free("object", k, None if r.fences is None else r.fences[i], tomb) for i, k in enumerate(keys)]
        return self._free_keys(frees)

    def _retire(self, old: SampleRef) -> None:
        keys = old.object_keys()
        with self._lock:
            tomb = self._frees.tombstone(old, keys)
        self._free_keys([_Free("object", k, None, tomb) for k in keys])

    def _free_keys(self, frees: Sequence[_Free]) -> int:
        freed = 0
        to_delete: List[_Free] = []
        fenced = [f for f in frees if f.kind == "object" and f.version is not None]
        versions: Optional[Dict[str, Any]] = None
        if fenced:
            try:
                versions = {}
                for prefix in {f.key[: f.key.index("/", len(self.store_id) + 1) + 1] for f in fenced}:
                    for o in self._list(prefix):
                        versions[o["key"]] = o["version"]
            except TensorcastError as e:
                versions = None
                with self._lock:
                    for f in fenced:
                        self._frees.failed(f, e)
        for f in frees:
            if f.kind == "object":
                if f.version is None:
                    to_delete.append(f)
                elif versions is None:
                    continue
                elif versions.get(f.key) == f.version:
                    to_delete.append(f)
                else:
                    with self._lock:
                        self._frees.freed(f)  # gone already, or another put's object now
                continue
            try:
                current = self._read_manifest(f.sample_id)
                if (current is not None and current[0]["generation"] == f.generation
                        and _same_fences(current[0].get("fences"), f.fences)):
                    err = self._delete([f.key])[0]
                    if err is not None:
                        raise err
                    freed += 1
                with self._lock:
                    self._frees.freed(f)
            except TensorcastError as e:
                with self._lock:
                    self._frees.failed(f, e)
        if not to_delete:
            return freed
        try:
            results = self._delete([f.key for f in to_delete])
        except TensorcastError as e:
            with self._lock:
                for f in to_delete:
                    self._frees.failed(f, e)
            return freed
        with self._lock:
            for f, err in zip(to_delete, results):
                if err is None:
                    self._frees.freed(f)
                    freed += 1
                else:
                    self._frees.failed(f, err)
        return freed

    def gc(self) -> Dict[str, Any]:
        """Retries the pending frees once: ``{"freed", "expired": 0, "failed": [{key, code, message}]}`` (the
        daemon expires objects itself: max_hold_age_ms is its TTL). Never raises for a free that fails."""
        self._check_open()
        with self._lock:
            pending = list(self._frees.pending.values())
        freed = self._free_keys(pending)
        failed = self._failures()
        for peer in self._peer_list():
            r = peer.gc()
            freed += r["freed"]
            failed.extend(r["failed"])
        return {"freed": freed, "expired": 0, "failed": failed}

    def drain(self) -> Dict[str, Any]:
        """Shutdown: frees every retained sample and retries every pending free (a few passes):
        ``{"freed", "retainedFreed", "failed"}``. The store stays usable."""
        self._check_open()
        with self._lock:
            retained = list(self._frees.retained.values())
        freed = 0
        for r in retained:
            freed += self._free_ref(r)
        for _ in range(_DRAIN_PASSES):
            with self._lock:
                pending = list(self._frees.pending.values())
            if not pending:
                break
            freed += self._free_keys(pending)
        retained_freed = len(retained)
        failed = self._failures()
        for peer in self._peer_list():
            r = peer.drain()
            freed += r["freed"]
            retained_freed += r["retainedFreed"]
            failed.extend(r["failed"])
        return {"freed": freed, "retainedFreed": retained_freed, "failed": failed}

    def _peer_list(self) -> List["FeatureStore"]:
        with self._lock:
            return list(self._peers.values())

    def _failures(self) -> List[Dict[str, str]]:
        with self._lock:
            return [
                {
                    "key": f.key,
                    "code": f.last_error.code if f.last_error else "TC_ERR_INTERNAL",
                    "message": f.last_error.message if f.last_error else "not freed yet",
                }
                for f in self._frees.pending.values()
            ]

    # -- latest, stat, close -----------------------------------------------------------------------------------

    def latest(self, sample_id: str) -> Optional[SampleRef]:
        """The ref of a sample's current generation, or None when it has none."""
        self._check_open()
        check_sample_id(sample_id)
        current = self._read_manifest(sample_id)
        if current is None:
            return None
        r = self._ref_from_manifest(current[0])
        return SampleRef(r.store_id, r.sample_id, r.generation, r.specs, r.layout, r.fences, self.daemon_id)

    def stat(self) -> Dict[str, Any]:
        """The TypeScript FeatureStats: storeId, backend, samples, generations, objects, residentBytes,
        maxResidentBytes, pendingFrees, backendPendingFrees, tombstones, retained."""
        self._check_open()
        objects = self._list(f"{self.store_id}/")
        try:
            usage = self._control("GET", f"/v1/namespaces/{segment(self.store_id)}")
        except TensorcastError as e:
            if e.code != "TC_ERR_NOT_FOUND":
                raise
            usage = None
        samples = 0
        generations = set()
        listed = 0
        for o in objects:
            listed += o["size"]
            p = parse_sample_key(self.store_id, o["key"])
            if p is None:
                continue
            if p[1] == "manifest":
                samples += 1
            else:
                generations.add((p[0], p[2]))
        with self._lock:
            counts = (len(self._frees.pending), len(self._frees.tombs), len(self._frees.retained))
        return {
            "storeId": self.store_id,
            "backend": "daemon",
            "samples": samples,
            "generations": len(generations),
            "objects": len(objects),
            "residentBytes": usage["residentBytes"] if usage else listed,
            "maxResidentBytes": usage.get("maxBytes") if usage else self.max_resident_bytes,
            "pendingFrees": counts[0],
            "backendPendingFrees": usage.get("pendingFrees") if usage else None,
            "tombstones": counts[1],
            "retained": counts[2],
        }

    def close(self) -> None:
        """The store is unusable afterwards (TC_ERR_ABORTED); its threads are joined and its connections to other
        daemons of the cluster closed; the client stays open."""
        self._closed = True
        with self._lock:
            pool, self._pool = self._pool, None
            peers, self._peers = list(self._peers.values()), {}
        if pool is not None:
            pool.shutdown(wait=True)
        for peer in peers:
            peer._close_with_client()

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise tc_error("TC_ERR_ABORTED", f"feature store '{self.store_id}' is closed")

    def _ref(self, ref: RefLike) -> SampleRef:
        if isinstance(ref, (str, bytes)):
            r = SampleRef.from_json(ref)
        elif isinstance(ref, SampleRef):
            r = SampleRef.from_dict(ref.to_dict())
        else:
            r = SampleRef.from_dict(ref)
        if r.store_id != self.store_id:
            raise _bad(f"sample ref of store '{r.store_id}' given to store '{self.store_id}'")
        return r

    def _peer_of(self, r: SampleRef) -> Optional["FeatureStore"]:
        """The store on the daemon that holds ``r`` when that is another daemon of the cluster, else None.
        Raises TC_ERR_UNAVAILABLE when the cluster lists no live daemon of that id or it does not answer."""
        daemon_id = r.daemon_id
        if daemon_id is None or daemon_id == self.daemon_id:
            return None
        with self._lock:
            peer = self._peers.get(daemon_id)
        if peer is not None:
            return peer
        cluster = self.client.http.json("GET", "/v1/cluster")
        d = next((x for x in cluster.get("daemons", []) if x.get("daemonId") == daemon_id), None)
        if d is None or not d.get("alive"):
            why = "unknown_daemon" if d is None else "not_alive"
            raise tc_error(
                "TC_ERR_UNAVAILABLE",
                f"daemon '{daemon_id}' is not in the cluster of daemon '{self.daemon_id}'"
                if d is None
                else f"daemon '{daemon_id}' is not alive (last heartbeat {d.get('heartbeatAt')})",
                {"daemonId": daemon_id, "reason": why},
            )
        from .client import Client

        peer_client = Client(d["controlUrl"], self.client.token, connections=self.client.connections,
                             timeout=self.client.timeout)
        try:
            peer_client.info()
        except TensorcastError as e:
            peer_client.close()
            raise tc_error("TC_ERR_UNAVAILABLE", f"daemon '{daemon_id}' at {d['controlUrl']}: {e.message}",
                           {"daemonId": daemon_id, "reason": "unreachable"}) from e
        peer = FeatureStore(peer_client, self.store_id, **self._options)
        with self._lock:
            if daemon_id in self._peers:  # another thread was first
                other = self._peers[daemon_id]
            else:
                self._peers[daemon_id] = peer
                return peer
        peer_client.close()
        return other

    def _on_peer(self, peer: "FeatureStore", op: Any) -> Any:
        """Runs ``op`` on a peer store; a peer whose connection failed is forgotten (it may have moved)."""
        try:
            return op()
        except TensorcastError as e:
            if e.code == "TC_ERR_UNAVAILABLE":
                with self._lock:
                    gone = [k for k, v in self._peers.items() if v is peer]
                    for k in gone:
                        del self._peers[k]
                if gone:
                    peer._close_with_client()
            raise

    def _close_with_client(self) -> None:
        self.close()
        self.client.close()


def _same_fences(a: Optional[Sequence[Any]], b: Optional[Sequence[Any]]) -> bool:
    if a is None or b is None:
        return True
    return list(a) == list(b)


def _decode_manifest(data: bytes, key: str) -> Dict[str, Any]:
    def bad(why: str) -> TensorcastError:
        details = {"key": key, "reason": "bad_manifest"}
        return tc_error("TC_ERR_BACKEND", f"{key} is not a feature-store manifest: {why}", details)

    try:
        m = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise bad("not JSON") from e
    if not isinstance(m, dict):
        raise bad("not an object")
    if m.get("v") != 1 or isinstance(m.get("v"), bool):
        raise bad(f"unknown version {json.dumps(m.get('v'))}")
    for k in m:
        if k not in ("v", "sampleId", "generation", "layout", "specs", "fences", "createdAt"):
            raise bad(f"unknown field '{k}'")
    try:
        check_sample_id(m.get("sampleId"))
        _check_specs(m.get("specs"), "manifest")
    except TensorcastError as e:
        raise bad(e.message) from e
    if not _safe_int(m.get("generation")) or m["generation"] < 0:
        raise bad("bad generation")
    if m.get("layout") not in ("per-tensor", "packed"):
        raise bad("bad layout")
    if not _safe_int(m.get("createdAt")) or m["createdAt"] < 0:
        raise bad("bad createdAt")
    if m.get("fences") is not None:
        want = 1 if m["layout"] == "packed" else len(m["specs"])
        if not isinstance(m["fences"], list) or len(m["fences"]) != want or not all(_is_fence(f) for f in m["fences"]):
            raise bad("bad fences")
    return m
