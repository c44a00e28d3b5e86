"""The audit figures a public report may carry: released with noise, charged to the ledger.

The steward's exact audit (:func:`synthdata.audit.audit`) reads the real rows freely and
stays with the steward. What the shareable report says about utility and leakage must be
differentially private like everything else in it, so :func:`release_audit_figures`
computes a few statistics whose sensitivity to one unit of privacy is bounded, adds
Gaussian noise at the ledger's planned level for the ``"audit"`` step, and records the
spend. The synthetic data is already a DP output, so everything computed from it alone
is free; what costs is reading the real rows:

========================  ======================================  ==================
count                     what                                    one unit moves it
========================  ======================================  ==================
``correct``               holdout units a model trained on the    ≤ k (in holdout)
                          synthetic data predicts right
``holdout``               holdout units scored                    ≤ k (in holdout)
``auc_u``                 Mann–Whitney U / m of the membership    ≤ k (either side)
                          attack over m members and m non-members
``tp``, ``fp``            members / non-members the attack flags  ≤ k (one side)
                          at a public threshold
``copies_train``,         training / holdout units with an exact  ≤ k (one side)
``copies_holdout``        copy among the synthetic rows
========================  ======================================  ==================

A unit sits either in the training part or in the holdout (never both), so the vector's
L2 sensitivity is ``k·√5`` (holdout: correct, holdout, U, fp, copies) with ``k`` the most
rows a unit holds — less when some counts are not released (no target; a membership
attack too noisy to say anything at this budget and size, which is then skipped before
any real row is read). ``m`` is fixed before the real rows are read (from DP counts); a
sample of exactly ``m`` units changes by at most one unit when one unit is added or
removed, so U/m moves by at most one (times ``k``). The threshold is a quantile of the
synthetic rows' distances to each other: public.

The ε lower bound is computed from the noisy counts with the noise's own 2σ margin
taken against the attack, so noise can only lower it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..privacy import PrivacyLedger

__all__ = ["AUDIT_STEP", "MAX_ACCURACY_NOISE", "MAX_AUC_NOISE", "MEMBERSHIP_SKIPPED", "UTILITY_SKIPPED",
           "holdout_count", "membership_sample_size", "release_audit_figures", "utility_worth_releasing"]

AUDIT_STEP = "audit"
#: Largest noise standard deviation of the public membership AUC worth releasing.
MAX_AUC_NOISE = 0.05
#: Largest noise standard deviation of the public ML-utility accuracy worth releasing: past it
#: the error bar (± 2 sd) spans most of [0, 1] and cannot tell a useful model from guessing
#: (4,000 MNIST digits at epsilon=1 gave 0.3-0.48; the affairs demo's 1,250 holdout rows 0.07).
MAX_ACCURACY_NOISE = 0.1
#: Why the report carries no utility figure when :func:`utility_worth_releasing` says no.
UTILITY_SKIPPED = ("not released: at this budget and holdout size its noise would hide any signal "
                   "(the steward's audit has the exact figure)")
#: Why the report carries no membership figure when :func:`membership_sample_size` says 0.
MEMBERSHIP_SKIPPED = ("not released: at this budget and holdout size its AUC's noise would hide any signal "
                      "(the steward's audit has the exact figure)")


def holdout_count(n_train: float, holdout_fraction: float) -> float:
    """The holdout size implied by a DP training count and the public holdout fraction: what the
    audit's sample sizes and skips are decided from, so no exact count of real rows is read."""
    return n_train * holdout_fraction / max(1.0 - holdout_fraction, 1e-9)


def mann_whitney_u(members: np.ndarray, non_members: np.ndarray) -> float:
    """U statistic: pairs (member, non-member) the member outscores, ties counting half."""
    from scipy.stats import rankdata

    scores = np.concatenate([members, non_members])
    ranks = rankdata(scores)
    m = len(members)
    return float(ranks[:m].sum() - m * (m + 1) / 2)


def _sensitivity(unit_rows: int, *, utility: bool, membership: bool) -> float:
    """L2 sensitivity of the released counts: the larger of what a holdout unit and a
    training unit can move (each count by at most ``unit_rows``)."""
    holdout = (2 if utility else 0) + (2 if membership else 0) + 1  # correct, holdout; U, fp; copies
    train = (2 if membership else 0) + 1  # U, tp; copies
    return unit_rows * math.sqrt(max(holdout, train))


def utility_worth_releasing(ledger: PrivacyLedger, *, n_holdout: float, unit_rows: int = 1,
                            step: str = AUDIT_STEP) -> bool:
    """Whether the public ML-utility accuracy is worth its share of the audit's sensitivity.

    From DP counts and the plan only (``n_holdout`` a DP count), before any real row is read:
    no when even with the utility counts alone released its noise standard deviation,
    σ / n_holdout, would exceed :data:`MAX_ACCURACY_NOISE`. Skipping it also lowers the
    sensitivity of the figures that are released.
    """
    if ledger.plan_ is None or step not in ledger.plan_.sigmas:
        return False
    sigma = ledger.planned_multiplier(step) * _sensitivity(unit_rows, utility=True, membership=False)
    return n_holdout >= 1 and sigma / n_holdout <= MAX_ACCURACY_NOISE


