"""The learner's fixes (issue 18) and words and pictures that follow the run (issue 14, item 6)."""
import re

import numpy as np
import pandas as pd
import pytest

import gradfit
from gradfit.tutorial.explain import RunFacts, explain
from gradfit.tutorial.i18n import LOCALE_DIR, default_lang, messages_in_source, mo_bytes, read_po


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 200
    sqft = rng.uniform(0.8, 4.5, n) * 1000
    rooms = rng.integers(1, 6, n)
    price = 50 + 0.1 * sqft + 10 * rooms + rng.normal(0, 20, n)
    frame = pd.DataFrame({"sqft": sqft, "rooms": rooms, "price_k": price})
    path = tmp_path_factory.mktemp("homes") / "homes.csv"
    frame.to_csv(path, index=False)
    return frame, path


def test_divergence_advice_computes_the_stable_lr_and_names_the_column_in_python_syntax(homes):
    frame, _ = homes
    with pytest.raises(gradfit.DivergenceError) as info:
        gradfit.fit(frame[["sqft", "rooms"]], frame.price_k, solver="sgd", epochs=50)
    text = str(info.value)
    assert "column 'sqft'" in text and "standardize=True" in text and "lr=" in text and "--" not in text
    limit = info.value.stability.lr_max
    assert f"= {limit:.3g}" in text
    X = np.column_stack([frame.sqft, frame.rooms, np.ones(len(frame))])
    L = 2 * np.linalg.eigvalsh(X.T @ X / len(X)).max()  # the squared loss's curvature bound
    assert limit == pytest.approx(2 / L, rel=1e-3)
    assert len(info.value.history) > 1  # what happened is kept
    # the advice works: just under the limit it does not diverge; standardized it converges fast
    gradfit.fit(frame[["sqft", "rooms"]], frame.price_k, solver="sgd", lr=0.9 * limit, epochs=50, warn=False)
    m = gradfit.fit(frame[["sqft", "rooms"]], frame.price_k, solver="sgd", lr=0.5, epochs=300, standardize=True)
    exact = gradfit.fit(frame[["sqft", "rooms"]], frame.price_k)
    assert np.allclose(m.coef_, exact.coef_, rtol=1e-4) and m.intercept_ == pytest.approx(exact.intercept_, rel=1e-4)


def test_cli_divergence_advice_in_flag_syntax_and_standardize_flag(run_cli, homes):
    _, path = homes
    code, out, err = run_cli("fit", str(path), "--target", "price_k", "--optimizer", "sgd", "--epochs", "50")
    assert code == 2 and err.count("\n") == 1
    assert "column 'sqft'" in err and "--standardize" in err and "--lr " in err and "standardize=True" not in err
    code, out, err = run_cli("fit", str(path), "--target", "price_k", "--optimizer", "sgd", "--epochs", "300",
                             "--lr", "0.5", "--standardize", "-q")
    assert code == 0, err
    coef = float(re.search(r"sqft\s+([-\d.e]+)", out).group(1))
    exact = gradfit.fit(pd.read_csv(path)[["sqft", "rooms"]], pd.read_csv(path).price_k)
    assert coef == pytest.approx(exact.coef_[0], rel=1e-4)  # original units


def test_grad_matches_nodes_to_names_and_explains_the_subgradient(run_cli):
    code, out, _ = run_cli("grad", "--x", "2,3", "--target", "11,4")
    assert code == 0
    assert re.search(r"AddBackward0\s+z = 2\*y \+ 3", out) and re.search(r"MulBackward0\s+y = x\*2", out)
    assert re.search(r"AccumulateGrad\s+x ", out)
    assert "no derivative" in out and "sign(0) = 0" in out and "x.grad   = dloss/dy * 2 = [0, 4]" in out


def test_demo_show_code_prints_the_pytorch_program(run_cli):
    code, out, _ = run_cli("demo", "--n", "100", "--epochs", "5", "--log-every", "0", "--show-code")
    assert code == 0
    for piece in ("nn.Linear(in_features=1, out_features=1)", "nn.L1Loss()", "optim.SGD(model.parameters(), lr=0.001)",
                  "optimizer.zero_grad()", "loss.backward()", "optimizer.step()"):
        assert piece in out


