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
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SynthdataWarning
from ..privacy import PrivacyLedger, gaussian_threshold
from ..schema import Column, Schema, parse_datetimes

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


def _cell(mantissa: int, exponent: int, digits: int) -> tuple[float, float]:
    """The interval of values that round to ``mantissa * 10**exponent``.

    Half a unit either side, except at a power of ten, where the values just below
    round with one more digit of precision (at 2 digits, 10 holds [9.95, 10.5)).
    """
    if mantissa == 0:
        return 0.0, 0.0
    value, unit = _grid_value(mantissa, exponent), 10.0**exponent
    low, high = value - unit / 2, value + unit / 2
    if abs(mantissa) == 10 ** (digits - 1):
        if mantissa > 0:
            low = value - unit / 20
        else:
            high = value + unit / 20
    return low, high


@dataclass
class ColumnCode:
    """How one column maps to levels, learned privately. Plain data: saved as JSON.

    Each level is a list of ``points`` (values; ``None`` for the missing level) with
    noisy ``weights``; numbers are drawn uniformly from ``[lows, highs)`` of their point.
    ``coarse`` maps each level to a coarser group used for 2-way marginals.
    """

    name: str
    kind: str
    dtype: str
    integer: bool
    levels: list[dict[str, Any]] = field(default_factory=list)
    coarse: list[int] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
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

    def fit(self, frame: pd.DataFrame, schema: Schema, *, ledger: PrivacyLedger, threshold_delta: float,
            step: str = "preprocessing", unit_rows: int = 1) -> TabularEncoder:
        """Measure every column's histogram once: one Gaussian release at the noise the
        ledger's plan set for ``step``, charged to ``ledger``.

        A number is counted twice, at ``digits`` and at ``digits - 1`` significant digits:
        where the fine cells are too sparse to clear the threshold (the tails), the coarse
        cell still carries their mass. ``unit_rows`` is the most rows one unit of privacy
        holds: its rows can move one cell of each histogram by that much.
        """
        columns = list(schema)
        resolutions = [self._resolutions(column) for column in columns]
        histograms = sum(len(r) for r in resolutions)
        sensitivity = unit_rows * math.sqrt(histograms)
        sigma = ledger.planned_multiplier(step) * sensitivity
        thresholded = sum(len(r) for c, r in zip(columns, resolutions) if not _public_domain(c))
        # A unit can put up to unit_rows values no one else holds into each histogram.
        fail = threshold_delta / max(thresholded * unit_rows, 1)
        self.threshold_ = (gaussian_threshold(sigma=sigma, fail_probability=fail, max_count=unit_rows)
                           if thresholded else 0.0)
        self.sigma_ = sigma
        exact = [_exact_counts(column, frame[column.name], digits) for column, digits in zip(columns, resolutions)]
        vector = np.concatenate([part for counts in exact for part in counts.parts()] or [np.zeros(0, np.int64)])
        noisy = ledger.noisy(
            step, vector, sensitivity=sensitivity, integer=True,
            mechanism="Gaussian sparse histograms per column (values below the threshold are not released)",
            parameters={
                "columns": len(columns),
                "histograms": histograms,
                "significant_digits": self.digits,
                "threshold": round(self.threshold_, 3),
                "threshold_delta": threshold_delta if thresholded else 0.0,
            },
            extra_delta=threshold_delta if thresholded else 0.0,
        ).astype(float)
        offset, self.codes_ = 0, []
        for column, counts in zip(columns, exact):
            size = sum(len(part) for part in counts.parts())
            self.codes_.append(self._build(column, counts, noisy[offset:offset + size], sigma))
            offset += size
        return self

    def _resolutions(self, column: Column) -> list[int | None]:
        """Significant digits of each histogram of a column (None: exact values)."""
        if column.type in ("numerical", "datetime"):
            fine = self.digits + (2 if column.type == "datetime" else 0)
            return [fine, fine - 1] if fine > 1 else [fine]
        return [None]

    def _build(self, column: Column, counts: _ExactCounts, noisy: np.ndarray, sigma: float) -> ColumnCode:
        """A column's levels from its noisy counts: thresholded cells, or the declared domain."""
        code = ColumnCode(
            name=column.name,
            kind=column.type,
            dtype=_output_dtype(column),
            integer=bool(column.integer),
            bounds=list(_numeric_bounds(column)) if column.bounds is not None else None,
            datetime_format=column.datetime_format,
        )
        parts = counts.split(noisy)
        if column.type in ("numerical", "datetime"):
            histograms = [(digits, {key: c for key, c in zip(keys, part) if c > self.threshold_})
                          for (digits, keys), part in zip(counts.histograms, parts[:-1])]
            levels = self._numeric_levels(histograms)
            if not levels and column.bounds is not None:
                low, high = _numeric_bounds(column)
                levels = [{"points": [(low + high) / 2], "lows": [low], "highs": [high], "weights": [1.0]}]
        else:
            (_, keys), = counts.histograms
            if _public_domain(column):
                released = {value: c for value, c in zip(keys, parts[0]) if c > 0}
            else:
                released = {value: c for value, c in zip(keys, parts[0]) if c > self.threshold_}
            levels = [{"points": [value], "lows": [None], "highs": [None], "weights": [float(c)]}
                      for value, c in sorted(released.items(), key=lambda kv: str(kv[0]))]
        # The missing level is public (any column may have gaps); its count is noisy, and
        # a count indistinguishable from noise is read as "no missing values".
        noisy_missing = float(parts[-1][0])
        if not levels:
            warnings.warn(
                f"column {column.name!r}: no value is frequent enough to be released at this privacy "
                f"level (noisy count above {self.threshold_:.0f}); it will be empty in the synthetic data. "
                "Declare public bounds or categories in the schema, or raise epsilon.",
                SynthdataWarning,
                stacklevel=4,
            )
        if noisy_missing > 3 * sigma or not levels:
            levels.append({"points": [None], "lows": [None], "highs": [None], "weights": [max(noisy_missing, 1.0)]})
        code.levels = levels
        code.counts = [float(sum(level["weights"])) for level in levels]
        code.coarse = self._coarse(code)
        return code

    def _numeric_levels(self, histograms: list[tuple[int, dict[tuple[int, int], float]]]) -> list[dict[str, Any]]:
        """Released cells -> weighted points; coarse cells carry the mass their fine cells lost."""
        fine_digits, fine = histograms[0]
        points = []  # (value, low, high, weight, digits)
        for (m, e), w in fine.items():
            low, high = _cell(m, e, fine_digits)
            points.append((_grid_value(m, e), low, high, w, fine_digits))
        if len(histograms) > 1:
            coarse_digits, coarse = histograms[1]
            inside: dict[tuple[int, int], float] = {}
            for value, _, _, w, _ in points:
                m, e = round_significant(np.array([value]), coarse_digits)
                key = (int(m[0]), int(e[0]))
                inside[key] = inside.get(key, 0.0) + w
            for (m, e), w in coarse.items():
                residual = w - inside.get((m, e), 0.0)
                # A remainder below the release threshold is indistinguishable from noise;
                # spreading it over the coarse cell would invent values (ages 15-19
                # where the data starts at 20).
                if residual > self.threshold_:
                    low, high = _cell(m, e, coarse_digits)
                    points.append((_grid_value(m, e), low, high, residual, coarse_digits))
        if not points:
            return []
        points.sort()
        weights = np.array([p[3] for p in points])
        return [{"points": [points[i][0] for i in g], "lows": [points[i][1] for i in g],
                 "highs": [points[i][2] for i in g], "weights": [float(weights[i]) for i in g],
                 "digits": [points[i][4] for i in g]}
                for g in _split_by_mass(weights, self.max_levels)]

    def _coarse(self, code: ColumnCode) -> list[int]:
        """Group levels for 2-way marginals: mass-balanced runs (numbers) or the top values."""
        present = [i for i, level in enumerate(code.levels) if level["points"] != [None]]
        mapping = [0] * code.size
        budget = self.max_coarse - (1 if len(present) < code.size else 0)
        if code.kind in ("numerical", "datetime"):
            groups = _split_by_mass(np.array([code.counts[i] for i in present]), budget) if present else []
            for group, members in enumerate(groups):
                for member in members:
                    mapping[present[member]] = group
            top = len(groups)
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
            index = _numeric_levels_of(code, values)
            is_missing = np.isnan(values)
        else:
            lookup = {lv["points"][0]: i for i, lv in enumerate(code.levels) if lv["points"] != [None]}
            keys = _category_keys(column, series)
            index[:] = [lookup.get(k, -1) if k is not None else -1 for k in keys]
            is_missing = np.asarray([k is None for k in keys], dtype=bool)
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
        """Rows of level indices (rows x columns) back to values with the input's column types."""
        return pd.DataFrame({code.name: _to_pandas(code, raw) for code, raw in self._draw(levels, rng)})

    def decode_arrow(self, levels: np.ndarray, *, rng: np.random.Generator) -> pa.Table:
        """As :meth:`decode`, straight to an Arrow table (for CSV output: no Python objects).

        Draws the same values as :meth:`decode` from the same ``rng`` state.
        """
        return pa.table({code.name: _to_arrow(code, raw) for code, raw in self._draw(levels, rng)})

    def _draw(self, levels: np.ndarray, rng: np.random.Generator):
        """(code, raw values) per column: numbers as floats with NaN, categories as level indices."""
        for j, code in enumerate(self.codes_):
            column = levels[:, j]
            if code.kind in ("numerical", "datetime"):
                yield code, _draw_numbers(code, column, rng)
            else:
                yield code, column

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


