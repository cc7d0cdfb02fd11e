"""The one interface through which data reaches the objective and every solver: an iterable of batches.

The problem is stated over rows given this way, so the interface lives with it (the bottom layer);
its implementations -- arrays, files, shards -- are in :mod:`gradfit.data` and :mod:`gradfit.distributed`.

A :class:`Batches` source yields :class:`Batch` objects, each a block of rows ``X`` (b, p),
targets ``y`` (b,) and optional sample weights. Iterating gives one ordered pass over all rows;
:meth:`Batches.shuffled` gives one pass in random order for stochastic methods. Sources may be
in memory (:mod:`gradfit.data.arrays`) or streamed from files (:mod:`gradfit.data.files`).
Sums over rows go through :meth:`Batches.allreduce`, which a distributed source overrides so the
same solver code combines the shards of many processes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import Tensor


@dataclass
class Batch:
    X: Tensor
    y: Tensor
    weight: Tensor | None = None

    def __len__(self) -> int:
        return self.X.shape[0]

    def weight_sum(self) -> Tensor:
        if self.weight is None:
            return torch.tensor(float(len(self)), dtype=self.X.dtype, device=self.X.device)
        return self.weight.sum()


class Batches:
    """Base class of data sources. Subclasses implement ``__iter__``."""

    feature_names: list[str]
    target_name: str | None = None
    dtype: torch.dtype = torch.float64
    device: torch.device = torch.device("cpu")
    _n_rows: int | None = None

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def __iter__(self) -> Iterator[Batch]:
        raise NotImplementedError

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """One pass in random order, in batches of ``batch_size`` rows.

        The default shuffles rows within each block of the ordered pass and the blocks' order is
        kept; streamed sources override it with a bounded shuffle buffer.
        """
        for batch in self:
            perm = torch.randperm(len(batch), generator=generator).to(batch.X.device)
            # gather ~32k values at a time with index_select (one copy per chunk, not per mini-batch:
            # fancy indexing per small batch was 50x slower); mini-batches are views of the chunk.
            # Chunks stay under torch's parallel grain: threads spinning on a busy machine made
            # larger gathers 3x slower.
            chunk = max(1, 32768 // (max(batch.X.shape[1], 1) * batch_size)) * batch_size
            for c in range(0, len(batch), chunk):
                idx = perm[c:c + chunk]
                X, y = batch.X.index_select(0, idx), batch.y.index_select(0, idx)
                w = None if batch.weight is None else batch.weight.index_select(0, idx)
                for start in range(0, len(idx), batch_size):
                    end = start + batch_size
                    yield Batch(X[start:end], y[start:end], None if w is None else w[start:end])

    @property
    def n_rows(self) -> int:
        """Rows in this source (for a distributed source: in this process's shard)."""
        if self._n_rows is None:
            self._n_rows = sum(len(b) for b in self)
        return self._n_rows

    def rows_known(self) -> int | None:
        """Rows in this source (shard) when known without a pass (in memory, Parquet metadata), else None."""
        return self._n_rows

    def total_rows(self) -> int:
        """Rows across every process."""
        return int(self.allreduce(torch.tensor(float(self.n_rows), dtype=torch.float64)).item())

    def allreduce(self, t: Tensor) -> Tensor:
        """Sum ``t`` over all processes; a single process returns it unchanged."""
        return t

    @property
    def distributed(self) -> bool:
        """True for a shard of data spread over several processes (its :meth:`allreduce` sums them)."""
        return False

    def validate(self) -> None:
        """Raise DataError if a value is missing or infinite (sources that check as they read: no-op,
        unless they served an :meth:`unchecked_columns` pass)."""

    def full_batch(self) -> Batch | None:
        """All rows as one batch when they are already in memory, else None."""
        return None

    def unchecked_columns(self, read_ahead: int | None = None) -> Iterator[list[np.ndarray]] | None:
        """One pass as lists of float64 columns ``[x_1, ..., x_p, y, (weight)]`` of each block,
        NaN/inf *not* checked, or None when the source does not offer it (the default). A source
        that reads ahead in a thread holds at most about ``read_ahead`` bytes of blocks (None: its default).

        For a consumer whose own sums reveal a bad value and which then calls :meth:`validate`
        (the exact solver's moments): a streamed source skips building and scanning a matrix.
        """
        return None

    def sample_units(self, rows: int, generator: torch.Generator,
                     read_ahead: int | None = None) -> tuple[Iterator[list[np.ndarray]], int] | None:
        """(blocks, their rows): blocks as :meth:`unchecked_columns` of a few pieces of the source picked at random (Parquet
        row groups), about ``rows`` rows, without reading the rest; None when the source cannot (the
        default). Not a uniform sample unless the rows are in random order."""
        return None

    @property
    def has_weight(self) -> bool:
        return False


class Float64View(Batches):
    """The rows of another source in float64, converted one block at a time (never a whole copy):
    where a float32 fit's gap is measured."""

    def __init__(self, data: Batches, rows: int = 1 << 16):
        self.data, self.rows = data, rows
        self.feature_names, self.target_name = list(data.feature_names), data.target_name
        self.dtype, self.device = torch.float64, data.device

    def __iter__(self) -> Iterator[Batch]:
        full = self.data.full_batch()
        if full is None:
            blocks: Iterator[Batch] = iter(self.data)
        else:
            blocks = (Batch(full.X[a:a + self.rows], full.y[a:a + self.rows],
                            None if full.weight is None else full.weight[a:a + self.rows])
                      for a in range(0, len(full), self.rows))
        for b in blocks:
            yield Batch(b.X.to(torch.float64), b.y.to(torch.float64),
                        None if b.weight is None else b.weight.to(torch.float64))

    @property
    def n_rows(self) -> int:
        return self.data.n_rows

    def allreduce(self, t: Tensor) -> Tensor:
        return self.data.allreduce(t)

    def validate(self) -> None:
        self.data.validate()

    @property
    def has_weight(self) -> bool:
        return self.data.has_weight
