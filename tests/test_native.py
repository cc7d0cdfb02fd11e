"""The streamed moment sums: the accumulator's compiled kernel (numerics/_kernels.c) and its numpy/torch
fallback give B'B of the shifted, weighted columns, and the streamed exact fit is the same through either."""
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

import gradfit
from gradfit.numerics import kernel as native
from gradfit.numerics.moments import Moments
from gradfit.data.files import open_table

needs_kernel = pytest.mark.skipif(not native.available(2), reason="the compiled kernel was not built here")


def reference(cols, shift, weight=None):
    p = len(cols) - 1
    B = np.column_stack([c - s for c, s in zip(cols[:p], shift[:p])] + [np.ones(len(cols[0])), cols[p] - shift[p]])
    if weight is not None:
        B = B * np.sqrt(weight)[:, None]
    return B.T @ B


def implementations():
    """Moments.add_columns through numpy/torch (the kernel switched off, chunks of ~300 rows) or compiled."""
    return [pytest.param(False, id="numpy-torch"), pytest.param(True, id="compiled", marks=needs_kernel)]


@pytest.fixture
def make(request, monkeypatch):
    if not request.param:
        monkeypatch.setattr(native, "_moments", None)
        monkeypatch.setattr("gradfit.numerics.moments.chunk_rows", lambda n_cols, device=None: 300)
    return lambda p, shift: Moments(p, shift_x=shift[:p], shift_y=shift[p:])


@pytest.mark.parametrize("make", implementations(), indirect=True)
@pytest.mark.parametrize("p", [1, 2, 10, 13, 46])
@pytest.mark.parametrize("weighted", [False, True])
def test_moment_sums_match_numpy(make, p, weighted):
    rng = np.random.default_rng(p)
    # blocks of odd lengths: tiles cut mid-block, tails shorter than a vector, large means
    blocks = [[rng.normal(1e3 * j, 1 + j, size=n) for j in range(p + 1)] for n in (1, 257, 1000, 3)]
    weights = [rng.uniform(0, 2, size=len(b[0])) for b in blocks]
    shift = np.array([c[:5].mean() for c in blocks[1]])
    sums = make(p, shift)
    for cols, w in zip(blocks, weights):
        sums.add_columns(cols, w if weighted else None)
    cols = [np.concatenate([b[j] for b in blocks]) for j in range(p + 1)]
    want = reference(cols, shift, np.concatenate(weights) if weighted else None)
    got = sums.M.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9 * np.abs(want).max())
    np.testing.assert_array_equal(got, got.T)


@pytest.mark.parametrize("make", implementations(), indirect=True)
@pytest.mark.parametrize("bad", [np.nan, np.inf, "negative weight"])
def test_a_bad_value_makes_the_sums_non_finite(make, bad):
    rng = np.random.default_rng(0)
    cols = [rng.normal(size=600) for _ in range(4)]
    weight = rng.uniform(0.5, 1, size=600)
    if bad == "negative weight":
        weight[517] = -1.0
    else:
        cols[1][517] = bad
    sums = make(3, np.zeros(4))
    with np.errstate(invalid="ignore", over="ignore"):
        sums.add_columns(cols, weight)
    assert not np.isfinite(sums.M.numpy()).all()


def test_streamed_fit_is_the_same_with_and_without_the_kernel(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(5, 2, size=(5000, 6)), columns=[f"x{j}" for j in range(6)])
    frame["y"] = frame.to_numpy() @ np.arange(1.0, 7.0) + 4 + rng.normal(size=5000)
    frame["w"] = rng.uniform(0, 3, size=5000)
    path = tmp_path / "d.parquet"
    frame.to_parquet(path, row_group_size=700)
    fits = []
    for kernel in (native._moments, None):
        monkeypatch.setattr(native, "_moments", kernel)
        data = open_table(path, target="y", weight="w", cache=False, batch_rows=300)
        fits.append(gradfit.fit(data))
    X = np.c_[frame[[f"x{j}" for j in range(6)]].to_numpy(), np.ones(5000)]
    sw = np.sqrt(frame["w"].to_numpy())
    want = np.linalg.lstsq(X * sw[:, None], frame["y"].to_numpy() * sw, rcond=None)[0]
    for model in fits:
        np.testing.assert_allclose(np.r_[model.coef_, model.intercept_], want, rtol=1e-11)


@pytest.mark.skipif(sys.platform != "linux" or shutil.which("cc") is None or os.environ.get("GRADFIT_NO_NATIVE"),
                    reason="needs Linux with a C compiler, and the kernel not switched off")
def test_the_install_built_the_kernel():
    """With a C compiler the install builds the kernel (setup.py); its absence would silently leave the
    streamed exact fit on the slower path."""
    assert native.available(12)
    assert not native.available(native.MAX_WIDTH + 1)
