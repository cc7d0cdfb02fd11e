"""``predict_file``: stream a CSV/Parquet source through a model into a CSV or Parquet file.

The output holds every input column (CSV input: the columns numeric in the first 1 MB as float64,
the others as text) followed by the prediction, named ``<target>_pred`` (``prediction`` when the model has no
target name); an input column of that name is replaced. It is written atomically: on any error
the output path is left as it was.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from gradfit.data.atomic import atomic_path
from gradfit.data.batches import DataError
from gradfit.data.columns import to_matrix
from gradfit.data.sources import (PARQUET_EXT, csv_names, kind_of, parquet_names, read_units, resolve, show, units_of,
                      where)


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

    Features are matched by name, in any order. Rows with a missing or infinite feature raise
    DataError, or are left out of the output with ``drop_na``. ``output`` ``-`` writes CSV to stdout.
    ``extra_columns(D, pred)``, given the (n, p) features and the predictions, returns more output
    columns (name -> array), written after the prediction (the CLI's intervals).
    """
    output = os.fspath(output)
    to_stdout = output == "-"
    kind_out = "csv" if to_stdout else output_kind(output)
    files = resolve(source)
    kinds = [kind_of(f) for f in files]
    names, numeric = csv_names(files[0], delimiter, header) if kinds[0] == "csv" else parquet_names(files[0])
    design = getattr(model, "formula_", None)
    if design is not None and drop_na:
        raise DataError("--drop-na does not apply to a formula model: a missing value is an error naming its row; "
                        "drop those rows from the file first")
    features = list(model.feature_names_in_) if design is None else design.rhs_variables()
    missing = [f for f in features if f not in names]
    if missing:
        hint = "" if header else " (read without a header, columns are named c0, c1, ...)"
        raise DataError(f"{files[0]} is missing feature column(s) {', '.join(missing)} that the model was fitted "
                        f"on; it has {show(names)}{hint}")
    pred_name = prediction_name(model)
    keep_cols = [c for c in names if c != pred_name]
    forced = features if design is None else []  # a formula's text columns stay text
    types = {c: pa.float64() if c in forced or c in numeric else pa.string() for c in keep_cols}
    coef = np.asarray(model.coef_, dtype=np.float64)
    rows = 0
    with (_stdout_path() if to_stdout else atomic_path(output)) as tmp:
        writer = None
        try:
            for rb, unit, row0 in read_units(units_of(files, kinds), types, names=names, delimiter=delimiter,
                                             header=header, batch_rows=batch_rows):
                def at(i, unit=unit, row0=row0):
                    return f"{where(unit, row0 + i, header)} of {unit.path}"
                if design is not None:  # the formula's encoding of this block (gradfit.data.formula)
                    M, keep = design.matrix(rb.select(features).to_pandas(), at).T, None
                else:
                    M, keep = to_matrix(rb, features, at, drop_na)
                out = rb.select(keep_cols)
                if keep is not None:
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
