"""Quality audit: how closely a synthetic table follows the real one.

Complementary views, each returning plain JSON-ready dictionaries so a release
report can embed them as they are:

* :func:`marginal_tvd` — total-variation distance of every 1-way and 2-way marginal.
  Cheap, exact and easy to explain: "on average, 8 % of the probability mass of a pair of
  columns sits in the wrong cell".
* :func:`ml_utility` — train on synthetic, test on real, beside train on real, test on
  real, with the same model. It answers the question a data user asks: "can I build the
  model I need from the synthetic copy?"
* :func:`sdmetrics_quality` — the SDMetrics quality report, a score other tools quote,
  so figures can be compared with published ones.
* :func:`detection_auc` — how well a classifier tells real rows from synthetic ones:
  every dependence, of any order, that the synthesis gets wrong helps it.
* :func:`column_distributions` — real and synthetic shares per column, binned for a
  report's plots so that no rare real value (nor a column's extremes) is ever shown.

Every function compares frames the caller already holds. None of them is differentially
private: they read the real data freely, so their outputs are for the data steward (and
for a report whose release the steward approves), not for publication as DP statistics.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from ..errors import DataError
from ..schema import ColumnKind

__all__ = ["column_distributions", "detection_auc", "marginal_tvd", "ml_utility", "sdmetrics_quality",
           "synthetic_model_correct"]

#: A numeric target with at most this many distinct values is predicted as classes.
MAX_NUMERIC_CLASSES = 20
#: Category cap for the gradient-boosting model (its max_bins is 255; one code is spared
#: for the infrequent-categories bucket the encoder adds above this many).
_MAX_MODEL_CATEGORIES = 254
#: Cross-validation folds of the real-vs-synthetic detection classifier.
DETECTION_FOLDS = 3
#: Above this many cells a pair's joint histogram is counted by sorting, not by an array.
_MAX_DENSE_CELLS = 1 << 22
#: Most bars a column's plot shows one value each; the other values share one bar.
MAX_BARS = 20
#: About this many bins between a numeric column's clip points, in its plot.
PLOT_BINS = 18
#: Each clip point of a numeric plot leaves at least this share of the real rows (and at
#: least k rows) beyond it, in an open-ended outer bin.
_CLIP_SHARE = 0.01
_NS_PER_DAY = 86_400e9


# --------------------------------------------------------------------------- TVD


def marginal_tvd(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    bins: int = 20,
) -> dict[str, Any]:
    """Mean total-variation distance of the 1-way and 2-way marginals.

    TVD is half the L1 distance between two distributions: 0 when they match, 1 when
    they share no mass. A numeric (or datetime) column with more than ``bins`` distinct
    real values is cut into quantile bins of the *real* data — so each bin holds about
    the same share of real rows and the distance weights every part of the range — and
    synthetic values beyond the real range fall into the outer bins. Other columns are
    compared as categories (numbers by value, so ``13`` and ``13.0`` agree; everything
    else as text). A missing value is a level of its own, so missingness that the
    synthesis loses or invents counts against it.

    Returns ``{"tvd_1way", "tvd_2way", "per_column": {col: tvd},
    "per_pair": {"a | b": tvd}}``; ``tvd_2way`` is ``None`` for a single column.
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise DataError(f"bins must be a whole number of at least 2, got {bins!r}")
    names = _columns(real, synthetic, columns)
    if len(real) == 0 or len(synthetic) == 0:
        raise DataError(
            f"cannot compare marginals: the real table has {len(real)} rows and the synthetic "
            f"{len(synthetic)}; both need at least one"
        )
    coded = {name: _codes(name, real[name], synthetic[name], bins) for name in names}

    per_column = {
        name: _tvd(r, s, k, len(real), len(synthetic)) for name, (r, s, k) in coded.items()
    }
    per_pair: dict[str, float] = {}
    for a, b in combinations(names, 2):
        ra, sa, ka = coded[a]
        rb, sb, kb = coded[b]
        # One joint code per row turns a contingency table into a single bincount.
        per_pair[f"{a} | {b}"] = _tvd(ra * kb + rb, sa * kb + sb, ka * kb, len(real), len(synthetic))
    return {
        "tvd_1way": float(np.mean(list(per_column.values()))),
        "tvd_2way": float(np.mean(list(per_pair.values()))) if per_pair else None,
        "per_column": per_column,
        "per_pair": per_pair,
    }


