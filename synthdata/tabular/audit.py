"""The public audit of a table release: fidelity to the DP measurements, and DP audit figures.

Two kinds of figures may go into the shareable report (see
:mod:`synthdata.audit.private`):

* **fidelity** — how closely the synthetic table follows what the model measured with
  DP: each column's distribution against its noisy 1-way histogram, each measured pair's
  against its noisy 2-way marginal. Post-processing of DP outputs: free.
* **noisy audit counts** — utility of a model trained on the synthetic rows, scored on
  the real holdout; a membership attack's AUC, TPR/FPR and ε lower bound; exact copies —
  each with its sensitivity, released through the ledger's ``"audit"`` step.

The steward's exact audit (:func:`synthdata.audit.audit`) is separate and never shared.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from ..audit.leakage import _closest_record_scores, _Embedding, _row_hashes
from ..audit.private import (AUDIT_STEP, MEMBERSHIP_SKIPPED, UTILITY_SKIPPED, holdout_count, membership_sample_size,
                             release_audit_figures, utility_worth_releasing)
from ..audit.quality import synthetic_model_correct
from ..audit.tables import prepare

__all__ = ["MAX_MEMBERSHIP_SAMPLE", "fidelity", "public_audit"]

#: Most members (and as many non-members) the public membership attack scores.
MAX_MEMBERSHIP_SAMPLE = 5000
#: Fewest it needs to say anything: below, the noise swamps the AUC.
MIN_MEMBERSHIP_SAMPLE = 50
#: Synthetic rows searched for the closest record.
MAX_SEARCH = 20_000
#: Share of synthetic rows whose distance to their closest other synthetic row sets the
#: attack's public threshold.
THRESHOLD_QUANTILE = 0.01


def fidelity(model, synthetic: pd.DataFrame) -> dict[str, Any]:
    """Total-variation distance of the synthetic table to the model's noisy measurements (free)."""
    encoder = model.encoder_
    levels = encoder.encode(synthetic[model.columns_], model.schema_, rng=np.random.default_rng(0))
    per_column = {}
    for j, code in enumerate(encoder.codes_):
        target = np.maximum(np.asarray(code.counts, dtype=float), 0.0)
        target = target / max(target.sum(), 1e-12)
        observed = np.bincount(levels[:, j], minlength=code.size) / max(len(levels), 1)
        per_column[code.name] = float(0.5 * np.abs(observed - target).sum())
    per_pair = {}
    for i, j, noisy, weight in model.marginals_.two_way:
        if weight < 1.0:
            continue  # an independence prior, not a measurement
        ci, cj = encoder.codes_[i], encoder.codes_[j]
        target = np.maximum(np.asarray(noisy, dtype=float), 0.0)
        target = target / max(target.sum(), 1e-12)
        a = np.asarray(ci.coarse)[levels[:, i]]
        b = np.asarray(cj.coarse)[levels[:, j]]
        observed = np.bincount(a * cj.coarse_size + b, minlength=ci.coarse_size * cj.coarse_size) / max(len(levels), 1)
        per_pair[f"{ci.name} | {cj.name}"] = float(0.5 * np.abs(observed - target).sum())
    return {
        "tvd_1way_to_dp_histograms": float(np.mean(list(per_column.values()))) if per_column else None,
        "tvd_2way_to_dp_marginals": float(np.mean(list(per_pair.values()))) if per_pair else None,
        "per_column": per_column,
        "per_pair": per_pair,
        "note": "distances of the synthetic table to the model's own noisy measurements (post-processing of DP "
                "outputs); the noise itself is part of the distance",
    }


