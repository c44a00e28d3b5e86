"""What an audit did on the way: notes for the reader, and which metrics saw a sample.

A metric computed on a sample of rows is a different figure from one computed on all of
them; the audit output must say which is which, so every sub-sampling goes through
:meth:`AuditLog.subsample`, which records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["AuditLog"]


@dataclass
class AuditLog:
    """Notes (plain sentences) and sub-sampling records, in the order they happened."""

    notes: list[str] = field(default_factory=list)
    subsampled: list[dict[str, Any]] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def subsample(
        self, metric: str, frames: dict[str, pd.DataFrame], limit: int, rng: np.random.Generator
    ) -> dict[str, pd.DataFrame]:
        """Each frame cut to at most ``limit`` uniformly drawn rows; recorded when any is cut."""
        kept = {role: _sample(frame, limit, rng) for role, frame in frames.items()}
        self.record(metric, {r: len(f) for r, f in kept.items()}, {r: len(f) for r, f in frames.items()})
        return kept

    def record(self, metric: str, used: dict[str, int], total: dict[str, int]) -> None:
        """Note that ``metric`` used ``used`` rows of each table, out of ``total``, if fewer."""
        if any(used[role] < total[role] for role in used):
            self.subsampled.append({"metric": metric, "rows_used": used, "rows_total": total})

    def to_dict(self) -> dict[str, Any]:
        return {"notes": list(self.notes), "subsampled": list(self.subsampled)}


def _sample(frame: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    rows = np.sort(rng.choice(len(frame), size=limit, replace=False))
    return frame.iloc[rows].reset_index(drop=True)
