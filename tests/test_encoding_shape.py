"""Where inside a number's spread pieces the encoder puts their mass (issue 11, 1-way TVD).

All post-processing of released counts, so every test here is deterministic: pieces and
counts are given, no noise is drawn. What is checked is what moved the online-shoppers
table's quantile bins: a released cell at a column's end cut away whole by the
refinement (its rows spread over every other value), a remainder between released
neighbours left out (a quantile emptied), a remainder spread flat between neighbours
whose densities differ many times.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from synthdata.schema import Column, Schema
from synthdata.tabular.encoding import (FALL_HELD, INTERIOR_MARGIN, REMAINDER_MARGIN, ColumnCode, TabularEncoder, _draw_numbers,
                                        _follow_density, _Lattice, _Piece, _shape_column, _sub_cells)

from .models.test_encoding import _pieces

WHOLE = _Lattice(1.0, 1, 0)


def _cut(pieces: list[_Piece], index: int, cells: int) -> list[tuple]:
    return [(index, cell) for cell in _sub_cells(pieces[index], WHOLE, cells)]


def _page_counts(proven: bool) -> list[_Piece]:
    """1-4 a cell (refined: its cells stand out), 5-9 released one by one, [10, 99] a cell."""
    return ([_Piece(1, 4, 2000.0, (), 1.0, 2, True)] + [_Piece(v, v, 500.0, ()) for v in range(5, 10)]
            + [_Piece(10, 99, 600.0, (), 1.0, 2, proven)])


def test_a_released_cell_at_the_end_is_never_cut_away_whole_by_the_refinement():
    """Page counts: [10, 99] released as a cell (its whole count is its remainder: ``proven``),
    the refinement's three cells of it all under the margin. The old rule cut the cell away
    and spread its 600 rows over 1-9; now its innermost cell stays with them. A piece that is
    only a share of a remainder (not proven) still goes."""
    sigma = 100.0
    for proven in (True, False):
        pieces = _page_counts(proven)
        cuts = _cut(pieces, 0, 2) + _cut(pieces, 6, 3)
        assert [cell for _, cell in cuts] == [(1, 2), (3, 4), (10, 39), (40, 69), (70, 99)]
        noisy = np.array([1000.0, 1000.0, 1.5 * sigma, 1.2 * sigma, 0.8 * sigma])  # the top's under the margin
        out = _shape_column(pieces, cuts, noisy, sigma, WHOLE)
        assert min(p.low for p in out) == 1
        assert math.isclose(sum(p.weight for p in out), 5100.0)
        if proven:
            assert max(p.high for p in out) == 39
            (top,) = [p for p in out if p.low == 10]
            assert (top.high, top.weight) == (39, 600.0)
            # Holding the whole piece's mass, it is cut further by the density beside it only, not
            # by how many unreleased finer cells that mass would need (_reach: past the real range).
            assert top.resolution == 0
        else:
            assert max(p.high for p in out) == 9  # its rows spread over the others


def test_a_cell_that_stands_out_still_ends_the_cut_before_a_proven_piece_is_reached():
    sigma = 100.0
    pieces = _page_counts(True)
    cuts = _cut(pieces, 0, 2) + _cut(pieces, 6, 3)
    noisy = np.array([1000.0, 1000.0, 450.0, 1.2 * sigma, 0.8 * sigma])  # data reach [10, 39] and stand out there
    out = _shape_column(pieces, cuts, noisy, sigma, WHOLE)
    assert max(p.high for p in out) == 39


def test_a_remainder_between_released_neighbours_is_used_at_a_lower_margin_but_never_past_the_range():
    """Durations: first-digit cells 100-199, 200-299, 400-499 and 1000-1999 released, 300-399
    narrowly not (under the threshold of 400). The decade's remainder, 150, is 2.5 standard
    deviations of its noise (30 x sqrt(4)): under the old margin of 3, over the interior one.
    Between released pieces it is used (spread over 300-399 and 500-999 by their lengths);
    without the piece above 1000, 500-999 would widen the range: the old margin holds."""
    assert INTERIOR_MARGIN * 60 < 150 < REMAINDER_MARGIN * 60
    column = Column("duration", "numerical")
    released = [{}, {}, {150.0: 900, 250.0: 800, 450.0: 600, 1500.0: 700}, {500.0: 2450, 1500.0: 700}]
    pieces = _pieces(column, released)
    weights = {(low, high): w for low, high, w in pieces}
    assert weights[(300.0, 400.0)] == pytest.approx(25.0)
    assert weights[(500.0, 1000.0)] == pytest.approx(125.0)
    released = [{}, {}, {150.0: 900, 250.0: 800, 450.0: 600}, {500.0: 2450}]
    pieces = _pieces(column, released)
    assert max(high for _, high, _ in pieces) <= 500.0
    assert not any(low == 300.0 for low, _, _ in pieces)  # past the range's end: nothing placed


def test_an_inner_piece_follows_the_density_between_its_neighbours():
    """[10, 19] between a dense [0, 9] (100 a value) and a sparse [20, 29] (1 a value): drawn,
    its values fall across it as the log-density between the neighbours' middles does; its
    mass, span and values (less its hole) stay. End pieces and values are left even."""
    pieces = [_Piece(0, 9, 1000.0, ()), _Piece(10, 19, 200.0, (14,)), _Piece(14, 14, 50.0, ()),
              _Piece(20, 29, 10.0, ())]
    out = _follow_density(pieces, WHOLE)
    assert [replace(p, tilt=0.0) for p in out] == pieces
    assert [p.tilt for p in out if p.low != 10] == [0.0, 0.0, 0.0]
    (inner,) = [p for p in out if p.low == 10]
    assert inner.tilt == pytest.approx((19 - 10) / (24.5 - 4.5) * math.log(1 / 100))
    encoder = TabularEncoder()
    code = ColumnCode(name="x", kind="numerical", dtype="int64", integer=True, unit=1.0, step=1, base=0,
                      released_range=[0.0, 29.0], format=2, levels=encoder._numeric_levels(out, WHOLE))
    assert "tilts" in code.levels[1] and "tilts" not in code.levels[0]
    level = next(i for i, lv in enumerate(code.levels) if lv["lows"] == [10.0])
    values = _draw_numbers(code, np.full(40_000, level), np.random.default_rng(0))
    assert set(np.unique(values)) == set(range(10, 20)) - {14}
    counts = np.array([np.sum(values == v) for v in (10, 11, 12, 13, 15, 16, 17, 18, 19)])
    assert all(counts[:-1] > counts[1:])  # falls towards the sparse side
    assert counts[0] / counts[-1] == pytest.approx(math.exp(-inner.tilt), rel=0.25)
    even = [_Piece(0, 9, 100.0, ()), _Piece(10, 19, 200.0, ()), _Piece(20, 29, 100.0, ())]
    assert _follow_density(even, WHOLE) == even


def test_a_piece_that_is_both_ends_of_a_column_is_cut_at_each_end_without_moving_its_mass_up():
    """A 1-7 scale on a small table: only 7 released as itself, the rest the decade [1, 9]'s
    remainder around it. Cut as one piece from below, its inner end was its top: it became
    [5, 9] and half its mass (its rows of 1-6) landed on 8 and 9. Now the part below 7 is cut
    on its own, and 8 and 9 keep no more than their even share (two of the piece's eight values)."""
    scale = [_Piece(1, 9, 800.0, (7,), 1.0, 3), _Piece(7, 7, 200.0, ())]
    out = TabularEncoder()._trim_edges(scale, WHOLE)
    above = sum(p.weight for p in out if p.low > 7)
    below = sum(p.weight for p in out if p.high < 7)
    assert above <= 800.0 * 2 / 8 + 1e-9
    assert below == pytest.approx(800.0 * 6 / 8)
    assert sum(p.weight for p in out) == pytest.approx(1000.0)
    assert all(p.low >= 1 and p.high <= 9 for p in out)
    assert (7, 7, 200.0) in [(p.low, p.high, p.weight) for p in out]  # the released value, as it was


def test_a_constant_whose_count_reads_low_by_its_noise_is_still_a_constant():
    """One released value whose noisy count falls short of the DP row count by less than
    its noise explains is a constant (left out with the warning), not 'one value beside rows
    too rare to release' (kept): a hospital's name on every row was kept in some releases."""
    from synthdata.tabular.encoding import CONSTANT_SHARE

    encoder = TabularEncoder.__new__(TabularEncoder)
    encoder._threshold = 60.0
    rows, noise = 1400.0, 20.0
    short = CONSTANT_SHARE * rows + 12  # unexplained rows: past the bare share, within 1 noise sd
    code = ColumnCode(name="hospital", kind="categorical", dtype="object", integer=False,
                      levels=[{"points": ["St Olav"], "lows": [None], "highs": [None], "weights": [rows - short]}],
                      counts=[rows - short])
    column = Column(name="hospital", type="categorical")
    assert "one value" in encoder._uninformative(column, code, rows, noise)
    # Far more rows unexplained than the noise can account for: other values hide under the threshold.
    code.levels[0]["weights"] = [rows * 0.8]
    code.counts = [rows * 0.8]
    assert encoder._uninformative(column, code, rows, noise) is None


def test_a_row_count_read_high_by_its_own_noise_does_not_keep_a_constant():
    """The DP row count has noise of its own (discrete Laplace): read high, it leaves rows
    'unexplained' beside a constant's one value. Within CONSTANT_MARGIN sd of that noise (and
    the level's) the column is still a constant; with the row count's noise left out of the
    margin it was kept as 'one value beside rows too rare to release'."""
    from synthdata.tabular.encoding import CONSTANT_MARGIN, CONSTANT_SHARE

    encoder = TabularEncoder.__new__(TabularEncoder)
    encoder._threshold = 60.0
    rows, noise, rows_noise = 1400.0, 5.0, 40.0
    short = CONSTANT_SHARE * rows + 0.9 * CONSTANT_MARGIN * rows_noise  # past the level's noise, within the row count's
    assert short - CONSTANT_SHARE * rows > CONSTANT_MARGIN * noise * 3
    code = ColumnCode(name="hospital", kind="categorical", dtype="object", integer=False,
                      levels=[{"points": ["St Olav"], "lows": [None], "highs": [None], "weights": [rows - short]}],
                      counts=[rows - short])
    column = Column(name="hospital", type="categorical")
    assert encoder._uninformative(column, code, rows, noise) is None  # the old margin: kept
    assert "one value" in encoder._uninformative(column, code, rows, noise, rows_noise)
    # Far more rows unexplained than both noises can account for: other values hide under the threshold.
    assert encoder._uninformative(column, code, rows + 3 * REMAINDER_MARGIN * rows_noise, noise, rows_noise) is None


def test_one_value_beside_a_tenth_of_rows_too_rare_is_kept_when_its_count_reads_high():
    """Adult's native_country on 2,000 rows at epsilon 1: one value released (United-States),
    ~190 rows under the threshold, the noise of 'rows less the released count' sd ~44 (the
    level's 33, the row count's 28). Read one sd high, 150 rows are left unexplained: still a
    column (kept, the steward told of the rare rows). The 3-sd margin (2% of rows + 132) called
    it a constant and left it out in about a third of releases."""
    from synthdata.tabular.encoding import CONSTANT_SHARE

    encoder = TabularEncoder.__new__(TabularEncoder)
    encoder._threshold = 120.0
    rows, noise, rows_noise = 2000.0, 33.0, 28.0
    code = ColumnCode(name="native_country", kind="categorical", dtype="object", integer=False,
                      levels=[{"points": ["United-States"], "lows": [None], "highs": [None], "weights": [1850.0]}],
                      counts=[1850.0])
    column = Column(name="native_country", type="categorical")
    assert rows - 1850.0 < CONSTANT_SHARE * rows + REMAINDER_MARGIN * math.hypot(noise, rows_noise)  # old: dropped
    assert encoder._uninformative(column, code, rows, noise, rows_noise) is None
    # A constant read low by its noise (unexplained: 2% of the rows and half a sd) is still one.
    code.levels[0]["weights"] = code.counts = [rows - CONSTANT_SHARE * rows - 0.5 * math.hypot(noise, rows_noise)]
    assert "one value" in encoder._uninformative(column, code, rows, noise, rows_noise)


def test_fit_reads_the_row_count_noise_it_is_given():
    """End to end through fit (large epsilon: the column's own count is near exact): a
    constant column of 1,000 rows beside a DP row count read 150 high is left out as a
    constant when fit is told the count's noise (sd 200), and kept, with the 'too rare'
    warning, when it is not."""
    from synthdata.errors import SynthdataWarning
    from synthdata.privacy import GaussianRequest, NoiseSource, PrivacyLedger
    from synthdata.schema import Schema

    n = 1000
    frame = pd.DataFrame({"hospital": ["St Olav"] * n, "ward": (["A", "B", "C", "D"] * n)[:n]})
    schema = Schema((Column("hospital", "categorical"), Column("ward", "categorical")))

    def fit(rows_noise=None):
        ledger = PrivacyLedger(epsilon=50.0, delta=1e-6, threshold_delta=1e-7, noise=NoiseSource(seed=3))
        ledger.plan(gaussians={"preprocessing": GaussianRequest(sensitivity=1.0, share=1.0)})
        extra = {} if rows_noise is None else {"rows_noise": rows_noise}
        return TabularEncoder().fit(frame, schema, ledger=ledger, threshold_delta=1e-7, rows=n + 150.0, **extra)

    with warnings.catch_warnings(record=True) as told:
        warnings.simplefilter("always")
        dropped = fit(200.0)
    assert "hospital" in [name for name, _ in dropped.dropped_]
    assert not any("hospital" in str(w.message) for w in told)
    # The 150 rows 'ward' cannot explain are within 3 sd of the count's noise: no 'too rare' warning.
    assert not any("'ward'" in str(w.message) and "too rare" in str(w.message) for w in told), told
    with pytest.warns(SynthdataWarning) as told:
        kept = fit()
    assert "hospital" not in [name for name, _ in kept.dropped_]
    assert any("'hospital'" in str(w.message) and "too rare" in str(w.message) for w in told)
    assert any("'ward'" in str(w.message) and "too rare" in str(w.message) for w in told)  # no noise said: warned


def test_an_edge_piece_beside_a_falling_density_keeps_falling_instead_of_ending_early():
    """A long tail: [0, 9] at 200 a value, [10, 19] at 100, and the top piece [20, 99] (a
    released cell's innermost refinement cell) holding 400. Flat at the density beside it
    (the middle piece's: the other end's is not read), its mass filled 4 values ([20, 23]: the
    real rows reach far further); falling at the rate
    the two pieces beside it fall (half every 10 values), from the density that rate gives at
    its inner end, the same mass fills about 8 values, drawn falling. Never past the piece;
    without a density falling at least EDGE_FALL-fold beside it (nearly flat, rising), or with
    a released value among the pieces beside it (spikes), the flat rules hold."""
    encoder = TabularEncoder()
    encoder._threshold = 60.0
    tail = [_Piece(0, 9, 2000.0, ()), _Piece(10, 19, 1000.0, ()), _Piece(20, 99, 400.0, ())]
    flat = encoder._trim_edges(tail, WHOLE)
    assert (flat[-1].low, flat[-1].high, flat[-1].tilt) == (20, 23, 0.0)
    out = encoder._trim_edges(tail, WHOLE, decay=True)
    top = out[-1]
    rate = math.log(2.0) / 10
    start = 100.0 * math.exp(-rate * (20 - 14.5))
    assert (top.low, top.high) == (20, 19 + round(-math.log1p(-400.0 * rate / start) / rate))
    assert top.weight == 400.0 and top.tilt == pytest.approx(-rate * (top.high - top.low + 1))
    assert out[:2] == tail[:2]
    # Mass the falling density cannot hold inside the piece: the whole piece, falling less.
    heavy = encoder._trim_edges(tail[:2] + [_Piece(20, 39, 2000.0, ())], WHOLE, decay=True)[-1]
    assert (heavy.low, heavy.high) == (20, 39) and -rate * 20 < heavy.tilt <= 0.0
    # Nearly flat towards the edge (an age cut off inside its last cell), rising, or exact values
    # beside it: as before.
    from synthdata.tabular.encoding import EDGE_FALL

    for near in (2000.0 * 1.05 / EDGE_FALL, 2000.0, 4000.0):
        shape = [_Piece(0, 9, 2000.0, ()), _Piece(10, 19, near, ()), _Piece(20, 99, 400.0, ())]
        assert encoder._trim_edges(shape, WHOLE, decay=True) == encoder._trim_edges(shape, WHOLE)
    codes = [_Piece(v, v, 500.0 / (v + 1), ()) for v in range(10)] + [_Piece(10, 99, 100.0, ())]
    assert encoder._trim_edges(codes, WHOLE, decay=True) == encoder._trim_edges(codes, WHOLE)
    spike = [_Piece(0, 9, 2000.0, ()), _Piece(10, 18, 900.0, ()), _Piece(19, 19, 300.0, ()), _Piece(20, 99, 400.0, ())]
    assert encoder._trim_edges(spike, WHOLE, decay=True) == encoder._trim_edges(spike, WHOLE)
    # Drawn: the values fall across the piece.
    code = ColumnCode(name="x", kind="numerical", dtype="int64", integer=True, unit=1.0, step=1, base=0,
                      released_range=[0.0, float(top.high)], format=2, levels=encoder._numeric_levels(out, WHOLE))
    level = next(i for i, lv in enumerate(code.levels) if 20.0 in lv["lows"])
    values = _draw_numbers(code, np.full(40_000, level), np.random.default_rng(0))
    values = values[values >= 20]
    assert values.max() == top.high
    assert np.mean(values <= 22) > 3 / (top.high - 19) + 0.05  # more than an even share in the first values


def test_a_tail_past_the_last_released_cell_is_used_at_a_lower_margin_where_the_refinement_tests_it():
    """Durations: first-digit cells 100-199 and 200-299 released, the decade [100, 1000)
    holding 80 more (its remainder: 1.5 sd of the noise of three counts at 30). Past the pieces
    placed, starting where one ends: a long tail going on. Where the refinement follows (its
    cells at the column's end are tested again) it is used at TAIL_MARGIN, spread over
    [300, 1000); without the refinement the old margin of 3 sd holds and it is left out."""
    from synthdata.tabular.encoding import TAIL_MARGIN, _keys

    assert TAIL_MARGIN * 30 * math.sqrt(3) < 80 < REMAINDER_MARGIN * 30 * math.sqrt(3)
    column = Column("duration", "numerical")
    released = [{}, {}, {150.0: 900, 250.0: 800}, {500.0: 1780}]

    def tops(tested: bool) -> list[tuple]:
        encoder = TabularEncoder()
        lattice = encoder._lattice(column)
        resolutions = encoder._resolutions(column, lattice)
        encoder._threshold, encoder._tails_tested = 400.0, tested
        cells = [{tuple(_keys(res, np.array([value]), lattice)[0]): float(w) for value, w in counts.items()}
                 for res, counts in zip(resolutions, released)]
        pieces = encoder._numeric_pieces(column, cells, resolutions, lattice, 30.0, trim=not tested)
        return sorted((p.low, p.high, p.weight) for p in pieces)

    assert tops(True)[-1] == (300.0, 1000.0, pytest.approx(80.0))
    assert max(high for _, high, _ in tops(False)) <= 300.0


def test_when_no_refinement_cell_stands_out_both_ends_go_where_released_values_hold_the_column():
    """Released values 10 and 11 hold the column; a spread piece below and above, each cut into
    refinement cells that all read as noise. Both ends go (their mass to the values kept).
    Before, the low end's cells were cut first and the high end's one cell was then 'every cell
    left': kept whole, as if nothing could be said (a diamond depth's remainder of noise, [70,
    100), kept past the real maximum 79). A column that is one spread piece keeps its cells."""
    sigma = 100.0
    pieces = [_Piece(0, 9, 100.0, ()), _Piece(10, 10, 5000.0, ()), _Piece(11, 11, 4000.0, ()),
              _Piece(12, 99, 100.0, ())]
    cuts = _cut(pieces, 0, 2) + _cut(pieces, 3, 1)
    out = _shape_column(pieces, cuts, np.array([10.0, -20.0, -35.0]), sigma, WHOLE)
    assert [(p.low, p.high) for p in out] == [(10, 10), (11, 11)]
    assert sum(p.weight for p in out) == pytest.approx(9200.0)
    alone = [_Piece(0, 99, 1000.0, ())]
    cells = _cut(alone, 0, 3)
    out = _shape_column(alone, cells, np.array([10.0, -20.0, -35.0]), sigma, WHOLE)
    assert (min(p.low for p in out), max(p.high for p in out)) == (0, 99)


def test_no_missing_level_is_invented_by_the_noise_of_one_column_among_many():
    """A table of 50 columns without a missing value: each column's missing count is noise,
    and a 3-sd test per column invents a missing level somewhere in a few percent of fits
    (shoppers' 'Administrative' got 0.7% missing cells in 1 of 4 fits). The z-score grows with
    the column count (union bound, MISSING_FALSE_RATE). Test noise seed 15 draws one column's
    missing count at 3.1 sd: a level under the old rule, none now."""
    from .models.test_encoding import _fit

    rng = np.random.default_rng(0)
    n, k = 500, 50
    frame = pd.DataFrame({f"c{j}": rng.choice(["a", "b"], n) for j in range(k)})
    schema = Schema(tuple(Column(f"c{j}", "categorical") for j in range(k)))
    encoder = _fit(frame, schema, epsilon=5.0, seed=15)
    invented = [c.name for c, code in zip(schema, encoder.codes_)
                if any(level["points"] == [None] for level in code.levels)]
    assert invented == []
    # Real gaps are still kept: 10% missing in one column.
    gappy = frame.assign(c0=frame["c0"].where(rng.random(n) > 0.1))
    encoder = _fit(gappy, schema, epsilon=5.0, seed=15)
    assert any(level["points"] == [None] for level in encoder.codes_[0].levels)


def test_an_edge_reads_the_density_of_the_pieces_inside_not_of_the_other_edge():
    """A date spread evenly (3.2 rows a day) from day 17,897 to day 18,895, released at epsilon 1
    only as its ~384-day cells: the two inner ones full, the two at the ends partly filled. The
    lower end read the density of the next three pieces, the upper end among them (mass 256 over
    384 days), so 2.4 rows a day: it started 54 days before the first real date (5% of the
    synthetic dates out of range). Each end now reads the inner pieces alone and stops at the
    real first and last days; the masses do not move."""
    cells = [_Piece(17664, 18047, 483.2, (), 1.0, 2), _Piece(18048, 18431, 1228.8, (), 1.0, 2),
             _Piece(18432, 18815, 1228.8, (), 1.0, 2), _Piece(18816, 19199, 256.0, (), 1.0, 2)]
    out = TabularEncoder()._trim_edges(cells, WHOLE)
    assert out[0].low == pytest.approx(17897, abs=1) and out[0].high == 18047
    assert out[-1].low == 18816 and out[-1].high == pytest.approx(18895, abs=1)
    assert [p.weight for p in out] == [p.weight for p in cells]
    # Three pieces: the one inner piece is what each end reads.
    three = TabularEncoder()._trim_edges(cells[:2] + [_Piece(18432, 18815, 600.0, (), 1.0, 2)], WHOLE)
    assert three[0].low == pytest.approx(17897, abs=1)
    assert three[-1].high == pytest.approx(18432 + 600.0 / 3.2 - 1, abs=1)


def test_a_date_columns_end_reads_its_mass_one_noise_sd_low_a_numbers_does_not():
    """Records end on a day (the extraction's): a date past it is plainly impossible. The upper
    end cell of an evenly spread date column, its mass read high by its noise (+1.5 sd), filled
    98 days where the real dates stop after 80. With ``hard_ends`` (the encoder's datetime
    columns) its mass is read EDGE_MARGIN sd low first, as the reach rule reads it; numbers
    keep the plain reading (a tail that thins out costs more cut than passed), and the cut
    never takes more than half the piece's values from the reading."""
    from synthdata.tabular.encoding import EDGE_MARGIN

    sigma = 38.5
    cells = [_Piece(18048, 18431, 1228.8, (), 1.0, 2), _Piece(18432, 18815, 1228.8, (), 1.0, 2),
             _Piece(18816, 19199, 256.0 + 1.5 * sigma, (), 1.0, 2)]
    plain = TabularEncoder()._trim_edges(cells, WHOLE, sigma=sigma)[-1]
    dates = TabularEncoder()._trim_edges(cells, WHOLE, sigma=sigma, hard_ends=True)[-1]
    assert plain.high == pytest.approx(18816 + (256.0 + 1.5 * sigma) / 3.2 - 1, abs=1)  # 98 days: past day 80
    assert dates.high == pytest.approx(18816 + (256.0 + (1.5 - EDGE_MARGIN) * sigma) / 3.2 - 1, abs=1)
    assert dates.weight == plain.weight  # where the mass goes, not how much
    tiny = cells[:2] + [_Piece(18816, 19199, 20.0, (), 1.0, 2)]  # a mass under 1 sd: half of it read
    assert TabularEncoder()._trim_edges(tiny, WHOLE, sigma=sigma, hard_ends=True)[-1].high == \
        pytest.approx(18816 + 10.0 / 3.2 - 1, abs=1)


def _ages(pieces: list[tuple], tilts: list[float] | None = None) -> ColumnCode:
    """An age column's code (whole numbers) from (low, high, weight) pieces, one level each."""
    levels = [{"points": [(low + high) / 2], "lows": [low], "highs": [high], "holes": [[]], "weights": [weight],
               **({"tilts": [tilts[i]]} if tilts else {})} for i, (low, high, weight) in enumerate(pieces)]
    return ColumnCode(name="age", kind="numerical", dtype="int64", integer=True, levels=levels,
                      counts=[weight for _, _, weight in pieces], unit=1.0, step=1, format=2,
                      released_range=[pieces[0][0], pieces[-1][1]])


def test_one_cell_split_evenly_into_pieces_is_one_range_and_left_out():
    """A 442-row table's ages at epsilon 1: only the decade [10, 99] released, cut into two levels of
    equal mass (or refinement cells the noise pulled to even): evenly over 10-99, 31% of the values
    past the real 19-79. That is the one wide range the encoder leaves out with its reason, however
    many pieces it is drawn from; pieces of different densities, a gap or a tilt are a shape, kept."""
    encoder = TabularEncoder.__new__(TabularEncoder)
    encoder._threshold = 366.0
    column = Column(name="age", type="numerical", integer=True)
    even = _ages([(10, 54, 266.9), (55, 99, 266.9)])
    assert even.one_range and _ages([(10, 99, 533.8)]).one_range
    assert _ages([(v, v, 50.0) for v in range(1, 10)]).one_range  # a code piece's values, each the same share
    assert not _ages([(1, 1, 235.0), (2, 2, 207.0)]).one_range  # released values: their own counts
    assert not _ages([(1, 1, 235.0)]).one_range
    reason = encoder._uninformative(column, even, 442.0, 62.0)
    assert reason.startswith("only one wide range of its values (10 to 99)") and "raise epsilon" in reason.lower()
    for shaped in (_ages([(10, 54, 200.0), (55, 99, 333.8)]),  # two densities: the refinement saw a shape
                   _ages([(10, 44, 266.9), (55, 99, 266.9)]),  # a gap between them
                   _ages([(10, 54, 266.9), (55, 99, 266.9)], tilts=[0.0, -0.4]),  # drawn falling
                   _ages([(10, 54, 266.9), (55, 55, 100.0), (56, 99, 266.9)])):  # a released value
        assert not shaped.one_range
        assert encoder._uninformative(column, shaped, 442.0, 62.0) is None


def test_a_cell_that_stood_out_from_one_end_stops_the_other_ends_run():
    """A 442-row table's ``sex`` (1 and 2), released only as the decade [1, 9] and refined value by
    value at a noise of 93: from below, 1 and 2 summed stand out at 2; from above, nothing stands out
    down to and through 2, so the old rule read "the noise says nothing of this end" and kept 2-9, the
    noise shares giving 7 (a value no row holds) 44% of the column. The cell that stood out from one end
    is real and stops the other end's run, as a released value does: 3-9 go."""
    sigma = 93.3
    pieces = [_Piece(1, 9, 401.9, (), 1.0, 3, True)]
    cuts = [(0, (v, v)) for v in range(1, 10)]
    noisy = np.array([218.0, 226.0, -36.0, 8.0, -194.0, -21.0, 185.0, -137.0, -46.0])  # real: 235 at 1, 207 at 2
    out = _shape_column(pieces, cuts, noisy, sigma, WHOLE)
    assert [(p.low, p.high) for p in out] == [(2, 2)]
    assert out[0].weight == pytest.approx(401.9)
    # Where a cell stands out from the top too (real rows at 7), it stays.
    noisy[6] = 400.0
    out = _shape_column(pieces, cuts, noisy, sigma, WHOLE)
    assert [p.low for p in out][0] == 2 and max(p.high for p in out) == 7


def test_where_no_cell_stands_out_from_either_end_the_piece_stays_even():
    """The same column in another fit: from neither end does any cell stand out (1 and 2 at 167 and
    198 beside 7 and 8 at 162 and 136 of noise). The noise shares put 49% of the column on 7-9; the
    refinement said nothing of where the mass lies, so every cell keeps an even share, and the column
    is the one wide range the encoder leaves out."""
    sigma = 93.3
    pieces = [_Piece(1, 9, 401.9, (), 1.0, 3, True)]
    cuts = [(0, (v, v)) for v in range(1, 10)]
    noisy = np.array([167.0, 198.0, -112.0, -136.0, -128.0, -139.0, 162.0, 136.0, 41.0])
    out = _shape_column(pieces, cuts, noisy, sigma, WHOLE)
    assert [(p.low, p.high) for p in out] == [(v, v) for v in range(1, 10)]
    assert [p.weight for p in out] == pytest.approx([401.9 / 9] * 9)


def test_a_falling_edge_piece_past_all_its_fall_could_hold_stops_where_the_fall_does():
    """[0, 99] at 8 a value, [100, 199] at 4, and a wide top piece [200, 9999] holding 600: more
    than a density falling at their rate could hold however far it ran (600 x rate / start > 1).
    It was filled whole (to 9,999, when a few rows less stopped it near 500: a cliff that took a
    thin tail of half-years past its real end); it now stops where the fall has held FALL_HELD of
    all it could (the density down to 1% of its start), drawn falling less."""
    encoder = TabularEncoder()
    encoder._threshold = 60.0
    tail = [_Piece(0, 99, 800.0, ()), _Piece(100, 199, 400.0, ())]
    rate = math.log(2.0) / 100
    start = 4.0 * math.exp(-rate * (200 - 149.5))
    assert 600.0 * rate / start > 1.0  # past all the fall could hold
    top = encoder._trim_edges(tail + [_Piece(200, 9999, 600.0, ())], WHOLE, decay=True)[-1]
    assert top.low == 200 and top.high == 199 + round(-math.log1p(-FALL_HELD) / rate)
    assert top.high < 1000 and top.weight == 600.0 and top.tilt < 0.0
    # A mass the fall holds well inside the piece is cut where it needs, as before.
    light = encoder._trim_edges(tail + [_Piece(200, 9999, 200.0, ())], WHOLE, decay=True)[-1]
    assert light.high == 199 + round(-math.log1p(-200.0 * rate / start) / rate)
