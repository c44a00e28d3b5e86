"""Tables as a release modality: what :func:`synthdata.release.release` needs to know about them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from ..fingerprint import content_digest
from ..ingest import MISSING_MARKERS, Table
from ..privacy import ROW, NoiseSource, PrivacyUnit
from ..schema import Schema

__all__ = ["TableModality"]

#: Most synthetic rows the audit reads back; rows are drawn independently, so the first
#: rows of the file are a uniform sample of it.
AUDIT_SYNTHETIC_ROWS = 200_000


class TableModality:
    """A table (CSV, Parquet or DataFrame) released as ``synthetic.csv``."""

    name = "table"
    noun = "rows"

    def __init__(self, table: Table, *, target: str | None = None, schema: Schema | None = None,
                 unit: PrivacyUnit = ROW, model: str = "tabular-gan") -> None:
        self.table = table
        self.target = target
        self.schema = schema
        self.unit = unit
        self.model_name = model
        self.source = table.source

    # ------------------------------------------------------------------ before any data is read privately

    def check(self, *, holdout_fraction: float, rows: int | None) -> None:
        """Refuse what cannot work, from public facts only (column names, options)."""
        frame = self.table.frame
        if self.target is not None and self.target not in frame.columns:
            raise DataError(f"{self.source}: --target {self.target}: no such column; the columns are "
                            + ", ".join(map(str, frame.columns)))
        if self.schema is not None:
            self.schema.check_columns(frame, source=self.source)
            if self.target is not None and self.target not in self.schema.names:
                raise DataError(f"--target {self.target} is not among the schema's columns")
        if rows is not None and rows < 1:
            raise DataError(f"--rows must be at least 1, got {rows}")
        if self.table.sampled:
            raise DataError(f"{self.source} is larger than the in-memory limit; raise --memory-limit to release it")
        if self.unit.column is not None and self.unit.column not in frame.columns:
            raise DataError(f"--privacy-unit {self.unit.column}: no such column in {self.source}")

    def describe(self) -> str:
        columns = len(self.table.frame.columns)
        how = "declared (public)" if self.schema is not None else "decided with DP during the fit"
        return f"{columns} columns; types {how}"

    def digest(self) -> bytes:
        return content_digest(self.table.frame)

    # ------------------------------------------------------------------ the pipeline

    def split(self, fraction: float, noise: NoiseSource) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Each row (each unit's rows together) to the holdout with probability ``fraction``, independently."""
        frame = self.table.frame
        if fraction == 0:
            return frame.reset_index(drop=True), None
        if self.unit.column is None:
            held = noise.bernoulli(len(frame), fraction)
        else:
            units = pd.factorize(frame[self.unit.column], use_na_sentinel=True)[0]
            flips = noise.bernoulli(int(units.max()) + 1 if len(units) else 0, fraction)
            held = np.where(units >= 0, flips[np.maximum(units, 0)], False)
        return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)

    def fit(self, train: pd.DataFrame, *, epsilon: float, delta: float | None, seed: int,
            model_options: dict[str, Any], progress: Callable[[dict], None] | None):
        from ..models import create_model

        model = create_model(self.model_name, epsilon=epsilon, delta=delta, seed=seed, **model_options)
        return model.fit(train, schema=self.schema, progress=progress, unit=self.unit)

    def write(self, model, directory: Path, count: int | None, seed: int) -> tuple[list[str], int]:
        from .sampling import write_csv

        n = int(round(model.n_rows_)) if count is None else count
        write_csv(model, max(n, 1), directory / "synthetic.csv", seed=seed)
        return ["synthetic.csv"], max(n, 1)

    def read_synthetic(self, directory: Path) -> pd.DataFrame:
        """The synthetic rows as an analyst reads them (the audit reads the file, not the model)."""
        return pd.read_csv(directory / "synthetic.csv", nrows=AUDIT_SYNTHETIC_ROWS, low_memory=False,
                           keep_default_na=False, na_values=list(MISSING_MARKERS))

    def audit(self, model, train: pd.DataFrame, holdout: pd.DataFrame | None, directory: Path, *,
              holdout_fraction: float, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(public audit: DP figures only; steward audit: exact, not for release)."""
        from ..audit import audit as exact_audit
        from .audit import public_audit

        synthetic = self.read_synthetic(directory)
        public = public_audit(model, train, holdout, synthetic, target=self.target,
                              holdout_fraction=holdout_fraction, seed=seed)
        steward = exact_audit(train[model.columns_], synthetic, holdout=None if holdout is None else
                              holdout[model.columns_], target=self.target if self.target in model.columns_ else None,
                              schema=model.schema_, epsilon=model.epsilon, delta=model.delta_, seed=seed)
        steward["rows"] = {**steward.get("rows", {}), "input": len(self.table.frame)}
        return public, steward

    def data_section(self, model, count: int) -> dict[str, Any]:
        """What the public report says about the data: DP counts, the schema as fitted (DP or declared)."""
        return {
            "input_name": Path(self.source).name,
            "rows_train_dp": int(round(model.n_rows_)),
            "rows_synthetic": count,
            "columns": [{"name": c.name, "type": c.type, **({"integer": c.integer} if c.type == "numerical" else {})}
                        for c in model.schema_],
            "schema": "declared by the steward (public)" if self.schema is not None else
                      "decided with differential privacy (the 'schema' budget line)",
            "excluded_columns": [e.name for e in model.schema_.excluded],
        }

    def steward_data(self, train: pd.DataFrame, holdout: pd.DataFrame | None) -> dict[str, Any]:
        """Exact facts for the steward's eyes only."""
        return {"input_rows": len(self.table.frame), "rows_train": len(train),
                "rows_holdout": 0 if holdout is None else len(holdout), "source": os.fspath(self.source)}
