"""The compiled moment kernel (``_kernels.c``), when the install built it.

The extension is optional (``setup.py``): without a C compiler gradfit installs all the same and
:class:`gradfit.numerics.moments.Moments` uses numpy and torch instead. Set ``GRADFIT_NO_NATIVE=1`` to
use that path even where the kernel was built (to compare the two, as ``bench/bigfile.py`` does).
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
from typing import Sequence

import numpy as np

MAX_WIDTH = 48  # B'B widths (features + 2) up to which the kernel beats the numpy/torch path (measured to 42)
_P = ctypes.POINTER(ctypes.c_double)


def native_library(module: str) -> ctypes.CDLL | None:
    """The built C extension ``module`` (a dotted name) loaded as a plain shared library, or None
    where it was not built or ``GRADFIT_NO_NATIVE`` is set."""
    if os.environ.get("GRADFIT_NO_NATIVE", "") not in ("", "0"):
        return None
    try:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin:
            return None
        return ctypes.CDLL(spec.origin)  # CDLL, not PyDLL: the GIL is released during the call
    except (ImportError, OSError):
        return None


def _load():
    lib = native_library("gradfit.numerics._kernels")
    if lib is None:
        return None
    fn = lib.gradfit_moments
    fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, _P, _P, ctypes.c_long, _P, _P]
    fn.restype = ctypes.c_int
    return fn, lib.gradfit_tile_rows()


_moments, _tile_rows = _load() or (None, 0)


def available(width: int) -> bool:
    """Whether :func:`moment_block` runs compiled for ``B'B`` of this width."""
    return _moments is not None and width <= MAX_WIDTH


def moment_block(cols: Sequence[np.ndarray], shift: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """``B'B`` (full, symmetric) of one block of columns ``cols = [x_1, ..., x_p, y]`` (1-D, equal
    lengths), ``B = sqrt(s) [x_1 - c_1, ..., x_p - c_p, 1, y - c_y]`` with ``c = shift`` (see
    ``_kernels.c``); the fast path of :meth:`gradfit.numerics.moments.Moments.add_columns`."""
    p = len(cols) - 1
    cols = [np.ascontiguousarray(c, dtype=np.float64) for c in cols]
    shift = np.ascontiguousarray(shift, dtype=np.float64)
    if weight is not None:
        weight = np.ascontiguousarray(weight, dtype=np.float64)
    M = np.zeros((p + 2, p + 2))
    tile = np.empty(((p + 2 + 3) // 4 * 4) * _tile_rows)  # the kernel's scratch: a tile of B
    ptrs = (ctypes.c_void_p * len(cols))(*[c.ctypes.data for c in cols])
    w = None if weight is None else weight.ctypes.data_as(_P)
    if _moments(ptrs, p, shift.ctypes.data_as(_P), w, len(cols[0]), M.ctypes.data_as(_P), tile.ctypes.data_as(_P)):
        raise ValueError(f"the moment kernel refused p={p}")
    upper = np.triu(M)  # the kernel fills the upper triangle
    return upper + np.triu(upper, 1).T
