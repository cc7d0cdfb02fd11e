"""Streaming helpers: read ahead in a thread, a bounded shuffle buffer, and the release of the memory
a pass over a source freed."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
import threading
from collections import deque
from typing import Callable, Iterator, Sequence

import torch

from gradfit.data import storage
from gradfit.data.batches import Batch


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


def read_ahead(make: Callable[[], Iterator], limit: int = 2, cost: Callable[[object], int] = lambda item: 1) -> Iterator:
    """Iterate ``make()`` in a background thread while the caller works; its errors re-raise here.

    The thread stops reading while the items it has handed over but the caller has not taken cost
    ``limit`` or more (by default: two items ahead; ``cost`` may count bytes instead). pyarrow and
    numpy release the GIL, so reading ahead overlaps the caller's compute.
    """
    cond = threading.Condition()
    items: deque = deque()
    held, stop, done = 0, False, object()

    def put(item, c: int) -> bool:
        nonlocal held
        with cond:
            while held >= limit and not stop:
                cond.wait()
            if stop:
                return False
            items.append((item, c))
            held += c
            cond.notify_all()
            return True

    def work() -> None:
        try:
            for item in make():
                if not put(item, cost(item)):
                    return
            put(done, 0)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Raised(exc), 0)

    thread = threading.Thread(target=work, name="gradfit-read", daemon=True)
    thread.start()
    try:
        while True:
            with cond:
                while not items:
                    cond.wait()
                item, c = items.popleft()
                held -= c
                cond.notify_all()
            if item is done:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        with cond:
            stop = True
            cond.notify_all()


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
        with storage.open_binary(u.path) as fh:
            head = fh.read(1 << 16)
        size = (u.byte_range[1] - u.byte_range[0]) if u.byte_range else storage.size(u.path)
        total += int(size * max(head.count(b"\n"), 1) / max(len(head), 1))
    return max(total, 1)


@functools.lru_cache(maxsize=None)
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_memory() -> None:
    """Hand the memory freed by a pass back to the system. A pass frees hundreds of MB of decoded
    blocks that glibc's heap and pyarrow's pool keep for reuse; the LP and the next pass would hold
    them on top of their own peak (a 20M-row L1 fit: 0.45 GB of such memory after a pass)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
