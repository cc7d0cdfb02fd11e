"""The exact L1/quantile solver: a Frisch-Newton interior point (lp) on a design (design), with
Portnoy-Koenker preprocessing (preprocessing); solver.py registers it."""
from gradfit.solvers.ipm.solver import InteriorPoint

__all__ = ["InteriorPoint"]
