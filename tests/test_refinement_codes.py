"""Codes under the release threshold (issue 11, session 9: shoppers' TrafficType and Browser).

A code the first release could not release on its own (its noisy count under the threshold)
is part of a coarser cell's remainder, spread evenly over the lattice values no finer release
covers. Browser's decade [1, 9] left 3, 6, 7, 8 and 9 (about 4% of the rows) to one piece,
refined as one cell and cut to its inner end: all of it came out as 3 (1% of the real rows).
Now such a piece of a few values among released ones (a *code piece*) is refined value by
value wherever it lies, the pieces of one remainder share its mass by their cells' counts, and
at a column's end the first release's cap (each unreleased value holds at most about its
threshold) keeps as many values as the remainder's mass needs. All post-processing of the
releases: these tests draw no noise.
"""

from __future__ import annotations

import math

import numpy as np

from synthdata.schema import Column
from synthdata.tabular.encoding import (EDGE_MARGIN, WEIGHT_SCALE, TabularEncoder, _cell_weights, _code_pieces,
                                        _exact_counts, _exact_weight, _Lattice, _Piece, _shape_column, _sub_cells,
                                        _to_refine)

WHOLE = _Lattice(1.0, 1, 0)


def _browser() -> list[_Piece]:
    """1, 2, 4, 5 released; the decade [1, 9]'s remainder of 500 rows spread over 3, 6, 7, 8, 9."""
    return [_Piece(1, 1, 2000.0, ()), _Piece(2, 2, 6000.0, ()), _Piece(4, 4, 600.0, ()), _Piece(5, 5, 350.0, ()),
            _Piece(1, 9, 500.0, (1, 2, 4, 5), 3.0, 3, True, group=0)]


def test_code_pieces_are_a_few_values_among_released_ones_not_a_smooth_stretch():
    pieces = _browser()
    assert _code_pieces(pieces, WHOLE) == {4}
    assert 4 in _to_refine(pieces, WHOLE)
    # Page counts: 1-9 released, 10-19 a remainder beside the spread piece 20-29 (a smooth stretch),
    # and 30-35 one above the released 29 ... no: beside the spread piece below it too.
    counts = [_Piece(v, v, 300.0, ()) for v in range(1, 10)] + [_Piece(10, 19, 2000.0, (), 1.0, 2),
                                                                   _Piece(20, 29, 1300.0, (), 1.0, 2)]
    assert _code_pieces(counts, WHOLE) == set()
    # A few values past the last released one, at the column's end: codes (a 1-7 scale's 6 and 7).
    scale = [_Piece(v, v, 300.0, ()) for v in range(1, 6)] + [_Piece(6, 9, 200.0, (), 1.0, 3)]
    assert _code_pieces(scale, WHOLE) == {5}
    # More values than CODE_VALUES, or no lattice: never.
    assert _code_pieces([_Piece(1, 1, 300.0, ()), _Piece(2, 40, 300.0, (), 1.0, 3)], WHOLE) == set()
    assert _code_pieces([_Piece(0.0, 0.0, 300.0, ()), _Piece(0.5, 0.9, 300.0, (), 1.0, 3)],
                        _Lattice(None, None, None)) == set()


def test_a_remainders_pieces_share_its_mass_by_their_cells_counts():
    """1, 4 and 7 released; the remainder of 200 rows spread over 2-3 and 5-6 (100 each, by size).
    The refinement counts 2 and 3 at 95, 5 and 6 at 5 (noise sd 10): the mass follows them."""
    pieces = [_Piece(1, 1, 900.0, ()), _Piece(2, 3, 100.0, (), 1.0, 3, group=7), _Piece(4, 4, 800.0, ()),
              _Piece(5, 6, 100.0, (), 1.0, 3, group=7), _Piece(7, 7, 700.0, ())]
    cuts = [(1, (2, 2)), (1, (3, 3)), (3, (5, 5)), (3, (6, 6))]
    counts = np.array([95.0, 95.0, 5.0, 5.0])
    mass = {p.low: p.weight for p in _shape_column(pieces, cuts, counts, 10.0, WHOLE)}
    assert math.isclose(sum(mass.values()), 2600.0)
    assert mass[2] + mass[3] > 150.0 and mass[5] + mass[6] < 50.0, mass
    # Pieces of different remainders keep their own mass, whatever their counts.
    apart = [pieces[0], pieces[1], pieces[2], _Piece(5, 6, 100.0, (), 1.0, 3, group=8), pieces[4]]
    mass = {p.low: p.weight for p in _shape_column(apart, cuts, counts, 10.0, WHOLE)}
    assert math.isclose(mass[2] + mass[3], 100.0) and math.isclose(mass[5] + mass[6], 100.0)