# ---------------------------------------------------------------------- exact counts (inside the mechanism)


@dataclass
class _ExactCounts:
    """One column's exact histograms before noise: (resolution, keys) with their counts, and the missing count.

    Keys of a thresholded histogram are the values present in the data (a sparse
    histogram); over a declared domain, every declared value, present or not.
    """

    histograms: list[tuple[int | None, list[Any]]]
    counts: list[np.ndarray]
    missing: int

    def parts(self) -> list[np.ndarray]:
        return [*self.counts, np.asarray([self.missing], dtype=np.int64)]

    def split(self, noisy: np.ndarray) -> list[np.ndarray]:
        out, offset = [], 0
        for part in self.parts():
            out.append(noisy[offset:offset + len(part)])
            offset += len(part)
        return out


def _exact_counts(column: Column, series: pd.Series, resolutions: list[int | None]) -> _ExactCounts:
    if column.type in ("numerical", "datetime"):
        values = _to_number(column, series)
        if column.bounds is not None:
            values = np.where(np.isnan(values), np.nan, np.clip(values, *_numeric_bounds(column)))
        missing = int(np.isnan(values).sum())
        present = values[~np.isnan(values)]
        histograms, counts = [], []
        for digits in resolutions:
            mantissa, exponent = round_significant(present, digits)
            cells = pd.Series(list(zip(mantissa.tolist(), exponent.tolist())), dtype=object).value_counts(sort=False)
            histograms.append((digits, list(cells.index)))
            counts.append(cells.to_numpy(dtype=np.int64))
        return _ExactCounts(histograms, counts, missing)
    keys = _category_keys(column, series)
    missing = int(sum(k is None for k in keys))
    observed = pd.Series([k for k in keys if k is not None], dtype=object).value_counts(sort=False)
    if _public_domain(column):
        domain = [True, False] if column.type == "boolean" else list(column.categories)
        values = np.asarray([int(observed.get(value, 0)) for value in domain], dtype=np.int64)
        return _ExactCounts([(None, domain)], [values], missing)
    return _ExactCounts([(None, list(observed.index))], [observed.to_numpy(dtype=np.int64)], missing)


