import os

import pytest
import torch

# Keep each test worker on one thread: `make test` runs two workers on two cores.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def run_cli(capsys):
    """Run ``gradfit ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from gradfit.cli import main

    def run(*args):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse: --help, --version, a bad flag
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def pytest_terminal_summary(terminalreporter):
    """The hostile-input harness says how many (file, command) cases it ran (tests/test_hostile_harness.py);
    counted from the reports' properties, so it works under xdist too."""
    total = sum(v for reports in terminalreporter.stats.values() for r in reports
                for k, v in getattr(r, "user_properties", ()) if k == "hostile_cases"
                and getattr(r, "when", "call") == "call")
    if total:
        terminalreporter.write_line(f"hostile harness: {total} cases (file x command, plus fuzz examples)")
