"""The DP encoder keeps every column's support: lattices, point masses, ranges (issue 11).

The encoder is fitted alone here, on a ledger whose noise is seeded (the test-only
source), so every assertion is deterministic; the budgets are large enough that the
values the assertions name clear the release threshold, and small enough that the
noise is real.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from synthdata.errors import SynthdataWarning
from synthdata.privacy import GaussianRequest, NoiseSource, PrivacyLedger
from synthdata.schema import Column, Schema
from synthdata.tabular.encoding import ColumnCode, TabularEncoder


def _fit(frame: pd.DataFrame, schema: Schema, *, epsilon: float = 2.0, seed: int = 0, rows: float | None = None,
         **settings) -> TabularEncoder:
    ledger = PrivacyLedger(epsilon=epsilon, delta=1e-6, threshold_delta=1e-7, noise=NoiseSource(seed=seed))
    ledger.plan(gaussians={"preprocessing": GaussianRequest(sensitivity=1.0, share=1.0)})
    encoder = TabularEncoder(**settings)
    return encoder.fit(schema.conform(frame[schema.names]), schema, ledger=ledger, threshold_delta=1e-7,
                       rows=float(len(frame)) if rows is None else rows)


def _draw(encoder: TabularEncoder, frame: pd.DataFrame, schema: Schema, n: int = 20_000,
          seed: int = 1) -> pd.DataFrame:
    """Synthetic values drawn as the model draws them: levels in proportion to the released counts."""
    rng = np.random.default_rng(seed)
    levels = np.stack([rng.choice(code.size, size=n, p=np.maximum(code.counts, 1e-9) / np.maximum(code.counts, 1e-9).sum())
                       for code in encoder.codes_], axis=1)
    return encoder.decode(levels, rng=rng)


def _on_lattice(values: np.ndarray, step: float, base: float = 0.0) -> np.ndarray:
    k = (values - base) / step
    return np.abs(k - np.round(k)) < 1e-6


def test_half_points_stay_half_points_and_years_stay_years():
    """The shipped demo's ages 17.5, 22, 27 ... and penguins' 2007-2009 (the issue's two cases)."""
    rng = np.random.default_rng(0)
    n = 6000
    frame = pd.DataFrame({
        "age": rng.choice([17.5, 22.0, 27.0, 32.0, 37.0, 42.0], n, p=[0.05, 0.2, 0.3, 0.2, 0.15, 0.1]),
        "year": rng.choice([2007, 2008, 2009], n),
        "yrs": np.round(rng.gamma(2.0, 4.0, n) * 2) / 2,  # many half-points, a thin tail
    })
    schema = Schema((Column("age", "numerical", step=0.5), Column("year", "numerical", integer=True),
                     Column("yrs", "numerical", step=0.5)))
    encoder = _fit(frame, schema)
    synthetic = _draw(encoder, frame, schema)
    assert set(synthetic["age"].unique()) == {17.5, 22.0, 27.0, 32.0, 37.0, 42.0}
    assert set(synthetic["year"].unique()) == {2007, 2008, 2009}
    assert synthetic["year"].dtype == np.int64
    assert _on_lattice(synthetic["yrs"].to_numpy(), 0.5).all()
    # A thin tail's last values are read off noisy counts: the range holds every value drawn, and the real
    # range all but a few of the furthest (here 1 in 20,000 at 54 past a real 52.5, in 1 of 30 noise seeds).
    low, high = encoder.codes_[2].released_range
    assert synthetic["yrs"].between(low, high).all()
    assert (~synthetic["yrs"].between(frame["yrs"].min(), frame["yrs"].max())).mean() < 0.001
    # Exact values keep their shares.
    for value in (22.0, 27.0):
        assert abs((synthetic["age"] == value).mean() - (frame["age"] == value).mean()) < 0.02


def test_point_masses_codes_and_a_coarser_lattice_read_off_released_values():
    rng = np.random.default_rng(1)
    n = 8000
    amount = np.where(rng.random(n) < 0.7, 0, np.round(rng.lognormal(7, 1, n)))
    amount[rng.random(n) < 0.05] = -1  # a code for "refused"
    frame = pd.DataFrame({
        "amount": amount,
        "grams": rng.choice(np.arange(2700, 6301, 25), n),  # weighed in steps of 25
        "status": rng.choice([-2, -1, 0, 1, 2, 3], n),
    })
    schema = Schema((Column("amount", "numerical", integer=True), Column("grams", "numerical", integer=True),
                     Column("status", "numerical", integer=True)))
    encoder = _fit(frame, schema)
    synthetic = _draw(encoder, frame, schema)
    assert abs((synthetic["amount"] == 0).mean() - 0.7 * 0.95) < 0.02
    assert abs((synthetic["amount"] == -1).mean() - 0.05) < 0.01
    assert set(synthetic["status"].unique()) == {-2, -1, 0, 1, 2, 3}
    grams = encoder.codes_[1]
    assert grams.step % 25 == 0 and (grams.base - 2700) % 25 == 0
    assert _on_lattice(synthetic["grams"].to_numpy(), 25).all()
    for name in ("amount", "grams", "status"):
        assert synthetic[name].between(frame[name].min(), frame[name].max()).all(), name


def test_measurements_without_a_lattice_stay_in_range_and_keep_their_zeros():
    rng = np.random.default_rng(2)
    n = 10_000
    rate = np.where(rng.random(n) < 0.4, 0.0, rng.beta(2, 20, n) * 0.2)
    frame = pd.DataFrame({"rate": rate, "duration": rng.exponential(300, n)})
    schema = Schema((Column("rate", "numerical"), Column("duration", "numerical")))
    encoder = _fit(frame, schema)
    synthetic = _draw(encoder, frame, schema)
    assert abs((synthetic["rate"] == 0).mean() - 0.4) < 0.02
    for name in ("rate", "duration"):
        low, high = encoder.codes_[[c.name for c in encoder.codes_].index(name)].released_range
        assert synthetic[name].between(low, high).all()
        assert frame[name].min() <= low and high <= frame[name].max() * 1.0001, (name, low, high)
    # The distribution's shape survives (quantiles within a few percent of the range).
    for q in (0.25, 0.5, 0.75, 0.9):
        assert abs(synthetic["duration"].quantile(q) - frame["duration"].quantile(q)) < 0.05 * frame["duration"].max()


def test_dates_come_out_on_whole_minutes():
    rng = np.random.default_rng(3)
    n = 6000
    minutes = pd.Timestamp("2010-12-01 08:00") + pd.to_timedelta(rng.integers(0, 9 * 24 * 60, n), unit="min")
    frame = pd.DataFrame({"when": minutes.strftime("%Y-%m-%d %H:%M")})
    schema = Schema((Column("when", "datetime", datetime_format="%Y-%m-%d %H:%M"),))
    encoder = _fit(frame, schema, epsilon=4.0)
    synthetic = _draw(encoder, frame, schema)
    parsed = pd.to_datetime(synthetic["when"], format="%Y-%m-%d %H:%M")
    assert parsed.notna().all()
    assert (parsed.dt.second == 0).all()
    # The edges are known to within the finest released cell (an hour): what lies outside
    # the real range is a few minutes' worth of draws at most.
    hour = pd.Timedelta(hours=1)
    assert parsed.between(minutes.min() - hour, minutes.max() + hour).all()
    assert (~parsed.between(minutes.min(), minutes.max())).mean() < 0.005
    assert parsed.dt.normalize().nunique() >= 8  # the days are there, not one cell


def test_a_constant_column_is_flagged_unless_declared_public():
    rng = np.random.default_rng(4)
    n = 3000
    frame = pd.DataFrame({"site": ["Oslo"] * n, "units": [5] * n, "x": rng.integers(0, 10, n)})
    schema = Schema((Column("site", "categorical"), Column("units", "numerical", integer=True),
                     Column("x", "numerical", integer=True)))
    encoder = _fit(frame, schema)
    assert [name for name, _ in encoder.dropped_] == ["site", "units"]
    assert all("one value" in reason for _, reason in encoder.dropped_)
    declared = Schema((Column("site", "categorical", categories=("Oslo",)),
                       Column("units", "numerical", integer=True, bounds=(5, 5)),
                       Column("x", "numerical", integer=True)))
    encoder = _fit(frame, declared)
    assert encoder.dropped_ == []
    synthetic = _draw(encoder, frame, declared)
    assert (synthetic["site"] == "Oslo").all() and (synthetic["units"] == 5).all()


def test_nothing_released_is_said_and_never_an_empty_column():
    rng = np.random.default_rng(5)
    n = 400
    frame = pd.DataFrame({"id_like": [f"v{i % 200}" for i in range(n)], "x": rng.integers(0, 3, n)})
    schema = Schema((Column("id_like", "categorical"), Column("x", "numerical", integer=True)))
    with pytest.warns(SynthdataWarning, match=r"about 400 rows, .* a value needs a noisy count above \d+ rows"):
        encoder = _fit(frame, schema, epsilon=0.5)
    reasons = dict(encoder.dropped_)
    assert "no value is frequent enough" in reasons["id_like"]
    assert "raise epsilon" in reasons["id_like"] and "schema" in reasons["id_like"]


def test_values_too_rare_to_release_are_stated():
    rng = np.random.default_rng(6)
    n = 2000
    frame = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(60)], n)})  # ~33 rows each
    schema = Schema((Column("city", "categorical"),))
    with pytest.warns(SynthdataWarning, match=r"column 'city': about \d+% of its rows hold values too rare"):
        _fit(frame, schema, epsilon=1.0)


