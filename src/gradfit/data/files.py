"""Files as a :class:`Batches` source: CSV and Parquet, streamed in record batches.

``open_table`` reads the schema, checks the columns, and returns a :class:`FileBatches`. Each pass
re-reads the files batch by batch, so peak memory does not grow with the number of rows. A
source whose selected columns fit in ``cache_bytes`` (64 MB: estimated as the CSV file size, or
Parquet rows x columns x 8 bytes) is read once at open and kept in memory (``full_batch()``
returns it), which is much cheaper for gradient methods that make hundreds of passes.

Row numbers in errors are 1-based data rows of the file named (a CSV header is not counted; the
CSV line is given beside). Sharding (``shard=(rank, world_size)``): Parquet row groups of all
files, or the CSV files, are dealt round-robin; a single uncompressed CSV is cut into
``world_size`` byte ranges of whole lines (values must not contain newlines).
"""
from __future__ import annotations

import warnings
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import torch

from gradfit.data import storage
from gradfit.data.batches import Batch, Batches, DataError
from gradfit.exceptions import DataWarning  # noqa: F401  (re-exported: gradfit.data.files.DataWarning)
from gradfit.data.columns import (check_weights, left_out_column, redundant_columns, select_features, to_float,
                                  to_matrix)
from gradfit.data.sources import (Unit, file_names, kind_of, read_units, resolve, shard_units, show, units_of,
                                  where)
from gradfit.data.predict import predict_file  # noqa: F401  (re-exported: the CLI imports both from here)
from gradfit.data import progress
from gradfit.data.stream import drain, estimate_rows, read_ahead
from gradfit.numerics.device import resolve_device, resolve_dtype

CACHE_BYTES = 64 << 20
# Blocks read ahead of the caller, up to this many bytes of them as float64 (about two 1M-row groups
# of 11 columns), so that decoding the next row group does not wait for the caller to finish the last one.
# The streamed exact fit of 70M rows, best of 5: 2.06 s with 192 MB, 2.14 s with 96, 2.12 s with
# 320, 2.49 s with two blocks (the earlier depth).
READ_AHEAD_BYTES = 192 << 20
SAMPLE_UNITS = 4    # a sample of a few units (:meth:`FileBatches.sample_units`) comes from at least this many
SAMPLE_SHARE = 0.25  # and at most this share of the rows (else the caller reads everything)
SHUFFLE_ROWS = 1 << 18  # rows mixed together by a streamed shuffled pass, at most SHUFFLE_BYTES of them
SHUFFLE_BYTES = 64 << 20


class ReadInterrupted(KeyboardInterrupt):
    """Ctrl-C while reading; the message says how far the read got."""


