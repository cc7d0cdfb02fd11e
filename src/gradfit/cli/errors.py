"""How the command line fails: one line, ``gradfit: error: ...``, exit code 2, for what the user can fix.

Anything else (a bug) keeps its traceback.
"""
from __future__ import annotations

import sys
from typing import Callable

from gradfit.exceptions import DataError, DivergenceError, SolverMismatch

EXIT_USAGE = 2


class CLIError(Exception):
    """A user-fixable problem found by the CLI itself."""


def is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, (CLIError, DataError, DivergenceError, SolverMismatch, ValueError, FileNotFoundError,
                            IsADirectoryError, PermissionError))


#: settings whose library message starts with their Python name ("lr must be ..."): the CLI names the flag
FLAG_OF = {name: "--" + name.replace("_", "-") for name in
           ("lr", "epochs", "batch_size", "tol", "seed", "momentum", "log_every", "device", "delta", "alpha",
            "l1_ratio", "quantile", "timeout")}


def one_line(exc: BaseException) -> str:
    text = exc.advice("cli") if isinstance(exc, DivergenceError) else str(exc)  # flags, not keywords
    text = " ".join(text.split()) or exc.__class__.__name__
    name, _, rest = text.partition(" ")
    if isinstance(exc, ValueError) and name in FLAG_OF and rest.startswith(("must ", "is ")):
        text = f"{FLAG_OF[name]} {rest}"
    return text


def guarded(run: Callable[[], int], *, say_interrupted: bool = True) -> int:
    """``run()``, with a user's error as one line and exit code 2, Ctrl-C as 130 and a closed pipe as 0."""
    try:
        return run()
    except KeyboardInterrupt as exc:  # a ReadInterrupted says how many rows were read
        if say_interrupted:
            where = f" ({exc})" if str(exc) else ""
            print(f"gradfit: interrupted{where}; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - user-facing edge: one line, exit 2, for known errors
        if not is_user_error(exc):
            raise
        print(f"gradfit: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
