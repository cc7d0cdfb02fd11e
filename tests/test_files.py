"""Files in: CSV/Parquet, folders and globs, options, streaming vs cached, shards, shuffling, and
in-memory inputs (numpy, pandas, polars, torch, lists) through gradfit.fit."""
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import gradfit
from gradfit.data.batches import DataError
from gradfit.data.files import FileBatches, ReadInterrupted, open_table

COEF = np.array([1.5, -2.0, 0.5])


@pytest.fixture
def frame():
    rng = np.random.default_rng(3)
    n = 1000
    df = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    df["y"] = df.to_numpy() @ COEF + 3.0 + 0.1 * rng.normal(size=n)
    df["w"] = rng.uniform(0.5, 2.0, n)
    df["label"] = "row"
    return df


def ols(df, features=("a", "b", "c"), weight=None):
    A = np.c_[df[list(features)].to_numpy(), np.ones(len(df))]
    s = np.sqrt(df[weight].to_numpy()) if weight else np.ones(len(df))
    return np.linalg.lstsq(A * s[:, None], df["y"].to_numpy() * s, rcond=None)[0]


def write(df, path, **kw):
    if str(path).endswith(".parquet"):
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, **kw)
    else:
        df.to_csv(path, index=False, **kw)
    return path


def theta(model):
    return np.r_[model.coef_, model.intercept_]


@pytest.mark.parametrize("ext", ["csv", "parquet"])
@pytest.mark.parametrize("cache", [None, False])
def test_exact_fit_from_file_matches_lstsq(tmp_path, frame, ext, cache):
    path = write(frame, tmp_path / f"d.{ext}", **({"row_group_size": 128} if ext == "parquet" else {}))
    data = open_table(path, target="y", cache=cache, batch_rows=100)
    assert data.feature_names == ["a", "b", "c", "w"]  # every numeric column but the target; not 'label'
    assert (data.full_batch() is None) == (cache is False)
    data = open_table(path, target="y", features=["a", "b", "c"], cache=cache, batch_rows=100)
    model = gradfit.fit(data)
    np.testing.assert_allclose(theta(model), ols(frame), rtol=1e-10)
    assert model.target_name == "y" and model.feature_names_in_ == ["a", "b", "c"]
    assert model.info["n_rows"] == 1000 and data.n_rows == 1000


@pytest.mark.parametrize("whole_groups", [True, False])
def test_streamed_batches_are_bounded_and_cover_every_row(tmp_path, frame, whole_groups, monkeypatch):
    if not whole_groups:  # row groups over the size limit go through pyarrow's batch reader
        monkeypatch.setattr("gradfit.data.sources.WHOLE_GROUP_BYTES", 0)
    path = write(frame, tmp_path / "d.parquet", row_group_size=200)
    data = open_table(path, target="y", features=["a"], cache=False, batch_rows=64)
    sizes = [len(b) for b in data]
    assert max(sizes) <= 64 and sum(sizes) == 1000
    got = torch.cat([b.y for b in data]).numpy()
    np.testing.assert_array_equal(got, frame["y"].to_numpy())


@pytest.mark.parametrize("cache", [None, False])
def test_shuffled_pass_is_a_permutation_in_batches(tmp_path, frame, cache, monkeypatch):
    monkeypatch.setattr("gradfit.data.files.SHUFFLE_ROWS", 300)
    path = write(frame, tmp_path / "d.parquet", row_group_size=100)
    data = open_table(path, target="y", features=["a"], cache=cache, batch_rows=50)
    gen = torch.Generator().manual_seed(1)
    batches = list(data.shuffled(32, gen))
    assert all(len(b) == 32 for b in batches[:-1]) and sum(len(b) for b in batches) == 1000
    ys = torch.cat([b.y for b in batches]).numpy()
    assert not np.array_equal(ys, frame["y"].to_numpy())
    np.testing.assert_array_equal(np.sort(ys), np.sort(frame["y"].to_numpy()))


def test_sgd_on_streamed_file_converges_near_the_optimum(tmp_path, frame):
    path = write(frame, tmp_path / "d.parquet", row_group_size=100)
    data = open_table(path, target="y", features=["a", "b", "c"], cache=False)
    model = gradfit.fit(data, solver="adam", batch_size=50, epochs=30, lr=0.05, warn=False)
    np.testing.assert_allclose(theta(model), ols(frame), atol=0.05)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_shards_partition_the_rows(tmp_path, frame, ext):
    path = write(frame, tmp_path / f"d.{ext}", **({"row_group_size": 100} if ext == "parquet" else {}))
    parts = [open_table(path, target="y", features=["a"], shard=(r, 3), cache=False) for r in range(3)]
    ys = [torch.cat([b.y for b in p]).numpy() for p in parts]
    assert all(len(y) > 0 for y in ys)
    np.testing.assert_array_equal(np.sort(np.concatenate(ys)), np.sort(frame["y"].to_numpy()))


