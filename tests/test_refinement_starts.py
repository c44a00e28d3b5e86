"""A refined piece's first value counted apart, and a refined remainder's mass read from both
releases (issue 11, session 15).

Lending Club's loans are capped at 40,000 (4% of them); at epsilon 1 on its 55 columns neither
40,000 nor its cell [40,000, 49,900] cleared the threshold, so the top piece was the decade's
remainder [40,000, 99,900], and its mass was spread from 40,000 upwards: 4% of the synthetic
loans between 40,100 and 42,600, past the real maximum. A released cell starts at a round value,
where caps, floors and popular amounts sit: the refinement now counts that value on its own.

Seattle's temperatures past 30 had 261 rows' mass for 63 real ones: the first release read it
high (the remainder exists because its noisy mass cleared the threshold), and its mass was spread
far past the real 35.6. The refinement's cells, an independent count of the same rows, now weigh
in by their inverse variances.

Post-processing of the same releases: the shaping tests draw no noise (their counts are exact,
their margins many noise standard deviations wide).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from synthdata.tabular.encoding import (REFINE_MISS, START, START_MARGIN, TabularEncoder, _column_ends, _combined_mass, _end_cells,
                                        _join_quiet_starts, _Lattice, _Piece, _refine_cells, _shape_column,
                                        _start_apart, _start_margin, _sub_cells)

HUNDREDS = _Lattice(1.0, 100, 0)  # whole numbers in steps of 100
CONTINUOUS = _Lattice(None, None, None)


def _loans(sigma: float) -> tuple[list[_Piece], list[tuple], frozenset, frozenset]:
    """Pieces of a loan amount column below 40,000 (released cells), and the top remainder
    [40,000, 99,900] (not a whole released cell: not proven), with its refinement cells."""
    pieces = [_Piece(1000, 9900, 2000.0, (), 1.0, 2, True), _Piece(10000, 19900, 3000.0, (), 1.0, 2, True),
              _Piece(20000, 29900, 2000.0, (), 1.0, 2, True), _Piece(30000, 39900, 1100.0, (), 1.0, 2, True),
              _Piece(40000, 99900, 440.0, (), 1.0, 3, False)]
    top = pieces[-1]
    marked = _start_apart(_end_cells(_sub_cells(top, HUNDREDS, _refine_cells(top.weight, sigma)),
                                     _column_ends(top, pieces)), HUNDREDS)
    cuts = [(4, cell) for cell, _ in marked]
    return (pieces, cuts, frozenset(k for k, (_, end) in enumerate(marked) if end is True),
            frozenset(k for k, (_, end) in enumerate(marked) if end == START))


def test_a_piece_s_first_value_is_a_cell_of_its_own_on_a_lattice():
    cells = [((40000, 59900), True), ((60000, 99900), False)]
    assert _start_apart(cells, HUNDREDS) == [((40000, 40000), START), ((40100, 59900), True), ((60000, 99900), False)]
    assert _start_apart([((5, 5), False)], HUNDREDS) == [((5, 5), False)]  # one value already
    assert _start_apart([((0.0, 1.0), False)], CONTINUOUS) == [((0.0, 1.0), False)]  # intervals: left as they are
    assert _start_apart([], HUNDREDS) == []


def test_a_quiet_first_value_is_joined_back_and_a_loud_one_stays():
    sigma = 50.0
    cuts = [(0, (40000, 40000)), (0, (40100, 59900)), (0, (60000, 99900)), (1, (100000, 100000)),
            (1, (100100, 199900))]
    starts, merged, sure = frozenset({0, 3}), frozenset({1}), frozenset({4})
    loud = START_MARGIN * sigma + 1.0
    quiet = START_MARGIN * sigma - 1.0
    out, counts, new_merged, new_sure = _join_quiet_starts(cuts, np.array([loud, 10.0, 5.0, quiet, 7.0]),
                                                           START_MARGIN * sigma, merged, sure, starts)
    assert out == [(0, (40000, 40000)), (0, (40100, 59900)), (0, (60000, 99900)), (1, (100000, 199900))]
    assert counts.tolist() == [loud, 10.0, 5.0, quiet + 7.0]
    assert new_merged == frozenset({1}) and new_sure == frozenset({3})
    # Without start cells nothing changes.
    same = _join_quiet_starts(cuts, np.ones(5), START_MARGIN * sigma, merged, sure, frozenset())
    assert same[0] == cuts and same[2] == merged and same[3] == sure


def test_a_cap_at_a_round_value_stays_the_cap_instead_of_spreading_past_it():
    """440 loans at exactly 40,000, nothing above: counted apart, 40,000 stands out (8.8 sd), the
    cells above it read nothing and are cut, and the piece is the one value 40,000 with its mass.
    Counted as one cell [40,000, 40,000 + ...] (the old cells), the mass spread past 40,000."""
    sigma = 50.0
    pieces, cuts, merged, starts = _loans(sigma)
    assert cuts[0][1] == (1000, 1000) or cuts[0][1][0] == 40000
    exact = np.array([440.0 if cell == (40000, 40000) else 0.0 for _, cell in cuts])
    assert 440.0 > 2 * START_MARGIN * sigma  # far from the rule's threshold
    joined = _join_quiet_starts(cuts, exact, START_MARGIN * sigma, merged, frozenset(), starts)
    shaped = _shape_column(pieces, joined[0], joined[1], sigma, HUNDREDS, joined[2], joined[3])
    trimmed = TabularEncoder()._trim_edges(shaped, HUNDREDS, None, 0.0, decay=True)
    top = max(trimmed, key=lambda p: p.high)
    assert (top.low, top.high) == (40000, 40000)
    assert abs(top.weight - 440.0) < 1e-6
    assert max(p.high for p in trimmed) == 40000
    # The old cells: the first refinement cell of the remainder holds the cap and the values beyond it.
    old = [(4, cell) for cell, _ in _end_cells(_sub_cells(pieces[-1], HUNDREDS, _refine_cells(440.0, sigma)),
                                                _column_ends(pieces[-1], pieces))]
    counts = np.array([440.0 if low <= 40000 <= high else 0.0 for _, (low, high) in old])
    spread = TabularEncoder()._trim_edges(_shape_column(pieces, old, counts, sigma, HUNDREDS), HUNDREDS, None, 0.0,
                                          decay=True)
    assert max(p.high for p in spread) > 40000


def test_a_refined_remainder_s_mass_reads_both_releases():
    """The first release's mass of an edge remainder (read after a selection: it exists because it
    cleared the threshold) and the refinement's cells summed are independent measurements of the
    same rows: combined by their inverse variances."""
    # Equal variances: the mean. 261 (first release, noise 100) and 79 (two cells of noise 70.7).
    mass, var = _combined_mass(261.0, 1.0, 100.0, [40.0, 39.0], 100.0 / np.sqrt(2.0))
    assert abs(mass - 170.0) < 1e-9 and abs(var - 0.5) < 1e-12
    # A far noisier refinement barely moves it; without a first noise level nothing changes.
    assert abs(_combined_mass(261.0, 1.0, 100.0, [79.0], 1000.0)[0] - 261.0) < 2.0
    assert _combined_mass(261.0, 1.0, 0.0, [79.0], 50.0) == (261.0, 1.0)
    assert _combined_mass(261.0, 1.0, 100.0, [], 50.0) == (261.0, 1.0)
    assert _combined_mass(10.0, 1.0, 100.0, [-500.0], 50.0)[0] == 0.0  # never below zero


def test_a_top_remainder_read_high_by_the_first_release_keeps_what_both_releases_say():
    """Seattle's temperatures past 30: the first release read 261 rows' mass (63 real), its cells
    summed 79. Shaped with the first release's noise level, the piece keeps the combined mass;
    a remainder both releases read as empty is left out (its mass is not moved elsewhere)."""
    tenths = _Lattice(0.1, 1, 1)
    pieces = [_Piece(100, 199, 669.0, (), 1.0, 2, True), _Piece(200, 299, 323.0, (), 1.0, 2, True),
              _Piece(300, 999, 261.0, (), 1.0, 3, True)]
    cuts = [(2, (300, 649)), (2, (650, 999))]
    noisy = np.array([79.0, 0.0])
    alone = _shape_column(pieces, cuts, noisy, 70.7, tenths)
    both = _shape_column(pieces, cuts, noisy, 70.7, tenths, first_sigma=100.0)
    top_alone = sum(p.weight for p in alone if p.low >= 300)
    top_both = sum(p.weight for p in both if p.low >= 300)
    assert abs(top_alone - 261.0) < 1e-6
    assert abs(top_both - (261.0 / 100.0**2 + 79.0 / (2 * 70.7**2)) / (1 / 100.0**2 + 1 / (2 * 70.7**2))) < 1e-6
    empty = _shape_column(pieces, cuts, np.array([-300.0, -200.0]), 70.7, tenths, first_sigma=100.0)
    assert not any(p.low >= 300 for p in empty)
    assert abs(sum(p.weight for p in empty) - (669.0 + 323.0)) < 1e-6


def test_the_first_values_margin_grows_with_the_table_s_start_cells():
    """One start cell standing out by chance is a false point mass of that many sd (5% of a loan
    amount's rows at one value on a 55-column table): the margin holds the chance of any, over the
    table, to REFINE_MISS."""
    assert _start_margin(0) == _start_margin(1) == START_MARGIN
    assert _start_margin(100) == NormalDist().inv_cdf(1 - REFINE_MISS / 100) > START_MARGIN
    assert _start_margin(1000) > _start_margin(100)
    # At the margin, the chance that any of the cells stands out by chance stays at most REFINE_MISS.
    for cells in (10, 100, 1000):
        assert cells * (1 - NormalDist().cdf(_start_margin(cells))) <= REFINE_MISS + 1e-12
