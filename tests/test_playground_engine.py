"""The playground's server side: bounded inputs, the event stream, the PyTorch program that reproduces
what the page shows, uploads, and the app's routes (Starlette's TestClient; the browser test is
tests/test_playground_browser.py)."""
import contextlib
import io
import json
import re

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from gradfit.tutorial.code import pytorch_program  # noqa: E402
from gradfit.tutorial.playground.engine import events, to_json  # noqa: E402
from gradfit.tutorial.playground.inputs import InputError, parse_settings  # noqa: E402
from gradfit.tutorial.playground.server import create_app, labels  # noqa: E402


def run_events(obj, lang="en"):
    """The events as the page receives them (JSON)."""
    s, race = parse_settings(obj)
    return s, [json.loads(to_json(e)) for e in events(s, race, lang)]


def run_program(code: str) -> tuple[float, float]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<playground program>", "exec"), {"__name__": "__main__"})
    w, b = re.search(r"w = ([-\d.e+]+), b = ([-\d.e+]+)", out.getvalue()).groups()
    return float(w), float(b)


@pytest.mark.parametrize("obj", [
    {"n": 200},  # the tutorial's program: L1, SGD, lr 0.001, full batch
    {"n": 150, "loss": "l2", "optimizer": "momentum", "lr": 0.05, "epochs": 120, "standardize": True},
    {"n": 120, "loss": "huber", "optimizer": "adam", "lr": 0.05, "epochs": 40, "batch_size": 32, "seed": 3},
    {"n": 100, "loss": "quantile", "tau": 0.8, "optimizer": "nesterov", "lr": 0.01, "epochs": 60,
     "start": [4.0, -3.0], "added": [[9.0, -40.0]], "moved": {"5": [1.0, 30.0]}},
    {"n": 100, "loss": "l2", "optimizer": "gd", "lr": 0.02, "epochs": 80},
])
def test_the_code_panel_reproduces_the_w_b_the_page_shows(obj):
    s, evs = run_events(obj)
    setup = evs[0]
    done = [e for e in evs if e["type"] == "done"][0]
    assert setup["code"] == pytorch_program(s)
    w, b = run_program(setup["code"])
    assert w == pytest.approx(done["w"], abs=2e-4, rel=1e-4) and b == pytest.approx(done["b"], abs=2e-4, rel=1e-4)


def test_stream_has_setup_frames_and_done_with_the_why_line_and_a_race():
    s, evs = run_events({"n": 300, "loss": "l2", "lr": 0.01, "epochs": 50, "race": ["adam", "gd"]})
    kinds = [e["type"] for e in evs]
    assert kinds[0] == "setup" and kinds.count("done") == 3 and kinds.count("optimum") == 1
    assert kinds.index("optimum") < kinds.index("done")  # the why-line compares with the optimum
    setup, optimum = evs[0], evs[kinds.index("optimum")]
    assert len(optimum["surface"]["z"]) == 48 and optimum["optimum"]["solver"] == "exact"
    assert setup["lr_max"] == pytest.approx(0.029, rel=0.1)  # 2/L of the tutorial's data on the squared loss
    frames = {r: [f for e in evs if e["type"] == "frames" and e["run"] == r for f in e["frames"]] for r in range(3)}
    assert [f[0] for f in frames[0]] == list(range(51))
    done = {e["run"]: e for e in evs if e["type"] == "done"}
    assert {done[r]["optimizer"] for r in done} == {"sgd", "adam", "gd"}
    assert all(done[r]["kind"] in ("reached", "crawling", "stopped", "diverged") for r in done)


def test_diverging_and_korean_why_lines():
    _, evs = run_events({"n": 200, "loss": "l2", "lr": 0.5, "epochs": 100})
    done = [e for e in evs if e["type"] == "done"][0]
    assert done["kind"] == "diverged" and "2/L" in done["why"]
    _, evs = run_events({"n": 200, "loss": "l2", "lr": 0.5, "epochs": 100}, lang="ko")
    assert "발산" in [e for e in evs if e["type"] == "done"][0]["why"]
    assert labels("ko")["lr"] == "학습률"


