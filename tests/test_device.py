"""Devices and dtypes: --device {auto,cpu,cuda}, --dtype {float64,float32}; CUDA results equal CPU results.

The CUDA tests are skipped on machines without a CUDA device.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import gradfit
from gradfit.api import resolve_device, resolve_dtype
from gradfit.cli import main
from gradfit.data.arrays import as_batches

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device")


def _problem(n=2000, p=4, seed=0):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, p)) * np.linspace(0.5, 3, p) + np.linspace(-2, 5, p)
    y = X @ np.linspace(1, -1, p) + 0.7 + r.normal(size=n)
    return X, y, r.uniform(0.5, 2.0, size=n)


def _theta(m) -> np.ndarray:
    return np.append(np.asarray(m.coef_, float), m.intercept_)


def _rel(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _fit(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gradfit.fit(X, y, **kw)


# -- runs everywhere ------------------------------------------------------------------------------
def test_resolve_device_and_dtype():
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve_device(None).type == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_dtype("float32") is torch.float32 and resolve_dtype("float64") is torch.float64
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float16x")


@pytest.mark.skipif(CUDA, reason="checks the message shown when CUDA is missing")
def test_cuda_without_cuda_is_one_line_error(tmp_path, capsys):
    X, y, _ = _problem(50, 2)
    with pytest.raises(ValueError, match="no CUDA device"):
        gradfit.fit(X, y, device="cuda")
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y}).to_csv(path, index=False)
    assert main(["fit", str(path), "--target", "y", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA device" in err[0]


def test_float32_fit_is_close_to_float64():
    X, y, w = _problem()
    for solver in ("exact", "gd"):
        m64 = _fit(X, y, sample_weight=w, solver=solver)
        m32 = _fit(X, y, sample_weight=w, solver=solver, dtype="float32")
        assert _rel(_theta(m32), _theta(m64)) < 1e-4, solver


def test_exact_accumulates_in_float64_on_float32_data():
    """X'X of float32 data is summed in float64: the exact answer loses only the input rounding."""
    X, y, _ = _problem(20000, 3)
    X32 = X.astype(np.float32).astype(np.float64)
    y32 = y.astype(np.float32).astype(np.float64)
    ref = np.linalg.lstsq(np.c_[X32, np.ones(len(y))], y32, rcond=None)[0]
    got = _theta(_fit(X, y, solver="exact", dtype="float32"))
    assert _rel(got, ref) < 1e-6  # float32 storage of theta: ~6e-8


# -- CUDA == CPU ----------------------------------------------------------------------------------
@needs_cuda
@pytest.mark.parametrize("solver, kw, tol", [
    ("exact", {}, 1e-10),
    ("exact", {"penalty": "l2", "alpha": 0.1, "fit_intercept": False}, 1e-10),
    ("gd", {}, 1e-8),
    ("sgd", {"lr": 0.01, "epochs": 50, "tol": 0}, 1e-10),
    ("adam", {"lr": 0.05, "epochs": 50, "tol": 0}, 1e-9),
    ("sgd", {"lr": 0.01, "epochs": 3, "batch_size": 64, "tol": 0}, 1e-10),  # same shuffles on both devices
])
def test_cuda_equals_cpu_float64(solver, kw, tol):
    X, y, w = _problem()
    cpu = _fit(X, y, sample_weight=w, solver=solver, device="cpu", **kw)
    gpu = _fit(X, y, sample_weight=w, solver=solver, device="cuda", **kw)
    assert _rel(_theta(gpu), _theta(cpu)) < tol
    if kw.get("tol") == 0:  # a fixed number of steps (stopping rules may flip on the last bit)
        assert gpu.n_iter_ == cpu.n_iter_


@needs_cuda
def test_cuda_equals_cpu_float32():
    X, y, w = _problem()
    for solver in ("exact", "gd"):
        cpu = _fit(X, y, sample_weight=w, solver=solver, dtype="float32", device="cpu")
        gpu = _fit(X, y, sample_weight=w, solver=solver, dtype="float32", device="cuda")
        assert _rel(_theta(gpu), _theta(cpu)) < 1e-5, solver


@needs_cuda
def test_streamed_file_moves_each_batch_to_the_gpu(tmp_path):
    from gradfit.data.files import open_table
    X, y, w = _problem(5000, 3)
    path = tmp_path / "d.parquet"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}).to_parquet(path, row_group_size=500)
    data = open_table(str(path), target="y", device="cuda", cache=False, batch_rows=500)
    batches = list(data)
    assert len(batches) >= 2 and all(b.X.device.type == "cuda" for b in batches)
    gpu = _fit(data, None, solver="exact")
    cpu = _fit(open_table(str(path), target="y", device="cpu", cache=False, batch_rows=500), None, solver="exact")
    assert _rel(_theta(gpu), _theta(cpu)) < 1e-10


@needs_cuda
def test_exact_statistics_stay_on_the_gpu():
    """The Gram matrix is accumulated where the data lives (no host copy of X)."""
    from gradfit.numerics.moments import moments
    X, y, _ = _problem(1000, 3)
    M = moments(as_batches(X, y, device="cuda")).M
    assert M.device.type == "cuda" and M.dtype == torch.float64


@needs_cuda
def test_cli_device_cuda(tmp_path, capsys):
    X, y, _ = _problem(500, 2)
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y}).to_csv(path, index=False)
    assert main(["fit", str(path), "--target", "y", "--device", "cuda", "--json"]) == 0
    gpu = capsys.readouterr().out
    assert main(["fit", str(path), "--target", "y", "--device", "cpu", "--json"]) == 0
    cpu = capsys.readouterr().out
    import json
    g, c = json.loads(gpu), json.loads(cpu)
    assert _rel(np.array(g["coef"] + [g["intercept"]]), np.array(c["coef"] + [c["intercept"]])) < 1e-10


@pytest.mark.skipif(torch.cuda.device_count() < 2 or not torch.distributed.is_nccl_available(),
                    reason="needs 2 CUDA devices and NCCL")
def test_two_gpus_nccl_equal_one_process(tmp_path, capsys):
    X, y, _ = _problem(4000, 3)
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}).to_csv(path, index=False)
    assert main(["fit", str(path), "--target", "y", "--device", "cuda", "--json"]) == 0
    import json
    import subprocess
    import sys
    one = json.loads(capsys.readouterr().out)
    proc = subprocess.run([sys.executable, "-m", "gradfit", "fit", str(path), "--target", "y", "--device", "cuda",
                           "--nproc", "2", "--json", "--timeout", "30"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    two = json.loads(proc.stdout)
    assert _rel(np.array(two["coef"]), np.array(one["coef"])) < 1e-10
