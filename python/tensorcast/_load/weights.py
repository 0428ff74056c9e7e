"""``client.iter_weights``: ``(name, tensor)`` pairs in plan order as they arrive, with bounded memory.

This is the iterator shape the engines' model loaders consume: in vLLM and SGLang a model class's
``load_weights(weights: Iterable[tuple[str, torch.Tensor]])`` walks ``(checkpoint name, tensor)`` pairs and
copies each into its parameter through the parameter's ``weight_loader``. An engine's custom loader plugs
tensorcast in by handing the model this iterator instead of one over safetensors files::

    import tensorcast

    class TensorcastLoader:  # e.g. a vLLM BaseModelLoader subclass / an SGLang custom load format
        def load_weights(self, model, model_config):
            with tensorcast.Client() as client:
                model.load_weights(client.iter_weights("model:llama3-8b", tp=(tp_size, tp_rank)))

The names are the checkpoint's (``model.layers.0.self_attn.q_proj.weight``: the engine's
``stacked_params_mapping`` still routes q/k/v and gate/up into its fused ``qkv_proj`` / ``gate_up_proj``
parameters), but each tensor is already this rank's slice (a TP rank of size ``(tp_size, tp_rank)`` as vLLM
slices it: column-parallel dim 0, row-parallel dim 1, KV heads replicated when tp > KV heads, the vocab
padded). So the engine's loader must not slice again: the stock per-parameter ``weight_loader`` narrows a
*full* checkpoint tensor by ``tp_rank``; with tensorcast the tensors are pre-sharded, as in vLLM's
``sharded_state`` load format, and are copied as they are: ``param.data.copy_(tensor)``, or for a fused
parameter into its shard, ``param.data.narrow(0, shard_offset, tensor.shape[0]).copy_(tensor)`` (offsets of
q/k/v and gate/up in the rank's fused parameter). A custom loader does that by installing such a
pass-through ``weight_loader`` on the parameters before calling ``model.load_weights``, or by walking the
iterator itself. Tensors of a view (``view=``) come the same way.

Memory bound, per transport:
- ``tcp``: the plan's output is read in windows of whole tensors of about ``max_in_flight_bytes / 4`` each,
  fetched ahead by a background thread into fresh buffers; at most ``max_in_flight_bytes`` are fetched (or
  being fetched) but not yet handed over (a tensor counts until the consumer asks for the next one after
  its window); a tensor larger than the bound is fetched alone, with nothing else in flight. Each yielded
  tensor is the consumer's to keep (no later read writes into it).
- ``shm`` / ``files``: the tensors are views of the mapped file (no copy, no bound needed: the pages are the
  page cache's); the shm lease is held while the iterator or any yielded tensor lives.

Closing the iterator (``.close()``, the end of a ``with client.iter_weights(...) as it:`` block, or dropping
it, which is what a ``break`` out of ``for name, t in client.iter_weights(...):`` does in CPython) stops the
prefetch thread (a window being read finishes first, bounded by the window size), drops windows not yet
consumed and releases the result's hold on the lease (tensors already yielded keep theirs).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .._dtypes import as_torch as _as_torch
from .._dtypes import import_torch
from .._args import check_timeout
from .._plan import Plan, PlannedTensor, request_plan
from ..errors import tc_error
from . import check_transport, choose_transport, load, mapped, new_buffer

_DONE = object()


def plan_windows(tensors: Sequence[PlannedTensor], window_bytes: int) -> List[Tuple[List[PlannedTensor], int, int]]:
    """Groups tensors (in output order) into windows of at most ``window_bytes`` of output each; a tensor
    larger than that gets a window of its own. Each window: (tensors, start, end)."""
    windows: List[Tuple[List[PlannedTensor], int, int]] = []
    group: List[PlannedTensor] = []

    def flush() -> None:
        if group:
            last = group[-1]
            windows.append((list(group), group[0].offset, last.offset + last.byte_length))
            group.clear()

    for t in tensors:
        if group and t.offset + t.byte_length - group[0].offset > window_bytes:
            flush()
        group.append(t)
    flush()
    return windows


class _Budget:
    """Bytes fetched but not handed over, at most ``limit`` (a window larger than it waits for zero)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self.cond = threading.Condition()
        self.stopped = False

    def acquire(self, n: int) -> bool:
        with self.cond:
            while not self.stopped and self.used > 0 and self.used + n > self.limit:
                self.cond.wait()
            if self.stopped:
                return False
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def release(self, n: int) -> None:
        with self.cond:
            self.used -= n
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


