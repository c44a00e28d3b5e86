"""Statistics of a membership-inference audit: confidence intervals and the ε lower bound.

An audit reads a finite sample of members (training rows) and non-members (holdout
rows), so every rate it measures is uncertain. A leakage figure without its uncertainty
invites two mistakes: calling noise a leak, and calling a small sample proof of privacy.
The functions here attach the uncertainty:

* :func:`clopper_pearson` — exact binomial confidence bounds for a rate (TPR, FPR).
* :func:`auroc_delong` — AUROC with DeLong's asymptotic confidence interval; exact in
  its use of ties and O(n log n), so it needs no bootstrap.
* :func:`tpr_at_fpr` — the true-positive rate an attack reaches while keeping its
  false-positive rate at or below a target (1 %, 0.1 %): the regime that matters for
  privacy, since an attack that is sure about a few people harms those people even when
  its AUROC is near 0.5 (Carlini et al., "Membership inference attacks from first
  principles", 2022).
* :func:`epsilon_lower_bound` — the ε that an attack with a measured TPR and FPR proves
  at least, from the definition of (ε, δ)-DP.
* :func:`roc_points` — the ROC curve, thinned to a few hundred points for a plot.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["clopper_pearson", "auroc_delong", "tpr_at_fpr", "epsilon_lower_bound", "roc_points"]


def clopper_pearson(successes, trials, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Clopper–Pearson bounds ``(low, high)`` for ``successes / trials``.

    Vectorised over ``successes``. Each bound is one-sided at ``1 - (1 - confidence) / 2``,
    so a statement that uses one bound of each of two rates still holds with probability
    ``confidence`` (union bound).

    >>> low, high = clopper_pearson(0, 10)
    >>> float(low), round(float(high), 4)
    (0.0, 0.3085)
    """
    k = np.asarray(successes, dtype=float)
    n = float(trials)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        high = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return low, high


