"""Text and markdown tables of benchmark results, and the README table updated in place."""
from __future__ import annotations

from pathlib import Path

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _num(v, fmt: str = "{:.3g}") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return fmt.format(v)
    return str(v)


def _secs(v) -> str:
    if v is None:
        return "-"
    return f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"


def _met(t: dict) -> str:
    return {True: "MET", False: "NOT MET", None: "not measured"}[t["met"]]


def case_columns(case: dict) -> tuple[list[str], list[list[str]]]:
    sgd = any("rows_per_s" in r for r in case["rows"])
    if sgd:
        head = ["peer", "s/epoch", "M rows/s", "vs SGDRegressor", "MSE", "note"]
        body = [[r["peer"], _secs(r.get("seconds")), _num(r["rows_per_s"] / 1e6, "{:.2f}"),
                 _num(r.get("ratio_vs_sklearn"), "{:.2f}x"), _num(r.get("objective"), "{:.6g}"), r.get("note", "")]
                for r in case["rows"]]
        return head, body
    head = ["peer", "time", "gradfit speed-up", "objective", "vs best", "note"]
    body = []
    for r in case["rows"]:
        info = r.get("info") or {}
        note = r.get("note") or ", ".join(f"{k} {_num(v)}" for k, v in info.items() if k in ("solver", "gap", "n_iter"))
        body.append([r["peer"], _secs(r.get("seconds")) + (f" ({r['runs']} run)" if r.get("runs") == 1 else ""),
                     _num(r.get("speedup"), "{:.1f}x"), _num(r.get("objective"), "{:.12g}"),
                     _num(r.get("rel_to_best"), "{:.1e}"), note])
    return head, body


def case_text(case: dict) -> str:
    head, body = case_columns(case)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in [head, *body]]
    lines += [f"  target: {t['target']}: {_num(t['value'])} (goal {t['goal']}) -> {_met(t)}"
              + (f" [{t['note']}]" if t.get("note") else "") for t in case["targets"]]
    return "\n".join(lines)


def summary_text(results: dict) -> str:
    out = ["Targets (issue 3):"]
    for case in results["cases"]:
        for t in case["targets"]:
            out.append(f"  [{_met(t):>12}] {case['key']}: {t['target']} = {_num(t['value'])} (goal {t['goal']})")
    out.append(f"total {results.get('seconds', 0):.0f} s")
    return "\n".join(out)


def markdown(results: dict) -> str:
    env = results["environment"]
    quick = " (quick sizes: a smoke run, not the targets)" if results["quick"] else ""
    load = [c.get("started", {}).get("load_average") or 0 for c in results["cases"]]
    cores = env.get("cores") or 0
    # the benchmark's own threads keep the load near the core count: busy means other work on top
    busy = max(load, default=0) > cores + 1 > 1
    out = [f"Command: `{results['command']}`{quick}",
           "", "Machine: " + "; ".join(f"{k}: {v}" for k, v in env["summary"].items()),
           "", "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), ""]
    if busy:
        out += [f"**Measured on a busy machine** (load average up to {max(load):.1f} on {cores} cores, other "
                "jobs running): single timings scatter by 2-5x; rerun on a quiet machine before reading a "
                "MET / NOT MET as final.", ""]
    for case in results["cases"]:
        head, body = case_columns(case)
        started = case.get("started") or {}
        out += [f"### {case['title']}", ""]
        if started:
            out += [f"Measured {started.get('date')} by `{case.get('command', results['command'])}`, "
                    f"load average {started.get('load_average')} "
                    f"({case.get('seconds', 0):.0f} s for the case)", ""]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(str(x).replace("|", "/") for x in row) + " |" for row in body]
        out.append("")
        out += [f"- {t['target']}: **{_num(t['value'])}** (goal {t['goal']}): {_met(t)}"
                + (f" ({t['note']})" if t.get("note") else "") for t in case["targets"]]
        out.append("")
    return "\n".join(out)


def update_readme(path: Path, results: dict) -> None:
    """Replace the text between the results markers (append the markers when missing)."""
    from gradfit.data.atomic import write_text
    text = path.read_text() if path.exists() else "# gradfit benchmarks\n"
    block = f"{START}\n{markdown(results)}\n{END}"
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"
    write_text(path, text)
