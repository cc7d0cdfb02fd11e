"""One process of ``gradfit fit --nproc N``, started by :func:`gradfit.cli.launcher.launch_local`.

The parsed arguments arrive as JSON in ``GRADFIT_WORKER_ARGS``; run as ``python -m gradfit.cli.worker``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from gradfit.cli.commands import run_command
from gradfit.cli.errors import guarded
from gradfit.cli.launcher import ARGS_ENV


def worker_main() -> int:
    from gradfit.cli.launcher import die_with_launcher
    die_with_launcher()  # never outlive the launcher (and never write after it is gone)
    args = argparse.Namespace(**json.loads(os.environ[ARGS_ENV]))
    return guarded(lambda: run_command(args), say_interrupted=False)


def leave(code: int) -> None:
    """Exit with ``code``. A failed worker leaves at once, its line already printed: torch's teardown of
    a process group whose peer is gone can abort (SIGABRT), which would hide the exit code (2: a bad
    input, 1: a lost peer) that the launcher reads."""
    if code != 0:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    leave(worker_main())
