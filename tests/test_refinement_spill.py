"""A refined remainder's end cells cut away: their mass stays beside the kept cells, not in them
(issue 11, session 16).

Seattle's maximum temperatures from 20 degrees (about 40% of 1,461 days, to 35.6) were a released
cell [20, 29.9] whose refinement cells read 175, 142, 95 and 85 rows at a noise of 52: summed from
the column's top (with the empty cell past 30) none stood out of the end test's margin but the
first, so the others were cut, and the remainder's whole measured mass (440 rows) went into
[20.0, 22.4]. Four times denser than the cells below it, the edge rules then read it as a cap:
every synthetic day from 20 degrees up was exactly 20.0 (the column's 1-way TVD 0.52). The kept
cell now keeps what it counted; the rest is a piece over the cut cells, which the edge rules cut by
the density beside it. Post-processing: no noise is drawn here.
"""

from __future__ import annotations

import numpy as np

from synthdata.tabular.encoding import REFINE_MARGIN, TabularEncoder, _Lattice, _Piece, _shape_column, _spill_past_cut

TENTHS = _Lattice(0.1, 1, 1)


def test_the_mass_a_kept_end_cell_did_not_count_goes_past_it_over_the_cut_cells():
    sigma = 52.0
    kept = _Piece(200, 224, 439.5, (), 1.0, 2)
    cut = [(225, 249), (250, 274), (275, 299)]
    out = _spill_past_cut([(kept, 0)], cut, np.array([175.0]), sigma, mass_sd=40.0, lattice=TENTHS,
                          beside=[(100, 199)])
    assert [(p.low, p.high) for p in sorted(out, key=lambda p: p.low)] == [(200, 224), (225, 299)]
    weights = {p.low: p.weight for p in out}
    assert weights[200] == 175.0 and abs(weights[225] - 264.5) < 1e-9
    assert abs(sum(p.var for p in out) - kept.var) < 1e-12  # the noise variance is shared, not made up
    # Below the column's lowest kept cell, the same, downwards.
    low = _spill_past_cut([(_Piece(300, 324, 439.5, (), 1.0, 2), 0)], [(250, 274), (275, 299)], np.array([175.0]),
                          sigma, mass_sd=40.0, lattice=TENTHS, beside=[(400, 499)])
    assert sorted((p.low, p.high) for p in low) == [(250, 299), (300, 324)]
    # Another kept cell of the remainder, inward, is a density to cut by as well.
    two = _spill_past_cut([(_Piece(175, 199, 100.0, (), 0.5, 2), 1), (kept, 0)], cut, np.array([175.0, 90.0]),
                          sigma, mass_sd=40.0, lattice=TENTHS)
    assert sorted((p.low, p.high) for p in two) == [(175, 199), (200, 224), (225, 299)]


def test_a_kept_cell_with_no_spread_piece_inward_keeps_its_mass():
    """The kept cell and the excess would be each other's only neighbour: the edge rules then cut each
    by the other's density (a 944-row table's ages 19-91 came out as 63 and 64). Nothing moves."""
    kept = _Piece(200, 224, 439.5, (), 1.0, 2)
    assert _spill_past_cut([(kept, 0)], [(225, 299)], np.array([175.0]), 52.0, mass_sd=40.0, lattice=TENTHS) == [kept]
    # Spread pieces past it (not inward) do not count; exact values (one value each) do not either.
    assert _spill_past_cut([(kept, 0)], [(225, 299)], np.array([175.0]), 52.0, mass_sd=40.0, lattice=TENTHS,
                           beside=[(300, 399)]) == [kept]


def test_a_cell_that_counted_its_mass_keeps_it():
    """A cap: the kept cell's own count is its share (within the margin): nothing is moved."""
    sigma = 52.0
    kept = _Piece(200, 224, 439.5, (), 1.0, 2)
    within = 439.5 - REFINE_MARGIN * np.hypot(40.0, sigma) + 1.0
    for count in (439.5, within, 600.0):
        out = _spill_past_cut([(kept, 0)], [(225, 999)], np.array([count]), sigma, mass_sd=40.0, lattice=TENTHS,
                              beside=[(100, 199)])
        assert out == [kept]
    assert _spill_past_cut([(kept, 0)], [], np.array([0.0]), sigma, mass_sd=40.0, lattice=TENTHS) == [kept]


def test_seattle_s_hot_days_are_not_one_value():
    """The fit's own numbers (ε = 1, a test noise seed): before, the top was [20.0] with 439.5."""
    sigma, first_sigma = 51.64, 41.28
    pieces = [_Piece(100, 199, 646.6, (), 1.0, 2, True, group=0), _Piece(200, 299, 423.9, (), 1.0, 2, True, group=1),
              _Piece(300, 999, 152.2, (), 3.0, 3, False, group=2)]
    cuts = [(0, (100, 149)), (0, (150, 166)), (0, (167, 182)), (0, (183, 199)), (1, (200, 224)), (1, (225, 249)),
            (1, (250, 274)), (1, (275, 299)), (2, (300, 999))]
    noisy = np.array([244.0, 101.0, 64.0, 104.0, 175.0, 142.0, 95.0, 85.0, -59.0])
    shaped = _shape_column(pieces, cuts, noisy, sigma, TENTHS, frozenset({0}), frozenset(), first_sigma=first_sigma)
    total = sum(p.weight for p in shaped)
    trimmed = TabularEncoder()._trim_edges(shaped, TENTHS, decay=True)
    top = max(trimmed, key=lambda p: p.high)
    assert abs(sum(p.weight for p in trimmed) - total) < 1e-6
    assert top.high > top.low, top  # spread, not one value
    assert 224 < top.high <= 299  # past the first cell, inside the released cell [20, 29.9]
    hot = sum(p.weight for p in trimmed if p.low >= 200)
    assert hot < 0.45 * total and max(p.weight for p in trimmed if p.low >= 200) < 0.7 * hot
