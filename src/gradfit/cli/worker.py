"""One process of ``gradfit fit --nproc N``, started by :func:`gradfit.cli.launcher.launch_local`.

The parsed arguments arrive as JSON in ``GRADFIT_WORKER_ARGS``; run as ``python -m gradfit.cli.worker``.
"""
from __future__ import annotations

import argparse
import json
import os

from gradfit.cli.commands import run_command
from gradfit.cli.entry import leave
from gradfit.cli.errors import guarded
from gradfit.cli.launcher import ARGS_ENV


def worker_main() -> int:
    from gradfit.cli.launcher import die_with_launcher
    die_with_launcher()  # never outlive the launcher (and never write after it is gone)
    args = argparse.Namespace(**json.loads(os.environ[ARGS_ENV]))
    return guarded(lambda: run_command(args), say_interrupted=False)


if __name__ == "__main__":
    leave(worker_main())
