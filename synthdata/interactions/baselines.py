"""Simple private baselines a synthetic interaction release must beat.

* :func:`dp_popularity` — the whole budget on one thresholded histogram of items, selected
  by the release's own catalogue mechanism (:func:`~synthdata.interactions.estimator.select_catalogue`:
  each user counting at most ``k`` items weighted to unit L2 norm, in two passes — internal
  scores, then each user's weight on their top-scored items — when the population is small
  for the budget): recommend the most popular released items. The same selection as the
  release, so the baseline is the best simple private method we have, not a weaker one.
* :func:`dp_cooccurrence` — a thresholded item histogram and, among its top items, the
  weighted pair counts (each user's pairs scaled to unit L2 norm): recommend by the sum of
  the noisy co-occurrence with the user's items, popularity breaking ties.

Both are DP releases in their own right (own ledger, same unit: one user), so a
recommender built from them is what an analyst could get from the same budget without
any synthetic data.
"""

from __future__ import annotations


import numpy as np
import scipy.sparse as sp

from ..errors import DataError
from ..privacy import NoiseSource, PrivacyLedger
from .data import Baskets
from .estimator import MAX_PAIR_ITEMS, THRESHOLD_DELTA_SHARE, plan_catalogue, select_catalogue

__all__ = ["CooccurrenceRecommender", "dp_cooccurrence", "dp_popularity"]


#: The baselines take two passes up to k' = 16 (the release: 4): more items at epsilon 4 (27-33 against
#: 21-23 on Online Retail) and a popularity list as good or better; only the catalogue matters to them.
MAX_TOP = 16


def _ledger(epsilon: float, delta: float, seed: int | None) -> PrivacyLedger:
    return PrivacyLedger(epsilon=epsilon, delta=delta, threshold_delta=delta * THRESHOLD_DELTA_SHARE,
                         noise=NoiseSource(seed=seed))


def _catalogue(baskets: Baskets, ledger: PrivacyLedger, cap: int, top: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the released items in ``baskets.items``, most popular first; their noisy counts)."""
    if top is not None:
        top = min(top, cap)
    order, counts, _ = select_catalogue(baskets.matrix, ledger, cap, top)
    return order, counts


def _users(baskets: Baskets, ledger: PrivacyLedger) -> float:
    """The DP user count that plans the catalogue (discrete Laplace, a small pure-epsilon part)."""
    return float(ledger.noisy_count("user count", len(baskets), epsilon=min(0.05 * ledger.epsilon, 0.1)))


def dp_popularity(baskets: Baskets, *, epsilon: float, delta: float = 1e-6, cap: int = 64,
                  seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(released items, their noisy counts), most popular first; the whole budget on the histogram."""
    ledger = _ledger(epsilon, delta, seed)
    top = plan_catalogue(ledger, {"catalogue": 1.0}, _users(baskets, ledger), max_top=MAX_TOP)
    order, counts = _catalogue(baskets, ledger, cap, top)
    return baskets.items[order], counts


class CooccurrenceRecommender:
    """Scores from noisy co-occurrence among the top items; noisy popularity for the rest and for ties."""

    name = "dp-cooccurrence"

    def __init__(self, popularity: np.ndarray, pairs: np.ndarray, top: int) -> None:
        self.popularity = np.asarray(popularity, dtype=float)
        matrix = np.zeros((len(popularity), len(popularity)))
        upper = np.triu_indices(top, 1)
        matrix[upper] = pairs
        matrix = matrix + matrix.T
        self.matrix = matrix

    def score(self, query: sp.csr_matrix) -> np.ndarray:
        scale = max(self.popularity.max(), 1.0)
        return np.asarray(query @ self.matrix) + 1e-3 * self.popularity / scale


def dp_cooccurrence(baskets: Baskets, *, epsilon: float, delta: float = 1e-6, cap: int = 64,
                    seed: int | None = None) -> tuple[np.ndarray, CooccurrenceRecommender]:
    """(released items, a recommender from their noisy popularity and co-occurrence): half the budget each."""
    ledger = _ledger(epsilon, delta, seed)
    top = plan_catalogue(ledger, {"catalogue": 0.5, "cooccurrence": 0.5}, _users(baskets, ledger), max_top=MAX_TOP)
    order, counts = _catalogue(baskets, ledger, cap, top)
    if len(order) < 2:
        raise DataError("no item survives the catalogue threshold at this budget")
    top = min(len(order), MAX_PAIR_ITEMS)
    sub = sp.csr_matrix(baskets.matrix[:, order[:top]], dtype=np.float64)
    held = np.diff(sub.indptr)
    pairs = held * (held - 1) / 2.0
    weights = np.where(pairs > 0, 1.0 / np.sqrt(np.maximum(pairs, 1.0)), 0.0)
    gram = (sub.T @ sp.diags(weights) @ sub).toarray()
    noisy = ledger.noisy("cooccurrence", gram[np.triu_indices(top, 1)], sensitivity=1.0)
    return baskets.items[order], CooccurrenceRecommender(counts, noisy, top)
