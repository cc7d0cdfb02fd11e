"""One self-contained HTML report of a fit: data, settings, the fit, its certificate, the statistical
summary and the plots (embedded as base64, no external resources, no scripts). Readable on a phone
(viewport, fluid layout, tables scroll sideways) and in print (``@media print``). Written atomically.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from gradfit._version import __version__
from gradfit.api import fit
from gradfit.data.arrays import as_batches
from gradfit.data.atomic import write_text
from gradfit.data.batches import Batches
from gradfit.inference import reduce
from gradfit.inference.format import summary_html
from gradfit.numerics.passes import numpy_chunks
from gradfit.problem.losses import loss_from_spec
from gradfit.viz.plots import (COLORS, lr_curves, plot_fit, plot_l1_vs_l2, plot_loss_curve, plot_lr_comparison,
                               plot_residuals)
from gradfit.viz.diagnostics import diagnostic_sample, plot_diagnostics
from gradfit.viz.figure import MAX_PLOT_ROWS, sample_rows, save
from gradfit.viz.surface import animate_line, plot_loss_surface

CSS = """
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:1rem}
header{background:#1f3b57;color:#fff;padding:1.2rem 1rem}
header h1{margin:0 auto;max-width:980px;font-size:1.5rem}
header p{margin:.3rem auto 0;max-width:980px;opacity:.85;font-size:.9rem}
section{background:#fff;border-radius:8px;padding:1rem;margin:1rem 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:1.2rem;margin:.2rem 0 .8rem;border-bottom:2px solid #e3e6ea;padding-bottom:.3rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:.9rem;min-width:100%}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e3e6ea;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#eef1f4}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.kv dt{font-weight:600}dl.kv dd{margin:0;overflow-wrap:anywhere}
.gradfit-summary dl.kv{grid-template-columns:max-content 1fr}
.ok{color:#1a7f37;font-weight:700}.bad{color:#cf222e;font-weight:700}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;display:block;margin:0 auto;border:1px solid #e3e6ea}
figcaption{font-size:.85rem;color:#57606a;text-align:center;margin-top:.3rem}
pre{white-space:pre;overflow-x:auto;font-size:.75rem;background:#f6f8fa;padding:.6rem}
.note{font-size:.85rem;color:#57606a}
@media (max-width:600px){body{font-size:15px}main{padding:.5rem}section{padding:.7rem}dl.kv{grid-template-columns:1fr}}
@media print{body{background:#fff}header{background:none;color:#000;border-bottom:2px solid #000}
section{box-shadow:none;border:none;padding:0;break-inside:avoid-page}figure{break-inside:avoid}
.scroll{overflow:visible}pre{white-space:pre-wrap}a{color:#000}}
"""

MIME = {".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}


def column_summary(data: Batches) -> list[dict]:
    """One pass: count, mean, std, min, max of every feature and the target (sums shifted for accuracy)."""
    names = list(data.feature_names) + [data.target_name or "y"]
    shift = s1 = s2 = lo = hi = None
    n = 0
    for X, y, _ in numpy_chunks(data):
        M = np.column_stack([X, y])
        if not len(M):
            continue
        if shift is None:
            shift, s1, s2 = M.mean(0), np.zeros(M.shape[1]), np.zeros(M.shape[1])
            lo, hi = M.min(0), M.max(0)
        D = M - shift
        s1 += D.sum(0)
        s2 += (D * D).sum(0)
        lo, hi = np.minimum(lo, M.min(0)), np.maximum(hi, M.max(0))
        n += len(M)
    if data.distributed:  # every process's rows: sums moved to one shift
        k = len(names)
        local = shift if shift is not None else np.zeros(k)
        s1, s2 = (np.zeros(k), np.zeros(k)) if shift is None else (s1, s2)
        c = reduce.common(data, local, n)
        d = local - c  # sums around c: s1 + n d, s2 + 2 d s1 + n d^2
        s1, s2, n = reduce.allreduce(data, s1 + n * d, s2 + 2 * d * s1 + n * d * d, float(n))
        n, shift = int(round(n)), c
        inf = np.full(k, np.inf)
        ends = data.allgather_rows(torch.as_tensor(np.vstack([lo if lo is not None else inf,
                                                             -(hi if hi is not None else -inf)]))).numpy()
        lo, hi = ends[0::2].min(0), -ends[1::2].min(0)
    if shift is None or not n:
        return []
    mean = shift + s1 / n
    std = np.sqrt(np.maximum(s2 / n - (s1 / n) ** 2, 0) * n / max(n - 1, 1))
    return [{"column": c, "rows": n, "mean": float(m), "std": float(s), "min": float(a), "max": float(z)}
            for c, m, s, a, z in zip(names, mean, std, lo, hi)]


def _e(v: Any) -> str:
    return html.escape(str(v))


def _num(v: Any, digits: int = 6) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "n/a" if not math.isfinite(float(v)) else f"{float(v):.{digits}g}"
    return _e(v)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p class=note>none</p>"
    cols = columns or list(rows[0])
    head = "".join(f"<th scope=col>{_e(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_num(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def kv(pairs: Iterable[tuple[str, Any]]) -> str:
    return "<dl class=kv>" + "".join(f"<dt>{_e(k)}</dt><dd>{_num(v)}</dd>" for k, v in pairs) + "</dl>"


def embed_image(path: str | os.PathLike, caption: str) -> str:
    p = Path(path)
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    mime = MIME.get(p.suffix.lower(), "application/octet-stream")
    return (f"<figure><img src=\"data:{mime};base64,{data}\" alt=\"{_e(caption)}\" loading=eager>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def fit_section(model) -> str:
    rows = [{"parameter": k, "value": v} for k, v in model.coefficients().items()]
    return table(rows) + kv([("final loss", float(model.final_loss_)), ("iterations / epochs", int(model.n_iter_)),
                             ("seconds", float(model.info.get("seconds", float("nan"))))])


def certificate_section(model) -> str:
    status = "<span class=ok>converged</span>" if model.converged_ else "<span class=bad>NOT converged</span>"
    gap = "unknown" if math.isnan(model.gap_) else f"{model.gap_:.3e}"
    return (f"<p>{status}: relative objective gap <b>{_e(gap)}</b> (gap_ = an upper bound on "
            f"(F(model) - F*) / |F*|, from the solver's optimality certificate; "
            f"converged_ = {_e(model.converged_)}).</p>")


def summary_section(summary) -> str:
    """The summary as the CLI prints it (same numbers, same labels), as HTML tables."""
    if summary is None:
        return "<p class=note>not computed</p>"
    return summary_html(summary)


def build_report(model, *, title: str = "gradfit report", columns: list[dict] | None = None,
                 settings: dict | None = None, summary=None, images: dict[str, str | os.PathLike] | None = None,
                 intro: str = "", extra_sections: dict[str, str] | None = None) -> str:
    """The HTML text. ``images``: caption -> image file (embedded); ``extra_sections``: title -> HTML."""
    loss = dict(model.loss)
    pen = model.penalty
    base = [("target", model.target_name or "y"), ("features", ", ".join(model.feature_names_in_)),
            ("loss", loss.pop("name", "?") + "".join(f", {k}={v}" for k, v in loss.items())),
            ("penalty", pen.get("name") + (f" (alpha={pen.get('alpha'):g})" if pen.get("alpha") else "")),
            ("solver", model.solver)]
    base += [(k, v) for k, v in (settings or {}).items()]
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<section><h2>Data</h2>{table(columns or [], ['column', 'rows', 'mean', 'std', 'min', 'max'])}</section>",
             f"<section><h2>Settings</h2>{kv(base)}</section>",
             f"<section><h2>Fit</h2>{fit_section(model)}</section>",
             f"<section><h2>Certificate</h2>{certificate_section(model)}</section>",
             f"<section><h2>Statistical summary</h2>{summary_section(summary)}</section>"]
    for name, body in (extra_sections or {}).items():
        parts.append(f"<section><h2>{_e(name)}</h2>{body}</section>")
    if images:
        parts.append("<section><h2>Plots</h2>" + "".join(embed_image(p, c) for c, p in images.items()) + "</section>")
    lead = f"<section>{intro}</section>" if intro else ""
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{_e(title)}</h1><p>gradfit {__version__} &middot; {stamp}</p></header>"
            f"<main>{lead}{''.join(parts)}</main></body></html>\n")


def write_report(path: str | os.PathLike, model, **kwargs) -> Path:
    """Build the report (see :func:`build_report`) and write it atomically."""
    write_text(path, build_report(model, **kwargs))
    return Path(path)


# -- the outputs of one fit (gradfit fit --plot/--report, gradfit plot) -----------------------------
def write_plots(model, data: Batches, out_dir: str | os.PathLike, *, optimum_loss: float | None = None,
                coefs: tuple[int, int] | None = None, max_rows: int = MAX_PLOT_ROWS) -> dict[str, Path]:
    """The plots of one fitted model into ``out_dir``: loss curve (when it has a history), fit,
    residuals and the loss surface (rows sampled down to ``max_rows``). Returns name -> path.
    All or nothing: the plots are drawn into a staging folder inside ``out_dir`` and moved in at the end."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gradfit-plots-", dir=out) as staging:
        drawn = _draw_plots(model, data, Path(staging), optimum_loss=optimum_loss, coefs=coefs, max_rows=max_rows)
        return _move_into(drawn, out)


def _move_into(drawn: dict[str, Path], out: Path) -> dict[str, Path]:
    """Move the staged plots into ``out`` (same file system: each move is one rename)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, path in drawn.items():
        paths[name] = out / path.name
        os.replace(path, paths[name])
    return paths


def _draw_plots(model, data: Batches, out: Path, *, optimum_loss, coefs, max_rows) -> dict[str, Path]:
    X, y = sample_rows(data, max_rows)
    target = model.target_name or "y"
    paths: dict[str, Path] = {}
    if model.history_ is not None and len(model.history_.loss) > 1:
        paths["loss_curve"] = plot_loss_curve(out / "loss_curve.png", {model.solver: model.history_}, optimum_loss)
    paths["fit"] = plot_fit(out / "fit.png", X, y, {"fit": model}, feature=model.feature_names_in_[0], target=target)
    paths["residuals"] = plot_residuals(out / "residuals.png", X, y, model, target)
    diag = diagnostic_sample(model, data, max_rows)
    paths["diagnostics"] = save(plot_diagnostics(diag, "all"), out / "diagnostics.png")
    paths["partial_residuals"] = save(plot_diagnostics(diag, "partial"), out / "partial_residuals.png")
    hist = model.history_
    path = hist.path_array if hist is not None and len(hist.path) > 1 else None
    optimum, label = exact_optimum_of(model, data)
    paths["loss_surface"] = plot_loss_surface(out / "loss_surface.png", X, y, model.loss, optimum,
                                              paths={model.solver: path} if path is not None else {},
                                              coefs=coefs, names=model.feature_names_in_, optimum_label=label)
    return paths


def exact_optimum_of(model, data: Batches):
    """The exact optimum of the model's objective on ``data`` and its label for the star: the model
    itself when its certificate says it is there, else a fresh exact fit (never the end of a path)."""
    certified = model.converged_ and not math.isnan(model.gap_) and model.gap_ <= 1e-6
    if certified:
        return model, f"optimum (gap {model.gap_:.1e})"
    pen = dict(model.penalty)
    exact = fit(data, loss=loss_from_spec(model.loss), penalty=pen.get("name", "none"), alpha=pen.get("alpha", 0.0),
                l1_ratio=pen.get("l1_ratio", 0.5), fit_intercept=bool(model.info.get("fit_intercept", True)),
                warn=False)
    return exact, f"exact optimum ({exact.solver}, gap {exact.gap_:.1e})"


def write_fit_outputs(model, data: Batches, *, plot_dir: str | os.PathLike | None = None,
                      report: str | os.PathLike | None = None, summary=None,
                      settings: dict | None = None, coefs: tuple[int, int] | None = None) -> dict[str, Path]:
    """Plots into ``plot_dir`` and/or the report; plots for a report alone go through a temporary folder."""
    if plot_dir is None and report is None:
        return {}
    written: dict[str, Path] = {}
    # every picture is drawn in a temporary folder (next to plot_dir: same file system) and moved into
    # plot_dir only when all of them were drawn: a failure part-way leaves nothing behind
    where = None if plot_dir is None else Path(plot_dir).absolute().parent
    if where is not None:
        where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gradfit-plots-", dir=where) as tmp:
        paths = _draw_plots(model, data, Path(tmp), optimum_loss=None, coefs=coefs, max_rows=MAX_PLOT_ROWS)
        if report is not None:
            written["report"] = _write_report_of(model, data, report, summary, settings, paths)
        if plot_dir is not None:
            written.update(_move_into(paths, Path(plot_dir)))
    return written


def _write_report_of(model, data: Batches, report, summary, settings, paths: dict[str, Path]) -> Path:
    captions = {"loss_curve": "Loss per epoch", "fit": "Data and fit", "residuals": "Residuals",
                "loss_surface": "Loss surface and the optimizer's path",
                "diagnostics": "Diagnostics: residuals vs fitted, normal Q-Q, scale-location, "
                               "residuals vs leverage with Cook's distance",
                "partial_residuals": "Partial residuals per feature"}
    settings = {"rows": int(model.info.get("n_rows", 0)), **{k: model.info[k] for k in ("lr", "seconds")
                if k in model.info}, **(settings or {})}
    return write_report(report, model, columns=column_summary(data), settings=settings,
                        summary=summary, images={captions[k]: p for k, p in paths.items()})


# -- the tutorial's outputs (gradfit demo --out DIR) -------------------------------------------------
SURFACE_TITLES = {  # English: matplotlib has no Hangul font here
    "crawling": "{loss} loss over (w, b): the tutorial's {opt} crawls toward the star (the exact optimum)",
    "reached": "{loss} loss over (w, b): the tutorial's {opt} reaches the star (the exact optimum)",
    "stopped": "{loss} loss over (w, b): the tutorial's {opt} stops short of the star (the exact optimum)",
    "diverged": "{loss} loss over (w, b): the tutorial's {opt} diverges away from the star (the exact optimum)",
}


def shown_part(model, limit: float = 100.0) -> tuple[np.ndarray, list[float]]:
    """The path and losses of a run to draw: all of it, or for a diverged run the epochs before its
    loss passed ``limit`` times the first (at least two points), so the picture keeps its scale."""
    h = model.history_
    path, losses = h.path_array, list(h.loss)
    if not model.info.get("diverged") or len(losses) < 3:
        return path, losses
    keep = 2
    while keep < len(losses) and np.isfinite(losses[keep]) and abs(losses[keep]) <= limit * abs(losses[0]):
        keep += 1
    return path[:keep], losses[:keep]


def write_demo(result, out_dir: str | os.PathLike, *, lrs=(0.0005, 0.005, 0.02, 0.032)) -> dict[str, Path]:
    """Every plot of the tutorial and its report, from :func:`gradfit.tutorial.demo.demo`'s result;
    the titles and the words follow what the run did (``result.explanation``)."""
    from gradfit.tutorial.explain import pct
    from gradfit.tutorial.i18n import translator
    _ = translator(getattr(result, "lang", "en"))
    out = Path(out_dir)
    d, run, opt, good = result.data, result.seed_model, result.optimum, result.descent
    why = result.explanation
    x, y = d.x[:, 0].double().numpy(), d.y.double().numpy()
    path, losses = shown_part(run)
    run_label = f"the tutorial's {run.solver}, lr {run.info.get('lr', float('nan')):g}" + \
        (f" - diverged at epoch {run.n_iter_}" if why.kind == "diverged" else "")
    good_label = f"{good.solver}" + (f", lr {good.info['lr']:g}" if "lr" in good.info else "") + " (reaches it)"
    opt_label = f"exact optimum ({opt.solver}, gap {opt.gap_:.1e})"
    colors = {run_label: COLORS["seed"], good_label: COLORS["descent"], opt_label: COLORS["optimum"]}
    p: dict[str, Path] = {}
    p["loss_curve"] = plot_loss_curve(out / "loss_curve.png", {run_label: losses, good_label: good.history_},
                                      opt.final_loss_, title=f"{opt.loss['name']} loss per epoch", colors=colors)
    title = SURFACE_TITLES[why.kind].format(loss=opt.loss["name"], opt=run.solver)
    p["loss_surface"] = plot_loss_surface(out / "loss_surface.png", x, y, opt.loss, opt, colors=colors,
                                          paths={run_label: path, good_label: good.history_.path_array},
                                          title=title, optimum_label=opt_label)
    lines = {opt_label: opt} if why.kind == "diverged" else {run_label: run, opt_label: opt}
    p["fit"] = plot_fit(out / "fit.png", x, y, lines, colors=colors)
    p["residuals"] = plot_residuals(out / "residuals.png", x, y, opt)
    p["animation"] = animate_line(out / "animation.gif", x, y, {run_label: path, good_label: good.history_.path_array},
                                  losses={run_label: losses, good_label: good.history_.loss}, optimum=opt,
                                  colors=colors)
    l2_opt = fit(x, y, loss="l2")
    curves = lr_curves(x, y, lrs, loss="l2", epochs=200, init=[d.w0, d.b0])
    p["learning_rates"] = plot_lr_comparison(out / "learning_rates.png", curves, l2_opt.final_loss_,
                                             title="SGD on the squared loss: learning rates compared")
    rng = np.random.default_rng(0)
    bad = (x > 4) & (rng.random(len(x)) < 0.25)
    y_out = np.where(bad, y - 40.0, y)
    l1, l2 = fit(x, y_out, loss="l1", warn=False), fit(x, y_out, loss="l2")
    p["l1_vs_l2"] = plot_l1_vs_l2(out / "l1_vs_l2.png", x, y_out, l1, l2, bad)
    summary = opt.summary(x, y)
    rows = [{"fit": name, "w": float(m.coef_[0]), "b": float(m.intercept_), "loss": float(m.final_loss_),
             "epochs": int(m.n_iter_)} for name, m in ((run_label, run), (good_label, good), ("exact optimum", opt))]
    diverged = [f"{lr:g}" for lr, (_lr, dv) in curves.items() if dv]
    lead = _("The tutorial fits y = w x + b to {n} points with the {loss} loss by {opt}.").format(
        n=len(x), loss=opt.loss["name"], opt=run.solver)
    intro = (f"<p>{_e(lead)} "
             f"<b>{_e(why.text)}</b></p>"
             f"<p class=note>Learning rates that diverged on the squared loss: {', '.join(diverged) or 'none'}.</p>")
    images = {"Loss per epoch: the tutorial's run against a descent that reaches the optimum": p["loss_curve"],
              "The loss surface over (w, b) with both paths; the star is the exact optimum": p["loss_surface"],
              "Both lines moving over the epochs": p["animation"],
              "Data, the tutorial's line and the optimum": p["fit"], "Residuals at the optimum": p["residuals"],
              "Learning rates compared (a red dotted curve diverged)": p["learning_rates"],
              "L1 vs L2 on data with outliers": p["l1_vs_l2"]}
    p["report"] = write_report(out / "report.html", opt, title="gradfit tutorial: the tutorial's program and the optimum",
                               columns=column_summary(as_batches(x, y, target_name="y",
                                                                 feature_names=opt.feature_names_in_)),
                               settings={"rows": len(x), "tutorial lr": run.info.get("lr"),
                                         "tutorial epochs (asked / run)": f"{result.settings.epochs} / {run.n_iter_}",
                                         "tutorial init (w, b)": f"({d.w0:.4f}, {d.b0:.4f})",
                                         "what happened": why.kind,
                                         "tutorial run above the optimum": "diverged" if why.kind == "diverged"
                                         else pct(result.gap)},
                               summary=summary, images=images, intro=intro,
                               extra_sections={"The three fits": table(rows)})
    return p
