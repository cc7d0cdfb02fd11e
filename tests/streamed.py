"""A test source without ``full_batch()``: solvers must read it batch by batch, as from a file."""
import torch

from gradfit.data.batches import Batch, Batches


class Streamed(Batches):
    def __init__(self, X, y, size):
        self.X, self.y, self.size = torch.tensor(X), torch.tensor(y), size
        self.feature_names = [f"x{i}" for i in range(X.shape[1])]

    def __iter__(self):
        for start in range(0, len(self.y), self.size):
            yield Batch(self.X[start:start + self.size], self.y[start:start + self.size])
