"""What each CLI subcommand does, given parsed arguments. Printing lives here, math does not."""
from __future__ import annotations

import argparse
import math
import sys
import warnings

from .cli import CLIError, print_json


def run_command(args: argparse.Namespace) -> int:
    handler = COMMANDS.get(args.command)
    if handler is None:
        raise CLIError(f"unknown command {args.command!r}")
    return handler(args)


def cmd_grad(args) -> int:
    from .tutorial import autograd_walkthrough
    autograd_walkthrough(args.x, args.target, args.loss)
    return 0


def cmd_demo(args) -> int:
    from .tutorial import demo
    if args.n < 2:
        raise CLIError("--n must be at least 2 points")
    demo(n=args.n, epochs=args.epochs, lr=args.lr, loss=args.loss, optimizer=args.optimizer,
         log_every=args.log_every, seed=args.seed, noise_std=args.noise_std)
    return 0


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise CLIError("--features is empty; give comma-separated column names")
    return names


def open_data(args, **extra):
    from .data.files import open_table
    return open_table(args.data, target=args.target, features=_split(args.features), weight=args.weight,
                      drop_na=args.drop_na, delimiter=args.delimiter, header=not args.no_header,
                      dtype=args.dtype, device=args.device, **extra)


def cmd_fit(args) -> int:
    from .api import fit
    from .progress import ProgressBar
    from .solvers import ConvergenceWarning
    data = open_data(args)
    text = not args.json
    bar = ProgressBar(args.epochs, enabled=False if (args.quiet or not text) else None)
    on_log = (lambda e, v: print(f"epoch {e:5d}  loss {v:.8g}")) if (text and not args.quiet) else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            model = fit(data, loss=args.loss, solver=args.optimizer, penalty=args.penalty, alpha=args.alpha,
                        l1_ratio=args.l1_ratio, delta=args.delta, quantile=args.quantile, lr=args.lr,
                        epochs=args.epochs, batch_size=args.batch_size, tol=args.tol, seed=args.seed,
                        fit_intercept=not args.no_intercept, dtype=args.dtype, device=args.device,
                        log_every=args.log_every, on_log=on_log,
                        on_epoch=lambda e, v, t: bar.update(e, v))
        finally:
            bar.close()
    notes = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    if args.save:
        model.save(args.save)
    if not text:
        out = model.to_dict(with_history=False)
        out["saved_to"] = args.save
        print_json(out)
        return 0
    print_fit(model, notes)
    if args.save:
        print(f"model saved to {args.save}")
    return 0


def print_fit(model, notes: list[str]) -> None:
    loss = model.loss["name"] + (f" (delta={model.loss['delta']:g})" if "delta" in model.loss else "") + \
        (f" (tau={model.loss['tau']:g})" if "tau" in model.loss else "")
    pen = model.penalty
    print(f"fitted {model.target_name or 'y'} ~ {' + '.join(model.feature_names_in_)} + intercept")
    print(f"  loss {loss}, penalty {pen['name']}" + (f" (alpha={pen['alpha']:g})" if pen["alpha"] else "")
          + f", solver {model.solver}, rows {int(model.info.get('n_rows', 0))}")
    width = max([len(n) for n in model.feature_names_in_] + [9])
    print(f"  {'feature':<{width}}  coefficient")
    for name, c in model.coefficients().items():
        print(f"  {name:<{width}}  {c: .10g}")
    print(f"  {'intercept':<{width}}  {model.intercept_: .10g}")
    print(f"final loss {model.final_loss_:.10g}")
    gap = "unknown" if math.isnan(model.gap_) else f"{model.gap_:.2e}"
    status = "converged" if model.converged_ else "NOT converged"
    print(f"{status} after {model.n_iter_} iterations; relative objective gap {gap}")
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)


def cmd_predict(args) -> int:
    from .data.files import predict_file
    from .model import load
    model = load(args.model)
    rows = predict_file(model, args.data, args.output, delimiter=args.delimiter, header=not args.no_header,
                        drop_na=args.drop_na)
    print(f"wrote {rows} predictions to {args.output}")
    return 0


COMMANDS = {"grad": cmd_grad, "demo": cmd_demo, "fit": cmd_fit, "predict": cmd_predict}
