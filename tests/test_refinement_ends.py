"""The refinement's cells at a column's ends (issue 11, session 8: shoppers' ExitRates).

A spread piece is cut into cells of about REFINE_MASS (2) noise standard deviations each, and
a column's end loses its cells while their counts, summed from the outside, stay under a
margin of about 3 sd (more with many cells). At 2 sd a cell, a smooth column's first cells
never stood out: the outer two or three were cut in most fits whatever the data (ExitRates'
[0.001, 0.0049) of its decade [0.001, 0.01): 4.6% of the rows, every fit). The cells at a
column's end are now merged into one of REFINE_END_MASS sd, cut flat by the density beside
it once kept. Post-processing of the same releases: these tests draw no noise.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from synthdata.tabular.encoding import (REFINE_END_MASS, REFINE_MASS, TabularEncoder, _column_ends, _end_cells,
                                        _Lattice, _Piece, _refine_cells, _shape_column, _sub_cells)

CONTINUOUS = _Lattice(None, None, None)


def _cells(piece: _Piece, others: list[_Piece], sigma: float) -> list[tuple[tuple, bool]]:
    return _end_cells(_sub_cells(piece, CONTINUOUS, _refine_cells(piece.weight, sigma)),
                      _column_ends(piece, [piece, *others]))


def test_an_even_column_keeps_its_end_once_the_end_cells_are_merged():
    """A decade's remainder [0, 1) of 2,000 rows spread evenly, a released piece above it. Cut
    into 10 cells of 2 sd, their exact counts (no noise) cut the first (at the margin of the 10
    cells its lower end can reach: the piece above stops it); merged, the end cell holds 6 sd and
    stays."""
    sigma = 100.0
    piece, above = _Piece(0.0, 1.0, 2000.0, (), 1.0, 3, True), _Piece(1.0, 2.0, 500.0, ())
    fine = _sub_cells(piece, CONTINUOUS, _refine_cells(piece.weight, sigma))
    assert len(fine) == 10

    def lowest(cells: list[tuple], merged: frozenset) -> float:
        noisy = np.array([piece.weight * (high - low) for low, high in cells])  # the exact counts: even
        out = _shape_column([piece, above], [(0, cell) for cell in cells], noisy, sigma, CONTINUOUS, merged)
        assert math.isclose(sum(p.weight for p in out), 2500.0)
        return min(p.low for p in out)

    assert lowest(fine, frozenset()) >= 0.1 - 1e-9  # the old cells: the first tenth of the piece lost, or more
    marked = _cells(piece, [above], sigma)
    group = math.ceil(REFINE_END_MASS / REFINE_MASS)
    assert marked[0] == ((0.0, fine[group - 1][1]), True)
    assert [cell for cell, end in marked[1:]] == fine[group:] and not any(end for _, end in marked[1:])
    assert lowest([cell for cell, _ in marked], frozenset({0})) == 0.0


def test_only_cells_at_a_column_end_are_merged():
    sigma = 100.0
    piece = _Piece(0.0, 1.0, 2000.0, (), 1.0, 3, True)
    # Released values below and above it: neither of its ends is the column's.
    inside = _cells(piece, [_Piece(-1.0, -1.0, 500.0, ()), _Piece(2.0, 2.0, 500.0, ())], sigma)
    assert len(inside) == 10 and not any(end for _, end in inside)
    # Alone, it is both ends of the column: merged at each.
    alone = _cells(piece, [], sigma)
    assert [end for _, end in alone] == [True] + [False] * (len(alone) - 2) + [True]
    assert alone[0][0][0] == 0.0 and alone[-1][0][1] == 1.0
    # Too few cells to merge (a small piece): left as it is.
    small = _Piece(0.0, 1.0, 500.0, (), 1.0, 3, True)
    assert [end for _, end in _cells(small, [], sigma)] == [False] * len(_cells(small, [], sigma))


def test_a_merged_end_cell_is_cut_flat_instead_of_filled_by_a_falling_density():
    """Temperatures in tenths (seattle weather's temp_min): the top end cell [14, 19.9] merged,
    real values to 18.3. Beside it the density falls, at a rate that cannot hold its mass: read as a
    falling tail it was filled whole (to 19.9); merged, it is cut where the density beside it would fill it."""
    tenths = _Lattice(0.1, 1, 1)
    below = [_Piece(87, 99, 47.0, (), 1.0, 2), _Piece(100, 119, 214.0, (), 1.0, 2), _Piece(120, 139, 100.0, (), 1.0, 2)]
    encoder = TabularEncoder()
    filled = encoder._trim_edges(below + [_Piece(140, 199, 197.0, (), 1.0, 2)], tenths, None, 0.0, decay=True)
    assert max(p.high for p in filled) == 199
    cut = encoder._trim_edges(below + [_Piece(140, 199, 197.0, (), 1.0, 2, merged=True)], tenths, None, 0.0,
                              decay=True)
    top = max(cut, key=lambda p: p.high)
    beside = sorted(cut, key=lambda p: p.high)[-4:-1]  # (the lowest is cut first, by the same rule)
    density = sum(p.weight for p in beside) / (beside[-1].high - beside[0].low + 1)
    assert (top.low, top.weight) == (140, 197.0) and top.high == 140 + round(197.0 / density) - 1 < 183
    assert top.tilt == 0.0


def test_a_tail_reaches_one_finer_cell_further_only_when_its_mass_needs_it_past_its_noise():
    """A decade's remainder past 3000 (none of its first-digit cells cleared the threshold 400):
    its mass needs at least ceil(mass / 400) of them. Read at face value, a remainder of 450 (the
    difference of several noisy counts: sd 30 x 2) reached into [4000, 5000) although 400 real rows
    at most fill [3000, 4000); it is read EDGE_MARGIN sd low, and the cap as many sd high (1 sd: 390
    against 430)."""
    from synthdata.schema import Column
    from synthdata.tabular.encoding import EDGE_MARGIN

    encoder = TabularEncoder()
    column = Column("duration", "numerical")
    lattice = encoder._lattice(column)
    resolutions = encoder._resolutions(column, lattice)
    encoder._threshold = 400.0
    sigma = 30.0
    tail = _Piece(3000.0, 10_000.0, 450.0, (), 4.0, len(resolutions) - 1)
    assert EDGE_MARGIN >= 1.0
    assert encoder._reach(tail, -1, lattice, resolutions, sigma) is None
    # A mass that needs three cells whatever its noise still reaches the third.
    heavy = replace(tail, weight=1200.0)
    assert encoder._reach(heavy, -1, lattice, resolutions, sigma) == 5000.0
