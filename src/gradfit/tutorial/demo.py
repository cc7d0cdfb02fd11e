"""``gradfit demo``: the tutorial's training program run through gradfit, the exact optimum beside it,
why the run ended where it did (chosen from what happened), and a descent that reaches the optimum."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gradfit.api import fit
from gradfit.model import LinearModel
from gradfit.tutorial.code import RunSettings, pytorch_program
from gradfit.tutorial.explain import Explanation, RunFacts, explain, pct
from gradfit.tutorial.i18n import check_lang, translator
from gradfit.tutorial.run import TutorialData, exact_optimum, run_facts, train, tutorial_data

Printer = Callable[[str], None]


@dataclass
class DemoResult:
    seed_model: LinearModel   # the tutorial's run (its history until the blow-up when it diverged)
    optimum: LinearModel
    descent: LinearModel
    data: TutorialData
    gap: float                # relative excess loss of the tutorial's run over the optimum
    explanation: Explanation
    facts: RunFacts
    settings: RunSettings
    lang: str = "en"

    @property
    def diverged(self) -> bool:
        return self.explanation.kind == "diverged"


def demo(n: int = 1000, epochs: int = 500, lr: float = 0.001, loss: str = "l1", optimizer: str = "sgd",
         log_every: int = 10, seed: int = 0, noise_std: float = 1.0, *, standardize: bool = False,
         show_code: bool = False, lang: str | None = "en", out: Printer = print) -> DemoResult:
    """Run the tutorial's program through gradfit, then show the exact optimum and a fit that reaches it."""
    _ = translator(lang)
    s = RunSettings(n=n, noise=noise_std, seed=seed, loss=loss, optimizer=optimizer, lr=lr, epochs=epochs,
                    standardize=standardize)
    d = tutorial_data(n, noise_std, seed)
    out(_("The tutorial's program: {n} points, x ~ U(-10, 10), noise ~ N(0, {sd}^2), y = 2(x + noise) + 3").format(
        n=n, sd=f"{noise_std:g}"))
    out(_("  model y = w*x + b (nn.Linear(1, 1) init: w={w}, b={b}), {loss} loss, {opt} lr={lr}, up to {epochs} "
          "full-batch epochs").format(w=f"{d.w0:.4f}", b=f"{d.b0:.4f}", loss=loss, opt=optimizer, lr=f"{lr:g}",
                                      epochs=epochs) + (_(", standardized x") if standardize else ""))
    if show_code:
        out(_("The plain PyTorch program of these settings (gradfit runs the same steps):"))
        out("-" * 72)
        for line in pytorch_program(s).rstrip("\n").splitlines():
            out(line)
        out("-" * 72)
    trained = train(s, d, log_every=log_every, tol=1e-8,
                    on_log=lambda e, v: out(_("  epoch {e:4d}  loss {v:.6f}").format(e=e, v=v)))
    run = trained.model
    w, b = float(run.coef_[0]), float(run.intercept_)
    optimum = exact_optimum(d, s)
    facts = run_facts(s, d, trained, optimum)
    why = explain(facts, _)
    if trained.diverged:
        out(_("  diverged at epoch {k}: the last finite point is w = {w}, b = {b}").format(
            k=facts.epochs_run, w=f"{w:.4g}", b=f"{b:.4g}"))
    else:
        out(_("  learned: w = {w}, b = {b}   (loss {v}) after {k} of {epochs} epochs").format(
            w=f"{w:.4f}", b=f"{b:.4f}", v=f"{facts.losses[-1]:.6f}", k=facts.epochs_run, epochs=epochs))
    ws, bs = float(optimum.coef_[0]), float(optimum.intercept_)
    out("")
    out(_("The exact optimum of the same {loss} loss on the same data ({solver} solver, certified gap {gap}):").format(
        loss=loss, solver=optimum.solver, gap=f"{optimum.gap_:.1e}"))
    out(f"  w* = {ws:.4f}, b* = {bs:.4f}   (" + _("loss") + f" {optimum.final_loss_:.6f})")
    if not trained.diverged:
        out(_("  the tutorial's settings stopped {excess} above it: |w - w*| = {dw}, |b - b*| = {db}").format(
            excess=pct(facts.excess), dw=f"{abs(w - ws):.4f}", db=f"{abs(b - bs):.4f}"))
    out("  " + _("why: ") + why.text)
    descent = descent_to_optimum(d, loss)
    dgap = max((descent.final_loss_ - optimum.final_loss_) / abs(optimum.final_loss_), 0.0)
    step = f", lr {descent.info['lr']:g}" if "lr" in descent.info else ""
    out(_("Gradient descent done right ({solver}, {k} epochs{step}):").format(solver=descent.solver,
                                                                             k=descent.n_iter_, step=step))
    out(_("  w = {w}, b = {b}   (loss {v}, {gap} above the optimum)").format(
        w=f"{float(descent.coef_[0]):.4f}", b=f"{float(descent.intercept_):.4f}", v=f"{descent.final_loss_:.6f}",
        gap=f"{dgap:.1e}"))
    return DemoResult(run, optimum, descent, d, facts.excess, why, facts, s, check_lang(lang))


def descent_to_optimum(d: TutorialData, loss: str) -> LinearModel:
    """Full-batch gradient descent with its own step rule (Lipschitz step, smoothing for L1)."""
    return fit(d.x, d.y, loss=loss, solver="gd", epochs=5000, tol=1e-10, warn=False)
