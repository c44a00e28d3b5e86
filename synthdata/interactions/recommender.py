"""Recommenders for the audit, and their evaluation on held-out real users.

The audit's question is the analyst's: does a recommender trained on the synthetic
interactions serve real users as well as one trained on the real interactions (or as a
private popularity list)? Three recommenders, all scoring the items of one item space:

* :class:`ALSRecommender` — implicit-feedback matrix factorisation (Hu, Koren & Volinsky
  2008) from the ``implicit`` package; a held-out user is *folded in* from their query
  items (one least-squares solve), never trained on;
* :class:`ItemKNN` — cosine item-item similarity; a user's score for an item is the sum
  of its similarities to the user's query items (used where ``implicit`` is missing);
* :class:`Popularity` — one fixed ranking (e.g. DP item counts).

:func:`evaluate` splits every held-out user's items into a query (80%) and a target
(20%, at least one), recommends 10 items not in the query, and scores recall@10
(hits / min(10, target size)) and NDCG@10 per user. Each per-user figure is in [0, 1], so
a sum over users moves by at most one when one user is added or removed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["ALSRecommender", "ItemKNN", "Popularity", "Queries", "evaluate", "make_queries", "recommender"]

TOP_K = 10


class Popularity:
    """Recommend by a fixed score per item (e.g. DP counts)."""

    name = "popularity"

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=float)

    def score(self, query: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.scores, (query.shape[0], 1))


class ItemKNN:
    """Cosine item-item similarity from a users x items matrix."""

    name = "item-knn"

    def __init__(self, interactions: sp.csr_matrix) -> None:
        matrix = sp.csr_matrix(interactions, dtype=np.float64)
        cooc = (matrix.T @ matrix).toarray()
        norm = np.sqrt(np.diag(cooc)) + 1e-9
        self.similarity = cooc / norm[:, None] / norm[None, :]
        np.fill_diagonal(self.similarity, 0.0)
        self.popularity = np.asarray(matrix.sum(0)).ravel()

    def score(self, query: sp.csr_matrix) -> np.ndarray:
        return np.asarray(query @ self.similarity) + 1e-9 * self.popularity  # ties: the more popular first


class ALSRecommender:
    """Implicit-feedback ALS (``implicit``); held-out users folded in from their query items."""

    name = "als"

    def __init__(self, interactions: sp.csr_matrix, *, factors: int = 32, regularization: float = 0.1,
                 alpha: float = 10.0, iterations: int = 15, seed: int = 0) -> None:
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        self.alpha, self.regularization = alpha, regularization
        matrix = sp.csr_matrix(interactions, dtype=np.float32)
        with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads would fight them
            model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                            iterations=iterations, random_state=seed, use_gpu=False,
                                            num_threads=1)
            model.fit(matrix, show_progress=False)
        self.items = np.asarray(model.item_factors, dtype=np.float64)
        self.gram = self.items.T @ self.items
        self.popularity = np.asarray(matrix.sum(0)).ravel()

    def score(self, query: sp.csr_matrix) -> np.ndarray:
        k = self.items.shape[1]
        out = np.zeros((query.shape[0], self.items.shape[0]))
        for u in range(query.shape[0]):
            held = query.indices[query.indptr[u]:query.indptr[u + 1]]
            if len(held) == 0:
                out[u] = self.popularity
                continue
            factors = self.items[held]
            a = self.gram + self.alpha * factors.T @ factors + self.regularization * np.eye(k)
            x = np.linalg.solve(a, (1.0 + self.alpha) * factors.sum(0))
            out[u] = self.items @ x + 1e-9 * self.popularity
        return out


def recommender(interactions: sp.csr_matrix, *, seed: int = 0):
    """The audit's recommender: ALS when ``implicit`` is installed and the data supports it, else item-kNN."""
    users, items = interactions.shape
    if users >= 2 and items >= 2:
        try:
            return ALSRecommender(interactions, factors=min(32, max(2, items - 1)), seed=seed)
        except ImportError:
            pass
    return ItemKNN(interactions)


class Queries:
    """Held-out users' items split into a query (what the recommender sees) and a target (what it must find)."""

    def __init__(self, query: list[np.ndarray], target: list[np.ndarray], items: np.ndarray) -> None:
        self.query, self.target, self.items = query, target, items

    def __len__(self) -> int:
        return len(self.query)

    def query_matrix(self, model_items: np.ndarray) -> sp.csr_matrix:
        """The queries as a users x ``model_items`` matrix (items the model does not know are dropped)."""
        import pandas as pd

        index = pd.Index(model_items)
        rows, cols = [], []
        for u, items in enumerate(self.query):
            position = index.get_indexer(self.items[items])
            position = position[position >= 0]
            rows.append(np.full(len(position), u))
            cols.append(position)
        rows = np.concatenate(rows) if rows else np.zeros(0, int)
        cols = np.concatenate(cols) if cols else np.zeros(0, int)
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(self.query), len(model_items)))


def make_queries(holdout: sp.csr_matrix, items: np.ndarray, *, seed: int, target_share: float = 0.2) -> Queries:
    """Each held-out user with two or more items: a random ``target_share`` of them (at least one) to find."""
    rng = np.random.default_rng([seed, 12])
    query, target = [], []
    for u in range(holdout.shape[0]):
        held = holdout.indices[holdout.indptr[u]:holdout.indptr[u + 1]].copy()
        if len(held) < 2:
            continue
        rng.shuffle(held)
        cut = max(1, int(round(target_share * len(held))))
        target.append(held[:cut])
        query.append(held[cut:])
    return Queries(query, target, items)


def evaluate(model, model_items: np.ndarray, queries: Queries, *, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """Per held-out user: recall@k and NDCG@k of ``model`` (whose items are ``model_items``)."""
    import pandas as pd

    recall = np.zeros(len(queries))
    ndcg = np.zeros(len(queries))
    if len(queries) == 0 or len(model_items) == 0:
        return recall, ndcg
    query = queries.query_matrix(model_items)
    index = pd.Index(model_items)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for start in range(0, len(queries), 256):
        block = query[start:start + 256]
        scores = np.asarray(model.score(block), dtype=float)
        scores[block.nonzero()] = -np.inf  # never recommend what the user already holds
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        for row, u in enumerate(range(start, min(start + 256, len(queries)))):
            wanted = index.get_indexer(queries.items[queries.target[u]])
            hits = np.isin(top[row], wanted[wanted >= 0])
            found = min(k, len(queries.target[u]))
            recall[u] = hits.sum() / found
            ndcg[u] = float((hits * discounts[:len(hits)]).sum() / discounts[:found].sum())
    return recall, ndcg
