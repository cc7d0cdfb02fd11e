"""Latency of the playground (issue 18): a control change to the first frame of the descent and to the
whole path, for the tutorial's 1,000 points and 500 epochs, against the targets (100 ms / 300 ms).

A live server (uvicorn, as ``gradfit playground`` runs it) on 127.0.0.1. Two ways to be the page:

- ``http`` (default): an HTTP client posts the settings and reads the server-sent events as the page's
  script does; times from sending the POST to the first frame of the learner's run, to its last frame
  (the whole path) and to its why-line (``done``).
- ``--browser``: chromium (Playwright) on the real page; the control is changed in the page and the
  page's own clock (``state.marks``) says when the first and the last frame arrived and when they
  were drawn (the browser-visible latency: JSON parsing and canvas drawing included).

Each change is preceded by the page's previous state (what the server caches is as warm as it would
be) and measured ``--repeats`` times after one warm-up; the table shows the median and the worst.
The floor: the same 500 epochs as a plain PyTorch loop (nn.Linear, the loss, optim.SGD,
zero_grad/backward/step) in this process on one thread, interleaved with the cases.

    python bench/playground.py --repeats 5              # the table for bench/README.md
    python bench/playground.py --repeats 5 --browser    # the same, timed inside chromium
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import threading
import time

import torch

TARGETS_MS = {"first": 100.0, "path": 300.0}
BASE = {"n": 1000, "epochs": 500, "lang": "en", "lr": 0.001}
CASES = [  # (what the learner did, settings before, settings after); "added" gets a new point each time
    ("learning rate 0.001 -> 0.002 (L1, SGD)", {}, {"lr": 0.002}),
    ("loss L1 -> L2 (new optimum and surface)", {}, {"loss": "l2"}),
    ("point added (new data, optimum, surface)", {}, {"added": [[9, -40]]}),
    ("optimizer SGD -> Adam (lr 0.01)", {"lr": 0.01}, {"lr": 0.01, "optimizer": "adam"}),
    ("race: SGD, momentum and Adam (lr 0.01)", {"lr": 0.01}, {"lr": 0.01, "race": ["momentum", "adam"]}),
]


def start_server():
    import uvicorn

    from gradfit.tutorial.playground.server import create_app, free_socket
    torch.set_num_threads(1)  # as gradfit playground does
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def http_change(client, url: str, settings: dict) -> dict:
    """Milliseconds from sending the change to: setup, the learner's first and last frame, optimum, done."""
    marks = {}
    t0 = time.perf_counter()
    with client.stream("POST", url + "/api/run", content=json.dumps(settings)) as resp:
        buffer = ""
        for text in resp.iter_text():
            buffer += text
            while "\n\n" in buffer:
                chunk, buffer = buffer.split("\n\n", 1)
                ev = json.loads(chunk[6:])
                now = 1000 * (time.perf_counter() - t0)
                if ev["type"] in ("setup", "optimum"):
                    marks[ev["type"]] = now
                elif ev["type"] == "frames" and ev["run"] == 0:
                    marks.setdefault("first", now)
                    marks["path"] = now
                    marks["epochs"] = ev["frames"][-1][0]
                elif ev["type"] == "done" and ev["run"] == 0:
                    marks["done"] = now
    marks["all_done"] = 1000 * (time.perf_counter() - t0)
    return marks


class BrowserPage:
    """The page in chromium; ``change(settings)`` sets the controls as a learner would and returns the
    page's own timings (ms from the change): first/last frame received and drawn, done."""

    def __init__(self, url: str):
        from playwright.sync_api import sync_playwright
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        self.page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.goto(url + "/?lang=en")
        self.page.wait_for_function("+(document.body.dataset.completed || 0) > 0", timeout=120_000)

    def change(self, settings: dict) -> dict:
        before = int(self.page.evaluate("+(document.body.dataset.completed || 0)"))
        t0 = self.page.evaluate("""(s) => {
            state.added = s.added || [];
            document.querySelectorAll(".race input").forEach((e) => { e.checked = (s.race || []).includes(e.value); });
            for (const [id, v] of [["loss", s.loss || "l1"], ["optimizer", s.optimizer || "sgd"], ["lr", String(s.lr)],
                                   ["epochs", String(s.epochs)], ["n", String(s.n)]]) document.getElementById(id).value = v;
            const t0 = performance.now();
            document.getElementById("lr").dispatchEvent(new Event("change"));
            return t0;
        }""", settings)
        self.page.wait_for_function(f"+(document.body.dataset.completed || 0) > {before}", timeout=120_000)
        self.page.wait_for_timeout(50)  # the last requestAnimationFrame draw
        m = self.page.evaluate("state.marks")
        return {"first": m["first"] - t0, "first_drawn": m["firstDrawn"] - t0, "path": m["last"] - t0,
                "drawn": m["drawn"] - t0, "done": m["done"] - t0,
                "epochs": self.page.evaluate("state.runs[0].frames.at(-1)[0]")}

    def close(self):
        self.browser.close()
        self.pw.stop()


