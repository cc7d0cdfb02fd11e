"""Scaling of gradfit on torch.distributed (issue 5): 1 -> 2 processes on this machine, and the GPU.

    python bench/scaling.py                  # CPU: exact fit and a full-batch GD epoch, 1 vs 2 processes
    python bench/scaling.py --gpu            # CUDA: 100M x 32 float32 vs one read of X, and vs scikit-learn
    python bench/scaling.py --gpu --device cpu --rows 200000   # smoke run of the GPU mode's code on the CPU

CPU mode: every configuration runs in fresh processes started by gradfit's own launcher
(:func:`gradfit.cli.launcher.spawn`, gloo on 127.0.0.1). Each process builds only its shard of
the same data (blocks of rows drawn from per-block seeds), so 1 and 2 processes fit identical data.
Times are the slowest rank's, best of ``--repeats``; efficiency = t1 / (2 * t2) (1.0 = perfect).
Run once with 1 torch thread per process (a fair comparison of processes) and once with all cores
per process (the default a user gets). The table goes into bench/README.md between the
``scaling`` markers (``--no-write`` to skip).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 50_000
BEGIN, END = "<!-- scaling:begin -->", "<!-- scaling:end -->"


def shard_data(rows: int, p: int, rank: int, world: int):
    """This rank's rows of the benchmark problem: whole blocks, each from its own seed."""
    from gradfit.distributed import shard_range
    blocks = max(rows // BLOCK, 1)
    lo, hi = shard_range(blocks, rank, world)
    coef = np.linspace(1.0, -1.0, p)
    Xs, ys = [], []
    for b in range(lo, hi):
        r = np.random.default_rng(1000 + b)
        X = r.normal(size=(BLOCK, p)) * np.linspace(0.5, 2.0, p) + np.linspace(-1.0, 3.0, p)
        Xs.append(X)
        ys.append(X @ coef + 0.5 + r.normal(size=BLOCK))
    if not Xs:
        return np.empty((0, p)), np.empty(0)
    return np.concatenate(Xs), np.concatenate(ys)


def _best(fn, repeats: int, sync=lambda: None) -> float:
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


# -- CPU: one worker process ------------------------------------------------------------------------
def worker(cfg: dict) -> None:
    import torch
    import torch.distributed as dist
    from gradfit import distributed, fit
    from gradfit.data.arrays import as_batches
    from gradfit.problem.losses import get_loss
    from gradfit.problem.objective import Objective
    from gradfit.problem.penalties import get_penalty

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    topo = distributed.topology_from_env()
    session = distributed.Session(topo, timeout=600).start() if topo else None
    rank, world = (topo.rank, topo.world) if topo else (0, 1)
    X, y = shard_data(cfg["rows"], cfg["p"], rank, world)
    local = as_batches(X, y)
    data = distributed.ShardedBatches(local) if session else local
    barrier = dist.barrier if session else (lambda: None)

    def slowest(t: float) -> float:
        if not session:
            return t
        buf = torch.tensor([t], dtype=torch.float64)
        dist.all_reduce(buf, op=dist.ReduceOp.MAX)
        return float(buf)

    model = fit(data, solver="exact")  # warm-up, and the answer to compare
    t_exact = slowest(_best(lambda: fit(data, solver="exact"), cfg["repeats"], barrier))
    objective = Objective(get_loss("l2"), get_penalty("none"), data, True)
    theta = torch.zeros(cfg["p"] + 1, dtype=torch.float64)
    objective.value_and_grad(theta)
    t_epoch = slowest(_best(lambda: objective.value_and_grad(theta), cfg["repeats"] * 3, barrier))
    # exact L1 (issue 15), like for like: every process streams its row groups of the same Parquet file
    from gradfit.data.files import open_table

    def l1_fit():
        table = open_table(cfg["file"], target="y", shard=(rank, world) if session else None, cache=False)
        return fit(distributed.ShardedBatches(table) if session else table, loss="l1")
    l1 = l1_fit()
    t_l1 = slowest(_best(l1_fit, cfg["repeats"], barrier))
    out = {"exact": t_exact, "epoch": t_epoch, "theta": [*model.coef_.tolist(), model.intercept_],
           "threads": torch.get_num_threads(), "l1": t_l1, "l1_loss": l1.final_loss_, "l1_gap": l1.gap_,
           "l1_passes": l1.info.get("passes"), "l1_sample": l1.info.get("sample_from")}
    if world == 1 and cfg.get("peers"):
        out.update(_cpu_peers(X, y, cfg["repeats"]))
    if rank == 0:
        Path(cfg["out"]).write_text(json.dumps(out))
    if session:
        session.close()


def _cpu_peers(X, y, repeats: int) -> dict:
    """scikit-learn's LinearRegression and a plain PyTorch full-batch epoch, in this process."""
    import torch
    from sklearn.linear_model import LinearRegression
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    w = torch.zeros(X.shape[1], dtype=torch.float64)

    def torch_epoch():
        r = Xt @ w - yt
        return Xt.T @ r, r @ r

    return {"sklearn": _best(lambda: LinearRegression().fit(X, y), repeats),
            "torch_epoch": _best(torch_epoch, repeats * 3)}


def write_table(path: Path, rows: int, p: int) -> None:
    """The benchmark problem's rows as one Parquet file, a row group per block (the L1 runs stream it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    X, y = shard_data(rows, p, 0, 1)
    names = [f"x{j}" for j in range(p)] + ["y"]
    pq.write_table(pa.table([*X.T, y], names=names), path, row_group_size=BLOCK)


def run_cpu(args) -> list[dict]:
    from gradfit.cli.launcher import spawn
    rows = []
    table_dir = tempfile.TemporaryDirectory()
    table = Path(table_dir.name) / "scaling.parquet"
    write_table(table, args.rows, args.features)
    for label, threads in (("1", 1), (f"all cores ({os.cpu_count()})", os.cpu_count() or 1)):
        res = {}
        for nproc in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = {"rows": args.rows, "p": args.features, "repeats": args.repeats, "threads": threads,
                       "out": str(Path(tmp) / "out.json"), "peers": nproc == 1, "file": str(table)}
                code, failed, errs = spawn([sys.executable, __file__, "--worker", json.dumps(cfg)], nproc,
                                           timeout=600, threads=threads)
                if code != 0:
                    raise SystemExit(f"scaling run with {nproc} processes failed:\n{errs[failed]}")
                res[nproc] = json.loads(Path(cfg["out"]).read_text())
            print(f"threads/process {label}, {nproc} process(es): exact {res[nproc]['exact']:.3f} s, "
                  f"GD epoch {res[nproc]['epoch'] * 1e3:.1f} ms", flush=True)
        t1, t2 = np.array(res[1]["theta"]), np.array(res[2]["theta"])
        rows.append({"threads": label, "exact1": res[1]["exact"], "exact2": res[2]["exact"],
                     "epoch1": res[1]["epoch"], "epoch2": res[2]["epoch"],
                     "sklearn": res[1].get("sklearn"), "torch_epoch": res[1].get("torch_epoch"),
                     "rel_diff": float(np.max(np.abs(t1 - t2)) / np.max(np.abs(t1))),
                     "l11": res[1]["l1"], "l12": res[2]["l1"],
                     "l1_diff": abs(res[1]["l1_loss"] - res[2]["l1_loss"]) / res[1]["l1_loss"],
                     "l1_gap": max(res[1]["l1_gap"], res[2]["l1_gap"]),
                     "l1_how": f"{res[1]['l1_passes']} / {res[2]['l1_passes']} pass(es), sample from "
                               f"{res[1]['l1_sample']} / {res[2]['l1_sample']}"})
    table_dir.cleanup()
    return rows


def cpu_table(rows: list[dict], args) -> str:
    after = os.getloadavg()[0]
    busy = max(args.load_before, after) > (os.cpu_count() or 1) + 1  # our own processes load the cores
    load = f"{args.load_before:.1f} before, {after:.1f} after" + (
        ": other jobs running on the same cores make these numbers noisy" if busy else "")
    lines = [f"CPU ({os.cpu_count()} cores, 1-minute load average {load}), "
             f"{args.rows:,} x {args.features} float64, gloo on 127.0.0.1, "
             f"best of {args.repeats} (GD epoch: best of {args.repeats * 3}); efficiency = t1 / (2 t2).", "",
             "| torch threads / process | exact 1 proc | exact 2 procs | efficiency | GD epoch 1 proc | "
             "GD epoch 2 procs | efficiency | 1 vs 2 procs: max rel. diff of coef |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['threads']} | {r['exact1']:.3f} s | {r['exact2']:.3f} s | "
                     f"{r['exact1'] / (2 * r['exact2']):.2f} | {r['epoch1'] * 1e3:.1f} ms | "
                     f"{r['epoch2'] * 1e3:.1f} ms | {r['epoch1'] / (2 * r['epoch2']):.2f} | {r['rel_diff']:.1e} |")
    lines += ["", "Exact L1 (`fit(open_table(file), loss=\"l1\")`, issue 15): the same rows written to one Parquet "
              f"file (a row group per {BLOCK:,} rows); one process streams all of it, each of two streams its own "
              "row groups (samples, globs and kept rows through all-reduce), the same Portnoy-Koenker route.", "",
              "| torch threads / process | L1 1 proc | L1 2 procs | efficiency | 1 vs 2 procs: rel. diff of objective "
              "| largest gap_ | passes (1 / 2 procs) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['threads']} | {r['l11']:.3f} s | {r['l12']:.3f} s | {r['l11'] / (2 * r['l12']):.2f} | "
                     f"{r['l1_diff']:.1e} | {r['l1_gap']:.1e} | {r['l1_how']} |")
    lines.append("")
    lines.append("Peers in the 1-process run (same data, same threads): " + "; ".join(
        f"{r['threads']} thread(s): scikit-learn LinearRegression {r['sklearn']:.3f} s, "
        f"plain PyTorch full-batch epoch {r['torch_epoch'] * 1e3:.1f} ms" for r in rows if r["sklearn"]) + ".")
    return "\n".join(lines)


# -- GPU -------------------------------------------------------------------------------------------
def run_gpu(args) -> str:
    import torch
    import gradfit
    from gradfit.data.arrays import as_batches
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device (none here); --device cpu runs the same code as a smoke test")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    n, p = args.rows, args.features
    gen = torch.Generator(device=dev).manual_seed(0)
    X = torch.empty(n, p, dtype=torch.float32, device=dev)
    step = 1 << 22
    for a in range(0, n, step):  # fill in slices: no float64 temporary of the whole matrix
        X[a:a + step].normal_(generator=gen)
    coef = torch.linspace(1.0, -1.0, p, device=dev)
    y = X @ coef + 0.5 + torch.randn(n, generator=gen, device=dev)
    data = as_batches(X, y, dtype=torch.float32, device=dev)
    gb = X.numel() * X.element_size() / 1e9
    read = _best(lambda: X.sum(dim=0), args.repeats, sync)
    fit = lambda **kw: gradfit.fit(data, warn=False, **kw)  # noqa: E731
    fit(solver="exact")
    t_exact = _best(lambda: fit(solver="exact"), args.repeats, sync)
    rows = [("one read of X (X.sum(dim=0))", read, f"{gb / read:.0f} GB/s")]
    rows.append(("exact fit (float64 X'X on the device)", t_exact, ""))
    for label, bs in (("full-batch GD/SGD epoch", None), (f"SGD epoch, mini-batches of {args.batch:,}", args.batch)):
        t1 = _best(lambda: fit(solver="sgd", lr=1e-3, epochs=1, batch_size=bs, tol=0), args.repeats, sync)
        t3 = _best(lambda: fit(solver="sgd", lr=1e-3, epochs=3, batch_size=bs, tol=0), args.repeats, sync)
        rows.append((label + " ((T(3) - T(1)) / 2)", (t3 - t1) / 2, ""))
    m = min(args.sklearn_rows or n, n)
    Xc, yc = X[:m].cpu().numpy(), y[:m].cpu().numpy()
    X = y = data = None  # free the GPU copy before scikit-learn's run
    from sklearn.linear_model import LinearRegression
    t_sk = _best(lambda: LinearRegression().fit(Xc, yc), 1)
    rows.append((f"scikit-learn LinearRegression on the CPU, {m:,} rows", t_sk, "measured once"))
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU (smoke run)"
    lines = [f"{name}, {n:,} x {p} float32, best of {args.repeats}.", "",
             "| what | seconds | x one read of X | note |", "|---|---|---|---|"]
    lines += [f"| {w} | {t:.4f} | {t / read:.1f} | {note} |" for w, t, note in rows]
    return "\n".join(lines)


# -- README -----------------------------------------------------------------------------------------
HEADING = "## Scaling: many processes and the GPU (`bench/scaling.py`, issue 5)"
INTRO = ("Each mode rewrites only its own block below. `python bench/scaling.py` measures the CPU block; "
         "`python bench/scaling.py --gpu` the GPU block (targets: exact fit and an SGD epoch within 2x of one "
         "read of X from GPU memory).")


def write_readme(mode: str, text: str, command: str) -> None:
    readme = ROOT / "bench" / "README.md"
    old = readme.read_text() if readme.exists() else "# gradfit benchmarks\n"
    begin, end = f"<!-- scaling-{mode}:begin -->", f"<!-- scaling-{mode}:end -->"
    if begin not in old:
        gpu_note = "Not measured yet: no GPU was lent to the session that wrote this benchmark."
        old = (old.rstrip() + f"\n\n{HEADING}\n\n{INTRO}\n\n<!-- scaling-cpu:begin -->\n<!-- scaling-cpu:end -->\n\n"
               f"### GPU\n\n<!-- scaling-gpu:begin -->\n{gpu_note}\n<!-- scaling-gpu:end -->\n")
    body = f"{begin}\nMade by `{command}` on {time.strftime('%Y-%m-%d')}.\n\n{text}\n{end}"
    new = old[:old.index(begin)] + body + old[old.index(end) + len(end):]
    from gradfit.data.atomic import write_text
    write_text(readme, new)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, default=None, help="rows (CPU default 2,000,000; GPU 100,000,000)")
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gpu", action="store_true", help="the GPU benchmark (100M x 32 float32)")
    ap.add_argument("--device", default="cuda", help="device of the GPU mode (cpu: a smoke run)")
    ap.add_argument("--batch", type=int, default=1 << 20, help="GPU mode: SGD mini-batch rows")
    ap.add_argument("--sklearn-rows", type=int, default=None, help="GPU mode: rows given to scikit-learn")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/README.md alone")
    args = ap.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    sys.path.insert(0, str(ROOT / "src"))
    command = "python bench/scaling.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.gpu:
        args.rows = args.rows or 100_000_000
        text = run_gpu(args)
    else:
        args.rows = args.rows or 2_000_000
        args.load_before = os.getloadavg()[0]
        text = cpu_table(run_cpu(args), args)
    print(text)
    if not args.no_write:
        write_readme("gpu" if args.gpu else "cpu", text, command.strip())


if __name__ == "__main__":
    main()
