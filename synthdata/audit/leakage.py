"""Leakage audit: does the synthetic table give away who was in the training data?

The audit plays the attacker. Its *members* are training rows (the generator saw them),
its *non-members* holdout rows from the same source (it never did). An attack scores
every such row from the synthetic table alone (plus, for the density attack, a separate
real reference sample); if members score higher than non-members, the synthetic table
carries information about individual training rows. Two attacks of different kinds:

* ``distance_to_closest_record`` — a member's nearest synthetic row tends to be closer
  than a non-member's when the generator memorises. Mixed-type distance: numbers
  centred on the training median and divided by a robust scale (IQR/1.349, else the
  standard deviation), a missing number is an indicator of its own; a category
  mismatch adds 1 to the squared distance. Score: minus the distance.
* ``density_ratio`` — DOMIAS (van Breugel et al., AISTATS 2023): the density of the
  synthetic data at x over the density of *real* data at x. Over-fitting shows as local
  density peaks at the training rows that the real population does not have; dividing
  by the real density stops rows that are merely typical from looking like members.
  Both densities are 1-nearest-neighbour estimates in an 8-dimensional whitened PCA of
  the mixed-type embedding above (the most local estimate; memorisation is local). The
  real reference is one half of the holdout; the non-members are drawn from the other
  half, so no scored row is in the reference.

For each attack: AUROC with DeLong's 95 % interval, and TPR at FPR 1 % and 0.1 % with
Clopper–Pearson intervals. The **empirical ε lower bound** splits members and
non-members in two halves: the attack and threshold with the best bound are chosen on
the first half and measured on the second, so the choice costs no multiple-testing
correction; ``ε_lb = max(ln((TPR_low − δ) / FPR_high), ln((1 − FPR_high − δ) / (1 − TPR_low)))``
with Clopper–Pearson ends at 95 % (see :mod:`synthdata.audit.stats`). It is an
empirical figure: it treats each audited row's membership as a separate trial of one
training run, and it is only as large as the sample allows, which
``max_certifiable_epsilon`` states (the bound a perfect attack would reach).

Also: **exact copies** (share of synthetic rows identical to a training row, and to a
holdout row; compared on equally many rows of each with an exact one-sided McNemar
test) and **rare values** (synthetic category values held by fewer than ``k`` training
rows — counted per column, never listed).

The audit reads the real data freely and is not differentially private; its output holds
aggregates only (rates, counts, ROC curves, column names), never a value or row of the real data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataError
from .log import AuditLog
from .stats import auroc_delong, clopper_pearson, epsilon_lower_bound, roc_points, tpr_at_fpr
from .tables import AuditTables

__all__ = [
    "AUROC_MARGIN",
    "CONFIDENCE",
    "COPY_ALPHA",
    "RARE_K",
    "leakage_audit",
    "exact_copies",
    "rare_values",
]

#: Rare values: a synthetic category value held by fewer training rows than this.
RARE_K = 5
#: Without a claimed ε, an attack counts as a leak when its AUROC's lower confidence
#: bound is above 0.5 by more than this: a margin, so that a negligible but
#: statistically detectable edge on a huge sample is not called a leak.
AUROC_MARGIN = 0.02
#: Significance level of the test "synthetic rows copy training rows more often than
#: holdout rows".
COPY_ALPHA = 0.01
#: Confidence of every interval and of the ε lower bound.
CONFIDENCE = 0.95
#: False-positive rates at which each attack's TPR is reported.
FPR_TARGETS = (0.01, 0.001)
#: Most points kept of each attack's ROC curve (for the report's plot).
ROC_POINTS = 200
#: Fewer holdout rows than this leave too few non-members for membership inference.
MIN_HOLDOUT_ROWS = 40
#: Synthetic rows searched for the closest record (the search is O(rows × queries)).
MAX_SEARCH_ROWS = 50_000
#: One-hot slots per categorical column in the distance embedding; rarer values share one.
MAX_LEVELS = 256
#: Dimensions of the space the density-ratio attack estimates densities in.
DENSITY_DIMENSIONS = 8
#: Distances below this count as 0 in the density ratio (a copy would give log 0).
_TINY = 1e-12
#: Candidate thresholds tried when choosing the ε-bound attack on the selection half.
_THRESHOLDS = 512

NOTE = (
    "This audit reads the real data and is not differentially private itself; its output "
    "holds aggregates only (rates, counts, shares, column names, and, for the plots, category "
    "values that at least {k} training rows hold and bin edges on a round grid), never a real "
    "row, a rare value or a column's extreme value."
)


def leakage_audit(
    tables: AuditTables,
    *,
    epsilon: float | None,
    delta: float,
    seed: int,
    max_rows: int,
    rare_k: int = RARE_K,
    log: AuditLog | None = None,
) -> dict[str, Any]:
    """The ``leakage`` object of an audit (schema in :mod:`synthdata.audit`).

    ``tables`` come from :func:`~synthdata.audit.tables.prepare`; notes and sub-sampling
    records go to ``log``.
    """
    log = AuditLog() if log is None else log
    rng = np.random.default_rng(seed)
    copies = exact_copies(tables, rng)
    rare = rare_values(tables, k=rare_k)
    result: dict[str, Any] = {"claimed_epsilon": epsilon, "delta": delta}
    if tables.holdout is None or len(tables.holdout) < MIN_HOLDOUT_ROWS:
        log.note(
            "membership inference, the ε lower bound and the copy comparison need holdout rows "
            f"(at least {MIN_HOLDOUT_ROWS}); "
            + ("none were given" if tables.holdout is None else f"only {len(tables.holdout)} were given")
            + ", so they were skipped"
        )
        result.update(_skipped())
    else:
        result.update(_membership_inference(tables, delta=delta, max_rows=max_rows, rng=rng, log=log))
        result.update(_verdict(result, copies, epsilon))
    result["exact_copies"] = copies
    result["rare_values"] = rare
    result["note"] = NOTE.format(k=rare_k)
    return result


def _skipped() -> dict[str, Any]:
    return {
        "mia_auc": None,
        "mia_auc_ci": None,
        "best_attack": None,
        "attacks": {},
        "rows": None,
        "empirical_epsilon_lower_bound": None,
        "epsilon_bound": None,
        "max_certifiable_epsilon": None,
        "leak_detected": None,
        "tests": None,
        "verdict": "not tested: without holdout rows there are no non-members to compare the training rows with",
    }


# --------------------------------------------------------------------------- membership inference


def _membership_inference(
    tables: AuditTables, *, delta: float, max_rows: int, rng: np.random.Generator, log: AuditLog
) -> dict[str, Any]:
    train, holdout = tables.train, tables.holdout
    members, non_members, reference = split_members(len(train), len(holdout), max_rows=max_rows, rng=rng, log=log)
    searched = log.subsample("membership inference (synthetic rows searched)",
                             {"synthetic": tables.synthetic}, MAX_SEARCH_ROWS, rng)["synthetic"]
    embed = _Embedding(tables)
    queries = embed(pd.concat([train.iloc[members], holdout.iloc[non_members]], ignore_index=True))
    return run_attacks(
        embed(searched), embed(holdout.iloc[reference]), queries, delta=delta, rng=rng, max_rows=max_rows,
        descriptions={
            "distance_to_closest_record": "minus the mixed-type distance from the row to its closest synthetic row",
            "density_ratio": "DOMIAS: log of the density of the synthetic rows over that of a real reference sample "
                             "(half the holdout), at the row; 1-nearest-neighbour densities in "
                             f"{DENSITY_DIMENSIONS} whitened PCA dimensions",
        },
    )


def split_members(
    n_train: int, n_holdout: int, *, max_rows: int, rng: np.random.Generator, log: AuditLog
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of (members in train, non-members in holdout, density reference in holdout).

    Half the holdout is the density attack's real reference; the other half supplies
    the non-members, and as many training rows are drawn as members (balanced classes).
    """
    order = rng.permutation(n_holdout)
    n_reference = min(n_holdout // 2, max_rows)
    n_scored = min(n_holdout - n_reference, n_train, max_rows)
    members = rng.choice(n_train, size=n_scored, replace=False)
    log.record(
        "membership inference (members, non-members)",
        {"real_train": n_scored, "holdout": n_scored + n_reference},
        {"real_train": n_train, "holdout": n_holdout},
    )
    return members, order[n_reference:n_reference + n_scored], order[:n_reference]


def run_attacks(
    synthetic: np.ndarray, reference: np.ndarray, queries: np.ndarray, *, delta: float, rng: np.random.Generator,
    max_rows: int, descriptions: dict[str, str],
) -> dict[str, Any]:
    """Both attacks on embedded ``queries`` (members first, then as many non-members), summarised."""
    n_scored = len(queries) // 2
    scores = {
        "distance_to_closest_record": _closest_record_scores(synthetic, queries),
        "density_ratio": _density_ratio_scores(synthetic, reference, queries, rng, max_rows),
    }
    attacks = {name: {**_attack_figures(s[:n_scored], s[n_scored:]), "description": descriptions[name]}
               for name, s in scores.items()}
    best = max(attacks, key=lambda name: attacks[name]["auroc"])
    bound = _epsilon_bound(scores, n_scored, delta=delta, rng=rng)
    return {
        "mia_auc": attacks[best]["auroc"],
        "mia_auc_ci": attacks[best]["auroc_ci"],
        "best_attack": best,
        "attacks": attacks,
        "rows": {"members": n_scored, "non_members": n_scored, "reference": len(reference)},
        "empirical_epsilon_lower_bound": bound["value"],
        "epsilon_bound": bound,
        "max_certifiable_epsilon": bound["max_certifiable"],
    }


def _attack_figures(member_scores: np.ndarray, non_member_scores: np.ndarray) -> dict[str, Any]:
    auroc, low, high = auroc_delong(member_scores, non_member_scores, confidence=CONFIDENCE)
    return {
        "auroc": auroc,
        "auroc_ci": [low, high],
        "tpr_at_fpr": [
            {"target_fpr": target, **tpr_at_fpr(member_scores, non_member_scores, target, confidence=CONFIDENCE)}
            for target in FPR_TARGETS
        ],
        "roc": roc_points(member_scores, non_member_scores, max_points=ROC_POINTS),
    }


class _Embedding:
    """Rows as float vectors whose Euclidean distance is the audit's mixed-type distance.

    Fitted on the training rows: numbers centred on their median and scaled by a robust
    spread, with a 0/1 missing indicator (the missing value itself set to the centre);
    each category one-hot with weight 1/√2, so two rows that differ in a category are
    exactly 1 apart in squared distance. Missing is a category of its own; values beyond
    the :data:`MAX_LEVELS` most frequent training ones share one slot.
    """

    def __init__(self, tables: AuditTables) -> None:
        self.numeric = tables.numeric
        self.categorical = tables.categorical
        train = tables.train
        self.centre, self.scale = {}, {}
        for name in self.numeric:
            values = _floats(train[name])
            values = values[~np.isnan(values)]
            self.centre[name], self.scale[name] = _robust_centre_scale(values)
        self.levels = {
            name: pd.Index(train[name].value_counts(dropna=True).index[:MAX_LEVELS]) for name in self.categorical
        }

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        blocks = []
        for name in self.numeric:
            with np.errstate(over="ignore", invalid="ignore"):
                values = (_floats(frame[name]) - self.centre[name]) / self.scale[name]
            missing = np.isnan(values)
            # Beyond a million spreads every value is simply far; 1e300 over a tiny spread would be inf.
            values = np.clip(values, -_FAR, _FAR)
            blocks += [np.where(missing, 0.0, values), missing.astype(float)]
        parts = [np.column_stack(blocks)] if blocks else []
        for name in self.categorical:
            levels = self.levels[name]
            codes = levels.get_indexer(frame[name])
            codes = np.where(codes < 0, len(levels), codes)  # other values
            codes[frame[name].isna().to_numpy()] = len(levels) + 1  # missing
            one_hot = np.zeros((len(frame), len(levels) + 2))
            one_hot[np.arange(len(frame)), codes] = math.sqrt(0.5)
            parts.append(one_hot)
        return np.hstack(parts)


def _floats(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series.to_numpy().view(np.int64).astype(float)
        values[series.isna().to_numpy()] = np.nan
        return values
    return series.to_numpy(dtype=float)


def _robust_centre_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and IQR/1.349 (the standard deviation of a normal), else std, else 1 (each finite and
    not denormal: values such as 1e300 or 5e-324 must not make the distances infinite)."""
    if values.size == 0:
        return 0.0, 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
        scale = (q3 - q1) / 1.349
        if not (math.isfinite(scale) and scale >= _NO_SPREAD):
            scale = float(np.std(values))
    if not math.isfinite(median):
        median = 0.0
    return float(median), float(scale) if math.isfinite(scale) and scale >= _NO_SPREAD else 1.0


#: Standardised values are clipped to +-_FAR (beyond, every value is simply far).
_FAR = 1e6
#: A spread below the smallest normal float is no spread.
_NO_SPREAD = float(np.finfo(float).tiny)


def _closest_record_scores(synthetic: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Minus each query's distance to its closest synthetic row.

    The brute-force search finds the neighbour with fast matrix products whose rounding
    leaves an exact copy about 1e-5 away from its original; the distance to the found
    neighbour is recomputed exactly, so a copy scores exactly 0.
    """
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(synthetic)
    nearest = search.kneighbors(queries, return_distance=False)[:, 0]
    return -np.linalg.norm(queries - synthetic[nearest], axis=1)


def _density_ratio_scores(
    synthetic: np.ndarray, reference: np.ndarray, queries: np.ndarray, rng: np.random.Generator, max_rows: int
) -> np.ndarray:
    """log(p_synthetic(x) / p_reference(x)) up to a constant, by nearest-neighbour densities.

    In d dimensions the 1-nearest-neighbour estimate of a density is proportional to
    ``1 / (n · r^d)``, r the distance to the closest sample point, so the log ratio is
    ``d · (ln r_reference − ln r_synthetic)`` plus a constant that does not change any
    ranking. The nearest neighbour is the most local estimate there is, which is what
    memorisation (a peak at a training row) needs; on Adult it beat k = 3 and 5, and
    Gaussian KDE, for copied and for jittered training rows. The space is a whitened
    PCA of the mixed-type embedding, fitted on synthetic and reference rows, where a
    k-d tree finds neighbours quickly and exactly.
    """
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    fit_rows = synthetic[rng.choice(len(synthetic), size=min(len(synthetic), max_rows), replace=False)]
    sample = np.vstack([fit_rows, reference])
    dims = min(DENSITY_DIMENSIONS, sample.shape[1], len(sample) - 1)
    pca = PCA(n_components=dims, random_state=int(rng.integers(2**31))).fit(sample)
    # Whiten by hand, keeping only directions with spread: PCA's own whitening divides
    # by zero on a direction without any (a table of one constant-looking column).
    keep = pca.explained_variance_ > 1e-12 * pca.explained_variance_.max()
    if not keep.any():
        return np.zeros(len(queries))
    axes = pca.components_[keep] / np.sqrt(pca.explained_variance_[keep])[:, None]
    dims = int(keep.sum())

    def project(rows: np.ndarray) -> np.ndarray:
        return (rows - pca.mean_) @ axes.T

    points = project(queries)

    def log_radius(data: np.ndarray) -> np.ndarray:
        search = NearestNeighbors(n_neighbors=1, algorithm="kd_tree").fit(project(data))
        distances, _ = search.kneighbors(points)
        return np.log(np.maximum(distances[:, 0], _TINY))

    return dims * (log_radius(reference) - log_radius(synthetic))


def _epsilon_bound(
    scores: dict[str, np.ndarray], n_scored: int, *, delta: float, rng: np.random.Generator
) -> dict[str, Any]:
    """Choose attack and threshold on one half of the rows, measure the bound on the other."""
    members_order = rng.permutation(n_scored)
    non_members_order = n_scored + rng.permutation(n_scored)
    half = n_scored // 2
    select = np.concatenate([members_order[:half], non_members_order[:half]])
    measure = np.concatenate([members_order[half:], non_members_order[half:]])
    is_member = np.arange(2 * n_scored) < n_scored

    best = None
    for name, score in scores.items():
        threshold, value = _best_threshold(score[select], is_member[select], delta)
        if best is None or value > best[2]:
            best = (name, threshold, value)
    name, threshold, _ = best
    score, truth = scores[name][measure], is_member[measure]
    members, non_members = int(truth.sum()), int((~truth).sum())
    true_pos, false_pos = int((score[truth] >= threshold).sum()), int((score[~truth] >= threshold).sum())
    tpr_low, _ = clopper_pearson(true_pos, members, confidence=CONFIDENCE)
    _, fpr_high = clopper_pearson(false_pos, non_members, confidence=CONFIDENCE)
    value = float(epsilon_lower_bound(true_pos, members, false_pos, non_members, delta=delta, confidence=CONFIDENCE))
    certifiable = float(epsilon_lower_bound(members, members, 0, non_members, delta=delta, confidence=CONFIDENCE))
    return {
        "value": value,
        "attack": name,
        "tpr": true_pos / members,
        "fpr": false_pos / non_members,
        "tpr_low": float(tpr_low),
        "fpr_high": float(fpr_high),
        "confidence": CONFIDENCE,
        "delta": delta,
        "rows": {"selection": 2 * half, "evaluation": members + non_members},
        "max_certifiable": certifiable,
        "method": (
            "attack and threshold chosen on half of the members and non-members, bound measured on the other half: "
            "max(ln((TPR_low - delta) / FPR_high), ln((1 - FPR_high - delta) / (1 - TPR_low))) with Clopper-Pearson "
            "bounds at 95% confidence"
        ),
    }


def _best_threshold(score: np.ndarray, is_member: np.ndarray, delta: float) -> tuple[float, float]:
    """The threshold ('member' when score ≥ it) with the largest ε bound on these rows."""
    candidates = np.unique(np.quantile(score, np.linspace(0.0, 1.0, _THRESHOLDS)))
    members, non_members = np.sort(score[is_member]), np.sort(score[~is_member])
    true_pos = len(members) - np.searchsorted(members, candidates, side="left")
    false_pos = len(non_members) - np.searchsorted(non_members, candidates, side="left")
    bounds = epsilon_lower_bound(
        true_pos, len(members), false_pos, len(non_members), delta=delta, confidence=CONFIDENCE
    )
    index = int(np.argmax(bounds))
    return float(candidates[index]), float(bounds[index])


# --------------------------------------------------------------------------- verdict


def _verdict(result: dict[str, Any], copies: dict[str, Any], epsilon: float | None) -> dict[str, Any]:
    bound, certifiable = result["empirical_epsilon_lower_bound"], result["max_certifiable_epsilon"]
    above_chance = [
        name for name, attack in result["attacks"].items() if attack["auroc_ci"][0] > 0.5 + AUROC_MARGIN
    ]
    copying = copies["matched"]["significant"]
    violation = None if epsilon is None else bound > epsilon
    tests = {
        "attacks_above_chance": above_chance,
        "auroc_margin": AUROC_MARGIN,
        "copies_excess": copying,
        "copy_alpha": COPY_ALPHA,
        "epsilon_violation": violation,
    }
    limit = f"at these sample sizes this audit can certify at most ε = {certifiable:.2f}"
    if epsilon is not None:
        if violation:
            verdict = (
                f"VIOLATION: the empirical lower bound exceeds the claimed ε: ε ≥ {bound:.2f} "
                f"({result['epsilon_bound']['attack']} attack, 95% confidence) > claimed ε = {epsilon:g}"
            )
        else:
            verdict = (
                f"no violation detected: the empirical lower bound ε ≥ {bound:.2f} does not exceed the claimed "
                f"ε = {epsilon:g}; {limit}, so this is not a proof that the claim holds"
            )
        return {"leak_detected": bool(violation), "tests": tests, "verdict": verdict}
    reasons = [
        f"the {name} attack beats chance (AUROC {result['attacks'][name]['auroc']:.3f}, 95% CI from "
        f"{result['attacks'][name]['auroc_ci'][0]:.3f}, above {0.5 + AUROC_MARGIN:.2f})"
        for name in above_chance
    ]
    if copying:
        m = copies["matched"]
        reasons.append(
            f"synthetic rows copy training rows more often than holdout rows ({m['train_share']:.2%} vs "
            f"{m['holdout_share']:.2%}, p = {m['p_value']:.2g})"
        )
    if reasons:
        verdict = "leak detected: " + "; ".join(reasons)
    else:
        verdict = (
            f"no leak detected: no attack beats chance by an AUROC margin of {AUROC_MARGIN} and synthetic rows do "
            f"not copy training rows more often than holdout rows; {limit}, so this is not a proof of privacy"
        )
    return {"leak_detected": bool(reasons), "tests": tests, "verdict": verdict}


# --------------------------------------------------------------------------- copies and rare values


def exact_copies(tables: AuditTables, rng: np.random.Generator) -> dict[str, Any]:
    """Share of synthetic rows identical to a training row, and to a holdout row.

    Rows are compared on the normalised values (``39`` equals ``39.0``) of the audited
    columns, through a 64-bit hash of each row. A population with few distinct rows
    makes copies common by chance, so training and holdout are also compared on equally
    many rows of each (the larger one sampled): under "no memorisation" a synthetic row
    is as likely to match one as the other, which an exact one-sided McNemar test on the
    rows that match only one of them checks.
    """
    synthetic = _row_hashes(tables.synthetic)
    train = _row_hashes(tables.train)
    result: dict[str, Any] = {"train_share": float(np.isin(synthetic, train).mean())}
    if tables.holdout is None:
        return {**result, "holdout_share": None, "matched": {"significant": False, "p_value": None}}
    holdout = _row_hashes(tables.holdout)
    result["holdout_share"] = float(np.isin(synthetic, holdout).mean())
    rows = min(len(train), len(holdout))
    in_train = np.isin(synthetic, rng.choice(train, size=rows, replace=False))
    in_holdout = np.isin(synthetic, rng.choice(holdout, size=rows, replace=False))
    only_train, only_holdout = int((in_train & ~in_holdout).sum()), int((in_holdout & ~in_train).sum())
    p_value = 1.0
    if only_train + only_holdout:
        p_value = float(stats.binomtest(only_train, only_train + only_holdout, 0.5, alternative="greater").pvalue)
    result["matched"] = {
        "rows_each": rows,
        "train_share": float(in_train.mean()),
        "holdout_share": float(in_holdout.mean()),
        "p_value": p_value,
        "significant": p_value < COPY_ALPHA,
    }
    return result


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def rare_values(tables: AuditTables, *, k: int = RARE_K) -> dict[str, Any]:
    """Synthetic category values that fewer than ``k`` training rows hold, per column.

    ``rare`` values occur in 1 to k−1 training rows: the generator may have learnt them
    from a handful of people. ``unseen`` values occur in none (invented, or known only
    from elsewhere). Only counts are returned — the values themselves are fragments of
    real records. Numeric columns are not checked.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DataError(f"the rare-value threshold k must be a whole number of at least 1, got {k!r}")
    columns: dict[str, dict[str, int]] = {}
    for name in tables.categorical:
        synthetic_counts = tables.synthetic[name].value_counts(dropna=True)
        in_train = tables.train[name].value_counts(dropna=True).reindex(synthetic_counts.index, fill_value=0)
        rare, unseen = (in_train > 0) & (in_train < k), in_train == 0
        if rare.any() or unseen.any():
            columns[name] = {
                "rare_values": int(rare.sum()),
                "rare_rows": int(synthetic_counts[rare].sum()),
                "unseen_values": int(unseen.sum()),
                "unseen_rows": int(synthetic_counts[unseen].sum()),
            }
    keys = ("rare_values", "rare_rows", "unseen_values", "unseen_rows")
    total = {key: sum(counts[key] for counts in columns.values()) for key in keys}
    return {
        "k": k,
        **total,
        "rare_rows_share": total["rare_rows"] / len(tables.synthetic),
        "columns": columns,
        "note": "values are counted, not listed: a rare value is a fragment of a real record",
    }
