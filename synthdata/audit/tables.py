"""Bring the three tables of an audit onto one footing before anything is measured.

The synthetic table may come from another tool: its columns in another order, integers
written as ``39.0``, booleans as ``1``/``0``, extra columns of its own. Every audit
metric compares values across tables, so all of that is settled once, here:

* the audited columns are the schema's (when given) or the real training table's; a
  column that the synthetic table or the holdout lacks is refused, naming all of them;
  extra columns are ignored, with a note;
* numbers become floats (``39`` equals ``39.0``), dates nanosecond timestamps, and
  categories canonical text (``1``, ``1.0`` and ``"1"`` agree; ``True`` and ``"true"``
  agree in a boolean column); missing stays missing.

The column *kind* (:class:`~synthdata.schema.ColumnKind`: numerical, datetime, categorical,
boolean) is read off the schema, or off the real training table's dtypes, never off the
synthetic table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Number

import numpy as np
import pandas as pd

from ..errors import DataError
from ..ingest import Table
from ..schema import Schema, parse_datetimes
from ..schema import ColumnKind
from .quality import _as_float

__all__ = ["AuditTables", "prepare"]

_DEFAULT_LABELS = {
    "real_train": "the real training table",
    "synthetic": "the synthetic table",
    "holdout": "the holdout table",
}
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class AuditTables:
    """The audit's tables, aligned on ``columns`` and normalised (see the module doc).

    ``labels`` name each table in messages (a file path, or "synthetic" and the like);
    ``notes`` say what was ignored or sampled on the way.
    """

    train: pd.DataFrame
    synthetic: pd.DataFrame
    holdout: pd.DataFrame | None
    kinds: dict[str, str]
    labels: dict[str, str]
    notes: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return list(self.kinds)

    @property
    def numeric(self) -> list[str]:
        """Columns measured as numbers (numeric and datetime)."""
        return [c for c, k in self.kinds.items() if ColumnKind(k).compares_as_number]

    @property
    def categorical(self) -> list[str]:
        """Columns measured as categories (categorical and boolean)."""
        return [c for c, k in self.kinds.items() if k in ("categorical", "boolean")]


def prepare(
    real_train: pd.DataFrame | Table,
    synthetic: pd.DataFrame | Table,
    holdout: pd.DataFrame | Table | None = None,
    *,
    schema: Schema | None = None,
) -> AuditTables:
    """Align and normalise the tables; refuse missing columns in one line."""
    frames, labels, notes = {}, {}, []
    for role, data in (("real_train", real_train), ("synthetic", synthetic), ("holdout", holdout)):
        if data is None:
            continue
        frame, labels[role] = _frame(data, role)
        if isinstance(data, Table) and data.note:
            notes.append(f"{labels[role]}: {data.note}")
        if len(frame) == 0:
            raise DataError(f"{labels[role]} has no rows; an audit needs rows in every table")
        frames[role] = frame.reset_index(drop=True)

    kinds = _kinds(frames["real_train"], schema, labels["real_train"], notes)
    for role in frames:
        _check_columns(frames[role], kinds, labels[role], labels["real_train"], notes)
    formats = {c.name: c.datetime_format for c in schema if c.type == "datetime"} if schema is not None else {}
    normalised = {role: _normalise(frame, kinds, labels[role], formats) for role, frame in frames.items()}
    return AuditTables(
        train=normalised["real_train"],
        synthetic=normalised["synthetic"],
        holdout=normalised.get("holdout"),
        kinds=kinds,
        labels=labels,
        notes=tuple(notes),
    )


def _frame(data: pd.DataFrame | Table, role: str) -> tuple[pd.DataFrame, str]:
    if isinstance(data, Table):
        return data.frame, data.source
    if isinstance(data, pd.DataFrame):
        return data, _DEFAULT_LABELS[role]
    raise DataError(f"{role} must be a pandas DataFrame or a synthdata Table, got {type(data).__name__}")


def _kinds(train: pd.DataFrame, schema: Schema | None, label: str, notes: list[str]) -> dict[str, ColumnKind]:
    if schema is None:
        return {name: ColumnKind.of_dtype(train[name]) for name in train.columns}
    absent = [c.name for c in schema if c.name not in train.columns]
    if absent:
        raise DataError(f"{label} lacks the schema's column(s) {_names(absent)}; audit the table the schema describes")
    if schema.excluded:
        notes.append(f"columns the schema excludes are not audited: {_names([e.name for e in schema.excluded])}")
    return {c.name: ColumnKind(c.type) for c in schema}


def _check_columns(frame: pd.DataFrame, kinds: dict[str, str], label: str, train_label: str, notes: list[str]) -> None:
    absent = [name for name in kinds if name not in frame.columns]
    if absent:
        raise DataError(
            f"{label} lacks column(s) {_names(absent)} of {train_label}; the audit compares the same columns "
            "in every table (give a schema that leaves them out, or add them)"
        )
    extra = [str(name) for name in frame.columns if name not in kinds]
    if extra:
        notes.append(f"{label}: column(s) {_names(extra)} are not audited (not among the audited columns)")


def _normalise(frame: pd.DataFrame, kinds: dict[str, str], label: str,
               formats: dict[str, str | None]) -> pd.DataFrame:
    columns = {}
    for name, kind in kinds.items():
        series = frame[name]
        if kind == "datetime":
            columns[name] = _timestamps(series, name, label, formats.get(name))
        elif kind == ColumnKind.NUMERICAL:
            columns[name] = _as_float(series, kind, name, label)
        else:
            columns[name] = _canonical_text(series, boolean=kind == "boolean")
    return pd.DataFrame(columns)


def _timestamps(series: pd.Series, name: str, label: str, datetime_format: str | None = None) -> np.ndarray:
    """Dates as naive nanosecond timestamps (NaT for missing).

    Text is read with the schema's format where there is one (every cell at once, as the
    model read it); without one, or where a cell does not fit it, pandas reads each cell.
    """
    if datetime_format and not pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = parse_datetimes(series, datetime_format)
        if not (parsed.isna() & series.notna()).any():
            series = parsed
    values = _as_float(series, "datetime", name, label)
    stamps = np.full(values.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    present = ~np.isnan(values)
    stamps[present] = values[present].astype(np.int64).view("datetime64[ns]")
    return stamps


def _canonical_text(series: pd.Series, *, boolean: bool) -> np.ndarray:
    """Categories as text that agrees across tools: whole numbers without '.0'."""
    codes, levels = pd.factorize(series, use_na_sentinel=True)
    canonical = np.array([_canonical(level, boolean) for level in levels] + [np.nan], dtype=object)
    return canonical[codes]  # code -1 (missing) picks the trailing NaN


def _canonical(value: object, boolean: bool) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return np.nan
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, Number):
        number = float(value)
        if math.isnan(number):
            return np.nan
        value = str(int(number)) if number.is_integer() else repr(number)
    text = str(value)
    if boolean:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return "True"
        if lowered in _FALSE:
            return "False"
    return text


def _names(names: list[str], most: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
