"""scikit-learn's own test files pass against gradfit's drop-ins, but for the list in docs/sklearn.md (issue 16).

Slow (minutes of CPU: many fits), so marked slow; `make test` runs it all the same.
"""
import re
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

import sklearn_conformance  # noqa: E402  (tests/ is on sys.path)

DOC = Path(__file__).resolve().parents[1] / "docs" / "sklearn.md"


def documented_failures() -> list[str]:
    text = DOC.read_text()
    block = text.split("<!-- conformance-failures: begin -->")[1].split("<!-- conformance-failures: end -->")[0]
    return re.findall(r"^- `([^`]+)` — \S", block, flags=re.M)


def matches(test_id: str, pattern: str) -> bool:
    """``*`` is any text; everything else literal (test ids have brackets)."""
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), test_id) is not None


@pytest.mark.slow
def test_robust_files_fail_only_on_the_documented_list():
    results = sklearn_conformance.run(sklearn_conformance.ROBUST_FILES, workers=0)
    patterns = documented_failures()
    failed = [f"{name}::{t}" for name, r in results.items() for t in r["failed"]]
    assert all(not r.get("error") for r in results.values()), results
    undocumented = [f for f in failed if not any(matches(f, p) for p in patterns)]
    assert not undocumented, "failures not in docs/sklearn.md:\n" + "\n".join(undocumented)
    robust = [p for p in patterns if p.split("::")[0] in sklearn_conformance.ROBUST_FILES]
    stale = [p for p in robust if not any(matches(f, p) for f in failed)]
    assert not stale, "documented failures that pass now (remove them from docs/sklearn.md):\n" + "\n".join(stale)
    assert sum(r["passed"] for r in results.values()) >= 66
