"""Level codes kept on this machine's disk, read back in chunks: memory bounded whatever the rows."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence

import numpy as np

from .base import Progress, flat_index, mapped_columns
from .poisson import StepBatches, StepSpill, memberships

__all__ = ["LocalCodes"]

#: Rows read at a time from the codes file.
CHUNK_ROWS = 1 << 20


class LocalCodes:
    """The training rows' level codes (rows x width, uint8 or uint16) in a private temporary file.

    Written once by an engine's encode pass (:meth:`append`), then read in chunks by every
    later pass: contingency tables (:meth:`cross_counts`) and the Poisson batches
    (:meth:`real_units`). The file holds real rows' codes: it lives in a folder of mode
    0700 and is removed by :meth:`close`.
    """

    def __init__(self, *, width: int, dtype: np.dtype, directory: str | None = None) -> None:
        self.width, self.dtype = int(width), np.dtype(dtype)
        self.directory = tempfile.mkdtemp(prefix="synthdata-codes-", dir=directory)
        self.path = os.path.join(self.directory, "codes.bin")
        self._handle = open(self.path, "wb")
        self.rows = 0
        self._batches: StepBatches | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.width)

    def append(self, codes: np.ndarray) -> None:
        codes = np.ascontiguousarray(codes, dtype=self.dtype)
        if codes.ndim != 2 or codes.shape[1] != self.width:
            raise ValueError(f"codes must be rows x {self.width}, got {codes.shape}")
        self._handle.write(codes.tobytes())
        self.rows += codes.shape[0]

    def finish(self) -> LocalCodes:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        return self

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, codes) for consecutive chunks of ``rows`` rows (plain reads, not a memory map)."""
        self.finish()
        with open(self.path, "rb") as handle:
            for start in range(0, self.rows, rows):
                count = min(rows, self.rows - start)
                block = np.fromfile(handle, dtype=self.dtype, count=count * self.width)
                yield start, block.reshape(count, self.width)
                del block

    def cross_counts(self, groups: Sequence[tuple[int, ...]], maps: Sequence[np.ndarray], sizes: Sequence[int],
                     progress: Progress | None = None, what: str = "contingency tables") -> list[np.ndarray]:
        totals = [np.zeros(int(np.prod([sizes[c] for c in g])), dtype=np.int64) for g in groups]
        maps = [np.asarray(m, dtype=np.int32) for m in maps]
        for start, chunk in self.chunks():
            mapped = mapped_columns(chunk, groups, maps)
            for k, group in enumerate(groups):
                index, cells = flat_index(mapped, group, sizes)
                totals[k] += np.bincount(index, minlength=cells)
            if progress is not None:
                progress({"pass": what, "done": start + len(chunk), "total": self.rows})
        return totals

    def real_units(self, *, offsets: np.ndarray, device, noise, rate: float, steps: int,
                   progress: Progress | None = None) -> StepBatches:
        """Draw every step's Poisson batch in one pass (see :mod:`synthdata.engines.poisson`)."""
        rng = noise.generator()
        spill = StepSpill(steps=steps, width=self.width, dtype=self.dtype, expected_batch=rate * self.rows)
        position = None
        try:
            for start, chunk in self.chunks():
                rows, step, position = memberships(len(chunk), steps, rate, rng, position)
                spill.add(step, chunk[rows])
                if progress is not None:
                    progress({"pass": "Poisson batches", "done": start + len(chunk), "total": self.rows})
        except BaseException:
            spill.close()
            raise
        self._batches = StepBatches(spill, offsets=offsets, rate=rate, device=device)
        return self._batches

    def close(self) -> None:
        self.finish()
        if self._batches is not None:
            self._batches.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __del__(self) -> None:  # a temporary file of real rows' codes never outlives its owner
        try:
            self.close()
        except Exception:
            pass
