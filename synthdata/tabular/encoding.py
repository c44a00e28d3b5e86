"""Tabular encoding fitted with differential privacy: every column becomes discrete levels.

Nothing here reads the real rows outside the privacy budget. :meth:`TabularEncoder.fit`
makes one Gaussian measurement of every column's histograms (charged to the
:class:`~synthdata.privacy.PrivacyLedger`) and derives everything else from it.

**Numbers and dates keep their support.** Each numeric column has a *lattice* its values
lie on — whole numbers, a step such as 0.5 or 25, whole minutes or days — which is public:
declared in the schema, or decided privately by :mod:`synthdata.tabular.inference`.
Values are snapped to it and counted at several resolutions, finest first, each a
Gaussian *sparse* histogram (only cells present in the data, and a cell is released only
if its noisy count clears a threshold, so a value held by one person never is):

* **exact values** on the lattice — a value held by enough rows (a year, a code, a price
  point, the zeros of a skewed amount) is released as itself and comes out as itself;
* then cells of ``digits`` and ``digits - 1`` significant digits (numbers), or of an
  hour, a day and a month (dates): a cell carries the mass its finer released cells do
  not (the "remainder"), spread over the cell's lattice points that no finer release
  covers. Where mass concentrates, resolution is fine; in thin tails, coarse.

**Where inside a spread piece the mass lies** is a second, smaller Gaussian release (a
fixed share :data:`REFINE_SHARE` of the step's cost, on the same ledger line): every piece
spread over many values is cut into finer cells (as many as its mass can fill above the
noise, up to :data:`REFINE_CELLS`; chosen from the first release, so public), each row
counted once per column in the cell holding its value. The column's ends lose the cells
whose counts do not stand out of the noise (a 1-7 scale's decade cell stops at 7, a
century of years at the last year held, a degree of latitude at the city's edge), and
each piece's mass follows its cells' counts as far as they stand out of the noise. A
piece of a few lattice values among released ones (codes the threshold kept back: a
browser code between released ones) is counted value by value wherever it lies, the
pieces of one remainder share its mass by their cells' counts, and at the column's end
it keeps as many values as the first release says its mass needs. A piece's first value (a
cell's round start: caps, floors, popular amounts) is counted apart, and stays apart when its
count stands out of the noise; a remainder's mass is read from both releases (by their inverse
variances: the first is read after its threshold, so high where it is small).

Synthetic values are drawn from these pieces on the lattice only, so every value is on
the column's lattice, and inside the *released range* (the pieces' span) the model
records. Every released cell holds a real value, but where inside it is unknown: at the
edges the lowest and highest pieces are cut to the part their mass surely fills — the
density beside them (ages from 18 released as a cell of 10 to 19 come out as 18 and 19),
or as many of their unreleased finer cells as the mass needs (a long tail) — and a
remainder widens the range only when it has nowhere inside to go. A lattice coarser than the one decided may be read off the released exact
values (their greatest common step, when five or more are released): post-processing,
free.

Whole numbers that inference could not tell from whole numbers with a few halves (its
noise hides ``5.5`` on 3% of the rows; the schema marks them ``halves_undecided``) have
their exact values counted in half units, halves as their own cells, while whole numbers
are counted exactly as on their own lattice (the same cells and weights): the released
exact values decide — a released half keeps the column on the lattice of 0.5, as a float
column (:meth:`TabularEncoder.fitted_schema`); none, and it is whole numbers. ``5.5`` is
never rounded to a ``6`` past the real maximum.

All histograms are one Gaussian release, every count multiplied by its cell's weight
(:func:`_cell_weights`), so that one row moves each column's counts by the same L2 norm:
a category or boolean (one histogram) weighs twice a number's cell (four histograms); a
small number on a lattice is its own cell at the coarser resolutions too (7 is its own 2-
and 1-digit cell), and those copies are left out, its exact count taking their weight
instead: less noise and a lower threshold for small codes, ratings and counts.

Categories are released the same way: a value too rare to clear the threshold never
appears in the output. Categories, bounds or booleans the schema declares public are
counted over the declared domain without a threshold. Missing values are a level of
their own, so they come out at a realistic rate. A column with fewer than two released
values carries nothing a synthetic table can show: :attr:`TabularEncoder.dropped_` lists
it, with the reason, for the caller to leave out (unless the schema declares it a public
constant).

The released counts are also the 1-way marginals the generator is trained to match.
Encoding the training rows with these levels is post-processing of the released values
plus the rows themselves, which only ever reach later stages through DP mechanisms.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from statistics import NormalDist
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
_SECOND = 1.0 / 86_400  # one second, in days (the unit dates are counted in)
#: Cells of dates beside exact values: an hour, a day, about a month, about a year (12 such
#: months: cells nest), in seconds.
DATE_CELLS = (3_600, 86_400, 32 * 86_400, 12 * 32 * 86_400)
#: Most decimals a declared or decided step may have (0.000001).
_MAX_DECIMALS = 6
#: Released exact values needed before their common step refines the lattice.
MIN_VALUES_FOR_STEP = 5
#: A column whose one released value leaves at most this share of the rows unexplained is a constant.
CONSTANT_SHARE = 0.02
#: ... past this many standard deviations of the noise of that difference (the level's and the
#: DP row count's). The two errors are not alike: a constant read as 'one value beside rows too
#: rare to release' is kept as the one value it is; a real column read as a constant is lost.
#: At 3 sd, Adult's native_country on 2,000 rows at epsilon 1 (one value released, ~9% of rows
#: under the threshold, sd 44) was left out in about a third of releases; at 1 sd in ~1%, while a
#: hospital name on every row of 1,400 (sd 15) is kept in ~0.2%.
CONSTANT_MARGIN = 1.0
#: Warn for the whole table when it holds fewer rows than this many release thresholds.
SMALL_TABLE_ROWS = 10
#: A column's missing level is kept when its noisy count clears the z-score that holds the
#: chance of a missing level invented by noise in any column of the table to this (a union
#: bound over the columns; at least 3 sd): 3 sd per column invented one in ~2% of 18-column fits.
MISSING_FALSE_RATE = 0.001
#: Warn when more than this share of a column's rows falls in values too rare to release.
UNRELEASED_WARN_SHARE = 0.1
_POW10 = np.array([10**i for i in range(19)], dtype=np.int64)
#: Weight of a column counted in one histogram (categories, booleans, a constant) in the
#: one Gaussian release: its counts enter multiplied by it, so their noise is divided by it.
#: A number or date is counted at four or five resolutions; at weight 2 a one-histogram
#: column takes the same share of the release's L2 sensitivity (2² = 4 histograms) instead
#: of a quarter of it: half the noise and a threshold about half as high on categories,
#: where one rare value's whole mass is lost when it does not clear the threshold, for
#: about a tenth to a third more noise on the numbers (issue 11: on the online-shoppers
#: table at epsilon 1, months with 3% of the sessions were never released).
CATEGORY_WEIGHT = 2
#: Weights are whole numbers (the counts keep integer noise): a cell of one of a number's
#: several histograms weighs this much, and the other weights are set on that scale.
WEIGHT_SCALE = 12
#: A remainder (a cell less its finer releases) is used when it clears this many standard deviations.
REMAINDER_MARGIN = 3.0
#: A remainder whose values all lie in gaps between spread pieces already placed (inside the column's
#: range: a cell that narrowly missed the threshold between released neighbouring cells) is used when it
#: clears this many: a wrong one there costs a little mass in the middle, never a value past the range,
#: while a real one left out empties a quantile of a skewed column. (Between released exact values, a
#: code or a half between released ones, the old margin holds: those are often truly empty.)
INTERIOR_MARGIN = 1.0
#: A remainder past the pieces placed, starting where a spread piece ends (a long tail going on: page
#: durations past the last released first-digit cell), is used when it clears this many, where the refinement
#: follows: its cells at the column's end are tested again there (cut unless they stand out, at a margin
#: that holds over every cell, :data:`REFINE_MISS`), so a remainder of noise is cut there, and a real tail is
#: not lost to the first release's margin (5% of a skewed column's rows past its top cell, read 2.2 sd low).
TAIL_MARGIN = 1.0
#: Standard deviations an edge piece's mass is read low, and an unreleased cell's count high, when they
#: bound how far the edge's real values reach (:meth:`TabularEncoder._reach`). At 0 the bound held only on
#: average: a remainder read high by its noise (the difference of many noisy counts) reached one finer cell
#: more than the data in about half the fits where its mass sat near a multiple of the cap (ages to 70 past a
#: real 64.3; loan instalments to 2,000 past 1,567), each time a refinement cell at the end stood out. At 1
#: those went as at 2 (12 fits of two unseen tables), while 2 cut small tables' real tails (anes96's ages).
EDGE_MARGIN = 1.0
#: An edge piece this many times denser than the piece beside it holds a point mass: it becomes its inner end.
DENSE_EDGE = 2.0
#: An edge piece keeps falling at the rate the two spread pieces beside it fall (:func:`_edge_decay`) only when
#: the nearer is at least this many times sparser than the farther: a long tail. Nearly flat up to the edge, the
#: column may end in a hard cut inside the piece (randhie's ages end at 64.3 inside [60, 70): extrapolating a 9%
#: fall put 0.6% of them up to 65.1); the flat rule is the safer reading there.
EDGE_FALL = 1.5
#: A falling edge piece (:func:`_edge_decay`) reaches at most where the falling density has held this share of
#: the mass it could ever hold (where it has fallen to 1% of its start). A mass past all it could hold was read as
#: a piece filled whole: a cliff (a few more rows' mass took a thin tail of half-years from 36 to the piece's 99.5,
#: past the real 52.5; interest rates from 20-25% to 20-59.99%, 7% of them past the real 30.94%); the flat rule
#: and the finer cells' reach (:meth:`TabularEncoder._reach`) still read how far such a mass needs.
FALL_HELD = 0.99
#: Pieces beside an edge whose densities differ more than this many times are spikes (codes): the edge is cut
#: at the densest one's density.
SPIKY = 10.0
#: Share of the encoder's step (of its Renyi-DP cost) spent on refining where the numbers' spread pieces hold
#: their mass (:meth:`TabularEncoder._refine_pieces`); the first release gets the rest. Fixed in advance.
REFINE_SHARE = 0.1
#: A spread piece's first value, counted apart in the refinement (:func:`_start_apart`), stays apart only when its
#: noisy count stands out of this many noise standard deviations, or more: the margin that holds the chance of
#: any empty one standing out, over every such cell of the table, to :data:`REFINE_MISS`. One that stands out by
#: chance is a false point mass of that many sd (at 3 sd a cell, in about 1 of 8 fits of a 55-column table, 5%
#: of a loan amount's rows at one value).
START_MARGIN = 3.0
#: Cells a spread piece is cut into for the refinement (fewer when it holds fewer lattice values).
REFINE_CELLS = 256
#: Cells a spread piece is cut into at least (when it holds as many values; 1: the piece itself, which the
#: column's ends may then drop whole).
REFINE_MIN_CELLS = 1
#: Chance that some empty cell at a column's ends stands out of the noise (the edge margin grows with the cells).
REFINE_MISS = 0.05
#: A spread piece is cut into as many refinement cells as would hold this many noise standard deviations each.
REFINE_MASS = 2.0
#: The refinement cell at a column's end holds this many noise standard deviations were its piece's mass even:
#: the :data:`REFINE_MASS` cells there are merged into one that size (:func:`_end_cells`). The end test
#: (:func:`_shape_column`) keeps a cell once a count stands out of a margin of about 3 sd (more with many
#: cells): at 2 sd a cell, a smooth column's outer cells did not, one by one or summed, until the third or
#: fourth, so the outer two or three were cut in most fits whatever the data (shoppers' ExitRates: [0.001,
#: 0.0049) of its decade [0.001, 0.01), 4.6% of the rows; a temperature's top quarter). At 6 sd, an even
#: spread's end cell clears a 3 sd margin in all but 0.1% of fits, and one at half that density in half of them.
REFINE_END_MASS = 6.0
#: A piece at the column's edge loses its outermost refinement cells while their noisy count, summed from the
#: outside in, stays under this many of its standard deviations.
REFINE_MARGIN = 2.0
#: A spread piece holding this share of its column's mass is refined wherever it lies.
REFINE_HEAVY = 0.25
#: A spread piece of at most this many lattice values (less its holes: codes, small counts between or beside
#: released ones) is refined wherever it lies, each value its own cell (:func:`_code_pieces`).
CODE_VALUES = 16
#: Powers of ten the cells of numbers without a lattice cover (beyond: the end cells).
_MIN_EXPONENT, _MAX_EXPONENT = -12, 18


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


@dataclass
class ColumnCode:
    """How one column maps to levels, learned privately. Plain data: saved as JSON.

    Each level is a list of pieces: ``points`` (a representative value; ``None`` for the
    missing level) with noisy ``weights``. A numeric piece spans ``[lows, highs]``: one
    value when they are equal, else (``format`` 2) every lattice value in between —
    ``base + k * step`` in units of ``unit`` — except the ``holes`` (values released
    on their own), or for a column without a lattice (``step`` None) the interval
    ``[low, high)``. ``released_range`` bounds every synthetic value. ``coarse`` maps
    each level to a coarser group used for 2-way marginals. ``format`` 1 is the layout
    of models saved before lattices (values uniform in ``[lows, highs)``).
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
    unit: float | None = None
    step: int | None = None
    base: int = 0
    decimals: int | None = None
    released_range: list[float] | None = None
    format: int = 1
    #: Times of day written HHMM (:attr:`synthdata.schema.Column.clock`): the levels are in minutes
    #: since midnight (:func:`clock_minutes`), and drawn values are written back as HHMM.
    clock: bool = False

    @property
    def size(self) -> int:
        return len(self.levels)

    @property
    def coarse_size(self) -> int:
        return max(self.coarse) + 1 if self.coarse else 0

    @property
    def values_released(self) -> int:
        """Released values and cells (pieces) the synthetic column is drawn from."""
        return sum(len(level["lows"]) for level in self.levels if level["points"] != [None])

    @property
    def one_range(self) -> bool:
        """Whether all that was released is one cell of values, drawn evenly (no shape): one spread
        piece, or spread pieces that meet end to end at one density and no tilt — a cell split into
        levels by mass, or cut into refinement cells whose counts the noise pulled to an even spread
        (a 442-row table's ages, released only as the decade [10, 99], came out evenly over 10-99 in
        two such pieces: 31% of them past the real 19-79)."""
        pieces = sorted((low, high, weight, tilt) for level in self.levels if level["points"] != [None]
                        for low, high, weight, tilt in zip(level["lows"], level["highs"], level["weights"],
                                                           level.get("tilts") or [0.0] * len(level["lows"])))
        if not pieces or any(low is None or tilt for low, _, _, tilt in pieces):
            return False
        if len(pieces) == 1:
            return pieces[0][0] != pieces[0][1]
        # (Lattice values one by one count too: a code piece's cells, each given the same share.)
        gap = 0.0 if self.unit is None or self.step is None or self.format < 2 else self.unit * self.step
        size = [(high - low) + gap for low, high, _, _ in pieces]  # values (or length) each piece spans, in value units
        density = [weight / width for (_, _, weight, _), width in zip(pieces, size) if width > 0]
        meets = all(math.isclose(b[0], a[1] + gap, rel_tol=1e-9, abs_tol=1e-9 * max(abs(a[1]), 1.0))
                    for a, b in zip(pieces, pieces[1:]))
        return meets and len(density) == len(pieces) and max(density) <= min(density) * (1 + 1e-6) and min(density) > 0

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        if not self.clock:  # (only when set: the other columns' saved layout stays as it was)
            out.pop("clock")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnCode:
        return cls(**data)