def membership_sample_size(ledger: PrivacyLedger, *, n_train: float, n_holdout: float, unit_rows: int = 1,
                           utility: bool = True, limit: int = 5000, step: str = AUDIT_STEP) -> int:
    """How many members (and non-members) the public membership attack scores; 0 to skip it.

    From DP counts only (``n_train``, ``n_holdout``). Skipped when its AUC would carry a
    noise standard deviation above :data:`MAX_AUC_NOISE`: a figure that noisy says nothing,
    and the steward's audit has the exact one.
    """
    if ledger.plan_ is None or step not in ledger.plan_.sigmas:
        return 0
    m = int(min(limit, n_train / 2, n_holdout / 2))
    sigma = ledger.planned_multiplier(step) * _sensitivity(unit_rows, utility=utility, membership=True)
    return m if m >= 50 and sigma / m <= MAX_AUC_NOISE else 0


def release_audit_figures(ledger: PrivacyLedger, *, unit_rows: int = 1, correct: np.ndarray | None,
                          member_scores: np.ndarray | None, non_member_scores: np.ndarray | None,
                          threshold: float | None, copies_train: int, copies_holdout: int,
                          majority_share: float | None = None, step: str = AUDIT_STEP,
                          what: str = "rows", membership_skipped: str | None = None,
                          utility_skipped: str | None = None) -> dict[str, Any]:
    """Noisy audit figures for the public report (see the module docstring); spends ``step``.

    ``correct``: per holdout unit, whether the model trained on synthetic data predicted
    it right (None without a target). ``member_scores``/``non_member_scores``: the
    membership attack's scores on exactly ``m`` members and ``m`` non-members (higher =
    "member"), and ``threshold`` the public score above which a unit is flagged; None when
    :func:`membership_sample_size` said to skip it (``membership_skipped`` says why). The
    sensitivity covers only the counts released. ``utility_skipped`` says why ``correct`` is None
    when a target was asked for (:func:`utility_worth_releasing`).
    """
    m = 0 if member_scores is None else len(member_scores)
    utility = correct is not None
    counts = np.zeros(7, dtype=float)
    if utility:
        counts[0], counts[1] = float(np.sum(correct)), float(len(correct))
    if m:
        counts[2] = mann_whitney_u(member_scores, non_member_scores) / m
        counts[3] = float(np.sum(member_scores >= threshold))
        counts[4] = float(np.sum(non_member_scores >= threshold))
    counts[5], counts[6] = float(copies_train), float(copies_holdout)
    released = [utility, utility, bool(m), bool(m), bool(m), True, True]
    names = ["correct", "holdout", "mann_whitney_u_over_m", "true_positives", "false_positives", "copies_train",
             "copies_holdout"]
    sensitivity = _sensitivity(unit_rows, utility=utility, membership=bool(m))
    noisy = np.zeros(7)
    noisy[released] = ledger.noisy(step, counts[released], sensitivity=sensitivity,
                                   mechanism="Gaussian mechanism on audit counts",
                                   parameters={"counts": [n for n, r in zip(names, released) if r],
                                               "membership_sample": m})
    sigma = ledger.planned_multiplier(step) * sensitivity
    figures: dict[str, Any] = {"noise_std": sigma, "sensitivity": sensitivity, "unit": ledger.unit.description}
    if utility:
        accuracy = _clip01(noisy[0] / max(noisy[1], 1.0))
        figures["ml_utility"] = {"accuracy": accuracy, "majority_class_accuracy": majority_share,
                                 "holdout_units": max(int(round(noisy[1])), 0),
                                 "accuracy_noise_std": sigma / max(noisy[1], 1.0)}
    else:
        figures["ml_utility"] = None
        if utility_skipped:
            figures["ml_utility_note"] = utility_skipped
    if m:
        auc = _clip01(noisy[2] / m)
        tpr_low = max(noisy[3] - 2 * sigma, 0.0) / m
        fpr_high = min(max(noisy[4] + 2 * sigma, 1.0), m) / m
        bound = 0.0
        if tpr_low - ledger.delta > 0 and fpr_high > 0:
            bound = max(math.log((tpr_low - ledger.delta) / fpr_high), 0.0)
        figures["membership"] = {
            "attack": "distance to the closest synthetic record",
            "auc": auc, "auc_noise_std": sigma / m, "sample": m,
            "tpr": _clip01(noisy[3] / m), "fpr": _clip01(noisy[4] / m),
            "epsilon_lower_bound": bound,
            "max_certifiable_epsilon": math.log(max(m - 2 * sigma, 1.0) / max(2 * sigma, 1.0)) if m > 4 * sigma
            else 0.0,
        }
    else:
        figures["membership"] = None
        figures["membership_note"] = membership_skipped or "not run"
    figures["copies"] = {f"train_{what}_with_a_copy": max(float(noisy[5]), 0.0),
                         f"holdout_{what}_with_a_copy": max(float(noisy[6]), 0.0)}
    return figures


def _clip01(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))
