"""The playground in a real browser: Playwright driving Debian's chromium against a live server.

One browser and one server for the module. Skips (saying why) when chromium or the playwright
package is missing; .ci/run installs chromium and the Hangul font.
"""
import contextlib
import io
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from gradfit.tutorial.playground.engine import events  # noqa: E402
from gradfit.tutorial.playground.inputs import parse_settings  # noqa: E402
from gradfit.tutorial.playground.server import create_app, free_socket  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "out" / "playground"


@pytest.fixture(scope="module")
def url():
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (.ci/run installs it with apt-get)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, url):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.console_errors = []
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    pg.goto(url + "?lang=en&n=200")
    wait_run(pg, 0)
    yield pg
    assert not pg.console_errors, pg.console_errors
    ctx.close()


def completed(pg) -> int:
    return int(pg.evaluate("+(document.body.dataset.completed || 0)"))


def wait_run(pg, before: int) -> None:
    pg.wait_for_function(f"+(document.body.dataset.completed || 0) > {before}", timeout=180_000)


def change(pg, testid: str, value: str) -> None:
    before = completed(pg)
    pg.fill(f"[data-testid={testid}]", value)
    pg.press(f"[data-testid={testid}]", "Enter")
    wait_run(pg, before)


def select(pg, testid: str, value: str) -> None:
    before = completed(pg)
    pg.select_option(f"[data-testid={testid}]", value)
    wait_run(pg, before)


def optimum(pg) -> tuple[float, float]:
    el = pg.locator("[data-testid=optimum]")
    return float(el.get_attribute("data-w")), float(el.get_attribute("data-b"))


def test_learning_rate_from_0_001_to_5_turns_the_why_line_to_diverged(page):
    change(page, "lr", "0.001")
    why = page.locator("[data-testid=why]")
    assert why.get_attribute("data-kind") == "crawling" and "diverged" not in why.text_content()
    change(page, "lr", "5")
    assert why.get_attribute("data-kind") == "diverged" and "diverged" in why.text_content()
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / "desktop-diverged.png"), full_page=True)


def test_korean_labels(page):
    before = completed(page)
    page.select_option("[data-testid=lang]", "ko")
    wait_run(page, before)
    assert page.locator("[data-i18n=lr]").first.text_content() == "학습률"
    assert page.locator("[data-i18n=loss]").first.text_content() == "손실 함수"
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert re.search("[가-힣]", page.locator("[data-testid=why]").text_content())
    page.screenshot(path=str(OUT / "desktop-ko.png"), full_page=True)


def test_an_outlier_moves_the_l2_line_more_than_the_l1_line(page):
    change(page, "n", "100")
    select(page, "loss", "l2")
    l2_before = optimum(page)
    select(page, "loss", "l1")
    l1_before = optimum(page)
    box = page.locator("[data-testid=data]").bounding_box()
    before = completed(page)
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.85)  # bottom right: far below the line
    wait_run(page, before)
    l1_after = optimum(page)
    select(page, "loss", "l2")
    l2_after = optimum(page)

    def moved(a, b):  # how far the line moved, at x = -10 and x = 10
        return max(abs((a[0] - b[0]) * x + a[1] - b[1]) for x in (-10, 10))
    assert moved(l2_before, l2_after) > 3 * moved(l1_before, l1_after) and moved(l2_before, l2_after) > 0.1
    page.screenshot(path=str(OUT / "desktop-outlier.png"), full_page=True)


def test_the_code_panel_gives_the_w_b_the_page_shows(page):
    change(page, "n", "200")
    select(page, "optimizer", "momentum")
    code = page.locator("[data-testid=code]").text_content()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<code panel>", "exec"), {"__name__": "__main__"})
    w, b = map(float, re.search(r"w = ([-\d.e+]+), b = ([-\d.e+]+)", out.getvalue()).groups())
    fit = page.locator("[data-testid=fit]")
    assert w == pytest.approx(float(fit.get_attribute("data-w")), abs=2e-4)
    assert b == pytest.approx(float(fit.get_attribute("data-b")), abs=2e-4)


def test_a_race_draws_three_paths_and_a_bound_is_a_clear_message(page):
    page.check("[data-testid=race-adam]")
    page.check("[data-testid=race-gd]")
    page.wait_for_function("state.runs.filter(r => r && r.done).length === 3", timeout=180_000)
    assert page.evaluate("state.runs.map(r => r.done.optimizer).join()") == "sgd,adam,gd"
    page.fill("[data-testid=epochs]", "20000")
    page.press("[data-testid=epochs]", "Enter")
    page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert "epochs must be between 1 and 10000" in page.locator("[data-testid=error]").text_content()


def test_screenshots_at_phone_width(browser, url):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    pg = ctx.new_page()
    errors = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.goto(url + "?lang=ko&n=200")
    wait_run(pg, 0)
    OUT.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(OUT / "phone-ko.png"), full_page=True)
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
    assert not errors
    ctx.close()


