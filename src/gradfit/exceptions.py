"""The errors and warnings gradfit raises; every layer imports them from here."""


class DataError(ValueError):
    """Bad input: the message is one line naming the file, row or column and what to do."""


class ModelFileError(DataError):
    """A model file that is not ours, is damaged, or does not fit the data."""


class ConvergenceWarning(UserWarning):
    """The fit stopped before its certificate met the tolerance (the message gives the gap)."""


class DivergenceError(RuntimeError):
    """The loss became inf/NaN or kept growing: the step size is too large.

    Attributes (None when unknown): ``epoch`` where it stopped, ``lr``, ``history`` (the
    :class:`~gradfit.solvers.history.History` recorded until then, so a caller can still show what
    happened), and ``stability`` (the data's learning-rate limit, see
    :func:`gradfit.solvers.stability.learning_rate_limit`), which :meth:`advice` turns into words.
    """

    def __init__(self, message: str, *, epoch: int | None = None, lr: float | None = None, history=None,
                 stability=None):
        super().__init__(message)
        self.what, self.epoch, self.lr, self.history, self.stability = message, epoch, lr, history, stability

    def advice(self, style: str = "python") -> str:
        """The message with advice in Python syntax (``lr=...``) or flag syntax (``--lr ...``)."""
        if self.stability is None:
            return f"{self.what}; try a smaller learning rate"
        return f"{self.what}; {self.stability.advice(self.lr, style)}"

    def __str__(self) -> str:
        return self.advice("python")


class SolverMismatch(ValueError):
    """The chosen solver cannot minimize this loss/penalty combination."""


class DataWarning(UserWarning):
    """Data that fits but is suspect (a constant or duplicated column), or rows left out on request."""
