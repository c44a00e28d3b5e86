"""Contribution bounding: what one person can put into a release, bounded before any mechanism.

With a privacy unit column (``--privacy-unit patient_id``) the guarantee protects one
*person* with all their rows. Every sensitivity is what one person can change, so each
person's contribution is bounded first, before any mechanism reads the rows:

* rows **without a value** in the unit column are left out: nothing says whose they are,
  so nothing bounds what one person contributes through them (a guest checkout of 50
  lines would be 50 "persons" if each row counted as its own unit). They are never read
  by a mechanism, and their number is not published (the steward's audit shows it);
* a person with more than ``k`` rows (the cap, :attr:`PrivacyUnit.max_rows`) keeps
  ``k`` of them, drawn uniformly at random with a generator keyed from the ledger's
  CSPRNG (never from a seed), so the choice reveals nothing either.

The cap is the steward's (``--max-rows-per-unit K``: public) or chosen privately: one
Gaussian release of the histogram of rows per person (each person is in exactly one bin,
so its sensitivity is 1 whatever the cap), from which :func:`choose_cap` picks the
smallest of the caps :data:`AUTO_CAPS` (1, 2, 3, 4, 6, 8, 12, 16, 24, 32: each ends a bin)
that holds every row of :data:`CAP_QUANTILE` of the persons. Finer than powers of two: a
table whose persons hold 5 rows gets a cap of 6, not 8 (every noise a third smaller). The same noisy histogram estimates how many rows the cap
dropped and kept (post-processing: sums of the noisy bins, a bin's persons at a typical
row count of the bin), which the report states with their noise; the cap is chosen from
the bins that clear two noise standard deviations.

Why that default: a count's noise grows with ``k`` (one person moves it by up to
``k``) while its signal grows with the rows kept, so every count-based measurement is
noisiest relative to its signal at a large cap; a small cap instead under-weights the
people with many rows (their rows are sampled down) — the bias–variance trade-off of
Amin et al. 2019 ("Bounding user contributions"). Measured on a hospital-style table at
ε = 1 (``benchmarks/privacy_unit.py``, figures in ``benchmarks/README.md``), caps that
keep every row of about three persons in four (2–4 there) beat both a cap of 1 and the
caps of 8–16 that keep nearly everything; hence the 75% quantile, at most 32.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, PrivacyError
from .ledger import PrivacyLedger
from .unit import PERSON, PrivacyUnit

__all__ = ["AUTO_CAPS", "CAP_QUANTILE", "MAX_AUTO_CAP", "ROWS_PER_UNIT_BINS", "BoundedRows", "UnitRequest", "bound_contributions",
           "choose_cap", "noun_for_column", "unit_codes"]

#: Share of persons whose rows all survive the default (private) cap.
CAP_QUANTILE = 0.75
#: Largest cap chosen by default; a steward may set a larger one.
MAX_AUTO_CAP = 32
#: The dropped-rows estimate counts a person's dropped rows up to this many times the cap.
DROPPED_COUNTED = 3
#: Lower edges of the rows-per-person bins: every power of two (the caps chosen by default)
#: ends a bin, so "every row of a person" is read off whole bins.
ROWS_PER_UNIT_BINS: tuple[int, ...] = (1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 129, 257, 513, 1025)
#: The caps chosen by default: the ends of the bins up to MAX_AUTO_CAP (so "every row of a
#: person" is read off whole bins).
AUTO_CAPS: tuple[int, ...] = tuple(edge - 1 for edge in ROWS_PER_UNIT_BINS[1:] if edge - 1 <= MAX_AUTO_CAP)
#: Noisy bins below this many noise standard deviations are read as empty (noise, not persons).
NOISE_MARGIN = 2.0
#: Step name of the rows-per-person histogram on the ledger.
ROWS_PER_UNIT_STEP = "rows per unit"


@dataclass(frozen=True)
class UnitRequest:
    """What the steward asked for: the unit column, the cap (None: chosen privately), the noun."""

    column: str
    max_rows: int | None = None
    noun: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise PrivacyError(f"the privacy unit column must be a column name, got {self.column!r}")
        if self.max_rows is not None and (isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int)
                                          or self.max_rows < 1):
            raise PrivacyError(f"--max-rows-per-unit must be a whole number >= 1, got {self.max_rows!r}")
        if self.noun is not None and (not isinstance(self.noun, str) or not self.noun.strip()
                                      or not self.noun.isprintable() or len(self.noun) > 40):
            # It is printed in every message and report: no terminal escapes, no line breaks.
            raise PrivacyError(f"the unit's noun must be a word such as 'patient' (printable, at most 40 "
                               f"characters), got {self.noun[:50] if isinstance(self.noun, str) else self.noun!r}")

    @property
    def word(self) -> str:
        return self.noun or noun_for_column(self.column)

    def unit(self, max_rows: int) -> PrivacyUnit:
        return PrivacyUnit(column=self.column, max_rows=int(max_rows), noun=self.word)

    @classmethod
    def of(cls, unit: Any) -> UnitRequest | None:
        """A request from what the API accepts: None/ROW, a column name, a PrivacyUnit, a dict, a request."""
        if unit is None or isinstance(unit, UnitRequest):
            return unit
        if isinstance(unit, str):
            return cls(column=unit)
        if isinstance(unit, PrivacyUnit):
            return None if unit.per_row else cls(column=unit.column, max_rows=unit.max_rows, noun=unit.noun)
        if isinstance(unit, dict):
            known = {"column", "max_rows", "noun"}
            if set(unit) - known or "column" not in unit:
                raise PrivacyError("a privacy unit is {\"column\": NAME, \"max_rows\": K or null, \"noun\": WORD or "
                                   f"null}}, got {unit!r}")
            return cls(column=unit["column"], max_rows=unit.get("max_rows"), noun=unit.get("noun"))
        raise PrivacyError(f"a privacy unit is a column name, a PrivacyUnit or None, got {unit!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "max_rows": self.max_rows, "noun": self.noun}


_ID_SUFFIX = re.compile(r"(?:[_\W]*(?:id|ids|key|no|nr|number|num|code|uuid|guid))+$", re.IGNORECASE)


def noun_for_column(column: str) -> str:
    """The noun a unit column names (the header is public): patient_id -> patient, CustomerID -> customer."""
    stem = _ID_SUFFIX.sub("", column.strip())
    stem = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", stem).replace("_", " ").replace("-", " ").strip().lower()
    return stem if re.fullmatch(r"[a-z][a-z ]{1,30}", stem or "") else PERSON


def unit_codes(series: pd.Series) -> tuple[np.ndarray, int]:
    """Each row's unit as 0..n-1 (-1 where the unit value is missing), and n."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes.astype(np.int64), len(uniques)


