"""Time and memory of each phase of the streamed exact L1/quantile fit (issue 15), one run:

    PYTHONPATH=src python bench/ipm_phases.py bench/data/big_70000000x10.parquet [--quantile 0.9]

Wraps the phases of :mod:`gradfit.solvers.ipm.streamed` (the row-group or uniform sample, the LPs,
the classifying, check and near-row passes) and prints each one's seconds and the process's resident
memory before it, at its peak (``VmHWM``, reset before each phase through ``/proc/self/clear_refs``)
and after it. Linux only. Make the file with ``bench/bigfile.py``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import gradfit
import gradfit.solvers.ipm.streamed as streamed
from gradfit.data.files import open_table

PHASES = ("unit_sample_pass", "sample_pass", "solve_rows", "classify_pass", "near_check", "check_pass")


def memory() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) / 1e6  # kB -> GB
    return out


def timed(name: str, fn):
    def phase(*args, **kwargs):
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        before, t0 = memory()["VmRSS"], time.perf_counter()
        result = fn(*args, **kwargs)
        now = memory()
        print(f"{name:18s} {time.perf_counter() - t0:6.2f} s   RSS before {before:.2f} GB, peak {now['VmHWM']:.2f}, "
              f"after {now['VmRSS']:.2f}", flush=True)
        return result
    return phase


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--quantile", type=float, default=None, help="quantile level (default: L1)")
    args = ap.parse_args()
    for name in PHASES:
        setattr(streamed, name, timed(name, getattr(streamed, name)))
    rng = np.random.default_rng(0)  # imports and first calls outside the clock, as bench/bigfile.py does
    gradfit.fit(rng.normal(size=(64, 2)), rng.normal(size=64), loss="quantile", solver="ipm", warn=False)
    kw = dict(loss="l1") if args.quantile is None else dict(loss="quantile", quantile=args.quantile)
    t0 = time.perf_counter()
    model = gradfit.fit(open_table(args.file, target="y"), solver="ipm", **kw)
    info = {k: model.info.get(k) for k in ("sample_from", "passes", "signs_proved_by", "reduced_rows", "fixups",
                                           "lp_solves", "ipm_iterations")}
    print(f"fit {time.perf_counter() - t0:.2f} s, gap {model.gap_:.1e}, {info}")


if __name__ == "__main__":
    main()
