"""The compiled Frisch–Newton loop (``_fnb.c``) and the streamed passes' kernels (``_passes.c``), when the
install built them; :func:`.lp.frisch_newton` and the passes run their torch versions otherwise (or with
``GRADFIT_NO_NATIVE=1``, as for the moment kernel)."""
from __future__ import annotations

import ctypes
import functools
import os

import numpy as np
import torch
from torch import Tensor

from gradfit.numerics.kernel import native_library

MAX_WIDTH = 64  # the q x q work is O(q^3) per iteration in plain loops: wider problems stay in torch
_P = ctypes.POINTER(ctypes.c_double)


@functools.lru_cache(maxsize=None)
def _lib():
    return native_library("gradfit.solvers.ipm._fnb")


@functools.lru_cache(maxsize=None)
def _load():
    lib = _lib()
    if lib is None:
        return None
    fn = lib.gradfit_fnb
    fn.argtypes = [ctypes.c_long, ctypes.c_int, _P, _P, _P, ctypes.c_double, ctypes.c_double, ctypes.c_int,
                   ctypes.c_int, _P, _P, ctypes.POINTER(ctypes.c_int), _P]
    fn.restype = ctypes.c_int
    return fn


def usable(Z) -> bool:
    """Whether ``Z`` is rows the compiled loop takes: a dense float64 CPU tensor, at most MAX_WIDTH wide."""
    return (isinstance(Z, Tensor) and Z.dtype == torch.float64 and Z.device.type == "cpu" and Z.ndim == 2
            and 0 < Z.shape[1] <= MAX_WIDTH and Z.shape[0] > 0 and not Z.requires_grad and _load() is not None)


def _ptr(t: Tensor):
    return ctypes.cast(t.data_ptr(), _P)


ROWS_PER_THREAD = 1 << 13  # below this a thread costs more than its share of the rows saves (measured)
MAX_THREADS = 8  # the loop is bound by memory bandwidth long before this


