"""The steward's audit view: plain values drawn from a ``synthdata-steward-audit/1`` predicate.

The predicate (built by :func:`synthdata.release.steward_report`) holds the exact audit
of the release, computed on the real rows: the table audit (``synthdata-audit/1``, see
:mod:`synthdata.audit`) or the image audit (:func:`synthdata.images.audit.audit_images`),
under its ``audit`` key. Both use the same key names for quality and leakage where they
apply, so one leakage view serves both; the quality view is per modality
(:data:`QUALITY_VIEWS`, with a ``steward_<modality>.html.j2`` template each).

Per-column plots draw ``quality.details.distributions`` as the audit binned them (only
values at least ``rare_k`` training rows hold are named): the page never bins anything
itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import svg
from .values import get, mapping, number, pair_values, sequence, text

__all__ = ["QUALITY_VIEWS", "steward_view"]

#: The label the page carries whatever the predicate says (PRODUCT.md, rule 10).
NOT_FOR_RELEASE = "NOT FOR RELEASE — computed on the real data"


def steward_view(predicate: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the steward's page shows, as plain values."""
    p = predicate if isinstance(predicate, Mapping) else {}
    audit = mapping(p, "audit")
    modality = text(p, "modality")
    quality = QUALITY_VIEWS.get(modality or "", _no_quality)(mapping(audit, "quality"))
    leakage = _leakage(mapping(audit, "leakage"))
    data = mapping(p, "data")
    return {
        "title": "synthdata steward's audit (not for release)",
        "banner": NOT_FOR_RELEASE,
        "label": text(p, "label"),
        "format": text(p, "format"),
        "audit_format": text(audit, "format"),
        "created": text(p, "created"),
        "modality": modality,
        "source": text(data, "source"),
        "data": [(str(k), number(v)) for k, v in data.items() if k != "source"],
        "rows": [(str(k), number(v)) for k, v in mapping(audit, "rows").items()],
        "privacy": {"epsilon": number(p, "privacy", "epsilon"), "spent": number(p, "privacy", "epsilon_spent"),
                    "delta": number(p, "privacy", "delta"), "unit": text(p, "privacy", "unit")},
        "release": {"directory": text(p, "release", "directory"), "report_sha256": text(p, "release", "report_sha256"),
                    "fingerprint": text(p, "release", "input_fingerprint", "mac")},
        "software": [(str(k), v) for k, v in mapping(p, "software").items() if isinstance(v, (str, int, float))],
        "audit_present": bool(audit),
        "quality": quality,
        "leakage": leakage,
        "notes": _notes(audit, leakage),
    }


# --------------------------------------------------------------------------- quality


def _table_quality(quality: Mapping[str, Any]) -> dict[str, Any]:
    details = mapping(quality, "details")
    measures = [
        ("SDMetrics quality score", number(quality, "sdmetrics_score"), "percent",
         "mean of the two below; 100% means the same distributions"),
        ("Column shapes", number(quality, "column_shapes"), "percent", "similarity of each column's distribution"),
        ("Column pair trends", number(quality, "column_pair_trends"), "percent",
         "similarity of each pair's correlation or contingency table"),
        ("Mean total-variation distance, 1-way", number(quality, "tvd_1way"), "fixed",
         "share of probability mass in the wrong place per column; 0 is best"),
        ("Mean total-variation distance, 2-way", number(quality, "tvd_2way"), "fixed", "the same per pair of columns"),
        ("Detection AUROC", number(quality, "detection_auc"), "fixed",
         "how well a classifier tells real rows from synthetic ones; 0.5 = indistinguishable"),
    ]
    return {
        "present": bool(quality),
        "score": number(quality, "sdmetrics_score"),
        "measures": measures,
        "utility": _utility(mapping(quality, "ml_utility")),
        "distributions": _distributions(details),
        "pairs": _pair_heatmap(details),
        "columns": _column_rows(details),
    }


def _image_quality(quality: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "present": bool(quality),
        "score": None,
        "frechet": number(quality, "frechet_distance"),
        "frechet_floor": number(quality, "frechet_distance_floor"),
        "frechet_note": text(quality, "frechet_distance_note"),
        "frechet_basis": text(quality, "frechet_feature_basis"),
        "sdmetrics_note": text(quality, "sdmetrics_note"),
        "utility": _utility(mapping(quality, "ml_utility")),
    }


def _no_quality(quality: Mapping[str, Any]) -> dict[str, Any]:
    return {"present": bool(quality), "score": number(quality, "sdmetrics_score"),
            "utility": _utility(mapping(quality, "ml_utility"))}


#: The modality-specific quality view, by ``predicate["modality"]``.
QUALITY_VIEWS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "table": _table_quality, "image": _image_quality}


