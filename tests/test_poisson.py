"""Training primitives whose privacy rests on a distribution: the Poisson sampler."""

from __future__ import annotations

import numpy as np
import pytest

from synthdata.privacy import poisson_sample


@pytest.mark.parametrize("n, rate", [(50, 0.1), (2000, 0.03), (40_000, 1024 / 32_561)])
def test_poisson_sample_includes_each_row_independently_with_the_rate(n, rate):
    """What the accountant assumes: n independent coin flips of probability ``rate``."""
    rng = np.random.default_rng(0)
    trials = 4000 if n < 40_000 else 400
    included = np.zeros(n)
    both = 0  # rows 0 and 1 together: independence, not just the right marginal
    sizes = []
    for _ in range(trials):
        index = poisson_sample(n, rate, rng)
        assert len(np.unique(index)) == len(index)  # no row twice
        assert index.min(initial=0) >= 0 and index.max(initial=0) < n
        included[index] += 1
        both += bool(np.isin([0, 1], index).all())
        sizes.append(len(index))
    sizes = np.array(sizes)
    # Batch size: Binomial(n, rate).
    assert abs(sizes.mean() - n * rate) < 5 * np.sqrt(n * rate * (1 - rate) / trials)
    assert 0.8 < sizes.var() / (n * rate * (1 - rate)) < 1.25
    # Each row's inclusion frequency, on average and at both ends of the index range.
    share = included / trials
    se = np.sqrt(rate * (1 - rate) / trials)
    assert abs(share.mean() - rate) < 5 * se / np.sqrt(n)
    for part in (share[: n // 10], share[-(n // 10):]):
        assert abs(part.mean() - rate) < 5 * se / np.sqrt(len(part))
    if n < 40_000:
        assert abs(both / trials - rate**2) < 5 * np.sqrt(rate**2 / trials) + 1e-3


def test_poisson_sample_can_be_empty_and_is_seeded():
    rng = np.random.default_rng(1)
    assert any(len(poisson_sample(20, 0.01, rng)) == 0 for _ in range(100))
    a = poisson_sample(1000, 0.1, np.random.default_rng(5))
    b = poisson_sample(1000, 0.1, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