def test_demo_that_stops_early_says_so_and_why():
    """Issue 14.6: demo --lr 0.05 announced 500 epochs and stopped at 299 silently, then explained a shortfall."""
    lines = []
    res = gradfit.tutorial.demo(lr=0.05, log_every=0, out=lines.append)
    text = "\n".join(lines)
    assert "up to 500" in text
    run = res.seed_model.n_iter_
    assert f"after {run} of 500 epochs" in text  # how many epochs ran is always said
    assert res.explanation.kind == "reached" and "reached the optimum" in text
    if run < 500:
        assert f"at epoch {run}" in text and "unused" in text
    assert "at most 1 in size" not in text  # no story of a crawl that did not happen


def test_a_run_that_stops_before_its_epochs_is_told_so():
    facts = RunFacts(loss="absolute", optimizer="sgd", lr=0.05, epochs=500, losses=[10.0] + [1.0000001] * 299,
                     path=[[0.0, 0.0]] * 300, optimum=[2.0, 3.0], optimum_loss=1.0)
    why = explain(facts)
    assert why.kind == "reached" and "at epoch 299" in why.text and "201 of the 500 epochs unused" in why.text


def test_diverging_demo_still_prints_and_draws_what_happened(run_cli, tmp_path):
    """Issue 14.6: demo --loss l2 --lr 0.05 exited 2 with no answer and no plots."""
    code, out, err = run_cli("demo", "--loss", "l2", "--lr", "0.05", "--n", "300", "--log-every", "0",
                             "--out", str(tmp_path))
    assert code == 0, err
    assert "diverged at epoch" in out and "stability limit" in out and "w* =" in out
    html = (tmp_path / "report.html").read_text()
    assert "diverged" in html and (tmp_path / "loss_surface.png").stat().st_size > 10_000


def test_the_star_is_the_exact_optimum_not_the_end_of_an_unconverged_path(tmp_path):
    """Issue 14.6: adam, 200 epochs: the plot starred the end of the path as 'optimum'."""
    from gradfit.data.arrays import as_batches
    from gradfit.viz.report import exact_optimum_of
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 300)
    y = 0.13 * x + 15 + rng.normal(0, 1, 300)
    model = gradfit.fit(x, y, solver="adam", lr=0.01, epochs=200, warn=False)
    exact, label = exact_optimum_of(model, as_batches(x, y))
    assert "exact" in label and abs(exact.intercept_ - 15) < 0.5 and abs(model.intercept_ - exact.intercept_) > 1


@pytest.mark.parametrize("kind, facts", [
    ("diverged", dict(losses=[10, 20, 40], diverged=True, lr_max=0.03, lipschitz=66.0)),
    ("reached", dict(losses=[10, 2, 1.0000001])),
    ("stopped", dict(losses=[10, 5, 2])),
    ("crawling", dict(losses=[10, 9] + [8] * 499, epochs=500)),
])
def test_explanations_are_chosen_from_the_run(kind, facts):
    base = dict(loss="absolute", optimizer="sgd", lr=0.001, epochs=500, losses=[], optimum=[2.0, 3.0],
                optimum_loss=1.0)
    base.update(facts)
    base["path"] = [[0.0, 0.5]] * len(base["losses"])
    why = explain(RunFacts(**base))
    assert why.kind == kind and why.text.startswith({"stopped": "stopped early"}.get(kind, kind))
    if kind == "diverged":
        assert "2/L = 0.03" in why.text
    if kind == "crawling":
        assert "at most 1 in size" in why.text and "0.5 in 500 steps" in why.text


def test_korean_catalog_covers_every_message_and_is_compiled():
    po = LOCALE_DIR / "ko" / "LC_MESSAGES" / "gradfit.po"
    entries = read_po(po)
    missing = [m for m in messages_in_source() if m not in entries]
    assert not missing, f"untranslated: {missing}"
    assert po.with_suffix(".mo").read_bytes() == mo_bytes(entries), "run: python -m gradfit.tutorial.i18n"
    text = po.read_text(encoding="utf-8")
    for term in ("경사 하강법", "손실 함수", "학습률", "가중치", "편향"):
        assert term in text


def test_grad_and_demo_speak_korean(run_cli):
    code, out, _ = run_cli("grad", "--lang", "ko")
    assert code == 0 and "역전파 (연쇄 법칙):" in out and "x.grad   = dloss/dy * 2 = [4, 4]" in out
    code, out, _ = run_cli("demo", "--lang", "ko", "--n", "100", "--epochs", "10", "--log-every", "5")
    assert code == 0 and "튜토리얼의 프로그램" in out and "학습률" in out and "이유:" in out
    assert default_lang({"LANG": "ko_KR.UTF-8"}) == "ko" and default_lang({"LANG": "C.UTF-8"}) == "en"
