"""The 2-way release with a declared target: its pairs weigh more, and the sensitivity says so."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from synthdata.tabular import marginals as marginals_module
from synthdata.tabular.marginals import measure_marginals, measure_triples, pair_weights, target_triples


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
        self.calls[step] = (values, float(sensitivity), dict(parameters or {}))  # the exact values
        if step in ("selection", "selection3"):  # descending, distinct: the order of the pairs, whatever the rows
            values = 1e9 - np.arange(len(values), dtype=float)
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


# --------------------------------------------------------------------------- 3-way marginals holding a declared target


def test_target_triples_are_the_triples_holding_the_target():
    assert target_triples([0, 1, 2, 3], 2) == [(0, 1, 2), (0, 2, 3), (1, 2, 3)]
    assert target_triples([0, 1, 3, 4], 0) == [(0, 1, 3), (0, 1, 4), (0, 3, 4)]
    assert target_triples([0, 1, 3], 2) == []  # a target with one value (not usable) has none
    assert len(target_triples(list(range(18)), 17)) == 136


def _triple_release(codes: np.ndarray, sizes: list[int], target: int | None, pairs=None, rows=None, partners=None):
    """Pairs (unless given: the earlier releases, fixed as the neighbour's are) then triples,
    measured without noise; the 3-way result and the ledger's calls (exact vectors, sensitivities)."""
    ledger = _Ledger()
    encoder = _encoder(sizes)
    for code in encoder.codes_:
        code.size, code.kind, code.levels = len(code.coarse), "categorical", [{"points": [k]} for k in code.coarse]
    rows = float(len(codes)) if rows is None else rows  # the DP count, released before
    if pairs is None:
        pairs = measure_marginals(codes, encoder, ledger=ledger, rows=rows, max_pairs=100, target=target)
    measured = measure_triples(codes, encoder, pairs, ledger=ledger, rows=rows, target=target, partners=partners)
    return measured, ledger.calls, pairs


@pytest.mark.parametrize("target", [None, 3, 1])
def test_one_row_moves_the_three_way_release_by_exactly_its_sensitivity(target):
    """Add one row: each measured triple's table gains 1 in one cell (sensitivity √triples),
    each candidate's score moves by at most 1 (√candidates), or 2 with a target (the error
    of the target given the other two); with a target only the triples holding it are
    scored and measured, and the ledger line says so."""
    sizes = [3, 4, 2, 5, 2]
    rng = np.random.default_rng(4)
    codes = np.stack([rng.integers(0, s, 400) for s in sizes], axis=1)
    extra = np.array([[2, 0, 1, 4, 1]])
    measured, calls, pairs = _triple_release(codes, sizes, target)
    # The neighbour: one more row; what was released before (count, 2-way marginals) is given.
    _, calls_after, _ = _triple_release(np.concatenate([codes, extra]), sizes, target, pairs, float(len(codes)))
    candidates = 10 if target is None else 6  # C(5, 3), C(4, 2)
    bound = 1 if target is None else 2  # a triple's L1 error; the target's error given the other two
    scores, score_sensitivity, scored = calls["selection3"]
    scores_after = calls_after["selection3"][0]
    assert scored["triples_scored"] == candidates and score_sensitivity == pytest.approx(bound * math.sqrt(candidates))
    assert np.all(np.abs(scores_after - scores) <= bound + 1e-9) and np.any(np.abs(scores_after - scores) > 0.5)
    before, sensitivity, parameters = calls["marginals3"]
    after, sensitivity_after, _ = calls_after["marginals3"]
    chosen = [tuple(int(name[1:]) for name in triple) for triple in parameters["triples"]]
    assert len(chosen) == min(candidates, marginals_module.MAX_TRIPLES)
    assert sensitivity == sensitivity_after == pytest.approx(math.sqrt(len(chosen)))
    assert np.linalg.norm(after - before) == pytest.approx(sensitivity)
    assert [t[:3] for t in measured.three_way] == chosen
    if target is None:
        assert "target" not in parameters
    else:
        assert all(target in triple for triple in chosen)
        assert parameters["target"] == f"c{target}" and "declared target" in parameters["candidates"]
        # The rows are what they are: a triple's noiseless table is kept (nothing to shrink).
        i, j, k, shares, _ = measured.three_way[0]
        exact = np.zeros((sizes[i], sizes[j], sizes[k]))
        np.add.at(exact, (codes[:, i], codes[:, j], codes[:, k]), 1)
        assert np.allclose(shares, exact.ravel() / len(codes), atol=1e-6)


def test_a_declared_target_measures_the_three_way_structure_pairs_cannot_see():
    """y = a XOR b: every pair independent, so only a 3-way marginal holding y carries it.
    With the target declared and 3-way shares, only triples holding y are scored and
    measured (booked on their own ledger lines), and the generator reproduces the XOR;
    without a target, the default budget measures nothing 3-way."""
    from synthdata import TabularGAN

    rng = np.random.default_rng(12)
    n = 4000
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    frame = pd.DataFrame({"a": np.where(a, "yes", "no").astype(object), "b": np.where(b, "up", "down").astype(object),
                          "y": np.where(a ^ b, "odd", "even").astype(object), "d": rng.integers(0, 5, n).astype(str)})
    model = TabularGAN(epsilon=4.0, seed=0, generator_steps=1000, device="cpu",
                       budget_split={"discriminator": 0.0, "selection3": 0.05, "marginals3": 0.2}).fit(frame, target="y")
    (scored,) = [spend for spend in model.ledger_.spends if spend.step == "selection3"]
    assert scored.parameters["triples_scored"] == 3  # (a, b, y), (a, d, y), (b, d, y)
    (line,) = [spend for spend in model.ledger_.spends if spend.step == "marginals3"]
    assert line.parameters["target"] == "y" and all("y" in triple for triple in line.parameters["triples"])
    assert line.parameters["triples"][0] == ["a", "b", "y"]
    assert model.epsilon_spent_ <= 4.0
    sample = model.sample(5000, seed=2)
    share = float(((sample["a"] == "yes") ^ (sample["b"] == "up") == (sample["y"] == "odd")).mean())
    assert share > 0.8, share
    plain = TabularGAN(epsilon=4.0, seed=0, generator_steps=10, device="cpu",
                       budget_split={"discriminator": 0.0}).fit(frame)
    assert not {"selection3", "marginals3"} & {spend.step for spend in plain.ledger_.spends}


def test_the_target_error_of_a_triple_moves_by_at_most_two_per_row():
    """The conditional score's bound, on tables where it is reached or nearly: many random
    tables and predictions, one row added to any cell."""
    rng = np.random.default_rng(7)
    shape = [3, 2, 4]
    worst = 0.0
    for _ in range(200):
        table = rng.integers(0, 5, shape).astype(float)
        predicted = rng.random(shape) * (rng.random(shape) > 0.3)
        predicted /= max(predicted.sum(), 1e-12)
        axis = int(rng.integers(0, 3))
        before = marginals_module._conditional_error(table.ravel(), predicted.ravel(), shape, axis)
        cell = tuple(int(rng.integers(0, s)) for s in shape)
        table[cell] += 1
        after = marginals_module._conditional_error(table.ravel(), predicted.ravel(), shape, axis)
        worst = max(worst, abs(after - before))
    assert 1.0 < worst <= 2.0 + 1e-9


def test_the_strongest_partners_are_read_off_the_released_pairs():
    independent = np.outer([0.5, 0.5], [0.25, 0.75])
    pairwise = {(0, 2): independent, (1, 2): np.array([[0.4, 0.1], [0.1, 0.4]]),
                (2, 3): np.array([[0.3, 0.2], [0.2, 0.3]])}
    assert marginals_module.strongest_partners(pairwise, [0, 1, 2, 3, 4], 2, 2) == [1, 3]
    assert marginals_module.strongest_partners(pairwise, [0, 1, 2, 3, 4], 2, 4) == [1, 3, 0, 4]


@pytest.mark.parametrize("partners", [2, 3])
def test_triples_of_the_target_and_its_strongest_partners_need_no_selection(partners):
    """Columns 0-2 depend on the target 3, column 4 does not: the triples measured are the
    target with two of its strongest partners, C(partners, 2) of them, with no selection
    step; one row moves that release by exactly the booked √(triples)."""
    rng = np.random.default_rng(5)
    n = 2000
    y = rng.integers(0, 2, n)
    noisy = [np.where(rng.random(n) < p, y, rng.integers(0, 2, n)) for p in (0.9, 0.6, 0.3)]
    codes = np.stack(noisy + [y, rng.integers(0, 3, n)], axis=1)
    sizes = [2, 2, 2, 2, 3]
    measured, calls, pairs = _triple_release(codes, sizes, 3, partners=partners)
    _, calls_after, _ = _triple_release(np.concatenate([codes, [[1, 0, 1, 1, 2]]]), sizes, 3, pairs, float(n),
                                        partners=partners)
    assert "selection3" not in calls
    before, sensitivity, parameters = calls["marginals3"]
    chosen = [tuple(int(name[1:]) for name in triple) for triple in parameters["triples"]]
    expected = {2: [(0, 1, 3)], 3: [(0, 1, 3), (0, 2, 3), (1, 2, 3)]}[partners]
    assert chosen == expected and [t[:3] for t in measured.three_way] == expected
    assert sensitivity == pytest.approx(math.sqrt(len(expected)))
    assert np.linalg.norm(calls_after["marginals3"][0] - before) == pytest.approx(sensitivity)
    assert parameters["target"] == "c3" and "partners" in parameters["candidates"]


def test_target_triples_by_default_are_the_target_and_its_strongest_partners(monkeypatch):
    """With TARGET_TRIPLES_SPLIT set and a target declared, the fit measures the target's
    triples with two of its strongest partners on a "marginals3" line and spends no
    "selection3"; without a target, nothing 3-way."""
    from synthdata import TabularGAN
    from synthdata.tabular import estimator

    monkeypatch.setattr(estimator, "TARGET_TRIPLES_SPLIT", {"selection3": 0.0, "marginals3": 0.2})
    rng = np.random.default_rng(8)
    n = 3000
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({f"x{k}": np.where(rng.random(n) < p, y, rng.integers(0, 3, n)).astype(str)
                          for k, p in enumerate((0.9, 0.8, 0.7, 0.0))} | {"y": np.where(y, "yes", "no")})
    model = TabularGAN(epsilon=4.0, seed=0, generator_steps=10, device="cpu",
                       budget_split={"discriminator": 0.0}).fit(frame, target="y")
    steps = [spend.step for spend in model.ledger_.spends]
    assert "selection3" not in steps and steps.count("marginals3") == 1
    (line,) = [spend for spend in model.ledger_.spends if spend.step == "marginals3"]
    assert sorted(map(tuple, line.parameters["triples"])) == [("x0", "x1", "y"), ("x0", "x2", "y"), ("x1", "x2", "y")]
    assert line.sensitivity == pytest.approx(math.sqrt(3)) and model.epsilon_spent_ <= 4.0
    plain = TabularGAN(epsilon=4.0, seed=0, generator_steps=10, device="cpu",
                       budget_split={"discriminator": 0.0}).fit(frame)
    assert "marginals3" not in {spend.step for spend in plain.ledger_.spends}


# --------------------------------------------------------------------------- target pairs within strata of a partner


@pytest.mark.parametrize("target", [3, 0])
def test_stratified_target_pairs_move_by_exactly_the_booked_sensitivity(monkeypatch, target):
    """With STRATA on, each target pair (but the stratifier's own) is released as its
    (stratum, column, target) table: one row still adds w to one cell of each, so the
    release moves by exactly the same booked sqrt(sum w^2). Without noise the stratified
    tables are the exact 3-way shares and the pairs' tables their sums over the strata."""
    monkeypatch.setattr(marginals_module, "STRATA", 2)
    sizes = [3, 4, 2, 5]
    rng = np.random.default_rng(4)
    codes = np.stack([rng.integers(0, s, 300) for s in sizes], axis=1)
    extra = np.array([[2, 0, 1, 4]])
    measured, (before, sensitivity, parameters) = _release(codes, sizes, target)
    _, (after, _, _) = _release(np.concatenate([codes, extra]), sizes, target)
    w = marginals_module.TARGET_WEIGHT
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    assert sensitivity == pytest.approx(math.sqrt(sum(w * w if target in p else 1 for p in pairs)))
    assert np.linalg.norm(after - before) == pytest.approx(sensitivity)
    # The first target pair scores highest (the test ledger's order): its other column stratifies.
    first = next(p for p in pairs if target in p)
    column = first[0] if first[1] == target else first[1]
    assert parameters["stratified_by"] == f"c{column}" and parameters["strata"] == 2
    stratifier, tgt, strata, tables = measured.stratified
    assert (stratifier, tgt) == (column, target)
    assert strata == [0] + [1] * (sizes[column] - 1)  # flat released counts: the first group alone, the rest
    assert sorted(x for x, _ in tables) == sorted(c for c in range(4) if c not in (column, target))
    for x, table in tables:
        exact = np.zeros((2, sizes[x], sizes[target]))
        np.add.at(exact, (np.asarray(strata)[codes[:, column]], codes[:, x], codes[:, target]), 1)
        assert np.allclose(table, exact.ravel() / len(codes), atol=1e-6)
    for i, j, shares, _ in measured.two_way:
        if target in (i, j):
            exact = np.zeros((sizes[i], sizes[j]))
            np.add.at(exact, (codes[:, i], codes[:, j]), 1)
            assert np.allclose(shares, exact.ravel() / len(codes), atol=1e-6)
    again = marginals_module.MeasuredMarginals.from_dict(measured.to_dict())
    assert again.stratified[:3] == measured.stratified[:3]
    assert all(x == y and np.allclose(a, b) for (x, a), (y, b) in zip(again.stratified[3], tables))


def test_without_strata_or_without_a_target_nothing_is_stratified(monkeypatch):
    sizes = [3, 4, 2, 5]
    codes = np.stack([np.random.default_rng(6).integers(0, s, 200) for s in sizes], axis=1)
    monkeypatch.setattr(marginals_module, "STRATA", 0)
    assert _release(codes, sizes, 3)[0].stratified is None
    monkeypatch.setattr(marginals_module, "STRATA", 2)
    assert _release(codes, sizes, 3)[0].stratified is not None
    measured, (_, _, parameters) = _release(codes, sizes, None)
    assert measured.stratified is None and "stratified_by" not in parameters


def test_stratified_pairs_carry_how_two_columns_act_on_the_target_together(monkeypatch):
    """y = a XOR b (90% of rows): every pair is flat, so a model of pairs cannot carry it.
    Stratified by one of a and b, the target's pair with the other is measured within
    each of its strata, and the generator fitted to those tables reproduces the XOR."""
    from synthdata import TabularGAN

    rng = np.random.default_rng(9)
    n = 4000
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    y = (a ^ b) ^ (rng.random(n) < 0.1)
    frame = pd.DataFrame({"a": np.where(a, "yes", "no"), "b": np.where(b, "up", "down"),
                          "y": np.where(y, "odd", "even")})

    def agreement(strata: int) -> float:
        monkeypatch.setattr(marginals_module, "STRATA", strata)
        model = TabularGAN(epsilon=8.0, seed=0, generator_steps=1200, device="cpu", insecure_noise_seed=3,
                           budget_split={"discriminator": 0.0}).fit(frame, target="y")
        (line,) = [spend for spend in model.ledger_.spends if spend.step == "marginals"]
        assert (line.parameters.get("stratified_by") in ("a", "b")) == (strata > 1)
        s = model.sample(6000, seed=1)
        return float((((s["a"] == "yes") ^ (s["b"] == "up")) == (s["y"] == "odd")).mean())

    stratified, plain = agreement(2), agreement(0)
    assert stratified > 0.8, stratified
    assert plain < 0.65, plain


@pytest.mark.parametrize("target", [3, 0, None])
def test_the_target_pair_scores_weigh_more_in_the_selection_and_the_sensitivity_says_so(monkeypatch, target):
    """With STRATA on, the target's pair scores enter the selection release times
    TARGET_SCORE_WEIGHT (their noise, divided back, is that many times smaller: they pick the
    stratifier). One row moves a score by at most 1, so a weighted one by at most w: the booked
    sqrt(sum of weights^2) must cover what one row moves, and the scores come back unweighted."""
    monkeypatch.setattr(marginals_module, "STRATA", 2)
    sizes = [3, 4, 2, 5]
    rng = np.random.default_rng(11)
    codes = np.stack([rng.integers(0, s, 300) for s in sizes], axis=1)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    w = marginals_module.TARGET_SCORE_WEIGHT
    assert w > 1
    weights = marginals_module.score_weights(pairs, target)
    assert weights.tolist() == [w if target is not None and target in p else 1 for p in pairs]

    def selection(rows_codes):
        ledger = _Ledger()
        measured = measure_marginals(rows_codes, _encoder(sizes), ledger=ledger, rows=300.0, max_pairs=100,
                                     target=target)
        return measured, ledger.calls["selection"]

    measured, (before, sensitivity, parameters) = selection(codes)
    moved = []
    for extra in ([[2, 0, 1, 4]], [[0, 3, 0, 0]], [[1, 1, 1, 1]]):
        _, (after, sensitivity_after, _) = selection(np.concatenate([codes, np.array(extra)]))
        assert sensitivity_after == sensitivity
        moved.append(np.linalg.norm(after - before))
        assert np.all(np.abs(after - before) <= weights + 1e-9)
    assert max(moved) <= sensitivity + 1e-9
    assert sensitivity == pytest.approx(math.sqrt(float(np.sum(weights ** 2))))
    assert parameters.get("target_score_weight") == (None if target is None else w)
    # The released values are the weighted scores; the scores kept are unweighted again.
    for index, (i, j) in enumerate(pairs):
        table = np.zeros((sizes[i], sizes[j]))
        np.add.at(table, (codes[:, i], codes[:, j]), 1)
        expected = np.outer(np.full(sizes[i], 1 / sizes[i]), np.full(sizes[j], 1 / sizes[j])) * 300
        assert before[index] == pytest.approx(weights[index] * np.abs(table - expected).sum())
    kept = measured.pair_scores
    fixed = 1e9 - np.arange(len(pairs), dtype=float)  # what the test ledger returns
    assert [kept[p] for p in pairs] == pytest.approx((fixed / weights).tolist())


def test_without_strata_the_target_pair_scores_weigh_as_the_others(monkeypatch):
    pairs = [(0, 1), (0, 2), (1, 2)]
    monkeypatch.setattr(marginals_module, "STRATA", 0)
    assert marginals_module.score_weights(pairs, 2).tolist() == [1, 1, 1]
    monkeypatch.setattr(marginals_module, "STRATA", 2)
    assert marginals_module.score_weights(pairs, 2).tolist() == [1, 2, 2]
    assert marginals_module.score_weights([(0, 1), (1, 2)], 0).tolist() == [1, 1]  # one target pair: nothing to choose