def _columns(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[str] | None) -> list[str]:
    names = list(real.columns) if columns is None else list(columns)
    if not names:
        raise DataError("no columns to compare; pass at least one column")
    for name in names:
        for label, frame in (("real", real), ("synthetic", synthetic)):
            if name not in frame.columns:
                raise DataError(f"column {name!r} is not in the {label} table; compare columns both tables hold")
    return names


def _codes(name: str, real: pd.Series, synthetic: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes in [0, k) for both columns, on levels read off the real column."""
    kind = _kind(real)
    if kind.compares_as_number:
        r = _as_float(real, kind, name, "real")
        s = _as_float(synthetic, kind, name, "synthetic")
        observed = r[~np.isnan(r)]
        if np.unique(observed).size > bins:
            edges = np.unique(np.quantile(observed, np.linspace(0.0, 1.0, bins + 1)))
            inner = edges[1:-1]  # the outer edges are open: out-of-range values join the end bins
            missing = inner.size + 1
            return _binned(r, inner, missing), _binned(s, inner, missing), missing + 1
        return _level_codes(pd.Series(r), pd.Series(s))
    return _level_codes(_as_text(real), _as_text(synthetic))


def _binned(values: np.ndarray, inner: np.ndarray, missing: int) -> np.ndarray:
    codes = np.searchsorted(inner, values, side="right")
    codes[np.isnan(values)] = missing
    return codes.astype(np.int64)


def _level_codes(real: pd.Series, synthetic: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes for the real levels, then one for missing, then one for 'not a real level'.

    Folding every synthetic-only level into one code leaves the TVD unchanged (the real
    distribution has no mass on any of them) and keeps the joint tables small however
    many stray values a generator invents.
    """
    real_codes, levels = pd.factorize(real, use_na_sentinel=True)
    missing, unseen = len(levels), len(levels) + 1
    real_codes = np.where(real_codes < 0, missing, real_codes).astype(np.int64)
    synthetic_codes = pd.Index(levels).get_indexer(synthetic)
    synthetic_codes = np.where(synthetic_codes < 0, unseen, synthetic_codes)
    synthetic_codes[synthetic.isna().to_numpy()] = missing
    return real_codes, synthetic_codes.astype(np.int64), unseen + 1


def _tvd(real_codes: np.ndarray, synthetic_codes: np.ndarray, cells: int, n_real: int, n_synthetic: int) -> float:
    if cells <= max(_MAX_DENSE_CELLS, 4 * (n_real + n_synthetic)):
        p = np.bincount(real_codes, minlength=cells) / n_real
        q = np.bincount(synthetic_codes, minlength=cells) / n_synthetic
    else:  # a huge, sparse table: count only the cells that occur
        _, inverse = np.unique(np.concatenate([real_codes, synthetic_codes]), return_inverse=True)
        used = int(inverse.max()) + 1
        p = np.bincount(inverse[:n_real], minlength=used) / n_real
        q = np.bincount(inverse[n_real:], minlength=used) / n_synthetic
    return float(0.5 * np.abs(p - q).sum())


def _kind(series: pd.Series) -> ColumnKind:
    """The column's kind from the dtype of the real column (see :class:`~synthdata.schema.ColumnKind`)."""
    return ColumnKind.of_dtype(series)


def _as_float(series: pd.Series, kind: str, name: str, label: str) -> np.ndarray:
    """A numeric or datetime column as floats, NaN for missing; refuse text that is neither."""
    try:
        if kind == "datetime":
            with warnings.catch_warnings():  # "could not infer format": reading cell by cell is what is meant
                warnings.filterwarnings("ignore", "Could not infer format", UserWarning)
                stamps = pd.to_datetime(series, errors="raise")
            if getattr(stamps.dt, "tz", None) is not None:
                stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
            values = stamps.astype("datetime64[ns]").to_numpy().view(np.int64).astype(float)
            values[stamps.isna().to_numpy()] = np.nan
            return values
        if ptypes.is_bool_dtype(series.dtype) or not ptypes.is_numeric_dtype(series.dtype):
            series = pd.to_numeric(series, errors="raise")
        return series.to_numpy(dtype=float, na_value=np.nan)
    except (ValueError, TypeError):
        what = "dates" if kind == "datetime" else "numbers"
        raise DataError(
            f"column {name!r} holds {what} in the real table but values that are not {what} in the "
            f"{label} one; the tables must use the same types"
        ) from None


def _as_text(series: pd.Series) -> pd.Series:
    """Categories as text (so 'True' and True agree), missing kept as NaN."""
    missing = series.isna().to_numpy()
    text = series.astype(object).astype(str).to_numpy(dtype=object)
    text[missing] = np.nan
    return pd.Series(text, dtype=object)


# --------------------------------------------------------------------------- distributions


def column_distributions(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    k: int,
    kinds: dict[str, str] | None = None,
    max_bars: int = MAX_BARS,
    bins: int = PLOT_BINS,
) -> dict[str, dict[str, Any]]:
    """Real and synthetic shares per column, for the report's per-column plots.

    The bars are chosen so that no rare real value is ever shown (the result goes into a
    report that must hold no fragment of a real record):

    * **values** — a categorical or boolean column, and a numeric one with at most
      ``max_bars`` distinct real values: one bar per value held by at least ``k``
      training rows, the ``max_bars`` most frequent of them (by count, then by text).
      Every other value — rarer than ``k`` in the real data, absent from the synthetic
      data (so a DP release's report names nothing the release does not), beyond the
      cap, or found only in the synthetic data — is counted in ``other``, never named.
    * **intervals** — any other numeric or datetime column: about ``bins`` bins of one
      round width (1, 2, 2.5 or 5 times a power of ten; whole days for dates) between
      clip points, plus two open-ended outer bins ("< a", "≥ b"). The clip points are
      the real values with at least ``max(k, 1 %)`` of the rows beyond them, rounded
      outwards to the width: the extremes of the real data (a real person's value) never
      become an edge, and every edge is a point of a round grid rather than a recorded
      value. Out-of-range synthetic values fall in the outer bins; an outer bin that
      neither table reaches is left out.

    Missing values are a bar of their own. Shares are of all rows, so a column's
    ``real`` bars, ``other`` and ``missing`` sum to 1 (likewise for synthetic).
    ``kinds`` maps columns to ``numeric``, ``datetime``, ``categorical`` or ``boolean``
    (default: read off the real dtypes).

    Returns ``{column: {"kind", "binning", "labels", "real", "synthetic", "edges",
    "other", "missing", "rows"}}``: ``labels`` name the bars, ``real`` and ``synthetic``
    are their shares; ``edges`` (intervals only; ISO dates for a datetime column) are the
    bin edges from the lower clip point to the upper one; ``other`` and ``missing`` are ``{"real", "synthetic"}`` shares
    (``other`` is ``None`` for intervals, which cover every value); ``rows`` counts each
    table's rows.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DataError(f"the rare-value threshold k must be a whole number of at least 1, got {k!r}")
    names = _columns(real, synthetic, None if kinds is None else list(kinds))
    result = {}
    for name in names:
        kind = _kind(real[name]) if kinds is None else kinds[name]
        if ColumnKind(kind).compares_as_number:
            r = _as_float(real[name], kind, name, "real")
            s = _as_float(synthetic[name], kind, name, "synthetic")
            if kind == ColumnKind.NUMERICAL and np.unique(r[~np.isnan(r)]).size <= max_bars:
                entry = _value_shares(pd.Series(r), pd.Series(s), k=k, max_bars=max_bars, numeric=True)
            else:
                entry = _interval_shares(r, s, k=k, bins=bins, dates=kind == "datetime")
        else:
            entry = _value_shares(_as_text(real[name]), _as_text(synthetic[name]), k=k, max_bars=max_bars,
                                  numeric=False)
        result[name] = {"kind": kind, **entry, "rows": {"real": len(real), "synthetic": len(synthetic)}}
    return result


def _value_shares(real: pd.Series, synthetic: pd.Series, *, k: int, max_bars: int, numeric: bool) -> dict[str, Any]:
    counts = real.value_counts(dropna=True)
    synthetic_counts = synthetic.value_counts(dropna=True)
    # Named: values k or more real rows hold *and* the synthetic table already shows. Of a
    # DP release, the report then names no value the release itself does not disclose.
    common = counts[(counts >= k) & counts.index.isin(synthetic_counts.index)]
    # Most frequent first, ties by text, so the bars do not depend on the row order.
    chosen = sorted(common.index, key=lambda v: (-int(common[v]), str(v)))[:max_bars]
    if numeric:
        chosen.sort()  # numbers read best in order
    real_shares = [int(counts[v]) / len(real) for v in chosen]
    synthetic_shares = [int(synthetic_counts.get(v, 0)) / len(synthetic) for v in chosen]
    missing = {"real": float(real.isna().mean()), "synthetic": float(synthetic.isna().mean())}
    return {
        "binning": "values",
        "labels": [_number_text(v) if numeric else str(v) for v in chosen],
        "real": _shares(real_shares),
        "synthetic": _shares(synthetic_shares),
        "edges": None,
        "other": _pair(1.0 - missing["real"] - sum(real_shares), 1.0 - missing["synthetic"] - sum(synthetic_shares)),
        "missing": _pair(missing["real"], missing["synthetic"]),
    }


def _interval_shares(real: np.ndarray, synthetic: np.ndarray, *, k: int, bins: int, dates: bool) -> dict[str, Any]:
    scale = _NS_PER_DAY if dates else 1.0  # dates are binned in days
    observed = np.sort(real[~np.isnan(real)]) / scale
    beyond = max(k, math.ceil(_CLIP_SHARE * observed.size))
    missing = _pair(float(np.isnan(real).mean()), float(np.isnan(synthetic).mean()))
    if observed.size <= 2 * beyond:
        # Too few values to leave k of them beyond each clip point: one bar for all.
        real_share, synthetic_share = 1.0 - missing["real"], 1.0 - missing["synthetic"]
        return {"binning": "intervals", "labels": ["any value"], "real": _shares([real_share]),
                "synthetic": _shares([synthetic_share]), "edges": [], "other": None, "missing": missing}
    low, high = observed[beyond], observed[observed.size - 1 - beyond]
    whole = bool(np.all(observed == np.round(observed)))
    width = _round_width((high - low) / bins, whole=whole or dates and high - low >= bins)
    decimals = _decimals(width)
    first, last = math.floor(low / width), math.ceil(high / width)
    edges = np.round(width * np.arange(first, max(last, first + 1) + 1), decimals)
    counts = {}
    for label, values in (("real", real), ("synthetic", synthetic)):
        present = values[~np.isnan(values)] / scale
        codes = np.searchsorted(edges, present, side="right")  # 0: below the first edge
        counts[label] = np.bincount(codes, minlength=edges.size + 1) / values.size
    text = (lambda e: _date_text(e, width)) if dates else (lambda e: f"{e:,.{decimals}f}")
    labels = [f"< {text(edges[0])}"]
    labels += [f"{text(a)} – {text(b)}" for a, b in zip(edges[:-1], edges[1:])]
    labels.append(f"≥ {text(edges[-1])}")
    # An open outer bin that neither table reaches (the clip point rounded outwards past
    # every value) is left out.
    used = np.ones(len(labels), dtype=bool)
    for end in (0, -1):
        used[end] = counts["real"][end] > 0 or counts["synthetic"][end] > 0
    return {
        "binning": "intervals",
        "labels": [label for label, keep in zip(labels, used) if keep],
        "real": _shares(counts["real"][used]),
        "synthetic": _shares(counts["synthetic"][used]),
        "edges": [_date_text(e, width, iso=True) for e in edges] if dates else [float(e) for e in edges],
        "other": None,
        "missing": missing,
    }


def _round_width(raw: float, *, whole: bool) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^m at least ``raw`` (1, 2, 5 × 10^m, ≥ 1 when ``whole``)."""
    if not raw > 0:
        return 1.0
    exponent = math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    width = next(m * 10.0**exponent for m in steps if m * 10.0**exponent >= raw * (1 - 1e-12))
    return max(width, 1.0) if whole else width


def _decimals(width: float) -> int:
    return next((d for d in range(13) if abs(round(width, d) - width) <= 1e-9 * width), 12)


def _date_text(days: float, width: float, *, iso: bool = False) -> str:
    stamp = pd.Timestamp(int(round(days * _NS_PER_DAY)), unit="ns")
    if iso:
        return stamp.isoformat()
    return stamp.strftime("%Y-%m-%d" if width >= 1 else "%Y-%m-%d %H:%M")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _shares(values) -> list[float]:
    return [round(float(v), 6) for v in values]


def _pair(real: float, synthetic: float) -> dict[str, float]:
    # max(0, ·): the sums above can leave -1e-17 where the answer is 0
    return {"real": round(max(0.0, real), 6), "synthetic": round(max(0.0, synthetic), 6)}


# --------------------------------------------------------------------------- ML utility


def ml_utility(
    real_train: pd.DataFrame,
    synthetic: pd.DataFrame,
    real_test: pd.DataFrame,
    *,
    target: str,
    seed: int = 0,
    notes: list[str] | None = None,
) -> dict[str, Any] | None:
    """Train on synthetic, test on real — beside train on real, test on real.

    Both models are the same scikit-learn histogram gradient-boosting model, with the
    same settings and seed, so the gap between them is the price of training on the
    synthetic copy. ``real_test`` must be rows the synthesis never saw (a holdout),
    otherwise a generator that memorises rows looks better than it is.

    A numeric target with more than :data:`MAX_NUMERIC_CLASSES` distinct values is a
    regression (scored by R²); any other target a classification, scored by AUROC and
    accuracy. For two classes the positive class is the rarer one in ``real_train`` (the
    one a user usually wants to find); for more, AUROC is the macro one-vs-rest mean.
    Categorical features are ordinal-encoded on the training rows; a category the model
    has not seen, and a missing value, both reach it as missing. Rows whose target is
    missing are left out, and so are rows whose class ``real_train`` never holds — each
    with a ``note``.

    Returns ``{"task", "target", "synthetic": {...}, "real": {...}}`` with
    ``{"auroc", "accuracy"}`` or ``{"r2"}`` as scores, plus ``rows`` and, when something
    needs saying, ``note``. None when the synthetic rows give nothing to train on (their
    target is missing in every row, or holds no class ``real_train`` holds): whether a
    column survives a private release never decides whether its audit succeeds; the
    reason is appended to ``notes``.
    """
    for label, frame in (("real_train", real_train), ("synthetic", synthetic), ("real_test", real_test)):
        if target not in frame.columns:
            raise DataError(f"the target column {target!r} is not in {label}; name a column all three tables hold")
    features = [c for c in real_train.columns if c != target]
    if not features:
        raise DataError(f"real_train holds only the target {target!r}; there are no features to learn from")
    for label, frame in (("synthetic", synthetic), ("real_test", real_test)):
        absent = [c for c in features if c not in frame.columns]
        if absent:
            raise DataError(f"column {absent[0]!r} of real_train is not in {label}; the tables must share columns")

    outer, notes = notes, []
    frames = {}
    for label, frame in (("real_train", real_train), ("synthetic", synthetic), ("real_test", real_test)):
        kept = frame[frame[target].notna()]
        if len(kept) < len(frame):
            notes.append(f"{len(frame) - len(kept):,} rows of {label} with a missing target were left out")
        if kept.empty:
            if label == "synthetic":
                return _unscored(outer, f"ML utility was not measured: the synthetic target {target!r} is missing "
                                        "in every row")
            raise DataError(f"{label} has no row with a value for the target {target!r}")
        frames[label] = kept

    kinds = {c: _kind(real_train[c]) for c in features}
    target_kind = _kind(real_train[target])
    numeric_target = target_kind == ColumnKind.NUMERICAL
    if numeric_target and frames["real_train"][target].nunique() > MAX_NUMERIC_CLASSES:
        result = _regression(frames, features, kinds, target, seed)
    else:
        try:
            result = _classification(frames, features, kinds, target, numeric_target, seed, notes)
        except _Unscorable as exc:
            return _unscored(outer, str(exc))
    result["rows"] = {label: len(frame) for label, frame in frames.items()}
    if notes:
        result["note"] = "; ".join(notes)
    return result


class _Unscorable(Exception):
    """The synthetic rows give the utility model nothing to train on."""


def _unscored(notes: list[str] | None, reason: str) -> None:
    if notes is not None:
        notes.append(reason)
    return None


def synthetic_model_correct(synthetic: pd.DataFrame, test: pd.DataFrame, *, target: str, kinds: dict[str, str],
                            seed: int = 0) -> np.ndarray | None:
    """Whether a model trained on ``synthetic`` alone predicts each row of ``test`` right.

    The classifier of :func:`ml_utility`, fitted on the synthetic rows only (a DP output,
    free to read); nothing about the real rows shapes the model, so each real row moves
    the count of right answers by at most one. A test row whose target is missing, or
    holds a class the synthetic rows never show, counts as wrong. None when the target
    is numeric with many values (a regression) or the synthetic rows hold one class.
    """
    features = [c for c in synthetic.columns if c != target]
    if not features or target not in test.columns:
        return None
    if kinds[target] == ColumnKind.NUMERICAL and synthetic[target].nunique() > MAX_NUMERIC_CLASSES:
        return None
    numeric_target = kinds[target] == ColumnKind.NUMERICAL

    def labels(frame: pd.DataFrame) -> np.ndarray:
        series = frame[target]
        if numeric_target:
            return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float).astype(object)
        return _as_text(series).to_numpy()

    kept = synthetic[synthetic[target].notna()]
    y_train = labels(kept)
    classes = pd.Index(pd.unique(y_train))
    if len(classes) < 2:
        return None
    model = _model("classification", kinds, features, seed)
    X_train, X_test = _features(kept, test, features, kinds)
    with _fitting():
        model.fit(X_train, classes.get_indexer(y_train))
        predicted = model.predict(X_test)
    truth = classes.get_indexer(labels(test))
    return (truth >= 0) & (predicted == truth)


