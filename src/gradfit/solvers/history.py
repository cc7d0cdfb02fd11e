"""What a fit leaves behind: the loss per epoch, the parameter path, the gap and the timings."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class History:
    """Per-epoch record of a fit.

    ``loss[k]`` is the objective at the parameters ``path[k]`` (k = 0 is the start), the value a
    training loop prints at epoch k before its step; ``gap[k]`` is a bound on the relative
    objective gap when the solver knows one (else NaN); ``time[k]`` is seconds since the start.
    Solvers that are not epoch-based (the exact solver) record their iterations instead.
    """

    loss: list[float] = field(default_factory=list)
    path: list[list[float]] = field(default_factory=list)
    gap: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)

    def append(self, loss: float, theta=None, gap: float = float("nan"), time: float = 0.0) -> None:
        self.loss.append(float(loss))
        if theta is not None:
            self.path.append([float(v) for v in theta])
        self.gap.append(float(gap))
        self.time.append(float(time))

    def __len__(self) -> int:
        return len(self.loss)

    @property
    def loss_array(self) -> np.ndarray:
        return np.asarray(self.loss, dtype=np.float64)

    @property
    def path_array(self) -> np.ndarray:
        """Shape (len(path), p + 1): coefficients then intercept, one row per record."""
        return np.asarray(self.path, dtype=np.float64)

    def to_dict(self) -> dict:
        return {"loss": self.loss, "path": self.path, "gap": self.gap, "time": self.time}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(list(map(float, d.get("loss", []))), [list(map(float, r)) for r in d.get("path", [])],
                   list(map(float, d.get("gap", []))), list(map(float, d.get("time", []))))