def cores() -> int:
    """The cores this process may use: ``OMP_NUM_THREADS`` when set (gradfit's launcher and torchrun set it
    to the machine's cores over the processes), else the CPUs it is allowed to run on."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_for(n: int) -> int:
    """Threads the compiled loop uses for n rows: one per ROWS_PER_THREAD rows, at most :func:`cores`.
    (Not torch's setting: the interior point runs its torch ops on one thread, and the compiled loop's
    sums do not depend on its thread count at all, see ``_fnb.c``.)"""
    return max(1, min(cores(), MAX_THREADS, n // ROWS_PER_THREAD))


def fnb(Z: Tensor, y: Tensor, u: Tensor, tau: float, tol: float, max_iter: int, threads: int | None = None):
    """``(beta, dual, iterations, gap, converged)`` from the compiled loop, or None when it could not
    factor a normal matrix (the torch version then takes over, with its least-squares fallback).
    ``threads``: None for :func:`threads_for`; the answer is the same bit for bit for any number."""
    Z, y, u = Z.contiguous(), y.contiguous().to(torch.float64), u.contiguous().to(torch.float64)
    n, q = Z.shape
    threads = threads_for(n) if threads is None else max(1, int(threads))
    beta = torch.empty(q, dtype=torch.float64)
    dual = torch.empty(n, dtype=torch.float64)
    iters, gap = ctypes.c_int(0), ctypes.c_double(0.0)
    status = _load()(n, q, _ptr(Z), _ptr(y), _ptr(u), float(tau), float(tol), int(max_iter), threads, _ptr(beta),
                     _ptr(dual), ctypes.byref(iters), ctypes.byref(gap))
    if status < 0:
        return None
    return beta, dual, int(iters.value), float(gap.value), status == 0


def _load_pass(name: str, argtypes):
    fn = getattr(_lib(), name)
    fn.argtypes, fn.restype = argtypes, ctypes.c_long
    return fn


_L = ctypes.POINTER(ctypes.c_long)
_B = ctypes.POINTER(ctypes.c_byte)
_V = ctypes.POINTER(ctypes.c_void_p)


def pass_width(want: int = 0) -> int:
    """The float64 lanes per vector of the compiled passes: 8 where the CPU has AVX-512, else 4; ``want``
    4 or 8 sets it (8 only where the CPU has it), 0 only asks."""
    fn = _lib().gradfit_pass_width
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn(int(want))


def rows_usable(X) -> bool:
    """Whether the compiled passes take these rows: a float64 CPU matrix (any strides) or a list of
    contiguous float64 numpy columns."""
    if _load() is None:
        return False
    if isinstance(X, (list, tuple)):
        return all(isinstance(c, np.ndarray) and c.dtype == np.float64 and c.flags.c_contiguous for c in X)
    return isinstance(X, Tensor) and X.dtype == torch.float64 and X.device.type == "cpu" and X.ndim == 2


def _columns(X):
    """(column pointers, row stride, n, p) of a matrix or a list of columns."""
    if isinstance(X, (list, tuple)):
        return (ctypes.c_void_p * max(len(X), 1))(*[c.ctypes.data for c in X]), 1, (len(X[0]) if X else 0), len(X)
    n, p = X.shape
    base, (s0, s1) = X.data_ptr(), X.stride()
    return (ctypes.c_void_p * max(p, 1))(*[base + 8 * j * s1 for j in range(p)]), s0, n, p


def _vec(v):
    """A contiguous float64 tensor of a vector (tensor or numpy), and its pointer; None for None."""
    if v is None:
        return None, None
    t = torch.from_numpy(v) if isinstance(v, np.ndarray) else v
    t = t.to(torch.float64).contiguous()
    return t, _ptr(t)


def classify(X, y, u, A: Tensor, c: Tensor, lo: float, hi: float, cap: int,
             lo2: float | None = None, hi2: float | None = None, near_cap: int = 0, side: bool = False,
             stats: Tensor | None = None, center=None, tau: float | None = None, rows: bool = False):
    """The classifying pass of ``_passes.c`` over the rows of X (a matrix or a list of columns):
    ``(globs (2, p + 2), middle row indices or None past cap, side (int8 per row) or None, near row
    indices or None past near_cap)``. Rows of zero weight are skipped.

    With ``stats`` (a float64 tensor of ``3 + 4p``, zeros to start), the same sweep adds the sampling
    pass's totals of these rows to it in place: ``[rows of weight > 0, sum u, sum u rho_tau(y), column
    min (p), column max (p), sum u (x - center) (p), sum u (x - center)^2 (p)]`` (min / max over the
    rows of weight > 0, NaN where such a row holds a NaN; ``center`` None: zeros; ``tau`` required).

    With ``rows``, two more outputs: the middle rows themselves as ``[x, y, u]`` (k x (p + 2)) and the
    near rows as ``[x, y, u, side]`` (None past their caps), copied while each tile is in cache.
    """
    fn = _load_pass("gradfit_classify", [ctypes.c_long, ctypes.c_int, ctypes.c_int, _V, ctypes.c_long, _P, _P, _P,
                                         _P, ctypes.c_double, ctypes.c_double, ctypes.c_double, ctypes.c_double, _P,
                                         _B, _L, ctypes.c_long, _L, ctypes.c_long, _L, ctypes.c_double, _P, _P, _P,
                                         _P])
    cols, rs, n, p = _columns(X)
    k = A.shape[-1] if A.ndim == 2 else 1
    A, c = A.to(torch.float64).reshape(p, k).contiguous(), c.to(torch.float64).reshape(k).contiguous()
    if stats is not None:
        if tau is None:
            raise ValueError("classify: stats needs tau")
        if not (isinstance(stats, Tensor) and stats.dtype == torch.float64 and stats.device.type == "cpu"
                and stats.is_contiguous() and stats.numel() == 3 + 4 * p):
            raise ValueError(f"classify: stats must be a contiguous float64 CPU tensor of {3 + 4 * p} values")
    (y, yp), (u, up), (center, cp) = _vec(y), _vec(u), _vec(center)
    if center is not None and center.numel() != p:
        raise ValueError(f"classify: center must hold {p} values, not {center.numel()}")
    G = torch.zeros(2, p + 2, dtype=torch.float64)
    mid = torch.empty(max(min(cap, n), 1), dtype=torch.long)
    sides = torch.empty(n if side else 0, dtype=torch.int8)
    want_near = lo2 is not None
    near = torch.empty(max(min(near_cap, n), 1) if want_near else 1, dtype=torch.long)
    n_near = ctypes.c_long(0)
    mid_rows = torch.empty(mid.numel() if rows else 0, p + 2, dtype=torch.float64)
    near_rows = torch.empty(near.numel() if rows and want_near else 0, p + 3, dtype=torch.float64)
    count = fn(n, p, k, cols, rs, yp, up, _ptr(A), _ptr(c), float(lo), float(hi),
               float(lo2 if want_near else lo), float(hi2 if want_near else hi), _ptr(G),
               ctypes.cast(sides.data_ptr(), _B) if side else None, ctypes.cast(mid.data_ptr(), _L), int(cap),
               ctypes.cast(near.data_ptr(), _L) if want_near else None, int(near_cap), ctypes.byref(n_near),
               float(0.5 if tau is None else tau), cp, None if stats is None else _ptr(stats),
               _ptr(mid_rows) if rows else None, _ptr(near_rows) if rows and want_near else None)
    if count == -1:
        raise ValueError(f"classify: the compiled pass takes 1 to 128 outputs, not {k}")
    if count < 0:
        raise MemoryError("classify: the compiled pass could not allocate its buffers")
    mid_out = mid[:count] if count <= cap else None
    near_out = (near[:n_near.value] if n_near.value <= near_cap else None) if want_near else None
    if not rows:
        return G, mid_out, sides if side else None, near_out
    kept = None if mid_out is None else mid_rows[:count].clone()  # clone: not the whole block's buffer
    held = None if near_out is None else near_rows[:n_near.value].clone()
    return G, mid_out, sides if side else None, near_out, kept, held


def check(X, y, u, a: Tensor, c: float, tau: float, side: Tensor | None, cap: int, residual: bool = False):
    """The check of a fit ``y - X a - c`` over the rows of X: ``(sum u rho_tau(r), flipped globbed row
    indices or None past cap, r or None)``."""
    fn = _load_pass("gradfit_check", [ctypes.c_long, ctypes.c_int, _V, ctypes.c_long, _P, _P, _P, ctypes.c_double,
                                      ctypes.c_double, _B, _P, _P, _L, ctypes.c_long])
    cols, rs, n, p = _columns(X)
    a = a.to(torch.float64).contiguous()
    (y, yp), (u, up) = _vec(y), _vec(u)
    total = ctypes.c_double(0.0)
    r = torch.empty(n if residual else 0, dtype=torch.float64)
    bad = torch.empty(max(min(cap, n), 1), dtype=torch.long)
    count = fn(n, p, cols, rs, yp, up, _ptr(a), float(c), float(tau),
               None if side is None else ctypes.cast(side.data_ptr(), _B), ctypes.byref(total),
               _ptr(r) if residual else None, ctypes.cast(bad.data_ptr(), _L), int(cap))
    if count < 0:
        raise MemoryError("check: the compiled pass could not allocate its buffers")
    return total.value, (bad[:count] if count <= cap else None), (r if residual else None)


def stats(X, y, u, tau: float, keys: Tensor, t: float, cmin: Tensor, cmax: Tensor, sums: Tensor, cap: int):
    """The sampling pass over one block: updates ``cmin``, ``cmax`` and ``sums`` = [rows, sum u,
    sum u rho_tau(y)] in place; returns the indices of the rows with ``key < t`` (None past cap)."""
    fn = _load_pass("gradfit_stats", [ctypes.c_long, ctypes.c_int, _V, ctypes.c_long, _P, _P, ctypes.c_double, _P,
                                      ctypes.c_double, _P, _P, _P, _L, ctypes.c_long])
    cols, rs, n, p = _columns(X)
    (y, yp), (u, up) = _vec(y), _vec(u)
    idx = torch.empty(max(min(cap, n), 1), dtype=torch.long)
    count = fn(n, p, cols, rs, yp, up, float(tau), _ptr(keys), float(t), _ptr(cmin), _ptr(cmax), _ptr(sums),
               ctypes.cast(idx.data_ptr(), _L), int(cap))
    if count < 0:
        raise MemoryError("stats: the compiled pass could not allocate its buffers")
    return idx[:count] if count <= cap else None


def gather(X, y, u, idx: Tensor) -> Tensor:
    """The rows ``idx`` of a block (X a matrix or a list of columns) as ``[x, y, u]`` (float64, k x (p + 2);
    u None: ones), copied in one compiled loop."""
    fn = _load_pass("gradfit_gather", [ctypes.c_long, ctypes.c_int, _V, ctypes.c_long, _P, _P, _L, _P])
    cols, rs, n, p = _columns(X)
    (y, yp), (u, up) = _vec(y), _vec(u)
    idx = idx.to(torch.long).contiguous()
    out = torch.empty(idx.numel(), p + 2, dtype=torch.float64)
    if idx.numel():
        fn(idx.numel(), p, cols, rs, yp, up, ctypes.cast(idx.data_ptr(), _L), _ptr(out))
    return out

