"""Finding and reading table files with pyarrow: CSV or Parquet, one file, a folder or a glob.

A source is cut into *units* (a Parquet row group, a CSV file, or a byte range of one CSV file),
the grain at which it is sharded and shuffled. Readers yield pyarrow record batches of the
requested columns and turn pyarrow's errors into one-line :class:`DataError` messages naming the
file, the row or the column. Rows are data rows counted from 1 (a CSV header is not counted);
for CSV the file line is given too, found by re-reading the file on the error path only.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from gradfit.data import storage
from gradfit.data.batches import DataError
from gradfit.data.csv_errors import csv_error, where  # noqa: F401  (where: re-exported for files/predict)

PARQUET_EXT = (".parquet", ".pq", ".parq")
CSV_EXT = (".csv", ".tsv", ".txt", ".dat", ".csv.gz", ".csv.bz2", ".tsv.gz")
CSV_BLOCK = 8 << 20  # bytes of CSV text parsed per batch


@dataclass
class Unit:
    """A piece of a source read as a whole: a row group, a CSV file or a byte range of one."""

    path: str
    kind: str  # "csv" or "parquet"
    row_group: int | None = None
    byte_range: tuple[int, int] | None = None
    row0: int | None = 0  # data rows of the file before this unit (None: unknown)
    n_rows: int | None = None  # None until read (CSV)
    names: tuple[str, ...] | None = None  # a CSV file's own header (files may order their columns differently)


def resolve(source) -> list[str]:
    """The files a path, folder or glob names, sorted; DataError when there are none."""
    if isinstance(source, (list, tuple)):
        return [f for s in source for f in resolve(s)]
    path = os.fspath(source)
    if storage.is_uri(path):
        return storage.resolve_uri(path, PARQUET_EXT + CSV_EXT)
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(PARQUET_EXT + CSV_EXT) and not f.startswith("."))
        if not files:
            raise DataError(f"folder {path} has no CSV or Parquet files (.csv, .parquet); check the path")
        return files
    if not os.path.exists(path) and any(ch in path for ch in "*?["):
        files = sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
        if not files:
            raise DataError(f"no files match {path}; check the pattern")
        return files
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file; check the path")
    return [path]


def show(names: Sequence[str]) -> str:
    """Column names for a one-line message: comma-separated, newlines escaped, long lists cut."""
    text = ", ".join(n.replace("\n", "\\n").replace("\r", "\\r") for n in names[:50])
    return text + (f", ... ({len(names)} in all)" if len(names) > 50 else "")


def kind_of(path: str) -> str:
    low = path.lower()
    if low.endswith(PARQUET_EXT):
        return "parquet"
    if low.endswith(CSV_EXT):
        return "csv"
    with storage.open_binary(path) as fh:
        return "parquet" if fh.read(4) == b"PAR1" else "csv"


READ_BUFFER = 1 << 16


def _parquet_file(path: str) -> pq.ParquetFile:
    try:
        # pre_buffer=False: the default pre-buffers every row group asked for, i.e. the whole file.
        # buffer_size: column chunks are read through a 64 KB buffer instead of whole, so the memory
        # is reused; whole-chunk buffers were fresh pages every time (measured 30% faster reads)
        return pq.ParquetFile(storage.open_file(path), pre_buffer=False, buffer_size=READ_BUFFER, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as exc:
        raise corrupt_parquet(path, exc) from None


def corrupt_parquet(path: str, exc: Exception) -> DataError:
    reason = " ".join(str(exc).split())[:160]
    return DataError(f"{path} is not a readable Parquet file ({reason}); it is truncated or corrupt: "
                     "write it again")


# -- schemas ---------------------------------------------------------------------------------------
def csv_names(path: str, delimiter: str, header: bool) -> tuple[list[str], list[str]]:
    """(column names, numeric column names) from the first block of a CSV file."""
    check_csv_bytes(path)
    opts = pacsv.ReadOptions(block_size=1 << 20, autogenerate_column_names=not header)
    try:
        reader = pacsv.open_csv(storage.open_stream(path), read_options=opts, parse_options=_parse(delimiter))
    except (pa.ArrowException, OSError) as exc:
        raise csv_error(path, exc, delimiter, header) from None
    schema = reader.schema
    try:
        first = reader.read_next_batch()
    except StopIteration:
        first = None
    except (pa.ArrowException, OSError) as exc:
        raise csv_error(path, exc, delimiter, header) from None
    if first is None or first.num_rows == 0:
        raise DataError(f"{path} has a header line but no data rows; it needs rows of numbers")
    try:
        names = list(schema.names) if header else [f"c{i}" for i in range(len(schema.names))]
    except UnicodeDecodeError:
        raise DataError(f"{path}: the header line is not UTF-8 text; save the file as UTF-8, "
                        "or read it without a header") from None
    check_unique(path, names)
    numeric = [n for n, f in zip(names, schema) if is_numeric(f.type)]
    return names, numeric


def file_names(files: Sequence[str], kinds: Sequence[str], delimiter: str,
               header: bool) -> tuple[list[list[str]], list[str]]:
    """(each file's column names in its own order, the first file's numeric columns)."""
    each, numeric = [], []
    for i, (f, k) in enumerate(zip(files, kinds)):
        names, num = csv_names(f, delimiter, header) if k == "csv" else parquet_names(f)
        each.append(names)
        if i == 0:
            numeric = num
    return each, numeric


def check_unique(path: str, names: Sequence[str]) -> None:
    """DataError naming the first column name that appears twice (its data could not be told apart)."""
    seen: dict[str, int] = {}
    for i, n in enumerate(names, 1):
        if n in seen:
            raise DataError(f"{path} has {list(names).count(n)} columns named {n!r} (columns {seen[n]} and {i}); "
                            "rename them so each name is unique")
        seen[n] = i


_BOMS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def check_csv_bytes(path: str) -> None:
    """One line for what is not CSV text at all: not a regular file, empty, compressed, UTF-16, binary."""
    if not storage.is_uri(path) and not os.path.isfile(path):
        what = "a folder" if os.path.isdir(path) else "a pipe or device, not a regular file"
        raise DataError(f"{path} is {what}; gradfit reads its data more than once: save it to a file first")
    with storage.open_binary(path) as fh:
        head = fh.read(1 << 16)
    if not head.strip():
        raise DataError(f"{path} is empty; it needs a header line and rows of numbers")
    name_part = path.split("?", 1)[0] if storage.is_uri(path) else path  # a URI's query is no extension
    low = name_part.lower()
    if head.startswith(b"PAR1"):
        raise DataError(f"{path} is a Parquet file, not CSV text; name it .parquet")
    for magic, name, ext in ((b"\x1f\x8b", "gzip", ".gz"), (b"BZh", "bzip2", ".bz2"), (b"PK\x03\x04", "zip", None),
                             (b"\x28\xb5\x2f\xfd", "zstd", None)):
        if head.startswith(magic) and not (ext and low.endswith(ext)):
            fix = f"name it {os.path.basename(name_part)}{ext} or decompress it" if ext else "decompress it"
            raise DataError(f"{path} is {name}-compressed, not CSV text; {fix}")
    if head[:2] in _BOMS or (b"\x00" in head[:4] and not low.endswith((".gz", ".bz2"))):
        raise DataError(f"{path} is UTF-16 (or UTF-32) text; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")
    if b"\x00" in head and not low.endswith((".gz", ".bz2")):
        at = head.index(b"\x00")
        raise DataError(f"{path} has a NUL byte at byte {at}: it is binary, not CSV text; "
                        "check that it is the right file")


def parquet_names(path: str) -> tuple[list[str], list[str]]:
    schema = _parquet_file(path).schema_arrow
    check_unique(path, schema.names)
    return list(schema.names), [f.name for f in schema if is_numeric(f.type)]


def is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _parse(delimiter: str) -> pacsv.ParseOptions:
    if len(delimiter) != 1:
        raise DataError(f"--delimiter must be one character, got {delimiter!r}; use '\\t' for tabs")
    # one set of rules for every path and process count: RFC 4180, a quoted value may hold newlines
    return pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)


# -- units -----------------------------------------------------------------------------------------
def units_of(files: Sequence[str], kinds: Sequence[str], names: Sequence[Sequence[str]] | None = None) -> list[Unit]:
    """The units of ``files``; ``names``: each CSV file's own column names (its header), when known."""
    units: list[Unit] = []
    for i, (path, kind) in enumerate(zip(files, kinds)):
        if kind == "csv":
            units.append(Unit(path, "csv", row0=0, names=tuple(names[i]) if names is not None else None))
            continue
        meta = _parquet_file(path).metadata
        row0 = 0
        for rg in range(meta.num_row_groups):
            n = meta.row_group(rg).num_rows
            units.append(Unit(path, "parquet", row_group=rg, row0=row0, n_rows=n))
            row0 += n
    return units


