"""Tabular encoding fitted with differential privacy: every column becomes discrete levels.

Nothing here reads the real rows outside the privacy budget. :meth:`TabularEncoder.fit`
makes one Gaussian measurement of every column's histogram (charged to the
:class:`~synthdata.privacy.PrivacyLedger`) and derives everything else from it:

* Numbers are first rounded to ``digits`` significant digits — a public grid that needs
  no bounds — and a rounded value is released only if its noisy count clears a
  threshold, so a value held by one person never is (a Gaussian sparse histogram; its
  failure probability is an additive delta). Released values give the column's range,
  its quantile levels and its point masses (capital gains of exactly 0 keep their share).
* Categories are released the same way: a value too rare to clear the threshold never
  appears in the output. Categories, bounds or booleans the schema declares public are
  counted over the declared domain without a threshold.
* Missing values are a level of their own, so they come out at a realistic rate.

The released counts are also the 1-way marginals the generator is trained to match.
Encoding the training rows with these levels is post-processing of the released values
plus the rows themselves, which only ever reach later stages through DP mechanisms.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .errors import SynthdataWarning
from .privacy import PrivacyLedger, gaussian_threshold
from .schema import Column, Schema

__all__ = ["ColumnCode", "TabularEncoder", "round_significant"]

_DAY_NS = 86_400 * 10**9


def round_significant(values: np.ndarray, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Round to ``digits`` significant digits: returns (integer mantissas, exponents).

    ``value ≈ mantissa * 10**exponent``; zero is (0, 0). A public grid: it depends on
    nothing but the value itself.
    """
    values = np.asarray(values, dtype=float)
    magnitude = np.floor(np.log10(np.abs(np.where(values == 0, 1.0, values))))
    exponent = (magnitude - digits + 1).astype(np.int64)
    mantissa = np.round(values / np.power(10.0, exponent)).astype(np.int64)
    # Rounding can carry into an extra digit (99.7 -> 100 at 2 digits): renormalise.
    carry = np.abs(mantissa) >= 10**digits
    mantissa = np.where(carry, np.round(mantissa / 10).astype(np.int64), mantissa)
    exponent = np.where(carry, exponent + 1, exponent)
    exponent = np.where(mantissa == 0, 0, exponent)
    return mantissa, exponent


def _grid_value(mantissa: int, exponent: int) -> float:
    return float(f"{int(mantissa)}e{int(exponent)}")


@dataclass
class ColumnCode:
    """How one column maps to levels, learned privately. Plain data: saved as JSON.

    Each level is a list of ``points`` (values; ``None`` for the missing level) with
    noisy ``weights``; ``units`` is each point's rounding cell width (0 = exact).
    ``coarse`` maps each level to a coarser group used for 2-way marginals.
    """

    name: str
    kind: str
    dtype: str
    integer: bool
    levels: list[dict[str, Any]] = field(default_factory=list)
    coarse: list[int] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
    variances: list[float] = field(default_factory=list)
    bounds: list[float] | None = None
    datetime_format: str | None = None

    @property
    def size(self) -> int:
        return len(self.levels)

    @property
    def coarse_size(self) -> int:
        return max(self.coarse) + 1 if self.coarse else 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnCode:
        return cls(**data)


