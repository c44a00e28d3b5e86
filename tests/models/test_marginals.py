"""The 2-way release with a declared target: its pairs weigh more, and the sensitivity says so."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from synthdata.tabular import marginals as marginals_module
from synthdata.tabular.marginals import measure_marginals, pair_weights


def _encoder(sizes: list[int]) -> SimpleNamespace:
    """Columns whose levels are their coarse groups (identity maps), with flat released counts."""
    return SimpleNamespace(codes_=[SimpleNamespace(name=f"c{k}", coarse=list(range(size)), coarse_size=size,
                                                   counts=np.full(size, 100.0)) for k, size in enumerate(sizes)])


class _Ledger:
    """Adds no noise; every pair's score is large, so every pair is measured, in a fixed order."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[np.ndarray, float, dict]] = {}

    def noisy(self, step, values, *, sensitivity, parameters=None, **_):
        values = np.asarray(values, dtype=float)
        if step == "selection":  # descending, distinct: the order of the pairs, whatever the rows
            values = 1e9 - np.arange(len(values), dtype=float)
        self.calls[step] = (values, float(sensitivity), dict(parameters or {}))
        return values

    def planned_multiplier(self, step):
        return 1e-6


def _release(codes: np.ndarray, sizes: list[int], target: int | None, weight: int | None = None):
    ledger = _Ledger()
    measured = measure_marginals(codes, _encoder(sizes), ledger=ledger, rows=float(len(codes)), max_pairs=100,
                                 target=target, target_weight=weight)
    return measured, ledger.calls["marginals"]


@pytest.mark.parametrize("target, weight", [(None, None), (2, None), (2, 3), (0, 2)])
def test_one_row_moves_the_weighted_release_by_exactly_its_sensitivity(target, weight):
    """Add one row: every pair's table gains 1 in one cell, so the release moves by w per
    weighted pair; the L2 sensitivity booked must cover that (and not overstate it)."""
    sizes = [3, 4, 2, 5]
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, s, 300) for s in sizes], axis=1)
    extra = np.array([[2, 0, 1, 4]])
    measured, (before, sensitivity, parameters) = _release(codes, sizes, target, weight)
    _, (after, sensitivity_after, _) = _release(np.concatenate([codes, extra]), sizes, target, weight)
    assert sensitivity == sensitivity_after
    assert np.linalg.norm(after - before) == pytest.approx(sensitivity)
    w = marginals_module.TARGET_WEIGHT if weight is None else weight
    expected = [w if target is not None and target in (i, j) else 1 for i, j in
                [(i, j) for i in range(4) for j in range(i + 1, 4)]]
    assert sensitivity == pytest.approx(math.sqrt(sum(x * x for x in expected)))
    if target is None:
        assert "target" not in parameters
    else:
        assert parameters["target"] == f"c{target}" and parameters["target_pair_weight"] == w
    # The weights come off again: every measured pair's shares are its exact table over the rows.
    for i, j, shares, loss_weight in measured.two_way:
        exact = np.zeros((sizes[i], sizes[j]))
        np.add.at(exact, (codes[:, i], codes[:, j]), 1)
        assert np.allclose(shares, exact.ravel() / len(codes)) and loss_weight == 1.0


def test_pair_weights_depend_on_the_declared_target_only():
    pairs = [(0, 1), (0, 2), (1, 2)]
    assert pair_weights(pairs, None).tolist() == [1, 1, 1]
    assert pair_weights(pairs, 2, 3).tolist() == [1, 3, 3]
    assert pair_weights(pairs, 2, 1).tolist() == [1, 1, 1]


def test_a_declared_target_is_booked_on_the_marginals_line():
    from synthdata import TabularGAN

    rng = np.random.default_rng(1)
    n = 3000
    a = rng.integers(0, 4, n)
    frame = pd.DataFrame({"a": a.astype(str), "b": ((a + rng.integers(0, 2, n)) % 4).astype(str),
                          "y": np.where(a >= 2, "yes", "no")})
    model = TabularGAN(epsilon=2.0, seed=0, generator_steps=20, budget_split={"discriminator": 0},
                       device="cpu").fit(frame, target="y")
    (line,) = [spend for spend in model.ledger_.spends if spend.step == "marginals"]
    w = marginals_module.TARGET_WEIGHT
    weights = [w if "y" in pair else 1 for pair in line.parameters["pairs"]]
    assert line.parameters["target"] == "y" and line.parameters["target_pair_weight"] == w
    assert line.sensitivity == pytest.approx(math.sqrt(sum(x * x for x in weights)))


