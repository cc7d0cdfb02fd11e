"""The batch interface (:class:`Batch`, :class:`Batches`) as the data layer names it.

The interface is defined with the problem it feeds (:mod:`gradfit.problem.batches`); this module keeps
the import path ``gradfit.data.batches`` that sources, solvers and users use.
"""
from gradfit.exceptions import DataError
from gradfit.problem.batches import Batch, Batches, Float64View

__all__ = ["Batch", "Batches", "DataError", "Float64View"]
