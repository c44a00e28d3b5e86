"""Ground truth for the leakage audit: real training rows passed as "synthetic" must be
flagged, a disjoint real sample must not."""

import json

import numpy as np
import pandas as pd
import pytest

from synthdata.audit import leakage_audit, prepare
from synthdata.audit.leakage import AUROC_MARGIN

from .conftest import PLANTED, population

DCR = "distance_to_closest_record"


def _leakage(train, synthetic, holdout, *, epsilon=None, delta=1e-5, max_rows=10_000, seed=0):
    tables = prepare(train, synthetic, holdout)
    return leakage_audit(tables, epsilon=epsilon, delta=delta, seed=seed, max_rows=max_rows)


@pytest.fixture(scope="module")
def mixed():
    return {"train": population(1500, 1), "holdout": population(1500, 2), "other": population(1500, 3)}


@pytest.fixture(scope="module", params=["adult", "mixed"])
def split(request, mixed):
    return request.getfixturevalue("adult_split") if request.param == "adult" else mixed


def test_training_rows_as_synthetic_are_flagged(split):
    result = _leakage(split["train"], split["train"], split["holdout"])
    assert result["attacks"][DCR]["auroc"] >= 0.95
    assert result["attacks"]["density_ratio"]["auroc"] >= 0.9
    assert result["mia_auc"] >= 0.95 and result["mia_auc_ci"][0] > 0.9
    assert result["leak_detected"] is True
    assert result["verdict"].startswith("leak detected")
    assert DCR in result["tests"]["attacks_above_chance"]
    # The distance attack finds every member at distance 0, below 1 % of non-members.
    at_1pct = result["attacks"][DCR]["tpr_at_fpr"][0]
    assert at_1pct["target_fpr"] == 0.01 and at_1pct["tpr"] > 0.95
    copies = result["exact_copies"]
    assert copies["train_share"] == 1.0 and copies["holdout_share"] < 0.02
    assert copies["matched"]["significant"] and copies["matched"]["p_value"] < 1e-10
    bound = result["empirical_epsilon_lower_bound"]
    assert 3.0 < bound <= result["max_certifiable_epsilon"]


def test_a_disjoint_real_sample_is_not_flagged(split):
    result = _leakage(split["train"], split["other"], split["holdout"])
    for attack in result["attacks"].values():
        assert 0.45 <= attack["auroc"] <= 0.55
        assert attack["auroc_ci"][0] <= 0.5 + AUROC_MARGIN
    assert result["leak_detected"] is False
    assert result["verdict"].startswith("no leak detected")
    assert "not a proof of privacy" in result["verdict"]
    copies = result["exact_copies"]
    assert abs(copies["train_share"] - copies["holdout_share"]) < 0.01
    assert not copies["matched"]["significant"]
    assert result["empirical_epsilon_lower_bound"] < 0.5


def test_a_claimed_epsilon_is_tested(adult_split):
    train, holdout = adult_split["train"], adult_split["holdout"]
    violated = _leakage(train, train, holdout, epsilon=0.1)
    assert violated["leak_detected"] is True
    assert violated["verdict"].startswith("VIOLATION: the empirical lower bound exceeds the claimed ε")
    assert violated["tests"]["epsilon_violation"] is True
    assert violated["claimed_epsilon"] == 0.1

    held = _leakage(train, adult_split["other"], holdout, epsilon=1.0)
    assert held["leak_detected"] is False
    assert held["verdict"].startswith("no violation detected")
    assert f"at most ε = {held['max_certifiable_epsilon']:.2f}" in held["verdict"]
    # A claim above what the sample can certify cannot be violated by this audit.
    huge = _leakage(train, train, holdout, epsilon=50.0)
    assert huge["leak_detected"] is False and huge["max_certifiable_epsilon"] < 50


def test_a_generator_that_memorises_some_rows_is_flagged(mixed):
    # A tenth of the synthetic rows are training rows, the rest fresh draws.
    synthetic = pd.concat([mixed["train"].iloc[:150], mixed["other"].iloc[150:]], ignore_index=True)
    result = _leakage(mixed["train"], synthetic, mixed["holdout"])
    assert result["leak_detected"] is True
    assert result["exact_copies"]["matched"]["significant"]
    assert result["exact_copies"]["train_share"] == pytest.approx(0.1)
    assert result["attacks"][DCR]["tpr_at_fpr"][0]["tpr"] > 0.05  # about the copied tenth


def test_rows_common_in_the_population_are_not_copies():
    # Two small categorical columns: nearly every synthetic row equals some real row, in
    # training and holdout alike. That is chance, not memorisation.
    def draw(n, seed):
        rng = np.random.default_rng(seed)
        return pd.DataFrame({"a": rng.choice(["x", "y", "z"], n), "b": rng.choice(["p", "q"], n)})

    result = _leakage(draw(800, 1), draw(800, 3), draw(800, 2))
    copies = result["exact_copies"]
    assert copies["train_share"] == 1.0 and copies["holdout_share"] == 1.0
    assert not copies["matched"]["significant"]
    assert result["leak_detected"] is False


def test_without_holdout_membership_inference_is_skipped(mixed):
    tables = prepare(mixed["train"], mixed["train"])
    result = leakage_audit(tables, epsilon=1.0, delta=1e-5, seed=0, max_rows=1000)
    assert result["mia_auc"] is None and result["attacks"] == {}
    assert result["empirical_epsilon_lower_bound"] is None and result["leak_detected"] is None
    assert result["verdict"].startswith("not tested")
    assert result["exact_copies"]["train_share"] == 1.0 and result["exact_copies"]["holdout_share"] is None
    json.dumps(result, allow_nan=False)


def test_rare_values_are_counted_never_listed(mixed):
    train = mixed["train"].copy()
    train.loc[0, "city"] = PLANTED  # held by one person
    train.loc[1:3, "city"] = "Quito"  # held by three
    synthetic = mixed["other"].copy()
    synthetic.loc[:9, "city"] = PLANTED
    synthetic.loc[10:11, "city"] = "Quito"
    synthetic.loc[12, "city"] = "Nowhere"  # not in the training rows at all
    result = _leakage(train, synthetic, mixed["holdout"])
    rare = result["rare_values"]
    assert rare["k"] == 5
    assert rare["columns"]["city"] == {"rare_values": 2, "rare_rows": 12, "unseen_values": 1, "unseen_rows": 1}
    assert rare["rare_values"] == 2 and rare["rare_rows_share"] == pytest.approx(12 / len(synthetic))
    text = json.dumps(result, allow_nan=False)
    for value in (PLANTED, "Quito", "Nowhere"):
        assert value not in text


def test_the_result_is_reproducible_and_sampled_as_asked(mixed):
    first = _leakage(mixed["train"], mixed["other"], mixed["holdout"], max_rows=300, seed=7)
    again = _leakage(mixed["train"], mixed["other"], mixed["holdout"], max_rows=300, seed=7)
    assert json.dumps(first, allow_nan=False) == json.dumps(again, allow_nan=False)
    assert first["rows"] == {"members": 300, "non_members": 300, "reference": 300}
    assert first["epsilon_bound"]["rows"] == {"selection": 300, "evaluation": 300}
