"""Typed settings (issue 13): solver options a solver declares, general settings checked in one place,
the model's fit_intercept and scale mode as fields, capabilities declared on the solver class."""
import json

import numpy as np
import pytest

import gradfit
from gradfit.model import LinearModel, load
from gradfit.solvers import REGISTRY, Options, Settings, Solver, SolverMismatch, available, distributed_solvers


@pytest.fixture
def xy():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 2))
    return X, X @ [1.0, -1.0] + 0.5 + rng.normal(size=60) * 0.1


def test_a_misspelled_option_raises_and_lists_the_known_ones(xy):
    with pytest.raises(ValueError, match=r"unknown option 'polsh' for solver 'ipm'; its options are .*polish"):
        gradfit.fit(*xy, loss="l1", options={"polsh": False})
    with pytest.raises(ValueError, match=r"'gram_max'.*solver 'exact'; its options are certify"):
        gradfit.fit(*xy, options={"gram_max": 10})


def test_option_values_are_typed(xy):
    with pytest.raises(ValueError, match=r"options\['polish'\] must be True or False, got 'no'"):
        gradfit.fit(*xy, loss="l1", options={"polish": "no"})
    with pytest.raises(ValueError, match=r"options\['max_iter'\] must be an integer >= 0, got 2.5"):
        gradfit.fit(*xy, loss="l1", options={"max_iter": 2.5})


def test_every_solver_declares_frozen_options_and_its_capabilities():
    for name in available():
        solver = REGISTRY[name]
        opts = solver.Options()
        assert isinstance(opts, Options) and opts.certify is True
        with pytest.raises(AttributeError):
            opts.certify = False  # frozen
        assert isinstance(solver.runs_distributed, bool) and isinstance(solver.streams, bool)
    assert REGISTRY["sgd"].minibatch and not REGISTRY["exact"].minibatch
    assert "exact" in distributed_solvers()


@pytest.mark.parametrize("name, value, message", [
    ("lr", 0.0, "lr must be a positive finite number, got 0.0"),
    ("lr", float("inf"), "lr must be a positive finite number, got inf"),
    ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
    ("epochs", -1, "epochs must be an integer >= 0, got -1"),
    ("epochs", 2.5, "epochs must be an integer >= 0, got 2.5"),
    ("tol", float("nan"), "tol must be a finite number >= 0, got nan"),
    ("tol", -1e-3, "tol must be a finite number >= 0, got -0.001"),
    ("momentum", 1.0, r"momentum must be in \[0, 1\), got 1.0"),
    ("log_every", -2, "log_every must be an integer >= 0, got -2"),
    ("seed", 2 ** 64, "seed must be an integer <= 9223372036854775807, got 18446744073709551616"),
    ("seed", float("nan"), "seed must be an integer >= 0, got nan"),
])
def test_general_settings_are_checked_in_one_place(name, value, message):
    with pytest.raises(ValueError, match="^" + message):
        Settings(**{name: value})


def test_fit_reports_a_bad_setting_by_its_python_name(xy):
    with pytest.raises(ValueError, match="^epochs must be an integer >= 0, got -5"):
        gradfit.fit(*xy, solver="sgd", epochs=-5)
    with pytest.raises(ValueError, match="^lr must be a positive finite number"):
        gradfit.fit(*xy, solver="sgd", lr=-0.1)


def test_fit_intercept_and_scale_mode_are_fields_that_round_trip(xy, tmp_path):
    m = gradfit.fit(*xy, fit_intercept=False)
    assert m.fit_intercept is False and m.scale_mode == "fixed" and "fit_intercept" not in m.info
    m.save(tmp_path / "m.json")
    assert load(tmp_path / "m.json").fit_intercept is False
    h = gradfit.fit(*xy, loss="huber", solver="newton", huber_scale="joint")
    assert h.scale_mode == "joint" and h.scale_ == h.info["scale"] > 0
    h.save(tmp_path / "h.json")
    back = load(tmp_path / "h.json")
    assert back.scale_mode == "joint" and back.scale_ == h.scale_


def test_an_old_file_with_fit_intercept_in_training_loads(tmp_path):
    old = {"format": "gradfit-model", "format_version": 1, "gradfit_version": "0.1.0", "feature_names": ["a"],
           "target": None, "coef": [2.0], "intercept": 0.0, "loss": {"name": "squared"},
           "penalty": {"name": "none", "alpha": 0.0, "l1_ratio": 0.0}, "solver": "exact",
           "training": {"converged": True, "gap": 0.0, "n_iter": 1, "final_loss": 0.1, "fit_intercept": False,
                        "n_rows": 10}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    m = load(tmp_path / "old.json")
    assert m.fit_intercept is False and m.scale_mode == "fixed" and m.info == {"n_rows": 10}
    del old["training"]["fit_intercept"]
    (tmp_path / "older.json").write_text(json.dumps(old))
    assert load(tmp_path / "older.json").fit_intercept is True


def test_model_fields_after_the_coefficients_are_keyword_only():
    with pytest.raises(TypeError):
        LinearModel(np.zeros(1), 0.0, ["a"], "y")
    with pytest.raises(ValueError, match="scale_mode must be one of fixed, joint, mad"):
        LinearModel(np.zeros(1), 0.0, ["a"], scale_mode="free")


def test_a_solver_that_cannot_run_distributed_is_refused_by_its_declaration():
    class Sharded:
        distributed = True

        def total_rows(self):
            return 100

    class OneProcess(Solver):
        name = "one"

    with pytest.raises(SolverMismatch, match="solver .one. cannot run across processes yet; use one of .*exact"):
        OneProcess().check_data(Sharded(), None)
    with pytest.raises(SolverMismatch, match="mini-batch steps"):
        REGISTRY["sgd"].check_data(Sharded(), 10)
    REGISTRY["exact"].check_data(Sharded(), None)
