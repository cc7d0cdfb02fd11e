"""What each CLI subcommand does, given parsed arguments. Printing lives here, math does not.

:mod:`gradfit.cli.entry` imports this module after parsing, so ``--help`` answers without loading the
library; the pictures (matplotlib) are imported only by the commands that draw.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import warnings
from typing import Iterator

import numpy as np

from gradfit.api import fit
from gradfit.cli.completion import completion_script
from gradfit.cli.errors import CLIError
from gradfit.cli.launcher import fit_hook
from gradfit.cli.parser import build_parser
from gradfit.data.files import DataWarning, open_table, predict_file
from gradfit.data.formula import open_formula
from gradfit.data.predict import prediction_name
from gradfit.data.progress import ProgressBar
from gradfit.distributed.session import topology_from_env
from gradfit.inference.intervals import interval_columns
from gradfit.model import load
from gradfit.problem.penalties import get_penalty
from gradfit.solvers import ConvergenceWarning
from gradfit.solvers.exact import SingularDesignWarning


def run_command(args: argparse.Namespace) -> int:
    handler = COMMANDS.get(args.command)
    if handler is None:
        raise CLIError(f"unknown command {args.command!r}")
    check_values(args)
    from gradfit.data.atomic import protect
    with protect(input_files(args)):  # no output of this command may replace one of its inputs
        return handler(args)


def check_values(args) -> None:
    """The values only the command line has (the library checks its own settings: see _one_line)."""
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < 2 ** 63:
        raise CLIError(f"--seed must be a whole number from 0 to 2**63-1, got {seed}")
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise CLIError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    if getattr(args, "log_every", 0) is not None and getattr(args, "log_every", 0) < 0:
        raise CLIError(f"--log-every must be >= 0 (0 = never), got {args.log_every}")


def input_files(args) -> list[str]:
    """The files this command reads (its data and model), for the check that no output replaces them."""
    from gradfit.data.sources import resolve
    found = [args.model] if isinstance(getattr(args, "model", None), str) else []
    data = getattr(args, "data", None)
    if isinstance(data, str):
        try:
            found += resolve(data)
        except (ValueError, OSError):
            pass  # the command itself reports a path that names nothing
    return found


def check_outputs(args, *paths) -> None:
    """Refuse before any work an output that is an input, a folder, a FIFO or a device."""
    from gradfit.data.atomic import check_output
    for path in paths:
        if path:
            check_output(path)
    plot_dir = getattr(args, "plot", None) or (getattr(args, "out", None) if args.command == "plot" else None)
    if plot_dir and os.path.exists(plot_dir) and not os.path.isdir(plot_dir):
        raise CLIError(f"{plot_dir} is a file, not a folder; name a folder for the plots")


def cmd_grad(args) -> int:
    from gradfit.tutorial.seed import autograd_walkthrough
    autograd_walkthrough(args.x, args.target, args.loss, lang=args.lang)
    return 0


def cmd_demo(args) -> int:
    from gradfit.tutorial.code import OPTIMIZERS
    from gradfit.tutorial.demo import demo
    from gradfit.tutorial.i18n import translator
    if args.n < 2:
        raise CLIError("--n must be at least 2 points")
    if args.optimizer not in OPTIMIZERS:
        raise CLIError(f"--optimizer {args.optimizer} is not a gradient method of the tutorial; choose "
                       f"{', '.join(OPTIMIZERS)}")
    if not args.lr or args.lr <= 0 or args.epochs < 1:
        raise CLIError("--lr must be a positive number and --epochs at least 1")
    result = demo(n=args.n, epochs=args.epochs, lr=args.lr, loss=args.loss, optimizer=args.optimizer,
                  log_every=args.log_every, seed=args.seed, noise_std=args.noise_std,
                  standardize=bool(args.standardize), show_code=args.show_code, lang=args.lang)
    if args.out:
        from gradfit.viz.report import write_demo
        written = write_demo(result, args.out)
        _ = translator(args.lang)
        print("\n" + _("wrote {files} to {folder}").format(
            files=", ".join(p.name for p in written.values()), folder=args.out))
    return 0


def cmd_playground(args) -> int:
    from gradfit.tutorial.playground.server import serve
    return serve(host="127.0.0.1", port=args.port, open_browser=not args.no_browser, lang=args.lang)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise CLIError("--features is empty; give comma-separated column names")
    return names


def parse_levels(items: list[str] | None) -> dict | None:
    if not items:
        return None
    out = {}
    for item in items:
        col, sep, values = item.partition("=")
        if not sep or not col.strip() or not values.strip():
            raise CLIError(f"--levels {item!r}: write COLUMN=LEVEL1,LEVEL2,...")
        out[col.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    return out


def open_data(args, **extra):
    dist = getattr(args, "dist", None)  # a process of a distributed fit reads only its shard
    design = getattr(args, "design", None)
    if getattr(args, "formula", None) or design is not None:
        if args.features:
            raise CLIError("give either --formula or --features, not both")
        if args.drop_na:
            raise CLIError("--drop-na does not apply to a formula: a missing value is an error naming its row; "
                           "drop those rows from the file first")
        data = open_formula(args.data, design.formula if design is not None else args.formula, weight=args.weight,
                            levels=parse_levels(getattr(args, "levels", None)), design=design,
                            delimiter=args.delimiter, header=not args.no_header,
                            shard=dist.shard if dist is not None else None)
        return dist.wrap(data) if dist is not None else data
    if not args.target:
        raise CLIError("give --target COLUMN (or a --formula 'target ~ ...')")
    if dist is not None:
        extra["shard"] = dist.shard
    data = open_table(args.data, target=args.target, features=_split(args.features), weight=args.weight,
                      drop_na=args.drop_na, delimiter=args.delimiter, header=not args.no_header,
                      dtype=args.dtype, device=args.device, **extra)
    return dist.wrap(data) if dist is not None else data


def cmd_fit(args) -> int:
    penalty_of(args)
    check_look_options(args)
    check_outputs(args, args.save, args.report)
    code = fit_hook(args, cmd_fit)  # --nproc N, or a process started by torchrun
    if code is not None:
        return code
    data = open_data(args, progress=not (args.quiet or args.json))  # rows/s on long reads, terminal only
    text = not args.json
    bar = ProgressBar(args.epochs, enabled=False if (args.quiet or not text) else None)
    on_log = (lambda e, v: print(f"epoch {e:5d}  loss {v:.8g}")) if (text and not args.quiet) else None
    with noted(ConvergenceWarning, DataWarning, SingularDesignWarning) as notes:
        try:
            model = fit(data, loss=args.loss, solver=args.optimizer, penalty=args.penalty, alpha=args.alpha,
                        l1_ratio=args.l1_ratio, delta=args.delta, huber_scale=args.huber_scale,
                        quantile=args.quantile, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, tol=args.tol, seed=args.seed,
                        fit_intercept=not args.no_intercept, dtype=args.dtype, device=args.device,
                        log_every=args.log_every, on_log=on_log, standardize=args.standardize,
                        on_epoch=lambda e, v, t: bar.update(e, v))
        finally:
            bar.close()
    dist = getattr(args, "dist", None)
    if dist is not None:
        dist.agree()  # every process finished its fit: only then may rank 0 write anything
    if text:
        print_fit(model, notes)  # before saving: a failed save loses nothing
    summary, written = look(args, model, data, args.plot)
    if args.save:
        keep_inference(model, data, summary)
        save(args, model)
    if not text:
        print_notes(notes)  # stdout stays one JSON object; what was dropped or not reached goes to stderr
        out = model.to_dict(with_history=False)
        out["saved_to"] = args.save
        out.update(look_json(summary, written))
        print_json(out)
        return 0
    if args.save:
        print(f"model saved to {args.save}")
    print_look(summary, written)
    return 0


def keep_inference(model, data, summary) -> None:
    """Store the covariance for ``predict --interval`` in the saved least-squares model: from the summary
    when one was computed, else from the data when it is in memory (a streamed file is not read again)."""
    if model.inference_ or model.loss.get("name") != "squared" or model.penalty.get("alpha"):
        return
    if data.full_batch() is None or data.distributed:
        return
    try:
        model.summary(data)
    except ValueError:  # too few rows, collinear beyond repair: the model is saved without it
        pass


def penalty_of(args):
    """--penalty/--alpha/--l1-ratio under the one rule of gradfit.fit (PENALTY_RULE); a contradiction
    is a one-line error before any data is read, never a flag silently ignored."""
    try:
        return get_penalty(args.penalty, args.alpha, args.l1_ratio)
    except ValueError as exc:
        raise CLIError(f"--penalty/--alpha/--l1-ratio: {exc}") from None


def save(args, model) -> None:
    if not args.save:
        return
    try:
        model.save(args.save)
    except Exception:
        if args.json:  # the result, so that a failed save loses nothing
            print_json({**model.to_dict(with_history=False), "saved_to": None})
        raise


def check_look_options(args) -> None:
    """--summary/--plot/--report: refuse what cannot work before any fitting."""
    if not (args.summary or getattr(args, "plot", None) or getattr(args, "out", None) or args.report):
        return
    if not 0 < args.summary_level < 1:
        raise CLIError(f"--summary-level must be between 0 and 1 (e.g. 0.95), got {args.summary_level}")
    if args.summary and hasattr(args, "alpha") and penalty_of(args).alpha:
        raise CLIError("--summary needs an unpenalized fit (standard errors ignore a penalty); drop --penalty/--alpha")
    if args.command == "fit" and args.cov_type:
        allowed = {"l2": ("nonrobust", "HC0", "HC1", "HC2", "HC3"), "l1": ("robust", "iid"),
                   "quantile": ("robust", "iid"), "huber": ("H1", "H2", "H3")}.get(args.loss, ())
        if args.cov_type not in allowed:
            raise CLIError(f"--cov-type {args.cov_type} does not apply to the {args.loss} loss; choose "
                           f"{', '.join(allowed)}")
    if args.command == "fit" and args.loss in ("l1", "quantile") and args.summary:
        if (getattr(args, "nproc", 1) or 1) > 1 or topology_from_env() is not None:
            raise CLIError(f"--summary of the {args.loss} loss needs every residual in one process: drop --nproc, "
                           "or save the model (--save) and run gradfit plot --summary on the file")


def look(args, model, data, plot_dir):
    """The statistical summary and the plots/report asked for: (Summary or None, name -> path)."""
    from gradfit.viz.report import write_fit_outputs
    summary = None
    if args.summary or args.report:
        try:
            summary = model.summary(data, level=args.summary_level, cov_type=args.cov_type or "nonrobust")
        except ValueError:
            if args.summary:
                raise
    written = {}
    if plot_dir or args.report:
        coefs = getattr(args, "coefs", None)
        report = args.report
        dist = getattr(args, "dist", None)
        with tempfile.TemporaryDirectory(prefix="gradfit-peer-") as sink:
            if dist is not None and dist.rank != 0:  # every process takes part in the sums, rank 0 writes
                plot_dir = os.path.join(sink, "plots") if plot_dir else None
                report = os.path.join(sink, "report.html") if report else None
            import matplotlib
            with matplotlib.rc_context({"text.parse_math": False}):  # a column named "$x" is text, not math
                written = write_fit_outputs(model, data, plot_dir=plot_dir, report=report, summary=summary,
                                            settings={"data": args.data, **({"processes": dist.world} if dist else {})},
                                            coefs=tuple(int(v) for v in coefs.split(",")) if coefs else None)
    return (summary if args.summary else None), written


def look_json(summary, written) -> dict:
    out = {"summary": summary.to_dict()} if summary is not None else {}
    if written:
        out["written"] = {k: str(v) for k, v in written.items()}
    return out


def print_look(summary, written) -> None:
    if summary is not None:
        print(summary)
    for name, path in written.items():
        print(f"{name} written to {path}")


def cmd_plot(args) -> int:
    check_look_options(args)
    check_outputs(args, args.report)
    if not (args.out or args.report or args.summary):
        raise CLIError("nothing to do: give --out DIR for the plots, --report FILE.html, or --summary")
    model = load(args.model)
    args.design = model.formula_
    args.target = args.target or model.target_name
    if not args.target:
        raise CLIError(f"{args.model} names no target column; give --target")
    if model.formula_ is None:
        args.features = args.features or ",".join(model.feature_names_in_)
    args.dtype, args.device = "float64", "cpu"
    data = open_data(args)
    if list(data.feature_names) != list(model.feature_names_in_):
        raise CLIError(f"{args.data} gives features {', '.join(data.feature_names)} but the model was fitted on "
                       f"{', '.join(model.feature_names_in_)}; pass --features in the model's order")
    summary, written = look(args, model, data, args.out)
    print_look(summary, written)
    return 0


def print_fit(model, notes: list[str]) -> None:
    loss = model.loss["name"] + (f" (delta={model.loss['delta']:g}, {model.loss.get('scale', 'absolute')} scale"
                                 + (f" {model.info['scale']:.4g}" if "scale" in model.info else "") + ")"
                                 if "delta" in model.loss else "") + \
        (f" (tau={model.loss['tau']:g})" if "tau" in model.loss else "")
    pen = model.penalty
    if model.formula_ is not None:
        print(f"fitted {model.formula_.formula}: {len(model.feature_names_in_)} columns + intercept")
    else:
        print(f"fitted {model.target_name or 'y'} ~ {' + '.join(model.feature_names_in_)} + intercept")
    print(f"  loss {loss}, penalty {pen['name']}" + (f" (alpha={pen['alpha']:g})" if pen["alpha"] else "")
          + f", solver {model.solver}, rows {int(model.info.get('n_rows', 0))}")
    width = max([len(n) for n in model.feature_names_in_] + [9])
    print(f"  {'feature':<{width}}  coefficient")
    for name, c in model.coefficients().items():  # the intercept last
        print(f"  {name:<{width}}  {c: .10g}")
    print(f"final loss {model.final_loss_:.10g}")
    gap = "unknown" if math.isnan(model.gap_) else f"{model.gap_:.2e}"
    status = "converged" if model.converged_ else "NOT converged"
    print(f"{status} after {model.n_iter_} iterations; relative objective gap {gap}")
    print_notes(notes)


def print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)


@contextlib.contextmanager
def noted(*kinds: type[Warning]) -> Iterator[list[str]]:
    """The messages of the warnings of ``kinds`` raised in the block, each once, for the command to print
    as ``warning: ...`` lines: recorded whatever the filters (-W, PYTHONWARNINGS, an earlier call) say,
    because a row dropped or a fit not converged is never left unsaid."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        for kind in kinds:
            warnings.simplefilter("always", kind)
        yield notes
    notes.extend(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, kinds)))


