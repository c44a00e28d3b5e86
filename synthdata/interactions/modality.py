"""Interaction data as a release modality: what :func:`synthdata.release.release` needs to know.

``synthdata release purchases.csv --epsilon 4 --privacy-unit CustomerID --items StockCode``
releases ``synthetic.csv`` with the two columns under their own names: new, meaningless
user ids (``S000001``, …) that group each synthetic user's rows, and items from the DP
catalogue. The user is the unit of privacy; the other columns of the input are not
released (see the README).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fingerprint import content_digest
from ..ingest import Table
from ..privacy import NoiseSource
from ..privacy.bounding import UnitRequest, unit_codes
from .data import Baskets, baskets_from_frame

__all__ = ["InteractionModality"]


class InteractionModality:
    """A table of (user, item, …) rows released as synthetic users' histories over the DP catalogue."""

    name = "interactions"
    noun = "users"

    def __init__(self, table: Table, *, user: UnitRequest | str, item: str, model: str = "interaction-gan") -> None:
        self.table = table
        self.request = UnitRequest.of(user)
        self.user = self.request.column
        self.item = item
        self.model_name = model
        self.source = table.source
        self._synthetic: Baskets | None = None

    def check(self, *, holdout_fraction: float, rows: int | None) -> None:
        frame = self.table.frame
        for role, name in (("--privacy-unit (the user)", self.user), ("--items", self.item)):
            if name not in frame.columns:
                raise DataError(f"{role} {name}: no such column in {self.source}; the columns are "
                                + ", ".join(map(str, frame.columns)))
        if self.user == self.item:
            raise DataError("--items and --privacy-unit name the same column; the item and the user must differ")
        if self.request.max_rows is not None and self.request.max_rows < 1:
            raise DataError("--max-rows-per-unit must be at least 1")
        if rows is not None and rows < 1:
            raise DataError(f"--rows (synthetic users) must be at least 1, got {rows}")
        if self.table.sampled:
            raise DataError(f"{self.source} is larger than the in-memory limit; raise --memory-limit to release it")

    def describe(self) -> str:
        return (f"interactions: one {self.request.word} ({self.user}) with all their rows is the unit; "
                f"items from {self.item}")

    def digest(self) -> bytes:
        return content_digest(self.table.frame[[self.user, self.item]])

    def split(self, fraction: float, noise: NoiseSource) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Each user (all their rows) to the holdout with probability ``fraction``; rows without a user stay out."""
        frame = self.table.frame
        codes, count = unit_codes(frame[self.user])
        if fraction == 0:
            return frame[codes >= 0].reset_index(drop=True), None
        flips = noise.bernoulli(count, fraction)
        held = np.where(codes >= 0, flips[np.maximum(codes, 0)], False) if count else np.zeros(len(frame), bool)
        return frame[(codes >= 0) & ~held].reset_index(drop=True), frame[held].reset_index(drop=True)

    def fit(self, train: pd.DataFrame, *, epsilon: float, delta: float | None, seed: int,
            model_options: dict[str, Any], progress: Callable[[dict], None] | None):
        from ..models import create_model

        options = dict(model_options)
        if self.request.max_rows is not None:
            options.setdefault("max_items_per_user", self.request.max_rows)
        model = create_model(self.model_name, epsilon=epsilon, delta=delta, seed=seed, **options)
        return model.fit(train, user=self.user, item=self.item, noun=self.request.word, progress=progress)

    def write(self, model, directory: Path, count: int | None, seed: int) -> tuple[list[str], int]:
        from ..files import atomic_write

        users = max(int(round(model.n_users_)) if count is None else count, 1)
        synthetic = model.sample(users, seed=seed)
        atomic_write(directory / "synthetic.csv", synthetic.to_csv(index=False))
        self._synthetic = baskets_from_frame(synthetic, user=self.user, item=self.item)
        self._rows = len(synthetic)
        return ["synthetic.csv"], users

    def audit(self, model, train: pd.DataFrame, holdout: pd.DataFrame | None, directory: Path, *,
              holdout_fraction: float, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        from .audit import public_interaction_audit, read_synthetic, steward_interaction_audit

        synthetic = read_synthetic(directory / "synthetic.csv", user=self.user, item=self.item)
        real = baskets_from_frame(train, user=self.user, item=self.item)
        held = None if holdout is None or len(holdout) == 0 else baskets_from_frame(holdout, user=self.user,
                                                                                     item=self.item)
        public = public_interaction_audit(model, real, held, synthetic, holdout_fraction=holdout_fraction, seed=seed)
        steward = steward_interaction_audit(model, real, held, synthetic, seed=seed)
        return public, steward

    def data_section(self, model, count: int) -> dict[str, Any]:
        noun = model.unit_.noun
        return {
            "input_name": Path(self.source).name,
            f"{noun}s_train_dp": int(round(model.n_users_)),
            f"{noun}s_synthetic": count,
            "rows_synthetic": count,
            "interactions_synthetic": getattr(self, "_rows", None),
            "columns": [{"name": self.user, "type": "categorical", "role": f"synthetic {noun} id (new, meaningless)"},
                        {"name": self.item, "type": "categorical", "role": "item, from the DP catalogue"}],
            "catalogue": {"items": len(model.catalogue_), "threshold_dp": model.catalogue_threshold_,
                          "items_per_user_counted": model.measurements_.cap,
                          **_passes(model.measurements_.top_items, noun)},
            f"items_per_{noun}_dp": model.activity_,
            "privacy_unit": {"column": self.user, "noun": noun, "column_released": "as new synthetic ids",
                             f"rows_without_{noun}": "left out before any mechanism (their number is not "
                                                     "published)"},
            "excluded_columns": [c for c in self.table.frame.columns if c not in (self.user, self.item)],
            "schema": "user and item columns named by the steward (public)",
        }

    def steward_data(self, train: pd.DataFrame, holdout: pd.DataFrame | None) -> dict[str, Any]:
        frame = self.table.frame
        return {"input_rows": len(frame), "rows_without_user": int(frame[self.user].isna().sum()),
                "users_train": int(train[self.user].nunique()), "rows_train": len(train),
                "users_holdout": 0 if holdout is None else int(holdout[self.user].nunique()),
                "rows_holdout": 0 if holdout is None else len(holdout), "source": os.fspath(self.source)}


def _passes(top_items: int | None, noun: str) -> dict[str, Any]:
    """How the catalogue was selected, for the public report (public parameters only)."""
    if top_items is None:
        return {"passes": 1,
                "note": f"only items whose noisy weighted count of {noun}s (each {noun} adds 1/sqrt(the items they "
                        f"count) to each) clears the threshold are released: an item held by a single {noun} appears "
                        "with probability below delta"}
    return {"passes": 2, f"items_per_{noun}_selected": top_items,
            "note": f"pass 1 scores every item by a noisy weighted count of {noun}s (internal, not published); in pass "
                    f"2 each {noun} adds 1/sqrt({top_items}) to each of their {top_items} top-scored items, and only "
                    "items whose noisy pass-2 count clears the threshold are released: an item held by a single "
                    f"{noun} appears with probability below delta"}