def shard_units(units: list[Unit], rank: int, world: int) -> list[Unit]:
    """This rank's share: units round-robin; a single CSV file is cut into byte ranges of whole lines."""
    if not (0 <= rank < world):
        raise ValueError(f"shard=(rank, world_size) needs 0 <= rank < world_size, got {(rank, world)}")
    if len(units) == 1 and units[0].kind == "csv" and world > 1:
        path = units[0].path
        if path.lower().endswith((".gz", ".bz2")):
            raise DataError(f"{path}: a compressed CSV cannot be split between processes; "
                            "decompress it, split it into several files, or convert it to Parquet")
        size = storage.size(path)
        start, stop = line_start(path, size * rank // world), line_start(path, size * (rank + 1) // world)
        return [Unit(path, "csv", byte_range=(start, stop), row0=0 if rank == 0 else None, names=units[0].names)]
    return units[rank::world]


def line_start(path: str, offset: int, quote: bytes = b'"') -> int:
    """The offset of the first record that starts at or after ``offset``: the byte after a newline
    that is not inside a quoted value (RFC 4180: inside quotes iff an odd number of quotes precede)."""
    if offset <= 0:
        return 0
    chunk = 1 << 20
    with storage.open_binary(path) as fh:
        quotes, left = 0, offset - 1
        while left > 0:  # the quotes before the scan (bytes.count runs at memory speed)
            block = fh.read(min(chunk, left))
            if not block:
                break
            quotes += block.count(quote)
            left -= len(block)
        pos = offset - 1
        fh.seek(pos)
        while True:
            block = fh.read(chunk)
            if not block:
                return pos
            i = 0
            while (n := block.find(b"\n", i)) >= 0:
                quotes += block.count(quote, i, n)
                if quotes % 2 == 0:
                    return pos + n + 1
                i = n + 1
            quotes += block.count(quote, i)
            pos += len(block)


# -- reading ---------------------------------------------------------------------------------------
def read_units(units: Sequence[Unit], types: dict[str, pa.DataType], *, names: Sequence[str],
               delimiter: str, header: bool, batch_rows: int) -> Iterator[tuple[pa.RecordBatch, Unit, int]]:
    """Yield (record batch, its unit, data row of its first row in the file - 1) for each unit in order.

    ``types`` maps each column to read to its type (CSV: parsed as that type; Parquet: as stored).
    Consecutive row groups of one Parquet file are read in one call.
    """
    i = 0
    while i < len(units):
        u = units[i]
        if u.kind == "csv":
            yield from _read_csv(u, types, u.names or names, delimiter, header)
            i += 1
            continue
        j = i
        while j + 1 < len(units) and units[j + 1].path == u.path and units[j + 1].row_group == units[j].row_group + 1:
            j += 1
        yield from _read_parquet(units[i:j + 1], list(types), batch_rows)
        i = j + 1


WHOLE_GROUP_BYTES = 128 << 20  # row groups up to this size (selected columns, float64) are decoded whole


def _read_parquet(units: Sequence[Unit], columns: list[str], batch_rows: int):
    path = units[0].path
    pf = _parquet_file(path)
    missing = [c for c in columns if c not in pf.schema_arrow.names]
    if missing:
        raise DataError(f"{path} has no column {', '.join(map(repr, missing))}; every file must have the same "
                        f"columns (it has {', '.join(pf.schema_arrow.names)})")
    row = units[0].row0
    try:
        if all(u.n_rows * len(columns) * 8 <= WHOLE_GROUP_BYTES for u in units):
            # decoding a whole row group in one call costs less CPU than pyarrow's batch reader
            # (about 0.2 s less per 20M rows x 11 columns), then it is sliced without copying
            for u in units:
                for rb in pf.read_row_group(u.row_group, columns=columns).to_batches(max_chunksize=batch_rows):
                    yield rb, units[0], row
                    row += rb.num_rows
            return
        for rb in pf.iter_batches(batch_size=batch_rows, row_groups=[u.row_group for u in units], columns=columns):
            yield rb, units[0], row
            row += rb.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise corrupt_parquet(path, exc) from None


def csv_reader(unit: Unit, types: dict[str, pa.DataType], names: Sequence[str], delimiter: str, header: bool,
               block_size: int | None = None, strings_null: bool = False):
    block_size = block_size or CSV_BLOCK
    skip = 1 if header and (unit.byte_range is None or unit.byte_range[0] == 0) else 0
    opts = pacsv.ReadOptions(block_size=block_size, column_names=list(names), skip_rows=skip)
    conv = pacsv.ConvertOptions(include_columns=list(types), column_types=types, strings_can_be_null=strings_null)
    if unit.byte_range is not None:
        start, stop = unit.byte_range
        source = storage.byte_range(unit.path, start, stop - start)
    else:
        source = storage.open_stream(unit.path)
    return pacsv.open_csv(source, read_options=opts, parse_options=_parse(delimiter), convert_options=conv)


def _read_csv(unit: Unit, types, names, delimiter, header):
    row = 0
    try:
        reader = csv_reader(unit, types, names, delimiter, header)
        for rb in reader:
            yield rb, unit, row
            row += rb.num_rows
    except (pa.ArrowException, OSError) as exc:
        def reread(col: str):
            return csv_reader(unit, {col: pa.string()}, names, delimiter, header, strings_null=True)
        raise csv_error(unit.path, exc, delimiter, header, unit, names, reread) from None
