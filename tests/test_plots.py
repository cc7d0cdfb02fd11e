"""Plots: files are written atomically, are real non-blank images, and show the right numbers."""
import numpy as np
import pytest
import torch
from PIL import Image

import gradfit
from gradfit.cli import main
from gradfit.data.arrays import ArrayBatches, as_batches
from gradfit.viz.figure import sample_rows
from gradfit.viz.plots import lr_curves
from gradfit.viz.report import write_plots
from gradfit.viz.surface import animate_line, plot_loss_surface, surface_grid


def not_blank(path, min_std=10.0):
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > min_std, f"{path} looks blank (pixel std {img.std():.2f})"


def no_temp_files(folder):
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def line_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-10, 10, 400)
    return x, 2 * x + 3 + rng.normal(size=400)


def test_one_feature_plots_with_the_optimizers_path(tmp_path, line_data):
    x, y = line_data
    model = gradfit.fit(x, y, solver="sgd", lr=0.005, epochs=60, warn=False)
    paths = write_plots(model, as_batches(x, y), tmp_path, optimum_loss=gradfit.fit(x, y).final_loss_)
    assert set(paths) == {"loss_curve", "fit", "residuals", "loss_surface", "diagnostics", "partial_residuals"}
    for p in paths.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        not_blank(p)
    no_temp_files(tmp_path)


def test_several_features_slice_and_predicted_vs_actual(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = X @ [1.0, -1.0, 0.5] + rng.normal(size=300)
    model = gradfit.fit(X, y)
    paths = write_plots(model, as_batches(X, y), tmp_path / "deep" / "dir", coefs=(1, 2))
    assert "loss_curve" not in paths  # the exact solver has no epochs to draw
    for p in paths.values():
        not_blank(p)
    with pytest.raises(ValueError, match="coefs"):
        plot_loss_surface(tmp_path / "s.png", X, y, "l2", model, coefs=(1, 1))


def test_surface_values_are_the_mean_loss(line_data):
    x, y = line_data
    center = np.array([2.0, 3.0])
    a, c = np.array([1.0, 2.5]), np.array([-1.0, 0.0, 4.0])
    Z = surface_grid(x, y, {"name": "absolute"}, center, (0, 1), a, c)
    for k, b in enumerate(c):
        for ell, w in enumerate(a):
            assert Z[k, ell] == pytest.approx(np.mean(np.abs(y - w * x - b)), rel=1e-12)
    X3 = np.column_stack([x, x ** 2 / 10, -x])
    center3 = np.array([0.5, 0.1, -0.2, 1.0])
    Z3 = surface_grid(X3, y, {"name": "huber", "delta": 1.0}, center3, (1, 3), a, c)
    theta = center3.copy()
    theta[1], theta[3] = a[1], c[2]
    r = y - X3 @ theta[:3] - theta[3]
    expect = np.mean(np.where(np.abs(r) <= 1, 0.5 * r * r, np.abs(r) - 0.5))
    assert Z3[2, 1] == pytest.approx(expect, rel=1e-12)


def test_animation_is_a_small_gif_of_a_moving_line(tmp_path, line_data):
    x, y = line_data
    path = np.column_stack([np.linspace(0, 2, 120), np.linspace(0, 3, 120)])
    out = animate_line(tmp_path / "a.gif", x, y, path, losses=list(range(120)), frames=40)
    img = Image.open(out)
    assert img.format == "GIF" and img.n_frames == 40
    assert out.stat().st_size < 600_000
    img.seek(0)
    first = np.asarray(img.convert("L"), dtype=float)
    img.seek(39)
    last = np.asarray(img.convert("L"), dtype=float)
    assert np.abs(first - last).mean() > 0.5  # the line moved
    no_temp_files(tmp_path)


def test_learning_rates_divergent_run_is_kept_until_it_blows_up(line_data):
    x, y = line_data
    curves = lr_curves(x, y, [0.001, 0.05], loss="l2", epochs=60)
    slow, slow_div = curves[0.001]
    fast, fast_div = curves[0.05]
    assert not slow_div and len(slow) >= 60 and slow[-1] < slow[0]
    assert fast_div and 1 < len(fast) < 60 and np.isfinite(fast).all() and fast[-1] > fast[0]


def test_sample_rows_is_bounded_and_uniform():
    n = 10_000
    X = torch.arange(n, dtype=torch.float64)[:, None]

    class Streamed(ArrayBatches):
        def full_batch(self):
            return None

    data = Streamed(X, X[:, 0] * 2, batch_size=997)
    Xs, ys = sample_rows(data, max_rows=1000)
    assert Xs.shape == (1000, 1) and np.allclose(ys, 2 * Xs[:, 0])
    assert len(np.unique(Xs)) == 1000 and 3000 < Xs.mean() < 7000  # from everywhere, not the first rows
    Xa, _ = sample_rows(as_batches(np.arange(50.0), np.arange(50.0)), max_rows=1000)
    assert sorted(Xa[:, 0]) == list(range(50))


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 2))
    y = X @ [1.5, -0.5] + 1 + rng.normal(size=500)
    path = tmp_path / "d.csv"
    rows = "\n".join(f"{a!r},{b!r},{c!r}" for (a, b), c in zip(X.tolist(), y.tolist()))
    path.write_text("a,b,y\n" + rows + "\n")
    return path, X, y


def test_cli_fit_summary_plot_report_and_plot_command(tmp_path, csv_file, capsys):
    path, X, y = csv_file
    rc = main(["fit", str(path), "--target", "y", "--summary", "--cov-type", "HC3", "--plot", str(tmp_path / "p"),
               "--report", str(tmp_path / "r.html"), "--save", str(tmp_path / "m.json"), "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and "HC3" in out and "R-squared" in out
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"fit.png", "residuals.png", "loss_surface.png",
                                                         "diagnostics.png", "partial_residuals.png"}
    assert (tmp_path / "r.html").read_text().count("data:image/png;base64,") == 5
    rc = main(["plot", str(tmp_path / "m.json"), str(path), "--out", str(tmp_path / "q"), "--coefs", "0,2"])
    assert rc == 0 and len(list((tmp_path / "q").glob("*.png"))) == 5
    no_temp_files(tmp_path)


def test_cli_errors_are_one_line(tmp_path, csv_file, capsys):
    path, _, _ = csv_file
    assert main(["fit", str(path), "--target", "y", "--summary", "--penalty", "l2", "--alpha", "1"]) == 2
    assert "unpenalized" in capsys.readouterr().err
    assert main(["fit", str(path), "--target", "y", "--summary", "--summary-level", "95"]) == 2
    assert "--summary-level" in capsys.readouterr().err
    assert main(["fit", str(path), "--target", "y", "--loss", "l1", "--summary", "--cov-type", "HC3"]) == 2
    assert "does not apply to the l1 loss" in capsys.readouterr().err
    main(["fit", str(path), "--target", "y", "--save", str(tmp_path / "m.json"), "-q"])
    capsys.readouterr()
    assert main(["plot", str(tmp_path / "m.json"), str(path)]) == 2
    assert "nothing to do" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_demo_writes_every_tutorial_output(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--n", "200", "--epochs", "40", "--log-every", "0", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"loss_curve.png", "loss_surface.png", "fit.png", "residuals.png", "animation.gif",
                     "learning_rates.png", "l1_vs_l2.png", "report.html"}
    for p in out.glob("*.png"):
        not_blank(p)
    gif = Image.open(out / "animation.gif")
    assert gif.n_frames == 40 and gif.size[0] >= 800  # readable: 800 px or wider
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6 and "data:image/gif;base64," in html