def plain_pytorch_ms(n: int, epochs: int) -> float:
    from torch import nn, optim
    torch.manual_seed(0)
    x = nn.init.uniform_(torch.Tensor(n, 1), -10, 10)
    y = 2 * (x + nn.init.normal_(torch.Tensor(n, 1), std=1)) + 3
    model = nn.Linear(1, 1)
    loss_func, opt = nn.L1Loss(), optim.SGD(model.parameters(), lr=0.001)
    t0 = time.perf_counter()
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_func(model(x), y)
        loss.backward()
        opt.step()
    return 1000 * (time.perf_counter() - t0)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--browser", action="store_true", help="time inside chromium (Playwright) on the real page")
    args = ap.parse_args(argv)
    import httpx
    load0 = os.getloadavg()
    url, server, thread = start_server()
    base = dict(BASE, n=args.n, epochs=args.epochs)
    page = BrowserPage(url) if args.browser else None
    rows, floors = [], []
    with httpx.Client(timeout=120) as client:
        change = page.change if page else (lambda settings: http_change(client, url, settings))
        for name, before, after in CASES:
            marks_list = []
            for k in range(args.repeats + 1):
                floors.append(plain_pytorch_ms(args.n, args.epochs))  # interleaved: the same load
                change(dict(base, **before))  # the page's state before the change
                now = dict(base, **after)
                if "added" in now:  # a new point each time, so nothing is cached
                    now["added"] = [[9, -40 - k]]
                marks = change(now)
                if k:  # the first round warms up
                    marks_list.append(marks)
            col = lambda key: [m[key] for m in marks_list]  # noqa: E731
            rows.append({"case": name, "epochs": marks_list[-1]["epochs"],
                         **{key: (statistics.median(col(key)), max(col(key)))
                            for key in marks_list[0] if key != "epochs"}})
    if page:
        page.close()
    server.should_exit = True
    thread.join(5)
    load1 = os.getloadavg()
    floor = statistics.median(floors)
    where = "inside chromium (the page's clock, from the control change)" if args.browser else \
        "over HTTP (from the POST)"
    print(f"playground latency {where}: {args.n} points, {args.epochs} epochs, {args.repeats} changes per case "
          f"(median, worst); {os.cpu_count()} cores, load average {load0[0]:.1f} at start, {load1[0]:.1f} at end")
    print(f"floor: the same {args.epochs} epochs as a plain PyTorch loop (nn.Linear, nn.L1Loss, optim.SGD) in-process, "
          f"one thread: median {floor:.0f} ms, best {min(floors):.0f} ms\n")
    last = "last frame drawn" if args.browser else "why-line (done)"
    print(f"| control change | first frame | whole path (last frame) | {last} | path / plain loop | target (on the median) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ok = r["first"][0] <= TARGETS_MS["first"] and r["path"][0] <= TARGETS_MS["path"]
        tail = r["drawn"] if args.browser else r["done"]
        print(f"| {r['case']} | {r['first'][0]:.0f} ms ({r['first'][1]:.0f}) | {r['path'][0]:.0f} ms ({r['path'][1]:.0f}) "
              f"| {tail[0]:.0f} ms ({tail[1]:.0f}) | {r['path'][0] / floor:.2f}x | {'met' if ok else 'MISSED'} "
              f"(<= {TARGETS_MS['first']:.0f} / {TARGETS_MS['path']:.0f} ms) |")
    return rows


if __name__ == "__main__":
    main()
