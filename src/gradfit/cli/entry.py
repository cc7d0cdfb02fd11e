"""``gradfit ...``: parse the command line, run the command, report a user's error in one line."""
from __future__ import annotations

from typing import Sequence

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
