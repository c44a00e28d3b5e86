"""The public report's view: plain values drawn from a ``synthdata-report/2`` predicate.

:func:`public_view` reads the signed public predicate (built by
:func:`synthdata.release.public_report`) and nothing else, and returns the plain values
the templates draw. Every figure it passes on is in the predicate, or arithmetic on what
is (a chart's coordinates, a ratio of two released numbers). A missing or malformed part
becomes None, and the page says "not reported".

The parts that differ by modality (fidelity, the data description) come from
:data:`MODALITY_VIEWS`; a new modality adds one function there and one template
(``public_<modality>.html.j2``) that fills the ``fidelity`` and ``data_details`` blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import svg
from .values import get, mapping, number, pair_values, sequence, text

__all__ = ["MODALITY_VIEWS", "public_view"]

#: Model parameters never shown: none is in a release's predicate, but an older or
#: hand-made one could carry a seed, which would let anyone replay the noise.
HIDDEN_PARAMETERS = frozenset({"seed", "insecure_noise_seed", "random_state"})
#: The released files listed by name; the rest are counted.
MAX_FILES_LISTED = 12


def public_view(predicate: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the public page shows, as plain values."""
    p = predicate if isinstance(predicate, Mapping) else {}
    modality = text(p, "modality")
    privacy = _privacy(mapping(p, "privacy"))
    audit = _audit(mapping(p, "audit"), privacy)
    extra = MODALITY_VIEWS.get(modality or "", _no_modality)(p)
    return {
        "title": "synthdata release report" + (f": {text(p, 'data', 'input_name')}" if text(p, "data", "input_name")
                                               else ""),
        "format": text(p, "format"),
        "created": text(p, "created"),
        "modality": modality,
        "input_name": text(p, "data", "input_name"),
        "privacy": privacy,
        "audit": audit,
        "verdict": _verdict(privacy, audit, extra["data"]),
        "fidelity": extra["fidelity"],
        "data": extra["data"],
        "fingerprint": _fingerprint(mapping(p, "data", "input_fingerprint")),
        "model": _model(mapping(p, "model")),
        "software": [(str(k), v) for k, v in mapping(p, "software").items() if isinstance(v, (str, int, float))],
        "signing": {"algorithm": text(p, "signing", "algorithm"),
                    "fingerprint": text(p, "signing", "public_key_fingerprint")},
        "files": _files(sequence(p, "files")),
        "statement": text(p, "statement"),
    }


# --------------------------------------------------------------------------- verdict and budget