def cmd_predict(args) -> int:
    model = load(args.model)
    extra = None
    if args.interval:
        extra = interval_writer(model, args.interval, args.level, args.cov_type)
    with noted(DataWarning) as notes:
        rows = predict_file(model, args.data, args.output, delimiter=args.delimiter, header=not args.no_header,
                            drop_na=args.drop_na, extra_columns=extra)
    print(f"wrote {rows} predictions to {'stdout' if args.output == '-' else args.output}",
          file=sys.stderr if args.output == "-" else sys.stdout)
    print_notes(notes)
    return 0


def interval_writer(model, interval: str, level: float, cov_type: str | None):
    """``<target>_pred_lower`` and ``_upper`` columns for ``predict --interval``; refuses before reading."""

    probe = np.zeros((1, model.n_features_in_))
    interval_columns(model, probe, probe[:, 0], interval, level, cov_type)  # the one-line error, if any
    kind = "mean" if interval == "confidence" else "obs"
    name = prediction_name(model)

    def columns(D, pred):
        c = interval_columns(model, D, pred, interval, level, cov_type)
        return {f"{name}_lower": c[f"{kind}_ci_lower"], f"{name}_upper": c[f"{kind}_ci_upper"]}
    return columns


def cmd_completion(args) -> int:
    sys.stdout.write(completion_script(args.shell, build_parser()))
    return 0


def print_json(obj) -> None:
    print(json.dumps(obj, indent=1, allow_nan=False, default=str))


COMMANDS = {"grad": cmd_grad, "demo": cmd_demo, "playground": cmd_playground, "fit": cmd_fit, "predict": cmd_predict,
            "completion": cmd_completion, "plot": cmd_plot}
