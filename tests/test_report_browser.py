"""The report in a real headless browser (Debian's chromium): it loads with no console message,
the screenshots (phone and desktop widths) are not blank, and it prints to PDF.

Without chromium the test installs it (``apt-get install -y chromium``) only when running as root
with ``CI=true`` or ``GRADFIT_INSTALL_BROWSER=1``; otherwise, or when the install fails, it skips
and says why.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

import gradfit
from gradfit.data.arrays import as_batches
from gradfit.viz.report import write_fit_outputs

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def _find() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _install() -> str:
    allowed = os.environ.get("CI", "").lower() == "true" or os.environ.get("GRADFIT_INSTALL_BROWSER") == "1"
    if not allowed:
        return "chromium is not installed (set CI=true or GRADFIT_INSTALL_BROWSER=1 to let the test install it)"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "chromium is not installed and installing it needs root (apt-get install chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"installing chromium failed: {exc}"
        if done.returncode != 0:
            return f"installing chromium failed ({' '.join(cmd)}): {done.stderr.strip()[-300:]}"
    return ""


@pytest.fixture(scope="module")
def chromium():
    path = _find()
    if path is None:
        reason = _install()
        path = _find()
        if path is None:
            print(f"SKIP browser test: {reason or 'chromium still missing after the install'}")
            pytest.skip(reason or "chromium still missing after the install")
    return path


def browse(chromium, url, tmp_path, *actions, width=412, height=915):
    profile = tmp_path / f"profile-{width}"
    cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", *actions, url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)  # an action (dump, shot) ends it
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return done, console


def not_blank(png):
    img = np.asarray(Image.open(png).convert("L"), dtype=float)
    return img.std() > 10 and (img < 128).mean() > 0.01


def test_the_console_check_catches_a_broken_page(chromium, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><title>x</title><body><script>undefinedFunction()</script></body>")
    _, console = browse(chromium, bad.as_uri(), tmp_path, "--dump-dom")
    assert any("Uncaught" in line for line in console)


def test_report_renders_without_console_errors(chromium, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-10, 10, 400)
    y = 2 * x + 3 + rng.normal(size=400)
    model = gradfit.fit(x, y, solver="sgd", lr=0.002, epochs=60, warn=False)
    data = as_batches(x, y, feature_names=["x"], target_name="y")
    report = write_fit_outputs(model, data, report=tmp_path / "report.html",
                               summary=gradfit.fit(x, y).summary(x, y))["report"]
    phone, pdf = tmp_path / "phone.png", tmp_path / "print.pdf"
    done, console = browse(chromium, report.as_uri(), tmp_path, f"--screenshot={phone}", f"--print-to-pdf={pdf}",
                           "--dump-dom")
    assert done.returncode == 0, done.stderr[-500:]
    assert console == [], console
    assert "Statistical summary" in done.stdout and "Certificate" in done.stdout  # the DOM was built
    assert not_blank(phone)
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000  # the plots made it to print
    desktop = tmp_path / "desktop.png"
    done, console = browse(chromium, report.as_uri(), tmp_path, f"--screenshot={desktop}", width=1280, height=900)
    assert done.returncode == 0 and console == [] and not_blank(desktop)
