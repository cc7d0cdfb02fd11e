"""``predict_file``: stream a CSV/Parquet source through a model into a CSV or Parquet file.

The output holds every input column (CSV input: the features as float64, every other column as
its text, unchanged) followed by the prediction, named ``<target>_pred`` (``prediction`` when the model has no
target name); an input column of that name is replaced. It is written atomically: on any error
the output path is left as it was.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from gradfit.data.atomic import atomic_path, check_output
from gradfit.data.batches import DataError
from gradfit.exceptions import DataWarning
from gradfit.data.columns import to_matrix
from gradfit.data.sources import PARQUET_EXT, file_names, kind_of, read_units, resolve, show, units_of, where


def output_kind(output: str) -> str:
    low = output.lower()
    if low.endswith(PARQUET_EXT):
        return "parquet"
    if low.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    raise DataError(f"cannot tell the output format of {output}; name it .csv or .parquet")


def prediction_name(model) -> str:
    return f"{model.target_name}_pred" if model.target_name else "prediction"


def predict_file(model, source, output, *, delimiter: str = ",", header: bool = True, drop_na: bool = False,
                 batch_rows: int = 1 << 16, extra_columns=None) -> int:
    """Write ``model.predict`` of every row of ``source`` to ``output`` (.csv or .parquet); return the rows.

    Features are matched by name in each file, in any order; every file must have the same columns.
    The other columns are copied as they are: CSV values as their text (an id ``0123`` stays ``0123``),
    Parquet columns in their own type. Rows with a missing or infinite feature raise DataError, or are
    left out of the output with ``drop_na`` (a warning says how many, since the output rows then no
    longer line up with the input's). ``output`` ``-`` writes CSV to stdout.
    ``extra_columns(D, pred)``, given the (n, p) features and the predictions, returns more output
    columns (name -> array), written after the prediction (the CLI's intervals).
    """
    output = os.fspath(output)
    to_stdout = output == "-"
    kind_out = "csv" if to_stdout else output_kind(output)
    files = resolve(source)
    if not to_stdout:
        check_output(output, files)
    kinds = [kind_of(f) for f in files]
    each, numeric = file_names(files, kinds, delimiter, header)
    design = getattr(model, "formula_", None)
    if design is not None and drop_na:
        raise DataError("--drop-na does not apply to a formula model: a missing value is an error naming its row; "
                        "drop those rows from the file first")
    features = list(model.feature_names_in_) if design is None else design.rhs_variables()
    for f, names in zip(files, each):
        missing = [c for c in features if c not in names]
        if missing:
            hint = "" if header else " (read without a header, columns are named c0, c1, ...)"
            raise DataError(f"{f} is missing feature column(s) {', '.join(missing)} that the model was fitted "
                            f"on; it has {show(names)}{hint}")
    names = each[0]
    for f, others in zip(files[1:], each[1:]):
        if set(others) != set(names):
            raise DataError(f"{f} has columns {show(others)} but {files[0]} has {show(names)}; every file must "
                            "have the same columns (in any order): predict the files one by one")
    pred_name = prediction_name(model)
    keep_cols = [c for c in names if c != pred_name]
    # CSV: the features parsed as numbers (a formula's text variables stay text), every other column kept
    # as its text, never re-parsed
    numbers = set(features) if design is None else set(features) & set(numeric)
    types = {c: pa.float64() if c in numbers else pa.string() for c in keep_cols}
    for c in numbers:
        types.setdefault(c, pa.float64())
    coef = np.asarray(model.coef_, dtype=np.float64)
    rows = dropped = 0
    first_dropped = None
    with (_stdout_path() if to_stdout else atomic_path(output, inputs=files)) as tmp:
        writer = None
        try:
            for rb, unit, row0 in read_units(units_of(files, kinds, each), types, names=names, delimiter=delimiter,
                                             header=header, batch_rows=batch_rows):
                def at(i, unit=unit, row0=row0):
                    return f"{where(unit, row0 + i, header)} of {unit.path}"
                if design is not None:  # the formula's encoding of this block (gradfit.data.formula)
                    M, keep = design.matrix(rb.select(features).to_pandas(), at).T, None
                else:
                    M, keep = to_matrix(rb, features, at, drop_na)
                out = rb.select(keep_cols)
                if keep is not None:
                    if first_dropped is None:
                        first_dropped = at(int(np.flatnonzero(~keep)[0]) + 1)
                    dropped += int((~keep).sum())
                    out = out.filter(pa.array(keep))
                pred = coef @ M + float(model.intercept_)
                out = out.append_column(pred_name, pa.array(pred, type=pa.float64()))
                for name, col in (extra_columns(M.T, pred) if extra_columns else {}).items():
                    out = out.append_column(name, pa.array(col, type=pa.float64()))
                if writer is None:
                    writer = _writer(kind_out, tmp, out.schema, output)
                writer.write_batch(out)
                rows += out.num_rows
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"cannot write {output} from {files[0]}: {' '.join(str(exc).split())[:160]}; "
                            "do all input files have the same column types?") from None
        finally:
            if writer is not None:
                writer.close()
        if rows == 0:
            what = "no rows are left after --drop-na" if drop_na else "there are no data rows"
            raise DataError(f"{files[0]}: {what}; nothing to predict, {output} not written")
    if dropped:
        warnings.warn(f"{dropped} row(s) with a missing or infinite feature were left out of {output} (--drop-na; "
                      f"the first: {first_dropped}), so its rows no longer line up with the input's", DataWarning,
                      stacklevel=2)
    return rows


@contextlib.contextmanager
def _stdout_path():
    """``-o -``: CSV straight to stdout (a stream: rows already written stay written on an error)."""
    sys.stdout.flush()
    binary = getattr(sys.stdout, "buffer", None)
    if binary is not None:
        yield binary
        binary.flush()
        return
    text = io.BytesIO()  # a text-only stdout (a notebook, a captured stream): written when complete
    yield text
    sys.stdout.write(text.getvalue().decode("utf-8"))


def _writer(kind: str, tmp, schema: pa.Schema, output: str):
    if kind == "parquet":
        return pq.ParquetWriter(str(tmp), schema)
    if not isinstance(tmp, (str, os.PathLike)):  # stdout
        return pacsv.CSVWriter(tmp, schema)
    delim = "\t" if output.lower().endswith(".tsv") else ","
    return pacsv.CSVWriter(str(tmp), schema, write_options=pacsv.WriteOptions(delimiter=delim))