def _category_keys(column: Column, series: pd.Series) -> list[Any]:
    """Category and boolean cells as plain values (None for missing); booleans read from their text."""
    keys = series.astype(object).where(series.notna(), None).tolist()
    if column.type == "boolean":
        return [_as_bool(k) for k in keys]
    return [k if k is None or isinstance(k, str) else _plain_category(k) for k in keys]


def _as_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "t", "yes", "y", "1", "1.0"):
        return True
    if text in ("false", "f", "no", "n", "0", "0.0"):
        return False
    return None


def _plain_category(value: Any) -> Any:
    """Numbers in a categorical column as text, so a category's label never depends on a dtype."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _output_dtype(column: Column) -> str:
    """The pandas dtype of a synthetic column: read off the schema, never off the input's dtypes."""
    if column.type == "numerical":
        return "int64" if column.integer else "float64"
    if column.type == "boolean":
        return "bool"
    if column.type == "datetime":
        return "object"
    return "object"


# ---------------------------------------------------------------------- helpers


def _numeric_levels_of(code: ColumnCode, values: np.ndarray) -> np.ndarray:
    """Level of each value: its released fine cell, else its coarse cell, else the nearest point."""
    index = np.full(len(values), -1, dtype=np.int64)
    ok = ~np.isnan(values)
    points = [(p, d, i) for i, lv in enumerate(code.levels) if lv["points"] != [None]
              for p, d in zip(lv["points"], lv.get("digits", [None] * len(lv["points"])))]
    if not points or not ok.any():
        return index
    for digits in sorted({d for _, d, _ in points if d is not None}, reverse=True):
        lookup = {}
        for p, d, i in points:
            if d == digits:
                m, e = round_significant(np.array([p]), digits)
                lookup[(int(m[0]), int(e[0]))] = i
        todo = ok & (index < 0)
        m, e = round_significant(np.nan_to_num(values[todo]), digits)
        index[todo] = pd.Series(list(zip(m.tolist(), e.tolist())), dtype=object).map(lookup).fillna(-1).to_numpy(np.int64)
    todo = ok & (index < 0)
    if todo.any():  # a value whose cells were not released moves to the nearest point
        grid = np.array(sorted(p for p, _, _ in points))
        level_of = np.array([i for _, _, i in sorted(points)])
        pos = np.clip(np.searchsorted(grid, values[todo]), 1, max(len(grid) - 1, 1)) if len(grid) > 1 \
            else np.zeros(int(todo.sum()), dtype=int)
        if len(grid) > 1:
            left = grid[pos - 1]
            pos = np.where(np.abs(values[todo] - left) <= np.abs(grid[pos] - values[todo]), pos - 1, pos)
        index[todo] = level_of[pos]
    return index