def _classification(
    frames: dict[str, pd.DataFrame],
    features: list[str],
    kinds: dict[str, str],
    target: str,
    numeric_target: bool,
    seed: int,
    notes: list[str],
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score

    def labels(frame: pd.DataFrame, label: str) -> pd.Series:
        series = frame[target]
        if numeric_target:
            return pd.Series(_as_float(series, ColumnKind.NUMERICAL, target, label), index=series.index)
        return pd.Series(_as_text(series).to_numpy(), index=series.index)

    train_labels = labels(frames["real_train"], "real_train")
    counts = train_labels.value_counts()
    classes = sorted(counts.index, key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise DataError(f"the target {target!r} holds a single class in real_train; there is nothing to predict")
    index = pd.Index(classes)

    encoded = {}
    for label in ("real_train", "synthetic", "real_test"):
        y = index.get_indexer(labels(frames[label], label))
        unknown = y < 0
        if unknown.any():
            notes.append(
                f"{int(unknown.sum()):,} rows of {label} with a class real_train never holds were left out"
            )
            frames[label] = frames[label][~unknown]
            y = y[~unknown]
            if len(y) == 0:
                if label == "synthetic":
                    raise _Unscorable(f"ML utility was not measured: no synthetic row holds a class of the target "
                                      f"{target!r} that real_train holds")
                raise DataError(f"no row of {label} holds a class of the target {target!r} that real_train holds")
        encoded[label] = y

    binary = len(classes) == 2
    positive = None
    if binary:
        # The rarer class is the one worth finding; ties go to the later class.
        rarer = min(classes, key=lambda c: (counts[c], -classes.index(c)))
        positive = classes.index(rarer)

    y_test = encoded["real_test"]
    scores = {}
    for label in ("synthetic", "real_train"):
        y_train = encoded[label]
        present = np.unique(y_train)
        if present.size == 1:
            proba = np.zeros((len(y_test), len(classes)))
            proba[:, present[0]] = 1.0
            notes.append(
                f"{label} holds a single class of {target!r} ({_plain(classes[present[0]])!r}), so a model "
                "trained on it always predicts that class: AUROC is 0.5 by definition"
            )
        else:
            model = _model("classification", kinds, features, seed)
            X_train, X_test = _features(frames[label], frames["real_test"], features, kinds)
            with _fitting():
                model.fit(X_train, y_train)
                proba = np.zeros((len(y_test), len(classes)))
                proba[:, model.classes_] = model.predict_proba(X_test)
        predicted = np.argmax(proba, axis=1)
        auroc = _auroc(y_test, proba, positive, len(classes), notes)
        scores["synthetic" if label == "synthetic" else "real"] = {
            "auroc": auroc,
            "accuracy": float(accuracy_score(y_test, predicted)),
        }

    result: dict[str, Any] = {"task": "classification", "target": target, "classes": [_plain(c) for c in classes]}
    if binary:
        result["positive_class"] = _plain(classes[positive])
    return {**result, **scores}


def _auroc(y: np.ndarray, proba: np.ndarray, positive: int | None, n_classes: int, notes: list[str]) -> float | None:
    from sklearn.metrics import roc_auc_score

    if positive is not None:
        truth = y == positive
        if truth.all() or not truth.any():
            notes.append("real_test holds a single class, so AUROC is undefined")
            return None
        return float(roc_auc_score(truth, proba[:, positive]))
    # Macro one-vs-rest over the classes the test rows contain (a class with no test row
    # has no AUROC); a class the model never saw scores 0 everywhere, i.e. 0.5.
    values = [
        roc_auc_score(y == c, proba[:, c]) for c in range(n_classes) if 0 < int((y == c).sum()) < len(y)
    ]
    if not values:
        notes.append("real_test holds a single class, so AUROC is undefined")
        return None
    return float(np.mean(values))


def _regression(
    frames: dict[str, pd.DataFrame],
    features: list[str],
    kinds: dict[str, str],
    target: str,
    seed: int,
) -> dict[str, Any]:
    from sklearn.metrics import r2_score

    y_test = _as_float(frames["real_test"][target], ColumnKind.NUMERICAL, target, "real_test")
    scores = {}
    for label in ("synthetic", "real_train"):
        y_train = _as_float(frames[label][target], ColumnKind.NUMERICAL, target, label)
        model = _model("regression", kinds, features, seed)
        X_train, X_test = _features(frames[label], frames["real_test"], features, kinds)
        with _fitting():
            model.fit(X_train, y_train)
            predicted = model.predict(X_test)
        scores["synthetic" if label == "synthetic" else "real"] = {"r2": float(r2_score(y_test, predicted))}
    return {"task": "regression", "target": target, **scores}


@contextmanager
def _fitting() -> Iterator[None]:
    """Fit the gradient-boosting models on one OpenMP thread, without warnings.

    The model runs a parallel region per tree node: thousands of tiny ones. On a
    machine whose cores are busy with other work, the threads that wait for a busy
    core spin, and a fit measured 3 to 20 times slower on two threads than on one (a
    0.7 s fit took 16 s). One thread keeps the audit's time predictable; its models
    read at most a few ten thousand rows. The warnings are scikit-learn's notes on data
    it finds odd, not the caller's to act on.
    """
    from threadpoolctl import threadpool_limits  # installed with scikit-learn, which requires it

    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="openmp"):
        warnings.simplefilter("ignore")
        yield


def _model(task: str, kinds: dict[str, str], features: list[str], seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    mask = [ColumnKind(kinds[c]).is_label for c in features]
    cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    # No early stopping: above 10,000 rows it would hold out a stratified validation split,
    # which fails on a class held by a single row (a rare synthetic class, say).
    # L2 regularisation on the leaf values: without it a leaf of rows the model already
    # predicts with certainty has a near-zero hessian and its Newton step explodes; on a
    # target a feature nearly determines (a loan's grade from its interest rate) the raw
    # scores reached 3e5 and the real-data model fell below the majority class (accuracy
    # 0.32, AUROC 0.65 where 1.0 is reachable). Adult and shoppers read the same with it.
    return cls(categorical_features=mask if any(mask) else None, random_state=seed, early_stopping=False,
               l2_regularization=1.0)


def _features(
    train: pd.DataFrame, test: pd.DataFrame, features: list[str], kinds: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Float matrices: numbers as they are, dates as nanoseconds, categories as codes.

    Codes are read off the training rows only; the encoder turns an unseen category
    into NaN, which the model handles as it does a missing value.
    """
    from sklearn.preprocessing import OrdinalEncoder

    def numeric(frame: pd.DataFrame, label: str) -> np.ndarray:
        columns = [_as_float(frame[c], kinds[c], c, label) for c in features if not ColumnKind(kinds[c]).is_label]
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))

    categorical = [c for c in features if ColumnKind(kinds[c]).is_label]
    X_train, X_test = numeric(train, "training"), numeric(test, "real_test")
    if categorical:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=_MAX_MODEL_CATEGORIES,
            dtype=float,
        )
        text = lambda frame: pd.DataFrame({c: _as_text(frame[c]).to_numpy() for c in categorical})  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codes_train = encoder.fit_transform(text(train))
            codes_test = encoder.transform(text(test))
        X_train, X_test = np.hstack([X_train, codes_train]), np.hstack([X_test, codes_test])
    # Reorder to the feature order, which the categorical mask follows.
    order = [c for c in features if not ColumnKind(kinds[c]).is_label] + categorical
    position = [order.index(c) for c in features]
    X_train, X_test = X_train[:, position], X_test[:, position]
    # A column missing in every training row (a synthetic column nothing was released for)
    # carries no information, and the model's binning cannot handle it: make it constant.
    empty = np.isnan(X_train).all(axis=0) if len(X_train) else np.zeros(X_train.shape[1], dtype=bool)
    X_train[:, empty], X_test[:, empty] = 0.0, 0.0
    return X_train, X_test


# --------------------------------------------------------------------------- detection


def detection_auc(
    real: pd.DataFrame, synthetic: pd.DataFrame, *, seed: int = 0, folds: int = DETECTION_FOLDS
) -> dict[str, Any]:
    """Cross-validated AUROC of a classifier telling real rows from synthetic ones.

    0.5 means the classifier cannot tell them apart; 1 that every synthetic row gives
    itself away. The model is the gradient boosting of :func:`ml_utility`, on every
    column of ``real``; each row is scored by a model that did not train on it
    (stratified ``folds``-fold cross-validation), so the figure is not flattered by
    over-fitting. AUROC does not depend on the class balance, so the tables need not be
    the same size. ``auroc`` is ``None`` (with a ``note``) when a table has fewer than
    two rows per fold.

    Returns ``{"auroc", "folds", "rows": {"real", "synthetic"}, "model"}``.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    names = _columns(real, synthetic, None)
    result: dict[str, Any] = {
        "auroc": None,
        "folds": folds,
        "rows": {"real": len(real), "synthetic": len(synthetic)},
        "model": "HistGradientBoostingClassifier",
    }
    if min(len(real), len(synthetic)) < 2 * folds:
        return {**result, "note": f"too few rows to cross-validate in {folds} folds"}
    kinds = {name: _kind(real[name]) for name in names}
    both = pd.concat([real[names], synthetic[names]], ignore_index=True)
    X, _ = _features(both, both, names, kinds)
    is_synthetic = np.r_[np.zeros(len(real), dtype=int), np.ones(len(synthetic), dtype=int)]
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with _fitting():
        proba = cross_val_predict(_model("classification", kinds, names, seed), X, is_synthetic, cv=split,
                                  method="predict_proba")[:, 1]
    return {**result, "auroc": float(roc_auc_score(is_synthetic, proba))}


# --------------------------------------------------------------------------- SDMetrics


def sdmetrics_quality(
    real: pd.DataFrame, synthetic: pd.DataFrame, *, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The SDMetrics single-table quality report, as plain numbers.

    ``score`` is the mean of ``column_shapes`` (per-column distribution similarity:
    KS complement for numbers, TV complement for categories) and
    ``column_pair_trends`` (per-pair correlation or contingency similarity); 1 is
    best. ``metadata`` is SDMetrics' ``{"columns": {name: {"sdtype": ...}}}``; when left
    out it is read off the real dtypes (numerical, categorical, boolean, datetime).
    Scores SDMetrics cannot compute come back as ``None``.

    Returns ``{"score", "column_shapes", "column_pair_trends",
    "details": {"column_shapes": [...], "column_pair_trends": [...]}}``.
    """
    names = list(real.columns)
    _columns(real, synthetic, names)
    if len(real) == 0 or len(synthetic) == 0:
        raise DataError(
            f"cannot score quality: the real table has {len(real)} rows and the synthetic "
            f"{len(synthetic)}; both need at least one"
        )
    if metadata is None:
        metadata = {"columns": {name: {"sdtype": ColumnKind.of_dtype(real[name]).sdtype} for name in names}}
    with warnings.catch_warnings():
        # SDMetrics warns on import (a deprecated module path kept for older releases)
        # and on data it finds odd; neither is the caller's to act on.
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        report.generate(real, synthetic[names], metadata, verbose=False)
        properties = report.get_properties()
        shapes = report.get_details(property_name="Column Shapes")
        trends = report.get_details(property_name="Column Pair Trends")
    by_name = dict(zip(properties["Property"], properties["Score"]))
    return {
        "score": _plain(report.get_score()),
        "column_shapes": _plain(by_name.get("Column Shapes")),
        "column_pair_trends": _plain(by_name.get("Column Pair Trends")),
        "details": {
            "column_shapes": _records(shapes),
            "column_pair_trends": _records(trends),
        },
    }




def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): _error_kind(v) if k == "Error" else _plain(v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _error_kind(message: Any) -> str | None:
    """Only the exception's name of an SDMetrics error ('ValueError: …' -> 'ValueError').

    The message after it can quote a value of the data, and these details go into
    reports that must hold no real value.
    """
    text = _plain(message)
    return None if text is None else str(text).split(":", 1)[0].strip()


def _plain(value: Any) -> Any:
    """A JSON-ready Python value: numpy scalars unwrapped, NaN and NA as None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