def public_audit(model, train: pd.DataFrame, holdout: pd.DataFrame | None, synthetic: pd.DataFrame, *,
                 target: str | None, holdout_fraction: float, seed: int, units: np.ndarray | None = None,
                 holdout_units: np.ndarray | None = None) -> dict[str, Any]:
    """The audit section of a table release's public report.

    With a privacy unit, ``units``/``holdout_units`` give each real row's unit (0..U-1)
    and every noisy figure counts *units*: the attack scores a unit by its best-scoring
    row (its smallest distance to a synthetic row), utility is each holdout unit's share
    of rows predicted right, a copy is a unit with any row copied. Each unit then moves
    each count by at most one, whatever its number of rows.
    """
    result: dict[str, Any] = {"fidelity": fidelity(model, synthetic)}
    ledger = model.ledger_
    if ledger.plan_ is None or AUDIT_STEP not in ledger.plan_.sigmas:
        result["figures"] = None
        result["note"] = "no share of the budget was reserved for audit figures"
        return result
    per_unit = units is not None
    has_holdout = holdout is not None and len(holdout) > 0
    tables = prepare(train[model.columns_], synthetic[model.columns_],
                     holdout[model.columns_] if has_holdout else None, schema=model.schema_)
    if not has_holdout:
        tables = dataclasses.replace(tables, holdout=tables.train.iloc[:0])
    if not per_unit:  # every row its own unit
        units, holdout_units = np.arange(len(tables.train)), np.arange(len(tables.holdout))
    elif not has_holdout:
        holdout_units = np.zeros(0, dtype=np.int64)
    rng = ledger.noise.generator()
    kinds = tables.kinds
    correct, majority = None, None
    # The sample sizes and what is worth releasing come from DP counts only: the model's unit
    # count and the public fraction.
    n_train = float(model.n_units_ if per_unit else model.n_rows_)
    n_holdout = holdout_count(n_train, holdout_fraction)
    wanted = target is not None and target in model.columns_ and len(tables.holdout) > 0
    worth = wanted and utility_worth_releasing(ledger, n_holdout=n_holdout)
    if worth:
        correct = synthetic_model_correct(tables.synthetic, tables.holdout, target=target, kinds=kinds, seed=seed)
        if per_unit and correct is not None:  # each holdout unit's share of rows predicted right: at most 1 per unit
            correct = _per_unit_mean(np.asarray(correct, dtype=float), holdout_units)
        code = next(c for c in model.encoder_.codes_ if c.name == target)
        weights = np.maximum(np.asarray(code.counts, dtype=float), 0.0)
        majority = float(weights.max() / weights.sum()) if weights.sum() > 0 else None
    m = membership_sample_size(ledger, n_train=n_train, n_holdout=n_holdout, utility=correct is not None,
                               limit=MAX_MEMBERSHIP_SAMPLE)
    members = non_members = None
    threshold = None
    if m and len(tables.holdout):
        searched = tables.synthetic
        if len(searched) > MAX_SEARCH:
            searched = searched.iloc[rng.choice(len(searched), MAX_SEARCH, replace=False)]
        embed = _Embedding(dataclasses.replace(tables, train=searched))  # scaled by the synthetic rows: public
        pool = embed(searched)
        members = _unit_scores(pool, embed, tables.train, units, m, rng)
        non_members = _unit_scores(pool, embed, tables.holdout, holdout_units, m, rng)
        threshold = -_self_distance_quantile(pool, THRESHOLD_QUANTILE)
    synthetic_hashes = _row_hashes(tables.synthetic)
    copies_train = _units_with(np.isin(_row_hashes(tables.train), synthetic_hashes), units)
    copies_holdout = _units_with(np.isin(_row_hashes(tables.holdout), synthetic_hashes), holdout_units) \
        if len(tables.holdout) else 0
    figures = release_audit_figures(
        ledger, unit_rows=1, correct=correct, member_scores=members,
        non_member_scores=non_members, threshold=threshold, copies_train=copies_train,
        copies_holdout=copies_holdout, majority_share=majority,
        what=f"{ledger.unit.noun}s" if per_unit else "rows",
        membership_skipped=MEMBERSHIP_SKIPPED if not m else None,
        utility_skipped=UTILITY_SKIPPED if wanted and not worth else None)
    if figures["ml_utility"] is not None:
        figures["ml_utility"]["target"] = target
        if per_unit:
            figures["ml_utility"]["note"] = (f"accuracy averaged over holdout {ledger.unit.noun}s (each one's share "
                                             "of rows predicted right)")
    if figures.get("membership") is not None and per_unit:
        figures["membership"]["attack"] = (f"distance to the closest synthetic record, a {ledger.unit.noun} scored "
                                           "by their closest row")
    result["figures"] = figures
    result["verdict"] = _verdict(figures, ledger.epsilon)
    return result


#: Most rows of one unit the attack scores (a uniform sample of them; its best row wins).
MAX_ROWS_SCORED = 64


def _unit_scores(pool: np.ndarray, embed, frame: pd.DataFrame, units: np.ndarray, m: int,
                 rng: np.random.Generator) -> np.ndarray:
    """The attack's scores of exactly ``m`` units drawn uniformly without replacement (``m`` is public).

    A unit's score is its best row's (minus its smallest distance to a synthetic row).
    When fewer than ``m`` units exist, the rest of the ``m`` slots score ``-inf`` (a public
    constant: never flagged, ranked last), so one unit more or less still moves every
    count by at most one.
    """
    count = int(units.max()) + 1 if len(units) else 0
    chosen = rng.choice(count, min(m, count), replace=False) if count else np.zeros(0, dtype=np.int64)
    slot = np.full(count, -1)
    slot[chosen] = np.arange(len(chosen))
    rows = np.flatnonzero(slot[units] >= 0) if len(units) else np.zeros(0, dtype=np.int64)
    rows = rows[_at_most_per_unit(units[rows], MAX_ROWS_SCORED, rng)]
    scores = np.full(m, -np.inf)
    if len(rows):
        np.maximum.at(scores, slot[units[rows]], _closest_record_scores(pool, embed(frame.iloc[rows])))
    return scores