TABS = [  # three learners at once, each with its own data, loss, optimizer and language; long enough
    # runs (~0.1 s on an idle machine, more than the few ms between the changes) that they overlap
    {"lang": "en", "n": 1000, "loss": "l2", "optimizer": "momentum", "lr": 0.0005, "epochs": 1000},
    {"lang": "ko", "n": 1200, "loss": "huber", "optimizer": "adam", "lr": 0.02, "epochs": 1000, "seed": 3},
    {"lang": "en", "n": 800, "loss": "l1", "optimizer": "gd", "lr": 0.01, "epochs": 1200, "seed": 7},
]


def expected(obj: dict) -> dict:
    """What one tab must show: the same settings run in this process."""
    s, race = parse_settings(obj)
    evs = list(events(s, race, obj["lang"]))
    done = next(e for e in evs if e["type"] == "done")
    opt = next(e for e in evs if e["type"] == "optimum")["optimum"]
    epochs = [f[0] for e in evs if e["type"] == "frames" and e["run"] == 0 for f in e["frames"]]
    return {"w": done["w"], "b": done["b"], "w*": opt["w"], "b*": opt["b"], "kind": done["kind"], "epochs": epochs}


def test_three_tabs_at_once_each_get_their_own_run(browser, url):
    contexts, pages = [], []
    for obj in TABS:  # each tab starts its first run as soon as it loads: the runs overlap on the server
        ctx = browser.new_context(viewport={"width": 1200, "height": 900})
        pg = ctx.new_page()
        pg.errors = []
        pg.on("console", lambda m, pg=pg: pg.errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e, pg=pg: pg.errors.append(str(e)))
        query = "&".join(f"{k}={v}" for k, v in obj.items() if k not in ("lr", "epochs"))
        pg.goto(url + "?" + query + "&lr=0.001&epochs=1")  # a one-epoch first run: the data, optimum, surface
        contexts.append(ctx)
        pages.append(pg)
    for pg in pages:
        wait_run(pg, 0)
    counts = [completed(pg) for pg in pages]
    for pg, obj in zip(pages, TABS):  # then every tab changes its learning rate without waiting for the others
        pg.evaluate("([lr, epochs]) => { document.getElementById('epochs').value = epochs; "
                    "const el = document.getElementById('lr'); el.value = lr; el.dispatchEvent(new Event('change')); }",
                    [str(obj["lr"]), str(obj["epochs"])])
    spans = []
    for pg, obj, count in zip(pages, TABS, counts):
        wait_run(pg, count)
        spans.append(pg.evaluate("[performance.timeOrigin + state.marks.run, performance.timeOrigin + state.marks.done]"))
        want = expected(obj)
        fit, opt = pg.locator("[data-testid=fit]"), pg.locator("[data-testid=optimum]")
        assert float(fit.get_attribute("data-w")) == pytest.approx(want["w"], abs=1e-6)
        assert float(fit.get_attribute("data-b")) == pytest.approx(want["b"], abs=1e-6)
        assert float(opt.get_attribute("data-w")) == pytest.approx(want["w*"], abs=1e-9)
        assert float(opt.get_attribute("data-b")) == pytest.approx(want["b*"], abs=1e-9)
        assert pg.locator("[data-testid=why]").get_attribute("data-kind") == want["kind"]
        epochs = pg.evaluate("state.runs[0].frames.map(f => f[0])")  # every epoch once, in order: no frame of another tab
        assert epochs == want["epochs"] == list(range(len(epochs))) and len(epochs) > 100
        assert pg.evaluate("state.runs.length") == 1 and pg.evaluate("state.setup.points.n") == obj["n"]
        hangul = bool(re.search("[가-힣]", pg.locator("[data-testid=why]").text_content()))
        assert hangul == (obj["lang"] == "ko")
        assert not pg.errors, pg.errors
    assert max(start for start, _ in spans) < min(end for _, end in spans), f"the runs did not overlap: {spans}"
    for ctx in contexts:
        ctx.close()


def test_bounds_on_n_and_uploads_are_clear_messages(page, tmp_path):
    page.fill("[data-testid=n]", "100001")
    page.press("[data-testid=n]", "Enter")
    page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert "n must be between 2 and 100000, got 100001" in page.locator("[data-testid=error]").text_content()
    page.fill("[data-testid=n]", "200")
    before = completed(page)
    page.press("[data-testid=n]", "Enter")
    wait_run(page, before)
    assert page.locator("[data-testid=error]").is_hidden()
    big = tmp_path / "big.csv"
    big.write_bytes(b"x,y\n" + b"1.5,2.5\n" * (10 * 1024 * 1024 // 8 + 1))  # just over 10 MB
    page.set_input_files("[data-testid=upload]", str(big))
    page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert "big.csv is larger than 10 MB" in page.locator("[data-testid=error]").text_content()
    rows = b"x,y\n" + b"1,2\n" * 100_001  # under 10 MB, over the row bound
    page.set_input_files("[data-testid=upload]", files=[{"name": "rows.csv", "mimeType": "text/csv", "buffer": rows}])
    page.wait_for_function("document.getElementById('error').textContent.includes('rows.csv')")
    assert "rows.csv has 100001 rows; the playground takes at most 100000" in page.locator("[data-testid=error]").text_content()
    page.console_errors = [e for e in page.console_errors if "413" not in e and "400" not in e]  # the refused uploads
