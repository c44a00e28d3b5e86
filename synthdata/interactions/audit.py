"""The audit of an interaction release: a recommender audit, distribution checks, membership per user.

Public report (every figure DP or post-processing of DP outputs):

* **fidelity** (free: the synthetic data against the model's own noisy measurements):
  items-per-user TVD to the DP activity histogram, item-share TVD to the DP catalogue
  counts, the popularity long tail;
* **noisy audit counts**, one Gaussian release on the ``"audit"`` step: recommenders
  trained on the synthetic users (ALS from ``implicit``, item-kNN) and the model's DP
  popularity, scored on the held-out real users (sums of per-user recall@10 and NDCG@10,
  each in [0, 1]); a membership attack scoring each user by their best Jaccard
  similarity to a synthetic user; users with an exact copy among the synthetic users.
  A held-out user moves at most 10 of the counts by at most 1 each (the six score sums,
  the users scored, U/m, the false positives, their copy), a training user at most 3:
  L2 sensitivity √10.

Steward's audit (exact, NOT for release): the same recommenders and the ones trained on
the real training users, the items-per-user TVD against the real users, how many
synthetic rows hold an item a single real user holds (must be 0), co-occurrence and
popularity agreement, and the exact membership attack.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..audit.private import AUDIT_STEP, holdout_count, mann_whitney_u
from .data import Baskets, baskets_from_frame
from .estimator import ACTIVITY_BINS, _bin_of
from .recommender import ItemKNN, Popularity, evaluate, make_queries, recommender

__all__ = ["public_interaction_audit", "steward_interaction_audit"]

MAX_MEMBERSHIP_SAMPLE = 5000
MIN_MEMBERSHIP_SAMPLE = 50
THRESHOLD_QUANTILE = 0.99
SENSITIVITY_COUNTS = 10
_COUNTS = ["recall_synthetic_als", "ndcg_synthetic_als", "recall_synthetic_knn", "ndcg_synthetic_knn",
           "recall_dp_popularity", "ndcg_dp_popularity", "users_scored", "mann_whitney_u_over_m",
           "true_positives", "false_positives", "copies_train", "copies_holdout"]


def _histogram(sizes: np.ndarray) -> np.ndarray:
    sizes = sizes[sizes > 0]
    return np.bincount(_bin_of(sizes), minlength=len(ACTIVITY_BINS)) / max(len(sizes), 1)


def _shares(values: np.ndarray) -> np.ndarray:
    values = np.maximum(np.asarray(values, dtype=float), 0.0)
    return values / max(values.sum(), 1e-12)


def fidelity(model, synthetic: Baskets) -> dict[str, Any]:
    """The synthetic users against the model's noisy measurements (post-processing of DP outputs: free)."""
    activity = _shares(model.activity_["counts"])
    counts = pd.Series(np.asarray(synthetic.matrix.sum(0)).ravel(), index=synthetic.items)
    synthetic_shares = _shares(counts.reindex(np.asarray(model.catalogue_, dtype=object), fill_value=0).to_numpy())
    top = max(1, len(counts) // 10)
    ranked = np.sort(counts.to_numpy())[::-1]
    return {
        "items_per_user_tvd_to_dp_histogram": float(0.5 * np.abs(_histogram(synthetic.sizes) - activity).sum()),
        "item_share_tvd_to_dp_counts": float(0.5 * np.abs(synthetic_shares - _shares(model.measurements_.counts)).sum()),
        "top_10pct_items_share_of_interactions": float(ranked[:top].sum() / max(ranked.sum(), 1)),
        "catalogue_items": len(model.catalogue_),
        "note": "distances of the synthetic users to the model's own noisy measurements (post-processing of DP "
                "outputs); the noise itself is part of the distance"
                + ("; the catalogue took two passes, so its DP counts are pass-2 counts (each user's weight on their "
                   "top-scored items), which favour the most popular items: the item-share distance has a systematic "
                   "part" if getattr(model.measurements_, "top_items", None) else ""),
    }


def _jaccard_best(real: sp.csr_matrix, synthetic: sp.csr_matrix, *, exclude_self: bool = False) -> np.ndarray:
    """Each real user's best Jaccard similarity to a synthetic user (0 for an empty basket)."""
    real = sp.csr_matrix(real, dtype=np.float64)
    synthetic = sp.csr_matrix(synthetic, dtype=np.float64)
    a, b = np.diff(real.indptr), np.diff(synthetic.indptr)
    best = np.zeros(real.shape[0])
    for start in range(0, real.shape[0], 512):
        inter = (real[start:start + 512] @ synthetic.T).toarray()
        union = a[start:start + 512, None] + b[None, :] - inter
        jac = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        if exclude_self:
            rows = np.arange(jac.shape[0])
            jac[rows, start + rows] = -1.0
        best[start:start + 512] = jac.max(1) if jac.shape[1] else 0.0
    return best


def _exact_copies(baskets: Baskets, synthetic_keys: set) -> np.ndarray:
    """Per user: does a synthetic user hold exactly the same items (two or more)?"""
    out = np.zeros(len(baskets), dtype=bool)
    for u, items in enumerate(baskets.item_lists()):
        if len(items) >= 2:
            out[u] = tuple(sorted(baskets.items[items])) in synthetic_keys
    return out


def _synthetic_keys(synthetic: Baskets) -> set:
    return {tuple(sorted(synthetic.items[items])) for items in synthetic.item_lists()}


def _take(scores: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``m`` users' scores drawn without replacement; missing slots score -inf (public constant)."""
    chosen = rng.choice(len(scores), min(m, len(scores)), replace=False) if len(scores) else np.zeros(0, int)
    return np.r_[scores[chosen], np.full(m - len(chosen), -np.inf)]


def _recommenders(synthetic: Baskets, model, seed: int):
    return {"synthetic_als": (recommender(synthetic.matrix, seed=seed), synthetic.items),
            "synthetic_knn": (ItemKNN(synthetic.matrix), synthetic.items),
            "dp_popularity": (Popularity(model.measurements_.counts), np.asarray(model.catalogue_, dtype=object))}


def public_interaction_audit(model, train: Baskets, holdout: Baskets | None, synthetic: Baskets, *,
                             holdout_fraction: float, seed: int) -> dict[str, Any]:
    """The audit section of an interaction release's public report."""
    result: dict[str, Any] = {"fidelity": fidelity(model, synthetic)}
    ledger = model.ledger_
    if ledger.plan_ is None or AUDIT_STEP not in ledger.plan_.sigmas:
        result["figures"], result["note"] = None, "no share of the budget was reserved for audit figures"
        return result
    rng = ledger.noise.generator()
    counts = np.zeros(len(_COUNTS))
    has_holdout = holdout is not None and len(holdout) > 0
    if has_holdout:
        queries = make_queries(holdout.matrix, holdout.items, seed=seed)
        for k, (name, (recommender_, items)) in enumerate(_recommenders(synthetic, model, seed).items()):
            recall, ndcg = evaluate(recommender_, items, queries)
            counts[2 * k], counts[2 * k + 1] = recall.sum(), ndcg.sum()
        counts[6] = len(queries)
    n_train = float(model.n_users_)
    n_holdout = holdout_count(n_train, holdout_fraction)
    m = int(min(MAX_MEMBERSHIP_SAMPLE, n_train / 2, n_holdout / 2))
    catalogue = np.asarray(model.catalogue_, dtype=object)
    synthetic_matrix = synthetic.restricted(catalogue)
    threshold = None
    if m >= MIN_MEMBERSHIP_SAMPLE and has_holdout:
        pool = synthetic_matrix[: min(synthetic_matrix.shape[0], 5000)]
        threshold = float(np.quantile(_jaccard_best(pool, pool, exclude_self=True), THRESHOLD_QUANTILE))
        members = _take(_jaccard_best(train.restricted(catalogue), synthetic_matrix), m, rng)
        non_members = _take(_jaccard_best(holdout.restricted(catalogue), synthetic_matrix), m, rng)
        counts[7] = mann_whitney_u(members, non_members) / m
        counts[8], counts[9] = float(np.sum(members >= threshold)), float(np.sum(non_members >= threshold))
    keys = _synthetic_keys(synthetic)
    counts[10] = _exact_copies(train, keys).sum()
    counts[11] = _exact_copies(holdout, keys).sum() if has_holdout else 0
    sensitivity = math.sqrt(SENSITIVITY_COUNTS)
    noun = ledger.unit.noun
    noisy = ledger.noisy(AUDIT_STEP, counts, sensitivity=sensitivity,
                         mechanism="Gaussian mechanism on audit counts (recommender scores, membership attack, copies)",
                         parameters={"counts": _COUNTS, "membership_sample": m if threshold is not None else 0})
    sigma = ledger.planned_multiplier(AUDIT_STEP) * sensitivity
    figures: dict[str, Any] = {"noise_std": sigma, "sensitivity": sensitivity, "unit": ledger.unit.description}
    if has_holdout:
        scored = max(noisy[6], 1.0)
        figures["recommender"] = {
            "protocol": f"held-out real {noun}s: 80% of each one's items as the query, 20% to find; top 10",
            f"{noun}s_scored": max(int(round(noisy[6])), 0),
            "score_noise_std": sigma / scored,
            **{f"{name}": {"recall@10": _clip01(noisy[2 * k] / scored), "ndcg@10": _clip01(noisy[2 * k + 1] / scored)}
               for k, name in enumerate(("synthetic_als", "synthetic_knn", "dp_popularity"))},
        }
    else:
        figures["recommender"] = None
    if threshold is not None:
        tpr_low = max(noisy[8] - 2 * sigma, 0.0) / m
        fpr_high = min(max(noisy[9] + 2 * sigma, 1.0), m) / m
        bound = max(math.log((tpr_low - ledger.delta) / fpr_high), 0.0) if tpr_low - ledger.delta > 0 else 0.0
        figures["membership"] = {"attack": f"best Jaccard similarity of a {noun}'s items to a synthetic {noun}'s",
                                 "auc": _clip01(noisy[7] / m), "auc_noise_std": sigma / m, "sample": m,
                                 "tpr": _clip01(noisy[8] / m), "fpr": _clip01(noisy[9] / m),
                                 "epsilon_lower_bound": bound}
    else:
        figures["membership"] = None
    figures["copies"] = {f"train_{noun}s_with_a_copy": max(float(noisy[10]), 0.0),
                         f"holdout_{noun}s_with_a_copy": max(float(noisy[11]), 0.0)}
    result["figures"] = figures
    result["verdict"] = _verdict(figures, ledger.epsilon)
    return result


def steward_interaction_audit(model, train: Baskets, holdout: Baskets | None, synthetic: Baskets, *,
                              seed: int) -> dict[str, Any]:
    """The exact audit (NOT for release): real-trained recommenders beside the synthetic ones, exact checks."""
    out: dict[str, Any] = {}
    if holdout is not None and len(holdout):
        queries = make_queries(holdout.matrix, holdout.items, seed=seed)
        models = _recommenders(synthetic, model, seed)
        models["real_als"] = (recommender(train.matrix, seed=seed), train.items)
        models["real_knn"] = (ItemKNN(train.matrix), train.items)
        models["true_popularity"] = (Popularity(np.asarray(train.matrix.sum(0)).ravel()), train.items)
        out["recommender"] = {"users_scored": len(queries)}
        for name, (recommender_, items) in models.items():
            recall, ndcg = evaluate(recommender_, items, queries)
            out["recommender"][name] = {"recall@10": float(recall.mean()) if len(recall) else None,
                                        "ndcg@10": float(ndcg.mean()) if len(ndcg) else None}
    real_counts = pd.Series(np.asarray(train.matrix.sum(0)).ravel(), index=train.items)
    synthetic_counts = pd.Series(np.asarray(synthetic.matrix.sum(0)).ravel(), index=synthetic.items)
    single = set(real_counts.index[real_counts.to_numpy() == 1])
    out["distribution"] = {
        "items_per_user_tvd": float(0.5 * np.abs(_histogram(synthetic.sizes) - _histogram(train.sizes)).sum()),
        "items_per_user_bins_from": list(ACTIVITY_BINS),
        "items_per_user_real": _histogram(train.sizes).tolist(),
        "items_per_user_synthetic": _histogram(synthetic.sizes).tolist(),
        "synthetic_rows_on_items_of_a_single_real_user": int(synthetic_counts[synthetic_counts.index.isin(single)]
                                                               .sum()),
        "real_items": len(real_counts), "catalogue_items": len(model.catalogue_),
        "real_top_10pct_share": _top_share(real_counts.to_numpy()),
        "synthetic_top_10pct_share": _top_share(synthetic_counts.to_numpy()),
        "popularity_spearman_on_catalogue": _spearman(real_counts, synthetic_counts, model.catalogue_),
        "cooccurrence_correlation_top_items": _cooccurrence_agreement(train, synthetic, model.catalogue_[:50]),
    }
    if holdout is not None and len(holdout):
        catalogue = np.asarray(model.catalogue_, dtype=object)
        syn = synthetic.restricted(catalogue)
        members = _jaccard_best(train.restricted(catalogue), syn)
        non_members = _jaccard_best(holdout.restricted(catalogue), syn)
        if len(members) and len(non_members):
            from sklearn.metrics import roc_auc_score

            labels = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
            out["membership"] = {"attack": "best Jaccard similarity to a synthetic user", "members": len(members),
                                 "non_members": len(non_members),
                                 "auc": float(roc_auc_score(labels, np.r_[members, non_members]))}
        keys = _synthetic_keys(synthetic)
        out["copies"] = {"train_users_with_a_copy": int(_exact_copies(train, keys).sum()),
                         "holdout_users_with_a_copy": int(_exact_copies(holdout, keys).sum())}
    return out


def _top_share(counts: np.ndarray) -> float:
    ranked = np.sort(np.asarray(counts, dtype=float))[::-1]
    top = max(1, len(ranked) // 10)
    return float(ranked[:top].sum() / max(ranked.sum(), 1))


def _spearman(real: pd.Series, synthetic: pd.Series, catalogue) -> float | None:
    from scipy.stats import spearmanr

    items = np.asarray(catalogue, dtype=object)
    if len(items) < 3:
        return None
    a = real.reindex(items, fill_value=0).to_numpy()
    b = synthetic.reindex(items, fill_value=0).to_numpy()
    value = spearmanr(a, b).statistic
    return None if not np.isfinite(value) else float(value)


def _cooccurrence_agreement(real: Baskets, synthetic: Baskets, items) -> float | None:
    """Pearson correlation of the item-pair cosine similarities, real vs synthetic, over the top items."""
    items = np.asarray(items, dtype=object)
    if len(items) < 3:
        return None

    def cosine(baskets: Baskets) -> np.ndarray:
        x = sp.csr_matrix(baskets.restricted(items), dtype=np.float64)
        c = (x.T @ x).toarray()
        n = np.sqrt(np.diag(c)) + 1e-9
        return (c / n[:, None] / n[None, :])[np.triu_indices(len(items), 1)]

    a, b = cosine(real), cosine(synthetic)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _verdict(figures: dict[str, Any], epsilon: float) -> str:
    membership = figures.get("membership")
    if membership is None:
        return "membership not tested: too few users for the attack at this budget"
    if membership["epsilon_lower_bound"] > epsilon:
        return (f"VIOLATION: the membership attack proves epsilon >= {membership['epsilon_lower_bound']:.2f}, "
                f"above the claimed {epsilon:g}")
    return (f"no violation detected: membership attack AUC {membership['auc']:.3f} (± "
            f"{2 * membership['auc_noise_std']:.3f} from the audit's own noise); 0.5 is chance")


def _clip01(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))


def read_synthetic(path, *, user: str, item: str) -> Baskets:
    """The synthetic file as an analyst reads it."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return baskets_from_frame(frame, user=user, item=item)
