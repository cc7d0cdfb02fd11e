"""Formulas (Wilkinson notation, through formulaic): ``price ~ sqft + age + C(hood) + sqft:age``.

:class:`FormulaDesign` is a formula's right-hand side with what it learned from the training rows
(the levels of each categorical factor, the state of ``center()``/``scale()``): it turns new rows into
the same design matrix, and it is plain JSON in the model file (no pickle). Columns are named as
statsmodels names them (``C(hood)[T.North]``, treatment coding, the first level as the base); the
intercept is the model's own ``intercept_``, not a column.

A value of a categorical factor that the training rows did not have is an error naming the column and
the value (formulaic alone would encode it as zeros). Missing values are errors too, never dropped.

:class:`FormulaBatches` streams CSV/Parquet files through a design: one pass collects the levels of the
text columns (or they are declared), then every pass encodes record batch by record batch.
"""
from __future__ import annotations

import re
import warnings
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import torch

from gradfit.data.batches import Batch, Batches, DataError
from gradfit.data.sources import (csv_names, file_names, kind_of, parquet_names, read_units, resolve, shard_units,  # noqa: F401
                                  show, units_of, where)

C_CALL = re.compile(r"^C\(\s*([A-Za-z_][\w.]*)")


def frame_of(data: Any):
    """A pandas DataFrame of ``data`` (DataFrame, dict of columns, polars or pyarrow table)."""
    import pandas as pd
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    if isinstance(data, dict):
        return pd.DataFrame(data)
    raise TypeError(f"a formula needs data with named columns (a DataFrame or a dict), got {type(data).__name__}")


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise DataError(f"the formula's transform state holds a {type(v).__name__}, which a model file cannot keep; "
                    "use plain columns, C(), interactions and center()/scale()")


def _column_of(factor: str, names: Sequence[str]) -> str | None:
    """The data column behind a categorical factor (``hood`` or ``C(hood, ...)``), when it is that simple."""
    if factor in names:
        return factor
    m = C_CALL.match(factor)
    return m.group(1) if m and m.group(1) in names else None


