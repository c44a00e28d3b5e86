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
from ..audit.private import AUDIT_STEP, release_audit_figures
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
                 target: str | None, holdout_fraction: float, seed: int) -> dict[str, Any]:
    """The audit section of a table release's public report."""
    result: dict[str, Any] = {"fidelity": fidelity(model, synthetic)}
    ledger = model.ledger_
    if ledger.plan_ is None or AUDIT_STEP not in ledger.plan_.sigmas:
        result["figures"] = None
        result["note"] = "no share of the budget was reserved for audit figures"
        return result
    has_holdout = holdout is not None and len(holdout) > 0
    tables = prepare(train[model.columns_], synthetic[model.columns_],
                     holdout[model.columns_] if has_holdout else None, schema=model.schema_)
    if not has_holdout:
        tables = dataclasses.replace(tables, holdout=tables.train.iloc[:0])
    rng = ledger.noise.generator()
    kinds = tables.kinds
    correct, majority = None, None
    if target is not None and target in model.columns_ and len(tables.holdout):
        correct = synthetic_model_correct(tables.synthetic, tables.holdout, target=target,
                                          kinds={c: ("numeric" if k in ("numeric", "datetime") else "categorical")
                                                 for c, k in kinds.items()}, seed=seed)
        code = next(c for c in model.encoder_.codes_ if c.name == target)
        weights = np.maximum(np.asarray(code.counts, dtype=float), 0.0)
        majority = float(weights.max() / weights.sum()) if weights.sum() > 0 else None
    # The sample size comes from DP counts only: the model's row count and the public fraction.
    n_train = float(model.n_rows_)
    n_holdout = n_train * holdout_fraction / max(1.0 - holdout_fraction, 1e-9)
    m = int(min(MAX_MEMBERSHIP_SAMPLE, n_train / 2, n_holdout / 2))
    members = non_members = None
    threshold = None
    if m >= MIN_MEMBERSHIP_SAMPLE and len(tables.holdout):
        searched = tables.synthetic
        if len(searched) > MAX_SEARCH:
            searched = searched.iloc[rng.choice(len(searched), MAX_SEARCH, replace=False)]
        embed = _Embedding(dataclasses.replace(tables, train=searched))  # scaled by the synthetic rows: public
        pool = embed(searched)
        take = lambda frame: frame.iloc[rng.choice(len(frame), min(m, len(frame)), replace=False)]  # noqa: E731
        members = _closest_record_scores(pool, embed(take(tables.train)))
        non_members = _closest_record_scores(pool, embed(take(tables.holdout)))
        m = min(len(members), len(non_members))
        members, non_members = members[:m], non_members[:m]
        threshold = -_self_distance_quantile(pool, THRESHOLD_QUANTILE)
    synthetic_hashes = _row_hashes(tables.synthetic)
    copies_train = int(np.isin(_row_hashes(tables.train), synthetic_hashes).sum())
    copies_holdout = int(np.isin(_row_hashes(tables.holdout), synthetic_hashes).sum()) if len(tables.holdout) else 0
    figures = release_audit_figures(
        ledger, unit_rows=ledger.unit.max_rows, correct=correct, member_scores=members,
        non_member_scores=non_members, threshold=threshold, copies_train=copies_train,
        copies_holdout=copies_holdout, majority_share=majority)
    if figures["ml_utility"] is not None:
        figures["ml_utility"]["target"] = target
    result["figures"] = figures
    result["verdict"] = _verdict(figures, ledger.epsilon)
    return result


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
