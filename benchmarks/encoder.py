"""The tabular encoder alone: what each number and date column's released 1-way counts draw.

A release's 1-way fidelity on a number column is set first by the encoder (the schema release,
the first Gaussian release of the columns' histograms, the refinement of their spread pieces):
the generator can only place rows on the levels and pieces it is given. This script fits
``TabularGAN`` up to the encoder — the same private steps, the same noise — stops before the
pair marginals, draws each column from its released 1-way counts, and prints per column the
1-way TVD against the real column (20 quantile bins of the real values) and the share of values
outside the real range. Seconds a fit instead of minutes, so paired comparisons of an encoder
change over many noise seeds are cheap: ``--noise-seed`` seeds the privacy noise
(``insecure_noise_seed``: for benchmarks only), so two checkouts fitted with the same seeds
differ only by the change (where it draws no extra noise).

    .venv/bin/python benchmarks/encoder.py shoppers --seeds 1000-1005
    .venv/bin/python benchmarks/encoder.py benchmarks/.cache/unseen/loans.csv --seeds 1-8 --json loans.json
    .venv/bin/python benchmarks/encoder.py seattle_weather --seeds 1 --columns temp_max --show
    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/encoder.py ...   # the other arm

Tables: ``adult``, ``shoppers``, ``heart``, ``retail`` (``../shared/datasets/``), the names
``unseen.py --list`` prepares (``benchmarks/.cache/unseen/``), or a CSV path. Not part of the
test suite.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # appended: a PYTHONPATH checkout comes first

from suite import SHARED, _numbers  # noqa: E402  (after the path: suite keeps a PYTHONPATH checkout first)
from unseen import CACHE as UNSEEN  # noqa: E402

TABLES = {
    "adult": (SHARED / "adult" / "train.csv", ","),
    "shoppers": (SHARED / "online_shoppers" / "online_shoppers_intention.csv", ";"),
    "heart": (SHARED / "heart_disease" / "heart_cleveland.csv", ","),
    "retail": (SHARED / "online_retail" / "online_retail_dec2010.csv", ","),
}
DRAWS = 20_000
BINS = 20


class _Stop(Exception):
    """Raised where the fit would measure the pair marginals: the encoder is done."""


def read_table(name: str) -> pd.DataFrame:
    if name in TABLES:
        path, sep = TABLES[name]
        return pd.read_csv(path, sep=sep)
    path = Path(name)
    if not path.exists():
        path = UNSEEN / f"{name}.csv"
    if not path.exists():
        raise SystemExit(f"{name}: not a CSV path, one of {sorted(TABLES)}, or a table unseen.py prepared "
                         f"(run benchmarks/unseen.py --list first)")
    return pd.read_csv(path)


def fit_encoder(frame: pd.DataFrame, *, epsilon: float, noise_seed: int, privacy_unit: str | None = None):
    """The encoder ``TabularGAN(epsilon=...).fit(frame)`` fits, with the privacy noise seeded."""
    import synthdata.tabular.estimator as estimator
    from synthdata.tabular.estimator import TabularGAN

    captured: dict[str, Any] = {}

    def stop(codes, encoder, **_):
        captured["encoder"] = encoder
        raise _Stop

    original = estimator.measure_marginals
    estimator.measure_marginals = stop  # the fit's next private step after the encoder
    try:
        model = TabularGAN(epsilon=epsilon, seed=noise_seed, insecure_noise_seed=noise_seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(frame, **({"privacy_unit": privacy_unit} if privacy_unit else {}))
    except _Stop:
        pass
    finally:
        estimator.measure_marginals = original
    if "encoder" not in captured:
        raise RuntimeError("the fit finished without reaching the pair marginals: nothing was captured")
    return captured["encoder"]


def _as_numbers(series: pd.Series, kind: str) -> np.ndarray:
    """Numbers, or dates as seconds since 1970, without missing values (the suite's reading)."""
    values = _numbers(series, kind)
    return values[~np.isnan(values)]


def column_figures(encoder, frame: pd.DataFrame, *, seed: int, columns: list[str] | None = None,
                   draws: int = DRAWS) -> dict[str, dict[str, float]]:
    """Per number and date column: 1-way TVD of ``draws`` values drawn from the released 1-way
    counts against the real column (``BINS`` quantile bins), and the share outside the real range."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for index, code in enumerate(encoder.codes_):
        if code.kind not in ("numerical", "datetime") or (columns and code.name not in columns):
            continue
        weights = np.clip(np.asarray(code.counts, dtype=float), 0.0, None)
        if weights.sum() <= 0:
            continue
        levels = np.zeros((draws, len(encoder.codes_)), dtype=np.int64)
        levels[:, index] = rng.choice(len(weights), draws, p=weights / weights.sum())
        synthetic = _as_numbers(encoder.decode(levels, rng=rng)[code.name], code.kind)
        real = _as_numbers(frame[code.name], code.kind)
        if not len(real) or not len(synthetic):
            continue
        quantiles = np.unique(np.quantile(real, np.linspace(0.0, 1.0, BINS + 1)))
        edges = np.concatenate([[-np.inf], quantiles[1:-1], [np.inf]])
        real_share = np.histogram(real, edges)[0] / len(real)
        synthetic_share = np.histogram(synthetic, edges)[0] / len(synthetic)
        out[code.name] = {
            "tvd": round(0.5 * float(np.abs(real_share - synthetic_share).sum()), 4),
            "out_of_range": round(float(np.mean((synthetic < real.min()) | (synthetic > real.max()))), 4),
        }
    return out


def _seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high) + 1) if high else [int(low)])
    return seeds


def _show(encoder, columns: list[str] | None) -> None:
    for code in encoder.codes_:
        if code.kind not in ("numerical", "datetime") or (columns and code.name not in columns):
            continue
        print(f"  {code.name}: {code.size} levels")
        for level, count in zip(code.levels, code.counts):
            pieces = list(zip(level.get("lows", []), level.get("highs", []), level.get("weights", [])))
            text = ", ".join(f"[{low}, {high}] {weight:.1f}" for low, high, weight in pieces[:4])
            print(f"    {count:9.1f}  {text}{' ...' if len(pieces) > 4 else ''}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", help="adult, shoppers, heart, retail, a table unseen.py prepared, or a CSV path")
    parser.add_argument("--seeds", type=_seeds, default=[1000, 1001, 1002, 1003],
                        help="noise seeds, e.g. 1000-1005 or 1,3,7 (default 1000-1003)")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--columns", nargs="*", default=None, help="only these columns")
    parser.add_argument("--privacy-unit", default=None, help="the column naming the person (as the CLI's option)")
    parser.add_argument("--show", action="store_true", help="print each column's released levels and pieces")
    parser.add_argument("--json", type=Path, default=None, help="write every fit's figures here")
    args = parser.parse_args(argv)

    import synthdata

    print(f"synthdata from {Path(synthdata.__file__).parent}, epsilon {args.epsilon:g}, table {args.table}")
    frame = read_table(args.table)
    fits: dict[int, dict[str, dict[str, float]]] = {}
    for seed in args.seeds:
        encoder = fit_encoder(frame, epsilon=args.epsilon, noise_seed=seed, privacy_unit=args.privacy_unit)
        fits[seed] = column_figures(encoder, frame, seed=seed, columns=args.columns)
        figures = fits[seed]
        tvd = np.mean([f["tvd"] for f in figures.values()]) if figures else float("nan")
        out = np.mean([f["out_of_range"] for f in figures.values()]) if figures else float("nan")
        print(f"seed {seed}: {len(figures)} columns, mean 1-way TVD {tvd:.4f}, mean share out of range {out:.4f}")
        if args.show:
            _show(encoder, args.columns)
    names = sorted({name for figures in fits.values() for name in figures})
    print(f"\n{'column':32s} {'fits':>4s} {'TVD':>7s} {'out':>7s}")
    for name in names:
        rows = [figures[name] for figures in fits.values() if name in figures]
        print(f"{name:32s} {len(rows):4d} {np.mean([r['tvd'] for r in rows]):7.4f} "
              f"{np.mean([r['out_of_range'] for r in rows]):7.4f}")
    per_fit = [np.mean([f["tvd"] for f in figures.values()]) for figures in fits.values() if figures]
    per_out = [np.mean([f["out_of_range"] for f in figures.values()]) for figures in fits.values() if figures]
    if per_fit:
        print(f"{'mean over fits':32s} {len(per_fit):4d} {np.mean(per_fit):7.4f} {np.mean(per_out):7.4f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"table": args.table, "epsilon": args.epsilon,
                                         "fits": {str(k): v for k, v in fits.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