@pytest.mark.parametrize("obj, words", [
    ({"n": 100_001}, "n must be between"), ({"epochs": 10_001}, "epochs must be between"),
    ({"lr": -1}, "lr must be between"), ({"loss": "l3"}, "loss must be one of"),
    ({"race": ["adam", "gd", "momentum"]}, "race takes at most"), ({"moved": {"5000": [1, 2]}}, "moved point"),
])
def test_inputs_are_bounded_with_a_clear_message(obj, words):
    with pytest.raises(InputError, match=words):
        parse_settings(obj)


def test_app_routes_stream_and_refuse_big_uploads():
    client = TestClient(create_app())
    assert "data-testid=\"why\"" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/api/labels?lang=ko").json()["labels"]["loss"] == "손실 함수"
    bad = client.post("/api/run", content=json.dumps({"n": 10**6}))
    assert bad.status_code == 400 and "n must be between 2 and 100000" in bad.json()["error"]
    resp = client.post("/api/run", content=json.dumps({"n": 100, "epochs": 20, "lang": "en"}))
    events_ = [json.loads(line[6:]) for line in resp.text.split("\n\n") if line.startswith("data: ")]
    assert events_[0]["type"] == "setup" and events_[-1]["type"] == "done"
    big = client.post("/api/upload", content=b"x,y\n" + b"1,2\n" * (3 * 1024 * 1024), headers={"X-Filename": "big.csv"})
    assert big.status_code == 413 and "larger than 10 MB" in big.json()["error"]
    up = client.post("/api/upload", content=b"size,price\n1,3\n2,5.1\n3,6.9\n4,9\n", headers={"X-Filename": "h.csv"})
    entry = up.json()
    assert entry["n"] == 4
    resp = client.post("/api/run", content=json.dumps({"upload": entry["id"], "n": 4, "loss": "l2", "lr": 0.01,
                                                        "epochs": 30}))
    evs = [json.loads(line[6:]) for line in resp.text.split("\n\n") if line.startswith("data: ")]
    setup, optimum, done = evs[0], next(e for e in evs if e["type"] == "optimum"), evs[-1]
    assert optimum["optimum"]["w"] == pytest.approx(1.98, abs=1e-6) and "h.csv" in setup["code"]
    assert done["type"] == "done"


def test_the_why_line_counts_mini_batch_steps_and_gd_says_it_ignores_the_batch_size():
    _, evs = run_events({"n": 300, "optimizer": "sgd", "batch_size": 32, "lr": 1e-4})
    done = next(e for e in evs if e["type"] == "done")  # 10 steps per epoch: b can move lr x 5000 = 0.5
    assert done["kind"] == "crawling" and "0.5 in 5000 steps" in done["why"] and evs[0]["note"] == ""
    _, evs = run_events({"n": 300, "optimizer": "gd", "batch_size": 32, "lr": 1e-4})
    done = next(e for e in evs if e["type"] == "done")  # gd: one full-batch step per epoch
    assert "0.05 in 500 steps" in done["why"] and "batch size 32" in evs[0]["note"]
    _, evs = run_events({"n": 300, "optimizer": "gd", "batch_size": 32, "lr": 1e-4}, lang="ko")
    assert "배치 크기 32" in evs[0]["note"]


def test_an_l1_run_whose_steps_could_have_reached_b_says_its_gradient_shrank():
    _, evs = run_events({"n": 1000, "optimizer": "gd", "lr": 0.01})  # lr x 500 steps = 5 > the 2.4 b had to go
    done = next(e for e in evs if e["type"] == "done")
    assert done["kind"] == "crawling" and "b slows down long before the optimum" in done["why"]
    assert "could have moved b 5 in 500 steps" in done["why"]


def test_data_on_an_exact_line_gives_a_readable_excess():
    _, evs = run_events({"n": 200, "noise": 0, "loss": "l1", "epochs": 50})  # the optimum's loss is 0
    done = next(e for e in evs if e["type"] == "done")
    assert done["kind"] == "crawling" and re.search(r"still [\d,]+x above the optimum", done["why"])
    assert len(done["excess"]) < 12  # not a 300-digit percentage
