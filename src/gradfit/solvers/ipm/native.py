"""The compiled Frisch–Newton loop (``_fnb.c``), when the install built it; :func:`.lp.frisch_newton`
runs its torch version otherwise (or with ``GRADFIT_NO_NATIVE=1``, as for the moment kernel)."""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import os

import torch
from torch import Tensor

MAX_WIDTH = 64  # the q x q work is O(q^3) per iteration in plain loops: wider problems stay in torch
_P = ctypes.POINTER(ctypes.c_double)


@functools.lru_cache(maxsize=None)
def _load():
    if os.environ.get("GRADFIT_NO_NATIVE", "") not in ("", "0"):
        return None
    try:  # the built extension's file, loaded as a plain shared library
        spec = importlib.util.find_spec("gradfit.solvers.ipm._fnb")
        if spec is None or not spec.origin:
            return None
        lib = ctypes.CDLL(spec.origin)  # CDLL, not PyDLL: the GIL is released during the call
    except (ImportError, OSError):
        return None
    fn = lib.gradfit_fnb
    fn.argtypes = [ctypes.c_long, ctypes.c_int, _P, _P, _P, ctypes.c_double, ctypes.c_double, ctypes.c_int, _P, _P,
                   ctypes.POINTER(ctypes.c_int), _P]
    fn.restype = ctypes.c_int
    return fn


def usable(Z) -> bool:
    """Whether ``Z`` is rows the compiled loop takes: a dense float64 CPU tensor, at most MAX_WIDTH wide."""
    return (isinstance(Z, Tensor) and Z.dtype == torch.float64 and Z.device.type == "cpu" and Z.ndim == 2
            and 0 < Z.shape[1] <= MAX_WIDTH and Z.shape[0] > 0 and not Z.requires_grad and _load() is not None)


def _ptr(t: Tensor):
    return ctypes.cast(t.data_ptr(), _P)


def fnb(Z: Tensor, y: Tensor, u: Tensor, tau: float, tol: float, max_iter: int):
    """``(beta, dual, iterations, gap, converged)`` from the compiled loop, or None when it could not
    factor a normal matrix (the torch version then takes over, with its least-squares fallback)."""
    Z, y, u = Z.contiguous(), y.contiguous().to(torch.float64), u.contiguous().to(torch.float64)
    n, q = Z.shape
    beta = torch.empty(q, dtype=torch.float64)
    dual = torch.empty(n, dtype=torch.float64)
    iters, gap = ctypes.c_int(0), ctypes.c_double(0.0)
    status = _load()(n, q, _ptr(Z), _ptr(y), _ptr(u), float(tau), float(tol), int(max_iter), _ptr(beta),
                     _ptr(dual), ctypes.byref(iters), ctypes.byref(gap))
    if status < 0:
        return None
    return beta, dual, int(iters.value), float(gap.value), status == 0