def test_encode_maps_every_real_value_to_its_piece():
    rng = np.random.default_rng(7)
    n = 5000
    frame = pd.DataFrame({"v": np.round(rng.normal(100, 15, n)).astype(int)})
    schema = Schema((Column("v", "numerical", integer=True),))
    encoder = _fit(frame, schema)
    codes = encoder.encode(frame, schema, rng=np.random.default_rng(0))[:, 0]
    code = encoder.codes_[0]
    pieces = [(lo, hi, i, set(holes)) for i, lv in enumerate(code.levels)
              for lo, hi, holes in zip(lv["lows"], lv["highs"], lv["holes"])]
    points = {lo: i for lo, hi, i, _ in pieces if lo == hi}
    assert len(points) >= 10  # the values near the mode are released exactly
    for value, level in zip(frame["v"].to_numpy(), codes):
        if value in points:
            assert level == points[value], value
            continue
        holding = [i for lo, hi, i, holes in pieces if lo < hi and lo <= value <= hi and value not in holes]
        if holding:
            assert level == holding[0], (value, level, holding)
        else:  # in no released cell: the nearest piece
            distance = {i: max(lo - value, value - hi, 0) for lo, hi, i, _ in pieces}
            assert distance[level] == min(distance.values()), (value, level)


def test_models_saved_before_lattices_still_decode():
    """A format-1 code (values uniform in [low, high), rounded) decodes as it did."""
    code = ColumnCode.from_dict({
        "name": "age", "kind": "numerical", "dtype": "int64", "integer": True,
        "levels": [{"points": [25.0], "lows": [19.5], "highs": [30.5], "weights": [10.0], "digits": [1]}],
        "coarse": [0], "counts": [10.0], "bounds": None, "datetime_format": None,
    })
    assert code.format == 1
    encoder = TabularEncoder.from_state_dict({"digits": 2, "max_levels": 32, "max_coarse": 8, "threshold": 1.0,
                                              "sigma": 1.0, "codes": [code.to_dict()]})
    out = encoder.decode(np.zeros((1000, 1), dtype=np.int64), rng=np.random.default_rng(0))
    assert out["age"].between(19, 31).all() and out["age"].nunique() > 5


