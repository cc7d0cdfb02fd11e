"""pyarrow's CSV errors turned into one line that names the file, the column and the row.

Found on the error path only: the file is read again to find the first bad value's row (bisecting a
batch with casts) or the first line whose field count differs, so the fast path pays nothing.
"""
from __future__ import annotations

import csv
import io
import re

import pyarrow as pa
import pyarrow.compute as pc

from gradfit.data import storage
from gradfit.data.batches import DataError


_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to \w+: invalid value '(.*)'", re.S)


def csv_error(path: str, exc: Exception, delimiter: str, header: bool, unit=None, names=None,
              reread=None) -> DataError:
    """The one-line DataError for pyarrow's CSV error ``exc`` reading ``path`` (or ``unit`` of it).

    ``reread(column)`` gives the unit's record batches of that column read as strings again, to find
    the row of a value that is not a number.
    """
    msg = " ".join(str(exc).split())
    m = _CONVERSION.search(str(exc))
    if m and names is not None and unit is not None and reread is not None:
        col = names[int(m.group(1))] if int(m.group(1)) < len(names) else None
        if col is not None:
            found = first_unparsable(reread(col))
            if found is not None:
                row, value = found
                return DataError(f"{path}: column '{col}' has a non-numeric value {value!r} at "
                                 f"{where(unit, row, header)}; fix it, or leave the column out with --features")
            return DataError(f"{path}: column '{col}' has a non-numeric value {m.group(2)!r}; fix it, or leave "
                             "the column out with --features")
    if "Expected" in msg and "columns, got" in msg:
        found = first_ragged_line(path, delimiter)
        if found is not None:
            line, got, want = found
            return DataError(f"{path}: line {line} has {got} fields but line 1 has {want}; fix that row, "
                             "or check --delimiter")
        return DataError(f"{path}: rows have different numbers of fields ({msg[:120]}); fix the file, or check "
                         "--delimiter")
    if "invalid UTF8" in msg or "UTF-8" in msg:
        return DataError(f"{path} has text that is not UTF-8 (e.g. Latin-1 accents); save the file as UTF-8 "
                         "(e.g. iconv -f latin1 -t utf-8)")
    if "Empty CSV file" in msg:
        return DataError(f"{path} is empty; it needs a header line and rows of numbers")
    return DataError(f"{path}: cannot read as CSV ({msg[:160]}); check the file, --delimiter and --no-header")


def where(unit, row_in_unit: int, header: bool) -> str:
    """'data row R (line L)' for a 1-based row within a unit; the line assumes no blank lines."""
    row0 = unit.row0
    if row0 is None:  # a process's byte range of the file (--nproc): count the records before it
        row0 = records_before(unit.path, unit.byte_range[0], header)
        if row0 is None:
            return f"row {row_in_unit} of the part of the file from byte {unit.byte_range[0]}"
    row = row0 + row_in_unit
    if unit.kind == "csv":
        return f"data row {row} (line {csv_line(unit.path, row, header)})"
    return f"row {row}"


def records_before(path: str, offset: int, header: bool) -> int | None:
    """Data rows (non-blank records, RFC 4180) that start before byte ``offset``, a record boundary."""
    seen = 0
    try:
        with storage.open_binary(path) as fh:
            text = fh.read(offset).decode("utf-8", errors="replace")
        for record in csv.reader(io.StringIO(text, newline="")):
            seen += bool(record)
    except (csv.Error, OSError):
        return None
    return seen - (1 if header and seen else 0)


def csv_line(path: str, row: int, header: bool) -> int:
    """File line where 1-based data row ``row`` starts (pyarrow skips blank lines; a quoted value may
    span lines, so records are counted by the csv module)."""
    want = row + (1 if header else 0)
    seen = 0
    try:
        with storage.open_text(path) as fh:
            reader = csv.reader(fh)
            start = 1
            for record in reader:
                if record:
                    seen += 1
                    if seen == want:
                        return start
                start = reader.line_num + 1
    except (csv.Error, OSError):
        pass
    return want


def first_unparsable(reader):
    """(1-based row, text) of the first value that is not a number in a pass of one-column string batches."""
    row = 0
    for rb in reader:
        arr = rb.column(0)
        try:
            pc.cast(arr, pa.float64())
        except pa.ArrowInvalid:
            i = first_bad_index(arr)
            return row + i + 1, arr[i].as_py()
        row += rb.num_rows
    return None


def first_bad_index(arr: pa.Array) -> int:
    """Index of the first value of a string array that does not cast to float64 (bisection)."""
    def ok(a):
        try:
            pc.cast(a, pa.float64())
            return True
        except pa.ArrowInvalid:
            return False
    lo, hi = 0, len(arr)  # invariant: arr[lo:hi] holds the first bad value
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(arr.slice(lo, mid - lo)):
            lo = mid
        else:
            hi = mid
    return lo


def first_ragged_line(path: str, delimiter: str):
    """(line, fields, expected) of the first non-blank record whose field count differs from the first."""
    want = None
    try:
        with storage.open_text(path) as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            start = 1
            for fields in reader:
                if fields:
                    if want is None:
                        want = len(fields)
                    elif len(fields) != want:
                        return start, len(fields), want
                start = reader.line_num + 1
    except (csv.Error, OSError, ValueError, TypeError):
        return None
    return None
