"""What would a compiled kernel gain for the streamed exact fit? (a measurement, not part of gradfit)

The exact solver's one pass over a Parquet file spends its own time in the moment sums: numpy
shifts each column chunk into a buffer, then adds the buffer's rank-k update
(``standardize._column_moments``). ``fused_moments.c`` does both in one native loop with AVX2. This
script compiles it with the system C compiler, checks it against numpy, and times

  kernels   numpy's copy + rank-k update vs the fused kernel, per 20M rows x 12 columns, with the
            columns in cache (32K-row blocks) and in memory (1M-row blocks);
  pipeline  on ``--file``: pyarrow's fastest read (the floor of bench/bigfile.py), then
            ``gradfit.fit(open_table(file), solver="exact")`` as shipped and with the fused kernel
            swapped in, rounds interleaved, best of ``--repeat``, times divided by the floor.

    .venv/bin/python bench/prototypes/fused_moments.py --file bench/data/big_20000000x10.parquet
"""
import argparse
import ctypes
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import gradfit
import gradfit.standardize as standardize
from gradfit.data.files import open_table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from bench import bigfile  # noqa: E402  (the floor read, the same as bench/bigfile.py's)

P = ctypes.POINTER(ctypes.c_double)


def unsupported() -> str | None:
    """Why the prototype cannot run here, or None."""
    if shutil.which("cc") is None:
        return "no C compiler (cc) on PATH"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return "cannot read /proc/cpuinfo to check for AVX2 and FMA"
    if "avx2" not in flags or "fma" not in flags:
        return "this CPU has no AVX2/FMA"
    return None


def compile_kernel(out_dir: str):
    why = unsupported()
    if why:
        raise SystemExit(f"{why}: nothing to measure")
    cc = shutil.which("cc")
    lib = Path(out_dir) / "fused_moments.so"
    subprocess.run([cc, "-O3", "-mavx2", "-mfma", "-shared", "-fPIC", str(HERE / "fused_moments.c"), "-o", str(lib)],
                   check=True)
    return ctypes.CDLL(str(lib))


def fused(lib, cols, shift, M) -> None:
    ptrs = (P * len(cols))(*[c.ctypes.data_as(P) for c in cols])
    if lib.fused_moments(ptrs, len(cols) - 1, shift.ctypes.data_as(P), ctypes.c_long(len(cols[0])), M.ctypes.data_as(P)):
        raise SystemExit("the prototype handles 10 features only")


def fused_column_moments(lib):
    """A drop-in for ``standardize._column_moments`` (no weights), same shift, same outputs."""
    def moments(blocks, p, rows):
        M, shift = np.zeros((p + 2, p + 2)), None
        for cols in blocks:
            if len(cols) != p + 1:
                raise SystemExit("the prototype has no sample weights")
            if shift is None:
                shift = np.array([c[:rows].mean() for c in cols])
            fused(lib, cols, shift, M)
        M = np.triu(M) + np.triu(M, 1).T
        return torch.from_numpy(M), torch.from_numpy(shift[:p].copy()), torch.tensor(float(shift[p]), dtype=torch.float64)
    return moments


def best_of(f, repeat: int) -> float:
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - t0)
    return t


def kernels(lib, repeat: int, total: int) -> float:
    """Print the kernels' times; return the largest relative difference from numpy's sums."""
    worst = 0.0
    rng = np.random.default_rng(0)
    for label, block in (("in cache", 1 << 15), ("in memory", 1 << 20)):
        cols = [rng.standard_normal(block) for _ in range(11)]
        reps = max(1, total // block)
        numpy_route = standardize._column_moments
        rows = standardize.chunk_rows(12)
        ref = numpy_route(iter([cols]), 10, rows)
        M = np.zeros((12, 12))
        fused(lib, cols, np.r_[ref[1].numpy(), float(ref[2])], M)
        err = np.abs(np.triu(M) - np.triu(ref[0].numpy())).max() / np.abs(ref[0].numpy()).max()
        worst = max(worst, err)
        t_np = best_of(lambda: numpy_route(iter([cols] * reps), 10, rows), repeat)
        shift = np.zeros(11)
        t_c = best_of(lambda: [fused(lib, cols, shift, M) for _ in range(reps)], repeat)
        print(f"kernels, columns {label}: numpy copy + rank-k {t_np:.3f} s, fused {t_c:.3f} s per {total / 1e6:g}M rows "
              f"(fused / numpy {t_c / t_np:.2f}; max relative difference {err:.1e})", flush=True)
    return worst


def pipeline(lib, path: str, repeat: int) -> dict:
    """Print the pipeline table; return the best times and how far the two fits' coefficients differ."""
    def floor():
        bigfile.child("pyarrow", path, None)

    shipped = standardize._column_moments

    def fit(kernel):
        standardize._column_moments = kernel
        try:
            return gradfit.fit(open_table(path, target="y"), solver="exact")
        finally:
            standardize._column_moments = shipped

    a, b = fit(shipped), fit(fused_column_moments(lib))
    diff = float(np.abs(a.coef_ - b.coef_).max())
    times = {"pyarrow read": [], "gradfit (numpy sums)": [], "gradfit (fused sums)": []}
    routes = (floor, lambda: fit(shipped), lambda: fit(fused_column_moments(lib)))
    for _ in range(repeat):  # interleaved rounds: the machine's speed drifts
        for (name, runs), route in zip(times.items(), routes):
            t0 = time.perf_counter()
            route()
            runs.append(time.perf_counter() - t0)
    base = min(times["pyarrow read"])
    print(f"\npipeline on {path} (best of {repeat}; coefficients differ by {diff:.1e})\n")
    print("| route | time (s) | x pyarrow read |\n|---|---|---|")
    for name, runs in times.items():
        print(f"| {name} | {min(runs):.2f} | {min(runs) / base:.2f} |")
    return {"coef_diff": diff, "seconds": {name: min(runs) for name, runs in times.items()}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", help="a Parquet file from bench/bigfile.py (10 features + y)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--kernel-rows", type=int, default=20_000_000, help="rows per kernel timing")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        lib = compile_kernel(tmp)
        out = {"kernel_rel_diff": kernels(lib, args.repeat, args.kernel_rows)}
        if args.file:
            out.update(pipeline(lib, args.file, args.repeat))
    return out


if __name__ == "__main__":
    main()
