"""The benchmark suite's impossible-values metric (benchmarks/suite.py), on columns of every shape."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
suite = importlib.import_module("suite")  # benchmarks/suite.py: part of the repository, never skipped


def test_impossible_values_reads_measurements_lattices_and_times_of_day():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({
        "measure": rng.normal(size=200) * 3.14159265,  # 8+ decimals: no lattice, range only
        "halves": rng.integers(0, 20, 200) / 2,
        "departs": 100 * rng.integers(5, 24, 200) + rng.integers(0, 60, 200),  # 517 is 5:17
    })
    synthetic = pd.DataFrame({
        "measure": np.r_[real["measure"].to_numpy()[:190] * 0.5, np.full(10, 100.0)],
        "halves": np.r_[np.full(195, 2.5), np.full(5, 2.25)],
        "departs": np.r_[np.full(196, 1230), np.full(4, 1275)],  # 12:75 is no time
    })
    per = suite.impossible_values(real, synthetic)["per_column"]
    assert per["measure"]["lattice"] is None and per["measure"]["out_of_range"] == pytest.approx(10 / 200)
    assert per["measure"]["off_lattice"] == 0
    assert per["halves"]["lattice"] == "step 0.5" and per["halves"]["off_lattice"] == pytest.approx(5 / 200)
    assert per["departs"]["lattice"].endswith("times HHMM")
    assert per["departs"]["off_lattice"] == pytest.approx(4 / 200)