@dataclass
class BoundedRows:
    """The rows kept after contribution bounding, and what the report may say about it (DP only)."""

    keep: np.ndarray            # positions of the kept rows in the input frame (unitless rows excluded)
    groups: np.ndarray          # each kept row's unit, 0..units-1, in the order of ``keep``
    unit: PrivacyUnit           # with the cap in force
    cap_chosen: str             # "by the steward (public)" or "with DP (...)"
    histogram: dict[str, Any]   # the noisy rows-per-unit histogram (post-processing only)
    rows_kept_dp: float         # DP estimate of the rows kept
    rows_dropped_dp: float      # DP estimate of the rows the cap dropped
    units_over_cap_dp: float    # DP estimate of the units with more rows than the cap
    noise_std: dict[str, float] = None  # noise std of each estimate (kept, dropped, over)

    def report(self) -> dict[str, Any]:
        """The public report's section on the privacy unit (every figure DP or declared)."""
        return {
            "column": self.unit.column,
            "noun": self.unit.noun,
            "max_rows": self.unit.max_rows,
            "cap": self.cap_chosen,
            "rows_without_unit": "left out before any mechanism (their number is not published)",
            "rows_kept_dp": self.rows_kept_dp,
            "rows_dropped_by_cap_dp": self.rows_dropped_dp,
            f"{self.unit.noun}s_over_cap_dp": self.units_over_cap_dp,
            "estimates": (f"from the noisy rows-per-{self.unit.noun} histogram: rows kept, rows dropped (a "
                          f"{self.unit.noun}'s counted up to {DROPPED_COUNTED} x the cap) and {self.unit.noun}s over "
                          "the cap, each with its noise standard deviation"),
            "estimates_noise_std": dict(self.noise_std or {}),
            "rows_per_unit_dp": self.histogram,
            "column_released": False,
        }


def _bin_of(rows: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(ROWS_PER_UNIT_BINS), rows, side="right") - 1


def _representative(index: int) -> float:
    """A typical row count of bin ``index`` (exact for the one-value bins)."""
    low = ROWS_PER_UNIT_BINS[index]
    if index + 1 < len(ROWS_PER_UNIT_BINS):
        high = ROWS_PER_UNIT_BINS[index + 1] - 1
        return float(low) if low == high else math.sqrt(low * high)
    return float(low)  # the open last bin: a lower estimate


