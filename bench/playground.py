"""Latency of the playground (issue 18): a control change, over HTTP, to the first frame of the descent
on the page's stream and to the whole path, for the tutorial's 1,000 points and 500 epochs.

A live server (uvicorn, as ``gradfit playground`` runs it) on 127.0.0.1; an HTTP client posts the
settings and reads the server-sent events as the page does. Each case is measured ``--repeats`` times
(median and worst printed) after one warm-up, beside the floor: the same 500 epochs as a plain
PyTorch loop (nn.Linear, the loss, optim.SGD, zero_grad/backward/step) in this process.

    python bench/playground.py              # prints the table for bench/README.md
    python bench/playground.py --repeats 5 --n 200
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

import torch

TARGETS_MS = {"first": 100.0, "path": 300.0}


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


def one_change(client, url: str, settings: dict) -> dict:
    """Milliseconds from sending the change to: the setup event, the first frame, the last frame, done."""
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
                if ev["type"] == "setup":
                    marks["setup"] = now
                elif ev["type"] == "frames" and ev["run"] == 0:
                    marks.setdefault("first", now)
                    marks["path"] = now
                    marks["epochs"] = ev["frames"][-1][0]
                elif ev["type"] == "done" and ev["run"] == 0:
                    marks["done"] = now
    return marks


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
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=500)
    args = ap.parse_args(argv)
    import httpx
    url, server, thread = start_server()
    base = {"n": args.n, "epochs": args.epochs, "lang": "en"}
    cases = [  # (what the learner did, settings before, settings after)
        ("learning rate moved (L1, SGD)", dict(base, lr=0.001), dict(base, lr=0.002)),
        ("loss switched L1 -> L2 (new optimum and surface)", dict(base, lr=0.001), dict(base, lr=0.001, loss="l2")),
        ("point added (new data, optimum, surface)", dict(base, lr=0.001), dict(base, lr=0.001, added=[[9, -40]])),
        ("optimizer switched to Adam", dict(base, lr=0.01), dict(base, lr=0.01, optimizer="adam")),
    ]
    rows = []
    floor = min(plain_pytorch_ms(args.n, args.epochs) for _ in range(3))
    with httpx.Client(timeout=120) as client:
        for name, before, after in cases:
            firsts, paths = [], []
            for k in range(args.repeats + 1):
                one_change(client, url, before)  # the page's state before the change (cached as it would be)
                if "added" in after:  # a new point each time, so nothing is cached
                    after = dict(after, added=[[9, -40 - k]])
                marks = one_change(client, url, after)
                if k:  # the first round warms up
                    firsts.append(marks["first"])
                    paths.append(marks["path"])
            rows.append({"case": name, "first_median": statistics.median(firsts), "first_worst": max(firsts),
                         "path_median": statistics.median(paths), "path_worst": max(paths),
                         "epochs": marks["epochs"]})
    server.should_exit = True
    thread.join(5)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"playground latency, {args.n} points, {args.epochs} epochs, {args.repeats} changes per case, "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    print(f"floor: the same {args.epochs} epochs as a plain PyTorch loop in-process: {floor:.0f} ms\n")
    print("| control change | first frame, median (worst) | whole path, median (worst) | path / plain loop | target |")
    print("|---|---|---|---|---|")
    for r in rows:
        ok = r["first_median"] <= TARGETS_MS["first"] and r["path_median"] <= TARGETS_MS["path"]
        print(f"| {r['case']} | {r['first_median']:.0f} ms ({r['first_worst']:.0f}) | {r['path_median']:.0f} ms "
              f"({r['path_worst']:.0f}) | {r['path_median'] / floor:.1f}x | {'met' if ok else 'MISSED'} "
              f"(<= {TARGETS_MS['first']:.0f} / {TARGETS_MS['path']:.0f} ms) |")
    return rows


if __name__ == "__main__":
    main()
