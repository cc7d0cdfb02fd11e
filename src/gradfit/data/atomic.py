"""Atomic output: write to a temporary file beside the target, then rename over it.

A crash, Ctrl-C or a full disk leaves either the old file or no file, never half of one. Before
anything is written, the output path is checked (:func:`check_output`): a symlink is followed and
its target written; a folder, a FIFO or a device is refused, and so is a path that is one of the
command's inputs (the files passed in ``inputs`` or registered with :func:`protect`). A file that
already exists keeps its permission bits.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from gradfit.exceptions import DataError

_PROTECTED: list[str] = []  # the inputs of the command running now (see protect)


class OutputError(DataError):
    """An output path that must not be written: an input, a folder, a FIFO or a device."""


@contextlib.contextmanager
def protect(paths: Iterable[str | os.PathLike]) -> Iterator[None]:
    """While the block runs, no atomic write may replace any of ``paths`` (a command's input files)."""
    added = [os.fspath(p) for p in paths]
    _PROTECTED.extend(added)
    try:
        yield
    finally:
        for p in added:
            _PROTECTED.remove(p)


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """The path a write to ``path`` lands on (symlinks followed); OutputError when it is refused."""
    shown = os.fspath(path)
    real = Path(os.path.realpath(shown))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real  # a new file cannot be an input
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {exc.strerror or exc}; choose another output path") from None
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{shown} is a folder; name a file to write")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{shown} is a FIFO, socket or device, not a regular file; name a regular file to write")
    for inp in [*map(os.fspath, inputs), *_PROTECTED]:
        try:
            si = os.stat(inp)
        except OSError:
            continue
        if (si.st_dev, si.st_ino) == (st.st_dev, st.st_ino):
            raise OutputError(f"{shown} is the input file {inp}: writing it would replace your data; "
                              "name another output file")
    return real


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` (or a symlink's target) in one
    rename. Refused before anything is written: see :func:`check_output`."""
    target = check_output(path, inputs)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)  # an existing file keeps its mode
    except FileNotFoundError:
        mode = 0o666 & ~_umask()  # what open() would have given
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}; choose another output "
                          "path") from None
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        check_output(target, inputs)  # still not an input, nor replaced by a FIFO meanwhile
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