def _public_domain(column: Column) -> bool:
    return column.type == "boolean" or (column.type == "categorical" and column.categories is not None)


def _numeric_bounds(column: Column) -> tuple[float, float]:
    low, high = column.bounds
    if column.type == "datetime":
        return (pd.Timestamp(low).value / _DAY_NS, pd.Timestamp(high).value / _DAY_NS)
    return float(low), float(high)


def _to_number(column: Column, series: pd.Series) -> np.ndarray:
    if column.type == "datetime":
        series = parse_datetimes(series, column.datetime_format)
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
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


def _draw_numbers(code: ColumnCode, levels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A value for every row: a point of its level (by weight), uniform in the point's cell.

    Vectorised over rows: each level's points get cumulative weights running from the
    level's index to the next integer, so one ``searchsorted`` of ``level + uniform``
    picks the point of every row at once. The missing level is one point with NaN.
    """
    cumulative, lows, highs = [], [], []
    for i, level in enumerate(code.levels):
        if level["points"] == [None]:
            cumulative.append(i + 1.0)
            lows.append(np.nan)
            highs.append(np.nan)
            continue
        weights = np.maximum(np.asarray(level["weights"], dtype=float), 1e-9)
        steps = np.cumsum(weights) / weights.sum()
        steps[-1] = 1.0
        cumulative.extend(i + steps)
        lows.extend(level["lows"])
        highs.extend(level["highs"])
    lows_, highs_ = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    pick = np.searchsorted(np.asarray(cumulative), levels + rng.random(len(levels)), side="right")
    pick = np.minimum(pick, len(lows_) - 1)
    low = lows_[pick]
    values = low + rng.random(len(levels)) * (highs_[pick] - low)
    if code.bounds is not None:
        values = np.clip(values, *code.bounds)
    if code.integer and code.kind == "numerical":
        values = np.round(values)
    return values


def _to_pandas(code: ColumnCode, raw: np.ndarray) -> pd.Series:
    if code.kind == "datetime":
        stamps = pd.to_datetime(np.round(raw * _DAY_NS / 1e9) * 1e9, unit="ns")
        return _restore_datetime(code, pd.Series(stamps))
    if code.kind == "numerical":
        return _restore_number(code, raw)
    lookup = np.empty(code.size, dtype=object)
    for i, level in enumerate(code.levels):
        lookup[i] = level["points"][0]
    out = pd.Series(lookup[raw], dtype=object)
    if code.kind == "boolean":
        if out.isna().any() or code.dtype == "object":
            return out
        return out.astype(bool)
    if code.dtype == "category":
        return out.astype("category")
    return out


def _to_arrow(code: ColumnCode, raw: np.ndarray) -> pa.Array:
    """The Arrow array :func:`_to_pandas` would convert to, built without pandas where it can."""
    if code.kind == "numerical":
        missing = np.isnan(raw)
        if code.dtype.lower().startswith(("int", "uint")):
            return pa.array(np.where(missing, 0, raw).astype(np.int64), mask=missing)
        dtype = code.dtype if code.dtype in ("float16", "float32") else "float64"
        return pa.array(raw.astype(dtype), mask=missing)
    if code.kind == "datetime" and code.dtype.startswith("datetime64"):
        # Whole seconds (as decoded), typed so: Arrow would print nanoseconds pandas omits.
        missing = np.isnan(raw)
        seconds = np.round(np.where(missing, 0, raw) * (_DAY_NS / 1e9)).astype(np.int64)
        return pa.array(seconds, type=pa.timestamp("s"), mask=missing)
    if code.kind == "categorical" or code.kind == "boolean":
        points = [level["points"][0] for level in code.levels]
        present = [p for p in points if p is not None]
        kinds = {type(p) for p in present}
        if kinds <= {str} or (kinds <= {bool} and code.kind == "boolean" and code.dtype != "object"):
            dictionary = pa.array(present, type=pa.string() if kinds <= {str} else pa.bool_())
            position = np.full(code.size, -1, dtype=np.int64)
            position[[i for i, p in enumerate(points) if p is not None]] = np.arange(len(present))
            index = position[raw]
            return pc.take(dictionary, pa.array(index, mask=index < 0))
    return pa.array(_to_pandas(code, raw), from_pandas=True)


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
