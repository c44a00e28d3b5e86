"""Whole numbers are not read as decimals on one noisy shape count (issue 11, session 14).

At epsilon 1 the schema's shape counts carry noise of ~140 rows a cell on the online-shoppers
table; with the decimals' minority margin at 4 sd, one of a column's five fractional cells
cleared it by chance often enough that a column of whole-number codes was read as decimals in
1 or 2 of 40 releases of a table (``Browser``, ``TrafficType``, Adult's ``hours_per_week``), and
its synthetic values came out between the codes. Decimals now need 4.5 sd.
"""

from __future__ import annotations

import numpy as np

from synthdata.tabular.inference import (DECIMAL1, DECIMAL2, DECIMAL3, EVEN_TENTH, INTEGER, SHAPES, ZERO,
                                         _decide)

SIGMA = 143.6  # a shape count's noise on shoppers at epsilon 1 (18 columns)


def _shape(**cells: float) -> np.ndarray:
    shape = np.zeros(len(SHAPES))
    shape[INTEGER] = 9800.0
    for code, value in cells.items():
        shape[{"decimal1": DECIMAL1, "decimal2": DECIMAL2, "decimal3": DECIMAL3, "even_tenth": EVEN_TENTH}[code]] = value
    return shape


def test_one_fractional_cell_at_noise_level_leaves_whole_numbers_whole():
    # Browser at one noise seed: 592 rows of "three decimals" (4.1 sd) beside 9,800 whole numbers.
    column = _decide("Browser", _shape(decimal3=4.1 * SIGMA, decimal2=2.4 * SIGMA), 13.0, SIGMA)
    assert column.type == "numerical" and column.integer and column.step is None


def test_decimals_that_stand_out_are_still_read():
    column = _decide("rate", _shape(decimal2=8.0 * SIGMA), 900.0, SIGMA)  # 12% of the rows: real
    assert column.type == "numerical" and not column.integer and column.step == 0.01
    # Tenths, even and odd, each under the margin but clear together: read as tenths.
    column = _decide("score", _shape(even_tenth=4.2 * SIGMA, decimal1=4.2 * SIGMA), 60.0, SIGMA)
    assert not column.integer and column.step == 0.1


def test_decimals_outnumbering_the_whole_numbers_keep_the_minority_margin():
    """A small table's measurements (569 rows of 3-5 decimals at ~4 sd): no whole numbers clear the
    noise, so the decimals are read at the minority margin, as before."""
    sigma = 140.0
    shape = np.zeros(len(SHAPES))
    shape[DECIMAL3] = 4.2 * sigma
    column = _decide("worst symmetry", shape, 500.0, sigma)
    assert column.type == "numerical" and not column.integer and column.step is None
    # Rain: zeros on most days say nothing of a lattice; its tenths outnumber its whole millimetres.
    rain = np.zeros(len(SHAPES))
    rain[ZERO], rain[INTEGER], rain[DECIMAL1] = 6.0 * sigma, 2.0 * sigma, 4.2 * sigma
    column = _decide("precipitation", rain, 110.0, sigma)
    assert not column.integer and column.step == 0.1