def test_lattice_survives_save_and_load():
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"age": rng.choice([17.5, 22.0, 27.0], 3000)})
    schema = Schema((Column("age", "numerical", step=0.5),))
    encoder = _fit(frame, schema)
    loaded = TabularEncoder.from_state_dict(encoder.state_dict())
    levels = np.zeros((100, 1), dtype=np.int64)
    a = encoder.decode(levels, rng=np.random.default_rng(3))
    b = loaded.decode(levels, rng=np.random.default_rng(3))
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------- private inference of lattices


def _infer(frame: pd.DataFrame, epsilon: float = 5.0) -> Schema:
    from synthdata.tabular.inference import infer_schema_private

    ledger = PrivacyLedger(epsilon=epsilon, delta=1e-6, noise=NoiseSource(seed=0))
    ledger.plan(gaussians={"schema": GaussianRequest(sensitivity=1.0, share=1.0)})
    return infer_schema_private(frame, ledger=ledger)


def test_inference_decides_lattices_and_date_resolution():
    rng = np.random.default_rng(9)
    n = 3000
    stamps = pd.Timestamp("2010-12-01") + pd.to_timedelta(rng.integers(0, 9 * 1440, n), unit="min")
    frame = pd.DataFrame({
        "age": rng.choice(["17.5", "22", "27.0", "32"], n),        # text, as a CSV may hold it
        "bill": np.round(rng.normal(44, 5, n), 1),
        "price": np.round(rng.lognormal(1, 1, n), 2),
        "rate": rng.random(n),
        "count": rng.integers(0, 50, n),
        "minute": stamps.strftime("%m/%d/%Y %H:%M"),
        "second": (stamps + pd.to_timedelta(rng.integers(0, 60, n), unit="s")).strftime("%Y-%m-%d %H:%M:%S"),
        "stamp": stamps,                                            # datetime64, whole minutes
    })
    schema = _infer(frame)
    assert schema["age"].step == 0.5 and not schema["age"].integer
    assert schema["bill"].step == 0.1
    assert schema["price"].step == 0.01
    assert schema["rate"].step is None
    assert schema["count"].integer and schema["count"].step is None
    assert schema["minute"].datetime_format == "%m/%d/%Y %H:%M"
    assert schema["second"].datetime_format == "%Y-%m-%d %H:%M:%S"
    assert schema["stamp"].datetime_format == "%Y-%m-%d %H:%M"