def epsilon_lower_bound(
    true_positives,
    members: int,
    false_positives,
    non_members: int,
    *,
    delta: float,
    confidence: float = 0.95,
) -> np.ndarray:
    """The ε an attack's measured rates prove, with probability ``confidence``.

    (ε, δ)-DP bounds every test between a member's and a non-member's world:
    ``TPR ≤ e^ε · FPR + δ`` and, for the complementary guess, ``1 − FPR ≤ e^ε · (1 − TPR) + δ``.
    So ``ε ≥ ln((TPR − δ) / FPR)`` and ``ε ≥ ln((1 − FPR − δ) / (1 − TPR))``. With the
    pessimistic Clopper–Pearson ends (``TPR_low``, ``FPR_high``) in place of the measured
    rates, the larger of the two is a lower bound that holds at ``confidence``; 0 when
    the attack proves nothing. Vectorised over the counts.

    >>> round(float(epsilon_lower_bound(1000, 1000, 0, 1000, delta=0.0)), 3)  # a perfect attack
    5.601
    """
    tpr_low, _ = clopper_pearson(true_positives, members, confidence=confidence)
    _, fpr_high = clopper_pearson(false_positives, non_members, confidence=confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = np.log((tpr_low - delta) / fpr_high)
        negative = np.log((1.0 - fpr_high - delta) / (1.0 - tpr_low))
    bound = np.fmax(positive, negative)
    return np.where(np.isfinite(bound) & (bound > 0), bound, 0.0)


def auroc_delong(
    member_scores: np.ndarray, non_member_scores: np.ndarray, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """AUROC and its DeLong confidence interval ``(auroc, low, high)``.

    A higher score means "member". The AUROC is the Mann–Whitney statistic with ties
    counted as half; its variance is DeLong's (DeLong, DeLong & Clarke-Pearson, 1988),
    from each row's placement among the other class, computed with mid-ranks.
    """
    m, n = len(member_scores), len(non_member_scores)
    both = np.concatenate([member_scores, non_member_scores])
    ranks = stats.rankdata(both)
    member_ranks = stats.rankdata(member_scores)
    non_member_ranks = stats.rankdata(non_member_scores)
    # Share of non-members each member beats, and of members each non-member loses to.
    member_place = (ranks[:m] - member_ranks) / n
    non_member_place = 1.0 - (ranks[m:] - non_member_ranks) / m
    auroc = float(member_place.mean())
    variance = member_place.var(ddof=1) / m + non_member_place.var(ddof=1) / n
    half = stats.norm.ppf(0.5 + confidence / 2) * math.sqrt(max(variance, 0.0))
    return auroc, float(max(0.0, auroc - half)), float(min(1.0, auroc + half))


def tpr_at_fpr(
    member_scores: np.ndarray, non_member_scores: np.ndarray, fpr: float, *, confidence: float = 0.95
) -> dict[str, float | list[float]]:
    """TPR at the strictest threshold whose false-positive rate is at most ``fpr``.

    The threshold sits above the ``⌊fpr · n⌋ + 1``-th highest non-member score, so ties
    there count against the attack. The interval is Clopper–Pearson on the members
    above it (the threshold itself is taken as given). Returns ``{"tpr", "fpr",
    "tpr_ci"}``; ``fpr`` is the rate reached, which can be below the target.
    """
    ordered = np.sort(non_member_scores)[::-1]
    allowed = int(math.floor(fpr * len(ordered) + 1e-9))
    threshold = ordered[allowed] if allowed < len(ordered) else -np.inf
    hits = int((member_scores > threshold).sum())
    low, high = clopper_pearson(hits, len(member_scores), confidence=confidence)
    return {
        "tpr": hits / len(member_scores),
        "fpr": float((non_member_scores > threshold).mean()),
        "tpr_ci": [float(low), float(high)],
    }


def roc_points(
    member_scores: np.ndarray, non_member_scores: np.ndarray, *, max_points: int = 200, decimals: int = 4
) -> dict[str, list[float]]:
    """The ROC curve of an attack, as at most ``max_points`` points for a plot.

    One point per distinct score threshold (tied scores move both rates at once, so ties
    make a diagonal step, as they should), from (0, 0) to (1, 1). A long curve keeps
    points evenly spaced along its length, which keeps its shape at any scale of a
    linear plot; the rates are rounded to ``decimals``. Returns ``{"fpr": [...],
    "tpr": [...]}``.

    >>> roc_points(np.array([3.0, 2.0]), np.array([1.0, 0.0]))
    {'fpr': [0.0, 0.0, 0.0, 0.5, 1.0], 'tpr': [0.0, 0.5, 1.0, 1.0, 1.0]}
    """
    scores = np.concatenate([member_scores, non_member_scores]).astype(float)
    is_member = np.r_[np.ones(len(member_scores), dtype=bool), np.zeros(len(non_member_scores), dtype=bool)]
    order = np.argsort(-scores, kind="mergesort")
    scores, is_member = scores[order], is_member[order]
    last_of_tie = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tpr = np.r_[0.0, np.cumsum(is_member)[last_of_tie] / max(len(member_scores), 1)]
    fpr = np.r_[0.0, np.cumsum(~is_member)[last_of_tie] / max(len(non_member_scores), 1)]
    if tpr.size > max_points:
        length = np.r_[0.0, np.cumsum(np.hypot(np.diff(fpr), np.diff(tpr)))]
        keep = np.searchsorted(length, np.linspace(0.0, length[-1], max_points))
        keep = np.unique(np.r_[0, np.minimum(keep, tpr.size - 1), tpr.size - 1])
        fpr, tpr = fpr[keep], tpr[keep]
    points = np.unique(np.column_stack([np.round(fpr, decimals), np.round(tpr, decimals)]), axis=0)
    return {"fpr": [float(x) for x in points[:, 0]], "tpr": [float(y) for y in points[:, 1]]}
