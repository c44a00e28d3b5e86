"""The encoder's second, smaller release: where inside its spread pieces a number's mass lies (issue 11).

A cell of the first release that no finer release explains (the decade [1, 9] of a 1-7
scale, the century [2000, 2099] of years, the degree [44, 45) of latitudes) was spread
evenly over all its values, past the real range. The refinement counts finer cells inside
those pieces with Gaussian noise (booked on the same ledger line, at the same total cost)
and post-processing cuts the column's edges to cells whose counts stand out of the noise.
"""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import pandas as pd

from synthdata.errors import SynthdataWarning
from synthdata.privacy import GaussianRequest, NoiseSource, PrivacyLedger
from synthdata.schema import Column, Schema
from synthdata.tabular.encoding import (REFINE_MARGIN, REFINE_MISS, REFINE_SHARE, TabularEncoder, _cut_keys, _Lattice, _Piece,
                                        _shape_column, _sub_cells)


def _fit(frame: pd.DataFrame, schema: Schema, *, epsilon: float = 1.0, seed: int = 0):
    ledger = PrivacyLedger(epsilon=epsilon, delta=1e-6, threshold_delta=1e-7, noise=NoiseSource(seed=seed))
    ledger.plan(gaussians={"preprocessing": GaussianRequest(sensitivity=1.0, share=1.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SynthdataWarning)  # values too rare to release (not what is tested)
        encoder = TabularEncoder().fit(schema.conform(frame[schema.names]), schema, ledger=ledger,
                                       threshold_delta=1e-7, rows=float(len(frame)))
    return encoder, ledger


def _draw(encoder: TabularEncoder, n: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    levels = np.stack([rng.choice(code.size, size=n, p=np.maximum(code.counts, 1e-9) / np.maximum(code.counts, 1e-9).sum())
                       for code in encoder.codes_], axis=1)
    return encoder.decode(levels, rng=rng)


def test_an_edge_cell_whose_count_does_not_stand_out_of_the_noise_is_cut_and_the_mass_stays():
    """A 1-7 scale: 4 and 6 released as themselves, the rest a remainder of the decade [1, 9].
    The refinement's cells 8 and 9 count nothing (noise only): they go; 7 stands out: it stays."""
    whole = _Lattice(1.0, 1, 0)
    spread = _Piece(1, 9, 300.0, (4, 6), 1.0, 3)
    pieces = [_Piece(4, 4, 250.0, ()), _Piece(6, 6, 200.0, ()), spread]
    cells = _sub_cells(spread, whole, 16)
    assert cells == [(1, 1), (2, 2), (3, 3), (5, 5), (7, 7), (8, 8), (9, 9)]
    cuts = [(2, cell) for cell in cells]
    sigma = 10.0
    noisy = np.array([60.0, 70.0, 50.0, 40.0, 80.0, 1.5 * sigma, -5.0])
    out = _shape_column(pieces, cuts, noisy, sigma, whole)
    assert max(p.high for p in out) == 7 and min(p.low for p in out) == 1
    assert math.isclose(sum(p.weight for p in out), 750.0)
    # Each of 8 and 9 alone is under the margin, but together they stand out: data reach 8 at least.
    margin = max(REFINE_MARGIN, NormalDist().inv_cdf(1 - REFINE_MISS / (4 * len(cuts))))  # the rule's own
    noisy[5:] = [0.8 * margin * sigma, 0.8 * margin * sigma]
    assert max(p.high for p in _shape_column(pieces, cuts, noisy, sigma, whole)) == 8


def test_refinement_cells_skip_released_values_and_split_a_continuous_piece_evenly():
    cuts = ((1, 5, 7), (3, 5, 9), (2,))
    keys = _cut_keys(cuts, np.array([0, 1, 2, 3, 4, 5, 6, 9, 10]), continuous=False)
    assert keys.tolist() == [-1, 0, -1, 0, -1, 1, -1, 2, -1]
    cells = _sub_cells(_Piece(44.0, 45.0, 100.0, ()), _Lattice(None, None, None), 4)
    assert cells == [(44.0, 44.25), (44.25, 44.5), (44.5, 44.75), (44.75, 45.0)]
    assert _cut_keys((tuple(c[0] for c in cells), tuple(c[1] for c in cells), ()),
                     np.array([43.9, 44.0, 44.3, 44.99, 45.0]), continuous=True).tolist() == [-1, 0, 1, 3, -1]


def test_the_two_releases_cost_what_the_plan_set_for_the_step():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.integers(1, 8, 2000), "y": rng.normal(size=2000)})
    schema = Schema((Column("x", "numerical", integer=True), Column("y", "numerical")))
    _, ledger = _fit(frame, schema)
    (line,) = [s for s in ledger.spends if s.step == "preprocessing"]
    planned = ledger.planned_multiplier("preprocessing")
    p = line.parameters
    assert math.isclose(p["sigma"] / p["sensitivity"], planned)
    z1 = p["first_release_sigma"] / p["sensitivity"]
    z2 = p["refinement_sigma"] / p["refinement_sensitivity"]
    assert math.isclose(1 / z1**2, (1 - REFINE_SHARE) / planned**2, rel_tol=1e-5)
    assert 1 / z1**2 + 1 / z2**2 <= 1 / planned**2 * (1 + 1e-5)
    assert math.isclose(p["refinement_sensitivity"], math.sqrt(2), rel_tol=1e-5)  # one count per row and column


def test_a_scale_and_coordinates_stay_inside_their_range():
    """The unseen tables' cases: a 1-7 scale whose rare answers are a remainder of the decade
    [1, 9], and latitudes 44.89-45.05 inside the cells [44, 45) and [45, 46)."""
    rng = np.random.default_rng(3)
    n = 3000
    frame = pd.DataFrame({
        "scale": rng.choice(np.arange(1, 8), n, p=[0.04, 0.05, 0.06, 0.3, 0.25, 0.2, 0.1]),
        "lat": np.round(rng.uniform(44.89, 45.05, n), 6),
    })
    schema = Schema((Column("scale", "numerical", integer=True), Column("lat", "numerical")))
    for seed in (0, 1):
        encoder, _ = _fit(frame, schema, seed=seed)
        synthetic = _draw(encoder)
        assert synthetic["scale"].between(1, 7).all(), seed
        assert synthetic["lat"].between(44.89 - 0.01, 45.05 + 0.01).mean() > 0.99, seed