def _utility(utility: Mapping[str, Any]) -> dict[str, Any] | None:
    if not utility:
        return None
    regression = text(utility, "task") == "regression"
    metrics = [("r2", "R²")] if regression else [("auroc", "AUROC"), ("accuracy", "Accuracy")]
    if not regression and number(utility, "synthetic", "auroc") is None and number(utility, "real", "auroc") is None:
        metrics = [("accuracy", "Accuracy")]
    trained = (("synthetic", "trained on the synthetic data"), ("real", "trained on the real training data"))
    rows = [(label, [number(utility, key, m) for m, _ in metrics]) for key, label in trained]
    return {"target": text(utility, "target"), "task": text(utility, "task"), "model": text(utility, "model"),
            "headings": [name for _, name in metrics], "rows": rows,
            "tested_on": text(utility, "tested_on") or "real holdout rows"}


def _distributions(details: Mapping[str, Any]) -> list[dict[str, Any]]:
    shapes = {text(row, "Column"): number(row, "Score") for row in sequence(details, "column_shapes")}
    tvd = mapping(details, "tvd_per_column")
    out = []
    for name, entry in mapping(details, "distributions").items():
        if not isinstance(entry, Mapping):
            continue
        rows = [(str(label), number(real), number(synthetic), False)
                for label, real, synthetic in zip(sequence(entry, "labels"), sequence(entry, "real"),
                                                   sequence(entry, "synthetic"))]
        for key, label in (("other", "other values"), ("missing", "missing")):
            real, synthetic = number(entry, key, "real"), number(entry, key, "synthetic")
            if (real or 0) > 0 or (synthetic or 0) > 0:
                rows.append((label, real, synthetic, True))
        out.append({"name": str(name), "kind": text(entry, "kind"), "tvd": number(tvd, str(name)),
                    "score": shapes.get(str(name)),
                    "figure": svg.paired_bars(rows, label=f"Real and synthetic distribution of {name}")})
    return out


def _pair_heatmap(details: Mapping[str, Any]) -> dict[str, Any] | None:
    """Every pair's TVD; SDMetrics' pair scores (as 1 − score) where the audit holds no TVDs."""
    columns = [str(c) for c in mapping(details, "tvd_per_column")]
    values = pair_values(mapping(details, "tvd_per_pair"), columns)
    what = ("Total-variation distance between the real and the synthetic joint distribution of each pair (numbers "
            "in 20 quantile bins of the real data): 0 is a perfect match, 1 no overlap.")
    if not values:
        columns, values = [], {}
        for row in sequence(details, "column_pair_trends"):
            a, b, score = text(row, "Column 1"), text(row, "Column 2"), number(row, "Score")
            if a is None or b is None:
                continue
            columns += [c for c in (a, b) if c not in columns]
            if score is not None:
                values[(a, b)] = values[(b, a)] = 1.0 - score
        what = ("1 − the SDMetrics pair-trend score of each pair (correlation similarity for numbers, contingency "
                "similarity otherwise): 0 is a perfect match; grey pairs SDMetrics did not score.")
    figure = svg.heatmap(columns, values, label="Difference between real and synthetic pairs of columns",
                         blank="not computed")
    return None if figure is None else {"figure": figure, "what": what}


def _column_rows(details: Mapping[str, Any]) -> list[dict[str, Any]]:
    shapes = [row for row in sequence(details, "column_shapes") if isinstance(row, Mapping)]
    tvd = mapping(details, "tvd_per_column")
    distributions = mapping(details, "distributions")
    names = [str(get(row, "Column")) for row in shapes] or [str(c) for c in tvd]
    by_name = {str(get(row, "Column")): row for row in shapes}
    return [{"name": name, "kind": text(distributions, name, "kind"), "metric": text(by_name.get(name), "Metric"),
             "score": number(by_name.get(name), "Score"), "tvd": number(tvd, name),
             "missing_real": number(distributions, name, "missing", "real"),
             "missing_synthetic": number(distributions, name, "missing", "synthetic")} for name in names]


# --------------------------------------------------------------------------- leakage


