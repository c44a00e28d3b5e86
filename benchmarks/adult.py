"""Quality and speed of synthdata's tabular GAN on the Adult census table.

Fits ``synthdata.TabularGAN`` on Adult's training split at each privacy budget, samples
a synthetic table, and prints one row of figures per budget: privacy spent, fit time,
SDMetrics quality, mean 1-way and 2-way TVD, and train-on-synthetic/test-on-real
AUROC and accuracy beside the train-on-real figures. The issue's targets follow.

    .venv/bin/python benchmarks/adult.py                        # epsilon 1, 3 and 10
    .venv/bin/python benchmarks/adult.py --epsilon 1 --json out.json
    .venv/bin/python benchmarks/adult.py --baseline independent   # sanity check, no model
    .venv/bin/python benchmarks/adult.py --epsilon 3 --model-option epochs=50

The data is read from ``../shared/datasets/adult/`` beside the repository; it is never
copied into it. Not part of the test suite: a full run takes minutes.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ADULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "adult"
TARGET = "income"

#: The issues' acceptance targets: (metric key, comparison, threshold) per epsilon.
#: Issue 10 (utility does not regress) at epsilon 1; issue 11 (higher-order structure) at 10.
TARGETS: dict[float, list[tuple[str, str, float]]] = {
    1.0: [
        ("auroc_syn", ">=", 0.87),
        ("tvd_2way", "<=", 0.05),
        ("fit_s", "<=", 300.0),
    ],
    10.0: [
        ("auroc_syn", ">=", 0.90),
        ("tvd_2way", "<=", 0.03),
    ],
}
COLUMNS = (
    ("epsilon", "{:>7}"),
    ("epsilon_spent", "{:>13}"),
    ("fit_s", "{:>7}"),
    ("quality", "{:>7}"),
    ("column_shapes", "{:>13}"),
    ("pair_trends", "{:>11}"),
    ("tvd_1way", "{:>8}"),
    ("tvd_2way", "{:>8}"),
    ("auroc_syn", "{:>9}"),
    ("acc_syn", "{:>7}"),
    ("auroc_real", "{:>10}"),
    ("acc_real", "{:>8}"),
)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        options = dict(_option(text) for text in args.model_option)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    train, test = _read_adult()
    rows = args.rows if args.rows is not None else len(train)
    if rows < 1:
        sys.exit(f"error: --rows must be at least 1, got {rows}")

    started = time.perf_counter()
    from synthdata.audit import marginal_tvd, ml_utility, sdmetrics_quality

    _warm_imports()  # so that the metric timings below are the metrics', not first imports'
    import_s = time.perf_counter() - started

    if args.baseline is not None:
        runs: list[float | None] = [None]
        model_class = None
        if args.epsilon or options:
            print("note: --baseline ignores --epsilon and --model-option", file=sys.stderr)
    else:
        runs = list(args.epsilon or [1.0, 3.0, 10.0])
        model_class = _model_class()

    label = "independent-marginals baseline (not private)" if args.baseline else "synthdata.TabularGAN"
    print(f"Adult: {len(train):,} train rows, {len(test):,} test rows, {train.shape[1]} columns; target {TARGET!r}")
    print(f"generator: {label}; delta={args.delta:g}, seed={args.seed}, synthetic rows={rows:,}")
    if options and model_class is not None:
        print(f"model options: {options}")
    print()
    print(" ".join(fmt.format(name) for name, fmt in COLUMNS) + "   metrics_s")

    results: list[dict[str, Any]] = []
    for epsilon in runs:
        if model_class is None:
            started = time.perf_counter()
            synthetic = _independent(train, rows, seed=args.seed)
            fit_s, spent = time.perf_counter() - started, None
        else:
            synthetic, fit_s, spent = _fit_sample(model_class, train, rows, epsilon, args, options)

        timings: dict[str, float] = {}
        started = time.perf_counter()
        quality = sdmetrics_quality(train, synthetic)
        timings["sdmetrics_s"] = time.perf_counter() - started
        started = time.perf_counter()
        tvd = marginal_tvd(train, synthetic)
        timings["tvd_s"] = time.perf_counter() - started
        started = time.perf_counter()
        utility = ml_utility(train, synthetic, test, target=TARGET, seed=args.seed)
        timings["ml_utility_s"] = time.perf_counter() - started
        timings["total_s"] = sum(timings.values())

        row = {
            "epsilon": epsilon,
            "epsilon_spent": spent,
            "fit_s": fit_s,
            "quality": quality["score"],
            "column_shapes": quality["column_shapes"],
            "pair_trends": quality["column_pair_trends"],
            "tvd_1way": tvd["tvd_1way"],
            "tvd_2way": tvd["tvd_2way"],
            "auroc_syn": utility["synthetic"]["auroc"],
            "acc_syn": utility["synthetic"]["accuracy"],
            "auroc_real": utility["real"]["auroc"],
            "acc_real": utility["real"]["accuracy"],
        }
        print(" ".join(fmt.format(_cell(name, row[name])) for name, fmt in COLUMNS) + f"   {timings['total_s']:9.1f}")
        if utility.get("note"):
            print(f"  note: {utility['note']}")
        results.append({
            "summary": row,
            "metrics_timing": timings,
            "quality": quality,
            "tvd": tvd,
            "ml_utility": utility,
        })

    print()
    for result in results:
        t = result["metrics_timing"]
        print(
            f"metrics took {t['total_s']:.1f} s (sdmetrics {t['sdmetrics_s']:.1f} s, "
            f"TVD {t['tvd_s']:.2f} s, ML utility {t['ml_utility_s']:.1f} s)"
            + (f" at epsilon={_cell('epsilon', result['summary']['epsilon'])}" if len(results) > 1 else "")
        )
    print(f"(imports of sdmetrics and scikit-learn, before the runs: {import_s:.1f} s)")
    print()
    _print_targets(results, baseline=args.baseline is not None)

    if args.json is not None:
        document = {
            "benchmark": "adult",
            "generator": "independent" if args.baseline else "TabularGAN",
            "delta": args.delta,
            "seed": args.seed,
            "rows": rows,
            "model_options": options,
            "python": platform.python_version(),
            "runs": results,
        }
        args.json.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epsilon", type=float, action="append", help="privacy budget; repeat for several (default: 1, 3, 10)")
    parser.add_argument("--delta", type=float, default=1e-6,
                        help="privacy delta (default: 1e-6, the model's; it must be well below 1/n)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the model, sampling and metrics (default: 0)")
    parser.add_argument("--rows", type=int, help="synthetic rows to sample (default: as many as the training split)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write every figure, with details, to this JSON file")
    parser.add_argument(
        "--baseline",
        choices=["independent"],
        help="instead of the model, sample each column independently from the real marginals "
        "(a non-private sanity baseline: right marginals, no dependence between columns)",
    )
    parser.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument for the model's constructor; repeatable (VALUE read as int, float or bool when it can be)",
    )
    return parser


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"--model-option needs KEY=VALUE with KEY a Python name, got {text!r}")
    return key, _parse_value(value.strip())


def _parse_value(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    if value[:1] in "{[":  # e.g. budget_split={"discriminator": 0}
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


def _read_adult() -> tuple[pd.DataFrame, pd.DataFrame]:
    paths = [ADULT / "train.csv", ADULT / "test.csv"]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        sys.exit(
            f"error: the Adult data is not at {ADULT} (missing {', '.join(absent)}); this benchmark "
            "expects the shared datasets folder beside the repository, as ../shared/datasets/adult/"
        )
    import synthdata

    train, test = (synthdata.read_table(p).frame.reset_index(drop=True) for p in paths)
    return train, test


def _warm_imports() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sdmetrics' deprecated module path warns on import
        import sdmetrics.reports.single_table  # noqa: F401
        from sdmetrics.reports.single_table import QualityReport  # noqa: F401
        import sklearn.ensemble  # noqa: F401


def _model_class():
    try:
        import synthdata
    except ImportError as exc:  # pragma: no cover - an uninstalled checkout
        sys.exit(f"error: cannot import synthdata ({exc}); run `make test` once to set up .venv")
    model_class = getattr(synthdata, "TabularGAN", None)
    if model_class is None:
        sys.exit(
            "error: this synthdata has no TabularGAN yet, so there is no model to benchmark; "
            "run with --baseline independent to check the benchmark itself"
        )
    return model_class


def _fit_sample(model_class, train: pd.DataFrame, rows: int, epsilon: float, args, options: dict[str, Any]):
    from synthdata import SynthdataError

    try:
        model = model_class(epsilon=epsilon, delta=args.delta, seed=args.seed, **options)
    except TypeError as exc:
        sys.exit(f"error: TabularGAN does not take these options ({exc}); check --model-option")
    except SynthdataError as exc:
        sys.exit(f"error: {exc.message}")
    started = time.perf_counter()
    try:
        model = model.fit(train)
    except SynthdataError as exc:
        sys.exit(f"error: fitting at epsilon={epsilon:g} failed: {exc.message}")
    fit_s = time.perf_counter() - started
    synthetic = model.sample(rows)
    spent = getattr(model, "epsilon_spent_", None)
    return synthetic, fit_s, None if spent is None else float(spent)


def _independent(train: pd.DataFrame, rows: int, *, seed: int) -> pd.DataFrame:
    """Each column drawn with replacement from the real column, on its own.

    Every marginal is right (up to sampling noise) and every dependence is gone, so
    this pins what the scores read for "marginals only": a model must beat it on pair
    trends, 2-way TVD and AUROC to have learned anything beyond the marginals.
    """
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {name: train[name].to_numpy()[rng.integers(0, len(train), rows)] for name in train.columns}
    ).astype(train.dtypes.to_dict())


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "epsilon":
        return f"{value:g}"
    if name in ("fit_s",):
        return f"{value:.1f}"
    return f"{value:.3f}"


def _print_targets(results: list[dict[str, Any]], *, baseline: bool) -> None:
    if baseline:
        # The baseline has no epsilon; set it against every target, for reference.
        print("targets (from the issue), against the baseline for reference:")
        by_epsilon = {epsilon: results[0]["summary"] for epsilon in TARGETS}
    else:
        print("targets (from the issue):")
        by_epsilon = {r["summary"]["epsilon"]: r["summary"] for r in results}
    for epsilon, targets in TARGETS.items():
        row = by_epsilon.get(epsilon)
        parts = []
        for key, op, threshold in targets:
            text = f"{key} {op} {threshold:g}"
            if row is not None and row.get(key) is not None:
                value = row[key]
                met = value >= threshold if op == ">=" else value <= threshold
                text += f" ({_cell(key, value)} {'met' if met else 'MISSED'})"
            parts.append(text)
        suffix = "" if row is not None else "  [not run]"
        print(f"  epsilon={epsilon:g}: " + ", ".join(parts) + suffix)


if __name__ == "__main__":
    sys.exit(main())
