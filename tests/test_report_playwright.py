"""The report with the analyst's diagnostics (issue 17) in headless Chromium through Playwright: no console
message or page error, every picture decoded, nothing wider than a phone's screen but the tables' own
scroll boxes; full-page screenshots at desktop and phone widths go to out/report/ for a person to look at.
"""
import shutil
from pathlib import Path

import numpy as np
import pytest

import gradfit
from gradfit.data.arrays import as_batches
from gradfit.viz.report import column_summary, write_fit_outputs

pd = pytest.importorskip("pandas")
pytest.importorskip("formulaic")
sync_api = pytest.importorskip("playwright.sync_api")

OUT = Path(__file__).resolve().parents[1] / "out" / "report"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"sqft": rng.uniform(500, 3000, n), "age": rng.uniform(0, 60, n),
                       "hood": rng.choice(["East", "North", "South"], n)})
    df["price"] = 50 + 0.1 * df.sqft - 0.8 * df.age + np.where(df.hood == "North", 30, 0) \
        + 0.001 * df.sqft * df.age + rng.normal(0, 15, n)
    model = gradfit.fit(formula="price ~ sqft + age + C(hood) + sqft:age", data=df)
    summary = model.summary(df)
    X, y = model.formula_.matrix(df), df["price"].to_numpy()
    data = as_batches(X, y, feature_names=model.feature_names_in_, target_name="price")
    path = tmp_path_factory.mktemp("pw") / "report.html"
    write_fit_outputs(model, data, report=path, summary=summary, settings={"formula": model.formula_.formula})
    assert column_summary(data)
    return path


def test_report_in_chromium_desktop_and_phone(report):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed")
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for name, (width, height) in WIDTHS.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                messages, errors = [], []
                page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(report.as_uri(), wait_until="load")
                assert messages == [] and errors == [], (name, messages, errors)
                text = page.inner_text("body")
                for words in ("Durbin-Watson", "Prob(JB)", "Cond. No.", "C(hood)[T.North]", "VIF", "Adj. R-squared"):
                    assert words in text, words
                assert "adj r squared" not in text and "nan" not in text.split()
                broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
                assert broken == 0 and page.evaluate("document.images.length") == 5
                # the page itself never scrolls sideways; wide tables scroll in their own box
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
                shot = OUT / f"report-{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 50_000
                page.close()
        finally:
            browser.close()
