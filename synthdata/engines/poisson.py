"""Poisson-sampled DP-SGD batches over a table too large to scan once per step.

The accountant assumes that at each of the ``steps`` steps every unit (row) is in the
batch independently with probability ``q``: one Bernoulli(q) coin per (row, step) cell of
a rows x steps grid. Scanning the table at every step would cost steps x rows reads.
Instead, **one pass** draws, for every row, the steps it joins: the grid's cells are
visited in row-major order and the distance from one chosen cell to the next is drawn
from the geometric distribution Geometric(q) — the waiting time between successes of
independent Bernoulli(q) trials — so the chosen cells are exactly those independent coin
flips (*geometric skipping*), at a cost proportional to the cells chosen (steps x q x
rows: the batches' total size), not to the grid. The pass keeps each chosen row's level
codes with its step, spills them to disk in buckets of steps, and training then reads
the batches back in step order.

The coins come from the ledger's CSPRNG-keyed source (``noise.generator()``), never a
seed; :func:`memberships` is also what a distributed engine runs on each partition, with a
generator keyed from the same source per partition.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np

__all__ = ["StepSpill", "StepBatches", "memberships"]

#: Records (one sampled row at one step) held in memory per bucket when reading batches back.
BUCKET_RECORDS = 1 << 21


def memberships(rows: int, steps: int, rate: float, rng: np.random.Generator,
                position: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The (row, step) cells chosen in a block of ``rows`` rows: each of the rows x steps
    cells independently with probability ``rate`` (geometric skipping, row-major).

    Returns (rows within the block, steps, position): ``position`` carries the next chosen
    cell, counted from the start of the *next* block, to chain blocks (a fresh draw when
    None; the chain of blocks is then one grid).
    """
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate!r}")
    end = rows * steps
    if position is None:
        position = int(rng.geometric(rate)) - 1
    chosen = []
    expected = end * rate
    while position < end:
        block = int(min(max(expected * 1.1 + 6 * math.sqrt(expected) + 16, 16), 1 << 22))
        gaps = rng.geometric(rate, size=block).astype(np.int64)
        cells = position + np.concatenate([[0], np.cumsum(gaps[:-1])])
        inside = cells < end
        chosen.append(cells[inside])
        position = int(cells[-1] + gaps[-1]) if inside.all() else int(cells[~inside][0])
    cells = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return cells // steps, (cells % steps).astype(np.int64), position - end


class StepSpill:
    """Sampled rows' codes grouped by step: appended in any order, read back step by step.

    Records go to one file per bucket of consecutive steps (sized so a bucket is at most
    :data:`BUCKET_RECORDS` records in expectation): memory stays bounded whatever the
    table's size. The files hold real rows' codes: they live in a private temporary folder
    (mode 0700) removed by :meth:`close`.
    """

    def __init__(self, *, steps: int, width: int, dtype: np.dtype, expected_batch: float,
                 directory: str | None = None) -> None:
        self.steps, self.width = int(steps), int(width)
        self.record = np.dtype([("step", "<u4"), ("codes", np.dtype(dtype), (self.width,))])
        self.bucket_steps = max(1, int(BUCKET_RECORDS // max(expected_batch, 1.0)))
        self.directory = tempfile.mkdtemp(prefix="synthdata-batches-", dir=directory)
        self.sizes = np.zeros(self.steps, dtype=np.int64)
        self._files: dict[int, object] = {}

    def add(self, steps: np.ndarray, codes: np.ndarray) -> None:
        if not len(steps):
            return
        records = np.empty(len(steps), dtype=self.record)
        records["step"] = steps
        records["codes"] = codes
        self.sizes += np.bincount(steps, minlength=self.steps)
        bucket = steps // self.bucket_steps
        order = np.argsort(bucket, kind="stable")
        bucket, records = bucket[order], records[order]
        bounds = np.flatnonzero(np.diff(bucket)) + 1
        for start, stop in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(bucket)]])):
            b = int(bucket[start])
            handle = self._files.get(b)
            if handle is None:
                handle = self._files[b] = open(os.path.join(self.directory, f"{b}.bin"), "ab")
            handle.write(records[start:stop].tobytes())

    def batches(self) -> Iterator[np.ndarray]:
        """Each step's sampled rows (codes, rows x width), steps 0, 1, … in order."""
        for handle in self._files.values():
            handle.close()
        self._files = {}
        empty = np.zeros((0, self.width), dtype=self.record["codes"].base)
        for b in range(0, math.ceil(self.steps / self.bucket_steps)):
            path = os.path.join(self.directory, f"{b}.bin")
            first, last = b * self.bucket_steps, min((b + 1) * self.bucket_steps, self.steps)
            if not os.path.exists(path):
                for _ in range(first, last):
                    yield empty
                continue
            records = np.fromfile(path, dtype=self.record)
            os.unlink(path)
            records = records[np.argsort(records["step"], kind="stable")]
            bounds = np.searchsorted(records["step"], np.arange(first, last + 1))
            for k in range(last - first):
                yield records["codes"][bounds[k]:bounds[k + 1]]

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files = {}
        shutil.rmtree(self.directory, ignore_errors=True)


class StepBatches:
    """The training loop's view of pre-drawn Poisson batches (see ``synthdata.tabular.training``).

    :meth:`sample` hands out the next step's real rows as indices into the one-hot layout,
    refusing to hand out more steps than were drawn or to change the rate.
    """

    def __init__(self, spill: StepSpill, *, offsets: np.ndarray, rate: float, device) -> None:
        self.spill, self.rate, self.device = spill, rate, device
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.units = None
        self._iterator = spill.batches()
        self.done = 0

    def sample(self, sampler, rate: float):
        import torch

        if rate != self.rate:
            raise RuntimeError(f"the batches were drawn at rate {self.rate}, not {rate}")
        if self.done >= self.spill.steps:
            raise RuntimeError(f"only {self.spill.steps} Poisson batches were drawn; the plan asked for more")
        codes = next(self._iterator)
        self.done += 1
        rows = torch.as_tensor(codes.astype(np.int64) + self.offsets, dtype=torch.long, device=self.device)
        return rows, None, int(rows.shape[0])

    def close(self) -> None:
        self.spill.close()