def _clean(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """The noisy histogram with bins indistinguishable from noise read as empty (post-processing)."""
    counts = np.asarray(noisy, dtype=float)
    return np.where(counts > NOISE_MARGIN * sigma, counts, 0.0)


def choose_cap(counts: np.ndarray, *, quantile: float = CAP_QUANTILE, largest: int = MAX_AUTO_CAP) -> int:
    """The smallest cap of :data:`AUTO_CAPS` (at most ``largest``) holding every row of
    ``quantile`` of the units, by the (cleaned) histogram."""
    counts = np.maximum(np.asarray(counts, dtype=float), 0.0)
    total = counts.sum()
    if total <= 0:
        return 1
    caps = [cap for cap in AUTO_CAPS if cap < largest] + [largest]
    for cap in caps:  # each ends a bin, so "every row" is read off whole bins
        if counts[: int(_bin_of(np.array([cap]))[0]) + 1].sum() >= quantile * total:
            return cap
    return largest


def _estimates(noisy: np.ndarray, cap: int, sigma: float) -> dict[str, float]:
    """Rows kept, rows dropped (each unit's counted up to DROPPED_COUNTED x cap), units over
    the cap: weighted sums of the raw noisy bins (a negative bin is kept: dropping only the
    noise below zero would bias every sum up), floored at zero, with their noise std."""
    counts = np.asarray(noisy, dtype=float)
    reps = np.array([_representative(i) for i in range(len(ROWS_PER_UNIT_BINS))])
    weights = {"kept": np.minimum(reps, cap),
               "dropped": np.minimum(np.maximum(reps - cap, 0.0), DROPPED_COUNTED * cap),
               "over": (reps > cap).astype(float)}
    out = {}
    for name, w in weights.items():
        out[name] = max(float(np.sum(counts * w)), 0.0)
        out[f"{name}_noise_std"] = float(sigma * np.sqrt(np.sum(w ** 2)))
    return out


def bound_contributions(frame: pd.DataFrame, request: UnitRequest, ledger: PrivacyLedger, *,
                        step: str = ROWS_PER_UNIT_STEP) -> BoundedRows:
    """Bound each unit's rows (see the module docstring); releases the rows-per-unit histogram on ``step``.

    ``ledger`` must have a plan with ``step`` in it. Sets ``ledger.unit`` to the unit with
    the cap in force. Returns the kept rows and the DP figures about the bounding.
    """
    if request.column not in frame.columns:
        raise DataError(f"--privacy-unit {request.column}: no such column; the columns are "
                        + ", ".join(map(str, frame.columns)))
    codes, units = unit_codes(frame[request.column])
    rows_per_unit = np.bincount(codes[codes >= 0], minlength=units)
    exact = np.bincount(_bin_of(rows_per_unit), minlength=len(ROWS_PER_UNIT_BINS)) if units else \
        np.zeros(len(ROWS_PER_UNIT_BINS), dtype=np.int64)
    noisy = ledger.noisy(step, exact, sensitivity=1.0, integer=True,
                         mechanism="Gaussian mechanism on the histogram of rows per unit",
                         parameters={"bins": list(ROWS_PER_UNIT_BINS)})
    sigma = ledger.planned_multiplier(step)
    cleaned = _clean(noisy, sigma)
    if request.max_rows is None:
        cap = choose_cap(cleaned)
        how = (f"with DP: the smallest of the caps {', '.join(map(str, AUTO_CAPS))} holding every row of "
               f"{CAP_QUANTILE:.0%} of the {request.word}s by the noisy histogram")
    else:
        cap = request.max_rows
        how = "by the steward (public)"
    unit = request.unit(cap)
    ledger.unit = unit
    keep = _sample_rows(codes, units, cap, ledger.noise.generator())
    estimates = _estimates(noisy, cap, sigma)
    histogram = {"bins_from": list(ROWS_PER_UNIT_BINS), "counts": [int(v) for v in noisy], "noise_std": sigma,
                 "note": f"{request.word}s by number of rows (before the cap), each count with Gaussian noise"}
    return BoundedRows(keep=keep, groups=codes[keep], unit=unit, cap_chosen=how, histogram=histogram,
                       rows_kept_dp=estimates["kept"], rows_dropped_dp=estimates["dropped"],
                       units_over_cap_dp=estimates["over"],
                       noise_std={k[:-len("_noise_std")]: v for k, v in estimates.items() if k.endswith("_noise_std")})


def _sample_rows(codes: np.ndarray, units: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of at most ``cap`` rows per unit, drawn uniformly; unitless rows left out; input order kept."""
    present = np.flatnonzero(codes >= 0)
    if present.size == 0:
        return present
    # A uniform random key per row; within each unit, the cap smallest keys win.
    keys = rng.random(present.size)
    order = np.lexsort((keys, codes[present]))
    sorted_units = codes[present][order]
    starts = np.searchsorted(sorted_units, sorted_units, side="left")
    rank = np.arange(present.size) - starts
    return np.sort(present[order[rank < cap]])
