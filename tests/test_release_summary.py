"""The lines ``synthdata release`` prints at the end (issue 11: what a new user reads first)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from synthdata.cli import release_summary


def _result(utility: dict | None) -> SimpleNamespace:
    predicate = {
        "modality": "table",
        "privacy": {"epsilon": 1.0, "epsilon_spent": 1.0, "delta": 1e-6, "unit": "one row of the input"},
        "data": {"rows_synthetic": 799},
        "audit": {"figures": {"ml_utility": utility}, "verdict": "no leak detected"},
    }
    return SimpleNamespace(predicate=predicate, directory=Path("/tmp/release"),
                           steward_directory=Path("/tmp/release.steward-audit"), key_created=False,
                           public_key_path=Path("/tmp/key.pub.pem"))


def test_the_noisy_utility_figure_comes_with_its_noise_and_the_majority_baseline():
    # On a 944-row survey the DP accuracy read 0.187 on a binary target: without its noise
    # (std 0.2 on ~150 holdout rows) and what guessing scores, it reads as a broken model.
    lines = release_summary(_result({"accuracy": 0.187, "accuracy_noise_std": 0.213,
                                     "majority_class_accuracy": 0.602, "holdout_units": 150}))
    line = next(line for line in lines if "utility (DP figure)" in line)
    assert "scores 0.187 accuracy (noise std 0.213) on real holdout rows" in line
    assert line.endswith("; always guessing the most common class: 0.602")


def test_the_utility_line_without_a_majority_figure_still_reads():
    lines = release_summary(_result({"accuracy": 0.9, "accuracy_noise_std": 0.01}))
    line = next(line for line in lines if "utility (DP figure)" in line)
    assert line.endswith("0.900 accuracy (noise std 0.010) on real holdout rows")


def test_no_utility_line_without_a_target():
    assert not any("utility" in line for line in release_summary(_result(None)))


def _capped(dropped: float, std: float) -> SimpleNamespace:
    result = _result(None)
    result.predicate["data"]["privacy_unit"] = {
        "max_rows": 8, "noun": "customer", "cap": "with DP (the smallest power of two ...)",
        "rows_dropped_by_cap_dp": dropped, "estimates_noise_std": {"dropped": std}}
    return result


def test_a_dropped_row_estimate_inside_its_noise_says_it_cannot_tell():
    # Customers with 1-6 rows under a cap of 8: nothing was dropped, and the DP estimate
    # read 2,896 with noise std 1,847; printed bare it reads as thousands of rows lost.
    line = next(line for line in release_summary(_capped(2896.0, 1847.0)) if "cap:" in line)
    assert "about 2,896 rows (a DP estimate, noise std 1,847; too noisy to tell from none)" in line
    line = next(line for line in release_summary(_capped(9000.0, 1847.0)) if "cap:" in line)
    assert line.endswith("about 9,000 rows (a DP estimate, noise std 1,847)")