def _at_most_per_unit(units: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of at most ``limit`` entries per unit, drawn uniformly."""
    if len(units) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((rng.random(len(units)), units))
    ranked = units[order]
    rank = np.arange(len(units)) - np.searchsorted(ranked, ranked, side="left")
    return np.sort(order[rank < limit])


def _per_unit_mean(values: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Each unit's mean of ``values`` over its rows (units with no row left out)."""
    count = int(units.max()) + 1 if len(units) else 0
    rows = np.bincount(units, minlength=count)
    sums = np.bincount(units, weights=values, minlength=count)
    return sums[rows > 0] / rows[rows > 0]


def _units_with(flags: np.ndarray, units: np.ndarray) -> int:
    """How many units have at least one flagged row."""
    return int(len(np.unique(units[np.asarray(flags, dtype=bool)])))


def unit_membership(model, train: pd.DataFrame, holdout: pd.DataFrame | None, synthetic: pd.DataFrame, *,
                    units: np.ndarray, holdout_units: np.ndarray | None, seed: int) -> dict[str, Any]:
    """The steward's exact membership attack per unit (NOT for release): every unit scored, no noise."""
    from sklearn.metrics import roc_auc_score

    if holdout is None or holdout_units is None or len(holdout) == 0:
        return {"skipped": "no holdout: membership inference per unit needs units the generator never saw"}
    tables = prepare(train[model.columns_], synthetic[model.columns_], holdout[model.columns_], schema=model.schema_)
    rng = np.random.default_rng(seed)
    searched = tables.synthetic
    if len(searched) > MAX_SEARCH:
        searched = searched.iloc[rng.choice(len(searched), MAX_SEARCH, replace=False)]
    embed = _Embedding(dataclasses.replace(tables, train=searched))
    pool = embed(searched)
    sizes = [int(units.max()) + 1 if len(units) else 0, int(holdout_units.max()) + 1 if len(holdout_units) else 0]
    m = min(MAX_MEMBERSHIP_SAMPLE, *sizes)
    if m < 2:
        return {"skipped": "too few units on one side for the attack"}
    members = _unit_scores(pool, embed, tables.train, units, m, rng)
    non_members = _unit_scores(pool, embed, tables.holdout, holdout_units, m, rng)
    labels = np.r_[np.ones(m), np.zeros(m)]
    threshold = -_self_distance_quantile(pool, THRESHOLD_QUANTILE)
    return {
        "attack": "distance to the closest synthetic record; a unit scored by its closest row",
        "units_scored": m,
        "auc": float(roc_auc_score(labels, np.r_[members, non_members])),
        "tpr": float(np.mean(members >= threshold)),
        "fpr": float(np.mean(non_members >= threshold)),
        "members_with_an_exact_copy": _units_with(
            np.isin(_row_hashes(tables.train), _row_hashes(tables.synthetic)), units),
    }


def _self_distance_quantile(pool: np.ndarray, quantile: float) -> float:
    """A low quantile of each synthetic row's distance to its closest *other* synthetic row."""
    from sklearn.neighbors import NearestNeighbors

    sample = pool[: min(len(pool), 5000)]
    if len(sample) < 3:
        return 0.0
    distances, _ = NearestNeighbors(n_neighbors=2, algorithm="brute").fit(pool).kneighbors(sample)
    return float(np.quantile(distances[:, 1], quantile))


def _verdict(figures: dict[str, Any], epsilon: float) -> str:
    membership = figures.get("membership")
    if membership is None:
        return "membership not tested: too few rows for the attack at this budget"
    bound = membership["epsilon_lower_bound"]
    if bound > epsilon:
        return f"VIOLATION: the membership attack proves epsilon >= {bound:.2f}, above the claimed {epsilon:g}"
    auc = membership["auc"]
    spread = 2 * membership["auc_noise_std"]
    if not math.isfinite(auc):
        return "no violation detected"
    return (f"no violation detected: membership attack AUC {auc:.3f} (± {spread:.3f} from the audit's own noise); "
            f"0.5 is chance")
