"""Command line: ``gradfit grad | demo | fit | predict``. A thin edge over the library.

Every error the user can fix is printed as one line, ``gradfit: error: ...``, with exit code 2
(:mod:`gradfit.cli.errors`); :mod:`gradfit.cli.entry` runs the parsed command.
"""
from __future__ import annotations

import argparse

from gradfit._version import __version__


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _add_train_arguments(p: argparse.ArgumentParser, *, demo: bool) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--loss", default="l1" if demo else "l2", choices=["l2", "l1", "huber", "quantile"],
                   help="loss per residual: l2 = squared (MSE), l1 = absolute (MAE), huber, quantile "
                        "(default: %(default)s)")
    g.add_argument("--optimizer", "--solver", dest="optimizer", default="sgd" if demo else "auto",
                   help="auto (exact optimum, fastest method for the loss), exact, sgd, momentum, nesterov, "
                        "adam, lbfgs, gd, newton, ipm, cd, prox (default: %(default)s)")
    g.add_argument("--lr", type=float, default=0.001 if demo else None,
                   help="learning rate of the gradient methods (default: %(default)s)")
    g.add_argument("--epochs", type=int, default=500 if demo else 1000,
                   help="passes over the data for iterative methods (default: %(default)s)")
    g.add_argument("--log-every", type=int, default=10 if demo else 0, metavar="N",
                   help="print the loss every N epochs (default: %(default)s; 0 = never)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    g.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                   help="gradient methods step on standardized features (mean 0, std 1) and report the "
                        "coefficients in the original units (default: on for gd, off for sgd/momentum/"
                        "nesterov/adam, as a plain PyTorch loop)")
    if not demo:
        g.add_argument("--batch-size", type=int, default=None, metavar="ROWS",
                       help="rows per gradient step (default: all rows, full batch)")
        g.add_argument("--tol", type=float, default=1e-8,
                       help="converged means the certified relative objective gap is at most this; iterative "
                            "solvers stop there (default: %(default)s)")
        g.add_argument("--delta", type=float, default=1.35,
                       help="huber threshold, relative to --huber-scale (default: %(default)s)")
        g.add_argument("--huber-scale", default="joint", choices=["joint", "mad", "absolute"],
                       help="what --delta is relative to: joint = a scale fitted with the coefficients "
                            "(scikit-learn's HuberRegressor), mad = the residuals' MAD scale (statsmodels "
                            "RLM), absolute = units of the target (default: %(default)s)")
        g.add_argument("--quantile", type=float, default=0.5, help="quantile loss level (default: %(default)s)")
        g.add_argument("--penalty", default=None, choices=["none", "l2", "l1", "elasticnet"],
                       help="names the mix: l2 = --l1-ratio 0, l1 = 1, elasticnet = --l1-ratio (0.5 if not "
                            "given); without it --alpha and --l1-ratio are used as given")
        g.add_argument("--alpha", type=float, default=0.0,
                       help="penalty strength: alpha * (l1_ratio |w|_1 + (1 - l1_ratio)/2 |w|^2) (default: %(default)s)")
        g.add_argument("--l1-ratio", type=float, default=None,
                       help="share of the L1 term in [0, 1] (default: 0, or the --penalty's mix)")
        g.add_argument("--no-intercept", action="store_true", help="fit y = Xw without b")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gradfit", description="Fit the line (or hyperplane) that best explains data: by gradient "
        "descent, exactly, and show how it got there.")
    parser.add_argument("--version", action="version", version=f"gradfit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("grad", help="the tutorial's autograd walkthrough: y = 2x, z = 2y + 3, loss, backward",
                       description="Build the tutorial's tiny graph, call loss.backward() and show every node, "
                                   "matched to what it computes, and x.grad.")
    _add_lang(p)
    p.add_argument("--x", type=_floats, default=[2.0, 3.0], help="leaf values (default: 2,3)")
    p.add_argument("--target", type=_floats, default=[3.0, 4.0], help="target values (default: 3,4)")
    p.add_argument("--loss", choices=["l1", "l2"], default="l1",
                   help="l1: sum |z - target| (the tutorial's), l2: sum of squares (default: %(default)s)")

    p = sub.add_parser("demo", help="the tutorial's training program, then the exact answer beside it",
                       description="1000 points, x ~ U(-10, 10), y = 2(x + noise) + 3, nn.Linear(1, 1), L1 loss, "
                                   "SGD lr 0.001, 500 epochs; then the exact optimum and a fit that reaches it.")
    p.add_argument("--n", type=int, default=1000, help="number of points (default: %(default)s)")
    p.add_argument("--noise-std", type=float, default=1.0, help="std of the noise (default: %(default)s)")
    p.add_argument("--out", default=None, metavar="DIR", help="also write the tutorial's plots and report here")
    p.add_argument("--show-code", action="store_true", help="print the plain PyTorch program of these settings")
    _add_lang(p)
    _add_train_arguments(p, demo=True)

    p = sub.add_parser("playground", help="gradient descent you can play with, in the browser (local)",
                       description="Serve the learner's playground on 127.0.0.1 and open it in the browser: move the "
                                   "learning rate, the loss, the optimizer and the data, watch PyTorch descend, "
                                   "compare with the exact optimum and copy the program. Nothing leaves this machine.")
    p.add_argument("--port", type=int, default=0, help="port to serve on (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the address but do not open a browser")
    _add_lang(p)

    p = sub.add_parser("fit", help="fit a CSV or Parquet file", description="Fit y = Xw + b on a CSV/Parquet "
                       "file, a folder or a glob of them, and print the coefficients.")
    p.add_argument("data", help="CSV or Parquet file, folder, or glob")
    p.add_argument("--target", default=None, help="name of the target column (required unless --formula)")
    p.add_argument("--features", default=None, help="comma-separated feature columns (default: every numeric "
                   "column but the target and weight)")
    p.add_argument("--formula", default=None, metavar="'Y ~ X1 + C(X2) + X1:X3'",
                   help="Wilkinson formula (formulaic): C(col) or a text column is categorical, encoded like "
                        "statsmodels (C(col)[T.level]); a:b interactions; the encoding is saved with the model")
    p.add_argument("--levels", default=None, action="append", metavar="COL=A,B,C",
                   help="declare the levels of a categorical column (repeatable; default: the levels in the data)")
    _add_read_arguments(p)
    _add_train_arguments(p, demo=False)
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print one JSON result instead of text")
    o.add_argument("--save", metavar="MODEL.json", help="save the model (atomic write)")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar or per-epoch lines")
    o.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                   help="floating point type of the computation (default: %(default)s)")
    o.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    d = p.add_argument_group("many processes (see docs/distributed.md)")
    d.add_argument("--nproc", type=int, default=1, metavar="N", help="run the fit in N processes on this "
                   "machine, each reading its shard (default: %(default)s; under torchrun leave it out)")
    d.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="give up when a process "
                   "cannot connect or stops answering for this long (default: %(default)s)")
    d.add_argument("--backend", default="auto", choices=["auto", "gloo", "nccl"],
                   help="torch.distributed backend: auto = nccl on CUDA, gloo on CPU (default: %(default)s)")

    _add_look_arguments(p)  # --summary, --plot, --report

    p = sub.add_parser("predict", help="predict with a saved model", description="Predict with a saved model "
                       "on a CSV/Parquet file; the output format follows the -o extension.")
    p.add_argument("model", help="model file written by fit --save")
    p.add_argument("data", help="CSV or Parquet file, folder, or glob")
    p.add_argument("-o", "--output", required=True, help="out.csv or out.parquet (atomic write); - writes CSV "
                   "to stdout")
    p.add_argument("--interval", default=None, choices=["confidence", "prediction"],
                   help="add <target>_pred_lower and _upper columns: the interval of the mean (confidence) or of "
                        "a new observation (prediction); least-squares models saved with their covariance")
    p.add_argument("--level", type=float, default=0.95, help="coverage of --interval (default: %(default)s)")
    p.add_argument("--cov-type", default=None, choices=["nonrobust", "HC0", "HC1", "HC2", "HC3"],
                   help="covariance behind --interval, as saved by fit --summary --cov-type (default: nonrobust)")
    _add_read_arguments(p)

    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)",
                       description="Print a completion script generated from this CLI's options.")
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to complete in")

    p = sub.add_parser("plot", help="plots (and a report) of a saved model on its data",
                       description="Draw the loss curve, the fit, the residuals and the loss surface of a saved model "
                                   "on a CSV/Parquet file (at most 5000 sampled rows), and optionally an HTML report.")
    p.add_argument("model", help="model file written by fit --save")
    p.add_argument("data", help="CSV or Parquet file, folder, or glob")
    p.add_argument("--target", default=None, help="target column (default: the model's)")
    p.add_argument("--features", default=None, help="feature columns (default: the model's)")
    p.add_argument("--coefs", default=None, metavar="I,J", help="the two parameters of the loss-surface slice, as "
                   "indices into (w_1..w_p, b); p is the intercept (default: w_1,b for one feature, else w_1,w_2)")
    _add_read_arguments(p)
    _add_look_arguments(p, plot_command=True)
    _add_examples(sub)
    return parser


