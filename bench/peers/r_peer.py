"""R's quantile regression: quantreg (Koenker's reference: ``rq.fit`` with ``fn``, ``pfn``, ``br``)
and conquer (smoothed, approximate), run by ``Rscript`` on the same data.

The benchmark installs nothing: a peer whose ``Rscript`` or package is missing is skipped with one
line. The rows reach R through one binary file per problem (float64, X column by column, then y:
the values the Python peers get), written once; R reads it, then times the fit call alone
(``rq.fit(cbind(1, X), y, tau, method)`` or ``conquer(X, y, tau)``, the intercept column built
before the clock starts), so R's start-up and the read are not counted against it.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

import numpy as np

from ..problems import Problem
from .base import Peer, Skip

SCRIPT = r"""
args <- commandArgs(TRUE)
n <- as.integer(args[2]); p <- as.integer(args[3]); tau <- as.numeric(args[4]); method <- args[5]
con <- file(args[1], "rb")
X <- matrix(readBin(con, "double", n * p), n, p)
y <- readBin(con, "double", n)
close(con)
if (method == "conquer") {
  suppressMessages(library(conquer))
  t0 <- proc.time()[["elapsed"]]
  coef <- conquer(X, y, tau = tau)$coeff
} else {
  suppressMessages(library(quantreg))
  X1 <- cbind(1, X)
  t0 <- proc.time()[["elapsed"]]
  coef <- rq.fit(X1, y, tau = tau, method = method)$coefficients
}
el <- proc.time()[["elapsed"]] - t0
cat(sprintf("%.17g", c(el, coef)), "\n")
"""


@functools.lru_cache(maxsize=None)
def missing(package: str) -> str | None:
    """Why R with ``package`` cannot run here (one line), or None."""
    if shutil.which("Rscript") is None:
        return "skipped: Rscript not found (install r-base-core to compare with R)"
    try:
        out = subprocess.run(["Rscript", "-e", f"cat(requireNamespace('{package}', quietly=TRUE))"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"skipped: Rscript did not run ({type(exc).__name__})"
    return None if out == "TRUE" else f"skipped: R package {package} not installed (r-cran-{package})"


_FILES: dict[tuple, str] = {}


def data_file(X: np.ndarray, y: np.ndarray, problem: Problem) -> str:
    """The problem's rows as one float64 file (X column-major, then y), written once per run."""
    key = (problem.key, X.shape, float(X[0, 0]), float(y[-1]))
    if key not in _FILES:
        fd, path = tempfile.mkstemp(prefix="gradfit-bench-", suffix=".f64")
        with os.fdopen(fd, "wb") as fh:
            for j in range(X.shape[1]):
                fh.write(np.ascontiguousarray(X[:, j]).tobytes())
            fh.write(np.ascontiguousarray(y).tobytes())
        for old in _FILES.values():  # keep one problem's file at a time (10M x 10 is 880 MB)
            os.unlink(old)
        _FILES.clear()
        _FILES[key] = path
    return _FILES[key]


class RQuantile(Peer):
    """``quantreg::rq.fit(method=...)`` or ``conquer::conquer``; ``timed_inside``: the harness
    takes the fit call's own seconds (``self.seconds``) instead of the wall clock around R."""

    losses = ("absolute", "quantile")
    timed_inside = True
    # issue 15's timings on this machine (s per 1M rows x 10 features), for skipping the slow ones
    PER_MILLION = {"fn": 2.5, "pfn": 0.93, "br": 5.3 * 10 ** 1.5, "conquer": 2.5}

    def __init__(self, method: str):
        super().__init__()
        self.method = method
        self.package = "conquer" if method == "conquer" else "quantreg"
        self.name = "R conquer (smoothed)" if method == "conquer" else f"R quantreg {method}"
        self.slow = method == "br"
        self.seconds = None

    def supports(self, problem: Problem):
        return super().supports(problem) or missing(self.package)

    def estimate_seconds(self, problem: Problem):
        scale = problem.n / 1e6 * problem.p / 10
        if self.method == "br":
            return self.PER_MILLION["br"] * (problem.n / 1e6) ** 1.5
        return self.PER_MILLION[self.method] * scale

    def fit(self, X, y, problem: Problem):
        path = data_file(X, y, problem)
        tau = problem.tau if problem.loss == "quantile" else 0.5
        proc = subprocess.run(["Rscript", "-e", SCRIPT, path, str(X.shape[0]), str(X.shape[1]),
                               repr(float(tau)), self.method], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise Skip(f"failed: R exited with code {proc.returncode}: {last[:160]}")
        values = [float(v) for v in proc.stdout.split()]
        self.seconds = values[0]
        self.info = {"seconds_inside_r": values[0]}
        coef = np.asarray(values[2:])
        return coef, values[1]
