"""Many processes on ``torch.distributed``: each process holds one shard of the rows, sums are all-reduced.

Every pass over the data already goes through :meth:`Batches.allreduce`, so a distributed fit is the
single-process fit on a :class:`ShardedBatches` source whose ``allreduce`` sums over all processes
(gloo on CPU, NCCL on GPU). Every process then holds the same combined sums, takes the same steps and
the same stopping decisions, and ends with the same parameters.

Library use, under ``torchrun --nproc-per-node N script.py``::

    from gradfit.distributed.session import session as distributed
    with distributed.Session.from_env(timeout=60) as session:
        data = distributed.shard(as_batches(X, y), session)   # this process's contiguous slice of the rows
        model = gradfit.fit(data, solver="exact")

The command line (``gradfit fit --nproc N``, or ``torchrun ... -m gradfit fit``) and the local
launcher live in :mod:`gradfit.cli.launcher`.
"""
from __future__ import annotations

import datetime
import os
import re
import time
import zlib
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import Tensor

from gradfit.data.arrays import ArrayBatches
from gradfit.data.batches import Batch, Batches, DataError
from gradfit.numerics.device import resolve_device

DEFAULT_TIMEOUT = 60.0
# Which solvers run on a sharded source is declared on each solver (``Solver.runs_distributed``) and
# checked by ``Solver.check_data``.
# Test hook: "RANK:WHEN" makes process RANK exit with code 3 (WHEN = "start", or the number of the
# all-reduce call it dies in) or stop answering (WHEN = "hang": before connecting; "3h": in all-reduce 3).
CRASH_ENV = "GRADFIT_TEST_CRASH"


class DistributedError(RuntimeError):
    """A process could not connect, or lost contact with the others; the message is one line."""


@dataclass(frozen=True)
class Topology:
    rank: int
    world: int
    local_rank: int = 0


def topology_from_env() -> Topology | None:
    """The torchrun environment (WORLD_SIZE, RANK, LOCAL_RANK) when it names 2 or more processes."""
    world = os.environ.get("WORLD_SIZE")
    if not world or int(world) < 2:
        return None
    rank = int(os.environ.get("RANK", "0"))
    return Topology(rank, int(world), int(os.environ.get("LOCAL_RANK", str(rank))))


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of process ``rank``: contiguous slices whose sizes differ by at most one."""
    return n * rank // world, n * (rank + 1) // world


def _crash_hook(rank: int, when: str) -> None:
    who, _, wanted = os.environ.get(CRASH_ENV, "").partition(":")
    if who != str(rank):
        return
    if wanted == when + "h" or wanted == when == "hang":
        time.sleep(3600)
    if wanted == when:
        os._exit(3)


class Session:
    """One process's membership of the process group: ``start()`` joins it (with a timeout), ``close()``
    leaves it. The backend is ``nccl`` for a CUDA device and ``gloo`` otherwise."""

    def __init__(self, topology: Topology, *, timeout: float = DEFAULT_TIMEOUT, backend: str = "auto",
                 device: str = "cpu"):
        if timeout <= 0:
            raise ValueError(f"--timeout must be a positive number of seconds, got {timeout:g}")
        self.topology, self.timeout = topology, float(timeout)
        self.device = self._device(device, topology.local_rank)
        self.backend = backend if backend not in (None, "auto") else ("nccl" if self.device.type == "cuda" else "gloo")
        if self.backend not in ("gloo", "nccl"):
            raise ValueError(f"unknown backend {backend!r}; choose auto, gloo or nccl")
        if self.backend == "nccl" and self.device.type != "cuda":
            raise ValueError("the nccl backend needs --device cuda; use --backend gloo on CPU")
        self.comm_device = self.device if self.backend == "nccl" else torch.device("cpu")
        self.started = False

    @classmethod
    def from_env(cls, **kwargs) -> "Session":
        topology = topology_from_env()
        if topology is None:
            raise DistributedError("no distributed environment: start the program with torchrun "
                                   "(WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT set, WORLD_SIZE >= 2)")
        return cls(topology, **kwargs)

    @staticmethod
    def _device(device: str | None, local_rank: int) -> torch.device:
        dev = resolve_device(device)
        if dev.type == "cuda" and dev.index is None:
            count = torch.cuda.device_count()
            if local_rank >= count:
                raise ValueError(f"process {local_rank} on this machine has no GPU of its own ({count} found); "
                                 f"start at most {count} processes per machine")
            dev = torch.device("cuda", local_rank)
        return dev

    @property
    def rank(self) -> int:
        return self.topology.rank

    @property
    def world(self) -> int:
        return self.topology.world

    @property
    def shard(self) -> tuple[int, int]:
        return self.topology.rank, self.topology.world

    def start(self) -> "Session":
        _crash_hook(self.rank, "start")
        _crash_hook(self.rank, "hang")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        try:
            dist.init_process_group(self.backend, init_method="env://", rank=self.rank, world_size=self.world,
                                    timeout=datetime.timedelta(seconds=self.timeout))
        except (RuntimeError, ValueError, TimeoutError, OSError) as exc:
            where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
            raise DistributedError(f"process {self.rank} of {self.world} could not join the others at {where} "
                                   f"within {self.timeout:g} s ({first_line(exc)}); check that every process "
                                   "started and can reach MASTER_ADDR, or raise --timeout") from None
        self.started = True
        return self

    def agree(self) -> None:
        """Return once every process has got here (its fit succeeded); a process that failed never
        does, so the others stop at the timeout, or sooner when the launcher stops them."""
        ok = torch.ones(1, dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(ok, op=dist.ReduceOp.SUM)
        if int(ok.item()) != self.world:
            raise DistributedError(f"only {int(ok.item())} of {self.world} processes finished the fit; "
                                   "nothing was written")

    def close(self) -> None:
        if self.started and dist.is_initialized():
            dist.destroy_process_group()
        self.started = False

    def __enter__(self) -> "Session":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def wrap(self, local: Batches) -> "ShardedBatches":
        """This process's rows (already its shard) as one part of the distributed data."""
        return ShardedBatches(local, comm_device=self.comm_device)


