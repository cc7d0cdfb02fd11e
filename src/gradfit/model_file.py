"""Reading a model file safely: the JSON, then every field checked for its type and value before
a :class:`gradfit.model.LinearModel` is built from it (a file from a stranger must never reach the
code as something else). Old files (format version 1, without newer fields) still load.
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from gradfit.data.formula import FormulaDesign
from gradfit.exceptions import ModelFileError
from gradfit.inference.intervals import check_stored
from gradfit.problem.losses import loss_from_spec
from gradfit.problem.penalties import penalty_from_spec
from gradfit.solvers.history import History

FORMAT = "gradfit-model"
FORMAT_VERSION = 1


def json_number(v):
    """JSON has no NaN/inf: store them as None."""
    if isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _shown(v) -> str:
    text = repr(v) if not isinstance(v, (dict, list)) else type(v).__name__
    return text if len(text) <= 40 else text[:37] + "..."


class FieldReader:
    """Reads a model file's fields, each checked for its type: a wrong one is a ModelFileError naming the
    file and the field (a file from a stranger must never reach the code as something else)."""

    def __init__(self, d: dict, source: str):
        self.d, self.source = d, source

    def bad(self, field_name: str, want: str, got) -> ModelFileError:
        return ModelFileError(f"{self.source} is damaged: field '{field_name}' must be {want}, got {_shown(got)}; "
                              "save the model again with gradfit fit --save")

    def number(self, field_name: str, v, *, finite: bool = True, none_ok: bool = False) -> float:
        if v is None and none_ok:
            return float("nan")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.bad(field_name, "a number", v)
        try:
            x = float(v)
        except OverflowError:
            x = math.inf
        if finite and not math.isfinite(x):
            if field_name.startswith(("coef", "intercept")):
                raise ModelFileError(f"{self.source} has non-finite coefficients ({field_name}); the file is damaged")
            raise self.bad(field_name, "a finite number", v)
        return x

    def dict_of(self, field_name: str, v, required: bool) -> dict:
        if v is None and not required:
            return {}
        if not isinstance(v, dict):
            raise self.bad(field_name, "an object", v)
        return v

    def model(self, cls) -> "LinearModel":
        d = self.d
        for key in ("feature_names", "coef", "intercept"):
            if key not in d:
                raise ModelFileError(f"{self.source} is damaged: missing or invalid field '{key}'; save the model "
                                     "again with gradfit fit --save")
        names = d["feature_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise self.bad("feature_names", "a list of column names", names)
        if len(set(names)) != len(names):
            raise ModelFileError(f"{self.source} names a feature twice; the file is damaged")
        if not isinstance(d["coef"], list):
            raise self.bad("coef", "a list of numbers", d["coef"])
        coef = np.asarray([self.number(f"coef[{i}]", c) for i, c in enumerate(d["coef"])], dtype=np.float64)
        intercept = self.number("intercept", d["intercept"])
        if len(coef) != len(names):
            raise ModelFileError(f"{self.source} has {len(coef)} coefficients for {len(names)} features; "
                                 "the file is damaged")
        target = d.get("target")
        if target is not None and not isinstance(target, str):
            raise self.bad("target", "a column name or null", target)
        loss = self.spec("loss", d.get("loss") or {"name": "squared"})
        penalty = self.spec("penalty", d.get("penalty") or {"name": "none", "alpha": 0.0, "l1_ratio": 0.0})
        solver = d.get("solver", "")
        if not isinstance(solver, str):
            raise self.bad("solver", "a name", solver)
        tr = self.dict_of("training", d.get("training"), required=False)
        converged = tr.get("converged", True)
        if not isinstance(converged, bool):
            raise self.bad("training.converged", "true or false", converged)
        n_iter = self.number("training.n_iter", tr.get("n_iter", 0) or 0)
        if n_iter < 0 or n_iter != int(n_iter) or n_iter > 2 ** 62:
            raise self.bad("training.n_iter", "a whole number >= 0", tr.get("n_iter"))
        gap = self.number("training.gap", tr.get("gap"), finite=False, none_ok=True)
        final = self.number("training.final_loss", tr.get("final_loss"), finite=False, none_ok=True)
        scale_mode = tr.get("scale_mode", "fixed")
        if scale_mode not in cls.SCALE_MODES:
            raise ModelFileError(f"{self.source} has an unknown scale_mode {_shown(scale_mode)}; the file is damaged")
        fit_intercept = tr.get("fit_intercept", True)
        if not isinstance(fit_intercept, bool):
            raise self.bad("training.fit_intercept", "true or false", fit_intercept)
        scale = None if scale_mode == "fixed" else self.number("training.scale", tr.get("scale"), none_ok=True)
        info = {}
        for k, v in tr.items():
            if k in ("converged", "gap", "n_iter", "final_loss", "fit_intercept", "scale_mode"):
                continue
            if isinstance(v, (dict, list)):
                raise self.bad(f"training.{k}", "a number or a string", v)
            info[k] = self.number(f"training.{k}", v, finite=False) if isinstance(v, (int, float)) \
                and not isinstance(v, bool) else v
        hist = self.dict_of("history", d.get("history"), required=False)
        history = None
        if hist:
            values = hist.get("loss", [])
            if not isinstance(values, list):
                raise self.bad("history.loss", "a list of numbers", values)
            history = History(loss=[self.number(f"history.loss[{i}]", v, finite=False, none_ok=True)
                                    for i, v in enumerate(values)])
        return cls(coef_=coef, intercept_=intercept, feature_names_in_=list(names), target_name=target, loss=loss,
                   penalty=penalty, solver=solver, converged_=converged, gap_=gap, n_iter_=int(n_iter),
                   final_loss_=final, history_=history, fit_intercept=fit_intercept, scale_mode=scale_mode,
                   scale_=scale, info=info)

    def spec(self, field_name: str, v) -> dict:
        """A loss or penalty description, checked by building the object it describes."""
        spec = self.dict_of(field_name, v, required=True)
        if not isinstance(spec.get("name"), str):
            raise self.bad(f"{field_name}.name", "a name", spec.get("name"))
        for k, x in spec.items():
            if k == "scale" and field_name == "loss":  # the Huber threshold's mode: joint, mad or absolute
                if not isinstance(x, str):
                    raise self.bad(f"{field_name}.{k}", "a name", x)
            elif k != "name":
                self.number(f"{field_name}.{k}", x)
        try:
            (loss_from_spec if field_name == "loss" else penalty_from_spec)(spec)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelFileError(f"{self.source} is damaged: field '{field_name}' is not a valid {field_name} "
                                 f"({' '.join(str(exc).split())[:120]}); save the model again with gradfit fit "
                                 "--save") from None
        return dict(spec)



def model_from_dict(cls, d: Any, source: str = "model"):
    """The ``cls`` (:class:`gradfit.model.LinearModel`) a file's JSON describes; ModelFileError naming
    ``source`` and the field when it is not one."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ModelFileError(f"{source} is not a gradfit model file (no \"format\": \"{FORMAT}\")")
    version = d.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{source} has an invalid format_version {_shown(version)}; the file is damaged")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{source} has format version {version!r}, newer than this gradfit reads "
                             f"({FORMAT_VERSION}); upgrade gradfit")
    model = FieldReader(d, source).model(cls)
    try:
        model.inference_ = check_stored(d.get("inference"), len(model.coef_), source)
        if d.get("formula") is not None:
            design = FormulaDesign.from_dict(d["formula"], source)
            if design.columns != model.feature_names_in_:
                raise ModelFileError(f"{source}: its formula gives columns {design.columns}, not its features")
            model.formula_ = design
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, IndexError) as exc:
        raise ModelFileError(f"{source} is damaged: its inference or formula block is not valid "
                             f"({exc.__class__.__name__}); save the model again with gradfit fit --save") from None
    return model


def read_json(source: str) -> Any:
    """The JSON in the file ``source``; ModelFileError (one line) when it is missing, unreadable or not JSON."""
    try:
        with open(source, "r", encoding="utf-8") as fh:
            d = json.load(fh)
    except FileNotFoundError:
        raise ModelFileError(f"{source}: no such model file") from None
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot read the model file ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{source} is not valid JSON ({exc.__class__.__name__} at {getattr(exc, 'pos', '?')}); "
                             "it is truncated or not a gradfit model") from None
    except (RecursionError, ValueError) as exc:  # nesting too deep; an integer of thousands of digits
        raise ModelFileError(f"{source} is not a gradfit model file ({exc.__class__.__name__}: "
                             f"{' '.join(str(exc).split())[:80]}); check the file") from None
    return d