def test_cells_the_first_release_proves_stay_at_the_column_end():
    """Browser: the refinement's counts of 3, 6, 7, 8, 9 do not stand out of its noise (sd 100),
    so the end test cuts 9 down to 6 and the remainder's 500 rows land on 3 alone. Each unreleased
    value holds at most about its threshold (``cap``), so 500 rows need two of them: 3 and 6 stay."""
    pieces = _browser()
    cells = _sub_cells(pieces[4], WHOLE, 5)
    assert cells == [(3, 3), (6, 6), (7, 7), (8, 8), (9, 9)]
    cuts = [(4, cell) for cell in cells]
    noisy = np.array([90.0, 140.0, 40.0, 100.0, 0.0])
    plain = _shape_column(pieces, cuts, noisy, 100.0, WHOLE)
    assert max(p.high for p in plain) == 5  # the released 5: of the remainder, 3 alone is left
    assert [p.low for p in plain if p.low == 3] == [3] and not any(p.high > 5 for p in plain)
    sure = frozenset({0, 1})
    kept = _shape_column(pieces, cuts, noisy, 100.0, WHOLE, sure=sure)
    assert max(p.high for p in kept) == 6 and min(p.low for p in kept) == 1
    assert math.isclose(sum(p.weight for p in kept), sum(p.weight for p in pieces))


def test_the_cap_of_an_unreleased_code_reads_its_own_threshold():
    """_code_reach: mass read EDGE_MARGIN sd low over the cap of a small whole number (its exact
    count weighs sqrt(3) cells: its own threshold, lower than the column's), from the inner side."""
    encoder = TabularEncoder()
    sigma = 60.0 * WEIGHT_SCALE  # a weighted count's noise: 60 rows at the base weight
    encoder.sigma_ = sigma / WEIGHT_SCALE
    encoder._threshold_of = lambda noise: 5.0 * noise  # noqa: SLF001 - a fit's closure, given here
    column = Column("browser", "numerical", integer=True)
    pieces = _browser()
    cuts = [(4, cell) for cell in _sub_cells(pieces[4], WHOLE, 5)]
    resolutions = encoder._resolutions(column, WHOLE)
    noise = sigma / _exact_weight(3, resolutions, WHOLE, WEIGHT_SCALE)
    cap = 5.0 * noise + EDGE_MARGIN * noise
    low = 500.0 - EDGE_MARGIN * 60.0 * math.sqrt(3.0)
    needed = math.ceil(low / cap)
    assert needed == 2
    assert encoder._code_reach(column, pieces, {4}, cuts, WHOLE) == frozenset({0, 1})
    # At the column's lower end, the cells next to the released values above it stay.
    low_end = [_Piece(1, 4, 500.0, (), 3.0, 3, True, group=0), _Piece(5, 5, 2000.0, ()), _Piece(6, 6, 900.0, ())]
    cuts = [(0, cell) for cell in _sub_cells(low_end[0], WHOLE, 4)]
    assert encoder._code_reach(column, low_end, {0}, cuts, WHOLE) == frozenset({2, 3})
    # Inside the column (released values on both sides), nothing is needed: no end test reaches it.
    inside = [_Piece(0, 0, 900.0, ())] + low_end
    cuts = [(1, cell) for cell in _sub_cells(inside[1], WHOLE, 4)]
    assert encoder._code_reach(column, inside, {1}, cuts, WHOLE) == frozenset()