def test_folder_glob_and_list_of_files(tmp_path, frame):
    (tmp_path / "parts").mkdir()
    for i in range(4):
        write(frame.iloc[i * 250:(i + 1) * 250], tmp_path / "parts" / f"p{i}.parquet")
    (tmp_path / "parts" / "notes.md").write_text("not data")
    ref = ols(frame)
    for src in (tmp_path / "parts", str(tmp_path / "parts" / "p*.parquet")):
        model = gradfit.fit(open_table(src, target="y", features=["a", "b", "c"]))
        np.testing.assert_allclose(theta(model), ref, rtol=1e-10)
    data = open_table(str(tmp_path / "parts" / "p[01].parquet"), target="y", features=["a"])
    assert data.n_rows == 500


def test_no_header_delimiter_weight_and_drop_na(tmp_path, frame):
    path = tmp_path / "d.tsv"
    body = frame[["a", "b", "c", "y", "w"]].copy()
    body.iloc[7, 1] = np.nan
    body.to_csv(path, sep=";", header=False, index=False)
    with pytest.raises(DataError, match=r"column 'c1' has a missing .* at data row 8 \(line 8\)"):
        open_table(path, target="c3", delimiter=";", header=False)
    data = open_table(path, target="c3", features=["c0", "c1", "c2"], weight="c4", delimiter=";",
                      header=False, drop_na=True)
    assert data.n_rows == 999 and data.has_weight
    kept = frame.drop(index=7)
    np.testing.assert_allclose(theta(gradfit.fit(data)), ols(kept, weight="w"), rtol=1e-10)


def test_float32_and_device(tmp_path, frame):
    path = write(frame, tmp_path / "d.parquet")
    data = open_table(path, target="y", features=["a", "b", "c"], dtype=torch.float32, device="cpu")
    batch = next(iter(data))
    assert batch.X.dtype == torch.float32 and batch.X.shape == (1000, 3)
    np.testing.assert_allclose(theta(gradfit.fit(data)), ols(frame), rtol=1e-4)


def test_constant_and_duplicate_columns_are_named(tmp_path, frame):
    df = frame.assign(k=1.0, a2=frame["a"])
    path = write(df, tmp_path / "d.csv")
    data = open_table(path, target="y", features=["a", "k", "b", "a2"])
    with pytest.warns(UserWarning) as caught:
        data.full_batch()
    text = " ".join(str(w.message) for w in caught)
    assert "column 'k' is constant" in text and "column 'a2' duplicates column 'a'" in text


def test_ctrl_c_reports_rows_read(tmp_path, frame, monkeypatch, run_cli):
    path = write(frame, tmp_path / "d.parquet", row_group_size=100)
    import gradfit.data.files as files
    real, calls = files.to_matrix, []

    def interrupt_on_third(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)
    monkeypatch.setattr(files, "to_matrix", interrupt_on_third)
    data = open_table(path, target="y", cache=False, batch_rows=100)
    with pytest.raises(ReadInterrupted, match="after 200 rows"):
        list(data)
    calls[:] = [1, 1]  # the CLI reads this small file in one batch: interrupt it
    code, out, err = run_cli("fit", path, "--target", "y", "--save", tmp_path / "m.json")
    assert code == 130 and "stopped reading" in err and "after 0 rows" in err
    assert not (tmp_path / "m.json").exists()


def test_progress_bar_shows_rows_per_second(tmp_path, frame, monkeypatch):
    import io
    path = write(frame, tmp_path / "d.parquet", row_group_size=100)
    stream = io.StringIO()
    import gradfit.data.progress as progress
    real = progress.ProgressBar
    monkeypatch.setattr(progress, "ProgressBar",
                        lambda total, unit, **kw: real(total, unit, enabled=True, stream=stream, min_interval=0))
    data = open_table(path, target="y", cache=False, batch_rows=100, progress=True)
    list(data)
    assert "1000/1000 rows" in stream.getvalue() and "rows/s" in stream.getvalue()


@pytest.mark.parametrize("kind", ["numpy", "pandas", "polars", "torch", "lists"])
def test_in_memory_inputs_keep_names(frame, kind):
    X, y = frame[["a", "b", "c"]], frame["y"]
    inputs = {"numpy": (X.to_numpy(), y.to_numpy()), "pandas": (X, y),
              "polars": (pl.from_pandas(X), pl.from_pandas(y)),
              "torch": (torch.tensor(X.to_numpy()), torch.tensor(y.to_numpy())),
              "lists": (X.to_numpy().tolist(), y.tolist())}[kind]
    model = gradfit.fit(*inputs)
    np.testing.assert_allclose(theta(model), ols(frame), rtol=1e-10)
    named = kind in ("pandas", "polars")
    assert model.feature_names_in_ == (["a", "b", "c"] if named else ["x0", "x1", "x2"])
    assert model.target_name == ("y" if named else None)
    if named:  # predict matches columns by name, in any order
        shuffled = inputs[0][["c", "a", "b"]]
        np.testing.assert_allclose(model.predict(shuffled), model.predict(X.to_numpy()), rtol=1e-12)


