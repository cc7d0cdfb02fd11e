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