EXAMPLES = {  # the epilog of each subcommand's --help
    "grad": "gradfit grad\ngradfit grad --x 1,2,3 --target 0,0,0 --loss l2",
    "demo": "gradfit demo\ngradfit demo --optimizer adam --lr 0.05 --epochs 200 --log-every 50\n"
            "gradfit demo --show-code --lang ko",
    "playground": "gradfit playground\ngradfit playground --port 8765 --no-browser --lang ko",
    "fit": "gradfit fit data.csv --target price\n"
           "gradfit fit data.parquet --target y --features x1,x2 --loss huber --save model.json\n"
           "gradfit fit 'logs/*.csv' --target y --optimizer sgd --batch-size 256 --epochs 5 --json\n"
           "gradfit fit homes.csv --formula 'price ~ sqft + age + C(hood) + sqft:age' --summary --save m.json",
    "predict": "gradfit predict model.json new.csv -o predictions.csv\n"
               "gradfit predict model.json new.csv -o - --interval prediction --level 0.9",
    "plot": "gradfit plot model.json data.csv --out plots/\n"
            "gradfit plot model.json data.csv --out plots/ --report report.html --summary",
    "completion": "source <(gradfit completion bash)      # in ~/.bashrc\n"
                  "source <(gradfit completion zsh)       # in ~/.zshrc\n"
                  "gradfit completion fish | source       # in ~/.config/fish/config.fish",
}


