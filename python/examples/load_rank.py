"""Loads TP rank 1 of 2 of a model over each transport into torch tensors, streams rank 0 with iter_weights, and
shows an error code: the README's Python example. Usage: python3 load_rank.py [KEY] (a daemon on its defaults)."""

import sys

import tensorcast

key = sys.argv[1] if len(sys.argv) > 1 else "model:tiny:v1"
with tensorcast.Client() as client:  # TENSORCAST_DAEMON / TENSORCAST_TOKEN, else the CLI's defaults
    for transport in ("shm", "files", "tcp"):
        with client.load(key, tp=(2, 1), transport=transport, as_torch=True) as rank:
            name, tensor = next(iter(rank.items()))
            print(f"{transport:5} {len(rank)} tensors, {rank.stats.bytes} bytes; {name} {tensor.dtype} {tuple(tensor.shape)}")
    n = sum(1 for _name, _tensor in client.iter_weights(key, tp=(2, 0), transport="tcp"))  # an engine: param.copy_(tensor)
    print(f"iter_weights: {n} tensors of rank 0")
    try:
        client.load("model:missing:v1", tp=(2, 0))
    except tensorcast.NotFoundError as e:
        print(e.code)  # TC_ERR_NOT_FOUND, as the TypeScript SDK says
