"""Private inference of code columns and the encoder's half lattice (issue 11).

Every noisy decision here is tested with fresh CSPRNG noise, never a seed: each test
first asserts that its data sits many noise standard deviations (the estimator's own σ
and thresholds) away from the rule's threshold, so the decision cannot hinge on a draw.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from synthdata.privacy import GaussianRequest, PrivacyLedger
from synthdata.schema import Column, Schema
from synthdata.tabular.encoding import TabularEncoder
from synthdata.tabular.inference import schema_noise
from synthdata.tabular.inference import _CODE_SHARE, _MINORITY_MARGIN, infer_schema_private

#: Standard deviations between the data and a rule's threshold: a wrong side by noise has
#: probability below 1e-20.
MARGIN = 10.0


def _schema_ledger(epsilon: float) -> PrivacyLedger:
    ledger = PrivacyLedger(epsilon=epsilon, delta=1e-6)  # fresh CSPRNG noise
    ledger.plan(gaussians={"schema": GaussianRequest(sensitivity=1.0, share=1.0)})
    return ledger


def test_numbers_beside_many_codes_are_a_code_column_and_a_few_typos_are_not():
    """``85123`` beside ``85123A`` (product codes, 10% with a letter) is categorical; numbers
    with 0.3% typos (``12a``) and missing markers (``?``, ``NA``, ``-``) stay numbers, and
    the typos and markers are read as missing, as before."""
    rng = np.random.default_rng(5)
    n = 10_000
    digits = rng.integers(20_000, 23_000, n).astype(str)
    lettered = np.char.add(rng.integers(20_000, 23_000, n).astype(str), rng.choice(list("ABCDE"), n))
    coded = rng.random(n) < 0.10
    amount = rng.integers(1, 500, n).astype(str).astype(object)
    marker = rng.random(n) < 0.03
    amount[marker] = rng.choice(["?", "NA", "-"], int(marker.sum()))
    typos = 30
    amount[rng.choice(np.flatnonzero(~marker), typos, replace=False)] = "12a"
    frame = pd.DataFrame({"stock": np.where(coded, lettered, digits), "amount": amount,
                          "qty": rng.integers(1, 20, n)})
    ledger = _schema_ledger(1.0)
    sigma = schema_noise(ledger.planned_multiplier("schema"), frame.shape[1])
    # The rule (noisy codes above both MINORITY_MARGIN sigma and CODE_SHARE of the values)
    # is far from both columns: 1,000 codes on one side, 30 typos on the other.
    threshold = max(_MINORITY_MARGIN * sigma, _CODE_SHARE * n)
    assert coded.sum() - MARGIN * sigma > threshold > typos + MARGIN * sigma
    schema = infer_schema_private(frame, ledger=ledger)
    assert schema["stock"].type == "categorical"
    assert schema["amount"].type == "numerical" and schema["amount"].integer
    assert schema["qty"].type == "numerical" and schema["qty"].integer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conformed = schema.conform(frame)
    assert any("amount" in str(w.message) for w in caught)
    assert conformed["amount"].isna().sum() == marker.sum() + typos


def _encoder(frame: pd.DataFrame, schema: Schema, epsilon: float = 2.0) -> TabularEncoder:
    ledger = PrivacyLedger(epsilon=epsilon, delta=1e-6, threshold_delta=1e-7)  # fresh CSPRNG noise
    ledger.plan(gaussians={"preprocessing": GaussianRequest(sensitivity=1.0, share=1.0)})
    return TabularEncoder().fit(schema.conform(frame[schema.names]), schema, ledger=ledger, threshold_delta=1e-7,
                                rows=float(len(frame)))


def _draw(encoder: TabularEncoder, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng()
    levels = np.stack([rng.choice(c.size, size=rows, p=np.maximum(c.counts, 0) / np.maximum(c.counts, 0).sum())
                       for c in encoder.codes_], axis=1)
    return encoder.decode(levels, rng=rng)


def test_halves_inference_left_undecided_are_found_by_the_encoder_or_read_as_whole_numbers():
    """Children 0-4 and 5.5 ("five or more") on 10% of the rows: the encoder's release of
    exact values shows the half, so 5.5 comes out as itself (never 6) and the column is not
    declared integer. Whole numbers with halves too rare to release stay whole numbers,
    inside the real range. A column without halves is unchanged: integers."""
    rng = np.random.default_rng(6)
    n = 20_000
    many = np.where(rng.random(n) < 0.10, 5.5, rng.integers(0, 5, n).astype(float))
    rare = rng.integers(0, 5, n).astype(float)
    rare[:3] = 5.5  # three rows: never a release
    frame = pd.DataFrame({"many": many, "rare": rare, "whole": rng.integers(0, 9, n)})
    schema = Schema(tuple(Column(name, "numerical", integer=True, halves_undecided=True) for name in frame.columns))
    encoder = _encoder(frame, schema)
    # 2,000 rows of 5.5 clear the release threshold by far (at a weight of at least one cell's, with its noise).
    assert (many == 5.5).sum() > encoder.threshold_ + MARGIN * encoder.sigma_
    assert 3 < encoder.threshold_ - 5 * encoder.sigma_  # three rows: released with probability < 1e-6
    codes = {code.name: code for code in encoder.codes_}
    assert not codes["many"].integer and codes["many"].dtype == "float64"
    assert codes["rare"].integer and codes["whole"].integer and codes["whole"].dtype == "int64"
    synthetic = _draw(encoder, 20_000)
    assert (synthetic["many"] == 5.5).mean() > 0.05
    assert set(synthetic["many"].unique()) <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.5}
    assert synthetic["rare"].dtype == "int64" and synthetic["rare"].between(0, 4).all()
    assert synthetic["whole"].dtype == "int64" and synthetic["whole"].between(0, 8).all()
    fitted = encoder.fitted_schema(schema)
    assert (fitted["many"].integer, fitted["many"].step) == (False, 0.5)
    assert (fitted["rare"].integer, fitted["rare"].step) == (True, None)
    assert not any(column.halves_undecided for column in fitted)
    # A declared integer column is never read on the half lattice: 5.5 is rounded as before.
    declared = _encoder(frame[["many"]], Schema((Column("many", "numerical", integer=True),)))
    assert declared.codes_[0].integer and declared.codes_[0].unit == 1.0


def test_inference_leaves_halves_undecided_only_on_whole_numbers():
    rng = np.random.default_rng(7)
    n = 5000
    frame = pd.DataFrame({"count": rng.integers(0, 40, n), "tenths": np.round(rng.normal(5, 2, n), 1)})
    schema = infer_schema_private(frame, ledger=_schema_ledger(5.0))
    assert schema["count"].integer and schema["count"].halves_undecided
    assert schema["tenths"].step == 0.1 and not schema["tenths"].halves_undecided
    assert "halves_undecided" not in schema["count"].to_dict()


def test_in_half_units_whole_numbers_are_counted_as_on_their_own_lattice_and_no_row_moves_more_than_its_norm():
    """Halves undecided: the whole numbers' cells and weights are those of the lattice of
    whole numbers (nothing costs a column without halves), a half is counted once, exactly,
    with its column's whole norm, and one row (a whole number, a half or a missing value)
    moves the weighted counts by at most that norm: the sensitivity the release assumes."""
    from synthdata.tabular.encoding import _cell, _cell_weights, _exact_counts, _norm2

    encoder = TabularEncoder()
    undecided = Column("n", "numerical", integer=True, halves_undecided=True)
    whole = Column("n", "numerical", integer=True)
    lattices = [encoder._lattice(undecided), encoder._lattice(whole)]
    resolutions = encoder._resolutions(whole, lattices[1])
    assert lattices[0].unit == 0.5 and lattices[1].unit == 1.0
    values = pd.Series([0, 3, 7, 42, 57, 99, 420, 4200, 123456, -7, -57], dtype=float)
    (kept_h, weights_h), (kept_w, weights_w) = [
        _cell_weights(c, _exact_counts(c, values, resolutions, lattice), resolutions, lattice)
        for c, lattice in zip((undecided, whole), lattices)]
    assert [k[0] for k in kept_h.keys[0]] == [2 * k[0] for k in kept_w.keys[0]]
    assert all(np.array_equal(a, b) for a, b in zip(weights_h, weights_w))
    assert kept_h.keys[1:] == kept_w.keys[1:]
    for resolution, keys in zip(resolutions[1:], kept_h.keys[1:]):
        for key in keys:
            low, high = _cell(resolution, key, lattices[0])
            whole_low, whole_high = _cell(resolution, key, lattices[1])
            assert (low, high) == (2 * whole_low, 2 * whole_high + 1)  # [a, b + 0.5]: the cells tile the line
    for value in [5.5, -0.5, 17.5, 99.5, 1234.5, 6.0, None]:
        counts = _exact_counts(undecided, pd.Series([value], dtype=float), resolutions, lattices[0])
        kept, weights = _cell_weights(undecided, counts, resolutions, lattices[0])
        moved = np.concatenate([w[part > 0] for part, w in zip(kept.parts(), weights)]).astype(float)
        assert float(np.sum(moved ** 2)) <= _norm2(resolutions)
        if value is not None and value % 1:  # a half: one exact count, nothing coarser
            assert len(moved) == 1 and moved[0] ** 2 == _norm2(resolutions)
            assert all(len(part) == 0 for part in kept.counts[1:])


def test_a_fit_without_a_schema_emits_released_halves_and_does_not_call_their_column_integer():
    """End to end (inference, encoder, the schema the model ends with): 5.5 on 10% of the
    rows is released and emitted as itself, the column is float with step 0.5 in the
    model's schema; a column of whole numbers stays integer."""
    import torch

    from synthdata import TabularGAN

    torch.set_num_threads(1)
    rng = np.random.default_rng(8)
    n = 6000
    frame = pd.DataFrame({"children": np.where(rng.random(n) < 0.10, 5.5, rng.integers(0, 5, n).astype(float)),
                          "visits": rng.integers(0, 6, n), "kind": rng.choice(["a", "b", "c"], n)})
    model = TabularGAN(epsilon=3.0, generator_steps=1, epochs=0.05).fit(frame)
    assert (frame["children"] == 5.5).sum() > model.encoder_.threshold_ + MARGIN * model.encoder_.sigma_
    assert (model.schema_["children"].integer, model.schema_["children"].step) == (False, 0.5)
    assert model.schema_["visits"].integer and not model.schema_["visits"].halves_undecided
    synthetic = model.sample(2000)
    assert synthetic["children"].dtype == "float64" and synthetic["visits"].dtype == "int64"
    assert set(synthetic["children"].dropna().unique()) <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.5}


