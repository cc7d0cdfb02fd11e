"""The interior point's LP alone (issue 15): the compiled Frisch-Newton loop (``_fnb.c``) on a reduced
problem of the streamed fit's shape (n rows x 10 features + intercept, tol 1e-12), its vertex polish,
and the torch loop of lp.py (the reference and fallback) as the peer, in one process, best of a few::

    PYTHONPATH=src python bench/fnb.py                    # 100k, 300k and 400k rows
    PYTHONPATH=src python bench/fnb.py --rows 1000000 --repeats 5

Columns: seconds for the compiled loop with its default threads (``native.threads_for``) and with one,
its iterations, ms per iteration, the polish (``finish.vertex``) and the torch loop (at the first size
only: it is slow), and the objectives' relative difference between compiled and torch. torch runs on
one thread, as the ipm solver runs it (``base.single_threaded``); the compiled loop's threads are its own.
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="*", default=[100_000, 300_000, 400_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-12)
    args = ap.parse_args()
    if native._load() is None:
        raise SystemExit("the compiled interior point was not built (python setup.py build_ext --inplace)")
    torch.manual_seed(0)
    torch.set_num_threads(1)  # as the ipm solver runs its torch ops (base.single_threaded); not the compiled loop's
    Z, y, u = problem(2000)  # warm-up: the first call of some torch ops sets them up
    sol = frisch_newton_torch(Z, y, u, 0.5, args.tol, 100)
    finish.vertex(Z, y, u, 0.5, sol.beta, sol.dual, True)
    print(f"{'rows':>8} {'tau':>4} {'threads':>7} {'fnb s':>7} {'1 thr s':>7} {'iters':>5} {'ms/it':>6} "
          f"{'polish s':>8} {'torch s':>7} {'torch/fnb':>9} {'obj rel diff':>12}")
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
            print(f"{n:8d} {tau:4.1f} {threads:7d} {t_fnb:7.3f} {t_one:7.3f} {iters:5d} {1e3 * t_fnb / iters:6.1f} "
                  f"{t_pol:8.3f} {torch_cols}", flush=True)


if __name__ == "__main__":
    main()
