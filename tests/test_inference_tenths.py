"""Inference's lattice of tenths (issue 11, session 9): odd tenths must clear the noise."""

from __future__ import annotations

import numpy as np

from synthdata.tabular.inference import DECIMAL1, EVEN_TENTH, SHAPES, _step


def test_odd_tenths_must_clear_the_noise_to_make_a_lattice_of_a_tenth():
    """SpecialDay (0, 0.2 ... 1.0): ~870 even tenths, no odd one; noise sd ~110. Odd tenths read at
    187 (past a quarter of the even ones, 1.7 sd) made its lattice 0.1 in 2 of 48 fits."""
    shape = np.zeros(len(SHAPES))
    shape[EVEN_TENTH], shape[DECIMAL1] = 715.0, 187.0
    assert _step(shape, 108.8, 9900.0) == 0.2
    shape[DECIMAL1] = 600.0  # odd tenths as many as that: a lattice of 0.1
    assert _step(shape, 108.8, 9900.0) == 0.1
