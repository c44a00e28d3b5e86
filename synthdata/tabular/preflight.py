"""Pre-flight: refuse, before any training, a fit that cannot succeed or would take hours.

:meth:`TabularGAN.fit <synthdata.tabular.estimator.TabularGAN.fit>` calls :func:`preflight`
twice: right after the DP row count, before the noise is planned (what is known then: the
number of columns, the options, the DP count, and the least noise any plan at this ε and
δ can put on one release), and again once the columns' values have been released (the
schema and the encoder's levels: DP outputs), still before the first training step. A
release also calls :func:`check_columns` before it reads a row (public facts only). Each
refusal is one line that says what to change: more ε, fewer columns, a declared schema,
fewer generator steps.

A refusal is itself something the steward learns, so every figure it rests on is public
(the column count, the options, the plan) or a DP output (the DP row count, the released
levels), never an exact count of the real rows:

The noise of a release is bounded below without planning: whatever share of the budget a
plan gives it, one Gaussian release with sensitivity Δ is itself (ε, δ)-DP, so its σ is at
least Δ times the analytic Gaussian mechanism's (Balle and Wang 2018) at (ε, δ):
:func:`least_sigma`. The checks built on it refuse only what no plan could save.

* **Column types.** Without a schema, a column's type is read from noisy counts of its
  values' shapes (sensitivity √(2·columns)); a shape counted on every row still cannot
  clear the noise margin when the DP row count is below it, so no type could be decided.
* **The release threshold.** A value reaches the synthetic data only if its noisy count
  clears the sparse-histogram threshold (see :mod:`synthdata.tabular.encoding`). With a
  declared schema the smallest threshold is known before a row is read (at least one
  histogram per column); a column needs two values above it, so a DP row count below
  twice the threshold leaves every thresholded column (and a ``target``) with at most
  one value. Once the levels are released, a ``target`` the encoder left out, or kept
  with a single released value (beside rows too rare to release), is refused by name.
* **The work.** Training costs about ``steps x 6 x batch x (256·D + D·C + C²)``
  floating-point operations (D: the one-hot width, C: the width of the 2-way marginals'
  groups), plus passes over rows x columns; memory is dominated by the D x C and C x C
  matrices. Estimated from at least two levels per column before the levels are known,
  exactly after; refused above :data:`MAX_FIT_HOURS` at a generous arithmetic rate, or
  above the memory available.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import torch
from scipy.stats import norm

from ..errors import DataError
from ..files import printable
from ..privacy import PrivacyLedger, gaussian_threshold
from .inference import schema_noise

if TYPE_CHECKING:
    from ..schema import Schema
    from .encoding import TabularEncoder

__all__ = ["MAX_FIT_HOURS", "FitEstimate", "check_columns", "estimate_fit", "least_sigma", "preflight"]

#: Refuse a fit estimated to run longer than this (hours). The environment variable
#: SYNTHDATA_MAX_FIT_HOURS overrides it; 0 turns the check off.
MAX_FIT_HOURS = 2.0
#: Arithmetic rate assumed per CPU thread, generous (a busy core measured 26-40 GFLOP/s on
#: these kernels): only what surely takes hours is refused.
CPU_FLOPS_PER_THREAD = 60e9
#: Rate assumed on a CUDA device.
CUDA_FLOPS = 20e12
#: Seconds per cell for one pass over the rows (type inference, encoding, marginals), generous.
CELL_SECONDS = 1e-7
#: Passes over the rows before training (schema, histograms, encoding, marginals).
DATA_PASSES = 4
#: Share of the available memory a fit may plan to use.
MEMORY_SHARE = 0.8
#: Noise margin of a column-type count (as in :mod:`synthdata.tabular.inference`).
TYPE_NOISE_MARGIN = 3.0


@dataclass(frozen=True)
class FitEstimate:
    """What a fit is expected to cost: seconds (at the assumed rate) and bytes of memory."""

    seconds: float
    memory: float
    onehot: int  #: D, one-hot width of a row
    groups: int  #: C, width of the 2-way marginals' groups


def estimate_fit(*, rows: float, columns: int, generator_steps: int, generator_batch: int = 1024,
                 discriminator_steps: int = 0, discriminator_batch: int = 0, pairs: bool = True,
                 sizes: list[int] | None = None, coarse: list[int] | None = None, data_passes: int = DATA_PASSES,
                 device: torch.device | str = "cpu", hidden: int = 128, in_memory: bool = True) -> FitEstimate:
    """The cost of a fit: ``sizes``/``coarse`` are the columns' level counts when known (else
    two levels and two groups per column, the fewest a column that is kept can have).
    ``in_memory``: the rows are held in memory (not by an engine, which keeps memory bounded)."""
    sizes = [2] * columns if sizes is None else sizes
    coarse = [min(2, s) for s in sizes] if coarse is None else coarse
    onehot, groups = int(sum(sizes)), int(sum(coarse)) if pairs else 0
    most = max(sizes, default=1)
    batch = generator_batch
    per_step = 6.0 * batch * (2 * hidden * onehot + onehot * groups + groups * groups + 8 * columns * most)
    per_d_step = 6.0 * 2 * max(discriminator_batch, 1) * (onehot * hidden + hidden * hidden) if discriminator_steps else 0
    flops = generator_steps * per_step + discriminator_steps * per_d_step
    kind = torch.device(device).type if not isinstance(device, torch.device) else device.type
    rate = CUDA_FLOPS if kind == "cuda" else CPU_FLOPS_PER_THREAD * max(1, min(torch.get_num_threads(), 64))
    seconds = flops / rate + data_passes * rows * columns * CELL_SECONDS
    memory = 4.0 * (onehot * groups + 3 * groups * groups + 10 * batch * onehot + 6 * 1024 * onehot
                    + 4 * batch * columns * most) + (16.0 * rows * columns if in_memory else 0.0)
    return FitEstimate(seconds=seconds, memory=memory, onehot=onehot, groups=groups)


@lru_cache(maxsize=64)
def least_sigma(epsilon: float, delta: float) -> float:
    """The least σ (per unit of L2 sensitivity) of a Gaussian release that is (ε, δ)-DP.

    The analytic Gaussian mechanism: δ(σ) = Φ(1/2σ − εσ) − e^ε Φ(−1/2σ − εσ) is
    decreasing in σ; the smallest σ with δ(σ) ≤ δ, by bisection (from above: never less).
    """
    def excess(sigma: float) -> float:
        a, b = 0.5 / sigma, epsilon * sigma
        return norm.cdf(a - b) - math.exp(min(epsilon + norm.logcdf(-a - b), 700.0)) - delta

    low, high = 1e-6, 1e6
    for _ in range(100):
        middle = math.sqrt(low * high)
        if excess(middle) > 0:
            low = middle
        else:
            high = middle
    return high


def check_columns(columns: int, *, model, device: torch.device | str = "cpu") -> None:
    """Refuse, from public facts alone (the column count, the model's settings), a table too wide
    to train in :data:`MAX_FIT_HOURS` even if every column kept only two levels."""
    if not hasattr(model, "generator_steps"):
        return
    estimate = estimate_fit(rows=0, columns=columns, generator_steps=int(model.generator_steps),
                            pairs=bool(getattr(model, "max_pairs", 1)), device=device)
    _refuse_work(estimate, shape=f"{columns:,} columns, each with two levels at the least", about=None,
                 steps=int(model.generator_steps))


def preflight(model, *, count: float, columns: int, ledger: PrivacyLedger, schema: Schema | None,
              target: str | None = None, unit_rows: int | None = 1, discriminator_steps: int = 0,
              discriminator_batch: int = 0, device: torch.device | str = "cpu",
              encoder: TabularEncoder | None = None, rows: float | None = None, in_memory: bool = True) -> None:
    """Refuse (:class:`~synthdata.errors.DataError`, one line) what cannot succeed or would take hours.

    ``count``: the DP count of units (rows, or persons); ``rows``: a DP count of the rows
    measured (default ``count``); ``columns``: the columns to model (public); ``schema``:
    declared or decided (None before it is decided); ``encoder``: once the levels are
    released; ``unit_rows``: the cap on rows per unit, None while it is not chosen yet;
    ``in_memory``: False when an engine holds the rows (:mod:`synthdata.engines`).
    """
    rows = float(count if rows is None else rows)
    what = "rows" if ledger.unit.per_row else f"{ledger.unit.noun}s"
    about = f"a DP count says the table holds about {max(count, 0):,.0f} {what}"
    if encoder is None:
        least = least_sigma(float(ledger.epsilon), float(ledger.delta))
        if schema is None:
            sigma = schema_noise(least, columns)  # the schema's release, unit_rows 1
            if count <= TYPE_NOISE_MARGIN * sigma:
                raise DataError(
                    f"no column's type can be told from the noise at epsilon {ledger.epsilon:g}: {about}, but a "
                    f"type needs about {TYPE_NOISE_MARGIN * sigma:,.0f} of them with {columns:,} columns. Declare a "
                    "schema (synthdata inspect --schema-out, then --schema: public, free), raise --epsilon, or "
                    "leave columns out (--drop)")
        if schema is not None and unit_rows is not None:
            _threshold_check(schema, ledger, least=least, rows=rows, unit_rows=unit_rows, target=target,
                             about=about)
    elif target is not None:
        dropped = dict(getattr(encoder, "dropped_", None) or {})
        reasons = {**{e.name: e.reason for e in schema.excluded}, **dropped} if schema is not None else dropped
        if target in reasons or (schema is not None and target not in schema.names):
            reason = reasons.get(target, "it was left out of the model")
            raise DataError(f"--target {printable(target)} cannot be released at epsilon {ledger.epsilon:g}: {reason}; "
                            "or release without --target")
        code = next((c for c in getattr(encoder, "codes_", []) if c.name == target), None)
        column = next((c for c in schema if c.name == target), None) if schema is not None else None
        if code is not None and code.values_released < 2 and not (column is not None and (
                column.constant or _public_domain(column))):
            # One value beside rows too rare to release: every synthetic row gets that value,
            # and the audit's ML utility (train on synthetic, test on real) has one class.
            raise DataError(f"--target {printable(target)} cannot show two values at epsilon {ledger.epsilon:g}: "
                            f"only one of its values is frequent enough to be released ({about}). Raise --epsilon, "
                            "declare its categories in the schema (public: no threshold), leave columns out "
                            "(--drop: fewer columns, less noise), or release without --target")
    _work_check(model, count=count, rows=rows, columns=columns, schema=schema, encoder=encoder,
                discriminator_steps=discriminator_steps, discriminator_batch=discriminator_batch, device=device,
                about=about, in_memory=in_memory)


def _threshold_check(schema: Schema, ledger: PrivacyLedger, *, least: float, rows: float, unit_rows: int,
                     target: str | None, about: str) -> None:
    """With the columns known: can any column (the target) show two values above the threshold?"""
    columns = list(schema)
    free = [c for c in columns if _public_domain(c)]
    thresholded = [c for c in columns if not _public_domain(c)]
    if not thresholded:
        return
    # The smallest threshold any plan allows: one histogram per column (numbers have more).
    sigma = least * unit_rows * math.sqrt(len(columns))
    threshold = gaussian_threshold(sigma=sigma, fail_probability=min(0.5, ledger.threshold_delta /
                                                                     (len(thresholded) * unit_rows)),
                                   max_count=unit_rows)
    needed = f"a value needs a noisy count above about {threshold:,.0f} rows to be released"
    if target is not None and any(c.name == target for c in thresholded) and rows <= 2 * threshold:
        raise DataError(f"--target {printable(target)} cannot show two values at epsilon {ledger.epsilon:g}: {needed}, "
                        f"and {about}. Raise --epsilon, declare its categories in the schema (public: no "
                        "threshold), leave columns out (--drop: fewer columns, less noise), or release without "
                        "--target")
    if not free and rows <= 2 * threshold:
        raise DataError(f"no column can show two values at epsilon {ledger.epsilon:g}: {needed}, and {about}. "
                        "Raise --epsilon, declare categories or bounds in the schema (public: no threshold), or "
                        "leave columns out (--drop: fewer columns, less noise)")


def _public_domain(column) -> bool:
    return column.type == "boolean" or (column.type == "categorical" and column.categories is not None)


def _work_check(model, *, count: float, rows: float, columns: int, schema, encoder, discriminator_steps: int,
                discriminator_batch: int, device, about: str, in_memory: bool = True) -> None:
    limit = _max_hours()
    steps = int(getattr(model, "generator_steps", 0) or 0)
    pairs = bool(getattr(model, "max_pairs", 1))
    if encoder is not None:
        codes = list(encoder.codes_)
        estimate = estimate_fit(rows=rows, columns=len(codes), generator_steps=steps, pairs=pairs,
                                discriminator_steps=discriminator_steps, discriminator_batch=discriminator_batch,
                                sizes=[c.size for c in codes], coarse=[c.coarse_size for c in codes], data_passes=1,
                                device=device, in_memory=in_memory)
        columns = len(codes)
        shape = f"{columns:,} columns with {estimate.onehot:,} levels in all"
    else:
        columns = len(schema.columns) if schema is not None else columns
        estimate = estimate_fit(rows=rows, columns=columns, generator_steps=steps, pairs=pairs,
                                discriminator_steps=discriminator_steps, discriminator_batch=discriminator_batch,
                                device=device, in_memory=in_memory)
        shape = f"{columns:,} columns"
    _refuse_work(estimate, shape=shape, about=about, steps=steps, limit=limit)


def _refuse_work(estimate: FitEstimate, *, shape: str, about: str | None, steps: int,
                 limit: float | None = None) -> None:
    limit = _max_hours() if limit is None else limit
    what = f"{shape}{'' if about is None else ', ' + about}, {steps:,} generator steps; an estimate"
    fix = ("leave columns out (--drop), declare a schema of the columns that matter (--schema), or train fewer "
           "generator steps (generator_steps=)")
    if limit and estimate.seconds > limit * 3600:
        raise DataError(f"this fit would take about {_duration(estimate.seconds)} here ({what}): {fix}. Set "
                        "SYNTHDATA_MAX_FIT_HOURS to allow longer fits")
    available = _available_memory()
    if available is not None and estimate.memory > MEMORY_SHARE * available:
        raise DataError(f"this fit would need about {_bytes(estimate.memory)} of memory ({what}), more than the "
                        f"{_bytes(available)} available: {fix}")


def _max_hours() -> float:
    text = os.environ.get("SYNTHDATA_MAX_FIT_HOURS")
    if not text:
        return MAX_FIT_HOURS
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"SYNTHDATA_MAX_FIT_HOURS={printable(text)!r} is not a number of hours; set it to e.g. 6, "
                        "or 0 to turn the check off") from None
    if not math.isfinite(value) or value < 0:
        raise DataError(f"SYNTHDATA_MAX_FIT_HOURS={printable(text)!r} must be a number of hours >= 0 (0: no limit)")
    return value


def _available_memory() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def _duration(seconds: float) -> str:
    if seconds >= 48 * 3600:
        return f"{seconds / 86400:,.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} hours"
    return f"{seconds / 60:,.0f} minutes"


def _bytes(count: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,.0f} bytes"
