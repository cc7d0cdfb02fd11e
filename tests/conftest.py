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