def test_a_column_of_whole_numbers_comes_out_the_same_whether_halves_were_undecided_or_not():
    """The same noise (a test-only seed, on both sides): with halves undecided, a column of
    whole numbers (small codes, a long tail, negatives) is released and cut into exactly
    the pieces the lattice of whole numbers gives, and stays integer."""
    from synthdata.privacy import NoiseSource

    rng = np.random.default_rng(9)
    n = 20_000
    values = np.where(rng.random(n) < 0.7, rng.integers(0, 12, n), np.round(rng.lognormal(4, 1.5, n)))
    frame = pd.DataFrame({"n": np.where(rng.random(n) < 0.05, -rng.integers(1, 40, n), values)})

    def pieces(column: Column) -> tuple:
        ledger = PrivacyLedger(epsilon=1.0, delta=1e-6, threshold_delta=1e-7, noise=NoiseSource(seed=3))
        ledger.plan(gaussians={"preprocessing": GaussianRequest(sensitivity=1.0, share=1.0)})
        schema = Schema((column,))
        code = TabularEncoder().fit(schema.conform(frame), schema, ledger=ledger, threshold_delta=1e-7,
                                    rows=float(n)).codes_[0]
        return code.integer, code.dtype, code.released_range, [
            (round(low, 9), round(high, 9), round(weight, 6)) for level in code.levels if level["points"] != [None]
            for low, high, weight in zip(level["lows"], level["highs"], level["weights"])]

    undecided = pieces(Column("n", "numerical", integer=True, halves_undecided=True))
    assert undecided == pieces(Column("n", "numerical", integer=True))
    assert undecided[0] and len(undecided[3]) > 10
