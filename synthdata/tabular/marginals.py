"""The 2- and 3-way marginals the generator is fitted to, selected and measured with differential privacy.

Noisy scores pick the column pairs whose joint distribution the 1-way marginals explain
worst, then those pairs' 2-way marginals are measured with the Gaussian mechanism (one
release each, charged to the ledger). Training the generator to match them is
post-processing (as in GEM, Liu et al. 2021, and RAP, Aydore et al. 2021). Unmeasured
pairs pull gently towards independence, the maximum-entropy default.

With a declared target, all of its pairs are measured (the selection picks the others),
each shrunk towards independence by the share of its departure the noise explains.
With :data:`STRATA` > 1 each of them is measured apart within the strata of the target's
strongest partner instead (:func:`measure_marginals`): how the partner and another
column act on the target together, at no extra sensitivity.

Then the same for triples of columns (:func:`measure_triples`), on coarser groups:
each triple's score is how far its real 3-way counts are from what the released 2-way
marginals imply for it (the maximum-entropy table with those pairwise margins, fitted by
iterative proportional fitting: post-processing), released with Gaussian noise; the
triples the pairs explain worst are measured. This is the higher-order structure a
model of pairs misses (income against education *and* marital status *and* age), chosen
as AIM (McKenna et al. 2022) chooses its marginals: by where the current model errs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..privacy import PrivacyLedger
from .encoding import TabularEncoder, shrink_towards
from .stats import cross_counts

__all__ = ["MAX_TRIPLES", "PRIOR_WEIGHT", "TARGET_SCORE_WEIGHT", "TARGET_WEIGHT", "MeasuredMarginals",
           "measure_marginals", "measure_triples", "pair_weights", "score_weights", "target_pairs", "target_triples"]


@dataclass(frozen=True)
class MeasuredMarginals:
    """Targets for the generator beside the encoder's 1-way counts.

    ``two_way``: (columns i, j, noisy shares per coarse cell, weight); measured pairs weigh
    1, unmeasured pairs carry the independence prior at :data:`PRIOR_WEIGHT`.
    ``three_way``: (columns i, j, k, noisy shares per cell of their ``groups``, weight),
    where ``groups[c]`` maps column c's coarse (2-way) groups to coarser 3-way groups.
    """

    two_way: list[tuple[int, int, np.ndarray, float]]
    three_way: list[tuple[int, int, int, np.ndarray, float]] = ()
    groups: list[list[int]] | None = None
    #: Noisy pair scores of the selection (post-processing input of the triple candidates); not saved.
    pair_scores: dict | None = None
    #: With a declared target: its pairs measured apart within each group of one column
    #: (the stratifier). ``(s, t, s_groups, [(x, table), ...])``: ``s_groups`` maps s's
    #: coarse groups to its strata, each table holds shares per (stratum, x's coarse
    #: group, t's coarse group), row-major. None: not measured so.
    stratified: tuple | None = None

    def to_dict(self) -> dict:
        out = {"two_way": [[i, j, t.tolist(), w] for i, j, t, w in self.two_way]}
        if self.three_way:
            out["three_way"] = [[i, j, k, t.tolist(), w] for i, j, k, t, w in self.three_way]
            out["groups"] = self.groups
        if self.stratified:
            column, target, strata, tables = self.stratified
            out["stratified"] = [column, target, list(strata), [[x, t.tolist()] for x, t in tables]]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> MeasuredMarginals:
        return cls(two_way=[(i, j, np.asarray(t), float(w)) for i, j, t, w in data["two_way"]],
                   three_way=[(i, j, k, np.asarray(t), float(w)) for i, j, k, t, w in data.get("three_way", [])],
                   groups=data.get("groups"),
                   stratified=_stratified_from(data.get("stratified")))


def _stratified_from(data) -> tuple | None:
    if not data:
        return None
    column, target, strata, tables = data
    return int(column), int(target), [int(g) for g in strata], [(int(x), np.asarray(t, dtype=float)) for x, t in tables]


#: Weight of the declared target's pairs in the 2-way release (an integer: the counts
#: keep integer noise). 2: each of them is measured with half the noise of the others'.
TARGET_WEIGHT = 2


def pair_weights(pairs: list[tuple[int, int]], target: int | None, target_weight: int = TARGET_WEIGHT) -> np.ndarray:
    """Each pair's weight in the 2-way release: ``target_weight`` for the target's pairs, else 1.

    Public: it depends on the declared target and the pairs' positions, never on the rows.
    Why: a release's utility is judged on how well the target is predicted from the
    other columns, which a model of pairs carries in the target's pairs alone; every
    measured pair shares one release's sensitivity, so at 50 pairs each is measured
    with sqrt(50) times the noise of a lone one.
    """
    if target is None or target_weight <= 1:
        return np.ones(len(pairs))
    return np.array([float(target_weight) if target in pair else 1.0 for pair in pairs])


#: With a declared target whose pairs are stratified (:data:`STRATA` > 1), weight of its
#: pairs' scores in the selection release (an integer, as TARGET_WEIGHT). 1: as the others'.
TARGET_SCORE_WEIGHT = 2


def score_weights(pairs: list[tuple[int, int]], target: int | None) -> np.ndarray:
    """Each pair's weight in the selection release: :data:`TARGET_SCORE_WEIGHT` for the
    declared target's pairs when they are stratified (two or more of them), else 1.

    Public: the declared target and the pairs' positions. Why: the target's pairs are
    measured whatever their scores, so their scores serve one choice alone, the stratifier
    (:func:`_stratifier`: the highest), and a partner picked by noise carries little. On
    the online-shoppers table at epsilon 1 the selection noise (sd ~630 on 153 scores)
    against a gap of ~1,600 between PageValues (~3,500) and the next partners (~1,850)
    picked another partner in 3 of 60 test noise seeds, and those fits lost most of what
    stratifying gains. At weight 2 their noise falls by 2/sqrt((p - t + 4t) / p) (1.7 x on
    shoppers' 153 pairs, 17 of the target's), the other scores' rises by that square root
    (15%).
    """
    weights = np.ones(len(pairs))
    if target is None or STRATA <= 1 or TARGET_SCORE_WEIGHT <= 1:
        return weights
    mine = [index for index, pair in enumerate(pairs) if target in pair]
    if len(mine) >= 2:
        weights[mine] = float(TARGET_SCORE_WEIGHT)
    return weights


def target_pairs(pairs: list[tuple[int, int]], target: int | None, scores: np.ndarray, max_pairs: int) -> np.ndarray:
    """Positions of the pairs measured whatever the selection says: all of the declared target's.

    Why: a model of pairs predicts the target from the other columns through the
    target's pairs alone, and a pair left unmeasured is pulled towards independence
    (:data:`PRIOR_WEIGHT`). Measured in one release with the others, they cost its
    sensitivity little (a target with few values makes small tables), while the
    selection's noisy scores would drop some of the predictive ones: on the online-
    shoppers table at epsilon 1 they kept 3 of Revenue's 17 pairs and dropped Month's.
    Which pairs: public (the declared target and the pairs' positions); only when there
    are more than ``max_pairs`` of them do the noisy ``scores`` (a DP release) rank them.
    """
    if target is None or max_pairs <= 0:
        return np.array([], dtype=int)
    mine = np.array([index for index, pair in enumerate(pairs) if target in pair], dtype=int)
    if len(mine) > max_pairs:
        mine = mine[np.argsort(-np.asarray(scores)[mine], kind="stable")[:max_pairs]]
    return mine


def measure_marginals(codes: np.ndarray, encoder: TabularEncoder, *, ledger: PrivacyLedger, rows: float,
                      max_pairs: int, unit_rows: int = 1, target: int | None = None,
                      target_weight: int | None = None) -> MeasuredMarginals:
    """Select the informative column pairs and measure their 2-way marginals (both charged).

    Spends the ledger's planned ``"selection"`` and ``"marginals"`` noise; ``rows`` is the
    DP count of rows, which scales the independence prediction. ``unit_rows``: the most
    rows one unit of privacy holds.

    ``target``: the index of the column a release scores its utility on, when one is
    declared (public: the steward names it). Its pairs enter the one Gaussian release
    with their counts times ``target_weight`` (default :data:`TARGET_WEIGHT`), so they take a larger share of the
    release's L2 sensitivity and come out ``target_weight`` times less noisy relative to
    the others (see :func:`pair_weights`). They are all measured (see :func:`target_pairs`);
    the selection picks the other pairs, weighing each pair's noise as it will be measured.
    """
    maps = [np.asarray(code.coarse, dtype=np.int64) for code in encoder.codes_]
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
    # The exact pair tables, wherever the codes are (memory or an engine): one pass.
    tables = dict(zip(pairs, cross_counts(codes, pairs, maps, coarse_sizes, what="pair tables")))

    # Selection: every pair's L1 error under independence, released with Gaussian noise.
    # One row moves each score by at most 1, so a score of weight v by at most v, and the
    # score vector has L2 sensitivity sqrt(sum of v^2): √pairs when every v is 1 (times the
    # rows one unit may hold). The target's pairs may weigh more (see score_weights).
    scores = np.array([np.abs(tables[p] - rows * np.outer(shares[p[0]], shares[p[1]]).ravel()).sum()
                       for p in pairs])
    score_weight = score_weights(pairs, target)
    selection = {"pairs_scored": len(pairs)}
    if np.any(score_weight != 1):
        selection["target_score_weight"] = float(score_weight.max())
    noisy_scores = ledger.noisy("selection", scores * score_weight,
                                sensitivity=unit_rows * math.sqrt(float(np.sum(score_weight ** 2))),
                                mechanism="Gaussian noise on pair scores (report noisy top-k)",
                                parameters=selection) / score_weight
    measure_multiplier = ledger.planned_multiplier("marginals") * unit_rows

    # Post-processing of the noisy scores: choose how many pairs to measure so the
    # expected dependence captured beats the noise that measuring more pairs adds.
    # A pair of weight w is measured with noise sigma / w, sigma = multiplier x the
    # chosen weights' L2 norm; the order is settled from the norm of the previous guess.
    # A declared target's pairs are always measured (see target_pairs); the rule picks the others.
    cells = np.array([coarse_sizes[i] * coarse_sizes[j] for i, j in pairs], dtype=float)
    target_weight = TARGET_WEIGHT if target_weight is None else int(target_weight)
    weights = pair_weights(pairs, target, target_weight)
    forced = target_pairs(pairs, target, noisy_scores, max_pairs)
    others = np.setdiff1d(np.arange(len(pairs)), forced)
    best_gain, best_order = 0.0, forced
    for k in range(1 if len(forced) == 0 else 0, min(max_pairs - len(forced), len(others)) + 1):
        norm = math.sqrt(float(np.sum(weights[forced] ** 2)) + k)
        for _ in range(2):
            noise_l1 = math.sqrt(2 / math.pi) * measure_multiplier * norm / weights * cells
            net = noisy_scores - noise_l1
            order = np.concatenate([forced, others[np.argsort(-net[others])[:k]]])
            norm = math.sqrt(float(np.sum(weights[order] ** 2)))
        gain = float(np.sum(np.maximum(net[order], 0)))
        if gain > best_gain:
            best_gain, best_order = gain, order
    if len(best_order) == 0:
        return MeasuredMarginals(two_way=_independent(pairs, [], shares))

    chosen = [pairs[index] for index in best_order]
    scale = [int(weights[index]) for index in best_order]
    forced_pairs = {pairs[index] for index in forced}
    # With a target, its pairs may be measured apart within each stratum of its strongest
    # partner (noisy scores: post-processing); each such pair's release is then its 3-way
    # table (stratum, x, target), whose cells sum to the pair's: one row still adds w to one cell.
    stratifier = _stratifier(pairs, forced, noisy_scores, target, encoder, shares) if STRATA > 1 else None
    released = dict(tables)
    if stratifier is not None:
        column, strata = stratifier
        smaps = list(maps)
        smaps[column] = np.asarray(strata, dtype=np.int64)[maps[column]]
        ssizes = list(coarse_sizes)
        ssizes[column] = max(strata) + 1
        split = [pair for pair in chosen if pair in forced_pairs and column not in pair]
        for pair, counts in zip(split, cross_counts(codes, [(column, *pair) for pair in split], smaps, ssizes,
                                                    what="stratified pair tables")):
            released[pair] = counts
    # One row adds 1 to one cell of every pair's table, so w to a weighted pair's: the
    # weighted vector's L2 sensitivity is sqrt(sum of w^2) (times the rows a unit may hold).
    exact = np.concatenate([released[pair] * w for pair, w in zip(chosen, scale)])
    parameters = {"pairs": [[encoder.codes_[i].name, encoder.codes_[j].name] for i, j in chosen]}
    if target is not None:
        parameters.update(target=encoder.codes_[target].name, target_pair_weight=target_weight,
                          target_pairs="all measured" if len(forced) == sum(target in p for p in pairs)
                          else f"{len(forced)} measured (max_pairs)")
    if stratifier is not None:
        parameters.update(stratified_by=encoder.codes_[stratifier[0]].name, strata=max(stratifier[1]) + 1)
    noisy = ledger.noisy("marginals", exact, sensitivity=unit_rows * math.sqrt(sum(w * w for w in scale)),
                         integer=True, mechanism="Gaussian mechanism on 2-way marginals", parameters=parameters)
    # The target's pairs are measured whatever their scores, so some hold less dependence
    # than noise (a noisy table of a pair with none is a spurious predictor): each one's
    # departure from independence is shrunk by the share the noise explains (post-processing).
    sigma = measure_multiplier * math.sqrt(sum(w * w for w in scale))
    two_way, split_tables, offset = [], [], 0
    for (i, j), w in zip(chosen, scale):
        size = len(released[(i, j)])
        table = noisy[offset:offset + size].astype(float) / (w * rows)
        offset += size
        cell_sigma = sigma / (w * rows)
        if size != len(tables[(i, j)]):  # stratified: (stratum, i, j) shares
            layered = table.reshape(-1, len(tables[(i, j)]))
            table = layered.sum(axis=0)
            cell_sigma *= math.sqrt(layered.shape[0])
            split_tables.append(((i, j), layered))
        if (i, j) in forced_pairs:
            table = shrunk(table, np.outer(shares[i], shares[j]).ravel(), cell_sigma)
        two_way.append((i, j, table, 1.0))
    stratified = None
    if split_tables:
        column, strata = stratifier
        pair_tables = {(i, j): table for i, j, table, _ in two_way}
        out = []
        for (i, j), layered in split_tables:
            x = j if i == target else i
            # Shrunk towards the pair's table spread over the strata as the released
            # (stratifier, x) and (stratifier, target) tables imply (post-processing).
            base = _strata_prediction(pair_tables, (i, j), column, strata, coarse_sizes, shares)
            layer_sigma = sigma / (scale[chosen.index((i, j))] * rows)
            kept = shrink_towards(layered.ravel(), base.ravel() * float(layered.sum()), layer_sigma)
            table = kept.reshape(layered.shape[0], coarse_sizes[i], coarse_sizes[j])
            if i == target:  # stored as (stratum, x, target)
                table = table.transpose(0, 2, 1)
            out.append((x, np.ascontiguousarray(table).ravel()))
        stratified = (column, target, list(strata), out)
    return MeasuredMarginals(two_way=two_way + _independent(pairs, chosen, shares),
                             pair_scores={pair: float(score) for pair, score in zip(pairs, noisy_scores)},
                             stratified=stratified)


#: With a declared target, its pairs are measured within this many strata of its
#: strongest partner (0 or 1: not stratified). 2: on the online-shoppers table at epsilon 1
#: (PageValues, 78% zeros, stratifies on 4 of 5 fits: zero or not), over 5 fits paired by
#: test noise seed, ML AUROC 0.895 against 0.877 (5 of 5 higher, each fit scored on 4
#: samples) and 2-way TVD 0.101 against 0.104; Adult epsilon 1 equal, epsilon 10 0.907
#: against 0.902; affairs 0.543 against 0.549 (one fit; its spread is ~0.007) (issue 11, session 8).
STRATA = 2


def _stratifier(pairs, forced, noisy_scores, target, encoder, shares):
    """(column, its coarse groups -> strata): the target's partner with the highest noisy
    selection score (released at :data:`TARGET_SCORE_WEIGHT`, so with less noise than the
    other pairs' scores), its coarse groups cut into STRATA runs of about equal released mass
    (numbers, dates: in value order; categories: the heaviest alone, the rest together).
    Post-processing of DP releases; None when nothing is forced."""
    if target is None or len(forced) < 2:
        return None
    best = forced[int(np.argmax(np.asarray(noisy_scores)[forced]))]
    column = pairs[best][0] if pairs[best][1] == target else pairs[best][1]
    mass = shares[column]
    strata = [0] * len(mass)
    if getattr(encoder.codes_[column], "kind", None) in ("numerical", "datetime"):
        for group, members in enumerate(_split(mass, STRATA)):
            for member in members:
                strata[member] = group
    else:
        for rank, g in enumerate(sorted(range(len(mass)), key=lambda g: -mass[g])):
            strata[g] = min(rank, STRATA - 1)
    if max(strata) < 1:
        return None
    return column, strata


def _strata_prediction(pair_tables, pair, column, strata, coarse_sizes, shares) -> np.ndarray:
    """(stratum, i, j) shares with the pair's table and the stratifier's tables with i and j
    as margins and nothing more (IPF over the released or prior 2-way targets)."""
    i, j = pair
    k = max(strata) + 1
    merge = np.zeros((coarse_sizes[column], k))
    merge[np.arange(coarse_sizes[column]), strata] = 1.0

    def with_column(c):
        a, b = min(c, column), max(c, column)
        table = pair_tables.get((a, b))
        if table is None:
            table = np.outer(shares[a], shares[b]).ravel()
        table = np.maximum(np.asarray(table, dtype=float), 0).reshape(coarse_sizes[a], coarse_sizes[b])
        if a == column:
            table = table.T  # (c, column)
        out = table @ merge  # (c, stratum)
        return out.T / max(out.sum(), 1e-12)  # (stratum, c)

    pij = np.maximum(np.asarray(pair_tables[pair], dtype=float), 0).reshape(coarse_sizes[i], coarse_sizes[j])
    pij = pij / max(pij.sum(), 1e-12)
    # The three margins of a (stratum, i, j) table, as _max_entropy reads a triple's pairs.
    margins = {(0, 1): with_column(i), (0, 2): with_column(j), (1, 2): pij}
    return _max_entropy(margins, [k, coarse_sizes[i], coarse_sizes[j]], (0, 1, 2))


def shrunk(table: np.ndarray, independent: np.ndarray, sigma: float) -> np.ndarray:
    """A noisy table's departure from independence, shrunk by the part its noise explains.

    ``sigma``: the noise per cell (in the table's units). The departure's squared norm
    is the true one's plus about ``cells x sigma^2`` of noise; keeping the fraction
    ``1 - cells sigma^2 / |departure|^2`` (at least 0; positive-part James-Stein) removes
    the dependence a pair with none would show from its noise alone. Post-processing.
    """
    return shrink_towards(table, independent * float(np.sum(table)), sigma)


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


#: Most triples measured; at most this many candidates are scored (those whose pairs the
#: selection scored highest), and groups per column in a 3-way marginal.
MAX_TRIPLES = 24
MAX_CANDIDATES = 1500
TRIPLE_GROUPS = 6


def measure_triples(codes: np.ndarray, encoder: TabularEncoder, marginals: MeasuredMarginals, *,
                    ledger: PrivacyLedger, rows: float, unit_rows: int = 1,
                    max_triples: int = MAX_TRIPLES, target: int | None = None,
                    partners: int | None = None) -> MeasuredMarginals:
    """Select the triples of columns the 2-way marginals explain worst and measure their
    3-way marginals (spends the planned ``"selection3"`` and ``"marginals3"`` noise).

    Returns ``marginals`` with the 3-way targets added. Candidates, groups and the
    pairwise prediction are post-processing of released values; the scores and the
    measured tables read the rows, each once, with L2 sensitivity ``√(scored)`` and
    ``√(measured)`` (times the rows one unit may hold).

    ``target``: the declared target's index (public). The candidates are then only the
    triples holding it (see :func:`target_triples`), and each measured table's departure
    from its pairwise prediction is shrunk by the share its noise explains. ``partners``
    (with a target): no selection step; the triples measured are the target with two of
    its ``partners`` columns most dependent on it in the released 2-way marginals
    (post-processing), all ``C(partners, 2)`` of them.
    """
    codes_ = encoder.codes_
    groups = [_triple_groups(code) for code in codes_]
    sizes = [max(g) + 1 if g else 0 for g in groups]
    # Each column's levels -> its 3-way groups (through its coarse groups).
    maps = [np.asarray(groups[j], dtype=np.int64)[np.asarray(code.coarse, dtype=np.int64)] if groups[j]
            else np.zeros(code.size, dtype=np.int64) for j, code in enumerate(codes_)]
    usable = [j for j, size in enumerate(sizes) if size > 1]
    if target is not None:
        triples = target_triples(usable, target)
    else:
        triples = [(i, j, k) for a, i in enumerate(usable) for b, j in enumerate(usable[a + 1:], a + 1)
                   for k in usable[b + 1:]]
    if not triples or max_triples <= 0:
        return marginals
    scores = marginals.pair_scores or {}
    if len(triples) > MAX_CANDIDATES:  # the triples whose pairs carry the most dependence
        weight = [scores.get((i, j), 0.0) + scores.get((i, k), 0.0) + scores.get((j, k), 0.0) for i, j, k in triples]
        triples = [triples[t] for t in np.argsort(weight)[::-1][:MAX_CANDIDATES]]
    pairwise = _pairwise_shares(marginals, encoder, groups, sizes)
    if target is not None and partners:
        top = strongest_partners(pairwise, usable, target, partners)
        triples = [t for t in triples if sum(c in top for c in t) == 2]
        if not triples:
            return marginals
    predicted = {t: _max_entropy(pairwise, sizes, t) for t in triples}
    tables = dict(zip(triples, cross_counts(codes, triples, maps, sizes, what="triple tables")))
    if target is not None and partners:
        return _measure_chosen(triples, tables, predicted, marginals, codes_, groups, sizes, ledger=ledger, rows=rows,
                               unit_rows=unit_rows, target=target,
                               how=f"the target with two of its {len(top)} partners most dependent on it "
                                   "(released 2-way marginals)")
    if target is None:
        # Selection: each triple's L1 distance from its pairwise prediction. One row moves each
        # score by at most 1 (the prediction is post-processing), so the vector's L2
        # sensitivity is √triples.
        exact = np.array([np.abs(tables[t] - rows * predicted[t]).sum() for t in triples])
        bound, what = 1.0, "Gaussian noise on triple scores (report noisy top-k)"
    else:
        # With a target, how far the target given the other two is from what the pairs imply
        # (see _conditional_error); one row moves each such score by at most 2.
        exact = np.array([_conditional_error(tables[t], predicted[t], [sizes[c] for c in t], t.index(target))
                          for t in triples])
        bound, what = 2.0, "Gaussian noise on triple scores: the target's error given the other two (noisy top-k)"
    noisy_scores = ledger.noisy("selection3", exact, sensitivity=unit_rows * bound * math.sqrt(len(triples)),
                                mechanism=what, parameters={"triples_scored": len(triples)})
    multiplier = ledger.planned_multiplier("marginals3") * unit_rows
    cells = np.array([sizes[i] * sizes[j] * sizes[k] for i, j, k in triples], dtype=float)
    best_k, best_gain, best_order = 0, 0.0, np.array([], dtype=int)
    for k in range(1, min(max_triples, len(triples)) + 1):
        noise_l1 = math.sqrt(2 / math.pi) * multiplier * math.sqrt(k) * cells
        net = noisy_scores - noise_l1
        order = np.argsort(-net)[:k]
        gain = float(np.sum(np.maximum(net[order], 0)))
        if gain > best_gain:
            best_k, best_gain, best_order = k, gain, order
    if best_k == 0:
        return marginals
    chosen = [triples[index] for index in best_order]
    return _measure_chosen(chosen, tables, predicted, marginals, codes_, groups, sizes, ledger=ledger, rows=rows,
                           unit_rows=unit_rows, target=target, how="triples holding the declared target")


def _measure_chosen(chosen, tables, predicted, marginals, codes_, groups, sizes, *, ledger, rows, unit_rows, target,
                    how) -> MeasuredMarginals:
    """The chosen triples' 3-way tables in one Gaussian release (the planned ``"marginals3"``)."""
    multiplier = ledger.planned_multiplier("marginals3") * unit_rows
    vector = np.concatenate([tables[t] for t in chosen])
    parameters = {"triples": [[codes_[i].name, codes_[j].name, codes_[k].name] for i, j, k in chosen],
                  "groups_per_column": TRIPLE_GROUPS}
    if target is not None:
        parameters.update(target=codes_[target].name, candidates=how)
    # One row adds 1 to one cell of each measured table: L2 sensitivity √(measured).
    noisy = ledger.noisy("marginals3", vector, sensitivity=unit_rows * math.sqrt(len(chosen)), integer=True,
                         mechanism="Gaussian mechanism on 3-way marginals", parameters=parameters)
    sigma = multiplier * math.sqrt(len(chosen)) / rows  # each cell's noise, in shares
    three_way, offset = [], 0
    for i, j, k in chosen:
        size = sizes[i] * sizes[j] * sizes[k]
        table = noisy[offset:offset + size].astype(float) / rows
        if target is not None and TRIPLE_SHRINK:
            # Post-processing: keep of the departure from what the pairs imply only what
            # the noise does not explain (a triple with no 3-way structure of its own then
            # adds none; see :func:`shrunk`).
            table = shrink_towards(table, predicted[(i, j, k)] * float(np.sum(table)), sigma)
        three_way.append((i, j, k, table, 1.0))
        offset += size
    return MeasuredMarginals(two_way=marginals.two_way, three_way=three_way, groups=groups,
                             pair_scores=marginals.pair_scores, stratified=marginals.stratified)


def strongest_partners(pairwise: dict, usable: list[int], target: int, partners: int) -> list[int]:
    """The ``partners`` columns whose released 2-way marginal with the target departs most
    from independence (L1; ties by position). Post-processing of released marginals."""
    def departure(column: int) -> float:
        table = pairwise.get((min(column, target), max(column, target)))
        if table is None:
            return 0.0
        return float(np.abs(table - np.outer(table.sum(1), table.sum(0))).sum())

    others = [c for c in usable if c != target]
    return sorted(others, key=lambda c: (-departure(c), c))[:partners]


def _conditional_error(table: np.ndarray, predicted: np.ndarray, shape: list[int], axis: int) -> float:
    """L1 error of the target given the other two columns, when the pairs' prediction
    (``predicted``, post-processing) supplies it: sum over cells of |n(x, y, t) - n(x, y) p(t | x, y)|.

    What a release's utility turns on: not how well the triple's whole table is predicted
    (its largest errors are in the other two columns' own pair), but the target's rate in
    each of their cells. One row adds 1 to one n(x, y, t) and to n(x, y), which moves the
    expected counts by p(. | x, y), summing to 1: the score moves by at most 2.
    """
    counts = np.asarray(table, dtype=float).reshape(shape)
    model = np.asarray(predicted, dtype=float).reshape(shape)
    given = model.sum(axis=axis, keepdims=True)
    overall = model.sum(axis=tuple(a for a in range(3) if a != axis), keepdims=True)
    rate = np.where(given > 0, model / np.where(given > 0, given, 1.0), overall / max(float(overall.sum()), 1e-12))
    return float(np.abs(counts - counts.sum(axis=axis, keepdims=True) * rate).sum())


#: With a declared target, shrink each measured triple towards what its pairs imply.
TRIPLE_SHRINK = True


def target_triples(usable: list[int], target: int) -> list[tuple[int, int, int]]:
    """The candidate triples with a declared target: those holding it (ordered i < j < k).

    Why: a release's utility is how well the target is predicted from the other columns,
    and a model of pairs cannot carry how two columns act on the target together (on the
    online-shoppers table, Revenue given PageValues and ProductRelated_Duration). Scoring
    only these (C(m-1, 2) of C(m, 3): 136 of 816 on 18 columns) lowers the selection's
    noise by the square root of that ratio. Public: the declared target and the columns'
    positions only.
    """
    if target not in usable:
        return []
    others = [c for c in usable if c != target]
    return [tuple(sorted((target, a, b))) for x, a in enumerate(others) for b in others[x + 1:]]


def _triple_groups(code) -> list[int]:
    """A column's coarse (2-way) groups merged into at most TRIPLE_GROUPS groups.

    Numbers: runs of about equal mass, in value order; categories: the most frequent
    groups alone, the rest together; the missing group stays apart.
    """
    size = code.coarse_size
    if size == 0:
        return []
    mass = np.zeros(size)
    np.add.at(mass, code.coarse, np.maximum(code.counts, 0))
    missing = {code.coarse[i] for i, level in enumerate(code.levels) if level["points"] == [None]}
    present = [g for g in range(size) if g not in missing]
    budget = TRIPLE_GROUPS - (1 if missing else 0)
    mapping = [0] * size
    if code.kind in ("numerical", "datetime"):
        runs = _split(mass[present], budget)
        for group, members in enumerate(runs):
            for member in members:
                mapping[present[member]] = group
        top = len(runs)
    else:
        ranked = sorted(present, key=lambda g: -mass[g])
        for rank, g in enumerate(ranked):
            mapping[g] = min(rank, budget - 1)
        top = min(len(ranked), budget)
    for g in missing:
        mapping[g] = top
    return mapping


def _split(weights: np.ndarray, parts: int) -> list[list[int]]:
    from .encoding import _split_by_mass

    return _split_by_mass(weights, max(parts, 1)) if len(weights) else []


def _pairwise_shares(marginals: MeasuredMarginals, encoder: TabularEncoder, groups: list[list[int]],
                     sizes: list[int]) -> dict:
    """Every pair's 2-way target on 3-way groups (measured: the noisy shares; else independence)."""
    out = {}
    for i, j, target, _ in marginals.two_way:
        ci, cj = encoder.codes_[i].coarse_size, encoder.codes_[j].coarse_size
        table = np.maximum(np.asarray(target, dtype=float), 0).reshape(ci, cj)
        merged = np.zeros((sizes[i], sizes[j]))
        np.add.at(merged, (np.asarray(groups[i])[:, None], np.asarray(groups[j])[None, :]), table)
        out[(i, j)] = merged / max(merged.sum(), 1e-12)
    return out


def _max_entropy(pairwise: dict, sizes: list[int], triple: tuple[int, int, int], iterations: int = 30) -> np.ndarray:
    """The table with the triple's three pairwise margins and nothing more (IPF), flattened."""
    i, j, k = triple
    table = np.full((sizes[i], sizes[j], sizes[k]), 1.0 / (sizes[i] * sizes[j] * sizes[k]))
    margins = [(pairwise.get((i, j)), (0, 1), 2), (pairwise.get((i, k)), (0, 2), 1), (pairwise.get((j, k)), (1, 2), 0)]
    for _ in range(iterations):
        for target, axes, other in margins:
            if target is None:
                continue
            current = table.sum(axis=other)
            ratio = np.divide(target, current, out=np.zeros_like(current), where=current > 0)
            table *= np.expand_dims(ratio, other)
    total = table.sum()
    return (table / total).ravel() if total > 0 else table.ravel()
