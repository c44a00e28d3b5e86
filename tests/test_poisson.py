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


# --------------------------------------------------------------------------- at scale: one pass, geometric skipping


def _grid(rows_per_block: list[int], steps: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """The rows x steps inclusion grid :func:`memberships` draws over consecutive blocks."""
    from synthdata.engines.poisson import memberships

    grid = np.zeros((sum(rows_per_block), steps), dtype=np.int64)
    position, first = None, 0
    for rows in rows_per_block:
        row, step, position = memberships(rows, steps, rate, rng, position)
        assert np.all((row >= 0) & (row < rows)) and np.all((step >= 0) & (step < steps))
        np.add.at(grid, (first + row, step), 1)
        first += rows
    return grid


@pytest.mark.parametrize("blocks, steps, rate", [([40], 25, 0.1), ([7, 13, 1, 19], 25, 0.1), ([300], 8, 0.02),
                                                 ([5, 5], 200, 0.5)])
def test_geometric_skipping_includes_each_row_at_each_step_independently_with_the_rate(blocks, steps, rate):
    """One pass over the table draws every step's batch; each (row, step) is the accountant's
    independent coin of probability ``rate``, across blocks of rows chained by the carried position."""
    rng = np.random.default_rng(0)
    trials = 1500
    rows = sum(blocks)
    total = np.zeros((rows, steps))
    same_step = same_row = 0.0
    sizes = []
    for _ in range(trials):
        grid = _grid(blocks, steps, rate, rng)
        assert grid.max() <= 1  # a row is in a step's batch at most once
        total += grid
        same_step += grid[0, 0] * grid[rows - 1, 0]  # two rows (in different blocks if any) at one step
        same_row += grid[rows - 1, 0] * grid[rows - 1, steps - 1]  # one row at two steps
        sizes.extend(grid.sum(axis=0))
    share = total / trials
    se = np.sqrt(rate * (1 - rate) / trials)
    assert abs(share.mean() - rate) < 5 * se / np.sqrt(share.size)
    for part in (share[:, 0], share[:, -1], share[0, :], share[-1, :], share[rows - blocks[-1]:, :].ravel()):
        assert abs(part.mean() - rate) < 5 * se / np.sqrt(part.size) + 1e-12
    sizes = np.asarray(sizes, dtype=float)  # each step's batch size: Binomial(rows, rate)
    assert abs(sizes.mean() - rows * rate) < 5 * np.sqrt(rows * rate * (1 - rate) / len(sizes))
    assert 0.85 < sizes.var() / (rows * rate * (1 - rate)) < 1.15
    for both in (same_step, same_row):
        assert abs(both / trials - rate**2) < 5 * np.sqrt(rate**2 / trials) + 1e-3


def test_geometric_skipping_draws_from_the_generator_it_is_given():
    from synthdata.engines.poisson import memberships

    a = memberships(1000, 50, 0.01, np.random.default_rng(3))
    b = memberships(1000, 50, 0.01, np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = memberships(1000, 50, 0.01, np.random.default_rng(4))
    assert not (len(a[0]) == len(c[0]) and np.array_equal(a[0], c[0]))
    with pytest.raises(ValueError):
        memberships(10, 5, 0.0, np.random.default_rng(0))


def test_batches_drawn_in_one_pass_come_back_step_by_step(tmp_path):
    """The codes file's rows, sampled by one pass, read back grouped by step, in step order;
    the steps the plan asked for, no more."""
    import torch

    from synthdata.engines.local import LocalCodes
    from synthdata.privacy import NoiseSource

    rows, steps, rate = 5000, 37, 0.01
    codes = LocalCodes(width=2, dtype=np.uint16, directory=str(tmp_path))
    identity = np.stack([np.arange(rows) // 256, np.arange(rows) % 256], axis=1)
    for start in range(0, rows, 1500):
        codes.append(identity[start:start + 1500])
    offsets = np.array([0, 1000])
    try:
        batches = codes.real_units(offsets=offsets, device=torch.device("cpu"), noise=NoiseSource(seed=1), rate=rate,
                                   steps=steps)
        seen = []
        for _ in range(steps):
            batch, group, size = batches.sample(None, rate)
            assert group is None and size == batch.shape[0]
            row = (batch[:, 0] * 256 + batch[:, 1] - 1000).numpy()
            assert len(np.unique(row)) == len(row)
            seen.append(len(row))
        assert abs(np.mean(seen) - rows * rate) < 5 * np.sqrt(rows * rate / steps)
        with pytest.raises(RuntimeError, match="more"):
            batches.sample(None, rate)
    finally:
        codes.close()
    assert not any(tmp_path.iterdir())  # the real rows' codes are gone