def test_small_table_types_and_lattice_are_still_told_from_the_noise():
    """300 numbers over three shapes (whole, halves, one decimal) at a budget that leaves
    noise of about a tenth of the rows: still numbers, on the 0.1 lattice."""
    rng = np.random.default_rng(10)
    n = 300
    values = np.round(rng.normal(3, 1, n), 1)
    shape = np.arange(n) % 3
    values = np.where(shape == 0, np.round(values), np.where(shape == 1, np.round(values) + 0.5, values))
    values = np.where((shape == 2) & (values * 2 == np.round(values * 2)), values + 0.1, values)
    frame = pd.DataFrame({"oldpeak": values, "kind": rng.choice(["a", "b"], n)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SynthdataWarning)
        schema = _infer(frame, epsilon=0.6)
    assert schema["oldpeak"].type == "numerical" and schema["oldpeak"].step == 0.1
    assert schema["kind"].type == "categorical"


def test_repeating_person_ids_are_never_modelled():
    rng = np.random.default_rng(11)
    n = 3000
    frame = pd.DataFrame({"patient_id": np.repeat(np.arange(1000, 1000 + n // 3), 3),
                          "PatientId": np.repeat(np.arange(n // 3), 3), "visit": rng.integers(1, 4, n)})
    from synthdata.errors import IdentifierColumnWarning

    with pytest.warns(IdentifierColumnWarning):
        schema = _infer(frame)
    assert schema.names == ["visit"]
    assert {e.name for e in schema.excluded} == {"patient_id", "PatientId"}


def test_a_dominant_value_does_not_lump_the_others_together():
    """Capital gains: 91% zeros. The other values keep levels (and 2-way groups) of their own."""
    rng = np.random.default_rng(12)
    n = 30_000
    gains = rng.choice(np.arange(1000, 31000, 1000), n)
    frame = pd.DataFrame({"gain": np.where(rng.random(n) < 0.91, 0, gains)})
    schema = Schema((Column("gain", "numerical", integer=True),))
    encoder = _fit(frame, schema, epsilon=10.0, max_levels=32, max_coarse=16)
    code = encoder.codes_[0]
    assert code.levels[0]["lows"] == [0.0] and len(code.levels[0]["lows"]) == 1  # the zeros alone
    assert code.size >= 25, code.size
    assert code.coarse_size >= 12, code.coarse_size


def test_even_tenths_are_a_lattice_of_two_tenths_and_zeros_say_nothing():
    """Mostly zeros, then 0.2 ... 1.0 (online shoppers' SpecialDay): a lattice of 0.2, not
    whole numbers (the zeros are on every lattice) and not 0.1 (no value is an odd tenth)."""
    from synthdata.tabular.inference import SHAPES, shape_codes

    assert [SHAPES[c] for c in shape_codes(pd.Series(["0", "0.0", "-0", "0.20", "1.3", "2.5", "3", "0.25"]))] == [
        "zero", "zero", "zero", "even-tenth", "decimal1", "half", "integer", "decimal2"]
    assert [SHAPES[c] for c in shape_codes(pd.Series([0.0, 0.6, 0.7, 1.0]))] == [
        "zero", "even-tenth", "decimal1", "integer"]
    rng = np.random.default_rng(12)
    n = 5000
    frame = pd.DataFrame({
        "special": np.where(rng.random(n) < 0.85, 0.0, rng.choice([0.2, 0.4, 0.6, 0.8, 1.0], n)),
        "tenths": np.round(rng.normal(5, 2, n), 1),
    })
    schema = _infer(frame)
    assert schema["special"].step == 0.2 and not schema["special"].integer
    assert schema["tenths"].step == 0.1
    encoder = _fit(frame, schema)
    synthetic = _draw(encoder, frame, schema)
    assert _on_lattice(synthetic["special"].to_numpy(), 0.2).all()


def test_small_whole_numbers_weigh_more_and_no_row_moves_more_than_its_norm():
    """An exact count that coarser cells would copy (7 is its own 2- and 1-digit cell) is
    counted once, with their weight: the copies are left out, and whatever its value, one
    row still moves its column's weighted counts by at most the column's norm."""
    from synthdata.tabular.encoding import WEIGHT_SCALE, _cell_weights, _exact_counts, _norm2

    values = [0, 7, -7, 42, 420, 4200, 123456]
    column = Column("code", "numerical", integer=True)
    encoder = TabularEncoder()
    lattice = encoder._lattice(column)
    resolutions = encoder._resolutions(column, lattice)
    for value in values:
        counts = _exact_counts(column, pd.Series([value, None], dtype=float), resolutions, lattice)
        kept, weights = _cell_weights(column, counts, resolutions, lattice)
        cells = [w[part > 0] for part, w in zip(kept.parts(), weights)]
        present = np.concatenate(cells[:-1])
        assert float(np.sum(present.astype(float) ** 2)) <= _norm2(resolutions)   # the value's row
        assert float(cells[-1][0]) ** 2 <= _norm2(resolutions)                     # a missing row
    kept, weights = _cell_weights(column, _exact_counts(column, pd.Series(values, dtype=float), resolutions, lattice),
                                  resolutions, lattice)
    exact = dict(zip([k[0] for k in kept.keys[0]], weights[0]))
    assert exact[0] > exact[7] > exact[42] > exact[420] == WEIGHT_SCALE
    assert all(int(key[0]) > 0 for key in kept.keys[1])  # no 2-digit cell that is a value below 100



def _pieces(column: Column, released: list[dict], *, threshold: float = 400.0, sigma: float = 30.0):
    """Pieces (low, high, weight) of released counts given by value: post-processing only, no noise."""
    from synthdata.tabular.encoding import _keys

    encoder = TabularEncoder()
    lattice = encoder._lattice(column)
    resolutions = encoder._resolutions(column, lattice)
    encoder._threshold = threshold
    cells = []
    for resolution, counts in zip(resolutions, released):
        dtype = float if lattice.unit is None else np.int64
        cells.append({tuple(_keys(resolution, lattice.to_units(np.array([value], dtype=float)).astype(dtype),
                                  lattice)[0]): float(weight) for value, weight in counts.items()})
    pieces = encoder._numeric_pieces(column, cells, resolutions, lattice, sigma)
    return sorted((p.low, p.high, p.weight) for p in pieces)


def test_a_long_tail_reaches_as_many_finer_cells_as_its_mass_needs():
    """A decade's remainder beyond its released first-digit cells (durations: 15% of the rows
    from 3000 up, none of 3000-3999, 4000-4999, ... clearing a threshold of 400) reaches at
    least ceil(1500 / 400) = 4 of those cells: up to 6000, not the 1150 values the density
    beside it would fill. Both readings are lower bounds of the real tail, so it stays in range."""
    column = Column("duration", "numerical")
    pieces = _pieces(column, [{0.0: 5000}, {}, {1500.0: 1800, 2500.0: 800}, {1500.0: 4100}])
    low, high, weight = pieces[-1]
    assert (low, weight) == (3000.0, 1500.0)
    assert high == pytest.approx(6000.0)
    # Where the mass is no more than one finer cell's worth, only the density beside it decides.
    pieces = _pieces(column, [{0.0: 5000}, {}, {1500.0: 1800, 2500.0: 800}, {1500.0: 2900}])
    assert pieces[-1][1] < 4000.0


def test_a_remainder_widens_the_range_only_when_it_has_nowhere_inside_to_go():
    """Rates capped at 0.2 (0.2 released exactly; 0.1-0.2 too thin for a cell of its own): the
    decade's remainder goes between the released pieces, never past 0.2 — the 0.2 cells'
    own noisy remainders neither. A cell denser than the piece beside it at the top edge is
    a point mass at its inner end (0.2 not released on its own), not values up to 0.21."""
    column = Column("rate", "numerical")
    released = [{0.0: 4400, 0.2: 560},
                {0.205: 565},
                {0.015: 1200, 0.025: 600, 0.25: 568},
                {0.05: 2800, 0.5: 868}]
    pieces = _pieces(column, released)
    assert max(high for _, high, _ in pieces) == pytest.approx(0.2)
    assert sum(w for low, high, w in pieces if 0.1 <= low and high <= 0.2 and low < high) == pytest.approx(300, abs=10)
    # 0.2 itself under the threshold: its 2-digit cell is the top piece, five times as dense as the one beside it.
    released = [{0.0: 4400}, {0.205: 560}, {0.015: 1200, 0.025: 600, 0.25: 560}, {0.05: 3200, 0.5: 560}]
    pieces = _pieces(column, released)
    assert pieces[-1] == (pytest.approx(0.2), pytest.approx(0.2), pytest.approx(560))