def _leakage(leakage: Mapping[str, Any]) -> dict[str, Any]:
    detected = get(leakage, "leak_detected")
    state, word = ({True: ("flag", "Flagged"), False: ("pass", "No leak detected")}.get(detected, ("neutral",
                                                                                                  "Not tested"))
                   if isinstance(detected, bool) else ("neutral", "Not tested"))
    attacks = {str(k): v for k, v in mapping(leakage, "attacks").items() if isinstance(v, Mapping)}
    curves = []
    for name, attack in attacks.items():
        pairs = [(number(f), number(t)) for f, t in zip(sequence(attack, "roc", "fpr"), sequence(attack, "roc", "tpr"))]
        curves.append((name.replace("_", " "), [(f, t) for f, t in pairs if f is not None and t is not None],
                       number(attack, "auroc")))
    bound = number(leakage, "empirical_epsilon_lower_bound")
    claimed = number(leakage, "claimed_epsilon")
    certifiable = number(leakage, "max_certifiable_epsilon")
    detail = mapping(leakage, "epsilon_bound")
    return {
        "present": bool(leakage),
        "state": state, "word": word, "verdict": text(leakage, "verdict"), "note": text(leakage, "note"),
        "attacks": [_attack(name, attack, name == text(leakage, "best_attack")) for name, attack in attacks.items()],
        "roc": svg.roc_curves(curves) if curves else None,
        "rows": {k: number(leakage, "rows", k) for k in ("members", "non_members", "reference")}
        if mapping(leakage, "rows") else None,
        "epsilon": None if bound is None else {
            "bound": bound, "claimed": claimed, "certifiable": certifiable,
            "attack": text(detail, "attack"), "tpr": number(detail, "tpr"), "fpr": number(detail, "fpr"),
            "delta": number(detail, "delta") if number(detail, "delta") is not None else number(leakage, "delta"),
            "method": text(detail, "method"), "figure": svg.epsilon_bar(bound, claimed, certifiable)},
        "copies": _exact_copies(mapping(leakage, "exact_copies")),
        "memorisation": _memorisation(mapping(leakage, "memorisation")),
        "rare": _rare(mapping(leakage, "rare_values")),
    }


def _attack(name: str, attack: Mapping[str, Any], best: bool) -> dict[str, Any]:
    low = {number(e, "target_fpr"): e for e in sequence(attack, "tpr_at_fpr") if isinstance(e, Mapping)}
    return {"name": name, "best": best, "description": text(attack, "description"),
            "auroc": number(attack, "auroc"), "ci": get(attack, "auroc_ci"),
            "at_fpr": [(number(low.get(t), "tpr"), get(low.get(t), "tpr_ci")) for t in (0.01, 0.001)]}


def _exact_copies(copies: Mapping[str, Any]) -> dict[str, Any] | None:
    if not copies:
        return None
    matched = mapping(copies, "matched")
    significant = get(matched, "significant")
    return {"train": number(copies, "train_share"), "holdout": number(copies, "holdout_share"),
            "p_value": number(matched, "p_value"), "significant": significant if isinstance(significant, bool)
            else None, "rows_each": number(matched, "rows_each")}


def _memorisation(memo: Mapping[str, Any]) -> dict[str, Any] | None:
    synthetic, holdout = mapping(memo, "synthetic_to_train"), mapping(memo, "holdout_to_train")
    if not synthetic:
        return None
    quantiles = [str(q) for q in synthetic]
    return {"metric": text(memo, "metric"), "quantiles": quantiles,
            "synthetic": [number(synthetic, q) for q in quantiles],
            "holdout": [number(holdout, q) for q in quantiles] if holdout else None,
            "share": number(memo, "share_closer_than_holdout_q01"), "explain": text(memo, "explain")}


def _rare(rare: Mapping[str, Any]) -> dict[str, Any] | None:
    if not rare:
        return None
    columns = [{"name": str(name), **{k: number(c, k) for k in ("rare_values", "rare_rows", "unseen_values",
                                                                  "unseen_rows")}}
               for name, c in mapping(rare, "columns").items() if isinstance(c, Mapping)]
    return {"k": number(rare, "k"), "rare_values": number(rare, "rare_values"), "rare_rows": number(rare, "rare_rows"),
            "rare_share": number(rare, "rare_rows_share"), "unseen_values": number(rare, "unseen_values"),
            "unseen_rows": number(rare, "unseen_rows"), "columns": columns}


# --------------------------------------------------------------------------- notes


def _notes(audit: Mapping[str, Any], leakage: dict[str, Any]) -> list[str]:
    notes = [leakage["note"]] if leakage["note"] else []
    notes += [str(n) for n in sequence(audit, "notes") if isinstance(n, str)]
    for entry in sequence(audit, "subsampled"):
        used, total = mapping(entry, "rows_used"), mapping(entry, "rows_total")
        if not used:
            continue
        counts = ", ".join(f"{_count(used.get(role))} of {_count(total.get(role))} {str(role).replace('_', ' ')} rows"
                           for role in used)
        notes.append(f"Sub-sampled for {text(entry, 'metric') or 'a metric'}: {counts}")
    return notes


def _count(value: Any) -> str:
    x = number(value)
    return "an unreported number of" if x is None else f"{round(x):,}"