class _Scored(_Ledger):
    """Selection scores given by pair; noise 1 per unit of sensitivity, so weak pairs lose to their noise."""

    def __init__(self, scores: dict) -> None:
        super().__init__()
        self.scores = scores

    def noisy(self, step, values, *, sensitivity, parameters=None, **kwargs):
        if step == "selection":
            pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
            values = np.array([self.scores.get(pair, 0.0) for pair in pairs])
            self.calls[step] = (values, float(sensitivity), dict(parameters or {}))
            return values
        return super().noisy(step, values, sensitivity=sensitivity, parameters=parameters, **kwargs)

    def planned_multiplier(self, step):
        return 1.0


@pytest.mark.parametrize("target", [None, 3, 0])
def test_every_pair_of_a_declared_target_is_measured_whatever_its_score(target):
    """Only (0, 1) beats its noise; a declared target's pairs are measured all the same,
    and the booked sensitivity counts each at its weight."""
    sizes = [3, 4, 2, 5]
    codes = np.stack([np.random.default_rng(2).integers(0, s, 200) for s in sizes], axis=1)
    ledger = _Scored({(0, 1): 1e9})
    measured = measure_marginals(codes, _encoder(sizes), ledger=ledger, rows=200.0, max_pairs=100, target=target)
    _, sensitivity, parameters = ledger.calls["marginals"]
    chosen = {tuple(int(name[1:]) for name in pair) for pair in parameters["pairs"]}
    wanted = {(0, 1)} | ({pair for pair in [(i, j) for i in range(4) for j in range(i + 1, 4)] if target in pair}
                         if target is not None else set())
    assert chosen == wanted
    w = marginals_module.TARGET_WEIGHT
    assert sensitivity == pytest.approx(math.sqrt(sum(w * w if target in pair else 1 for pair in wanted)))
    assert {(i, j) for i, j, _, weight in measured.two_way if weight == 1.0} == wanted
    if target is not None:
        assert parameters["target_pairs"] == "all measured"


def test_more_target_pairs_than_max_pairs_are_ranked_by_their_noisy_scores():
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    scores = np.array([5.0, 1.0, 9.0, 0.0, 7.0, 3.0])  # target 3's pairs: (0, 3) 9, (1, 3) 7, (2, 3) 3
    assert marginals_module.target_pairs(pairs, 3, scores, 2).tolist() == [2, 4]
    assert marginals_module.target_pairs(pairs, 3, scores, 10).tolist() == [2, 4, 5]
    assert marginals_module.target_pairs(pairs, None, scores, 10).tolist() == []
    sizes = [3, 4, 2, 5]
    codes = np.stack([np.random.default_rng(3).integers(0, s, 200) for s in sizes], axis=1)
    ledger = _Scored({(0, 3): 9.0, (1, 3): 7.0, (2, 3): 3.0, (0, 1): 1e9})
    measure_marginals(codes, _encoder(sizes), ledger=ledger, rows=200.0, max_pairs=2, target=3)
    _, _, parameters = ledger.calls["marginals"]
    assert parameters["pairs"] == [["c0", "c3"], ["c1", "c3"]]
    assert parameters["target_pairs"] == "2 measured (max_pairs)"


def test_a_departure_from_independence_is_shrunk_by_the_share_its_noise_explains():
    independent = np.full(4, 0.25)
    direction = np.array([1.0, -1.0, -1.0, 1.0]) / 2  # unit norm, sums to 0
    sigma = 0.01
    # Departure energy exactly what the noise of 4 cells brings: nothing is kept.
    table = independent + direction * math.sqrt(4) * sigma
    assert np.allclose(marginals_module.shrunk(table, independent, sigma), independent)
    # Energy 4x the noise's: three quarters are kept; the table's total is unchanged.
    table = independent + direction * math.sqrt(16) * sigma
    out = marginals_module.shrunk(table, independent, sigma)
    assert np.allclose(out, independent + 0.75 * direction * math.sqrt(16) * sigma)
    assert out.sum() == pytest.approx(table.sum())
    # No noise: unchanged.
    assert np.allclose(marginals_module.shrunk(table, independent, 0.0), table)