class _ExamplesFormatter(argparse.HelpFormatter):
    """Wraps one-line descriptions as usual but keeps the line breaks of multi-line epilogs."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def _add_examples(sub) -> None:
    for name, parser in sub.choices.items():
        parser.formatter_class = _ExamplesFormatter
        if parser.epilog is None and name in EXAMPLES:
            parser.epilog = "examples:\n" + "\n".join("  " + line for line in EXAMPLES[name].splitlines())


def _add_lang(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", choices=["en", "ko"], default=None,
                   help="language of the text: en or ko (default: from the locale, LANG)")


def _add_read_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading")
    g.add_argument("--delimiter", default=",", help="CSV delimiter (default: ',')")
    g.add_argument("--no-header", action="store_true", help="CSV has no header: columns are named c0, c1, ...")
    g.add_argument("--weight", default=None, metavar="COL", help="column of sample weights")
    g.add_argument("--drop-na", action="store_true", help="skip rows with a missing value instead of failing")


def _add_look_arguments(p: argparse.ArgumentParser, plot_command: bool = False) -> None:
    g = p.add_argument_group("summary, plots and report")
    g.add_argument("--summary", action="store_true", help="print the statistical summary: standard errors, t, "
                   "p-values, intervals, R^2, F, AIC/BIC (unpenalized fits)")
    g.add_argument("--summary-level", type=float, default=0.95, metavar="LEVEL",
                   help="confidence level of the intervals (default: %(default)s)")
    g.add_argument("--cov-type", default=None, choices=["nonrobust", "HC0", "HC1", "HC2", "HC3", "robust", "iid",
                                                        "H1", "H2", "H3"],
                   help="standard errors: nonrobust or HC0-HC3 (l2), robust or iid (l1, quantile), H1-H3 (huber) "
                        "(default: nonrobust, robust, H1)")
    if plot_command:
        g.add_argument("--out", default=None, metavar="DIR", help="folder for the PNG plots")
    else:
        g.add_argument("--plot", default=None, metavar="DIR", help="write the plots (PNG) into DIR")
    g.add_argument("--report", default=None, metavar="FILE.html", help="write one self-contained HTML report")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (``gradfit: error: ...``) with exit code 2, like every other error."""

    def error(self, message):
        self.exit(2, f"gradfit: error: {' '.join(message.split())}; see {self.prog} --help\n")