def test_in_memory_non_numeric_column_is_named():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["1", "x", "3"]})
    with pytest.raises(DataError, match=r"column 'b' has a non-numeric value 'x' at row index 1"):
        gradfit.fit(df, [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="column 'b'"):
        gradfit.fit(pl.from_pandas(df), [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="different lengths"):
        gradfit.fit([[1.0, 2.0], [3.0]], [1.0, 2.0])


def test_file_batches_is_a_batches_source(tmp_path, frame):
    from gradfit.data.batches import Batches
    data = open_table(write(frame, tmp_path / "d.csv"), target="y")
    assert isinstance(data, FileBatches) and isinstance(data, Batches)
    assert data.target_name == "y" and data.dtype == torch.float64 and not data.has_weight


def test_streamed_exact_fit_reads_columns_without_building_matrices(tmp_path, frame, monkeypatch):
    """The exact solver takes unchecked columns (no (k, n) matrix, no NaN scan); a checked pass only
    runs when its sums are not finite. Weights, wide designs (numpy's path) and several chunks per
    block agree with lstsq."""
    monkeypatch.setattr("gradfit.numerics.passes.CACHE_BYTES", 96 * 50)  # chunks of ~50 rows
    path = write(frame, tmp_path / "d.parquet", row_group_size=128)
    built = []
    original = FileBatches._matrix
    monkeypatch.setattr(FileBatches, "_matrix", lambda self, rb, at: built.append(1) or original(self, rb, at))
    # row groups of 128 sliced into batches of 50, 50, 28: the columns are views at an offset
    data = open_table(path, target="y", features=["a", "b", "c"], cache=False, batch_rows=50)
    np.testing.assert_allclose(theta(gradfit.fit(data)), ols(frame), rtol=1e-10)
    weighted = open_table(path, target="y", features=["a", "b", "c"], weight="w", cache=False, batch_rows=50)
    np.testing.assert_allclose(theta(gradfit.fit(weighted)), ols(frame, weight="w"), rtol=1e-10)
    assert built == []
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(400, 40)), columns=[f"x{j}" for j in range(40)])
    wide["y"] = wide.sum(axis=1) + rng.normal(size=400)
    wpath = write(wide, tmp_path / "wide.parquet", row_group_size=90)
    model = gradfit.fit(open_table(wpath, target="y", cache=False, batch_rows=70))
    A = np.c_[wide.drop(columns="y").to_numpy(), np.ones(400)]
    np.testing.assert_allclose(theta(model), np.linalg.lstsq(A, wide["y"].to_numpy(), rcond=None)[0], rtol=1e-9)
    assert built == []


@pytest.mark.parametrize("bad, message", [
    (np.nan, r"column 'b' has a missing .* at row 777 of .*d\.parquet"),
    (np.inf, r"column 'b' has an infinite value at row 777 of .*d\.parquet"),
    (-1.0, r"weight column 'w' has a negative value -1 at row 777 of .*d\.parquet"),
])
def test_streamed_exact_fit_names_a_bad_value_after_the_unchecked_pass(tmp_path, frame, bad, message):
    frame.loc[776, "w" if bad == -1.0 else "b"] = bad
    path = write(frame, tmp_path / "d.parquet", row_group_size=128)
    data = open_table(path, target="y", features=["a", "b", "c"], weight="w", cache=False, batch_rows=100)
    with pytest.raises(DataError, match=message):
        gradfit.fit(data, solver="exact")
    dropped = open_table(path, target="y", features=["a", "b", "c"], cache=False, drop_na=True, batch_rows=100)
    if bad != -1.0:  # --drop-na skips the row, and the fit matches lstsq without it
        np.testing.assert_allclose(theta(gradfit.fit(dropped)), ols(frame.drop(index=776)), rtol=1e-10)


def test_sample_units_reads_a_few_random_row_groups_only(tmp_path):
    r = np.random.default_rng(0)
    df = pd.DataFrame({"a": r.normal(size=40000), "y": np.arange(40000.0)})
    df.to_parquet(tmp_path / "g.parquet", row_group_size=1000)
    data = open_table(tmp_path / "g.parquet", target="y", cache=False)
    blocks, rows = data.sample_units(2500, torch.Generator().manual_seed(1))
    got = [b for b in blocks]
    ys = np.concatenate([b[1] for b in got])
    assert rows == len(ys) == 4000  # at least 4 whole row groups, about 2500 rows asked for
    groups = np.unique(ys // 1000)
    assert len(groups) == 4 and list(groups) == sorted(groups)  # read in file order
    assert data.sample_units(20000, torch.Generator().manual_seed(1)) is None  # half the file: read it all
    df.to_csv(tmp_path / "g.csv", index=False)
    assert open_table(tmp_path / "g.csv", target="y", cache=False).sample_units(2500, torch.Generator()) is None
    assert open_table(tmp_path / "g.parquet", target="y").sample_units(2500, torch.Generator()) is None  # cached
