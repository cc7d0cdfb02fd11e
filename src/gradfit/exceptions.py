"""The errors and warnings gradfit raises; every layer imports them from here."""


class DataError(ValueError):
    """Bad input: the message is one line naming the file, row or column and what to do."""


class ConvergenceWarning(UserWarning):
    """The fit stopped before its certificate met the tolerance (the message gives the gap)."""


class DivergenceError(RuntimeError):
    """The loss became inf/NaN or kept growing: the step size is too large."""


class SolverMismatch(ValueError):
    """The chosen solver cannot minimize this loss/penalty combination."""
