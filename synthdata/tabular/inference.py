"""Private schema inference: column types, lattices, date formats and identifiers, decided with DP.

A schema inferred from the exact data leaks: one added row holding ``3750.5`` flips a
column from integer to decimal, and every synthetic value with it. When the steward
declares no schema, :func:`infer_schema_private` decides everything a release publishes
about its columns from one Gaussian release, charged to the ledger as ``"schema"``:

* every cell of every column is put in exactly one *shape* class — missing, true/false,
  zero (on every lattice, so it tells nothing about one), whole number, a number with
  one decimal on the half-grid (``17.5``), one even decimal (``0.2``, ``0.4``: a lattice
  of 0.2), another one-decimal number, two decimals, more, one of a fixed list of date
  layouts (date only, to the minute, or to the second; with evidence for day-first or
  month-first order), a *code* (one token mixing letters and digits: ``85123A``,
  ``B12``), a whole number written with *leading zeros* (``02134``: a zip code or a
  padded id; the reader keeps such a column's text, see :mod:`synthdata.ingest`), or other
  text — and each column's class counts are released with noise. Whole numbers of 5 or
  more digits that are not multiples of 10 are counted by their width (5, 6, 7, 8, 9+):
  a record number (``125024``) keeps one width and spreads its last digit evenly; other
  whole numbers of 100 or more that are multiples of 5 (and those of a width that are
  multiples of 25: ``12075``) are counted by the largest of 5, 10, 25, 50, 100 and 1000
  that divides them (*round* numbers: ``12500`` is a multiple of 100, ``7525`` of 25), so
  that amounts of money keep their lattice;
* each column's number of distinct values is released with noise too (identifiers);
* and each column's *time-of-day evidence*: how many of its cells are whole numbers from 100
  to 2400 ending under 60 (``517``, ``2359``: times written HHMM) and how many are whole
  numbers no time is written as (60 or more ending in 60 to 99, or past 2400). These two
  counts are released beside the others at a quarter of their weight (the others are counted
  :data:`_MAIN_WEIGHT` times): their noise is four times the others', and the others' grows
  by 1.6% only. A column whose values clearly read as times, and clearly not otherwise, is
  read as times of day (:func:`_clock`; ``clock`` in the schema): flights' departure times,
  read as every whole number, came out 40% impossible (12:75).

One row (one unit of privacy: ``k`` rows) moves one count per column's shape histogram,
one distinct count per column and at most one evidence count, each counted
:data:`_MAIN_WEIGHT` (4) times but the last, so the vector's L2 sensitivity is
``k·√(33·columns)``, and a shape count's noise, divided by 4, is that of a sensitivity of
``k·√(2.06·columns)``.
Every decision below — the type, whether numbers are whole, the *lattice* they lie on (a
step of 0.5, 0.2, 0.1 or 0.01 for decimals, of 5 to 1000 for round whole numbers; dates to
the day, minute or second; times of day; the encoder keeps every synthetic value on it) — is post-processing of those noisy counts, made with
margins well above the noise, so two tables that differ in one row get the same schema
except with the small probability that the noise itself decides. Column names are the header, not
data about anyone, and are public.

The classes and date layouts are fixed lists (public); nothing is looked up in the data
to build them.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from ..errors import DataError, IdentifierColumnWarning, SynthdataWarning
from ..privacy import PrivacyLedger
from ..schema import ID_NAME, Column, Excluded, Schema

__all__ = ["SHAPES", "clock_codes", "column_counts", "frame_counts", "infer_schema_private", "schema_noise",
           "shape_codes"]

#: Shape classes of a cell, in code order.
_BASE = ["missing", "boolean", "integer", "half", "decimal1", "decimal2", "decimal3", "text", "zero", "even-tenth",
         "code", "leading-zeros", "wide5", "wide6", "wide7", "wide8", "wide9+",
         "round5", "round10", "round25", "round50", "round100", "round1000"]
(MISSING, BOOLEAN, INTEGER, HALF, DECIMAL1, DECIMAL2, DECIMAL3, TEXT, ZERO, EVEN_TENTH, CODE, PADDED,
 WIDE5, WIDE6, WIDE7, WIDE8, WIDE9, ROUND5, ROUND10, ROUND25, ROUND50, ROUND100, ROUND1000) = range(len(_BASE))
#: Whole numbers of 5, 6, 7, 8 and 9 or more digits that are not a multiple of 10 (the
#: shape of a record number such as ``125024``; amounts of money and counts are spread over
#: widths, or round): split out of ``integer``.
_WIDE = [WIDE5, WIDE6, WIDE7, WIDE8, WIDE9]
#: Whole numbers of 100 or more that are multiples of 5 (of 25 among the record widths), by the
#: largest of :data:`ROUND_STEPS` that divides them (:func:`_rounds`): split out of ``integer``, so
#: that a column of amounts (loans in multiples of 25, prices in multiples of 5) keeps its lattice.
_ROUND = [ROUND5, ROUND10, ROUND25, ROUND50, ROUND100, ROUND1000]
ROUND_STEPS = (5, 10, 25, 50, 100, 1000)
#: Round numbers start here: below it a multiple of 5 is as common as chance makes it (ages,
#: counts), and reading it as a lattice would move the other values.
_ROUND_FROM = 100
#: The shapes of numbers: zero, whole, and the fractional ones.
_NUMBERS = [ZERO, INTEGER, *_WIDE, *_ROUND, HALF, EVEN_TENTH, DECIMAL1, DECIMAL2, DECIMAL3]
_FRACTIONAL = [HALF, EVEN_TENTH, DECIMAL1, DECIMAL2, DECIMAL3]

#: A time after the date, perhaps with a UTC marker or an offset (``10:00:00Z``,
#: ``10:00+01:00``): such cells are read as UTC (see :func:`synthdata.schema.parse_datetimes`).
_TIME = (r"(?:[ T](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.\d{1,9})?)?"
         r"(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?)?")


@dataclass(frozen=True)
class _DateLayout:
    """A date layout: its regex, its strftime formats by order, and whether it is ISO (unambiguous)."""

    name: str
    pattern: re.Pattern
    iso: bool
    separator: str
    year_digits: int


_DATE_LAYOUTS = [
    _DateLayout("iso", re.compile(r"^\s*(?P<y>\d{4})-(?P<a>\d{1,2})-(?P<b>\d{1,2})" + _TIME + r"\s*$"), True, "-", 4),
    _DateLayout("iso-slash", re.compile(r"^\s*(?P<y>\d{4})/(?P<a>\d{1,2})/(?P<b>\d{1,2})" + _TIME + r"\s*$"), True,
                "/", 4),
    _DateLayout("slash", re.compile(r"^\s*(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4})" + _TIME + r"\s*$"), False, "/", 4),
    _DateLayout("slash-yy", re.compile(r"^\s*(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{2})" + _TIME + r"\s*$"), False,
                "/", 2),
    _DateLayout("dot", re.compile(r"^\s*(?P<a>\d{1,2})\.(?P<b>\d{1,2})\.(?P<y>\d{4})" + _TIME + r"\s*$"), False,
                ".", 4),
    _DateLayout("dash", re.compile(r"^\s*(?P<a>\d{1,2})-(?P<b>\d{1,2})-(?P<y>\d{4})" + _TIME + r"\s*$"), False,
                "-", 4),
]
#: Per layout: 4 (date only / to the minute / to the second / on the hour) x 3 (order evidence:
#: first field > 12, second > 12, neither). A time on the hour (``10:00``, ``10:00:00Z``) is a
#: class of its own: a column of hourly stamps (flights' ``time_hour``) is on the hour's lattice, and
#: read to the minute 98% of its synthetic stamps fell between hours.
_TIMES = ("date", "minute", "second", "hour")
_DATE_CODES = 3 * len(_TIMES)
SHAPES: list[str] = _BASE + [f"date:{layout.name}:{time}:{order}" for layout in _DATE_LAYOUTS
                             for time in _TIMES for order in ("first>12", "second>12", "either")]
_FIRST_DATE = len(_BASE)

_TRUE_FALSE = {"true", "false"}
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
#: A whole number written with leading zeros (``02134``, ``007``; not ``0`` or ``00``).
_PADDED = re.compile(r"^\s*0+[1-9]\d*\s*$")
_ZERO = re.compile(r"^\s*[+-]?0+\s*$")
_DECIMAL = re.compile(r"^\s*[+-]?(\d+)?\.(\d+)\s*$")
_EXPONENT = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+\s*$")
#: A code: one token (no space) of letters and digits, both present, perhaps with - _ / . inside.
_CODE = re.compile(r"^(?=[^\s]*\d)(?=[^\s]*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9_./-]{0,30}[A-Za-z0-9])?$")

#: Relative mass below which a shape is read as noise or stray values, not the column's.
_STRAY_SHARE = 0.01
#: How many noise standard deviations a count must clear to count as real.
_NOISE_MARGIN = 3.0
#: Margin for a minority reading of a column (fractions among whole numbers, a time of day
#: on dates): of the many shape cells, one clears 3 standard deviations by chance in 7% of
#: columns, which would make a date column timed at random; 4 makes that 0.2%.
_MINORITY_MARGIN = 4.0
#: Margin for decimals among more whole numbers (any of the five fractional shape cells): at 4 sd, one
#: of them cleared it by chance often enough that a column of whole numbers was read as decimals in 1
#: or 2 of 40 releases of a table (shoppers' ``Browser`` codes, Adult's ``hours_per_week``), and its
#: synthetic values came out between the codes (5.37). 4.5 makes that ten times rarer. A fractional
#: cell larger than the column's whole numbers other than zero keeps the minority margin (a small
#: table's measurements at 4-5 sd, rain's tenths beside its zeros, were read as whole numbers more often
#: with it).
_FRACTION_MARGIN = 4.5
#: Margin for a date cell to make a column dates: there were 54 date cells (72 with the hour), so at 3 standard
#: deviations one clears by chance in 7% of columns, and on a small table (heart disease's
#: 303 rows, wine's 178) it outweighed the column's numbers (``age`` read as a date in one
#: fit in 2); at 4.5 that is 0.02% of columns.
_DATE_MARGIN = 4.5
#: Odd tenths (0.1, 0.3, ...) below this share of the even ones are read as stray values:
#: the column is on a lattice of 0.2. On a lattice of 0.1 there are about as many of each.
_ODD_SHARE = 0.25
#: Codes (``85123A``) above this share of a column's values make a column of numbers with
#: them a code column (categorical): its numbers are names too (product codes, room
#: numbers), not quantities. A typo or a unit written beside a few numbers stays under it;
#: missing markers (``?``, ``NA``, ``-``) are not codes.
_CODE_SHARE = 0.02
#: Whole numbers of one width (:data:`_WIDE`) above this share of a column's numbers, with
#: many distinct values each repeating over rows on average (:data:`_REPEAT_SHARE`), read as
#: a record number: ids spread their last digit evenly (88% off multiples of 10 and 25) and keep
#: their width; amounts and measurements change width or are round.
_WIDE_SHARE = 0.8
#: At most this many distinct values per value (noisy): two rows a value or more, on average.
_REPEAT_SHARE = 0.5
#: The shape histograms and distinct counts are counted this many times in the schema's one
#: release, the time-of-day evidence once (:func:`clock_codes`): the evidence's noise, read back,
#: is this many times theirs, and costs their noise a factor sqrt((2 W^2 + 1) / (2 W^2)), 1.016.
_MAIN_WEIGHT = 4
#: A column of times: its evidence against (whole numbers no time is written as) under this
#: share of the times, besides within the noise (spread evenly, whole numbers from 100 to 2400
#: end in 60 to 99 two times for every three that end under 60). At 0.05 flights' departure times
#: (30,000 rows) were missed in 1 fit of 20 (the evidence's noise, ~600, is near 5% of them); at a
#: quarter, with no share of the values asked of the times (:data:`_CLOCK_SHARE`), a health-insurance
#: deductible (450, 750, 1000; 660 and 294 on 4% of its 20,000 rows) read as times in 1 fit of 2.
_CLOCK_PAST_SHARE = 0.1
#: A column of times: most of its values read as times (a time column's others are the hour after
#: midnight, 0 to 59). A deductible of 0 on 35% of its rows, 450, 750, 1000 on the rest, is not one.
_CLOCK_SHARE = 0.75
#: A column with more distinct values than this share of its values identifies rows.
_ID_DISTINCT_SHARE = 0.95
#: Fewest values (noisy) for a column to be called identifier-like.
_ID_MIN_VALUES = 20


def shape_codes(series: pd.Series) -> np.ndarray:
    """The shape class (index into :data:`SHAPES`) of every cell of ``series``."""
    n = len(series)
    codes = np.full(n, TEXT, dtype=np.int64)
    missing = series.isna().to_numpy()
    if ptypes.is_bool_dtype(series.dtype):
        codes[:] = BOOLEAN
    elif ptypes.is_datetime64_any_dtype(series.dtype):
        stamps = series.dt.tz_localize(None) if getattr(series.dt, "tz", None) is not None else series
        timed = (stamps != stamps.dt.normalize()).to_numpy()
        seconds = (stamps != stamps.dt.floor("min")).to_numpy()
        hour = timed & (stamps == stamps.dt.floor("h")).to_numpy()
        codes[:] = _FIRST_DATE + np.where(seconds, 6, np.where(hour, 9, np.where(timed, 3, 0))) + 2  # ISO, "either"
    elif ptypes.is_numeric_dtype(series.dtype):
        codes[:] = _number_shapes(series.to_numpy(dtype=float, na_value=np.nan))
    else:
        present = ~missing
        values = series[present]
        codes[present] = _text_shapes(values)
    codes[missing] = MISSING
    return codes


def _number_shapes(values: np.ndarray) -> np.ndarray:
    """Shape of numbers held as numbers: zero, whole, half-grid, even tenths, or their decimal places."""
    out = np.full(len(values), DECIMAL3, dtype=np.int64)
    finite = np.isfinite(values)
    whole = finite & (values == np.round(values))
    out[whole] = np.where(values[whole] == 0, ZERO, INTEGER)
    out[whole] = _rounds(values[whole], _widths(values[whole], out[whole]))
    rest = finite & ~whole
    half = rest & (values * 2 == np.round(values * 2))
    out[half] = HALF
    rest &= ~half
    # Decimal places of a float: the fewest that reproduce it (to 1e-9 relative).
    for places, code in ((1, DECIMAL1), (2, DECIMAL2)):
        scaled = values * 10**places
        on = rest & (np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(np.abs(scaled), 1.0))
        if places == 1:  # tenths: even ones (0.2, 0.4, ...) lie on a lattice of 0.2
            even = on & (np.round(scaled) % 2 == 0)
            out[even] = EVEN_TENTH
            rest &= ~even
            on &= ~even
        out[on] = code
        rest &= ~on
    out[~finite] = TEXT  # inf or -inf: not a number we can model
    return out


def _rounds(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``codes`` with whole numbers of :data:`_ROUND_FROM` or more that are multiples of 5 in the
    class of the largest of :data:`ROUND_STEPS` dividing them: those still ``integer``, and those of
    a record width (not multiples of 10) that are multiples of 25 — amounts such as ``12075``; a
    record number ends in 25 or 75 in 2% of rows only, so its width keeps 88% of them."""
    magnitude = np.abs(values)
    width = np.isin(codes, _WIDE) & (np.fmod(magnitude, 25) == 0)
    candidates = ((codes == INTEGER) | width) & (magnitude >= _ROUND_FROM) & np.isfinite(magnitude)
    if not candidates.any():
        return codes
    out = codes.copy()
    for step, code in zip(ROUND_STEPS, _ROUND):  # each larger step that divides overrides the smaller
        out[candidates & (np.fmod(magnitude, step) == 0)] = code
    return out