def iter_weights(
    client: Any,
    key: str,
    tp: Optional[Tuple[int, int]] = None,
    view: Optional[Dict[str, Any]] = None,
    tensors: Optional[Sequence[str]] = None,
    transport: str = "auto",
    as_torch: bool = True,
    max_in_flight_bytes: int = 256 << 20,
    timeout: Optional[float] = None,
) -> "WeightIterator":
    """Yields ``(name, tensor)`` in plan order (see the module docstring).

    Arguments are checked, and the plan requested, on the call (not on the first ``next()``), so bad input
    raises at once.

    :raises TensorcastError: as ``client.load``; TC_ERR_INVALID_ARGUMENT for ``max_in_flight_bytes`` < 1.
    """
    check_transport(transport)
    check_timeout(timeout)
    if isinstance(max_in_flight_bytes, bool) or not isinstance(max_in_flight_bytes, int) or max_in_flight_bytes < 1:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"max_in_flight_bytes must be a positive integer, got {max_in_flight_bytes!r}")
    if as_torch:
        import_torch()
    chosen = choose_transport(client, transport)
    if chosen in ("shm", "files"):
        result = load(client, key, tp=tp, view=view, tensors=tensors, transport=chosen, as_torch=as_torch, timeout=timeout)
        return WeightIterator(chosen, result.plan, lambda peak: _mapped(result))
    plan = request_plan(client.http, key, tp=tp, view=view, tensors=tensors, timeout=timeout)
    return WeightIterator("tcp", plan, lambda peak: _streamed(peak, client, plan, as_torch, max_in_flight_bytes, timeout))


class _Peak:
    """The most bytes fetched but not handed over (shared by an iterator and its generator, which must not
    reference the iterator: dropping the iterator has to close it at once, without a reference cycle)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class WeightIterator:
    """The iterator ``iter_weights`` returns: ``(name, tensor)`` pairs; ``close()`` (or ``break`` in a
    ``for`` loop over it, or dropping it) stops it. ``.plan`` is the load's plan, ``.transport`` the one
    taken, ``.peak_in_flight`` (tcp) the most bytes that were fetched but not handed over."""

    def __init__(self, transport: str, plan: Plan, make: Any) -> None:
        self.transport = transport
        self.plan = plan
        self._peak = _Peak()
        self._gen = make(self._peak)

    @property
    def peak_in_flight(self) -> int:
        return self._peak.value

    def __iter__(self) -> "WeightIterator":
        return self

    def __next__(self) -> Tuple[str, Any]:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()

    def __enter__(self) -> "WeightIterator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        gen = getattr(self, "_gen", None)
        if gen is not None:
            gen.close()


def _mapped(result: Any) -> Iterator[Tuple[str, Any]]:
    try:
        for name in list(result):
            yield name, result[name]
    finally:
        result.release()


class WeightStream:
    """The prefetching side of a tcp ``iter_weights``: a thread filling windows under a byte budget."""

    def __init__(self, client: Any, plan: Plan, as_torch: bool, max_in_flight: int, timeout: Optional[float]) -> None:
        self.client = client
        self.plan = plan
        self.as_torch = as_torch
        self.timeout = timeout
        self.windows = plan_windows(plan.tensors, max(1, max_in_flight // 4))
        self.budget = _Budget(max_in_flight)
        self.ready: "queue.Queue[Any]" = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="tensorcast-weights", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for tensors, start, end in self.windows:
                n = end - start
                if not self.budget.acquire(n):
                    return
                buf = new_buffer(n, self.as_torch)
                if n:
                    self.client.dataplane.load_into(self.plan.artifact_id, self.plan.view, self.plan.view_id, buf, start, end, timeout=self.timeout)
                self.ready.put((tensors, start, n, buf))
                if self.budget.stopped:
                    return
            self.ready.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            self.ready.put(e)

    def stop(self) -> None:
        self.budget.stop()
        self.thread.join()
        while not self.ready.empty():
            self.ready.get_nowait()


def _streamed(peak: _Peak, client: Any, plan: Plan, as_torch: bool, max_in_flight: int, timeout: Optional[float]) -> Iterator[Tuple[str, Any]]:
    stream = WeightStream(client, plan, as_torch, max_in_flight, timeout)
    held = 0
    try:
        while True:
            # The consumer asked for the tensor after the last window's: that window is handed over.
            if held:
                stream.budget.release(held)
                held = 0
            item = stream.ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            tensors, start, n, buf = item
            held = n
            peak.value = stream.budget.peak
            for t in tensors:
                a = mapped.tensor_on(buf, t.offset - start, t.dtype, t.shape)
                yield t.name, (_as_torch(a, t.dtype) if as_torch else a)
    finally:
        stream.stop()