@dataclass(frozen=True)
class _Resolution:
    """One histogram of a numeric column: exact lattice values, significant digits, powers of
    ten ("decade"), or fixed cells ("width"). Each is a sparse histogram: only cells present
    in the data are counted, and a cell is released when its noisy count clears the
    threshold. (Counting a fixed list of every cell instead needs only a clearing of the
    noise, but one empty cell in a few hundred clears it by chance, and an empty cell of
    10^15 put values there: the threshold's delta is the sound price.)
    """

    kind: str  # "exact" | "digits" | "decade" | "width" | "cuts"
    size: int = 0  # digits, or cell width in lattice units
    #: "cuts": the refinement's cells (see :meth:`TabularEncoder._refine_pieces`), as (lows, highs, holes)
    #: in lattice units — a value's key is the index of the cell holding it, -1 for none (or a hole).
    cuts: tuple = ()


class _Lattice:
    """Where a numeric column's values lie: ``base + k * step`` in units of ``unit``.

    ``unit`` None: no lattice (measurements with many decimals); values stay floats.
    """

    def __init__(self, unit: float | None, step: int | None, decimals: int | None, *, halves: bool = False) -> None:
        self.unit, self.step, self.base, self.decimals = unit, step, 0, decimals
        #: Whole numbers or halves, undecided: exact values are counted in half units (unit
        #: 0.5: 17.5 is 35) until the released ones say (see :meth:`TabularEncoder._refine`);
        #: coarser cells are whole numbers' cells, as on the lattice of whole numbers (see _keys).
        self.halves = halves
        self.half_units = halves

    @property
    def whole(self) -> bool:
        """Whether every value of the lattice is a whole number."""
        return self.unit is not None and float(self.unit * self.step).is_integer() and \
            float(self.unit * self.base).is_integer()

    def to_units(self, values: np.ndarray) -> np.ndarray:
        """Values (no NaN) in lattice units, snapped to the lattice; floats when there is none."""
        if self.unit is None:
            return values.astype(float)
        scaled = np.clip(np.round(values / self.unit), -9e17, 9e17).astype(np.int64)
        return self.base + np.round((scaled - self.base) / self.step).astype(np.int64) * self.step

    def points(self, low, high) -> int:
        """How many lattice values lie in [low, high] (lattice units)."""
        first, last = self.first(low), self.last(high)
        return 0 if last < first else (last - first) // self.step + 1

    def first(self, low: int) -> int:
        return int(low + (self.base - low) % self.step)

    def last(self, high: int) -> int:
        return int(high - (high - self.base) % self.step)


#: The lattice of whole numbers (cells of numbers in half units are its cells).
_WHOLE = _Lattice(1.0, 1, 0)


# ---------------------------------------------------------------------- cells of a resolution