def test_the_exact_weight_of_a_value_is_the_one_its_count_gets():
    encoder = TabularEncoder()
    for lattice, values in ((WHOLE, [0, 3, 7, 12, 99, 100, 4321, -5]), (_Lattice(0.5, 1, 1, halves=True),
                                                                          [0, 1, 6, 7, 35, 200, 201])):
        column = Column("n", "numerical", integer=True)
        resolutions = encoder._resolutions(column, lattice)
        import pandas as pd

        series = pd.Series(np.array(values, dtype=float) * (lattice.unit or 1.0))
        counts = _exact_counts(column, series, resolutions, lattice)
        _, weights = _cell_weights(column, counts, resolutions, lattice)
        for key, weight in zip(counts.keys[0], weights[0]):
            assert _exact_weight(int(key[0]), resolutions, lattice, WEIGHT_SCALE) == weight, (lattice.unit, key)


def test_the_end_test_stops_at_a_spread_piece_it_does_not_refine():
    """[0, 9] and [20, 29] refined, [10, 19] not: from the bottom, [0, 9]'s empty cells go, and the
    run stops at [10, 19] (data surely there) instead of cutting [20, 24] inside the column."""
    pieces = [_Piece(0, 9, 100.0, (), 1.0, 3), _Piece(10, 19, 900.0, (), 1.0, 2),
              _Piece(20, 29, 600.0, (), 1.0, 2, True)]
    cuts = [(0, (0, 4)), (0, (5, 9)), (2, (20, 24)), (2, (25, 29))]
    out = _shape_column(pieces, cuts, np.array([0.0, 0.0, 10.0, 600.0]), 50.0, WHOLE)
    assert min(p.low for p in out) == 10
    assert any(p.low == 20 and p.high == 24 for p in out)


def test_a_remainder_over_codes_between_released_ones_keeps_the_remainder_margin():
    """TrafficType: 1-4, 6, 8, 10 released, the decade [1, 9] counting more than they do (the rows of
    5, 7 and 9). Between released codes the remainder is used only past REMAINDER_MARGIN sd of its
    noise, as anywhere else: at INTERIOR_MARGIN (1 sd, session 9's first version) a remainder of
    noise alone was used in a large share of fits and put values no row holds between released
    ones (halves 1.5 between whole numbers, tests/test_codes_and_halves.py)."""
    from synthdata.tabular.encoding import INTERIOR_MARGIN, REMAINDER_MARGIN, _keys

    column = Column("traffic", "numerical", integer=True)
    exact = {1: 2000, 2: 3000, 3: 1600, 4: 850, 6: 350, 8: 300, 10: 450}
    noise = 30.0 * math.sqrt(1 + 6)  # the decade's own count and its six released values inside

    def spread(extra: float, tested: bool) -> list[tuple]:
        released = [exact, {}, {}, {5: sum(v for k, v in exact.items() if k < 10) + extra, 50: 450}]
        encoder = TabularEncoder()
        lattice = WHOLE
        resolutions = encoder._resolutions(column, lattice)
        encoder._threshold, encoder._tails_tested = 400.0, tested
        cells = [{tuple(_keys(res, np.array([value]), lattice)[0]): float(w) for value, w in counts.items()}
                 for res, counts in zip(resolutions, released)]
        pieces = encoder._numeric_pieces(column, cells, resolutions, lattice, 30.0, trim=not tested)
        return [(p.low, p.high, p.holes, p.weight) for p in pieces if p.low != p.high]

    weak, strong = 230.0, 3.5 * noise
    assert INTERIOR_MARGIN * noise < weak < REMAINDER_MARGIN * noise < strong
    assert spread(weak, True) == [] and spread(weak, False) == []
    (used,) = spread(strong, True)
    assert used[:3] == (1, 9, (1, 2, 3, 4, 6, 8)) and math.isclose(used[3], strong)  # 5, 7, 9: the others are holes
