"""Tables as a release modality: what :func:`synthdata.release.release` needs to know about them."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..audit.private import holdout_count
from ..engines import Engine, EngineView, Split
from ..errors import DataError, SynthdataWarning
from ..fingerprint import content_digest
from ..ingest import MISSING_MARKERS, Table
from ..privacy import ROW, NoiseSource, PrivacyUnit
from ..privacy.bounding import UnitRequest, unit_codes
from ..schema import ID_NAME, Schema

__all__ = ["TableModality", "person_id_candidates"]

#: Most synthetic rows the audit reads back; rows are drawn independently, so the first
#: rows of the file are a uniform sample of it.
AUDIT_SYNTHETIC_ROWS = 200_000
#: Real rows (of each side) the audit reads when an engine holds the table: a uniform sample
#: at a rate set from DP counts, so its figures keep their sensitivity of one row.
AUDIT_REAL_ROWS = 50_000


class TableModality:
    """A table (CSV, Parquet or DataFrame) released as ``synthetic.csv``.

    ``table``: a :class:`~synthdata.ingest.Table` in memory, or an engine holding the
    table (:mod:`synthdata.engines`: DuckDB, Spark), which the fit reads through counts only
    and the audit through a uniform sample of rows.
    """

    name = "table"
    noun = "rows"

    def __init__(self, table: Table | Engine, *, target: str | None = None, schema: Schema | None = None,
                 unit: PrivacyUnit | UnitRequest | str | None = ROW, model: str = "tabular-gan",
                 excel_safe: bool = False) -> None:
        self.engine = None if isinstance(table, Table) else table
        self.table = table if self.engine is None else None
        #: Prefix text a spreadsheet would run as a formula with ' in synthetic.csv (see tabular.sampling).
        self.excel_safe = excel_safe
        self.target = target
        self.schema = schema
        if UnitRequest.of(unit) is None and schema is not None and schema.privacy_unit is not None:
            unit = dict(schema.privacy_unit)
        #: The unit of privacy asked for (None: one row); the cap may be chosen with DP in fit.
        self.unit = UnitRequest.of(unit)
        self.model_name = model
        self.source = table.source if self.engine is None else self.engine.source.display
        self._audit_rates: dict[str, float] = {}

    @property
    def _header(self) -> pd.DataFrame:
        """The table's columns (public: the header), as a frame (with its rows, in memory)."""
        return self.table.frame if self.engine is None else pd.DataFrame(columns=self.engine.columns)

    # ------------------------------------------------------------------ before any data is read privately

    def check(self, *, holdout_fraction: float, rows: int | None) -> None:
        """Refuse what cannot work, from public facts only (column names, options)."""
        frame = self._header
        if self.target is not None and self.target not in frame.columns:
            raise DataError(f"{self.source}: --target {self.target}: no such column; the columns are "
                            + ", ".join(map(str, frame.columns)))
        if self.schema is not None:
            self.schema.check_columns(frame, source=self.source)
            if self.target is not None and self.target not in self.schema.names:
                raise DataError(f"--target {self.target} is not among the schema's columns")
        if rows is not None and rows < 1:
            raise DataError(f"--rows must be at least 1, got {rows}")
        if self.engine is not None and self.unit is not None:
            raise DataError(f"--privacy-unit needs the table in memory (--engine memory); the {self.engine.name} "
                            "engine releases with one row as the unit of privacy")
        if self.engine is None and self.table.sampled:
            raise DataError(f"{self.source} is larger than the in-memory limit; raise --memory-limit to release it")
        if self.unit is not None:
            if self.unit.column not in frame.columns:
                raise DataError(f"--privacy-unit {self.unit.column}: no such column in {self.source}; the columns are "
                                + ", ".join(map(str, frame.columns)))
            if self.target == self.unit.column:
                raise DataError(f"--target {self.target} is the privacy unit column, which is never released")
            if len(frame.columns) < 2:
                raise DataError(f"{self.source} holds only the privacy unit column; there is nothing to synthesise")
        # Pre-flight from public facts (the column count, the model's settings), before a row is read.
        from ..models import create_model
        from ..runtime import resolve_device
        from .preflight import check_columns

        columns = len(self.schema.names) if self.schema is not None else len(frame.columns) - (self.unit is not None)
        check_columns(columns, model=create_model(self.model_name, epsilon=1.0), device=resolve_device("auto"))

    def describe(self) -> str:
        columns = len(self._header.columns) - (self.unit is not None)
        how = "declared (public)" if self.schema is not None else "decided with DP during the fit"
        unit = "" if self.unit is None else f"; unit of privacy: one {self.unit.word} ({self.unit.column})"
        engine = "" if self.engine is None else f"; counted by {self.engine.name} (every row, out of core)"
        return f"{columns} columns; types {how}{unit}{engine}"

    def digest(self) -> bytes:
        if self.engine is not None:  # the same digest, computed where the rows are
            return self.engine.digest()
        return content_digest(self.table.frame)

    # ------------------------------------------------------------------ the pipeline

    def split(self, fraction: float, noise: NoiseSource) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Each row (each unit's rows together) to the holdout with probability ``fraction``, independently.

        On an engine: each row by a salted hash of its content (:class:`~synthdata.engines.Split`).
        """
        if self.engine is not None:
            if fraction == 0:
                return EngineView(self.engine, None, "train"), None
            split = Split.draw(noise, fraction)
            return EngineView(self.engine, split, "train"), EngineView(self.engine, split, "holdout")
        frame = self.table.frame
        if fraction == 0:
            return frame.reset_index(drop=True), None
        if self.unit is None:
            held = noise.bernoulli(len(frame), fraction)
        else:  # a unit's rows are all members or all non-members; rows without a unit stay (fit drops them)
            units, count = unit_codes(frame[self.unit.column])
            flips = noise.bernoulli(count, fraction)
            held = np.where(units >= 0, flips[np.maximum(units, 0)], False) if count else np.zeros(len(frame), bool)
        return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)

    def fit(self, train: pd.DataFrame, *, epsilon: float, delta: float | None, seed: int,
            model_options: dict[str, Any], progress: Callable[[dict], None] | None):
        from ..models import create_model

        model = create_model(self.model_name, epsilon=epsilon, delta=delta, seed=seed, **model_options)
        # The target must survive the release: the model's pre-flight refuses early if it cannot.
        extra = {"target": self.target} if self.target is not None and _accepts(model.fit, "target") else {}
        return model.fit(train, schema=self.schema, progress=progress, unit=self.unit or ROW, **extra)

    def write(self, model, directory: Path, count: int | None, seed: int) -> tuple[list[str], int]:
        from .sampling import write_csv

        n = int(round(model.n_rows_)) if count is None else count
        write_csv(model, max(n, 1), directory / "synthetic.csv", seed=seed, excel_safe=self.excel_safe)
        return ["synthetic.csv"], max(n, 1)

    def read_synthetic(self, directory: Path, text: tuple[str, ...] = ()) -> pd.DataFrame:
        """The synthetic rows as an analyst reads them (the audit reads the file, not the model);
        ``text`` columns as text, as the real ones were read (zip codes ``02134`` keep their zeros)."""
        frame = pd.read_csv(directory / "synthetic.csv", nrows=AUDIT_SYNTHETIC_ROWS, low_memory=False,
                            keep_default_na=False, na_values=list(MISSING_MARKERS),
                            dtype={name: str for name in text} or None)
        if self.excel_safe:  # the audit compares values, not their spreadsheet-safe spelling
            from .sampling import undo_excel_safe

            frame = undo_excel_safe(frame)
        return frame

    def audit(self, model, train: pd.DataFrame, holdout: pd.DataFrame | None, directory: Path, *,
              holdout_fraction: float, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(public audit: DP figures only; steward audit: exact, not for release)."""
        from ..audit import audit as exact_audit
        from .audit import public_audit

        categorical = {column.name for column in model.schema_ if column.type == "categorical"}
        text = tuple(name for name in train.columns if name in categorical and train[name].dtype == object) \
            if isinstance(train, pd.DataFrame) else ()
        synthetic = self.read_synthetic(directory, text)
        if self.engine is not None:
            train, holdout = self._audit_sample(model, train, holdout, holdout_fraction)
        column = None if self.unit is None else self.unit.column
        units = holdout_units = None
        if column is not None:  # rows without a unit were never read by the fit; the audit leaves them out too
            train = train[train[column].notna()].reset_index(drop=True)
            units = unit_codes(train[column])[0]
            holdout_units = None if holdout is None else unit_codes(holdout[column])[0]
        # The real rows read as the model read them: a value that does not fit its column's
        # type is missing, so one odd cell cannot stop the audit (and with it the release).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SynthdataWarning)  # the fit already warned
            train = model.schema_.conform(train)
            holdout = None if holdout is None else model.schema_.conform(holdout)
        public = public_audit(model, train, holdout, synthetic, target=self.target,
                              holdout_fraction=holdout_fraction, seed=seed, units=units, holdout_units=holdout_units)
        steward = exact_audit(train, synthetic, holdout=holdout,
                              target=self.target if self.target in model.columns_ else None,
                              schema=model.schema_, epsilon=model.epsilon, delta=model.delta_, seed=seed)
        steward["rows"] = {**steward.get("rows", {}), "input": self._input_rows()}
        if self.engine is not None:
            public["sample"] = {"rate": self._audit_rates, "note": "figures on real rows are computed on a uniform "
                                "sample of each side, at rates set from DP counts"}
            steward["sample"] = {"rate": self._audit_rates, "train_rows": len(train),
                                 "holdout_rows": 0 if holdout is None else len(holdout)}
        if column is not None:
            from .audit import unit_membership

            steward["membership_per_unit"] = unit_membership(model, train, holdout, synthetic, units=units,
                                                             holdout_units=holdout_units, seed=seed)
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
            "excluded_columns": [e.name for e in model.schema_.excluded]
            + ([self.unit.column] if self.unit is not None else []),
            **({"privacy_unit": model.units_, f"{model.unit_.noun}s_train_dp": int(round(model.n_units_))}
               if self.unit is not None and getattr(model, "units_", None) else {}),
        }

    def steward_data(self, train: pd.DataFrame, holdout: pd.DataFrame | None) -> dict[str, Any]:
        """Exact facts for the steward's eyes only."""
        if self.engine is not None:
            return {"input_rows": self._input_rows(), "rows_train": len(train),
                    "rows_holdout": 0 if holdout is None else len(holdout), "source": self.source,
                    "engine": self.engine.name}
        data = {"input_rows": len(self.table.frame), "rows_train": len(train),
                "rows_holdout": 0 if holdout is None else len(holdout), "source": os.fspath(self.source)}
        if self.unit is not None:
            column = self.unit.column
            per_unit = train[column].value_counts()
            data["privacy_unit"] = {
                "column": column,
                "rows_without_unit": int(self.table.frame[column].isna().sum()),
                "units_train": int(per_unit.size),
                "units_holdout": 0 if holdout is None else int(holdout[column].nunique()),
                "rows_per_unit_train": {"median": float(per_unit.median()) if per_unit.size else 0.0,
                                        "max": int(per_unit.max()) if per_unit.size else 0},
            }
        return data


    def _input_rows(self) -> int:
        return len(self.table.frame) if self.engine is None else self.engine.rows(None, "all")

    def _audit_sample(self, model, train: EngineView, holdout: EngineView | None,
                      holdout_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Uniform samples of each side for the audit, at rates from DP counts (never the exact ones)."""
        salt = int(NoiseSource().generator().integers(1, 2**62))
        rows = max(float(model.n_rows_), 1.0)
        rate = min(1.0, AUDIT_REAL_ROWS / rows)
        self._audit_rates = {"train": rate}
        sample = self.engine.sample(train.split, "train", rate, salt)
        held = None
        if holdout is not None:
            expected = holdout_count(rows, holdout_fraction)
            self._audit_rates["holdout"] = min(1.0, AUDIT_REAL_ROWS / max(expected, 1.0))
            held = self.engine.sample(holdout.split, "holdout", self._audit_rates["holdout"], salt)
        return sample, held


#: A column whose values repeat over rows this often (rows per distinct value, on average)
#: and that is named like an id looks like a person's id.
_MIN_ROWS_PER_ID = 1.2


def person_id_candidates(frame: pd.DataFrame) -> list[tuple[str, int, int]]:
    """Columns that look like a person's id repeated over rows: ``(name, distinct values, rows)``.

    For ``synthdata inspect`` only (the steward's eyes; nothing here is released): a
    column named like an id (``patient_id``, ``CustomerID``) whose values repeat — a
    few rows per value on average — yet with too many values to be a category code.
    """
    out = []
    for name in frame.columns:
        values = frame[name].dropna()
        if len(values) < 20 or not ID_NAME.search(str(name)):
            continue
        distinct = int(values.nunique())
        if distinct >= 20 and distinct * _MIN_ROWS_PER_ID <= len(values):
            out.append((str(name), distinct, int(len(values))))
    return out


def _accepts(function: Callable, name: str) -> bool:
    import inspect

    return name in inspect.signature(function).parameters
