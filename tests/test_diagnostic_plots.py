"""Diagnostic plots (issue 17): the numbers behind them equal statsmodels' influence measures; every kind
returns a Figure, draws into a given Axes, and states how many rows it shows."""
import numpy as np
import pytest
from matplotlib.figure import Figure

import gradfit
from gradfit.data.arrays import as_batches
from gradfit.viz.diagnostics import KINDS, diagnostic_sample
from gradfit.viz.figure import new_figure
from gradfit.viz.report import write_plots

sm = pytest.importorskip("statsmodels.api")


def data(n=300):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(n, 3)) * [1, 3, 0.2]
    y = X @ [1.0, -0.5, 4.0] + 2 + rng.normal(size=n)
    y[7] += 12  # an outlier with some influence
    return X, y


def test_leverage_standardized_residuals_and_cooks_distance_equal_statsmodels():
    X, y = data()
    model = gradfit.fit(X, y)
    d = diagnostic_sample(model, as_batches(X, y))
    infl = sm.OLS(y, sm.add_constant(X)).fit().get_influence()
    order = np.lexsort(X.T[::-1])  # the sample holds every row, in some order: match by the rows
    got = np.lexsort(d.X.T[::-1])
    assert np.allclose(d.leverage[got], infl.hat_matrix_diag[order], rtol=1e-9)
    assert np.allclose(d.standardized[got], infl.resid_studentized_internal[order], rtol=1e-9)
    assert np.allclose(d.cooks[got], infl.cooks_distance[0][order], rtol=1e-9)
    assert d.caption == "all 300 rows"


@pytest.mark.parametrize("kind", ["all", *KINDS])
def test_every_kind_returns_a_figure(kind):
    X, y = data()
    fig = gradfit.fit(X, y).plot(X, y, kind=kind)
    assert isinstance(fig, Figure) and fig.axes
    titles = " ".join(a.get_title() for a in fig.axes) + (fig._suptitle.get_text() if fig._suptitle else "")
    assert "all 300 rows" in titles


def test_ax_draws_into_the_callers_axes_and_loss_needs_no_data():
    X, y = data()
    fig, (a1, a2) = new_figure(1, 2)
    assert gradfit.fit(X, y).plot(X, y, kind="qq", ax=a1) is fig and a1.collections
    sgd = gradfit.fit(X, y, solver="adam", lr=0.05, epochs=50, warn=False)
    assert sgd.plot(kind="loss", ax=a2) is fig and a2.lines
    with pytest.raises(ValueError, match="kind"):
        gradfit.fit(X, y).plot(X, y, kind="histogram")
    fig2, ax = new_figure()
    assert gradfit.fit(X, y).plot(X, y, kind="fit", ax=ax) is fig2 and ax.collections


def test_a_streamed_source_is_sampled_and_the_picture_says_so():
    X, y = data()
    model = gradfit.fit(X, y)
    streamed = as_batches(X, y, batch_size=40)

    class Streamed(type(streamed)):
        def full_batch(self):
            return None

    source = Streamed(streamed.X, streamed.y, batch_size=40, feature_names=streamed.feature_names)
    d = diagnostic_sample(model, source, max_rows=50)
    assert len(d.y) == 50 and d.n_rows == 300 and d.caption == "50 rows sampled of 300"
    full = diagnostic_sample(model, as_batches(X, y))
    row = np.flatnonzero((full.X == d.X[0]).all(axis=1))[0]  # leverage uses every row's X'X, not the sample's
    assert abs(full.leverage[row] - d.leverage[0]) < 1e-12
    fig = model.plot(source, kind="leverage", max_rows=50)
    assert "50 rows sampled of 300" in fig.axes[0].get_title()


def test_write_plots_and_robust_losses(tmp_path):
    X, y = data()
    model = gradfit.fit(X, y, loss="huber", warn=False)  # the squared loss's set: tests/test_plots.py
    paths = write_plots(model, as_batches(X, y), tmp_path)
    assert {"diagnostics", "partial_residuals"} <= set(paths) and paths["diagnostics"].stat().st_size > 10_000
    d = diagnostic_sample(gradfit.fit(X, y, loss="quantile", warn=False), as_batches(X, y))
    assert d.scale_note == "robust scale 1.4826 MAD" and np.all(np.isfinite(d.standardized))