class FileBatches(Batches):
    """Rows of CSV/Parquet files, read again on every pass (or cached when small)."""

    def __init__(self, files: list[str], units: list[Unit], *, names: list[str], features: list[str],
                 target: str, weight: str | None, drop_na: bool, delimiter: str, header: bool,
                 dtype: torch.dtype, device: torch.device, batch_rows: int, progress: bool,
                 min_rows: int, sharded: bool):
        self.files, self.units, self.names = files, units, names
        self.feature_names, self.target_name, self.weight_name = list(features), target, weight
        self.columns = self.feature_names + [target] + ([weight] if weight else [])
        self.drop_na, self.delimiter, self.header = drop_na, delimiter, header
        self.dtype, self.device = dtype, device
        self.batch_rows, self.progress, self.min_rows, self.sharded = batch_rows, progress, min_rows, sharded
        self.rows_read = 0
        self._full: Batch | None = None
        self._notes: list[str] = []
        self._warned = False
        self._passes = 0
        self._unchecked = False
        self._dropped, self._loading = 0, False
        if not drop_na and all(u.n_rows is not None for u in units):
            self._n_rows = sum(u.n_rows for u in units)
            self._check_rows(self._n_rows)

    @property
    def source(self) -> str:
        return self.files[0] if len(self.files) == 1 else f"{len(self.files)} files ({self.files[0]}, ...)"

    @property
    def has_weight(self) -> bool:
        return self.weight_name is not None

    # -- passes ------------------------------------------------------------------------------------
    def _converted(self, units: Sequence[Unit], convert) -> Iterator[tuple[object, int]]:
        """``(convert(record batch, at), rows)`` for each record batch (runs in the reading thread)."""
        types = {c: pa.float64() for c in self.columns}
        for rb, unit, row0 in read_units(units, types, names=self.names, delimiter=self.delimiter,
                                         header=self.header, batch_rows=self.batch_rows):
            def at(i, unit=unit, row0=row0):
                return f"{where(unit, row0 + i, self.header)} of {unit.path}"
            item = convert(rb, at)
            yield item, len(item[0])  # a (k, n) matrix or k columns: n rows

    def _read(self, units: Sequence[Unit], convert, ahead: int | None = None, part: bool = False) -> Iterator:
        """Converted blocks of ``units``, read ahead in a thread (up to ``ahead`` bytes, default
        ``READ_AHEAD_BYTES``) while the caller computes on the last one; count rows; Ctrl-C reports the count.
        ``part``: a few units read out of order (no progress bar; not counted as a pass)."""
        bar = self._bar() if self._passes == 0 and not part else None
        rows, self._dropped = 0, 0
        block_bytes = 8 * len(self.columns)  # per row, as float64
        try:
            for item, n in read_ahead(lambda: self._converted(units, convert), limit=ahead or READ_AHEAD_BYTES,
                                      cost=lambda item: block_bytes * item[1]):
                rows += n
                self.rows_read = rows
                if bar is not None:
                    bar.update(rows)
                if n:
                    yield item
        except KeyboardInterrupt:
            raise ReadInterrupted(f"stopped reading {self.source} after {rows:,} rows") from None
        finally:
            if bar is not None:
                bar.close()
        if part:
            return
        self._passes += 1
        if units is self.units:
            if self._n_rows is None:
                self._n_rows = rows
            if self._passes == 1 and self.drop_na and not self.sharded:
                self._notes.append(f"--drop-na skipped {self._dropped:,} of {rows + self._dropped:,} rows "
                                   "(a missing, NaN or infinite value in a selected column)")
            self._check_rows(rows)
            if not self._loading:  # streamed: the notes of the first pass now (cached: at first use)
                self._warn_notes()

    def _matrix(self, rb: pa.RecordBatch, at) -> np.ndarray:
        """The (k, n) float64 matrix of the selected columns, NaN/inf and weights checked."""
        M, keep = to_matrix(rb, self.columns, at, self.drop_na, self.weight_name)
        if keep is not None:
            self._dropped += int(len(keep) - keep.sum())
        return M

    def _raw_columns(self, rb: pa.RecordBatch, at) -> list[np.ndarray]:
        """The selected columns as float64 arrays (no copy when stored as float64), NaN/inf not checked."""
        if self.drop_na:
            return list(self._matrix(rb, at))
        cols = [to_float(rb.column(c), c, at) for c in self.columns]
        if self.weight_name is not None:
            check_weights(cols[-1], self.weight_name, at)
        return cols

    def _blocks(self, units: Sequence[Unit]) -> Iterator[Batch]:
        p = len(self.feature_names)
        for M in self._read(units, self._matrix):
            t = torch.from_numpy(M)
            if self.dtype != torch.float64 or self.device.type != "cpu":
                t = t.to(device=self.device, dtype=self.dtype)
            yield Batch(t[:p].T, t[p], t[p + 1] if self.weight_name else None)

    def unchecked_columns(self, read_ahead: int | None = None) -> Iterator[list[np.ndarray]] | None:
        """A streamed pass of float64 columns, not scanned for NaN/inf: :meth:`validate` then re-reads
        with the checks. Offered for float64 on the CPU when the rows are not cached. ``read_ahead``:
        bytes of blocks decoded ahead of the caller (default ``READ_AHEAD_BYTES``); a caller slower
        than the reader holds that much."""
        if self._full is not None or self.dtype != torch.float64 or self.device.type != "cpu":
            return None
        self._unchecked = True
        return self._read(self.units, self._raw_columns, read_ahead)

    def sample_units(self, rows: int, generator: torch.Generator, read_ahead: int | None = None,
                     least: int = SAMPLE_UNITS, most: float = SAMPLE_SHARE) -> tuple[Iterator[list[np.ndarray]], int] | None:
        """(blocks, their rows): blocks as :meth:`unchecked_columns` gives them, of whole units (row groups) picked at random:
        at least ``least`` of them and about ``rows`` rows, in file order; or None when the source
        cannot read a part of itself (CSV, rows cached or unknown, not float64 on the CPU) or those
        units would hold more than ``most`` of its rows. A sample from them is a sample of a few
        places in the file, uniform only when the file's row order is random: its users must not
        rely on it for correctness."""
        units = self.units
        if (self._full is not None or self.dtype != torch.float64 or self.device.type != "cpu" or self.drop_na
                or not units or any(u.kind != "parquet" or u.n_rows is None for u in units)):
            return None
        order = torch.randperm(len(units), generator=generator).tolist()
        picked, got = [], 0
        for i in order:
            if got >= rows and len(picked) >= least:
                break
            picked.append(i)
            got += units[i].n_rows
        if got > most * sum(u.n_rows for u in units):
            return None
        self._unchecked = True
        return self._read([units[i] for i in sorted(picked)], self._raw_columns, read_ahead, part=True), got

    def validate(self) -> None:
        """After an unchecked pass: one checked pass, which raises DataError naming the column and row."""
        if self._unchecked:
            for _ in self._blocks(self.units):
                pass
            self._unchecked = False

    def _bar(self):
        if not self.progress:
            return None
        total = sum(u.n_rows or 0 for u in self.units) or estimate_rows(self.units)
        return progress.ProgressBar(total, unit="row")

    def __iter__(self) -> Iterator[Batch]:
        full = self.full_batch()
        if full is None:
            yield from self._blocks(self.units)
        else:
            yield full

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """One pass in random order: units (row groups, files) in random order, rows mixed in a
        buffer of ``SHUFFLE_ROWS`` rows, at most 64 MB (all rows when cached)."""
        if self.full_batch() is not None:
            yield from super().shuffled(batch_size, generator)
            return
        order = torch.randperm(len(self.units), generator=generator).tolist()
        buffer: list[Batch] = []
        held = 0
        for batch in self._blocks([self.units[i] for i in order]):
            buffer.append(batch)
            held += len(batch)
            if held >= max(min(SHUFFLE_ROWS, SHUFFLE_BYTES // (8 * len(self.columns))), batch_size):
                rest = yield from drain(buffer, batch_size, generator, keep_tail=True)
                buffer, held = ([rest], len(rest)) if rest is not None else ([], 0)
        if buffer:
            yield from drain(buffer, batch_size, generator, keep_tail=False)

    def full_batch(self) -> Batch | None:
        if self._full is not None:
            self._warn_notes()
        return self._full

    def add_notes(self, notes: Sequence[str]) -> None:
        """Sentences to warn with (DataWarning) when the rows are first used."""
        self._notes = list(notes) + self._notes

    def _warn_notes(self) -> None:
        if not self._warned:
            self._warned = True
            for note in self._notes:
                warnings.warn(note, DataWarning, stacklevel=4)

    # -- checks --------------------------------------------------------------------------------------
    def _check_rows(self, rows: int) -> None:
        if self.sharded:
            return
        if rows == 0:
            what = "no rows are left after --drop-na" if self.drop_na else "there are no data rows"
            raise DataError(f"{self.source}: {what}; it needs a header line and rows of numbers")
        if rows < self.min_rows:
            raise DataError(f"{self.source} has {rows} rows but fitting {len(self.feature_names)} features and "
                            f"an intercept needs at least {self.min_rows}; add rows or use fewer --features")

    def load(self) -> None:
        """Read every row into memory now (what a small source does at open)."""
        self._loading = True
        try:
            parts = list(self._blocks(self.units))
        finally:
            self._loading = False
        p = len(self.feature_names)
        if parts:
            X = torch.cat([b.X for b in parts]).contiguous()
            y = torch.cat([b.y for b in parts])
            w = torch.cat([b.weight for b in parts]) if self.weight_name else None
        else:
            X = torch.empty(0, p, dtype=self.dtype, device=self.device)
            y = torch.empty(0, dtype=self.dtype, device=self.device)
            w = None
        self._full = Batch(X, y, w)
        self._n_rows = len(y)
        if not self.sharded:
            self._notes += redundant_columns(X, self.feature_names)


def _dtype(dtype) -> torch.dtype:
    return resolve_dtype(dtype)


def _device(device) -> torch.device:  # "auto" picks CUDA when available; "cuda" without it is a one-line error
    return resolve_device(device)


def open_table(source, *, target: str, features: Sequence[str] | None = None, weight: str | None = None,
               drop_na: bool = False, delimiter: str = ",", header: bool = True, dtype="float64",
               device="cpu", batch_rows: int | None = None, shard: tuple[int, int] | None = None,
               progress: bool = False, cache: bool | None = None, cache_bytes: int = CACHE_BYTES,
               min_rows: int | None = None) -> FileBatches:
    """Open CSV/Parquet file(s) as a streamed :class:`~gradfit.data.batches.Batches` source.

    Parameters
    ----------
    source : path, folder, glob, or a list of them
        ``.parquet``/``.pq`` files are Parquet, others CSV (a file starting with ``PAR1`` is Parquet).
    target, features, weight : column names
        ``features`` defaults to every numeric column but the target and the weight (numeric:
        integer or floating in the Parquet schema, or in the first 1 MB of a CSV file). Without a
        header, columns are named ``c0, c1, ...``.
    drop_na : skip rows with a missing, NaN or infinite value instead of raising DataError.
    dtype, device : of the tensors each batch holds.
    batch_rows : rows per Parquet batch (default: about 16 MB of selected columns); CSV batches
        hold 8 MB of text. Parquet row groups of up to 128 MB (selected columns as float64) are
        decoded whole, then cut into batches without copying.
    shard : ``(rank, world_size)``: read only this process's share (see the module docstring).
    progress : show a progress bar with rows/s on stderr (only when it is a terminal).
    cache : True/False forces keeping the rows in memory or streaming; None decides by size.
    min_rows : fewest rows accepted (default: features + 1, the parameters of an unpenalized fit).
    """
    files = resolve(source)
    kinds = [kind_of(f) for f in files]
    each, numeric = file_names(files, kinds, delimiter, header)
    names = each[0]
    for f, others in zip(files[1:], each[1:]):
        if set(others) != set(names):
            raise DataError(f"{f} has columns {show(others)} but {files[0]} has {show(names)}; "
                            "every file must have the same columns (in any order)")
    notes = [] if features is not None else _left_out(files, kinds, names, numeric, target, weight, delimiter, header)
    features = select_features(files[0], names, numeric, target, features, weight, header)
    if notes:
        notes = _left_out_notes(notes, features, target)
    p = len(features)
    batch_rows = int(batch_rows or min(max((16 << 20) // (8 * (p + 2)), 8192), 1 << 20))
    units = units_of(files, kinds, each)
    if shard is not None:
        units = shard_units(units, int(shard[0]), int(shard[1]))
    data = FileBatches(files, units, names=names, features=features, target=target, weight=weight,
                       drop_na=drop_na, delimiter=delimiter, header=header, dtype=_dtype(dtype),
                       device=_device(device), batch_rows=batch_rows, progress=progress,
                       min_rows=p + 1 if min_rows is None else int(min_rows), sharded=shard is not None)
    data.add_notes(notes)
    if cache or (cache is None and _size(units, p) <= cache_bytes):
        data.load()
    return data


def _left_out_notes(found: list[tuple[str, str, str]], features: list[str], target: str) -> list[str]:
    """The warning for each column left out of the default features, saying how to include it."""
    text = [c for c, kind, _ in found if kind == "text"]
    how = f"--formula '{target} ~ {' + '.join(features + [f'C({c})' for c in text])}'"
    notes = []
    for c, kind, v in found:
        if kind == "text":
            notes.append(f"column '{c}' holds text (e.g. {v!r}) and was left out of the features; to use it as "
                         f"categories fit with {how} (Python: gradfit.fit(formula=..., data=...)), or name the "
                         "features with --features")
        elif kind == "numbers as text":
            notes.append(f"column '{c}' holds numbers stored as text (e.g. {v!r}) and was left out of the features; "
                         f"to use it as numbers name it with --features {','.join(features + [c])}")
        else:
            notes.append(f"column '{c}' holds {kind} values (e.g. {v[:40]!r}), not numbers, and was left out of "
                         "the features")
    return notes


def _left_out(files, kinds, names, numeric, target, weight, delimiter, header) -> list[tuple[str, str, str]]:
    """(name, kind, a value) of each non-numeric column the default features leave out (see
    :func:`left_out_column`); DataError for one that is numbers but for a few cells (read from the first
    block of the first file: a column that is numbers there is read as numbers everywhere, so a bad cell
    further on is an error of the reader itself, naming its row)."""
    others = [c for c in names if c not in numeric and c not in (target, weight)]
    if not others or names.count(target) != 1:
        return []
    unit = units_of(files[:1], kinds[:1])[0]
    types = {c: pa.string() for c in others}
    rb, _, row0 = next(read_units([unit], types, names=names, delimiter=delimiter, header=header,
                                  batch_rows=65536), (None, None, 0))
    if rb is None:
        return []
    at = lambda i: f"{where(unit, row0 + i, header)} of {unit.path}"  # noqa: E731
    found = [(c, left_out_column(rb.column(c), c, at)) for c in others]
    return [(c, *kv) for c, kv in found if kv is not None]


def _size(units: Sequence[Unit], p: int) -> float:
    total = 0.0
    for u in units:
        if u.kind == "parquet":
            total += u.n_rows * (p + 2) * 8
        else:
            total += (u.byte_range[1] - u.byte_range[0]) if u.byte_range else storage.size(u.path)
    return total

