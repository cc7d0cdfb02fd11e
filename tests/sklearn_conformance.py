"""Run scikit-learn's own test files against gradfit's drop-ins (issue 16).

The files come from the installed scikit-learn (``sklearn/linear_model/tests``). Each is copied to a
temporary folder with one edit: its ``from sklearn.linear_model import ...`` lines import the names
``gradfit.sklearn`` provides from there instead (other names still come from scikit-learn). Nothing
else changes. pytest runs the copies in a subprocess, with scikit-learn's conftest as a plugin (its
``global_random_seed`` fixture). For the drop-in files (``test_base.py``, ``test_ridge.py``,
``test_coordinate_descent.py``) only the tests that construct one of the drop-ins and none of the
out-of-scope classes (the CV, multi-task and classifier variants) run.

    python tests/sklearn_conformance.py [FILE ...]     # prints pass/fail counts and the failures
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import gradfit.sklearn

ROBUST_FILES = ["test_quantile.py", "test_huber.py"]
DROP_IN_FILES = ["test_base.py", "test_ridge.py", "test_coordinate_descent.py"]
DROP_INS = {"LinearRegression", "Ridge", "Lasso", "ElasticNet"}
OUT_OF_SCOPE = re.compile(r"\b(\w+CV|MultiTask\w*|RidgeClassifier\w*|_RidgeGCV|SGD\w+)\b")


def tests_dir() -> Path:
    import sklearn
    return Path(sklearn.__file__).parent / "linear_model" / "tests"


def rebind(source: str, names: set[str]) -> str:
    """Point the file's ``from sklearn.linear_model import`` lines at gradfit.sklearn for ``names``."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in sorted((n for n in tree.body if isinstance(n, ast.ImportFrom)
                        and n.module == "sklearn.linear_model"), key=lambda n: -n.lineno):
        ours = [a for a in node.names if a.name in names]
        if not ours:
            continue
        theirs = [a for a in node.names if a.name not in names]
        spell = lambda a: a.name + (f" as {a.asname}" if a.asname else "")  # noqa: E731
        new = f"from gradfit.sklearn import {', '.join(spell(a) for a in ours)}\n"
        if theirs:
            new = f"from sklearn.linear_model import {', '.join(spell(a) for a in theirs)}\n" + new
        lines[node.lineno - 1:node.end_lineno] = [new]
    return "".join(lines)


def selected_tests(source: str, drop_in_file: bool) -> list[str]:
    """Test function names to run: all, or for a drop-in file those that construct a drop-in only."""
    tree = ast.parse(source)
    names = []
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
            continue
        if drop_in_file:
            body = ast.get_source_segment(source, node) or ""
            if not any(re.search(rf"\b{c}\(", body) for c in DROP_INS) or OUT_OF_SCOPE.search(body):
                continue
        names.append(node.name)
    return names


def run(files: list[str] | None = None, workers: int = 0) -> dict:
    """{file: {"passed": n, "failed": [ids], "skipped": n, "selected": n}} for each file."""
    files = files or ROBUST_FILES + DROP_IN_FILES
    provided = set(gradfit.sklearn.__all__)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in files:
            source = (tests_dir() / name).read_text()
            tests = selected_tests(source, name in DROP_IN_FILES)
            path = Path(tmp) / name
            path.write_text(rebind(source, provided))
            report = Path(tmp) / (name + ".json")
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "sklearn.conftest", "-p", "no:cacheprovider",
                   "-o", "addopts=", "-W", "ignore::DeprecationWarning", "--rootdir", tmp,
                   "-p", "tests_conformance_report", f"--report-to={report}"]
            if workers:
                cmd += ["-n", str(workers)]
            cmd += [f"{path}::{t}" for t in tests]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent / "conformance_plugin"),
                                                               os.environ.get("PYTHONPATH", "")]))
            subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            outcome = json.loads(report.read_text()) if report.exists() else {"error": True}
            outcome["selected"] = len(tests)
            results[name] = outcome
    return results


def main(argv: list[str]) -> int:
    results = run(argv or None)
    total_p = total_f = 0
    for name, r in results.items():
        print(f"{name:32s} passed {r.get('passed', 0):4d}  failed {len(r.get('failed', [])):4d}  "
              f"skipped {r.get('skipped', 0):3d}  ({r['selected']} test functions)")
        total_p, total_f = total_p + r.get("passed", 0), total_f + len(r.get("failed", []))
    print(f"{'total':32s} passed {total_p:4d}  failed {total_f:4d}")
    for name, r in results.items():
        for test in r.get("failed", []):
            print(f"FAILED {name}::{test}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
