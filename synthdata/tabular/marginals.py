"""The 2-way marginals the generator is fitted to, selected and measured with differential privacy.

Noisy scores pick the column pairs whose joint distribution the 1-way marginals explain
worst, then those pairs' 2-way marginals are measured with the Gaussian mechanism (one
release each, charged to the ledger). Training the generator to match them is
post-processing (as in GEM, Liu et al. 2021, and RAP, Aydore et al. 2021). Unmeasured
pairs pull gently towards independence, the maximum-entropy default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..privacy import PrivacyLedger
from .encoding import TabularEncoder

__all__ = ["PRIOR_WEIGHT", "MeasuredMarginals", "measure_marginals"]


@dataclass(frozen=True)
class MeasuredMarginals:
    """2-way targets for the generator: (columns i, j, noisy shares per coarse cell, weight).

    Measured pairs weigh 1; unmeasured pairs carry the independence prior at
    :data:`PRIOR_WEIGHT`. The 1-way targets are the encoder's released counts.
    """

    two_way: list[tuple[int, int, np.ndarray, float]]

    def to_dict(self) -> dict:
        return {"two_way": [[i, j, t.tolist(), w] for i, j, t, w in self.two_way]}

    @classmethod
    def from_dict(cls, data: dict) -> MeasuredMarginals:
        return cls(two_way=[(i, j, np.asarray(t), float(w)) for i, j, t, w in data["two_way"]])



def measure_marginals(codes: np.ndarray, encoder: TabularEncoder, *, ledger: PrivacyLedger, rows: float,
                      max_pairs: int, unit_rows: int = 1) -> MeasuredMarginals:
    """Select the informative column pairs and measure their 2-way marginals (both charged).

    Spends the ledger's planned ``"selection"`` and ``"marginals"`` noise; ``rows`` is the
    DP count of rows, which scales the independence prediction. ``unit_rows``: the most
    rows one unit of privacy holds.
    """
    coarse = np.stack([np.asarray(code.coarse)[codes[:, j]] for j, code in enumerate(encoder.codes_)], axis=1)
    coarse_sizes = [code.coarse_size for code in encoder.codes_]
    pairs = [(i, j) for i in range(len(coarse_sizes)) for j in range(i + 1, len(coarse_sizes))
             if coarse_sizes[i] > 1 and coarse_sizes[j] > 1]
    if not pairs:
        return MeasuredMarginals(two_way=[])

    # What 1-way marginals alone predict for each pair (independence), from released counts.
    shares = []
    for code in encoder.codes_:
        mass = np.zeros(code.coarse_size)
        np.add.at(mass, code.coarse, np.maximum(code.counts, 0))
        shares.append(mass / max(mass.sum(), 1e-9))
    if max_pairs <= 0:  # no budget for 2-way marginals: independence, and nothing spent
        return MeasuredMarginals(two_way=_independent(pairs, [], shares))
    tables = {(i, j): _pair_counts(coarse, i, j, coarse_sizes) for i, j in pairs}

    # Selection: every pair's L1 error under independence, released with Gaussian noise.
    # One row moves each score by at most 1, so the score vector has L2 sensitivity √pairs
    # (times the rows one unit may hold).
    scores = np.array([np.abs(tables[p] - rows * np.outer(shares[p[0]], shares[p[1]]).ravel()).sum()
                       for p in pairs])
    noisy_scores = ledger.noisy("selection", scores, sensitivity=unit_rows * math.sqrt(len(pairs)),
                                mechanism="Gaussian noise on pair scores (report noisy top-k)",
                                parameters={"pairs_scored": len(pairs)})
    measure_multiplier = ledger.planned_multiplier("marginals") * unit_rows

    # Post-processing of the noisy scores: choose how many pairs to measure so the
    # expected dependence captured beats the noise that measuring more pairs adds.
    cells = np.array([coarse_sizes[i] * coarse_sizes[j] for i, j in pairs], dtype=float)
    best_k, best_gain, best_order = 0, 0.0, np.array([], dtype=int)
    for k in range(1, min(max_pairs, len(pairs)) + 1):
        noise_l1 = math.sqrt(2 / math.pi) * measure_multiplier * math.sqrt(k) * cells
        net = noisy_scores - noise_l1
        order = np.argsort(-net)[:k]
        gain = float(np.sum(np.maximum(net[order], 0)))
        if gain > best_gain:
            best_k, best_gain, best_order = k, gain, order
    if best_k == 0:
        return MeasuredMarginals(two_way=_independent(pairs, [], shares))

    chosen = [pairs[index] for index in best_order]
    exact = np.concatenate([tables[pair] for pair in chosen])
    noisy = ledger.noisy("marginals", exact, sensitivity=unit_rows * math.sqrt(len(chosen)), integer=True,
                         mechanism="Gaussian mechanism on 2-way marginals",
                         parameters={"pairs": [[encoder.codes_[i].name, encoder.codes_[j].name] for i, j in chosen]})
    two_way, offset = [], 0
    for i, j in chosen:
        size = len(tables[(i, j)])
        two_way.append((i, j, noisy[offset:offset + size].astype(float) / rows, 1.0))
        offset += size
    return MeasuredMarginals(two_way=two_way + _independent(pairs, chosen, shares))


#: Weight of the independence prior on unmeasured pairs, relative to a measured pair.
PRIOR_WEIGHT = 0.1


def _independent(pairs, chosen, shares) -> list:
    """Unmeasured pairs pull towards independence (the product of released 1-way shares).

    A neural generator left unconstrained on a pair invents dependence that is not in
    the data; the maximum-entropy default is independence. Post-processing: free.
    """
    measured = set(chosen)
    return [(i, j, np.outer(shares[i], shares[j]).ravel(), PRIOR_WEIGHT) for i, j in pairs
            if (i, j) not in measured]


def _pair_counts(coarse: np.ndarray, i: int, j: int, sizes: list[int]) -> np.ndarray:
    return np.bincount(coarse[:, i] * sizes[j] + coarse[:, j], minlength=sizes[i] * sizes[j])


