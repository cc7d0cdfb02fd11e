"""Fit a Parquet file bigger than you would like to hold in memory: gradfit streams it batch by batch.

Three ways, same file:
  1. gradfit.fit(open_table(...)): the exact least-squares fit in ONE pass (sufficient statistics);
  2. mini-batch Adam over a few shuffled passes (row groups in random order, rows mixed in a buffer);
  3. LinearRegressor.partial_fit on pyarrow's record batches, for a loop you control: exact for the
     squared loss, it equals 1.

    python examples/stream_big_file.py [--rows N]     # default 2,000,000 rows x 10 features (~170 MB)
    GRADFIT_EXAMPLES_QUICK=1 python examples/stream_big_file.py
"""
import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import gradfit
from gradfit.data.files import open_table

QUICK = os.environ.get("GRADFIT_EXAMPLES_QUICK") == "1"
FEATURES = 10
TRUE_W = np.linspace(-2, 2, FEATURES)


def write_parquet(path: Path, rows: int, chunk: int = 250_000, seed: int = 0) -> None:
    """Written chunk by chunk (one row group each): never the whole table in memory."""
    rng = np.random.default_rng(seed)
    names = [f"x{i}" for i in range(FEATURES)]
    schema = pa.schema([(n, pa.float64()) for n in names + ["y"]])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            m = min(chunk, rows - start)
            X = rng.normal(size=(m, FEATURES))
            y = X @ TRUE_W + 0.5 + rng.normal(0, 1.0, m)
            writer.write_table(pa.table([*X.T, y], schema=schema))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(rows: int, folder: Path) -> None:
    path = folder / "big.parquet"
    t = time.perf_counter()
    write_parquet(path, rows, chunk=max(rows // 8, 1000))
    size = path.stat().st_size / 2**20
    print(f"wrote {rows:,} rows x {FEATURES} features: {size:.0f} MiB in {time.perf_counter() - t:.1f} s")

    # 1. exact, one streamed pass (cache=False: stream even when the file would fit in memory)
    data = open_table(path, target="y", cache=False)
    t = time.perf_counter()
    exact = gradfit.fit(data)
    dt = time.perf_counter() - t
    print(f"1. exact ({exact.solver}): {dt:.2f} s, {rows / dt:,.0f} rows/s; "
          f"max |w - w_true| = {np.abs(exact.coef_ - TRUE_W).max():.4f}")

    # 2. mini-batch Adam, a few shuffled passes of the same stream
    rows_per_step = min(4096, max(rows // 100, 32))
    t = time.perf_counter()
    adam = gradfit.fit(data, solver="adam", lr=0.02, batch_size=rows_per_step, epochs=3, warn=False)
    dt = time.perf_counter() - t
    gap = (adam.final_loss_ - exact.final_loss_) / exact.final_loss_
    print(f"2. adam, {adam.n_iter_} passes of {rows_per_step}-row steps: {dt:.2f} s; loss {gap:.1e} above the optimum; "
          f"max |w - w_exact| = {np.abs(adam.coef_ - exact.coef_).max():.4f}")

    # 3. your own loop: partial_fit on each record batch (exact for the squared loss)
    est = gradfit.LinearRegressor()
    names = [f"x{i}" for i in range(FEATURES)]
    t = time.perf_counter()
    for batch in pq.ParquetFile(path).iter_batches(batch_size=100_000):
        X = np.column_stack([batch.column(n).to_numpy() for n in names])
        est.partial_fit(X, batch.column("y").to_numpy())
    dt = time.perf_counter() - t
    diff = np.abs(est.coef_ - exact.coef_).max()
    print(f"3. partial_fit over record batches: {dt:.2f} s; max |w - w_exact| = {diff:.1e}")
    assert diff < 1e-9 and abs(est.intercept_ - exact.intercept_) < 1e-9
    print(f"peak memory of this process: {peak_mib():.0f} MiB (file {size:.0f} MiB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="fit a big Parquet file by streaming")
    parser.add_argument("--rows", type=int, default=20_000 if QUICK else 2_000_000, help="rows to write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gradfit-stream-") as tmp:
        main(args.rows, Path(tmp))
