"""Before/after of the exact least-squares paths, for a change to the moments code (issue 13).

Each run times, in one process and best of a few: ``gradfit.fit`` on in-memory data against one
``X'X`` product (numpy and torch), and the streamed exact fit of a Parquet file against one pyarrow
read of it. The ratios are what to compare between source trees, run alternately::

    for i in 1 2 3; do for t in NEW OLD; do PYTHONPATH=$t/src python bench/exact_ab.py; done; done

(``GRADFIT_NO_NATIVE=1`` measures the numpy/torch fallback of the compiled kernel.) Prints one JSON line.
"""
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

import gradfit
from gradfit.data.files import open_table

DATA = Path(__file__).resolve().parent / "data" / "ab_3000000x10.parquet"


def best(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def parquet_file() -> Path:
    if not DATA.exists():
        import pandas as pd
        rng = np.random.default_rng(1)
        X = rng.normal(size=(3_000_000, 10)) * 2 + 5
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(10)])
        frame["y"] = X @ np.arange(1.0, 11.0) + 3 + rng.normal(size=len(X))
        DATA.parent.mkdir(exist_ok=True)
        frame.to_parquet(DATA, row_group_size=1_000_000)
    return DATA


def main() -> dict:
    out = {"gradfit": os.path.dirname(gradfit.__file__), "native": os.environ.get("GRADFIT_NO_NATIVE", "") in ("", "0")}
    rng = np.random.default_rng(0)
    for n, p in [(2_000_000, 10), (300_000, 100)]:
        X = rng.normal(size=(n, p)) + 3.0
        y = X @ rng.normal(size=p) + 3 + rng.normal(size=n)
        Xt = torch.from_numpy(X)
        fit, xtx_np, xtx_torch = best(lambda: gradfit.fit(X, y)), best(lambda: X.T @ X), best(lambda: Xt.T @ Xt)
        out[f"in memory {n}x{p}"] = {"fit_s": fit, "xtx_numpy_s": xtx_np, "xtx_torch_s": xtx_torch,
                                     "fit / X'X": fit / min(xtx_np, xtx_torch)}
    path = parquet_file()
    pf = pq.ParquetFile(path)
    read = lambda: [pf.read_row_group(i) for i in range(pf.num_row_groups)]  # noqa: E731
    read()  # into the page cache
    read_s = best(read, 3)
    fit_s = best(lambda: gradfit.fit(open_table(path, target="y", cache=False)), 3)
    out["streamed 3Mx10 parquet"] = {"fit_s": fit_s, "read_s": read_s, "fit / read": fit_s / read_s}
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