class FormulaDesign:
    """A formula's right-hand side and its learned state; ``matrix(frame)`` gives the design."""

    def __init__(self, formula: str, target: str, rhs: str, encoder: dict, transform_state: dict,
                 columns: list[str], intercept: bool):
        self.formula, self.target, self.rhs = formula, target, rhs
        self.encoder, self.transform_state = encoder, transform_state
        self.columns, self.intercept = list(columns), bool(intercept)
        self._spec = None

    # -- learning ------------------------------------------------------------------------------
    @classmethod
    def learn(cls, formula: str, frame, levels: dict | None = None) -> tuple["FormulaDesign", np.ndarray, np.ndarray]:
        """Encode ``frame`` by ``formula``; returns (design, X (n, p) without the intercept column, y)."""
        import formulaic
        if "~" not in formula:
            raise DataError(f"the formula {formula!r} has no '~': write it as 'target ~ x1 + x2'")
        frame = declare_levels(frame, levels)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                mm = formulaic.model_matrix(formula, frame, na_action="raise")
        except Exception as exc:  # formulaic's errors are many classes; one line for the user
            raise DataError(f"cannot use the formula {formula!r}: {_first_line(exc)}") from None
        lhs, rhs = mm.lhs, mm.rhs
        if lhs.shape[1] != 1:
            raise DataError(f"the formula {formula!r} must have one target column on the left of '~'")
        spec = rhs.model_spec
        encoder = {}
        for factor, (kind, state) in spec.encoder_state.items():
            cats = state.get("categories")
            encoder[str(factor)] = {"kind": kind.value, "categories": _jsonable(list(cats)) if cats is not None else None}
        names = list(rhs.columns)
        intercept = "Intercept" in names
        design = cls(formula, str(lhs.columns[0]), str(spec.formula), encoder, _jsonable(spec.transform_state),
                     [c for c in names if c != "Intercept"], intercept)
        design._spec = spec
        X = rhs.drop(columns=["Intercept"]).to_numpy(dtype=np.float64) if intercept else rhs.to_numpy(np.float64)
        return design, X, lhs.iloc[:, 0].to_numpy(dtype=np.float64)

    # -- applying -------------------------------------------------------------------------------
    @property
    def spec(self):
        if self._spec is None:
            from formulaic import Formula, ModelSpec
            from formulaic.materializers.types import FactorValues  # noqa: F401  (formulaic's registry)
            from formulaic.parser.types import Factor
            enc = {k: (Factor.Kind(v["kind"]), {"categories": v["categories"]} if v["categories"] is not None else {})
                   for k, v in self.encoder.items()}
            self._spec = ModelSpec(formula=Formula(self.rhs), materializer="pandas", ensure_full_rank=True,
                                   transform_state=self.transform_state, encoder_state=enc)
        return self._spec

    @property
    def categorical(self) -> dict[str, list]:
        """Categorical factor -> its levels."""
        return {k: v["categories"] for k, v in self.encoder.items() if v["kind"] == "categorical"}

    def variables(self, names: Sequence[str]) -> list[str]:
        """The data columns the right-hand side reads, among ``names``."""
        from formulaic import Formula
        need = {str(v) for v in Formula(self.rhs).required_variables}
        return [n for n in names if n in need]

    def rhs_variables(self) -> list[str]:
        """The data columns the right-hand side reads (sorted)."""
        from formulaic import Formula
        return sorted(str(v) for v in Formula(self.rhs).required_variables)

    def check_levels(self, frame, at=None) -> None:
        """DataError naming the row, the column and the value a categorical factor did not have when fitted.

        ``at(i)`` says where the frame's 1-based row ``i`` is (default: ``row i``)."""
        at = at or (lambda i: f"row {i}")
        for factor, levels in self.categorical.items():
            col = _column_of(factor, list(frame.columns))
            if col is None:
                continue
            values = frame[col]
            if values.isna().any():
                raise DataError(f"{at(int(np.argmax(values.isna().to_numpy())) + 1)}: column {col} has no value; "
                                "fill it or drop the row")
            known = set(levels)
            bad = ~values.map(lambda v: _level(v) in known).to_numpy(dtype=bool)
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(f"{at(i + 1)}: column {col} has the value {_level(values.iloc[i])!r}, which the model "
                                f"did not see when fitted (levels {', '.join(map(str, levels))}); map it to a known "
                                "level or refit")

    def matrix(self, frame, at=None) -> np.ndarray:
        """The (n, p) design of ``frame`` (columns in ``self.columns`` order, no intercept column)."""
        frame = frame_of(frame)
        self.check_levels(frame, at)
        where = at(1) + " and on" if at else "the data"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # formulaic's DataMismatchWarning: an unseen level
                mm = self.spec.get_model_matrix(frame, na_action="raise")
        except Exception as exc:
            raise DataError(f"{where}: cannot encode by the formula {self.formula!r}: {_first_line(exc)}") from None
        missing = [c for c in self.columns if c not in mm.columns]
        if missing:
            raise DataError(f"{where}: the formula gives no column {', '.join(missing)}")
        return mm[self.columns].to_numpy(dtype=np.float64)

    # -- file format ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"formula": self.formula, "target": self.target, "rhs": self.rhs, "encoder": self.encoder,
                "transform_state": self.transform_state, "columns": self.columns, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: Any, source: str = "model") -> "FormulaDesign":
        try:
            enc = {str(k): {"kind": str(v["kind"]), "categories": None if v.get("categories") is None
                            else list(v["categories"])} for k, v in dict(d["encoder"]).items()}
            return cls(str(d["formula"]), str(d["target"]), str(d["rhs"]), enc, dict(d.get("transform_state") or {}),
                       [str(c) for c in d["columns"]], bool(d["intercept"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{source} has a damaged formula block ({exc})") from None


def _level(v):
    return v.item() if isinstance(v, np.generic) else v


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(exc).__name__)


def declare_levels(frame, levels: dict | None):
    """Columns named in ``levels`` become categoricals with exactly those levels (in that order)."""
    if not levels:
        return frame
    import pandas as pd
    frame = frame.copy()
    for col, cats in levels.items():
        if col not in frame.columns:
            raise DataError(f"levels are declared for {col}, which the data does not have")
        unknown = set(frame[col].dropna().unique()) - set(cats)
        if unknown:
            raise DataError(f"column {col} has the value {sorted(map(str, unknown))[0]!r}, not among its declared "
                            f"levels {', '.join(map(str, cats))}")
        frame[col] = pd.Categorical(frame[col], categories=list(cats))
    return frame


# -- files -----------------------------------------------------------------------------------------
class FormulaBatches(Batches):
    """CSV/Parquet rows encoded by a formula, batch by batch (the file is never held whole)."""

    def __init__(self, files: list[str], units, names: list[str], numeric: list[str], formula: str, *,
                 weight: str | None = None, levels: dict | None = None, design: FormulaDesign | None = None,
                 delimiter: str = ",", header: bool = True, batch_rows: int = 1 << 16, dtype=torch.float64,
                 all_units=None):
        from formulaic import Formula
        self.files, self.units, self.names = files, units, names
        self.all_units = units if all_units is None else all_units  # levels come from every row, not a shard
        self.delimiter, self.header, self.batch_rows, self.dtype = delimiter, header, batch_rows, dtype
        self.weight_name = weight
        parsed = Formula(formula)
        need = {str(v) for v in parsed.required_variables}
        self.variables = [n for n in names if n in need]
        absent = sorted(need - set(names) - {"C", "center", "scale", "np", "log", "exp", "sqrt"})
        if absent and design is None:
            raise DataError(f"{files[0]} has no column {', '.join(absent)} that the formula {formula!r} uses; "
                            f"it has {', '.join(names)}")
        text = [v for v in self.variables if v not in numeric]
        self.types = {v: (pa.float64() if v in numeric else pa.string()) for v in self.variables}
        if weight:
            self.types[weight] = pa.float64()
        if design is None:
            declared = {k: list(v) for k, v in (levels or {}).items()}
            for col in text:
                declared.setdefault(col, self._levels_of(col))
            head = self._frames()
            first = next(head)[0]
            head.close()
            design, _, _ = FormulaDesign.learn(formula, first, declared)
            if design.transform_state:
                raise DataError(f"the formula {formula!r} centers or scales a column, which needs all rows at once; "
                                "on a streamed file use plain columns (or fit in memory: gradfit.fit(formula=..., "
                                "data=DataFrame))")
        self.design = design
        self.feature_names, self.target_name = list(design.columns), design.target

    def _levels_of(self, col: str) -> list[str]:
        seen: set = set()
        for rb, _, _ in read_units(self.all_units, {col: pa.string()}, names=self.names, delimiter=self.delimiter,
                                   header=self.header, batch_rows=self.batch_rows):
            seen.update(v for v in rb.column(0).unique().to_pylist() if v is not None)
        if "" in seen:
            raise DataError(f"{self.files[0]}: column {col} has an empty value; give every row a level (or drop "
                            "those rows) before fitting a formula")
        return sorted(seen)

    def _frames(self) -> Iterator:
        for rb, unit, row0 in read_units(self.units, self.types, names=self.names, delimiter=self.delimiter,
                                         header=self.header, batch_rows=self.batch_rows):
            frame = rb.to_pandas()
            yield frame, (lambda i, unit=unit, row0=row0: f"{where(unit, row0 + i, self.header)} of {unit.path}")

    def __iter__(self) -> Iterator[Batch]:
        for frame, at in self._frames():
            if not len(frame):
                continue
            X = self.design.matrix(frame, at)
            y = np.array(frame[self.target_name], dtype=np.float64)
            if not np.all(np.isfinite(y)):
                raise DataError(f"{at(int(np.argmin(np.isfinite(y))) + 1)}: the target {self.target_name} has a "
                                "missing or infinite value")
            w = np.array(frame[self.weight_name], dtype=np.float64) if self.weight_name else None
            yield Batch(torch.as_tensor(X, dtype=self.dtype), torch.as_tensor(y, dtype=self.dtype),
                        None if w is None else torch.as_tensor(w, dtype=self.dtype))

    @property
    def has_weight(self) -> bool:
        return self.weight_name is not None


def open_formula(source, formula: str, *, weight: str | None = None, levels: dict | None = None,
                 design: FormulaDesign | None = None, delimiter: str = ",", header: bool = True,
                 batch_rows: int = 1 << 16, shard: tuple[int, int] | None = None) -> FormulaBatches:
    """CSV/Parquet file(s) encoded by ``formula`` (or by a fitted model's ``design``), streamed.

    ``shard=(rank, world_size)``: iterate this process's share (as :func:`gradfit.data.files.open_table`);
    the levels of text columns are still read from every row, so every process encodes alike."""
    files = resolve(source)
    kinds = [kind_of(f) for f in files]
    each, numeric = file_names(files, kinds, delimiter, header)  # each file read by its own header
    names = each[0]
    for f, others in zip(files[1:], each[1:]):
        if set(others) != set(names):
            raise DataError(f"{f} has columns {show(others)} but {files[0]} has {show(names)}; "
                            "every file must have the same columns (in any order)")
    every = units_of(files, kinds, each)
    mine = shard_units(every, *shard) if shard is not None else every
    return FormulaBatches(files, mine, names, numeric, formula, weight=weight, levels=levels, design=design,
                          delimiter=delimiter, header=header, batch_rows=batch_rows, all_units=every)