def _verdict(privacy: dict[str, Any], audit: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    spent, target = privacy["spent"], privacy["epsilon"]
    over = spent is not None and target is not None and spent > target * (1 + 1e-9)
    privacy_state = "flag" if over else ("pass" if spent is not None else "neutral")
    states = {privacy_state, audit["state"], "flag" if privacy["noise_reproducible"] else "pass"}
    state = "flag" if "flag" in states else ("pass" if states == {"pass"} else "neutral")
    return {"state": state, "privacy_state": privacy_state, "over": over, "rows_synthetic": data.get("rows_synthetic"),
            "rows_dp": data.get("rows_dp"), "noun": data.get("noun", "rows")}


def _privacy(privacy: Mapping[str, Any]) -> dict[str, Any]:
    lines = [_budget_line(line) for line in sequence(privacy, "budget") if isinstance(line, Mapping)]
    steps = [(line["step"] or "unnamed step", line["epsilon"]) for line in lines]
    bar = None
    if steps and all(value is not None for _, value in steps):
        bar = svg.budget_bar(steps, number(privacy, "epsilon"))
    reproducible = get(privacy, "noise_reproducible")
    return {
        "present": bool(privacy),
        "epsilon": number(privacy, "epsilon"),
        "spent": number(privacy, "epsilon_spent"),
        "delta": number(privacy, "delta"),
        "accountant": text(privacy, "accountant"),
        "unit": text(privacy, "unit"),
        "relation": text(privacy, "neighbouring_relation"),
        "noise_source": text(privacy, "noise_source"),
        "noise_reproducible": reproducible if isinstance(reproducible, bool) else None,
        "lines": lines,
        # One unit for every line (the usual case): said once, not repeated on each line.
        "one_unit": bool(lines) and all(line["unit"] == text(privacy, "unit") for line in lines),
        "bar": bar,
    }


def _budget_line(line: Mapping[str, Any]) -> dict[str, Any]:
    parameters = [(str(k), v) for k, v in mapping(line, "parameters").items() if k != "sensitivity"]
    return {"step": text(line, "step"), "mechanism": text(line, "mechanism"), "epsilon": number(line, "epsilon"),
            "delta": number(line, "delta"), "sensitivity": number(line, "sensitivity"), "unit": text(line, "unit"),
            "parameters": parameters}


# --------------------------------------------------------------------------- the DP audit figures


def _audit(audit: Mapping[str, Any], privacy: dict[str, Any]) -> dict[str, Any]:
    verdict = text(audit, "verdict")
    lowered = (verdict or "").lower()
    if lowered.startswith("violation"):
        state, word = "flag", "Violation"
    elif lowered.startswith("no violation"):
        state, word = "pass", "No violation detected"
    else:
        state, word = "neutral", "Not tested"
    figures = mapping(audit, "figures")
    sigma = number(figures, "noise_std")
    return {
        "present": bool(audit),
        "verdict": verdict,
        "state": state,
        "word": word,
        "note": text(audit, "note"),
        "figures_present": bool(figures),
        "noise_std": sigma,
        "sensitivity": number(figures, "sensitivity"),
        "unit": text(figures, "unit"),
        "utility": _utility(mapping(figures, "ml_utility")),
        "utility_note": text(figures, "ml_utility_note"),
        "membership": _membership(mapping(figures, "membership"), sigma, privacy["epsilon"]),
        "copies": _copies(mapping(figures, "copies"), sigma),
    }


def _utility(utility: Mapping[str, Any]) -> dict[str, Any] | None:
    if not utility:
        return None
    accuracy, std = number(utility, "accuracy"), number(utility, "accuracy_noise_std")
    majority = number(utility, "majority_class_accuracy")
    figure = None
    if accuracy is not None:
        references = [(majority, "majority-class baseline")] if majority is not None else []
        figure = svg.estimate_scale(accuracy, std, references=references,
                                    label="Accuracy of a model trained on the synthetic data, with its noise")
    return {"accuracy": accuracy, "std": std, "majority": majority, "holdout": number(utility, "holdout_units"),
            "target": text(utility, "target"), "figure": figure}


def _membership(membership: Mapping[str, Any], sigma: float | None, claimed: float | None) -> dict[str, Any] | None:
    if not membership:
        return None
    auc, std, sample = number(membership, "auc"), number(membership, "auc_noise_std"), number(membership, "sample")
    # The true and false positives are noisy counts over `sample` units, noised like the U statistic.
    rate_std = sigma / sample if sigma is not None and sample else std
    bound, certifiable = number(membership, "epsilon_lower_bound"), number(membership, "max_certifiable_epsilon")
    return {
        "attack": text(membership, "attack"),
        "auc": auc, "std": std, "sample": sample,
        "tpr": number(membership, "tpr"), "fpr": number(membership, "fpr"), "rate_std": rate_std,
        "bound": bound, "certifiable": certifiable, "claimed": claimed,
        "auc_figure": None if auc is None else svg.estimate_scale(
            auc, std, references=[(0.5, "chance")], label="Membership-attack AUC, with its noise", percent=False),
        "bound_figure": None if bound is None else svg.epsilon_bar(bound, claimed, certifiable),
    }


def _copies(copies: Mapping[str, Any], sigma: float | None) -> dict[str, Any] | None:
    entries = [(key, number(copies, key)) for key in copies]
    if not entries:
        return None

    def find(side: str) -> tuple[str, float | None] | None:
        return next(((key.removeprefix(side + "_").removesuffix("_with_a_copy"), value)
                     for key, value in entries if key.startswith(side + "_")), None)

    train, holdout = find("train"), find("holdout")
    return {"train": train[1] if train else None, "holdout": holdout[1] if holdout else None,
            "what": (train or holdout or ("units", None))[0], "std": sigma}


# --------------------------------------------------------------------------- modalities


def _table(p: Mapping[str, Any]) -> dict[str, Any]:
    data = mapping(p, "data")
    fidelity = mapping(p, "audit", "fidelity")
    per_column = {str(k): number(v) for k, v in mapping(fidelity, "per_column").items()}
    declared = [text(c, "name") for c in sequence(data, "columns") if isinstance(c, Mapping) and text(c, "name")]
    order = [c for c in declared if c in per_column] + [c for c in per_column if c not in declared]
    pairs = pair_values(mapping(fidelity, "per_pair"), order)
    return {
        "fidelity": {
            "present": bool(fidelity),
            "tvd_1way": number(fidelity, "tvd_1way_to_dp_histograms"),
            "tvd_2way": number(fidelity, "tvd_2way_to_dp_marginals"),
            "note": text(fidelity, "note"),
            "columns": svg.value_bars([(c, per_column[c]) for c in order],
                                      label="Total-variation distance of each column to its DP histogram"),
            "pairs": svg.heatmap(order, pairs, label="Total-variation distance of each measured pair to its DP "
                                 "marginal", blank="not measured (no DP marginal of this pair)"),
            "pairs_measured": len(pairs),
        },
        "data": {
            "noun": "rows",
            "rows_dp": number(data, "rows_train_dp"),
            "rows_synthetic": number(data, "rows_synthetic"),
            "holdout_fraction": number(data, "holdout_fraction"),
            "schema": text(data, "schema"),
            "columns": [{"name": text(c, "name"), "type": text(c, "type"),
                         "integer": get(c, "integer") if isinstance(get(c, "integer"), bool) else None}
                        for c in sequence(data, "columns") if isinstance(c, Mapping)],
            "excluded": [str(c) if not isinstance(c, Mapping) else str(get(c, "name"))
                         for c in sequence(data, "excluded_columns")],
            "excluded_reported": isinstance(get(data, "excluded_columns"), list),
        },
    }


def _image(p: Mapping[str, Any]) -> dict[str, Any]:
    data = mapping(p, "data")
    fidelity = mapping(p, "audit", "fidelity")
    shape = [int(v) for v in sequence(data, "image_shape") if number(v) is not None]
    classes = get(data, "classes_released")
    return {
        "fidelity": {
            "present": bool(fidelity),
            "class_tvd": number(fidelity, "class_share_tvd_to_dp_counts"),
            "note": text(fidelity, "note"),
        },
        "data": {
            "noun": "images",
            "rows_dp": number(data, "images_train_dp"),
            "rows_synthetic": number(data, "rows_synthetic"),
            "holdout_fraction": number(data, "holdout_fraction"),
            "shape": shape if len(shape) == 3 else None,
            "mode": text(data, "image_mode"),
            "classes": [str(c) for c in classes] if isinstance(classes, list) else None,
            "classes_how": text(data, "classes"),
        },
    }


def _no_modality(p: Mapping[str, Any]) -> dict[str, Any]:
    data = mapping(p, "data")
    return {"fidelity": {"present": False},
            "data": {"noun": "rows", "rows_dp": None, "rows_synthetic": number(data, "rows_synthetic"),
                     "holdout_fraction": number(data, "holdout_fraction")}}


#: The modality-specific parts of the view, by ``predicate["modality"]``.
MODALITY_VIEWS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {"table": _table, "image": _image}


# --------------------------------------------------------------------------- provenance


def _fingerprint(fingerprint: Mapping[str, Any]) -> dict[str, Any] | None:
    if not fingerprint:
        return None
    return {"algorithm": text(fingerprint, "algorithm"), "salt": text(fingerprint, "salt"),
            "mac": text(fingerprint, "mac")}


def _model(model: Mapping[str, Any]) -> dict[str, Any]:
    params = [(str(k), v) for k, v in mapping(model, "params").items() if str(k) not in HIDDEN_PARAMETERS]
    return {"present": bool(model), "name": text(model, "name"), "class": text(model, "class"), "params": params}


def _files(files: Any) -> dict[str, Any]:
    names = [str(f) for f in files if isinstance(f, str)]
    return {"count": len(names), "shown": names[:MAX_FILES_LISTED], "more": max(len(names) - MAX_FILES_LISTED, 0)}
