"""The whole audit in one call: quality and leakage of a synthetic table, as one JSON object.

:func:`audit` is what the ``synthdata audit`` command and the release pipeline call;
the keys it returns are documented in :mod:`synthdata.audit`. :func:`summary` turns
its result into the few lines the command prints.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, PrivacyError
from ..ingest import Table
from ..schema import ColumnKind, Schema
from .leakage import RARE_K, leakage_audit
from .log import AuditLog
from .quality import column_distributions, detection_auc, marginal_tvd, ml_utility, sdmetrics_quality
from .tables import AuditTables, prepare

__all__ = ["AUDIT_FORMAT", "MAX_ROWS", "FULL_ROWS", "audit", "summary"]

AUDIT_FORMAT = "synthdata-audit/1"
#: Default cap on the rows the costly metrics read per table: the detection classifier,
#: and the members, non-members and density reference of membership inference.
MAX_ROWS = 10_000
#: Cap on the rows the SDMetrics report and the ML-utility models read per table.
FULL_ROWS = 50_000


def audit(
    real_train: pd.DataFrame | Table,
    synthetic: pd.DataFrame | Table,
    *,
    holdout: pd.DataFrame | Table | None = None,
    target: str | None = None,
    schema: Schema | None = None,
    epsilon: float | None = None,
    delta: float | None = None,
    seed: int = 0,
    max_rows: int = MAX_ROWS,
    rare_k: int = RARE_K,
) -> dict[str, Any]:
    """Audit ``synthetic`` against the ``real_train`` rows it was made from.

    ``holdout`` holds real rows from the same source that the generator never saw; the
    membership-inference attacks, the ε lower bound and the copy comparison need it and
    are skipped (with a note) without it. ``target`` names a column to score ML utility
    on (needs ``holdout`` too). ``schema`` fixes the audited columns and their types
    (default: the columns and dtypes of ``real_train``). ``epsilon`` and ``delta`` are
    the privacy claim under test; ``delta`` also enters the ε lower bound, and defaults
    to the training default for as many rows as ``real_train`` holds,
    ``min(1/(n ln n), 1e-5)``. ``max_rows`` caps the rows per table of the costly metrics, ``rare_k`` is
    the rare-value threshold. The same inputs and ``seed`` give the same result.

    Returns a JSON-ready dict, documented in :mod:`synthdata.audit`. Raises
    :class:`~synthdata.errors.DataError` for tables that cannot be compared (missing
    columns, text in a numeric column, no rows) and
    :class:`~synthdata.errors.PrivacyError` for an invalid claim.
    """
    _check_claim(epsilon, delta)
    _check_whole("seed", seed, 0)
    _check_whole("max_rows", max_rows, 100)
    tables = prepare(real_train, synthetic, holdout, schema=schema)
    if target is not None and target not in tables.kinds:
        raise DataError(
            f"the target column {target!r} is not among the audited columns; name one of "
            + ", ".join(repr(c) for c in tables.columns[:10])
        )
    log = AuditLog(notes=list(tables.notes))
    if delta is None:
        delta = _default_delta(len(tables.train))
        log.note(f"delta for the ε lower bound: {delta:.3g}, the training default for {len(tables.train):,} rows")
    quality = _quality(tables, target=target, seed=seed, max_rows=max_rows, rare_k=rare_k, log=log)
    leakage = leakage_audit(tables, epsilon=epsilon, delta=delta, seed=seed, max_rows=max_rows, rare_k=rare_k, log=log)
    return {
        "format": AUDIT_FORMAT,
        "rows": {
            "real_train": len(tables.train),
            "synthetic": len(tables.synthetic),
            "holdout": None if tables.holdout is None else len(tables.holdout),
        },
        "columns": tables.columns,
        "target": target,
        "seed": seed,
        "quality": quality,
        "leakage": leakage,
        **log.to_dict(),
    }


def _default_delta(n: int) -> float:
    """The training default, min(1/(n ln n), 1e-5), as :func:`synthdata.privacy.default_delta`.

    Computed here because importing :mod:`synthdata.privacy` loads Opacus and torch
    (seconds, and a second OpenMP runtime beside scikit-learn's); a test checks that the
    two agree.
    """
    return min(1.0 / (n * math.log(n)), 1e-5) if n >= 2 else 0.0


def _check_claim(epsilon: Any, delta: Any) -> None:
    if epsilon is not None and not (_real(epsilon) and math.isfinite(epsilon) and epsilon > 0):
        raise PrivacyError(f"the claimed epsilon must be a positive finite number, got {epsilon!r}")
    if delta is not None and not (_real(delta) and 0 <= delta < 1):
        raise PrivacyError(f"delta must be a number in [0, 1), got {delta!r}")


def _check_whole(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise DataError(f"{name} must be a whole number of at least {least}, got {value!r}")


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# --------------------------------------------------------------------------- quality


def _quality(
    tables: AuditTables, *, target: str | None, seed: int, max_rows: int, rare_k: int, log: AuditLog
) -> dict[str, Any]:
    """The ``quality`` object: SDMetrics, marginal TVDs, detection, ML utility, plot data."""
    rng = np.random.default_rng([seed, 1])
    pair = {"real_train": tables.train, "synthetic": tables.synthetic}
    sampled = log.subsample("sdmetrics quality report", pair, FULL_ROWS, rng)
    metadata = {"columns": {name: {"sdtype": ColumnKind(kind).sdtype} for name, kind in tables.kinds.items()}}
    report = sdmetrics_quality(sampled["real_train"], sampled["synthetic"], metadata=metadata)
    tvd = marginal_tvd(tables.train, tables.synthetic)
    sampled = log.subsample("detection", pair, max_rows, rng)
    detection = detection_auc(sampled["real_train"], sampled["synthetic"], seed=seed)
    return {
        "sdmetrics_score": report["score"],
        "column_shapes": report["column_shapes"],
        "column_pair_trends": report["column_pair_trends"],
        "tvd_1way": tvd["tvd_1way"],
        "tvd_2way": tvd["tvd_2way"],
        "ml_utility": _ml_utility(tables, target=target, seed=seed, rare_k=rare_k, rng=rng, log=log),
        "detection_auc": detection["auroc"],
        "detection": {key: value for key, value in detection.items() if key != "auroc"},
        "details": {
            "column_shapes": report["details"]["column_shapes"],
            "column_pair_trends": report["details"]["column_pair_trends"],
            "tvd_per_column": tvd["per_column"],
            "tvd_per_pair": tvd["per_pair"],
            "distributions": column_distributions(tables.train, tables.synthetic, k=rare_k, kinds=tables.kinds),
        },
    }


def _ml_utility(
    tables: AuditTables, *, target: str | None, seed: int, rare_k: int, rng: np.random.Generator, log: AuditLog
) -> dict[str, Any] | None:
    if target is None:
        return None
    if tables.holdout is None:
        log.note("ML utility needs holdout rows to test on; none were given, so it was skipped")
        return None
    if not [column for column in tables.train.columns if column != target]:
        log.note(f"ML utility skipped: no column besides the target {target!r} was released to learn from")
        return None
    frames = {"real_train": tables.train, "synthetic": tables.synthetic, "holdout": tables.holdout}
    sampled = log.subsample("ML utility", frames, FULL_ROWS, rng)
    skipped: list[str] = []
    result = ml_utility(sampled["real_train"], sampled["synthetic"], sampled["holdout"], target=target, seed=seed,
                        notes=skipped)
    if result is None:  # the synthetic target gives nothing to train on: a note, never a failed audit
        for note in skipped:
            log.note(note)
        return None
    # The class list is the target's category domain: a class held by a handful of
    # training rows is a fragment of their records, so only the count is kept.
    classes = result.pop("classes", None)
    if classes is not None:
        result["n_classes"] = len(classes)
        positive = result.get("positive_class")
        if positive is not None and int((tables.train[target] == positive).sum()) < rare_k:
            result["positive_class"] = None
    return result


# --------------------------------------------------------------------------- summary


def summary(result: dict[str, Any]) -> list[str]:
    """A few lines for people: quality, utility, leakage, verdict, what was sampled."""
    quality, leakage = result["quality"], result["leakage"]
    lines = [
        f"Quality: SDMetrics score {_num(quality['sdmetrics_score'])} (column shapes "
        f"{_num(quality['column_shapes'])}, pair trends {_num(quality['column_pair_trends'])}); mean TVD 1-way "
        f"{_num(quality['tvd_1way'])}, 2-way {_num(quality['tvd_2way'])}; detection AUROC "
        f"{_num(quality['detection_auc'])} (0.5 = indistinguishable)",
    ]
    utility = quality["ml_utility"]
    if utility is not None:
        metric = "r2" if utility["task"] == "regression" else "auroc"
        lines.append(
            f"ML utility ({utility['target']!r}, {utility['task']}): trained on synthetic {metric.upper()} "
            f"{_num(utility['synthetic'][metric])}"
            + (f", accuracy {_num(utility['synthetic']['accuracy'])}" if metric == "auroc" else "")
            + f"; trained on real {_num(utility['real'][metric])}"
            + (f", accuracy {_num(utility['real']['accuracy'])}" if metric == "auroc" else "")
            + " (tested on the holdout)"
        )
    if leakage["mia_auc"] is not None:
        low, high = leakage["mia_auc_ci"]
        bound = leakage["epsilon_bound"]
        lines.append(
            f"Membership inference: best attack {leakage['best_attack']}, AUROC {leakage['mia_auc']:.3f} "
            f"(95% CI {low:.3f}-{high:.3f}); "
            + ", ".join(
                f"{name} {attack['auroc']:.3f}" for name, attack in leakage["attacks"].items()
            )
        )
        claim = leakage["claimed_epsilon"]
        lines.append(
            f"Empirical epsilon lower bound: {leakage['empirical_epsilon_lower_bound']:.2f} ({bound['attack']}, "
            f"delta {bound['delta']:.3g}); the largest this audit can certify: "
            f"{leakage['max_certifiable_epsilon']:.2f}" + ("" if claim is None else f"; claimed epsilon: {claim:g}")
        )
    copies = leakage["exact_copies"]
    lines.append(
        f"Exact copies: {copies['train_share']:.2%} of synthetic rows equal a training row"
        + ("" if copies["holdout_share"] is None else f", {copies['holdout_share']:.2%} a holdout row")
    )
    rare = leakage["rare_values"]
    lines.append(
        f"Rare values: {rare['rare_values']} synthetic category value(s) held by fewer than {rare['k']} training "
        f"rows ({rare['rare_rows']:,} synthetic rows)"
        + (f", in {', '.join(sorted(rare['columns']))}" if rare["columns"] else "")
    )
    lines.append(f"Verdict: {leakage['verdict']}")
    for entry in result["subsampled"]:
        used = ", ".join(
            f"{entry['rows_used'][role]:,} of {entry['rows_total'][role]:,} {role.replace('_', ' ')} rows"
            for role in entry["rows_used"]
        )
        lines.append(f"Sub-sampled: {entry['metric']}: {used}")
    lines += [f"Note: {note}" for note in result["notes"]]
    lines.append(f"Note: {leakage['note']}")
    return lines


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