def first_line(exc: BaseException) -> str:
    text = re.sub(r"\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", " ".join(str(exc).split()))  # C++ source locations
    text = text.split(". This is typically")[0]
    return (text[:160] + "...") if len(text) > 160 else (text or type(exc).__name__)


def is_comm_failure(exc: BaseException) -> bool:
    """An error from a collective or the rendezvous (a peer died, hung or never came)."""
    if isinstance(exc, (dist.DistError, TimeoutError, ConnectionError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(k in text for k in (
        "gloo", "Gloo", "NCCL", "c10d", "onnection", "imed out", "imeout", "peer"))


class ShardedBatches(Batches):
    """This process's shard of the rows; :meth:`allreduce` sums over every process.

    ``n_rows`` counts this shard; ``total_rows()`` all of them. ``full_batch()`` is None because no
    process holds all rows, so every sum goes through ``allreduce``. Mini-batch passes
    (:meth:`shuffled`) are refused: each process would step on its own rows.
    """

    def __init__(self, local: Batches, *, comm_device: torch.device | str = "cpu"):
        if not dist.is_initialized():
            raise DistributedError("ShardedBatches needs a process group: start a gradfit.distributed.session.Session first")
        self.local = local
        self.feature_names = list(local.feature_names)
        self.target_name = local.target_name
        self.dtype, self.device = local.dtype, local.device
        self.comm_device = torch.device(comm_device)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self._calls = 0
        self._total: int | None = None
        self._check_same_columns()

    def _check_same_columns(self) -> None:
        """Every process must hold the same columns, or the packed sums would not line up."""
        key = zlib.crc32("\x1f".join(self.feature_names).encode()) + len(self.feature_names) * 2 ** 32
        t = torch.tensor([float(key), -float(key)], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if t[0] != -t[1]:
            raise DataError(f"process {self.rank} has columns {', '.join(self.feature_names)} but another process "
                            "has different ones; give every process the same --features")

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.local)

    @property
    def n_rows(self) -> int:
        return self.local.n_rows

    def rows_known(self) -> int | None:
        return self.local.rows_known()

    def unchecked_columns(self, read_ahead: int | None = None):
        return self.local.unchecked_columns(read_ahead)

    def sample_units(self, rows: int, generator: torch.Generator, read_ahead: int | None = None):
        return self.local.sample_units(rows, generator, read_ahead)

    def validate(self) -> None:
        self.local.validate()

    def total_rows(self) -> int:
        if self._total is None:
            self._total = super().total_rows()
        return self._total

    def allreduce(self, t: Tensor) -> Tensor:
        self._calls += 1
        _crash_hook(self.rank, str(self._calls))
        buf = t.detach().to(self.comm_device, copy=True)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        return buf.to(t.device)

    def allgather_rows(self, t: Tensor) -> Tensor:
        """Every process's rows of ``t`` (m_r, c), stacked in rank order and padded with zero rows."""
        most = torch.tensor([float(t.shape[0])], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(most, op=dist.ReduceOp.MAX)
        m = int(most.item())
        buf = torch.zeros(self.world, m, *t.shape[1:], dtype=t.dtype, device=t.device)
        buf[self.rank, :t.shape[0]] = t
        return self.allreduce(buf).reshape(self.world * m, *t.shape[1:])

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        raise ValueError("mini-batch steps cannot run across processes (each would step on its own rows); "
                         "leave --batch-size unset for full-batch steps, or run one process")

    def full_batch(self) -> Batch | None:
        return None

    @property
    def distributed(self) -> bool:
        return True

    @property
    def has_weight(self) -> bool:
        return self.local.has_weight


def shard(data: Batches, session: Session | None = None) -> ShardedBatches:
    """This process's contiguous slice of ``data`` (which every process holds whole) as distributed data.

    In-memory data is sliced; a streamed source is read whole and only this slice kept (to read only
    one's own part of a file, open it with ``gradfit.data.files.open_table(..., shard=(rank, world))``
    and pass it to :class:`ShardedBatches` directly).
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    comm = session.comm_device if session is not None else torch.device("cpu")
    full = data.full_batch()
    if full is None:
        return ShardedBatches(RowRange(data, *shard_range(data.n_rows, rank, world)), comm_device=comm)
    start, stop = shard_range(len(full), rank, world)
    w = None if full.weight is None else full.weight[start:stop]
    local = ArrayBatches(full.X[start:stop], full.y[start:stop], w, feature_names=data.feature_names,
                         target_name=data.target_name, batch_size=getattr(data, "batch_size", None))
    return ShardedBatches(local, comm_device=comm)


class RowRange(Batches):
    """Rows ``[start, stop)`` of another source, in its order (the others are read and skipped)."""

    def __init__(self, source: Batches, start: int, stop: int):
        self.source, self.start, self.stop = source, start, stop
        self.feature_names, self.target_name = source.feature_names, source.target_name
        self.dtype, self.device = source.dtype, source.device
        self._n_rows = stop - start

    def __iter__(self) -> Iterator[Batch]:
        seen = 0
        for b in self.source:
            lo, hi = max(self.start - seen, 0), min(self.stop - seen, len(b))
            seen += len(b)
            if lo < hi:
                yield Batch(b.X[lo:hi], b.y[lo:hi], None if b.weight is None else b.weight[lo:hi])
            if seen >= self.stop:
                break

    @property
    def has_weight(self) -> bool:
        return self.source.has_weight
