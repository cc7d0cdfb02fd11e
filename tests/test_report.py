"""The HTML report: one self-contained file, the fit's numbers in it, phone and print styles."""
from html.parser import HTMLParser

import numpy as np
import pytest

import gradfit
from gradfit.data.arrays import as_batches
from gradfit.viz.report import build_report, column_summary, write_fit_outputs, write_report

VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr", "col", "area", "base", "embed", "param",
        "track"}
OPTIONAL_END = {"p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "option"}


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.stack, self.errors, self.text = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        while self.stack and self.stack[-1] != tag and self.stack[-1] in OPTIONAL_END:
            self.stack.pop()
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html):
    c = Collector()
    c.feed(html)
    c.close()
    return c


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    rng = np.random.default_rng(3)
    x = rng.uniform(-5, 5, 300)
    y = 1.5 * x - 2 + rng.normal(size=300)
    model = gradfit.fit(x, y, solver="sgd", lr=0.01, epochs=80, warn=False)
    folder = tmp_path_factory.mktemp("report")
    data = as_batches(x, y, feature_names=["x"], target_name="y")
    written = write_fit_outputs(model, data, report=folder / "r.html", summary=gradfit.fit(x, y).summary(x, y))
    return model, x, y, written["report"]


def test_report_is_self_contained_and_well_formed(fitted):
    model, x, y, path = fitted
    html = path.read_text()
    doc = parse(html)
    assert not doc.errors and set(doc.stack) <= OPTIONAL_END, (doc.errors, doc.stack)
    assert "script" not in doc.tags and "link" not in doc.tags and "iframe" not in doc.tags
    srcs = [a.get("src", "") for t, a in doc.attrs if t == "img"]
    assert len(srcs) == 6 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in html and "https://" not in html and "url(" not in html
    metas = [a for t, a in doc.attrs if t == "meta"]
    assert any(a.get("name") == "viewport" and "width=device-width" in a.get("content", "") for a in metas)
    assert "@media print" in html and "@media (max-width" in html and "overflow-x:auto" in html


def test_report_carries_the_fit_certificate_and_summary(fitted):
    model, x, y, path = fitted
    text = " ".join(parse(path.read_text()).text)
    for section in ("Data", "Settings", "Fit", "Certificate", "Statistical summary", "Plots"):
        assert section in text
    assert f"{model.coef_[0]:.6g}" in text and f"{model.intercept_:.6g}" in text
    assert ("NOT converged" in text) == (not model.converged_)
    assert "std err" in text and "P>|t|" in text and "Adj. R-squared" in text and "adj r squared" not in text


def test_column_summary_is_exact_and_streams():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(1000, 2)) * [1, 1e3] + [1e6, -5]
    y = rng.normal(size=1000)
    rows = column_summary(as_batches(X, y, batch_size=77))
    assert [r["column"] for r in rows] == ["x0", "x1", "y"]
    for r, col in zip(rows, [X[:, 0], X[:, 1], y]):
        assert r["rows"] == 1000 and r["mean"] == pytest.approx(col.mean(), rel=1e-13)
        assert r["std"] == pytest.approx(col.std(ddof=1), rel=1e-9)
        assert r["min"] == col.min() and r["max"] == col.max()


def test_report_escapes_names_and_writes_atomically(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 1))
    model = gradfit.fit(X, X[:, 0] + rng.normal(size=50))
    model.feature_names_in_ = ["<b>x&y</b>"]
    html = build_report(model, title="t <script>")
    assert "<script>" not in html and "&lt;b&gt;x&amp;y&lt;/b&gt;" in html
    write_report(tmp_path / "sub" / "r.html", model)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["r.html"]