def _widths(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``codes`` with whole numbers of 5 digits or more, not multiples of 10, in their width's class."""
    magnitude = np.abs(values)
    wide = (magnitude >= 10_000) & (np.fmod(magnitude, 10) != 0) & np.isfinite(magnitude)
    if not wide.any():
        return codes
    digits = np.floor(np.log10(np.where(wide, magnitude, 1.0))).astype(np.int64) + 1
    return np.where(wide, np.array(_WIDE)[np.clip(digits, 5, 9) - 5], codes)


def _text_shapes(values: pd.Series) -> np.ndarray:
    """Shape of cells held as text (or mixed Python objects)."""
    text = values.map(lambda v: v if isinstance(v, str) else ("true" if v is True else "false" if v is False else
                                                              repr(v) if isinstance(v, float) else str(v)))
    text = text.astype(str)
    out = np.full(len(text), TEXT, dtype=np.int64)
    stripped = text.str.strip()
    lowered = stripped.str.lower()
    out[lowered.isin(_TRUE_FALSE).to_numpy()] = BOOLEAN
    todo = out == TEXT
    integer = stripped.str.match(_INTEGER).to_numpy() & todo
    out[integer] = INTEGER  # (its width class, like every number's, is set below)
    out[stripped.str.match(_ZERO).to_numpy() & todo] = ZERO
    out[stripped.str.match(_PADDED).to_numpy() & todo] = PADDED
    todo &= ~integer
    decimal = stripped.str.extract(_DECIMAL)
    is_decimal = decimal[1].notna().to_numpy() & todo
    if is_decimal.any():
        fraction = decimal[1].fillna("").str.rstrip("0")
        places = fraction.str.len().to_numpy()
        last = fraction.str[-1:].to_numpy()
        zero = decimal[0].fillna("").str.fullmatch(r"0*").to_numpy()
        even = np.isin(last, ["2", "4", "6", "8"])
        codes = np.where(places == 0, np.where(zero, ZERO, INTEGER),
                         np.where((places == 1) & (last == "5"), HALF,
                                  np.where((places == 1) & even, EVEN_TENTH,
                                           np.where(places == 1, DECIMAL1,
                                                    np.where(places == 2, DECIMAL2, DECIMAL3)))))
        out[is_decimal] = codes[is_decimal]
        todo &= ~is_decimal
    exponent = stripped.str.match(_EXPONENT).to_numpy() & todo
    out[exponent] = DECIMAL3
    todo &= ~exponent
    if todo.any():
        candidates = stripped[todo]
        shapes = np.full(len(candidates), TEXT, dtype=np.int64)
        left = np.ones(len(candidates), dtype=bool)
        for index, layout in enumerate(_DATE_LAYOUTS):
            if not left.any():
                break
            parts = candidates[left].str.extract(layout.pattern)
            hit = parts["y"].notna().to_numpy()
            if not hit.any():
                continue
            a = pd.to_numeric(parts["a"], errors="coerce").to_numpy()
            b = pd.to_numeric(parts["b"], errors="coerce").to_numpy()
            timed = parts["h"].notna().to_numpy()
            second = parts["s"].fillna("00").to_numpy() != "00"
            fraction = candidates[left].str.contains(r":\d{2}:\d{2}\.\d*[1-9]", regex=True).to_numpy()
            hour = timed & (parts["mi"].fillna("").to_numpy() == "00")
            time = np.where(second | fraction, 6, np.where(hour, 9, np.where(timed, 3, 0)))
            if layout.iso:  # year first: a is the month, b the day
                valid = hit & (a >= 1) & (a <= 12) & (b >= 1) & (b <= 31)
                order = np.full(len(a), 2)
            else:
                valid = hit & (a >= 1) & (b >= 1) & (a <= 31) & (b <= 31) & ((a <= 12) | (b <= 12))
                order = np.where(a > 12, 0, np.where(b > 12, 1, 2))
            code = _FIRST_DATE + index * _DATE_CODES + time + order
            positions = np.flatnonzero(left)[valid]
            shapes[positions] = code[valid]
            left[positions] = False
        shapes[candidates.str.match(_CODE).to_numpy() & (shapes == TEXT)] = CODE
        out[np.flatnonzero(todo)] = shapes
    # A cell that reads as a number has the number's shape, whatever its spelling (1e3, 5.):
    # one text cell added to a column of numbers (a neighbouring table) turns the whole
    # column to text, and no other cell's class may change with it. Leading zeros stay a code.
    numbers = _text_numbers(stripped)
    numeric = np.isfinite(numbers) & (out != BOOLEAN)
    if numeric.any():
        out[numeric] = _number_shapes(numbers[numeric])
    return out


def _schema_sensitivity(columns: int, unit_rows: int = 1) -> float:
    """The L2 sensitivity of the schema's one release: ``k·√((2W² + 1)·columns)`` (a shape count and
    the distinct count at weight ``W`` = :data:`_MAIN_WEIGHT`, one evidence count at weight 1, per column)."""
    return unit_rows * math.sqrt((2 * _MAIN_WEIGHT ** 2 + 1) * max(columns, 1))


def schema_noise(multiplier: float, columns: int, unit_rows: int = 1) -> float:
    """The noise (standard deviation) of one shape count of the schema's release, for the ledger's
    noise ``multiplier``: its sensitivity (:func:`_schema_sensitivity`) over the weight ``W``
    (:data:`_MAIN_WEIGHT`; the time-of-day evidence's noise is ``W`` times this)."""
    return multiplier * _schema_sensitivity(columns, unit_rows) / _MAIN_WEIGHT


def clock_codes(series: pd.Series) -> np.ndarray:
    """Each cell's time-of-day evidence: 1 for a whole number from 100 to 2400 whose last two
    digits are under 60 (a time written HHMM: ``517``, ``2359``, ``2400``), 2 for a whole number no
    time is written as (60 or more ending in 60 to 99: ``75``, ``1275``; or past 2400), else 0
    (0 to 59, negative, not whole, not a number, missing; a number with leading zeros is text).
    A function of each cell alone."""
    if ptypes.is_bool_dtype(series.dtype) or ptypes.is_datetime64_any_dtype(series.dtype):
        return np.zeros(len(series), dtype=np.int64)
    if ptypes.is_numeric_dtype(series.dtype):
        numbers = series.to_numpy(dtype=float, na_value=np.nan)
    else:
        numbers = _text_numbers(series.astype("string").str.strip())
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(numbers) & (numbers == np.round(numbers))
        last = np.fmod(np.where(whole, numbers, 0.0), 100)
        time = whole & (numbers >= 100) & (numbers <= 2400) & (last < 60)
        past = whole & (((numbers >= 60) & (last >= 60)) | (numbers > 2400))
    return np.where(time, 1, np.where(past, 2, 0)).astype(np.int64)


def _text_numbers(stripped: pd.Series) -> np.ndarray:
    """The number each stripped text cell reads as (NaN for none, and for a whole number written
    with leading zeros: a code, ``02134``)."""
    padded = stripped.str.match(_PADDED).fillna(False).astype(bool)
    return pd.to_numeric(stripped.where(~padded), errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def frame_counts(frame: pd.DataFrame, columns: Sequence) -> np.ndarray:
    """:func:`column_counts` of each of ``columns`` (labels of ``frame``), one row each."""
    if not len(columns):
        return np.zeros((0, len(SHAPES) + 3), dtype=np.int64)
    return np.stack([column_counts(frame[name]) for name in columns])


def column_counts(series: pd.Series) -> np.ndarray:
    """What the schema release counts of one column: its cells by shape (:data:`SHAPES`), its
    number of distinct values, then its time-of-day evidence (cells that read as times, cells no
    time is written as: :func:`clock_codes`)."""
    shapes = len(SHAPES)
    return np.concatenate([np.bincount(shape_codes(series), minlength=shapes), [_distinct(series)],
                           np.bincount(clock_codes(series), minlength=3)[1:]]).astype(np.int64)


def _distinct(series: pd.Series) -> int:
    values = series.dropna()
    if values.empty:
        return 0
    return int(values.astype(str).str.strip().nunique())


def infer_schema_private(frame, *, ledger: PrivacyLedger, unit_rows: int = 1, step: str = "schema") -> Schema:
    """Decide the schema of ``frame`` from one noisy release on ``ledger`` (see the module docstring).

    ``frame``: a DataFrame, or the :class:`~synthdata.tabular.stats.TableStats` of a table
    an engine holds (the same counts). ``unit_rows`` is the most rows one unit of privacy
    holds (1 unless a privacy unit with a cap is in force). Columns whose values cannot be
    told apart from noise at this budget are left out with a warning.
    """
    shapes = len(SHAPES)
    if isinstance(frame, pd.DataFrame):
        names = [str(name) for name in frame.columns]
        counts = frame_counts(frame, list(frame.columns))
    else:
        names = list(frame.columns)
        counts = frame.shape_counts(names)
    weighted = counts.copy()
    weighted[:, :shapes + 1] *= _MAIN_WEIGHT
    sensitivity = _schema_sensitivity(len(names), unit_rows)
    noisy = ledger.noisy(step, weighted, sensitivity=sensitivity, integer=True,
                         mechanism="Gaussian mechanism on per-column shape histograms and distinct counts (each "
                                   f"counted {_MAIN_WEIGHT} times) and time-of-day evidence",
                         parameters={"columns": len(names), "shapes": shapes, "weight": _MAIN_WEIGHT,
                                     "decisions": "types, lattices, date formats, times of day, identifiers"})
    sigma = schema_noise(ledger.planned_multiplier(step), len(names), unit_rows)
    clock_sigma = sigma * _MAIN_WEIGHT
    main = noisy[:, :shapes + 1].astype(float) / _MAIN_WEIGHT
    columns, excluded = [], []
    for j, name in enumerate(names):
        decided = _decide(name, main[j, :shapes], float(main[j, shapes]), sigma,
                          clock=(float(noisy[j, shapes + 1]), float(noisy[j, shapes + 2]), clock_sigma))
        if isinstance(decided, Excluded):
            excluded.append(decided)
            if decided.reason.startswith("identifier"):
                warnings.warn(f"column {name!r} looks like an identifier ({decided.reason}); it is left out of the "
                              "synthesis, since real ids must never be reproduced", IdentifierColumnWarning,
                              stacklevel=3)
            else:
                warnings.warn(f"column {name!r} is left out: {decided.reason}", SynthdataWarning, stacklevel=3)
        else:
            columns.append(decided)
    if not columns:
        raise DataError("no column is left to synthesise: at this privacy budget none can be told apart from the "
                        "noise, or every column is an identifier; raise epsilon or declare a schema (--schema)")
    return Schema(columns=tuple(columns), excluded=tuple(excluded))


def _decide(name: str, shape: np.ndarray, distinct: float, sigma: float,
            clock: tuple[float, float, float] | None = None) -> Column | Excluded:
    """One column's schema from its noisy shape counts and distinct count (and its time-of-day
    evidence: times, not times, and their noise; see :func:`_clock`).

    Only cells whose noisy count clears :data:`_NOISE_MARGIN` standard deviations are
    read as holding values (an empty cell is pure noise, and most of the many shape
    cells are empty); a share of the values counts when it also clears 1% of them. A
    family of cells (the numbers: whole, halves, decimals) whose cells are each too small
    to clear the margin still counts when their sum clears it, at its own noise. Where the
    noise cannot tell (a small table at a small budget), the coarser reading wins and the
    steward is warned.
    """
    clear = np.where(shape > _NOISE_MARGIN * sigma, shape, 0.0)
    numeric_cells = _NUMBERS

    def mass(cells: list[int]) -> float:
        cleared, total = float(clear[cells].sum()), float(shape[cells].sum())
        return max(cleared, total) if total > _NOISE_MARGIN * sigma * math.sqrt(len(cells)) else cleared

    # The classes split out of whole numbers and text (record widths, leading zeros) count
    # only where they clear the noise: summed in always, their empty cells' noise would raise
    # the bar a family's total must clear, and a small table's column (heart disease's
    # oldpeak, 303 rows) would be left out more often than before they were split out.
    # Round numbers (split out of whole numbers too, but a column's usual values: amounts) count
    # as a family of their own: their cells' sum at its own noise, beside the other numbers'.
    families = {"boolean": mass([BOOLEAN]),
                "numerical": mass([code for code in numeric_cells if code not in _WIDE and code not in _ROUND])
                + float(clear[_WIDE].sum()) + mass(_ROUND),
                "datetime": float(np.where(shape > _DATE_MARGIN * sigma, shape, 0.0)[_FIRST_DATE:].sum()),
                "categorical": mass([TEXT, CODE]) + float(clear[PADDED])}
    present = float(sum(families.values()))
    if present <= 0:
        return Excluded(name, "too few values to tell from the noise at this privacy budget")
    kind = max(families, key=families.get)
    if kind == "numerical" and (_coded(shape, sigma, present) or _padded(shape, sigma, present)):
        kind = "categorical"  # numbers beside many codes (85123 beside 85123A, 2134 beside 02134) are names too
    minority = np.where(shape > _MINORITY_MARGIN * sigma, shape, 0.0)
    # Decimals among (more) whole numbers need the larger margin; where they outnumber the whole
    # numbers (a small table's measurements), the minority margin still reads them.
    whole_numbers = float(clear[[INTEGER, *_WIDE, *_ROUND]].sum())  # (zeros say nothing of a lattice)
    fraction = np.where((shape > _FRACTION_MARGIN * sigma) | ((shape > _MINORITY_MARGIN * sigma) & (shape > whole_numbers)),
                        shape, 0.0)
    fractional = float(fraction[_FRACTIONAL].sum())
    if not fraction[[EVEN_TENTH, DECIMAL1]].any() and _used(shape, [EVEN_TENTH, DECIMAL1], sigma, present):
        fractional += float(shape[[EVEN_TENTH, DECIMAL1]].sum())  # tenths, even and odd, each too few alone
    whole = kind == "categorical" or fractional <= _STRAY_SHARE * present
    if kind in ("categorical", "numerical") and present >= _ID_MIN_VALUES and whole:
        # Text distinct on nearly every row is an id or free text; numbers distinct on every
        # row are usually measurements (amounts, weights), ids only when named so.
        unique = distinct >= _ID_DISTINCT_SHARE * present
        if unique and (kind == "categorical" or ID_NAME.search(name)):
            return Excluded(name, f"identifier: a distinct value on nearly every row (about {max(distinct, 0):,.0f} "
                                  f"distinct of {present:,.0f}, DP counts)")
        # The distinct count is noisy: on a small table its noise alone could reach 5% of
        # the rows, so a 0-6 scale named PID would be an id. Only a clear excess counts.
        many = distinct - _NOISE_MARGIN * sigma >= max(_ID_MIN_VALUES, 0.05 * present)
        if ID_NAME.search(name) and many:
            return Excluded(name, "identifier: named like an id and with many distinct values, repeating over "
                                  "rows (a person's id? release it with --privacy-unit)")
        # Record numbers: the distinct count's lower bound is at 2 sigma (a 5-digit zip
        # code of 30 values on 944 rows passes 5% by noise in 1% of fits), its upper bound
        # not at all (amounts of one width are nearly all distinct on small tables, where
        # the noise is large; on large ones the noise is small).
        width = _record_number(shape, clear, sigma)
        if kind == "numerical" and width and distinct - 2 * sigma >= max(_ID_MIN_VALUES, 0.05 * present) and \
                distinct <= _REPEAT_SHARE * present:
            return Excluded(name, f"identifier: whole numbers of {width} digits, not round, with many distinct "
                                  f"values repeating over rows (about {distinct:,.0f} distinct of {present:,.0f}, DP "
                                  "counts): a person's or record's number? release it with --privacy-unit; if it "
                                  "is a quantity, declare it numerical in a schema (--schema)")
    if kind == "boolean":
        return Column(name=name, type="boolean")
    if kind == "datetime":
        return Column(name=name, type="datetime", datetime_format=_date_format(clear, minority, present))
    if kind == "numerical":
        if whole and families["numerical"] < 2 * _NOISE_MARGIN * sigma:
            warnings.warn(f"column {name!r}: at this privacy budget the noise cannot tell whole numbers from "
                          "decimals; it is read as whole numbers. Declare its type in a schema (--schema) to be "
                          "sure", SynthdataWarning, stacklevel=4)
        # Halves (17.5 on 2% of the rows) may hide under this release's noise: whole numbers
        # are a reading the encoder's own release of exact values confirms or corrects.
        # Round whole numbers (amounts in multiples of 25) are on a lattice of their own.
        step = (_round_step(shape, sigma, present) if whole else _step(shape, sigma, present))
        times = whole and step is None and clock is not None and _clock(*clock, present)
        return Column(name=name, type="numerical", integer=whole, step=step,
                      halves_undecided=whole and step is None and not times, clock=times)
    return Column(name=name, type="categorical")


def _coded(shape: np.ndarray, sigma: float, present: float) -> bool:
    """Whether codes (``85123A``) are a clear share of a column's values: above the
    minority margin and above :data:`_CODE_SHARE` of the values, both on noisy counts."""
    codes = float(shape[CODE])
    return codes > _MINORITY_MARGIN * sigma and codes > _CODE_SHARE * present


def _padded(shape: np.ndarray, sigma: float, present: float) -> bool:
    """Whether whole numbers written with leading zeros (``02134``) are a clear share of a
    column's values, as :func:`_coded` asks of codes: zip codes and zero-padded ids are
    names, and a number would lose the zeros."""
    padded = float(shape[PADDED])
    return padded > _MINORITY_MARGIN * sigma and padded > _CODE_SHARE * present


def _record_number(shape: np.ndarray, clear: np.ndarray, sigma: float) -> str | None:
    """The width (``"6"``, ``"9 or more"``) when one width of unround whole numbers
    (:data:`_WIDE`) clears the noise margin and holds :data:`_WIDE_SHARE` of the column's
    number cells that do, else None."""
    best = int(np.argmax(shape[_WIDE]))
    if clear[_WIDE[best]] <= 0 or clear[_WIDE[best]] < _WIDE_SHARE * float(clear[_NUMBERS].sum()):
        return None
    return "9 or more" if best == len(_WIDE) - 1 else str(best + 5)


def _used(shape: np.ndarray, cells: list[int], sigma: float, present: float) -> bool:
    """Whether these shape cells together clearly hold values: above the minority margin
    at the noise of their sum, and above the stray share."""
    total = float(shape[cells].sum())
    return total > _MINORITY_MARGIN * sigma * math.sqrt(len(cells)) and total > _STRAY_SHARE * present


def _step(shape: np.ndarray, sigma: float, present: float) -> float | None:
    """The lattice of a column of decimals: the finest decimal place its values clearly use.

    None (no lattice) when many values need three decimals or more: measurements. Tenths
    that are all even (0.2, 0.4, ...; the odd ones under :data:`_ODD_SHARE` of them) are
    a lattice of 0.2, unless halves are there too.
    """
    if _used(shape, [DECIMAL3], sigma, present):
        return None
    if _used(shape, [DECIMAL2], sigma, present):
        return 0.01
    if any(_used(shape, cells, sigma, present) for cells in ([EVEN_TENTH], [DECIMAL1], [EVEN_TENTH, DECIMAL1])):
        # Odd tenths beside even ones count when they clear the noise too: read off the share
        # alone, noise (sd ~110 on the online-shoppers table at epsilon 1) past a quarter of
        # SpecialDay's ~870 even tenths read a lattice of 0.1 in ~4% of fits (2 of 48), and its
        # values came out on 0.1, 0.3, ... (a wrong 0.2 moves real odd tenths to even ones instead).
        odd = _used(shape, [DECIMAL1], sigma, present) or _used(shape, [HALF], sigma, present) or \
            shape[DECIMAL1] > max(_ODD_SHARE * shape[EVEN_TENTH], _NOISE_MARGIN * sigma)
        return 0.1 if odd else 0.2
    return 0.5 if _used(shape, [HALF], sigma, present) else None


def _round_step(shape: np.ndarray, sigma: float, present: float) -> float | None:
    """The lattice of a column of whole numbers: the largest of :data:`ROUND_STEPS` that divides
    its values, or None (every whole number).

    A step is read when the round classes it divides clearly hold values (:func:`_used`) and
    the other whole numbers — ``integer`` (not round, or under :data:`_ROUND_FROM`), the record
    widths, the round classes of steps it does not divide — do not: none clears the minority
    margin alone, and together they are not :func:`_used`. Decimals are no concern here (the
    column is whole); zero lies on every lattice.
    """
    whole = [INTEGER, *_WIDE, *_ROUND]
    for step in sorted(ROUND_STEPS, reverse=True):
        on = [cell for cell, size in zip(_ROUND, ROUND_STEPS) if size % step == 0]
        off = [cell for cell in whole if cell not in on]
        if not _used(shape, on, sigma, present):
            continue
        if float(shape[off].max()) > _MINORITY_MARGIN * sigma or _used(shape, off, sigma, present):
            continue
        return float(step)
    return None


def _clock(times: float, past: float, sigma: float, present: float) -> bool:
    """Whether a column of whole numbers (no round step) is times of day written HHMM, from its
    noisy evidence (:func:`clock_codes`; ``sigma`` its noise): times clearly there — above the
    minority margin and :data:`_CLOCK_SHARE` of the column's values — and whole numbers no time
    is written as within the noise and, read half a standard deviation high, under
    :data:`_CLOCK_PAST_SHARE` of the times (a misread moves only those few values, each to the
    nearest time; a missed column of times puts 40% of its values on endings no time has). Ages and small counts (under 100)
    never read as times, nor does a blood pressure of 62 to 133; years after 2000 may, and lose
    nothing by it (consecutive years are consecutive minutes too)."""
    if times <= _MINORITY_MARGIN * sigma or times <= _CLOCK_SHARE * present:
        return False
    return past <= _MINORITY_MARGIN * sigma and past + sigma / 2 <= _CLOCK_PAST_SHARE * times


def _date_format(clear: np.ndarray, minority: np.ndarray, present: float) -> str:
    """The strftime format of the most common date layout, day- or month-first by the evidence."""
    blocks = clear[_FIRST_DATE:].reshape(len(_DATE_LAYOUTS), len(_TIMES), 3)
    index = int(np.argmax(blocks.sum(axis=(1, 2))))
    layout, block = _DATE_LAYOUTS[index], blocks[index]
    times = minority[_FIRST_DATE:].reshape(len(_DATE_LAYOUTS), len(_TIMES), 3)[index]
    timed = times[1:].sum() > _STRAY_SHARE * present
    seconds = times[2].sum() > _STRAY_SHARE * present
    minutes = times[1].sum() > _STRAY_SHARE * present
    # On the hour only: the minutes written as the data writes them, a literal 00 (hourly stamps).
    time = (" %H:%M:%S" if seconds else " %H:%M" if minutes else " %H:00") if timed else ""
    year = "%Y" if layout.year_digits == 4 else "%y"
    if layout.iso:
        return f"%Y{layout.separator}%m{layout.separator}%d{time}"
    day_first = block[:, 0].sum() > block[:, 1].sum()
    first, second = ("%d", "%m") if day_first else ("%m", "%d")
    return f"{first}{layout.separator}{second}{layout.separator}{year}{time}"