class TabularEncoder:
    """Discrete levels for every column of a schema, fitted with differential privacy.

    Keyword-only settings; learned state ends in ``_``.
    """

    def __init__(self, *, digits: int = 2, max_levels: int = 32, max_coarse: int = 8) -> None:
        self.digits = digits
        self.max_levels = max_levels
        self.max_coarse = max_coarse

    # ------------------------------------------------------------------ fit (private)

    def fit(self, frame: pd.DataFrame, schema: Schema, *, ledger: PrivacyLedger, noise_multiplier: float,
            threshold_delta: float, rng: np.random.Generator) -> TabularEncoder:
        """Measure every column's histogram once (one Gaussian release, charged to ``ledger``)."""
        columns = list(schema)
        sensitivity = math.sqrt(len(columns))  # one row adds 1 to one cell of each column
        sigma = noise_multiplier * sensitivity
        thresholded = [c for c in columns if not _public_domain(c)]
        fail = threshold_delta / max(len(thresholded), 1)
        self.threshold_ = gaussian_threshold(sigma=sigma, fail_probability=fail) if thresholded else 0.0
        self.sigma_ = sigma
        self.codes_ = []
        for column in columns:
            keys, values = self._keys(column, frame[column.name])
            self.codes_.append(self._measure(column, frame[column.name], keys, values, sigma, rng))
        ledger.gaussian(
            "preprocessing",
            sensitivity=sensitivity,
            sigma=sigma,
            mechanism="Gaussian sparse histogram per column (values below the threshold are not released)",
            parameters={
                "columns": len(columns),
                "significant_digits": self.digits,
                "threshold": round(self.threshold_, 3),
                "threshold_delta": threshold_delta if thresholded else 0.0,
            },
            extra_delta=threshold_delta if thresholded else 0.0,
        )
        return self

    def _keys(self, column: Column, series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
        """Per row: a hashable key of its grid cell (object array), and numeric values."""
        if column.type in ("numerical", "datetime"):
            values = _to_number(column, series)
            if column.bounds is not None:
                low, high = _numeric_bounds(column)
                values = np.where(np.isnan(values), np.nan, np.clip(values, low, high))
            digits = self.digits + (2 if column.type == "datetime" else 0)
            mantissa, exponent = round_significant(np.nan_to_num(values), digits)
            keys = np.empty(len(values), dtype=object)
            keys[:] = list(zip(mantissa.tolist(), exponent.tolist()))
            keys[np.isnan(values)] = None
            return keys, values
        keys = series.astype(object).where(series.notna(), None).to_numpy()
        return keys, None

    def _measure(self, column: Column, series: pd.Series, keys: np.ndarray, values: np.ndarray | None,
                 sigma: float, rng: np.random.Generator) -> ColumnCode:
        observed = pd.Series(keys, dtype=object).value_counts(dropna=False)
        counts = {key: int(c) for key, c in observed.items()}
        missing_count = sum(c for k, c in counts.items() if k is None or (isinstance(k, float) and math.isnan(k)))
        counts = {k: c for k, c in counts.items() if not (k is None or (isinstance(k, float) and math.isnan(k)))}
        if _public_domain(column):
            domain = [True, False] if column.type == "boolean" else list(column.categories)
            noisy = {value: counts.get(value, 0) + rng.normal(0, sigma) for value in domain}
            released = {value: c for value, c in noisy.items() if c > 0}
        else:
            noisy = {key: c + rng.normal(0, sigma) for key, c in counts.items()}
            released = {key: c for key, c in noisy.items() if c > self.threshold_}
        # The missing level is public (any column may have gaps); its count is noisy and
        # a count indistinguishable from noise is read as "no missing values".
        noisy_missing = missing_count + rng.normal(0, sigma)
        code = ColumnCode(
            name=column.name,
            kind=column.type,
            dtype=str(series.dtype),
            integer=bool(column.integer),
            bounds=list(_numeric_bounds(column)) if column.bounds is not None else None,
            datetime_format=column.datetime_format,
        )
        if column.type in ("numerical", "datetime"):
            levels = self._numeric_levels(released)
            if not levels and column.bounds is not None:
                low, high = _numeric_bounds(column)
                levels = [{"points": [(low + high) / 2], "units": [high - low], "weights": [1.0]}]
        else:
            levels = [{"points": [value], "units": [0.0], "weights": [float(c)]}
                      for value, c in sorted(released.items(), key=lambda kv: -kv[1])]
        if not levels:
            warnings.warn(
                f"column {column.name!r}: no value is frequent enough to be released at this privacy "
                f"level (noisy count above {self.threshold_:.0f}); it will be empty in the synthetic data. "
                "Declare public bounds or categories in the schema, or raise epsilon.",
                SynthdataWarning,
                stacklevel=4,
            )
        if noisy_missing > 3 * sigma or not levels:
            levels.append({"points": [None], "units": [0.0], "weights": [max(noisy_missing, 1.0)]})
        code.levels = levels
        code.counts = [float(sum(level["weights"])) for level in levels]
        code.variances = [float(len(level["weights"]) * sigma**2) for level in levels]
        code.coarse = self._coarse(code)
        return code

    def _numeric_levels(self, released: dict[tuple[int, int], float]) -> list[dict[str, Any]]:
        if not released:
            return []
        items = sorted(((_grid_value(m, e), 10.0**e if m != 0 else 0.0, w) for (m, e), w in released.items()))
        points = [p for p, _, _ in items]
        units = [u for _, u, _ in items]
        weights = np.array([w for _, _, w in items])
        groups = _split_by_mass(weights, self.max_levels)
        return [{"points": [points[i] for i in g], "units": [units[i] for i in g],
                 "weights": [float(weights[i]) for i in g]} for g in groups]

    def _coarse(self, code: ColumnCode) -> list[int]:
        """Group levels for 2-way marginals: mass-balanced runs (numbers) or the top values."""
        present = [i for i, level in enumerate(code.levels) if level["points"] != [None]]
        mapping = [0] * code.size
        budget = self.max_coarse - (1 if len(present) < code.size else 0)
        if code.kind in ("numerical", "datetime"):
            weights = np.array([code.counts[i] for i in present])
            for group, members in enumerate(_split_by_mass(weights, budget) if present else []):
                for member in members:
                    mapping[present[member]] = group
            top = len(_split_by_mass(weights, budget)) if present else 0
        else:
            ranked = sorted(present, key=lambda i: -code.counts[i])
            for rank, index in enumerate(ranked):
                mapping[index] = min(rank, budget - 1)
            top = min(len(ranked), budget)
        for i in range(code.size):
            if i not in present:
                mapping[i] = top
        return mapping

    # ------------------------------------------------------------------ encode / decode

    def encode(self, frame: pd.DataFrame, schema: Schema, *, rng: np.random.Generator) -> np.ndarray:
        """Level index of every row and column (rows x columns, int64)."""
        out = np.empty((len(frame), len(self.codes_)), dtype=np.int64)
        for j, (code, column) in enumerate(zip(self.codes_, schema)):
            out[:, j] = self._encode_column(code, column, frame[column.name], rng)
        return out

    def _encode_column(self, code: ColumnCode, column: Column, series: pd.Series,
                       rng: np.random.Generator) -> np.ndarray:
        n = len(series)
        index = np.full(n, -1, dtype=np.int64)
        missing_level = next((i for i, lv in enumerate(code.levels) if lv["points"] == [None]), None)
        if code.kind in ("numerical", "datetime"):
            values = _to_number(column, series)
            if code.bounds is not None:
                values = np.clip(values, *code.bounds)
            present = [(p, i) for i, lv in enumerate(code.levels) for p in lv["points"] if p is not None]
            if present:
                present.sort()
                grid = np.array([p for p, _ in present])
                level_of = np.array([i for _, i in present])
                ok = ~np.isnan(values)
                # Nearest released point: a value that was not released moves to its neighbour.
                pos = np.clip(np.searchsorted(grid, values[ok]), 1, len(grid) - 1) if len(grid) > 1 else np.zeros(ok.sum(), int)
                if len(grid) > 1:
                    left = grid[pos - 1]
                    pos = np.where(np.abs(values[ok] - left) <= np.abs(grid[pos] - values[ok]), pos - 1, pos)
                index[ok] = level_of[pos]
            is_missing = np.isnan(values)
        else:
            lookup = {lv["points"][0]: i for i, lv in enumerate(code.levels) if lv["points"] != [None]}
            keys = series.astype(object).where(series.notna(), None).to_numpy()
            index[:] = [lookup.get(k, -1) if k is not None else -1 for k in keys]
            is_missing = pd.isna(series).to_numpy()
        if missing_level is not None:
            index[is_missing] = missing_level
        # Values never released (rare categories, gaps without a missing level) are
        # reassigned at random in proportion to the released counts.
        unassigned = index < 0
        if unassigned.any():
            weights = np.maximum(np.array(code.counts), 0) + 1e-9
            index[unassigned] = rng.choice(code.size, size=int(unassigned.sum()), p=weights / weights.sum())
        return index

    def decode(self, levels: np.ndarray, *, rng: np.random.Generator) -> pd.DataFrame:
        """Rows of level indices back to values with the input's column types."""
        data = {}
        for j, code in enumerate(self.codes_):
            data[code.name] = _decode_column(code, levels[:, j], rng)
        return pd.DataFrame(data)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "digits": self.digits,
            "max_levels": self.max_levels,
            "max_coarse": self.max_coarse,
            "threshold": self.threshold_,
            "sigma": self.sigma_,
            "codes": [_jsonable(code.to_dict()) for code in self.codes_],
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TabularEncoder:
        encoder = cls(digits=state["digits"], max_levels=state["max_levels"], max_coarse=state["max_coarse"])
        encoder.threshold_ = state["threshold"]
        encoder.sigma_ = state["sigma"]
        encoder.codes_ = [ColumnCode.from_dict(c) for c in state["codes"]]
        return encoder


# ---------------------------------------------------------------------- helpers


def _public_domain(column: Column) -> bool:
    return column.type == "boolean" or (column.type == "categorical" and column.categories is not None)


def _numeric_bounds(column: Column) -> tuple[float, float]:
    low, high = column.bounds
    if column.type == "datetime":
        return (pd.Timestamp(low).value / _DAY_NS, pd.Timestamp(high).value / _DAY_NS)
    return float(low), float(high)


def _to_number(column: Column, series: pd.Series) -> np.ndarray:
    if column.type == "datetime":
        if not ptypes.is_datetime64_any_dtype(series.dtype):
            series = pd.to_datetime(series.astype(object).where(series.notna(), None),
                                    format=column.datetime_format, errors="coerce")
        stamps = series.astype("datetime64[ns]")
        return np.where(stamps.isna(), np.nan, stamps.astype("int64") / _DAY_NS)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def _split_by_mass(weights: np.ndarray, parts: int) -> list[list[int]]:
    """Consecutive groups of indices with about equal total weight; heavy ones alone."""
    n = len(weights)
    if n <= parts:
        return [[i] for i in range(n)]
    total = float(np.sum(np.maximum(weights, 0)))
    target = total / parts
    groups, current, mass = [], [], 0.0
    for i, w in enumerate(np.maximum(weights, 0)):
        if current and (w >= target or mass >= target):
            groups.append(current)
            current, mass = [], 0.0
        current.append(i)
        mass += w
        if w >= target:
            groups.append(current)
            current, mass = [], 0.0
    if current:
        groups.append(current)
    # Merge the lightest neighbours until at most `parts` groups remain.
    while len(groups) > parts:
        masses = [sum(weights[i] for i in g) for g in groups]
        k = min(range(len(groups) - 1), key=lambda i: masses[i] + masses[i + 1])
        groups[k:k + 2] = [groups[k] + groups[k + 1]]
    return groups


def _decode_column(code: ColumnCode, levels: np.ndarray, rng: np.random.Generator) -> pd.Series:
    n = len(levels)
    if code.kind in ("numerical", "datetime"):
        values = np.full(n, np.nan)
        for i, level in enumerate(code.levels):
            rows = np.flatnonzero(levels == i)
            if not len(rows) or level["points"] == [None]:
                continue
            weights = np.maximum(np.array(level["weights"]), 1e-9)
            pick = rng.choice(len(weights), size=len(rows), p=weights / weights.sum())
            points = np.array(level["points"])[pick]
            units = np.array(level["units"])[pick]
            values[rows] = points + (rng.random(len(rows)) - 0.5) * units
        if code.bounds is not None:
            values = np.clip(values, *code.bounds)
        if code.kind == "datetime":
            stamps = pd.to_datetime(np.round(values * _DAY_NS / 1e9) * 1e9, unit="ns")
            return _restore_datetime(code, pd.Series(stamps))
        if code.integer:
            values = np.round(values)
        return _restore_number(code, values)
    lookup = np.empty(code.size, dtype=object)
    for i, level in enumerate(code.levels):
        lookup[i] = level["points"][0]
    out = pd.Series(lookup[levels], dtype=object)
    if code.kind == "boolean":
        if out.isna().any() or code.dtype == "object":
            return out
        return out.astype(bool)
    if code.dtype == "category":
        return out.astype("category")
    return out


def _restore_number(code: ColumnCode, values: np.ndarray) -> pd.Series:
    dtype = code.dtype
    has_missing = bool(np.isnan(values).any())
    if dtype.startswith(("int", "uint")):
        return pd.Series(values).astype("Int64" if has_missing else dtype)
    if dtype.startswith(("Int", "UInt")):
        return pd.Series(values).astype(dtype)
    return pd.Series(values, dtype=dtype if dtype.startswith("float") else "float64")


def _restore_datetime(code: ColumnCode, stamps: pd.Series) -> pd.Series:
    if code.dtype.startswith("datetime64"):
        return stamps
    return stamps.dt.strftime(code.datetime_format).where(stamps.notna(), None)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
