"""``gradfit ...``: parse the command line, run the command, report a user's error in one line."""
from __future__ import annotations

import os
import sys
from typing import NoReturn, Sequence

from gradfit.cli.errors import guarded
from gradfit.cli.parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    try:  # Ctrl-C while torch is still being imported is one line too
        args = build_parser().parse_args(argv)
        # imported after parsing: ``--help`` and a usage error answer without loading torch
        from gradfit.cli.commands import run_command
    except KeyboardInterrupt:
        import sys
        print("gradfit: interrupted; nothing was written", file=sys.stderr)
        return 130
    return guarded(lambda: run_command(args))


def leave(code: int) -> NoReturn:
    """End a process started to run the command line (``python -m gradfit``, under torchrun too, and the
    launcher's workers) with ``code``. A failure leaves at once, its line already printed: after a
    distributed fit whose peer is gone, torch's teardown of the process group can abort (SIGABRT), which
    would replace the exit code (1: a lost peer, 2: a bad input) that torchrun and the launcher read."""
    if code != 0:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
