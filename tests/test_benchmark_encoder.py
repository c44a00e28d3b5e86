"""benchmarks/encoder.py: the encoder alone, stopped where the fit measures the pair marginals."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
encoder_benchmark = importlib.import_module("encoder")  # part of the repository, never skipped


def _table(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "age": rng.integers(20, 70, n),
        "amount": np.round(rng.lognormal(4, 1, n), 2),
        "day": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
        "city": rng.choice(["Oslo", "Lima", "Pune"], n),
    })


def test_the_encoder_is_fitted_privately_and_its_columns_drawn_against_the_real_ones():
    frame = _table()
    frame["day"] = frame["day"].dt.strftime("%Y-%m-%d")
    encoder = encoder_benchmark.fit_encoder(frame, epsilon=5.0, noise_seed=3)
    assert [code.name for code in encoder.codes_] == ["age", "amount", "day", "city"]
    figures = encoder_benchmark.column_figures(encoder, frame, seed=0, draws=5000)
    assert set(figures) == {"age", "amount", "day"}  # numbers and dates, not categories
    for name, figure in figures.items():
        assert 0.0 <= figure["tvd"] < 0.2, (name, figure)  # 3,000 rows at epsilon 5: close to the real column
        assert 0.0 <= figure["out_of_range"] <= 0.05, (name, figure)
    # The same noise seed is the same encoder (the benchmark's pairing); another seed is not.
    again = encoder_benchmark.fit_encoder(frame, epsilon=5.0, noise_seed=3)
    other = encoder_benchmark.fit_encoder(frame, epsilon=5.0, noise_seed=4)
    assert [c.counts for c in again.codes_] == [c.counts for c in encoder.codes_]
    assert [c.counts for c in other.codes_] != [c.counts for c in encoder.codes_]


def test_seed_ranges_are_read_as_the_help_says():
    assert encoder_benchmark._seeds("1000-1002,7") == [1000, 1001, 1002, 7]
