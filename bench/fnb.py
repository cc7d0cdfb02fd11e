"""The interior point's LP alone (issue 15): the compiled Frisch-Newton loop (``_fnb.c``) on a reduced
problem of the streamed fit's shape (n rows x 10 features + intercept, tol 1e-12), its vertex polish,
and the torch loop of lp.py (the reference and fallback) as the peer, in one process, best of a few::

    PYTHONPATH=src python bench/fnb.py                    # 100k, 300k and 400k rows
    PYTHONPATH=src python bench/fnb.py --rows 1000000 --repeats 5
    PYTHONPATH=src python bench/fnb.py --against OLD/src/gradfit/solvers/ipm/_fnb.cpython-311-x86_64-linux-gnu.so

``--against`` times another build's compiled loop (before/after a change, alternating with this one;
one that predates the ``threads`` argument runs on one thread) and adds its seconds and the ratio.

Columns: seconds for the compiled loop with its default threads (``native.threads_for``) and with one,
its iterations, ms per iteration, the polish (``finish.vertex``) and the torch loop (at the first size
only: it is slow), and the objectives' relative difference between compiled and torch. torch runs on
one thread, as the ipm solver runs it (``base.single_threaded``); the compiled loop's threads are its own.
"""
from __future__ import annotations

import argparse
import ctypes
import time

import torch

from gradfit.solvers.ipm import finish, native
from gradfit.solvers.ipm.lp import frisch_newton_torch, pinball_sum


def problem(n: int, q: int = 11, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    Z = torch.cat([torch.randn(n, q - 1, dtype=torch.float64, generator=g),
                   torch.ones(n, 1, dtype=torch.float64)], 1)
    noise = torch.distributions.StudentT(3.0).sample((n,)).to(torch.float64)
    y = Z @ torch.linspace(-2, 2, q, dtype=torch.float64) + noise
    return Z, y, torch.ones(n, dtype=torch.float64)


def best(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def other_build(path: str):
    """``fnb(Z, y, u, tau, tol)`` -> (beta, iterations) from another build's ``_fnb`` library."""
    lib = ctypes.CDLL(path)
    P = ctypes.POINTER(ctypes.c_double)
    threaded = hasattr(lib, "gradfit_fnb_chunks")  # the loop with a threads argument
    fn = lib.gradfit_fnb
    fn.argtypes = ([ctypes.c_long, ctypes.c_int, P, P, P, ctypes.c_double, ctypes.c_double, ctypes.c_int]
                   + [ctypes.c_int] * threaded + [P, P, ctypes.POINTER(ctypes.c_int), P])
    fn.restype = ctypes.c_int

    def fnb(Z, y, u, tau, tol):
        n, q = Z.shape
        beta, dual = torch.empty(q, dtype=torch.float64), torch.empty(n, dtype=torch.float64)
        it, gap = ctypes.c_int(0), ctypes.c_double(0.0)
        ptr = (lambda t: ctypes.cast(t.data_ptr(), P))
        extra = [native.threads_for(n)] if threaded else []
        fn(n, q, ptr(Z), ptr(y), ptr(u), tau, tol, 100, *extra, ptr(beta), ptr(dual), ctypes.byref(it),
           ctypes.byref(gap))
        return beta, it.value
    return fnb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="*", default=[100_000, 300_000, 400_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-12)
    ap.add_argument("--against", metavar="LIB", help="another build's _fnb shared library to time as well")
    args = ap.parse_args()
    other = other_build(args.against) if args.against else None
    if native._load() is None:
        raise SystemExit("the compiled interior point was not built (python setup.py build_ext --inplace)")
    torch.manual_seed(0)
    torch.set_num_threads(1)  # as the ipm solver runs its torch ops (base.single_threaded); not the compiled loop's
    Z, y, u = problem(2000)  # warm-up: the first call of some torch ops sets them up
    sol = frisch_newton_torch(Z, y, u, 0.5, args.tol, 100)
    finish.vertex(Z, y, u, 0.5, sol.beta, sol.dual, True)
    print(f"{'rows':>8} {'tau':>4} {'threads':>7} {'fnb s':>7} {'1 thr s':>7} {'iters':>5} {'ms/it':>6} "
          f"{'polish s':>8} {'torch s':>7} {'torch/fnb':>9} {'obj rel diff':>12}"
          + (f" {'other s':>7} {'it':>3} {'other/fnb':>9}" if other else ""))
    for k, n in enumerate(args.rows):
        Z, y, u = problem(n)
        for tau in (0.5, 0.9):
            threads = native.threads_for(n)
            t_fnb, got = best(lambda: native.fnb(Z, y, u, tau, args.tol, 100), args.repeats)
            t_one, _ = best(lambda: native.fnb(Z, y, u, tau, args.tol, 100, threads=1), args.repeats)
            beta, dual, iters = got[0], got[1], got[2]
            t_pol, _ = best(lambda: finish.vertex(Z, y, u, tau, beta, dual, True), args.repeats)
            torch_cols = f"{'':>7} {'':>9} {'':>12}"
            if k == 0:
                t_ref, ref = best(lambda: frisch_newton_torch(Z, y, u, tau, args.tol, 100), 1)
                p, r = (float(pinball_sum(y - Z @ b, u, tau)) for b in (beta, ref.beta))
                torch_cols = f"{t_ref:7.3f} {t_ref / t_fnb:9.1f} {abs(p - r) / r:12.1e}"
            other_cols = ""
            if other:
                t_other, (_, it_other) = best(lambda: other(Z, y, u, tau, args.tol), args.repeats)
                other_cols = f" {t_other:7.3f} {it_other:3d} {t_other / t_fnb:9.1f}"
            print(f"{n:8d} {tau:4.1f} {threads:7d} {t_fnb:7.3f} {t_one:7.3f} {iters:5d} {1e3 * t_fnb / iters:6.1f} "
                  f"{t_pol:8.3f} {torch_cols}{other_cols}", flush=True)


if __name__ == "__main__":
    main()