def _keys(resolution: _Resolution, values: np.ndarray, lattice: _Lattice) -> np.ndarray:
    """The cell of every value at ``resolution`` as a 2-column int/float key array.

    In half units (whole numbers or halves undecided), a whole number's coarser cell is its
    cell on the lattice of whole numbers, and a half (an odd number of half units) is its
    own cell — shift -1 for significant digits, sign 0 for powers of ten — which
    :func:`_cell_weights` leaves out as a copy of its exact count, as it does a small whole
    number's own cell: so whole numbers are counted exactly as on the lattice of whole
    numbers (the same cells and weights), and a half only once, exactly, with the weight of
    all its column's histograms.
    """
    if resolution.kind == "exact":
        return values[:, None]
    if resolution.kind == "cuts":
        return _cut_keys(resolution.cuts, values, lattice.unit is None)[:, None]
    if lattice.half_units:
        odd = (values % 2) != 0
        keys = _keys(resolution, values // 2, _WHOLE)
        if odd.any():
            keys[odd] = np.stack([np.full(int(odd.sum()), -1), values[odd] if resolution.kind == "digits" else
                                  np.zeros(int(odd.sum()), dtype=np.int64)], axis=1)
        return keys
    if resolution.kind == "width":
        return (values // resolution.size)[:, None]
    if resolution.kind == "decade":
        if lattice.unit is not None:
            return np.stack([np.searchsorted(_POW10, np.abs(values), side="right"), np.sign(values)], axis=1)
        magnitude = np.abs(values)
        tiny = magnitude < 10.0**_MIN_EXPONENT
        exponent = np.clip(np.floor(np.log10(np.where(tiny, 1.0, magnitude))), _MIN_EXPONENT, _MAX_EXPONENT)
        return np.stack([np.where(tiny, 0.0, exponent), np.where(tiny, 0.0, np.sign(values))], axis=1)
    digits = resolution.size
    if lattice.unit is not None:  # integers in lattice units: truncation is exact
        magnitude = np.abs(values)
        length = np.searchsorted(_POW10, magnitude, side="right")  # decimal digits of |n| (0 for n = 0)
        shift = np.maximum(length - digits, 0)
        quotient = magnitude // _POW10[shift]
        return np.stack([shift, np.sign(values) * quotient], axis=1)
    magnitude = np.abs(values)
    magnitude = np.where(magnitude < 10.0**_MIN_EXPONENT, 0.0, np.minimum(magnitude, 10.0**(_MAX_EXPONENT + 1) * 0.999))
    safe = np.where(magnitude > 0, magnitude, 1.0)
    exponent = np.floor(np.log10(safe)) - digits + 1
    quotient = np.floor(safe / 10.0**exponent * (1 + 1e-12))
    over = quotient >= 10**digits
    quotient, exponent = np.where(over, np.floor(quotient / 10), quotient), np.where(over, exponent + 1, exponent)
    quotient = np.where(magnitude > 0, quotient, 0.0)
    exponent = np.where(magnitude > 0, exponent, 0.0)
    return np.stack([exponent, np.sign(values) * quotient], axis=1)


def _cell(resolution: _Resolution, key: tuple, lattice: _Lattice) -> tuple[float, float]:
    """The values of a cell: [low, high] in lattice units (inclusive), or [low, high) floats."""
    if resolution.kind == "exact":
        return key[0], key[0]
    if lattice.half_units:  # whole numbers' cell [a, b] is [a, b + 0.5] in half units: the cells tile them
        low, high = _cell(resolution, key, _WHOLE)  # (a half's own cell is never released)
        return 2 * low, 2 * high + 1
    if resolution.kind == "width":
        low = key[0] * resolution.size
        return low, low + resolution.size - 1
    if resolution.kind == "decade":
        length, sign = key
        if sign == 0:
            return (0, 0) if lattice.unit is not None else (0.0, 0.0)
        if lattice.unit is not None:
            low, high = int(_POW10[int(length) - 1]), int(_POW10[int(length)]) - 1
        else:
            low, high = 10.0**length, 10.0**(length + 1)
        return (low, high) if sign > 0 else (-high, -low)
    shift, signed = key
    if lattice.unit is not None:
        width = int(_POW10[int(shift)])
        quotient = abs(int(signed))
        low, high = quotient * width, quotient * width + width - 1
        return (low, high) if signed >= 0 else (-high, -low)
    width = 10.0 ** shift
    quotient = abs(signed)
    if quotient == 0:
        return 0.0, 0.0
    low, high = quotient * width, (quotient + 1) * width
    return (low, high) if signed >= 0 else (-high, -low)


# ---------------------------------------------------------------------- the encoder


class TabularEncoder:
    """Discrete levels for every column of a schema, fitted with differential privacy.

    Keyword-only settings; learned state ends in ``_``.
    """

    def __init__(self, *, digits: int = 2, max_levels: int = 32, max_coarse: int = 8) -> None:
        self.digits = digits
        self.max_levels = max_levels
        self.max_coarse = max_coarse

    # ------------------------------------------------------------------ fit (private)

    def fit(self, frame: pd.DataFrame | None, schema: Schema, *, ledger: PrivacyLedger, threshold_delta: float,
            step: str = "preprocessing", unit_rows: int = 1, rows: float | None = None,
            counts=None, rows_noise: float = 0.0) -> TabularEncoder:
        """Measure every column's histograms once: one Gaussian release at the noise the
        ledger's plan set for ``step``, charged to ``ledger``.

        A number is counted at each resolution of its column (exact lattice values, then
        coarser cells): where the fine cells are too sparse to clear the threshold (the
        tails), a coarser cell still carries their mass. ``unit_rows`` is the most rows one
        unit of privacy holds: its rows can move one cell of each histogram by that much.
        ``rows``, a DP count of the rows, lets the encoder say how much of each column
        could not be released; ``rows_noise``, that count's noise standard deviation (public:
        from its mechanism's scale), so that a count read high is not taken for rows too rare
        to release. ``counts(columns, resolutions, lattices)``, when given, returns
        the exact histograms instead of ``frame`` (an engine's, see
        :mod:`synthdata.tabular.stats`); the same counts.
        """
        columns, counter = list(schema), counts
        lattices = [self._lattice(column) for column in columns]
        resolutions = [self._resolutions(column, lattice) for column, lattice in zip(columns, lattices)]
        histograms = sum(len(r) for r in resolutions)
        # A row moves one cell of each histogram of its column by that cell's weight (a
        # missing value: one cell, the missing count); a column's row moves its cells by
        # at most norm (L2), the same for every column (see _cell_weights).
        norms = [_norm2(r) for r in resolutions]
        sensitivity = unit_rows * math.sqrt(max(sum(norms), 1))
        # Numbers get a second, smaller release (the refinement of their spread
        # pieces, see _refine_pieces): the step's Gaussian is split in two of the same total
        # Renyi-DP cost (1/z^2 = (1 - f)/z^2 + f/z^2), the share f fixed in advance.
        refinable = [i for i, c in enumerate(columns) if c.type == "numerical" and not c.constant]
        share = REFINE_SHARE if refinable else 0.0
        multiplier = ledger.planned_multiplier(step)
        sigma = multiplier / math.sqrt(1.0 - share) * sensitivity  # of a weighted count, first release
        thresholded = sum(len(r) for c, r in zip(columns, resolutions) if not _public_domain(c))
        # A unit can put up to unit_rows values no one else holds into each histogram.
        fail = threshold_delta / max(thresholded * unit_rows, 1)
        cache: dict[float, float] = {}

        def noise_threshold(noise: float) -> float:  # the threshold of a count with this noise
            if noise not in cache:
                cache[noise] = (gaussian_threshold(sigma=noise, fail_probability=fail, max_count=unit_rows)
                                if thresholded else 0.0)
            return cache[noise]

        def threshold(weight: float) -> float:  # a weighted count's noise is sigma / weight
            return noise_threshold(sigma / weight)

        self._threshold_of = noise_threshold
        self._rows_noise = max(float(rows_noise), 0.0)  # this fit's (read by _uninformative), not state
        self._missing_z = max(3.0, NormalDist().inv_cdf(1.0 - MISSING_FALSE_RATE / max(len(columns), 1)))
        self.threshold_ = threshold(WEIGHT_SCALE)
        self.sigma_ = sigma / WEIGHT_SCALE
        exact = counts(columns, resolutions, lattices) if counts is not None else \
            [_exact_counts(column, frame[column.name], res, lattice)
             for column, res, lattice in zip(columns, resolutions, lattices)]
        weighed = [_cell_weights(column, c, res, lattice) for column, c, res, lattice
                   in zip(columns, exact, resolutions, lattices)]
        exact = [c for c, _ in weighed]
        weights = [np.concatenate(w) for _, w in weighed]
        vector = np.concatenate([np.concatenate(c.parts()) * w for c, w in zip(exact, weights)]
                                or [np.zeros(0, np.int64)])
        refine_sensitivity = unit_rows * math.sqrt(max(len(refinable), 1))
        refine_sigma = multiplier / math.sqrt(share) * refine_sensitivity * (1 + 1e-9) if share else 0.0
        # One ledger line for both releases, at the planned multiplier: recorded (and checked)
        # before either draws noise; their composition is exactly that one Gaussian's cost.
        ledger.gaussian(
            step, sensitivity=sensitivity, sigma=multiplier * sensitivity,
            mechanism="Gaussian sparse histograms per column (values below the threshold are not released)"
                      + ("; then Gaussian counts of finer cells inside the numbers' spread pieces" if share else ""),
            parameters={
                **({"refinement": f"{REFINE_SHARE:g} of this step's Renyi-DP cost: up to {REFINE_CELLS} cells per "
                                  "spread piece of each number column (cells chosen from the first "
                                  "release), one count per row and column",
                    "first_release_sigma": round(sigma, 6),
                    "refinement_sigma": round(refine_sigma, 6),
                    "refinement_sensitivity": round(refine_sensitivity, 6)} if share else {}),
                "columns": len(columns),
                "histograms": histograms,
                "resolutions": "numbers: exact lattice values, then "
                               f"{self.digits} and {max(self.digits - 1, 1)} significant digits; dates: exact, "
                               "hour, day, month",
                "threshold": round(self.threshold_, 3),
                "weights": f"a count enters multiplied by its cell's weight, of {WEIGHT_SCALE} for a cell of one of "
                           f"several histograms; {CATEGORY_WEIGHT * WEIGHT_SCALE} for a column counted once; an exact "
                           "value that coarser cells would count again, once, with the weight of all",
                "threshold_categories": round(threshold(CATEGORY_WEIGHT * WEIGHT_SCALE), 3),
                "threshold_delta": threshold_delta if thresholded else 0.0,
            },
            extra_delta=threshold_delta if thresholded else 0.0,
        )
        noisy = ledger.noise.integer_gaussian(np.rint(vector).astype(np.int64), sigma).astype(float)
        lowest = min((threshold(float(w.max())) for w in weights if len(w)), default=0.0)
        if rows is not None and thresholded and rows < SMALL_TABLE_ROWS * lowest:
            warnings.warn(
                f"a DP count says the table holds about {rows:,.0f} rows, and at this privacy budget a value needs a "
                f"noisy count above {lowest:,.0f} rows to be released: most values cannot be, so many columns "
                f"will be coarse or left out. About {SMALL_TABLE_ROWS * lowest:,.0f} rows, or epsilon raised "
                f"about {SMALL_TABLE_ROWS * lowest / max(rows, 1):.1f}-fold, would let the common values "
                "through; categories and bounds declared public in a schema need no threshold",
                SynthdataWarning, stacklevel=3)
        offset, pieces = 0, []
        for column, counts, lattice, res, weight in zip(columns, exact, lattices, resolutions, weights):
            size = len(weight)
            base = _base_weight(res)
            self._threshold = threshold(base)  # this column's (read by _pieces and what it calls)
            self._tails_tested = bool(share) and column.type == "numerical" and not column.constant
            pieces.append(self._pieces(column, counts, noisy[offset:offset + size] / weight, sigma / base, lattice,
                                       res, cell_sigma=sigma / weight, trim=not share))
            offset += size
        self._tails_tested = False
        if share:
            pieces = self._refine_pieces(columns, pieces, lattices, refinable, refine_sigma, frame, counter,
                                         ledger.noise, [sigma / _base_weight(res) for res in resolutions])
        offset, self.codes_, self.dropped_ = 0, [], []
        for column, counts, lattice, res, weight, own in zip(columns, exact, lattices, resolutions, weights, pieces):
            size = len(weight)
            base = _base_weight(res)
            self._threshold = threshold(base)  # this column's (read by _build and what it calls)
            code, note = self._build(column, counts, noisy[offset:offset + size] / weight, sigma / base, lattice,
                                     res, rows, cell_sigma=sigma / weight, pieces=own, trim=bool(share))
            self.codes_.append(code)
            if note is not None:
                self.dropped_.append((column.name, note))
            offset += size
        del self._threshold_of  # a closure over this fit's noise: not state (the encoder stays picklable)
        del self._rows_noise, self._missing_z
        return self

    def _lattice(self, column: Column) -> _Lattice | None:
        if column.type == "numerical":
            if column.halves_undecided and column.integer and column.step is None and not column.constant:
                return _Lattice(0.5, 1, 1, halves=True)  # 17.5 is 35 half-units; whole numbers the even ones
            step = column.step if column.step is not None else (1.0 if column.integer else None)
            if step is None:
                return _Lattice(None, None, None)
            decimals = _decimals(step)
            return _Lattice(10.0**-decimals, max(int(round(step * 10**decimals)), 1), decimals)
        if column.type == "datetime":
            fmt = column.datetime_format or ""
            step = 86_400 if "%H" not in fmt else 3_600 if "%M" not in fmt else 60 if "%S" not in fmt else 1
            return _Lattice(_SECOND, step, None)
        return None

    def _resolutions(self, column: Column, lattice: _Lattice | None) -> list[_Resolution] | list[None]:
        """The histograms of a column (None: one histogram of its categories)."""
        if column.type == "numerical":
            if column.constant:
                return [_Resolution("exact")]
            digits = sorted({self.digits, max(self.digits - 1, 1)}, reverse=True)
            return [_Resolution("exact")] + [_Resolution("digits", d) for d in digits] + [_Resolution("decade")]
        if column.type == "datetime":
            if column.constant:
                return [_Resolution("exact")]
            return [_Resolution("exact")] + [_Resolution("width", w) for w in DATE_CELLS if w > lattice.step]
        return [None]

    def _pieces(self, column: Column, counts: _ExactCounts, noisy: np.ndarray, sigma: float, lattice: _Lattice | None,
                resolutions: list, cell_sigma: np.ndarray | None = None, trim: bool = True) -> list[_Piece] | None:
        """A number's or date's pieces from its noisy counts (None for other columns); may
        coarsen ``lattice`` (:meth:`_refine`). Post-processing of the released counts."""
        if column.type not in ("numerical", "datetime"):
            return None
        parts = counts.split(noisy)
        sigmas = counts.split(np.full(len(noisy), sigma) if cell_sigma is None else cell_sigma)
        released = [self._released(res, keys, part, noise, lattice)
                    for res, keys, part, noise in zip(resolutions, counts.keys, parts[:-1], sigmas[:-1])]
        if column.constant:
            low = lattice.to_units(np.array([_numeric_bounds(column)[0]]))[0]
            released = [{(low,): max(float(parts[0].sum()), 1.0)}]
        exact_var = {key[0]: (float(noise) / sigma) ** 2 for key, noise in zip(counts.keys[0], sigmas[0])}
        pieces = self._numeric_pieces(column, released, resolutions, lattice, sigma, exact_var)
        if len(pieces) > 1:  # again, knowing the span every resolution's pieces reach (see _numeric_pieces)
            span = (min(p.low for p in pieces), max(p.high for p in pieces))
            pieces = self._numeric_pieces(column, released, resolutions, lattice, sigma, exact_var, span, trim=trim)
        return pieces

    def _build(self, column: Column, counts: _ExactCounts, noisy: np.ndarray, sigma: float, lattice: _Lattice | None,
               resolutions: list, rows: float | None, cell_sigma: np.ndarray | None = None,
               pieces: list[_Piece] | None = None, trim: bool = False) -> tuple[ColumnCode, str | None]:
        """A column's levels from its noisy counts: thresholded cells, or the declared domain.

        ``sigma``: the noise of a count of weight one (after division by the weights);
        ``cell_sigma``, every count's own (a cell of a larger weight has less noise).
        ``pieces``: a number's pieces already made (:meth:`_pieces`, refined); ``trim``: their
        edges are still to be cut (:meth:`_trim_edges`).
        """
        code = ColumnCode(
            name=column.name,
            kind=column.type,
            dtype=_output_dtype(column),
            integer=bool(column.integer),
            bounds=list(_numeric_bounds(column)) if column.bounds is not None else None,
            datetime_format=column.datetime_format,
            format=2,
            clock=column.clock,
        )
        parts = counts.split(noisy)
        sigmas = counts.split(np.full(len(noisy), sigma) if cell_sigma is None else cell_sigma)
        if column.type in ("numerical", "datetime"):
            code.unit, code.decimals = lattice.unit, lattice.decimals
            if pieces is None:
                pieces = self._pieces(column, counts, noisy, sigma, lattice, resolutions, cell_sigma)
            elif trim and not column.constant:  # made untrimmed (and refined): its edges are cut now
                pieces = self._trim_edges(pieces, lattice, resolutions, sigma, decay=column.type == "numerical",
                                          hard_ends=column.type == "datetime")
            if column.clock and pieces and lattice.unit is not None:
                pieces = _within_day(pieces, lattice)
            if column.type == "numerical" and pieces:
                pieces = _follow_density(pieces, lattice)
            code.step, code.base = lattice.step, lattice.base
            if lattice.halves or (column.halves_undecided and not lattice.whole):  # halves released: not integers
                code.integer, code.dtype = False, "float64"
            if not pieces and column.bounds is not None:
                low, high = lattice.to_units(np.array(_numeric_bounds(column)))
                if lattice.unit is not None:
                    low, high = lattice.first(low), lattice.last(high)
                pieces = [_Piece(low, high, 1.0, ())]
            levels = self._numeric_levels(pieces, lattice)
            if pieces:
                code.released_range = [_value(min(p.low for p in pieces), lattice),
                                       _value(max(p.high for p in pieces), lattice)]
        else:
            (keys,) = counts.keys
            if _public_domain(column):
                released = {value: c for value, c in zip(keys, parts[0]) if c > 0}
                if not released:  # noise swamped every count: the declared domain, evenly
                    released = {value: 1.0 for value in keys}
            else:
                released = {value: c for value, c, noise in zip(keys, parts[0], sigmas[0])
                            if c > self._cell_threshold(noise)}
            levels = [{"points": [value], "lows": [None], "highs": [None], "weights": [float(c)]}
                      for value, c in sorted(released.items(), key=lambda kv: str(kv[0]))]
        # The missing level is public (any column may have gaps); its count is noisy, and
        # a count indistinguishable from noise is read as "no missing values".
        noisy_missing = float(parts[-1][0])
        has_missing = noisy_missing > getattr(self, "_missing_z", 3.0) * float(sigmas[-1][0])
        if has_missing:
            levels.append({"points": [None], "lows": [None], "highs": [None], "weights": [noisy_missing]})
        code.levels = levels
        code.counts = [float(sum(level["weights"])) for level in levels]
        noise = float(max(float(np.max(part)) for part in sigmas if len(part)))  # the column's noisiest count
        dropped = self._uninformative(column, code, rows, noise)
        if dropped is None:
            self._warn_unreleased(column, code, rows, noise)
        if not code.levels:  # never a column without a level: it is dropped, but must still decode
            code.levels = [{"points": [None], "lows": [None], "highs": [None], "weights": [1.0]}]
            code.counts = [1.0]
        code.coarse = self._coarse(code)
        return code, dropped

    def _refine_pieces(self, columns: list[Column], pieces: list, lattices: list, refinable: list[int],
                       sigma: float, frame: pd.DataFrame | None, counter, noise,
                       first_sigmas: list[float]) -> list:
        """Where inside its spread pieces each number's mass lies: a second Gaussian release.

        A piece spread over many values (a cell's remainder beyond its finer releases) is
        known only as a whole: a 1-7 scale's last decade cell reaches 9, a year column's
        century cell [2000, 2099] 2099, coordinates' cell [44, 45) a whole degree. Each such
        piece is cut into up to :data:`REFINE_CELLS` cells of about equal numbers of lattice
        values (public: chosen from the first release), and every row counts once in the
        cell holding its value (none when its value is a released exact value or in no
        piece): per column and row one count of one, so the L2 sensitivity is the unit's
        rows times the square root of the refinable columns. Gaussian noise ``sigma``, no
        threshold (a fixed list of cells; the values emitted stay inside pieces the first
        release proved). Post-processing (:func:`_shape_piece`): the column's lowest and
        highest pieces lose their outer cells while those cells' noisy count, summed from
        the outside, stays under :data:`REFINE_MARGIN` standard deviations (nothing proves
        data there), and every piece's mass is shared among its cells by their noisy counts.
        A piece that is all a released cell's remainder (``proven``) is never cut away whole.
        """
        cells, resolutions, ends, protected, starts = [], [], [], [], []
        for i in refinable:
            own = pieces[i] or []
            chosen_pieces = _to_refine(own, lattices[i])
            codes = chosen_pieces & _code_pieces(own, lattices[i])
            marked = sorted(((j, cell, end) for j, piece in enumerate(own) if j in chosen_pieces
                             for cell, end in (((c, False) for c in _sub_cells(piece, lattices[i],
                                                                              _size(piece, lattices[i])))
                                               if j in codes else
                                               _start_apart(_end_cells(_sub_cells(piece, lattices[i],
                                                                                  _refine_cells(piece.weight, sigma)),
                                                                       _column_ends(piece, own)), lattices[i]))),
                            key=lambda c: c[1][0])
            cuts = [(j, cell) for j, cell, _ in marked]
            protected.append(self._code_reach(columns[i], own, codes, cuts, lattices[i]))
            holes = sorted({p.low for p in own if p.low == p.high})
            cells.append(cuts)
            ends.append(frozenset(k for k, (_, _, end) in enumerate(marked) if end is True))
            starts.append(frozenset(k for k, (_, _, end) in enumerate(marked) if end == START))
            resolutions.append([_Resolution("cuts", cuts=(tuple(c[1][0] for c in cuts), tuple(c[1][1] for c in cuts),
                                                          tuple(holes)))])
        targets = [columns[i] for i in refinable]
        chosen = [lattices[i] for i in refinable]
        exact = counter(targets, resolutions, chosen) if counter is not None else \
            [_exact_counts(c, frame[c.name], r, lat) for c, r, lat in zip(targets, resolutions, chosen)]
        dense = []
        for cuts, counted in zip(cells, exact):
            vector = np.zeros(len(cuts), dtype=np.int64)
            for key, value in zip(counted.keys[0], counted.counts[0]):
                if int(key[0]) >= 0:
                    vector[int(key[0])] = value
            dense.append(vector)
        sizes = [len(v) for v in dense]
        flat = np.concatenate(dense) if sum(sizes) else np.zeros(0, dtype=np.int64)
        noisy = noise.integer_gaussian(flat, sigma).astype(float) if len(flat) else flat.astype(float)
        out, offset = list(pieces), 0
        margin = _start_margin(sum(len(k) for k in starts))
        for i, cuts, size, merged, sure, start in zip(refinable, cells, sizes, ends, protected, starts):
            column_noisy, offset = noisy[offset:offset + size], offset + size
            if out[i] and cuts:
                cuts, column_noisy, merged, sure = _join_quiet_starts(cuts, column_noisy, margin * sigma, merged, sure,
                                                                      start)
                out[i] = _shape_column(out[i], cuts, column_noisy, sigma, lattices[i], merged, sure,
                                       first_sigma=first_sigmas[i])
        return out

    def _code_reach(self, column: Column, pieces: list[_Piece], codes: set[int], cuts: list[tuple],
                    lattice: _Lattice) -> frozenset:
        """The refinement cells of code pieces that real values surely reach, by the first release.

        A code piece (:func:`_code_pieces`) is a remainder spread over lattice values none of which
        was released: each holds at most about its threshold plus :data:`EDGE_MARGIN` noise sd
        (``cap``, at the exact count's own weight: a small whole number's is lower than the
        column's), so the remainder's mass, read :data:`EDGE_MARGIN` sd low, fills at least
        ``k = ceil(mass / cap)`` of them: the column reaches at least the ``k``-th value from the
        remainder's inner side. Those cells are kept whatever the refinement's noise says at the
        column's ends (:func:`_shape_column`). The pieces of one remainder (a group) count together.
        Post-processing of the first release (which values were released, the noise levels)."""
        finder = getattr(self, "_threshold_of", None)
        if not codes or finder is None or not getattr(self, "sigma_", 0):
            return frozenset()
        resolutions = self._resolutions(column, lattice)
        sigma = self.sigma_ * WEIGHT_SCALE  # of a weighted count, first release
        base = _base_weight(resolutions)
        sure = set()
        for members, mass, var in _remainder_units(pieces, codes):
            mine = sorted((cell[0], k) for k, (j, cell) in enumerate(cuts) if j in members)
            if not mine:
                continue
            caps = []
            for value, _ in mine:
                noise = sigma / _exact_weight(value, resolutions, lattice, base)
                caps.append(finder(noise) + EDGE_MARGIN * noise)
            low = mass - EDGE_MARGIN * (sigma / base) * math.sqrt(max(var, 0.0))
            cap = max(caps)
            if low <= 0 or cap <= 0:
                continue
            needed = min(math.ceil(low / cap), len(mine))
            others = [p for j, p in enumerate(pieces) if j not in members]
            ordered = [k for _, k in mine]
            # Inner side: away from the column's end the remainder's values lie at (inside: no end).
            top = not others or cuts[ordered[-1]][1][1] > max(p.high for p in others)
            bottom = not others or cuts[ordered[0]][1][0] < min(p.low for p in others)
            if top and not bottom:
                sure.update(ordered[:needed])
            elif bottom and not top:
                sure.update(ordered[-needed:])
        return frozenset(sure)

    def _released(self, resolution: _Resolution, keys: list, noisy: np.ndarray, sigma: np.ndarray,
                  lattice: _Lattice) -> dict:
        """The cells of one histogram that clear the threshold (each at its own noise)."""
        return {key: c for key, c, noise in zip(keys, noisy, sigma) if c > self._cell_threshold(noise)}

    def _cell_threshold(self, noise: float) -> float:
        """The threshold of a count whose noise (after division by its weight) is ``noise``."""
        finder = getattr(self, "_threshold_of", None)
        return self._threshold if finder is None else finder(float(noise))

    def _uninformative(self, column: Column, code: ColumnCode, rows: float | None,
                       noise: float = 0.0, rows_noise: float | None = None) -> str | None:
        """Why a column cannot be released usefully, or None.

        No released value: nothing to synthesise. One released value holding (nearly) every
        row: a constant, nothing to learn. One value beside many rows too rare to release
        is kept (the steward is told how much could not be released).
        """
        if column.constant or _public_domain(column):
            return None
        values = code.values_released
        threshold = f"a value needs a noisy count above {self._threshold:.0f} rows to be released"
        if values == 0:
            return (f"no value is frequent enough to be released at this privacy budget ({threshold}); raise "
                    "epsilon, or declare its categories or bounds in a schema (public, no threshold)")
        if code.kind in ("numerical", "datetime") and code.one_range:
            low, high = clock_hhmm(np.array(code.released_range)) if code.clock else code.released_range
            return (f"only one wide range of its values ({low:g} to {high:g}) is frequent enough to be released at "
                    f"this privacy budget ({threshold}); drawn uniformly it would show nothing of the column. Raise "
                    "epsilon, or declare public bounds in a schema")
        if values >= 2:
            return None
        released = float(sum(max(c, 0.0) for c in code.counts))
        # Rows the released levels leave unexplained count only past their counts' noise
        # (``noise``, each level's at most) and the DP row count's own (``rows_noise``, its
        # standard deviation): a constant's one count read low by the noise, or the row
        # count read high by its, is not evidence of other values (a hospital's name on
        # every row was kept in a few percent of releases of a 1,400-row table). The
        # variances add: the difference holds every level's noise and the row count's.
        # CONSTANT_MARGIN sd of it, not more: a real column called a constant is lost.
        margin = self._unexplained_margin(code, noise, rows_noise, sds=CONSTANT_MARGIN)
        if rows is not None and rows > 0 and rows - released > CONSTANT_SHARE * rows + margin:
            return None
        return ("it holds one value (at this privacy budget), so there is nothing to learn from it; declare it in "
                "a schema with equal bounds or a single category to keep it as a public constant")

    def _unexplained_margin(self, code: ColumnCode, noise: float, rows_noise: float | None = None, *,
                            sds: float = REMAINDER_MARGIN) -> float:
        """How many rows the released levels may leave unexplained by noise alone: ``sds``
        standard deviations of the row count less the released counts (every level's noise,
        ``noise`` at most, and the row count's own, ``rows_noise``; variances add)."""
        if rows_noise is None:
            rows_noise = getattr(self, "_rows_noise", 0.0)
        return sds * math.sqrt(noise ** 2 * max(len(code.levels), 1) + rows_noise ** 2)

    def _warn_unreleased(self, column: Column, code: ColumnCode, rows: float | None, noise: float = 0.0) -> None:
        if rows is None or rows <= 0 or _public_domain(column):
            return
        released = float(sum(max(c, 0.0) for c in code.counts))
        share = 1.0 - released / rows
        # And only past the noise of that difference: on a small table the row count's noise
        # alone could read as 'rows too rare to release' (a warning with no cause).
        if share > UNRELEASED_WARN_SHARE and share * rows > self._unexplained_margin(code, noise):
            what = "values" if column.type == "categorical" else "values (and value ranges)"
            warnings.warn(
                f"column {column.name!r}: about {share:.0%} of its rows hold {what} too rare to be released at "
                f"this privacy budget (a value needs a noisy count above {self._threshold:.0f} rows); in the "
                "synthetic data they are replaced by the released ones. Raising epsilon lowers that threshold "
                "(about in proportion); categories or bounds declared public in a schema need none",
                SynthdataWarning, stacklevel=5)

    # ------------------------------------------------------------------ numbers

    def _numeric_pieces(self, column: Column, released: list[dict], resolutions: list[_Resolution],
                        lattice: _Lattice, sigma: float, exact_var: dict | None = None,
                        span: tuple | None = None, trim: bool = True) -> list[_Piece]:
        """Released cells -> pieces on the lattice: exact values, then what each coarser
        cell carries beyond its finer released cells, spread over the values they leave.

        A cell is released when its own count clears the sparse threshold. Its remainder
        (its count less the finer releases inside: a difference of noisy counts) is spread
        over the values no finer release covers, when it stands out of the noise those
        counts add up to (:data:`REMAINDER_MARGIN` standard deviations). A gap beyond the
        pieces placed so far widens the column's range: a remainder that would not clear
        the release threshold on its own (a difference of releases, not a release) takes
        it only where it starts at a placed piece's end (a tail going on), never beyond an
        empty stretch — a released cell whose mass is all one exact value at its low end
        (rates capped at 0.2 came out up to 0.3 when a decade's remainder was spread over
        its empty top).
        A remainder too small to stand out is kept aside: if the coarser cell holding it
        finds mass its finer releases do not explain, that mass goes first to the
        remainders kept aside inside it (the cell they came from proves data there; their
        gaps as allowed now), and only the rest to
        the regions that released nothing. Spread over those first, it put weighed grams
        below the lightest one. ``span``: where the pieces of a first pass reached (a
        coarser cell's remainder may prove data above a finer cell's gap: then that gap
        is inside, not beyond).
        """
        if column.constant:
            ((key, weight),) = released[0].items()
            return [_Piece(key[0], key[0], weight, ())]
        exact = {key[0]: w for key, w in released[0].items()}
        self._refine(lattice, exact, released, resolutions)
        cells = [[(_cell(res, key, lattice), w) for key, w in rel.items()]
                 for res, rel in zip(resolutions, released)]
        continuous = lattice.unit is None
        exact_var = exact_var or {}
        tested = getattr(self, "_tails_tested", False)
        pieces = [_Piece(v, v, w, (), exact_var.get(v, 1.0)) for v, w in exact.items()]
        points = np.array(sorted(exact), dtype=float if continuous else np.int64)
        finer: list[tuple[float, float]] = []  # released cells of the resolutions done
        aside: list[tuple] = []  # (low, high, remainder, noise, gaps, resolution) too small to use

        groups = iter(range(1 << 30))

        def spread(low, high, weight, noise, gaps, resolution):
            group = next(groups)
            sizes, holes_of = [], []
            for gap_low, gap_high in gaps:
                if continuous:
                    sizes.append(gap_high - gap_low)
                    holes_of.append(())
                    continue
                inside = points[(points >= gap_low) & (points <= gap_high)]
                holes_of.append(tuple(int(h) for h in inside))
                sizes.append(lattice.points(gap_low, gap_high) - len(inside))
            total = float(sum(sizes))
            proven = sum(size > 0 for size in sizes) == 1 and weight > self._threshold
            out = []
            for (gap_low, gap_high), size, holes in zip(gaps, sizes, holes_of):
                if size > 0:
                    if not continuous:
                        gap_low, gap_high = lattice.first(gap_low), lattice.last(gap_high)
                    out.append(_Piece(gap_low, gap_high, weight * size / total, holes, noise * size / total,
                                      resolution, proven, group=group))
            return out

        for r in range(1, len(resolutions)):
            starts = np.array([p.low for p in pieces], dtype=float)
            order = np.argsort(starts, kind="stable")
            starts = starts[order]
            cumulative = np.concatenate([[0.0], np.cumsum([pieces[i].weight for i in order])])
            variance = np.concatenate([[0.0], np.cumsum([pieces[i].var for i in order])])
            finer_sorted = sorted(finer)
            # The span of the pieces so far (exact values, remainders used): a gap inside it
            # has data placed on both sides. (Not the span of the released cells: a cell
            # whose mass is all one exact value at its low end proves nothing above it.)
            placed = (min(p.low for p in pieces), max(p.high for p in pieces)) if pieces else None
            inner = placed or span
            if span is not None and inner is not None:
                inner = (min(inner[0], span[0]), max(inner[1], span[1]))
            new, kept_aside = [], []
            for (low, high), weight in cells[r]:
                # Mass the finer releases put inside this cell.
                lo_i = np.searchsorted(starts, low, side="left")
                hi_i = np.searchsorted(starts, high, side="left" if continuous else "right")
                residual = weight - (cumulative[hi_i] - cumulative[lo_i])
                noise = 1.0 + variance[hi_i] - variance[lo_i]  # in units of sigma squared
                gaps = _subtract((low, high), finer_sorted, continuous)
                # A gap between the pieces so far may take the remainder; one beyond them
                # widens the column's range, so only when it starts where placed mass ends
                # (a tail going on). Beyond an empty stretch — a released cell whose mass
                # is all one exact value at its low end — nothing proves data there.
                if residual <= self._threshold:  # not a release on its own: a difference of releases
                    gaps = [g for g in gaps if _allowed(g, inner, pieces, lattice)]
                interior = bool(gaps) and all(_between_spread(g, pieces, lattice) for g in gaps)
                # A tail going on past the pieces placed (every gap beyond them, starting where a
                # spread piece ends) is tested again where the refinement follows: its cells at
                # the column's end go unless their counts stand out (_shape_column).
                tail = (tested and bool(gaps) and bool(pieces)
                        and all((g[0] >= placed[1] or g[1] <= placed[0]) and _allowed(g, placed, pieces, lattice)
                                for g in gaps))
                # Codes between released values keep the remainder margin: at 1 sd (INTERIOR_MARGIN) a
                # remainder of noise alone was used in a large share of fits and put values no row holds
                # between released ones (halves 1.5 between whole numbers: test_codes_and_halves).
                margin = INTERIOR_MARGIN if interior else TAIL_MARGIN if tail else REMAINDER_MARGIN
                if residual <= margin * sigma * math.sqrt(noise) or not gaps:
                    if residual > 0 and gaps:
                        kept_aside.append((low, high, residual, noise, gaps, r))
                    continue
                # First to the remainders kept aside inside this cell, then to its gaps.
                for entry in [a for a in aside if low <= a[0] and a[1] <= high]:
                    entry_gaps = [g for g in entry[4] if entry[2] > self._threshold or _allowed(g, inner, pieces, lattice)]
                    share = min(entry[2], residual)
                    if share > 0 and entry_gaps:
                        new.extend(spread(entry[0], entry[1], share, entry[3], entry_gaps, entry[5]))
                        residual -= share
                    aside.remove(entry)
                if residual > 0:
                    new.extend(spread(low, high, residual, noise, gaps, r))
            pieces.extend(new)
            aside.extend(kept_aside)
            finer.extend(cell for cell, _ in cells[r])
        if not trim:  # refined by a second release instead (see _refine_pieces)
            return sorted(pieces, key=lambda p: (p.low, p.high))
        return self._trim_edges(pieces, lattice, resolutions, sigma, hard_ends=column.type == "datetime")

    def _refine(self, lattice: _Lattice, exact: dict, released: list[dict], resolutions: list[_Resolution]) -> None:
        """A coarser lattice read off the released exact values: their common step, when
        enough are released and every released cell still holds a lattice value.

        A column whose halves are undecided (whole numbers to inference, whose noise can
        hide 2% of halves) is whole numbers unless a released exact value is a half: a half
        held by enough rows to matter clears the release threshold, one that does not is
        never emitted as itself, and no released cell needs it (a cell of the half lattice
        wider than one value holds a whole number).
        """
        if lattice.halves:
            if not any(int(value) % 2 for value in exact):
                lattice.step, lattice.base = 2, 0
            lattice.halves = False
        if lattice.unit is None or len(exact) < MIN_VALUES_FOR_STEP:
            return
        values = np.array(sorted(exact), dtype=np.int64)
        step = int(np.gcd.reduce(values - values[0]))
        if step <= lattice.step or step % lattice.step:
            return
        refined = _Lattice(lattice.unit, step, lattice.decimals)
        refined.base = int(values[0] % step)
        for res, rel in zip(resolutions[1:], released[1:]):
            for key in rel:
                low, high = _cell(res, key, lattice)
                if refined.points(low, high) == 0:
                    return
        lattice.step, lattice.base = refined.step, refined.base

    def _trim_edges(self, pieces: list[_Piece], lattice: _Lattice, resolutions: list[_Resolution] | None = None,
                    sigma: float = 0.0, decay: bool = False, hard_ends: bool = False) -> list[_Piece]:
        """The lowest and highest pieces cut to the part the data plausibly fills.

        A released cell or remainder holds real values, but where inside it is unknown; at
        the edges of a column that matters: the real minimum may lie inside the lowest
        piece (ages from 18 in a cell of 10 to 19), or only its first values may be real.
        Two readings of the released counts say how far an edge piece of mass ``w`` reaches
        from its inner side, and the piece is cut to the further one:

        * the density does not jump at the edge: next to pieces of density ``d`` (mass per
          value; a single value of a column without a lattice is a point, not density) it
          fills about ``w / d`` values;
        * its finer cells were not released (only a remainder of a coarser cell is a
          piece), so none holds more than about the threshold: ``w`` needs at least
          ``ceil(w / cap)`` of them, and real values reach that many finer cells in
          (:meth:`_reach`). On a long tail this is what reaches: a decade of page values
          holding 15% of the rows is cut to 3 of its 9 first-digit cells, not to a fifth
          of one at the density of the cells beside it.

        Both are lower bounds of where real values reach (the first when the density falls
        towards the edge), so the cut piece stays inside the real range; the further tail
        stays out of reach (issue 11: extrapolating the density's fall reached past the real
        maximum on codes and rates ending in a point mass). With ``decay`` (the pieces are
        refined: an edge piece is a refinement cell, or a released cell's innermost one), where
        the two spread pieces nearest the edge show the density falling towards it, it keeps
        falling at their rate (:func:`_edge_decay`): the piece fills as many values as that
        falling density needs for its mass, never more than the piece, and is drawn falling
        (its ``tilt``, :func:`_decay_tilt`). Flat, a long tail's edge piece put its mass in its
        first values only (page counts of [100, 149] cut to [100, 114] while the real rows reach
        705). Codes and rates ending in a point mass have exact values, not spread pieces,
        beside the edge: the flat rule holds there. A piece that is one value (a
        released exact value) is real and never cut. A piece that is both the lowest and the
        highest (every other piece lies inside it: a 1-7 scale's decade [1, 9] around its
        released answers) is first split where the others start and end (:func:`_split_spanning`),
        so that each end is cut on its own: cut as one piece from below, its inner end was its
        top, and its mass of 1-6 moved onto 7-9. With ``hard_ends`` (dates: records end on a
        day, such as the extraction's, and a date past it is plainly impossible) the flat rule
        reads the edge piece's mass :data:`EDGE_MARGIN` standard deviations low, as
        :meth:`_reach` does: read with its noise, a date column spread evenly to its last day
        passed it in 6 of 8 releases (1.6% of the values, up to ~25 days). Post-processing of
        released counts.
        """
        pieces = sorted(pieces, key=lambda p: (p.low, p.high))
        if len(pieces) < 2:
            return pieces
        pieces = _split_spanning(pieces, lattice)
        for side in (0, -1):
            index = 0 if side == 0 else max(range(len(pieces)), key=lambda i: (pieces[i].high, pieces[i].low))
            piece = pieces[index]
            if piece.low == piece.high:
                continue
            others = pieces[:index] + pieces[index + 1:]
            inside = _without_far_edge(others, side)
            inward = inside[:3] if side == 0 else inside[-3:]
            if lattice.unit is None:  # a point of a continuous column has mass but no width: not density
                spans = [p for p in inside if p.high > p.low]
                inward = spans[:3] if side == 0 else spans[-3:]
            if not inward:
                continue
            size = _size(piece, lattice)
            densities = [_density([p], lattice) or 0.0 for p in inward]
            nearest = densities[0] if side == 0 else densities[-1]
            if size > 0 and piece.weight / size > DENSE_EDGE * nearest:
                # Denser than the piece beside it: a point mass (a cap, a round value) somewhere
                # inside; the piece's inner end is the one value surely in range.
                at = piece.high if side == 0 else piece.low
                pieces[index] = _Piece(at, at, piece.weight, (), piece.var)
                continue
            density = _density(inward, lattice) or 0.0
            if min(densities) > 0 and max(densities) > SPIKY * min(densities):
                density = max(densities)  # codes: the values beside it are spikes, so the edge's mass is one too
            if all(p.high == p.low for p in inward) and any(p.resolution > 0 for p in inward):
                # Beside a code piece's cells (values the threshold kept from release, counted one by one:
                # what the released codes leave), the edge's mass is one more code: at the density of the
                # released codes nearest it (the cells' own density is that of the leftovers).
                released = [p for p in others if p.high == p.low and p.resolution == 0]
                released = released[:3] if side == 0 else released[-3:]
                density = max([density] + [_density([p], lattice) or 0.0 for p in released])
            mass = max(_mass_read_low(piece, sigma), piece.weight / 2) if hard_ends else piece.weight
            filled = mass / density if density > 0 else size
            # Only beside spread pieces: beside released values (spikes: codes, a table's round
            # percentages) the edge's mass may be one more spike, and the flat rules above hold.
            spiky = any(p.high == p.low for p in inward)
            # A merged end cell (_end_cells) is wide: where inside it the column ends is unknown, and a
            # falling density that cannot hold its mass would fill it whole (temperatures to 19.9 past a
            # real 18.3): it is cut flat, by the density beside it.
            falling = _edge_decay(piece, side, others, lattice) if decay and not spiky and not piece.merged else None
            if falling is not None:  # the values the falling density needs for the piece's mass
                start, rate = falling
                need = min(piece.weight * rate / start, FALL_HELD)
                filled = max(filled, -math.log1p(-need) / rate)
            reach = self._reach(piece, side, lattice, resolutions, sigma) if resolutions else None
            if lattice.unit is None:
                if reach is not None:
                    filled = max(filled, (piece.high - reach) if side == 0 else reach - piece.low)
                if filled < size:
                    low, high = (piece.high - filled, piece.high) if side == 0 else (piece.low, piece.low + filled)
                    piece = pieces[index] = _Piece(low, high, piece.weight, (), piece.var)
                if falling is not None:
                    pieces[index] = replace(piece, tilt=_decay_tilt(piece, side, lattice, *falling))
                continue
            if filled >= size:
                if falling is not None:
                    pieces[index] = replace(piece, tilt=_decay_tilt(piece, side, lattice, *falling))
                continue
            count = max(int(round(filled)), 1) + len(piece.holes)  # the values it fills, not one more
            if side == 0:
                low = lattice.first(max(piece.high - (count - 1) * lattice.step, piece.low))
                if reach is not None:
                    low = min(low, lattice.first(max(reach, piece.low)))
                high = piece.high
            else:
                low = piece.low
                high = lattice.last(min(piece.low + (count - 1) * lattice.step, piece.high))
                if reach is not None:
                    high = max(high, lattice.last(min(reach, piece.high)))
            holes = tuple(h for h in piece.holes if low <= h <= high)
            pieces[index] = _Piece(low, high, piece.weight, holes, piece.var)
            if falling is not None:
                pieces[index] = replace(pieces[index], tilt=_decay_tilt(pieces[index], side, lattice, *falling))
        return pieces

    def _reach(self, piece: _Piece, side: int, lattice: _Lattice, resolutions: list[_Resolution],
               sigma: float) -> float | None:
        """How far from its inner side an edge piece's real values reach, by its finer cells.

        The piece is what a coarser cell holds beyond its finer released cells: none of the
        finer cells inside it cleared the threshold, so each holds at most about the
        threshold plus :data:`EDGE_MARGIN` standard deviations (``cap``), and its mass, read
        :data:`EDGE_MARGIN` standard deviations low, fills at least ``k = ceil(w / cap)``
        of them: some real value lies in the ``k``-th finer cell from the inner side, or
        further. Returns the inner end of that cell (lattice units; the lowest value that
        far for the upper edge, the highest for the lower edge) for the finest-celled
        resolution that reaches furthest, or None when the piece's mass fills no more than
        one cell. Post-processing of which cells were released and of the noise level.
        """
        if piece.resolution <= 0 or sigma <= 0:
            return None
        mass = _mass_read_low(piece, sigma)
        cap = self._threshold + EDGE_MARGIN * sigma
        cells = math.ceil(mass / cap) - 1 if mass > 0 and cap > 0 else 0
        if cells < 1:
            return None
        continuous = lattice.unit is None
        edge = piece.low if side == -1 else (np.nextafter(piece.high, -np.inf) if continuous else piece.high)
        best = None
        for resolution in resolutions[:piece.resolution]:
            if resolution.kind == "exact":
                if continuous:
                    continue
                width, low, high = lattice.step, edge, edge
            else:
                if lattice.half_units and int(edge) % 2:  # a half: in no coarser cell
                    continue
                key = tuple(_keys(resolution, np.array([edge], dtype=float if continuous else np.int64),
                                  lattice)[0])
                # In half units: on the whole numbers' cells, then back (see _keys).
                low, high = _cell(resolution, key, _WHOLE if lattice.half_units else lattice)
                width = (high - low) if continuous else (high - low + 1)
            if side == -1:  # upper edge: the k-th cell up starts at low + cells * width
                end = low + cells * width
            else:  # lower edge: the k-th cell down ends at high - cells * width (continuous: its start, exclusive)
                end = (low - (cells - 1) * width) if continuous else (high - cells * width)
            if lattice.half_units and resolution.kind != "exact":
                end = 2 * end
            best = end if best is None else (max(best, end) if side == -1 else min(best, end))
        return best

    def _numeric_levels(self, pieces: list[_Piece], lattice: _Lattice) -> list[dict[str, Any]]:
        """Pieces (sorted by value) grouped into at most ``max_levels`` levels of about equal mass."""
        if not pieces:
            return []
        pieces = sorted(pieces, key=lambda p: (p.low, p.high))
        weights = np.array([p.weight for p in pieces])
        groups = _split_by_mass(weights, self.max_levels)
        levels = [{"points": [_value((pieces[i].low + pieces[i].high) / 2, lattice, snap=False) for i in g],
                   "lows": [_value(pieces[i].low, lattice) for i in g],
                   "highs": [_value(pieces[i].high, lattice) for i in g],
                   "holes": [[_value(h, lattice) for h in pieces[i].holes] for i in g],
                   "weights": [float(weights[i]) for i in g]}
                  for g in groups]
        for level, g in zip(levels, groups):
            if any(pieces[i].tilt for i in g):  # (a level without one keeps the layout models had before)
                level["tilts"] = [round(float(pieces[i].tilt), 6) for i in g]
        return levels

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

    def drop(self, names: list[str]) -> None:
        """Leave these columns out (the caller removes them from the schema too)."""
        self.codes_ = [code for code in self.codes_ if code.name not in set(names)]

    def fitted_schema(self, schema: Schema) -> Schema:
        """``schema`` as this fit settled it: a column whose halves inference left undecided
        is whole numbers, or, where released exact values were halves, numbers on a step of
        0.5 (never declared integer: the synthetic column holds 5.5). Post-processing."""
        codes = {code.name: code for code in self.codes_}
        columns = []
        for column in schema:
            if column.halves_undecided:
                code = codes.get(column.name)
                halves = code is not None and not code.integer
                column = replace(column, integer=not halves, step=0.5 if halves else None, halves_undecided=False)
            columns.append(column)
        return replace(schema, columns=tuple(columns))

    # ------------------------------------------------------------------ encode / decode

    def encode(self, frame: pd.DataFrame, schema: Schema, *, rng: np.random.Generator) -> np.ndarray:
        """Level index of every row and column (rows x columns, int64)."""
        out = np.empty((len(frame), len(self.codes_)), dtype=np.int64)
        for j, code in enumerate(self.codes_):
            out[:, j] = self._encode_column(code, schema[code.name], frame[code.name], rng)
        return out

    def _encode_column(self, code: ColumnCode, column: Column, series: pd.Series,
                       rng: np.random.Generator) -> np.ndarray:
        index = _column_levels(code, column, series)
        # Values never released (rare categories, gaps without a missing level) are
        # reassigned at random in proportion to the released counts.
        unassigned = index < 0
        if unassigned.any():
            index[unassigned] = rng.choice(code.size, size=int(unassigned.sum()), p=reassign_weights(code))
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
                raw = _draw_numbers(code, column, rng) if code.format >= 2 else _draw_numbers_v1(code, column, rng)
                yield code, (clock_hhmm(raw) if code.clock else raw)
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
        encoder.dropped_ = []
        return encoder


@dataclass(frozen=True)
class _Piece:
    """Lattice values [low, high] (lattice units; continuous: [low, high)) less ``holes``, with a weight."""

    low: Any
    high: Any
    weight: float
    holes: tuple
    var: float = 1.0  # noise variance of the weight, in units of sigma squared
    resolution: int = 0  # the histogram it came from (0: exact values; its finer ones released nothing inside it)
    proven: bool = False  # all of a cell's remainder, one that would clear the release threshold on its own
    tilt: float = 0.0  # log-density's rise from low to high (0: drawn evenly; see _follow_density)
    merged: bool = False  # a column's end cell of the refinement, merged (see _end_cells): its edge is cut flat
    group: int = -1  # the remainder it is part of (pieces spread from one cell's remainder over its gaps), -1: none


def _within_day(pieces: list[_Piece], lattice: _Lattice) -> list[_Piece]:
    """A clock column's spread pieces cut to the day, minutes 0 to 1439 (0000 to 2359), their weight
    kept: an edge piece's cut reads the density beside it (:meth:`TabularEncoder._trim_edges`),
    and late evening's rising density took scheduled arrivals to 2368 (0.5-0.9% of them). A released
    value (one lattice value: ``2400`` where the data writes midnight so) is real and kept.
    Post-processing."""
    first, last = lattice.to_units(np.array([0.0, 1439.0]))
    first, last = lattice.first(first), lattice.last(last)
    out = []
    for piece in pieces:
        if piece.low < piece.high and (piece.low < first or piece.high > last) and \
                piece.high >= first and piece.low <= last:
            low, high = max(piece.low, first), min(piece.high, last)
            piece = replace(piece, low=low, high=high, holes=tuple(h for h in piece.holes if low <= h <= high))
        out.append(piece)
    return out


def _remainder_units(pieces: list[_Piece], chosen) -> list[tuple[list[int], float, float]]:
    """The ``chosen`` pieces grouped by the remainder they were spread from (a piece of no group
    alone), in order, each with its summed mass and variance: ``(members, weight, var)``."""
    units: dict[tuple, list[int]] = {}
    for j in sorted(chosen):
        units.setdefault(("group", pieces[j].group) if pieces[j].group >= 0 else ("piece", j), []).append(j)
    return [(members, sum(pieces[j].weight for j in members), sum(pieces[j].var for j in members))
            for members in units.values()]


def _split_spanning(pieces: list[_Piece], lattice: _Lattice) -> list[_Piece]:
    """The column's lowest piece, when it is also its highest (the other pieces inside it), cut
    into its parts below, between and above the others, each with the share of its mass its
    values hold (as it was drawn: evenly). Pieces sorted; post-processing."""
    top = max(range(len(pieces)), key=lambda i: (pieces[i].high, pieces[i].low))
    piece = pieces[0]
    if top != 0 or piece.low == piece.high or len(pieces) < 2:
        return pieces
    others = pieces[1:]
    low, high = min(p.low for p in others), max(p.high for p in others)
    continuous = lattice.unit is None
    if continuous:
        bounds = [(piece.low, low), (low, high), (high, piece.high)]
        bounds = [(a, b) for a, b in bounds if b > a]
    else:
        bounds = [(piece.low, low - 1), (low, high), (high + 1, piece.high)]
        bounds = [(lattice.first(a), lattice.last(b)) for a, b in bounds if lattice.points(a, b) > 0]
    parts = [_Piece(a, b, 0.0, () if continuous else tuple(h for h in piece.holes if a <= h <= b), piece.var,
                    piece.resolution, piece.proven, piece.tilt) for a, b in bounds]
    sizes = np.array([max(_size(p, lattice), 0.0) for p in parts], dtype=float)
    if len(parts) < 2 or sizes.sum() <= 0:
        return pieces
    shares = sizes / sizes.sum()
    parts = [replace(p, weight=piece.weight * w, var=piece.var * w) for p, w in zip(parts, shares) if w > 0]
    return sorted(parts + others, key=lambda p: (p.low, p.high))


def _edge_decay(piece: _Piece, side: int, others: list[_Piece], lattice: _Lattice) -> tuple[float, float] | None:
    """The density at an edge piece's inner end and its fall per value (per unit of length
    without a lattice) outward, read off the two spread pieces nearest it inward (mass per
    value at their middles; exact values are points, not density), or None when the density
    does not fall towards the edge at least :data:`EDGE_FALL`-fold from the farther to the nearer.
    ``side`` 0: the lowest piece; -1: the highest. Post-processing."""
    spans = sorted((p for p in others if p.high > p.low), key=lambda p: (p.low, p.high))
    near = spans[:2] if side == 0 else spans[-2:][::-1]  # nearest first
    if len(near) < 2:
        return None
    densities = [_density([p], lattice) or 0.0 for p in near]
    if min(densities) <= 0:
        return None
    middles = [(float(p.low) + float(p.high)) / 2 for p in near]
    per = 1.0 if lattice.unit is None else float(lattice.step)  # lattice units per value
    distance = abs(middles[1] - middles[0]) / per
    if distance <= 0:
        return None
    if densities[1] < EDGE_FALL * densities[0]:  # flat (an age cut off at 64), or rising: not a long tail
        return None
    rate = math.log(densities[1] / densities[0]) / distance  # > 0: falls from the farther one towards the edge
    inner = float(piece.high) if side == 0 else float(piece.low)
    start = densities[0] * math.exp(-rate * abs(inner - middles[0]) / per)
    return (start, rate) if start > 0 else None


def _decay_tilt(piece: _Piece, side: int, lattice: _Lattice, start: float, rate: float) -> float:
    """The tilt (:func:`_draw_numbers`) of an edge piece whose density falls outward from
    ``start`` at its inner end: at ``rate`` per value, or less where its mass needs a flatter
    fall to fit (``start (1 - e^(-r L)) / r`` equals the mass over its ``L`` values; never rising)."""
    length = float(_size(piece, lattice))
    if length <= 0 or piece.weight <= 0:
        return 0.0

    def held(r: float) -> float:  # mass of L values falling at r from start
        return start * length if r * length < 1e-12 else start * -math.expm1(-r * length) / r

    if held(0.0) <= piece.weight:
        fall = 0.0  # even flat it needs every value: no fall
    elif held(rate) >= piece.weight:
        fall = rate
    else:
        low, high = 0.0, rate
        for _ in range(60):
            mid = (low + high) / 2
            low, high = (mid, high) if held(mid) > piece.weight else (low, mid)
        fall = (low + high) / 2
    rise = fall * length  # the log-density's fall across the piece
    return -rise if side == -1 else rise


def _mass_read_low(piece: _Piece, sigma: float) -> float:
    """An edge piece's mass read :data:`EDGE_MARGIN` noise standard deviations low (its weight's
    noise is ``sigma`` times the square root of its ``var``): what the edge rules bound its reach by."""
    return piece.weight - EDGE_MARGIN * sigma * math.sqrt(max(piece.var, 0.0))


def _without_far_edge(others: list[_Piece], side: int) -> list[_Piece]:
    """The pieces an edge's density is read from: ``others`` (sorted) less the column's other edge
    piece when it is spread and something else is left.

    That piece is only partly filled too (uncut, or cut by this same rule), so its mass over its
    whole width reads the density low, and the edge reaches further than the data: a date spread
    evenly over 1,000 days, released as three ~384-day cells and its two ends, read the density
    of the middle cells and the upper end's together (2.4 rows a day for 3.1) and started the
    synthetic dates 72 days before the first real one (5% of them).
    """
    far = others[-1] if side == 0 else others[0]
    if len(others) < 2 or far.high == far.low:
        return others
    return others[:-1] if side == 0 else others[1:]


def _density(pieces: list[_Piece], lattice: _Lattice) -> float | None:
    """Mass per value (per unit of length without a lattice) over the span of ``pieces``."""
    if not pieces:
        return None
    span = max(p.high for p in pieces) - min(p.low for p in pieces)
    values = span / lattice.step + 1 if lattice.unit is not None else span
    return sum(p.weight for p in pieces) / values if values > 0 else None


def _between_spread(gap: tuple, pieces: list[_Piece], lattice: _Lattice) -> bool:
    """Whether a spread piece ends just below ``gap`` and another starts just above it."""
    continuous = lattice.unit is None
    step = 0 if continuous else lattice.step
    spans = [p for p in pieces if p.high > p.low]
    below = any((math.isclose(p.high, gap[0]) if continuous else gap[0] - step <= p.high < gap[0]) for p in spans)
    above = any((math.isclose(p.low, gap[1]) if continuous else gap[1] < p.low <= gap[1] + step) for p in spans)
    return below and above


def _allowed(gap: tuple, inner: tuple | None, pieces: list[_Piece], lattice: _Lattice) -> bool:
    """Whether a remainder may be spread over ``gap``: inside the span ``inner`` of the
    pieces placed so far, or beyond it but starting where a spread piece ends."""
    if inner is None or (gap[0] >= inner[0] and gap[1] <= inner[1]):
        return True
    step = 0 if lattice.unit is None else lattice.step
    spans = [p for p in pieces if p.high > p.low]  # an exact value says nothing of the values beside it
    if gap[1] > inner[1]:  # above the span: a spread piece must reach the gap's low end
        return any(p.low <= gap[0] <= p.high + step for p in spans)
    return any(p.low - step <= gap[1] <= p.high for p in spans)  # below: one must start at its high end


def _to_refine(pieces: list[_Piece], lattice: _Lattice | None = None) -> set[int]:
    """The spread pieces refined: the column's lowest and highest (where its range ends),
    any holding :data:`REFINE_HEAVY` of its mass or more (years, coordinates: the mass sits in
    one coarse cell), and code pieces (:func:`_code_pieces`: a few lattice values between or beside
    released ones). Others keep their even spread (inside the range; rational spikes such
    as 1/30 spread over a cell read closer to their quantiles than piled into a finer one)."""
    spread = [j for j, p in enumerate(pieces) if p.low != p.high]
    if not spread:
        return set()
    total = sum(max(p.weight, 0.0) for p in pieces)
    chosen = {min(spread, key=lambda j: (pieces[j].low, pieces[j].high)),
              max(spread, key=lambda j: (pieces[j].high, pieces[j].low))}
    chosen |= {j for j in spread if total > 0 and pieces[j].weight >= REFINE_HEAVY * total}
    if lattice is not None:
        chosen |= {j for j in _code_pieces(pieces, lattice)
                   if not any(k != j and pieces[k].low <= pieces[j].high and pieces[j].low <= pieces[k].high
                              for k in spread)}
    return chosen


def _code_pieces(pieces: list[_Piece], lattice: _Lattice) -> set[int]:
    """The spread pieces that are codes: at most :data:`CODE_VALUES` lattice values (less their
    holes) among released values — released values inside them (holes), or beside them on both
    sides with no spread piece (a column's end counts as a released value): codes, small counts or
    ratings the threshold kept from being released one by one. Each is refined value by value
    (each value its own cell), wherever it lies. A few values beside a spread piece are a smooth
    stretch (counts of 10-19 between 9 and 20-29): cells by mass, as before."""
    if lattice.unit is None:
        return set()
    out = set()
    for j, piece in enumerate(pieces):
        if piece.low == piece.high or not 1 <= _size(piece, lattice) <= CODE_VALUES:
            continue
        if not piece.holes:
            below = [p for k, p in enumerate(pieces) if k != j and p.high < piece.low]
            above = [p for k, p in enumerate(pieces) if k != j and p.low > piece.high]
            near = ([max(below, key=lambda p: (p.high, p.low))] if below else []) + \
                   ([min(above, key=lambda p: (p.low, p.high))] if above else [])
            if any(p.high > p.low for p in near):
                continue
        out.add(j)
    return out


def _refine_cells(weight: float, sigma: float) -> int:
    """Cells a spread piece of (noisy) mass ``weight`` is cut into: as many as hold about
    :data:`REFINE_MASS` noise standard deviations each were the mass even, at most
    :data:`REFINE_CELLS` (fewer, coarser cells where the noise would swamp finer ones), at
    least :data:`REFINE_MIN_CELLS`: an edge is found cell by cell (values past the real
    range are cells of their own), and the counts' noise is shrunk away (:func:`_shrunk`)."""
    if sigma <= 0:
        return REFINE_CELLS
    return int(min(REFINE_CELLS, max(weight / (REFINE_MASS * sigma), REFINE_MIN_CELLS)))


def _column_ends(piece: _Piece, pieces: list[_Piece]) -> tuple[bool, bool]:
    """Whether ``piece`` is where its column ends below, and above (no other piece reaches past it)."""
    return (all(p.low >= piece.low for p in pieces if p is not piece),
            all(p.high <= piece.high for p in pieces if p is not piece))


def _end_cells(cells: list[tuple], ends: tuple[bool, bool]) -> list[tuple[tuple, bool]]:
    """A refined piece's cells (sorted) with those at a column end (``ends``: below, above) merged
    into one of about :data:`REFINE_END_MASS` noise standard deviations on an even spread, each
    with whether it is such a merged cell. A piece of no more cells than would merge is left as it
    is. Inside, cells stay fine (where the mass lies); at the end, the cell must be able to stand
    out of the end test's margin, and once kept it is cut by the density beside it
    (:meth:`TabularEncoder._trim_edges`). Public: chosen from the first release."""
    group = max(math.ceil(REFINE_END_MASS / REFINE_MASS), 1)
    out = [(cell, False) for cell in cells]
    if ends[0] and len(out) > group:
        out = [((out[0][0][0], out[group - 1][0][1]), True)] + out[group:]
    if ends[1] and len(out) > group:
        out = out[:-group] + [((out[-group][0][0], out[-1][0][1]), True)]
    return out


#: Marks a refinement cell split off by :func:`_start_apart`.
START = "start"


def _start_apart(cells: list[tuple[tuple, bool]], lattice: _Lattice) -> list[tuple[tuple, bool | str]]:
    """A refined piece's cells (from :func:`_end_cells`) with the piece's first lattice value a cell
    of its own. A spread piece is a released cell's remainder, and such a cell starts at a round
    value (40,000 of [40,000, 49,900]), where caps, floors and popular amounts sit: counted apart,
    a point mass there stands out as itself, and the cells beside it, empty, are cut at the
    column's end (Lending Club's loans capped at 40,000, 4% of them, had been spread over
    40,000-42,600, past the real maximum, as the piece's first refinement cell). Where no mass sits
    there, its count does not stand out of the noise (:data:`START_MARGIN`) and it is joined back to
    the cell beside it before anything reads the counts (:func:`_join_quiet_starts`). The
    cells stay public (chosen from the first release); each row still counts once. Not without a
    lattice (cells there are intervals)."""
    if lattice.unit is None or not cells:
        return cells
    (low, high), merged = cells[0]
    if high <= low:
        return cells
    return [((low, low), START), ((low + lattice.step, high), merged)] + cells[1:]


def _start_margin(cells: int) -> float:
    """Noise sd a piece's first value must stand out of to stay apart, with ``cells`` such cells in
    the table: :data:`START_MARGIN`, or the margin that holds the chance of any empty one standing
    out to :data:`REFINE_MISS` (a union bound), whichever is larger."""
    return max(START_MARGIN, NormalDist().inv_cdf(1.0 - REFINE_MISS / max(cells, 1)))


def _join_quiet_starts(cuts: list[tuple], noisy: np.ndarray, stands: float, merged: frozenset, sure: frozenset,
                       starts: frozenset) -> tuple[list[tuple], np.ndarray, frozenset, frozenset]:
    """The refinement's cells with each piece's first value (:func:`_start_apart`) joined back to
    the cell beside it, their counts summed, unless its noisy count stands out above ``stands``
    (:data:`START_MARGIN` noise standard deviations or more: a point mass, a cap, a floor, a round amount).
    Quiet, a one-value cell is noise: held as a proven piece's innermost cell it took the piece's
    whole mass as one value (Seattle's 30.0, 18% of its temperatures), and shared by the counts it
    drew mass by chance. ``merged`` and ``sure`` (cell indices) follow. Post-processing."""
    if not starts:
        return cuts, noisy, merged, sure
    out, counts, new_merged, new_sure, k = [], [], set(), set(), 0
    while k < len(cuts):
        owner, cell = cuts[k]
        join = (k in starts and noisy[k] <= stands and k + 1 < len(cuts) and cuts[k + 1][0] == owner)
        last = k + 1 if join else k
        if last in merged:
            new_merged.add(len(out))
        if k in sure or last in sure:
            new_sure.add(len(out))
        out.append((owner, (cell[0], cuts[last][1][1])))
        counts.append(float(noisy[k]) + (float(noisy[last]) if join else 0.0))
        k = last + 1
    return out, np.asarray(counts, dtype=float), frozenset(new_merged), frozenset(new_sure)


def _sub_cells(piece: _Piece, lattice: _Lattice, most: int) -> list[tuple]:
    """A spread piece cut into up to ``most`` cells: lattice values [low, high] (about as many
    in each), or equal lengths [low, high) without a lattice (one cell: the piece less its holes)."""
    most = max(most, 1)
    if lattice.unit is None:
        if not piece.high > piece.low:
            return []
        edges = np.linspace(float(piece.low), float(piece.high), most + 1)
        edges[-1] = piece.high
        return [(float(edges[k]), float(edges[k + 1])) for k in range(most) if edges[k + 1] > edges[k]]
    first, values = lattice.first(piece.low), lattice.points(piece.low, piece.high)
    if values < 1:
        return []
    holes = np.asarray(piece.holes, dtype=np.int64)
    free = values - len(holes)  # about as many values that are not holes in each cell
    if free < 1:
        return []
    points = first + np.arange(values, dtype=np.int64) * lattice.step
    points = points[~np.isin(points, holes)]
    bounds = np.round(np.linspace(0, free, min(most, free) + 1)).astype(np.int64)
    return [(int(points[bounds[k]]), int(points[bounds[k + 1] - 1]))
            for k in range(len(bounds) - 1) if bounds[k + 1] > bounds[k]]


def _cut_keys(cuts: tuple, values: np.ndarray, continuous: bool) -> np.ndarray:
    """The refinement cell (index) of every value, -1 for none: cells (lows, highs, holes), sorted and disjoint."""
    lows, highs, holes = cuts
    keys = np.full(len(values), -1, dtype=np.int64)
    if not len(lows) or not len(values):
        return keys
    lows_, highs_ = np.asarray(lows), np.asarray(highs)
    at = np.clip(np.searchsorted(lows_, values, side="right") - 1, 0, len(lows_) - 1)
    inside = (values >= lows_[at]) & ((values < highs_[at]) if continuous else (values <= highs_[at]))
    if len(holes):
        inside &= ~np.isin(values, np.asarray(holes))
    keys[inside] = at[inside]
    return keys


def _shape_column(pieces: list[_Piece], cuts: list[tuple], noisy: np.ndarray, sigma: float,
                  lattice: _Lattice, merged: frozenset = frozenset(), sure: frozenset = frozenset(), *,
                  first_sigma: float = 0.0) -> list[_Piece]:
    """A column's spread pieces as their refinement cells (see :meth:`TabularEncoder._refine_pieces`).

    ``cuts``: (piece index, cell), sorted; ``noisy``: their counts (noise ``sigma``); ``merged``:
    the indices of the cells that are merged end cells (:func:`_end_cells`; so marked). From
    each end of the column, cells go while their noisy count summed from the outside, and
    their own, stay under a margin of :data:`REFINE_MARGIN` standard deviations or more
    (:data:`REFINE_MISS` spread over every cell tested); a released exact value
    stops it (it is real), and so does a cell that stood out from the other end; where no cell stands out at all,
    the one counted highest stays. A piece's mass is then
    shared by its kept cells' noisy counts, pulled towards an even spread as far as the
    noise explains their differences (:func:`_shrunk`) — evenly when neither end found a cell that stands
    out (the refinement then says nothing of where the mass lies); a piece without a kept cell gives its
    mass to the pieces kept, in proportion. Where the outermost kept cell's share clearly exceeds its own
    count, the excess lies in the cells cut beyond it, and is a piece of its own there
    (:func:`_spill_past_cut`). A ``proven`` piece (all of a released cell's
    remainder: the first release showed data in it) is never cut away whole: where none of its
    cells stands out, its innermost cell stays, with its mass (the edge rules may cut it further, by
    the density beside it only: holding the whole piece's mass, its unreleased finer cells would
    reach past the real range).
    Cut away, its mass went to every other piece, emptying the column's tail: affairs' rates of
    [2, 3), shoppers' page counts of [100, 199] — released cells — and the top 5-10% of their
    rows with them. Post-processing of the two releases.
    """
    owners = {owner for owner, _ in cuts}
    # A released exact value, or a spread piece the refinement does not cut (inside the range), stops it.
    order = sorted([(float(cell[0]), 0, k) for k, (_, cell) in enumerate(cuts)] +
                   [(float(p.low), 1, -1) for j, p in enumerate(pieces) if p.low == p.high or j not in owners])
    keep, held = np.ones(len(cuts), dtype=bool), set()
    # Pieces the refinement does not cut (released exact values, spread pieces not refined) hold the
    # column whatever its cells read: then every cell may go. (Checked against the cells still kept
    # alone, a column whose lowest cells were all cut kept its highest, read below zero, whole: a
    # diamond depth's [70, 100) remainder of noise, 0.3% of the values past the real maximum 79.)
    elsewhere = any(p.low == p.high or j not in owners for j, p in enumerate(pieces))
    # Each end tests up to every cell it can reach twice (its own count, the sum from the outside;
    # it stops at a released value or a piece not refined): the margin covers them all at once, so
    # empty cells stand out by chance in about REFINE_MISS of the columns, not in most of a long row.
    tests = 0
    for sequence in (order, order[::-1]):
        for _, point, _ in sequence:
            if point:
                break
            tests += 2
    margin = max(REFINE_MARGIN, NormalDist().inv_cdf(1.0 - REFINE_MISS / max(tests, 1)))
    # A cell that stood out from one end is real, as a released value is: it stops the other end's run.
    # (Read through it, the other end found nothing standing out in every cell left and kept them all:
    # a 442-row table's sex, 1 and 2, refined over 1-9 at a noise of 93, came out at 2, 4 and 7.)
    stood: set[int] = set()
    silent = 0  # ends whose run read every cell left without one standing out
    for sequence in (order, order[::-1]):
        total, run = 0.0, []
        for _, point, k in sequence:
            if point or not keep[k] or k in sure or k in stood:
                break
            total += noisy[k]
            if total > margin * sigma * math.sqrt(len(run) + 1) or noisy[k] > margin * sigma:
                stood.add(k)
                break
            run.append(k)
        if len(run) >= int(keep.sum()) and not elsewhere:  # no cell stands out at all, and nothing else holds
            silent += 1
            continue  # the column: the noise says nothing of this end
        for k in run:  # the run stops at the innermost cell of a proven piece it would cut away whole
            owner = cuts[k][0]
            own = [c for c, (o, _) in enumerate(cuts) if o == owner and keep[c]]
            if pieces[owner].proven and all(c in run for c in own):
                at = max(run.index(c) for c in own)
                held.add(run[at])
                run = run[:at]
                break
        keep[run] = False
    continuous = lattice.unit is None
    by_owner: dict[int, list[int]] = {}
    for k, (owner, _) in enumerate(cuts):
        by_owner.setdefault(owner, []).append(k)
    out = [p for j, p in enumerate(pieces) if p.low == p.high or j not in by_owner]
    # The refined pieces spread from one remainder (a group) share its mass by their cells' counts
    # (spread, it was split between its gaps by their sizes); any other refined piece, its own.
    lost = 0.0
    for members, mass, var in _remainder_units(pieces, [j for j, p in enumerate(pieces)
                                                         if p.low != p.high and j in by_owner]):
        mass, var = _combined_mass(mass, var, first_sigma, [noisy[k] for j in members for k in by_owner[j]], sigma)
        if mass <= 0:  # both releases together say nothing is there
            continue
        mine = [(j, k) for j in members for k in by_owner[j] if keep[k]]
        if not mine:
            lost += mass
            continue
        parts = [_Piece(cuts[k][1][0], cuts[k][1][1], 0.0,
                        () if continuous else tuple(h for h in pieces[j].holes if cuts[k][1][0] <= h <= cuts[k][1][1]),
                        var, 0 if k in held else pieces[j].resolution, merged=k in merged) for j, k in mine]
        sizes = np.maximum(np.array([_size(p, lattice) for p in parts], dtype=float), 0.0)
        # Read from both ends, no cell stood out: the refinement said nothing of where the mass lies, and
        # its noise shares alone put a 442-row table's sex (1 and 2) half on 7-9. Then the piece stays even.
        shares = sizes.copy() if silent == 2 else \
            _shrunk(np.array([noisy[k] for _, k in mine], dtype=float), sizes, sigma)
        if shares.sum() <= 0:
            shares = sizes
        if shares.sum() <= 0:
            continue
        shares = shares / shares.sum()
        placed = [(replace(p, weight=mass * w, var=var * w), -1 if k in held else k)
                  for p, (_, k), w in zip(parts, mine, shares) if w > 0]
        cut = [k for j in members for k in by_owner[j] if not keep[k]]
        unit = first_sigma if first_sigma > 0 else sigma
        beside = [(p.low, p.high) for j, p in enumerate(pieces) if j not in members and p.high > p.low]
        out.extend(_spill_past_cut(placed, [cuts[k][1] for k in cut], noisy, sigma, math.sqrt(var) * unit, lattice,
                                   tuple(h for j in members for h in pieces[j].holes), beside))
    out = sorted(out, key=lambda p: (p.low, p.high))
    # A piece cut away whole keeps its mass inside the range: shared by the pieces kept, in
    # proportion (the column's shares among its values stay as the cut left them).
    kept = sum(p.weight for p in out)
    if lost > 0 and kept > 0:
        out = [replace(p, weight=p.weight * (kept + lost) / kept) for p in out]
    return out


def _spill_past_cut(placed: list[tuple[_Piece, int]], cut: list[tuple], noisy: np.ndarray, sigma: float,
                    mass_sd: float, lattice: _Lattice, holes: tuple = (), beside: list[tuple] = ()) -> list[_Piece]:
    """A refined remainder's kept cells (pieces with their cell's index), with the mass its end cells
    cut away (``cut``, the cells the end test removed: nothing proved data in any one of them) held
    outside the outermost kept cell instead of inside it. The remainder's mass is measured whole;
    shared by the kept cells' counts, the outermost kept cell took all the cut cells' real rows: where
    its share clearly exceeds its own noisy count (by :data:`REFINE_MARGIN` standard deviations of the
    difference: the mass's ``mass_sd`` at its share, and the cell's ``sigma``), the excess is a piece
    of its own over the cut cells beside it, which the edge rules then cut by the density beside it
    (:meth:`TabularEncoder._trim_edges`). Held inside, the cell was many times denser than its
    neighbours and read as a cap, one value: Seattle's temperatures from 20 degrees (~40% of the days,
    to 35.6) all at 20.0. A cap's cell counts its own mass and keeps it; so does a cell kept only as a
    proven piece's innermost (index -1: nothing stood out, and its mass stays inside, see
    :func:`_shape_column`). Only where a spread piece lies
    inward of the kept cell (another of its cells, or ``beside``: other spread pieces' spans) to give
    the edge rules a density: alone, the kept cell and the excess were each other's only neighbour,
    and a 944-row table's ages came out as two values. Post-processing."""
    pieces = [p for p, _ in placed]
    if not cut or not pieces:
        return pieces
    total = sum(p.weight for p in pieces)
    for side in (0, -1):
        index = min(range(len(pieces)), key=lambda i: pieces[i].low) if side == 0 else \
            max(range(len(pieces)), key=lambda i: pieces[i].high)
        piece, k = pieces[index], placed[index][1]
        beyond = [c for c in cut if (c[1] < piece.low if side == 0 else c[0] > piece.high)]
        spans = [(p.low, p.high) for i, p in enumerate(pieces) if i != index and p.high > p.low] + list(beside)
        inward = [span for span in spans if (span[0] > piece.low if side == 0 else span[1] < piece.high)]
        if not beyond or not inward or k < 0:
            continue
        share = piece.weight / total if total > 0 else 0.0
        excess = piece.weight - max(float(noisy[k]), 0.0)
        if excess <= REFINE_MARGIN * math.sqrt((mass_sd * share) ** 2 + sigma ** 2):
            continue
        low, high = (min(c[0] for c in beyond), max(c[1] for c in beyond))
        own = tuple(h for h in holes if low <= h <= high) if lattice.unit is not None else ()
        var = piece.var * excess / piece.weight
        pieces[index] = replace(piece, weight=piece.weight - excess, var=piece.var - var)
        pieces.append(replace(piece, low=low, high=high, weight=excess, holes=own, var=var, merged=False, tilt=0.0))
    return pieces


def _combined_mass(mass: float, var: float, first_sigma: float, counts: list[float], sigma: float
                   ) -> tuple[float, float]:
    """A refined remainder's mass read from both releases: the first release's (``mass``, of noise
    variance ``var`` first_sigma squared) and the sum of its refinement cells' noisy ``counts``
    (each of noise ``sigma``), weighted by their inverse variances; returned with its variance (in
    first_sigma squared, as ``var``), at least zero. The two are independent measurements of the same
    rows, and only the first is read after a selection: an edge remainder exists because its noisy
    mass cleared the threshold, so it is read high where it is small (Seattle's temperatures past 30:
    261 rows' mass for 63 real ones, the refinement's cells 79 in all), and its spread past the real
    range with it. Unchanged without a first noise level or cells. Post-processing."""
    if first_sigma <= 0 or sigma <= 0 or not counts or var <= 0:
        return mass, var
    v1, v2 = first_sigma ** 2 * var, sigma ** 2 * len(counts)
    combined = (mass / v1 + float(np.sum(counts)) / v2) / (1.0 / v1 + 1.0 / v2)
    return max(combined, 0.0), 1.0 / (1.0 / v1 + 1.0 / v2) / first_sigma ** 2


def _follow_density(pieces: list[_Piece], lattice: _Lattice) -> list[_Piece]:
    """Inner spread pieces tilted to follow the density between their neighbours.

    A spread piece is a cell's mass that no finer release placed: where inside it the values
    lie is unknown, and drawn evenly it is flat between neighbours whose densities may differ
    many times (a skewed amount's gap [0.06, 0.1) between a dense [0.05, 0.06) and a sparse
    [0.1, 0.15)). Real densities change smoothly, so a piece with a spread piece on either
    side is drawn with the log-density running straight between the neighbours' (mass per
    value, at their middles): its ``tilt`` is that log-density's rise across it
    (:func:`_draw_numbers`). Its mass, span and values are unchanged, so nothing moves past
    the range or off the lattice; neighbours of equal density leave it even. Post-processing
    of released counts.
    """
    pieces = sorted(pieces, key=lambda p: (p.low, p.high))
    spread = [k for k, p in enumerate(pieces) if p.high > p.low]
    out = list(pieces)
    for at in range(1, len(spread) - 1):
        left, piece, right = (pieces[spread[at + d]] for d in (-1, 0, 1))
        densities = [_density([p], lattice) or 0.0 for p in (left, right)]
        if min(densities) <= 0 or piece.weight <= 0:
            continue
        start, end = (float(left.low) + float(left.high)) / 2, (float(right.low) + float(right.high)) / 2
        if end <= start:
            continue
        ends = np.clip((np.array([float(piece.low), float(piece.high)]) - start) / (end - start), 0.0, 1.0)
        tilt = float((ends[1] - ends[0]) * (math.log(densities[1]) - math.log(densities[0])))
        if abs(tilt) > 1e-9:
            out[spread[at]] = replace(piece, tilt=tilt)
    return out


def shrink_towards(values: np.ndarray, base: np.ndarray, sigma: float) -> np.ndarray:
    """Noisy ``values`` pulled towards ``base`` as far as their noise (``sigma`` each)
    explains their departure from it: the departure's squared norm is the true one's plus
    about ``len(values) x sigma^2``, so it keeps the share ``1 - len(values) sigma^2 /
    |departure|^2``, at least 0 (positive-part James-Stein; empirical Bayes). Post-processing."""
    departure = values - base
    energy = float(np.sum(departure ** 2))
    keep = max(0.0, 1.0 - len(values) * sigma * sigma / energy) if energy > 0 else 0.0
    return base + keep * departure


def _shrunk(counts: np.ndarray, sizes: np.ndarray, sigma: float) -> np.ndarray:
    """Noisy counts of a piece's cells pulled towards an even spread (by size) as far as the
    noise explains their differences (:func:`shrink_towards`). A smooth stretch stays even;
    where mass concentrates (years, coordinates) the counts win. Clipped at zero."""
    if sizes.sum() <= 0:
        return np.zeros_like(counts)
    even = max(counts.sum(), 0.0) * sizes / sizes.sum()
    return np.maximum(shrink_towards(counts, even, sigma), 0.0) * (sizes > 0)


def _size(piece: _Piece, lattice: _Lattice) -> float:
    """Values a piece spans (lattice values less holes; without a lattice, its length)."""
    if lattice.unit is None:
        return piece.high - piece.low
    return lattice.points(piece.low, piece.high) - len(piece.holes)


def _subtract(cell: tuple, inner: list[tuple], continuous: bool) -> list[tuple]:
    """``cell`` minus the (sorted, disjoint or nested) intervals ``inner`` inside it."""
    low, high = cell
    gaps, cursor = [], low
    for a, b in inner:
        if b < low or a > high or (continuous and (b <= low or a >= high)):
            continue
        if a > cursor:
            gaps.append((cursor, a if continuous else a - 1))
        cursor = max(cursor, b if continuous else b + 1)
    if (cursor < high) if continuous else (cursor <= high):
        gaps.append((cursor, high))
    return gaps


def _decimals(step: float) -> int:
    for decimals in range(_MAX_DECIMALS + 1):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) <= 1e-9 * max(scaled, 1.0):
            return decimals
    return _MAX_DECIMALS


def _value(units, lattice: _Lattice, *, snap: bool = True) -> float:
    """Lattice units -> a value (rounded to the step's decimals)."""
    if lattice.unit is None:
        return float(units)
    value = float(units) * lattice.unit
    if lattice.decimals is not None and snap:
        value = round(value, lattice.decimals)
    return value


# ---------------------------------------------------------------------- exact counts (inside the mechanism)


@dataclass
class _ExactCounts:
    """One column's exact histograms before noise: keys with their counts, per histogram, and the missing count.

    Keys of a thresholded histogram are the cells present in the data (a sparse
    histogram); over a declared domain, every declared value, present or not.
    """

    keys: list[list[Any]]
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


def _exact_counts(column: Column, series: pd.Series, resolutions: list, lattice: _Lattice | None) -> _ExactCounts:
    if column.type in ("numerical", "datetime"):
        values = _to_number(column, series)
        if column.bounds is not None:
            values = np.where(np.isnan(values), np.nan, np.clip(values, *_numeric_bounds(column)))
        missing = int(np.isnan(values).sum())
        present = lattice.to_units(values[~np.isnan(values)])
        keys, counts = [], []
        for resolution in resolutions:
            cells = _keys(resolution, present, lattice)
            if len(cells):
                unique, count = np.unique(cells, axis=0, return_counts=True)
            else:
                unique, count = np.zeros((0, cells.shape[1])), np.zeros(0, dtype=np.int64)
            keys.append([tuple(row) for row in unique.tolist()])
            counts.append(count.astype(np.int64))
        return _ExactCounts(keys, counts, missing)
    keys = _category_keys(column, series)
    missing = int(sum(k is None for k in keys))
    observed = pd.Series([k for k in keys if k is not None], dtype=object).value_counts(sort=False)
    if _public_domain(column):
        domain = [True, False] if column.type == "boolean" else list(column.categories)
        values = np.asarray([int(observed.get(value, 0)) for value in domain], dtype=np.int64)
        return _ExactCounts([domain], [values], missing)
    return _ExactCounts([list(observed.index)], [observed.to_numpy(dtype=np.int64)], missing)


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
    """The pandas dtype of a synthetic column: read off the schema, never off the input's dtypes
    (and off the encoder's released values where the schema leaves halves undecided)."""
    if column.type == "numerical":
        return "int64" if column.integer else "float64"
    if column.type == "boolean":
        return "bool"
    if column.type == "datetime":
        return "object"
    return "object"


# ---------------------------------------------------------------------- helpers


def _column_levels(code: ColumnCode, column: Column, series: pd.Series) -> np.ndarray:
    """Level of each value of ``series``; -1 for a value no level holds (never released, or
    missing without a missing level). A function of each value alone."""
    index = np.full(len(series), -1, dtype=np.int64)
    missing_level = next((i for i, lv in enumerate(code.levels) if lv["points"] == [None]), None)
    if code.kind in ("numerical", "datetime"):
        values = _to_number(column, series)
        if code.bounds is not None:
            values = np.clip(values, *code.bounds)
        index = _numeric_levels_of(code, values) if code.format >= 2 else _numeric_levels_of_v1(code, values)
        is_missing = np.isnan(values)
    else:
        lookup = {lv["points"][0]: i for i, lv in enumerate(code.levels) if lv["points"] != [None]}
        keys = _category_keys(column, series)
        index[:] = [lookup.get(k, -1) if k is not None else -1 for k in keys]
        is_missing = np.asarray([k is None for k in keys], dtype=bool)
    if missing_level is not None:
        index[is_missing] = missing_level
    return index


def reassign_weights(code: ColumnCode) -> np.ndarray:
    """Probabilities a value without a level is reassigned with: the released counts, as shares."""
    weights = np.maximum(np.array(code.counts), 0) + 1e-9
    return weights / weights.sum()


def _numeric_levels_of(code: ColumnCode, values: np.ndarray) -> np.ndarray:
    """Level of each value: its released exact value, else the piece holding it, else the nearest piece."""
    index = np.full(len(values), -1, dtype=np.int64)
    ok = ~np.isnan(values)
    lows, highs, levels = [], [], []
    for i, level in enumerate(code.levels):
        if level["points"] == [None]:
            continue
        for low, high in zip(level["lows"], level["highs"]):
            lows.append(low)
            highs.append(high)
            levels.append(i)
    if not lows or not ok.any():
        return index
    lows_, highs_, levels_ = np.asarray(lows, float), np.asarray(highs, float), np.asarray(levels, np.int64)
    present = values[ok]
    if code.unit is not None:  # on the lattice, as the counts were
        scaled = np.round(present / code.unit)
        present = (code.base + np.round((scaled - code.base) / code.step) * code.step) * code.unit
        if code.decimals is not None:
            present = np.round(present, code.decimals)
    tolerance = 0.0 if code.unit is None else code.unit / 2
    out = np.full(len(present), -1, dtype=np.int64)
    points = lows_ == highs_
    if points.any():  # exact values first: they may sit inside a piece (as its holes)
        p_values, p_levels = lows_[points], levels_[points]
        order = np.argsort(p_values)
        p_values, p_levels = p_values[order], p_levels[order]
        pos = np.clip(np.searchsorted(p_values, present), 0, len(p_values) - 1)
        hit = np.abs(p_values[pos] - present) <= tolerance
        out[hit] = p_levels[pos[hit]]
    spans = ~points
    todo = out < 0
    if spans.any() and todo.any():
        s_lows, s_highs, s_levels = lows_[spans], highs_[spans], levels_[spans]
        order = np.argsort(s_lows)
        s_lows, s_highs, s_levels = s_lows[order], s_highs[order], s_levels[order]
        pos = np.clip(np.searchsorted(s_lows, present[todo] + tolerance, side="right") - 1, 0, len(s_lows) - 1)
        inside = (present[todo] >= s_lows[pos] - tolerance) & (present[todo] <= s_highs[pos] + tolerance)
        picked = np.where(inside, s_levels[pos], -1)
        out[np.flatnonzero(todo)] = picked
    todo = out < 0
    if todo.any():  # a value whose cells were not released moves to the nearest piece
        distance = np.maximum(lows_[None, :] - present[todo, None], 0) + np.maximum(present[todo, None] - highs_[None, :], 0)
        out[np.flatnonzero(todo)] = levels_[np.argmin(distance, axis=1)]
    index[ok] = out
    return index


def _base_weight(resolutions: list) -> int:
    """A cell's weight in a column counted at ``resolutions``: one histogram weighs CATEGORY_WEIGHT times more."""
    return WEIGHT_SCALE * (CATEGORY_WEIGHT if len(resolutions) == 1 else 1)


def _norm2(resolutions: list) -> int:
    """The squared L2 norm of what one row of a column adds to its weighted histograms."""
    return _base_weight(resolutions) ** 2 * len(resolutions)


def _cell_weights(column: Column, counts: _ExactCounts, resolutions: list,
                  lattice: _Lattice | None) -> tuple[_ExactCounts, list[np.ndarray]]:
    """Every count's weight (whole numbers), and the counts without the cells a finer histogram already holds.

    A column counted in one histogram weighs ``CATEGORY_WEIGHT`` times a number's cell: the
    same L2 share for one histogram as a number takes with its four. On a lattice, a small
    value is its own cell at coarser resolutions too — 7 is its own 2- and 1-digit cell,
    and 0 is its own decade too — so those coarser cells are copies of its exact count:
    they are left out (a function of the cell's key alone, public), and the exact count
    takes their share of the norm instead, weighing ``sqrt(1 + copies)`` times a cell:
    less noise and a lower threshold on the small whole numbers codes, ratings and counts
    are made of. A row still moves its column's cells by at most the column's norm; a
    missing value, its one count, by all of it.
    """
    norm2 = _norm2(resolutions)
    missing = np.array([math.isqrt(norm2)], dtype=np.int64)
    base = _base_weight(resolutions)
    if not (column.type == "numerical" and lattice is not None and lattice.unit is not None
            and len(resolutions) > 1 and resolutions[0].kind == "exact"):
        return counts, [np.full(len(part), base, dtype=np.int64) for part in counts.counts] + [missing]
    values = np.array([key[0] for key in counts.keys[0]], dtype=np.int64)
    half = (values % 2 != 0) if lattice.half_units else np.zeros(len(values), dtype=bool)
    if lattice.half_units:  # whole numbers' cells, as on their own lattice; a half is its own cell (see _keys)
        values = values // 2
    copies = np.zeros(len(values), dtype=np.int64)
    keys, kept = [counts.keys[0]], [counts.counts[0]]
    for resolution, cells, part in zip(resolutions[1:], counts.keys[1:], counts.counts[1:]):
        if resolution.kind == "digits":  # a value below 10**digits is its own cell (shift 0; a half: -1)
            copies += half | (np.abs(values) < 10**resolution.size)
            own = np.array([int(key[0]) in (0, -1) for key in cells], dtype=bool)
        elif resolution.kind == "decade":  # zero is its own decade cell (and a half, in half units)
            copies += half | (values == 0)
            own = np.array([int(key[1]) == 0 for key in cells], dtype=bool)
        else:
            own = np.zeros(len(cells), dtype=bool)
        keys.append([key for key, o in zip(cells, own) if not o])
        kept.append(part[~own] if len(part) else part)
    exact = np.array([math.isqrt(base * base * (1 + c)) for c in copies], dtype=np.int64)
    weights = [exact] + [np.full(len(part), base, dtype=np.int64) for part in kept[1:]] + [missing]
    return _ExactCounts(keys, kept, counts.missing), weights


def _exact_weight(value: int, resolutions: list, lattice: _Lattice, base: int) -> int:
    """The weight of a lattice value's exact count (lattice units), as :func:`_cell_weights` sets it:
    a function of the value alone."""
    if lattice.half_units and value % 2:  # a half: its own cell at every coarser resolution
        return math.isqrt(base * base * len(resolutions))
    whole = value // 2 if lattice.half_units else value
    copies = sum(1 for r in resolutions[1:] if (r.kind == "digits" and abs(whole) < 10**r.size)
                 or (r.kind == "decade" and whole == 0))
    return math.isqrt(base * base * (1 + copies))


def _public_domain(column: Column) -> bool:
    return column.type == "boolean" or (column.type == "categorical" and column.categories is not None)


def _numeric_bounds(column: Column) -> tuple[float, float]:
    low, high = column.bounds
    if column.type == "datetime":
        return (pd.Timestamp(low).value / _DAY_NS, pd.Timestamp(high).value / _DAY_NS)
    if column.clock:
        low, high = clock_minutes(np.array([float(low), float(high)]))
    return float(low), float(high)


def clock_minutes(values: np.ndarray) -> np.ndarray:
    """Times of day written HHMM (``830``, ``2359``; ``2400`` is midnight at the end of the day)
    as minutes since midnight, the whole numbers the encoder works in: consecutive times are
    consecutive minutes, so no level spans the endings 60 to 99 no time has. A value ending in 60
    to 99 (not a time: a column misread as times by the noise) is read as the nearest time, its
    hour's last minute or the next hour (``1998`` is ``2000``, never ``1959``). NaN stays NaN."""
    hours = np.floor(values / 100.0)
    ending = values - hours * 100.0
    return np.where(ending >= 80, (hours + 1) * 60.0, hours * 60.0 + np.minimum(ending, 59.0))


def clock_hhmm(minutes: np.ndarray) -> np.ndarray:
    """Minutes since midnight written back as HHMM (the inverse of :func:`clock_minutes` on times)."""
    hours = np.floor(minutes / 60.0)
    return hours * 100.0 + (minutes - hours * 60.0)


def _to_number(column: Column, series: pd.Series) -> np.ndarray:
    if column.type == "datetime":
        series = parse_datetimes(series, column.datetime_format)
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = series.astype("datetime64[ns]")
        return np.where(stamps.isna(), np.nan, stamps.astype("int64") / _DAY_NS)
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return clock_minutes(numbers) if column.clock else numbers


def _split_by_mass(weights: np.ndarray, parts: int) -> list[list[int]]:
    """Consecutive groups of indices with about equal total weight; heavy ones alone.

    An index heavier than its share of what the others leave (the zeros of a skewed
    amount: 91% of the rows) gets a group of its own, and the groups left are shared out
    over the *remaining* mass: else every other value of the column would be lumped into
    a handful of groups (capital gains in 3 levels), and their link to the other columns
    lost.
    """
    n = len(weights)
    if n <= parts:
        return [[i] for i in range(n)]
    w = np.maximum(np.asarray(weights, dtype=float), 0)
    heavy: set[int] = set()
    while len(heavy) < parts - 1:
        rest = float(w.sum() - w[list(heavy)].sum())
        target = rest / (parts - len(heavy))
        new = {i for i in range(n) if i not in heavy and w[i] >= target}
        if not new:
            break
        heavy |= new
    rest = float(w.sum() - w[list(heavy)].sum())
    target = rest / max(parts - len(heavy), 1)
    # The others by where their mass falls on a scale cut every `target`: quantile bins.
    groups, current, seen, last = [], [], 0.0, None
    for i in range(n):
        if i in heavy:
            if current:
                groups.append(current)
                current = []
            groups.append([i])
            continue
        position = int((seen + w[i] / 2) // target) if target > 0 else 0
        seen += w[i]
        if current and position != last:
            groups.append(current)
            current = []
        current.append(i)
        last = position
    if current:
        groups.append(current)
    # Merge the lightest neighbours until at most `parts` groups remain.
    while len(groups) > parts:
        masses = [sum(w[i] for i in g) for g in groups]
        k = min(range(len(groups) - 1), key=lambda i: masses[i] + masses[i + 1])
        groups[k:k + 2] = [groups[k] + groups[k + 1]]
    return groups


def _draw_numbers(code: ColumnCode, levels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A value for every row: a piece of its level (by weight), then a lattice value of the piece.

    Vectorised over rows: each level's pieces get cumulative weights running from the
    level's index to the next integer, so one ``searchsorted`` of ``level + uniform``
    picks the piece of every row at once. A piece is one value, or its lattice values
    drawn uniformly (those released on their own, its holes, skipped); without a
    lattice, uniform in ``[low, high)``. A piece with a ``tilt`` τ (see
    :func:`_follow_density`) draws its position ``u`` in [0, 1) with density ∝ exp(τ u)
    instead of evenly. The missing level is one piece with NaN.
    """
    cumulative, lows, highs, holes, tilts = [], [], [], [], []
    for i, level in enumerate(code.levels):
        if level["points"] == [None]:
            cumulative.append(i + 1.0)
            lows.append(np.nan)
            highs.append(np.nan)
            holes.append([])
            tilts.append(0.0)
            continue
        tilts.extend(level.get("tilts") or [0.0] * len(level["lows"]))
        weights = np.maximum(np.asarray(level["weights"], dtype=float), 1e-9)
        steps = np.cumsum(weights) / weights.sum()
        steps[-1] = 1.0
        cumulative.extend(i + steps)
        lows.extend(level["lows"])
        highs.extend(level["highs"])
        holes.extend(level.get("holes") or [[] for _ in level["lows"]])
    lows_, highs_ = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    pick = np.searchsorted(np.asarray(cumulative), levels + rng.random(len(levels)), side="right")
    pick = np.minimum(pick, len(lows_) - 1)
    uniform = rng.random(len(levels))
    tilt = np.asarray(tilts, dtype=float)[pick]
    tilted = tilt != 0
    if tilted.any():  # inverse of the CDF (e^(tau u) - 1) / (e^tau - 1)
        t = tilt[tilted]
        uniform[tilted] = np.clip(np.log1p(uniform[tilted] * np.expm1(t)) / t, 0.0, np.nextafter(1.0, 0.0))
    low, high = lows_[pick], highs_[pick]
    if code.unit is None:
        values = low + uniform * (high - low)
    else:
        unit, step = code.unit, code.step
        # Lattice indices in units: low is on the lattice (it is a piece's first value).
        first = np.round(low / unit)
        count = np.floor((np.round(high / unit) - first) / step + 0.5) + 1
        holed = [k for k, h in enumerate(holes) if h]
        free = count.copy()
        for k in holed:  # rows of a piece with holes draw among its values less the holes
            free[pick == k] -= len(holes[k])
        offset = np.floor(uniform * np.maximum(free, 1))
        for k in holed:
            rows = pick == k
            if not rows.any():
                continue
            positions = np.sort(np.round((np.asarray(holes[k]) / unit - first[rows][0]) / step))
            shifted = positions - np.arange(len(positions))  # the r-th free value is r + #holes at or before
            offset[rows] = offset[rows] + np.searchsorted(shifted, offset[rows], side="right")
        values = (first + offset * step) * unit
        if code.decimals is not None:
            values = np.round(values, code.decimals)
    if code.released_range is not None:
        values = np.clip(values, *code.released_range)
    if code.bounds is not None:
        values = np.clip(values, *code.bounds)
    if code.integer and code.kind == "numerical":
        values = np.round(values)
    return values


def _numeric_levels_of_v1(code: ColumnCode, values: np.ndarray) -> np.ndarray:
    """Level of each value for models saved before lattices: its released cell, else the nearest point."""
    index = np.full(len(values), -1, dtype=np.int64)
    ok = ~np.isnan(values)
    points = [(p, i) for i, lv in enumerate(code.levels) if lv["points"] != [None] for p in lv["points"]]
    if not points or not ok.any():
        return index
    for i, level in enumerate(code.levels):
        if level["points"] == [None]:
            continue
        for low, high in zip(level["lows"], level["highs"]):
            inside = ok & (values >= low) & (values < high) & (index < 0)
            index[inside] = i
    todo = ok & (index < 0)
    if todo.any():
        grid = np.array([p for p, _ in points])
        level_of = np.array([i for _, i in points])
        index[todo] = level_of[np.argmin(np.abs(values[todo, None] - grid[None, :]), axis=1)]
    return index


def _draw_numbers_v1(code: ColumnCode, levels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Values for models saved before lattices: a point of the level, uniform in its cell."""
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
