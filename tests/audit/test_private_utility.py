"""The public ML-utility figure is released only when its noise leaves it something to say.

At a small budget and holdout the accuracy's noise (σ / holdout) can reach 0.3-0.5: a figure
like "0.250 accuracy (noise std 0.476)" reads as a broken model. The decision is taken from
the plan and DP counts before any real row is read, and skipping lowers the sensitivity of
what is released.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthdata.audit.private import (MAX_ACCURACY_NOISE, UTILITY_SKIPPED, release_audit_figures,
                                     utility_worth_releasing)
from synthdata.cli import release_summary
from synthdata.privacy import GaussianRequest, NoiseSource, PrivacyLedger


def _ledger(epsilon: float) -> PrivacyLedger:
    ledger = PrivacyLedger(epsilon=epsilon, delta=1e-6, noise=NoiseSource(seed=1))
    ledger.plan(gaussians={"audit": GaussianRequest(sensitivity=1.0, share=1.0)})
    return ledger


@pytest.mark.parametrize("epsilon", [0.05, 1.0, 10.0])
def test_the_figure_is_released_exactly_when_its_noise_is_under_the_bound(epsilon):
    ledger = _ledger(epsilon)
    sigma = ledger.planned_multiplier("audit") * math.sqrt(3)  # correct, holdout, copies: one holdout unit
    edge = sigma / MAX_ACCURACY_NOISE
    assert utility_worth_releasing(ledger, n_holdout=edge * 1.01)
    assert not utility_worth_releasing(ledger, n_holdout=edge * 0.99)
    assert not utility_worth_releasing(ledger, n_holdout=0.0)


def test_without_an_audit_share_nothing_is_worth_releasing():
    ledger = PrivacyLedger(epsilon=1.0, delta=1e-6, noise=NoiseSource(seed=1))
    assert not utility_worth_releasing(ledger, n_holdout=1e6)


def test_a_skipped_figure_says_why_and_costs_less_sensitivity():
    released = release_audit_figures(_ledger(1.0), correct=np.ones(400, bool), member_scores=None,
                                     non_member_scores=None, threshold=None, copies_train=0, copies_holdout=0)
    skipped = release_audit_figures(_ledger(1.0), correct=None, member_scores=None, non_member_scores=None,
                                    threshold=None, copies_train=0, copies_holdout=0,
                                    utility_skipped=UTILITY_SKIPPED)
    assert released["ml_utility"] is not None and "ml_utility_note" not in released
    assert skipped["ml_utility"] is None and skipped["ml_utility_note"] == UTILITY_SKIPPED
    assert skipped["sensitivity"] == pytest.approx(1.0) and released["sensitivity"] == pytest.approx(math.sqrt(3))


def test_the_release_summary_says_the_figure_was_not_released():
    from types import SimpleNamespace
    from pathlib import Path

    predicate = {"modality": "image", "privacy": {"epsilon": 1.0, "epsilon_spent": 1.0, "delta": 1e-6,
                                                   "unit": "one image"},
                 "data": {"rows_synthetic": 100},
                 "audit": {"figures": {"ml_utility": None, "ml_utility_note": UTILITY_SKIPPED}, "verdict": "x"}}
    result = SimpleNamespace(predicate=predicate, directory=Path("/tmp/r"), steward_directory=Path("/tmp/s"),
                             key_created=False, public_key_path=Path("/tmp/k"))
    lines = release_summary(result)
    assert lines[0].startswith("Released 100 synthetic images")
    assert f"  utility (DP figure): {UTILITY_SKIPPED}" in lines
