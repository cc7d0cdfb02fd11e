"""Streaming helpers: read one batch ahead in a thread, and a bounded shuffle buffer."""
from __future__ import annotations

import os
import queue
import threading
from typing import Callable, Iterator, Sequence

import torch

from .batches import Batch


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


def read_ahead(make: Callable[[], Iterator], depth: int = 2) -> Iterator:
    """Iterate ``make()`` in a background thread, ``depth`` items ahead; its errors re-raise here.

    pyarrow and numpy release the GIL, so reading the next batch overlaps the caller's compute.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop, done = threading.Event(), object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in make():
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Raised(exc))

    thread = threading.Thread(target=work, name="gradfit-read", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()


def drain(buffer: list[Batch], batch_size: int, gen: torch.Generator, keep_tail: bool):
    """Shuffle the buffered rows, yield full batches; return the leftover rows (or yield them)."""
    X = torch.cat([b.X for b in buffer])
    y = torch.cat([b.y for b in buffer])
    w = torch.cat([b.weight for b in buffer]) if buffer[0].weight is not None else None
    perm = torch.randperm(len(y), generator=gen).to(X.device)
    n = len(y)
    stop = n - n % batch_size if keep_tail else n
    for s in range(0, stop, batch_size):
        idx = perm[s:s + batch_size]
        yield Batch(X[idx], y[idx], None if w is None else w[idx])
    if keep_tail and stop < n:
        idx = perm[stop:]
        return Batch(X[idx], y[idx], None if w is None else w[idx])
    return None


def estimate_rows(units: Sequence) -> int:
    """Rows of CSV units guessed from their sizes and the bytes per line of the first 64 KB."""
    total = 0
    for u in units:
        with open(u.path, "rb") as fh:
            head = fh.read(1 << 16)
        size = (u.byte_range[1] - u.byte_range[0]) if u.byte_range else os.path.getsize(u.path)
        total += int(size * max(head.count(b"\n"), 1) / max(len(head), 1))
    return max(total, 1)
