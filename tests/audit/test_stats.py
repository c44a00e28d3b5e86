import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

from synthdata.audit import auroc_delong, clopper_pearson, epsilon_lower_bound, roc_points, tpr_at_fpr


def test_clopper_pearson_bounds_are_the_binomial_tail_quantiles():
    # Closed forms at the ends: 0 of n -> high = 1 - (alpha/2)^(1/n); n of n -> low = (alpha/2)^(1/n).
    low, high = clopper_pearson(0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10))
    low, high = clopper_pearson(10, 10)
    assert low == pytest.approx(0.025 ** (1 / 10)) and high == 1.0
    # In between, each bound is where the binomial tail beyond k holds 2.5 %.
    low, high = clopper_pearson(5, 10)
    assert (float(low), float(high)) == pytest.approx((0.1871, 0.8129), abs=1e-4)  # the textbook interval
    k, n = 37, 400
    low, high = clopper_pearson(k, n)
    assert stats.binom.sf(k - 1, n, low) == pytest.approx(0.025)
    assert stats.binom.cdf(k, n, high) == pytest.approx(0.025)


def test_epsilon_bound_of_a_perfect_attack():
    # TPR_low = 0.025^(1/n), FPR_high = 1 - 0.025^(1/n): eps = ln(TPR_low / FPR_high).
    q = 0.025 ** (1 / 1000)
    expected = math.log(q / (1 - q))
    assert float(epsilon_lower_bound(1000, 1000, 0, 1000, delta=0.0)) == pytest.approx(expected)
    assert expected == pytest.approx(5.6006, abs=1e-4)
    # delta is subtracted from the TPR: a larger delta proves less.
    assert float(epsilon_lower_bound(1000, 1000, 0, 1000, delta=1e-3)) < expected
    # More rows prove more.
    assert float(epsilon_lower_bound(10_000, 10_000, 0, 10_000, delta=0.0)) > expected + 2


def test_epsilon_bound_of_a_known_attack():
    tpr_low, _ = clopper_pearson(500, 1000)
    _, fpr_high = clopper_pearson(5, 1000)
    bound = float(epsilon_lower_bound(500, 1000, 5, 1000, delta=1e-5))
    assert bound == pytest.approx(math.log((float(tpr_low) - 1e-5) / float(fpr_high)))
    assert bound == pytest.approx(3.697, abs=2e-3)


def test_epsilon_bound_uses_the_complementary_guess():
    # Every member caught, half the non-members too: the guess "non-member" is never
    # wrong about a member, which proves far more than TPR / FPR does.
    tpr_low, _ = clopper_pearson(1000, 1000)
    _, fpr_high = clopper_pearson(500, 1000)
    bound = float(epsilon_lower_bound(1000, 1000, 500, 1000, delta=0.0))
    assert bound == pytest.approx(math.log((1 - float(fpr_high)) / (1 - float(tpr_low))))
    assert bound > 4 > math.log(float(tpr_low) / float(fpr_high))


def test_epsilon_bound_is_zero_for_chance_and_huge_delta():
    assert float(epsilon_lower_bound(100, 1000, 100, 1000, delta=0.0)) == 0.0
    assert float(epsilon_lower_bound(1000, 1000, 0, 1000, delta=0.999)) == 0.0
    many = epsilon_lower_bound(np.array([0, 500, 1000]), 1000, np.array([0, 5, 0]), 1000, delta=0.0)
    assert many.shape == (3,) and many[0] == 0.0 and many[2] > many[1] > 0


def test_delong_auroc_matches_sklearn_and_covers():
    rng = np.random.default_rng(0)
    members = np.round(rng.normal(0.5, 1, 800), 1)  # rounded: ties count as half
    non_members = np.round(rng.normal(0.0, 1, 1200), 1)
    auroc, low, high = auroc_delong(members, non_members)
    truth = np.r_[np.ones(800), np.zeros(1200)]
    assert auroc == pytest.approx(roc_auc_score(truth, np.r_[members, non_members]))
    assert low < auroc < high
    # The true AUROC of N(0.5, 1) vs N(0, 1) is Phi(0.5 / sqrt 2) = 0.638.
    assert low < stats.norm.cdf(0.5 / math.sqrt(2)) < high
    assert 0.03 < high - low < 0.07  # about 2 * 1.96 * sqrt(AUC(1-AUC)/n) for these sizes


def test_delong_of_separated_and_identical_scores():
    assert auroc_delong(np.arange(10.0) + 100, np.arange(10.0)) == (1.0, 1.0, 1.0)
    assert auroc_delong(np.zeros(10), np.zeros(10)) == (0.5, 0.5, 0.5)


def test_tpr_at_fpr_keeps_false_positives_within_the_target():
    non_members = np.arange(1000.0)  # 0 .. 999
    members = np.arange(1000.0) + 985  # 985 .. 1984
    one = tpr_at_fpr(members, non_members, 0.01)  # at most 10 false positives: threshold above 989
    assert one["fpr"] == pytest.approx(0.01)
    assert one["tpr"] == pytest.approx(0.995)  # members from 990 up
    low, high = one["tpr_ci"]
    assert low < 0.995 < high
    strict = tpr_at_fpr(members, non_members, 0.001)  # one false positive: above 998
    assert strict["fpr"] == pytest.approx(0.001) and strict["tpr"] == pytest.approx(0.986)
    # Ties at the threshold count against the attack.
    tied = tpr_at_fpr(np.ones(100), np.ones(100), 0.01)
    assert tied["tpr"] == 0.0 and tied["fpr"] == 0.0


def test_roc_points_match_sklearn_on_a_short_curve():
    rng = np.random.default_rng(3)
    members, non_members = np.round(rng.normal(0.5, 1, 60), 1), np.round(rng.normal(0, 1, 70), 1)  # ties
    roc = roc_points(members, non_members)
    fpr, tpr, _ = roc_curve(np.r_[np.ones(60), np.zeros(70)], np.r_[members, non_members], drop_intermediate=False)
    assert roc["fpr"] == list(np.round(fpr, 4)) and roc["tpr"] == list(np.round(tpr, 4))
    # The area under the points is the AUROC (ties count half).
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(auroc_delong(members, non_members)[0], abs=1e-3)


def test_roc_points_thin_a_long_curve_and_keep_its_shape():
    rng = np.random.default_rng(4)
    members, non_members = rng.normal(0.7, 1, 5000), rng.normal(0, 1, 5000)
    roc = roc_points(members, non_members, max_points=200)
    fpr, tpr = np.array(roc["fpr"]), np.array(roc["tpr"])
    assert len(fpr) <= 201 and (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert all(x == round(x, 4) for x in np.r_[fpr, tpr])
    full_fpr, full_tpr, _ = roc_curve(np.r_[np.ones(5000), np.zeros(5000)], np.r_[members, non_members])
    assert np.max(np.abs(np.interp(full_fpr, fpr, tpr) - full_tpr)) < 0.02
