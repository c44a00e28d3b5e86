"""Fit smartnoise-synth's MST or AIM on a training CSV and write a synthetic CSV.

Runs inside the benchmark's own smartnoise-synth environment (``benchmarks/suite.py``
builds it under ``benchmarks/.cache/``), never the project's: smartnoise-synth 1.0.8 pins
an old Opacus. The suite calls it once per method, dataset, budget and seed, as a fresh
process so that its time and peak memory are its own::

    python smartnoise_runner.py SPEC.json

SPEC.json holds::

    method           "mst" or "aim"
    train_csv        the real training rows: a header, missing values as empty cells
    out_csv          where the synthetic rows go (same columns, missing as empty cells)
    result_json      where the timings and what was spent go
    rows             synthetic rows to sample
    epsilon, delta   the whole budget; the preprocessing share below is taken from it
    preprocessor_eps the part of epsilon smartnoise spends estimating the continuous
                     columns' bounds (its own DP bounds estimation; no bound is given)
    seed             seeds numpy's global generator, which MST/AIM draw selections from
    categorical      columns read as text categories (smartnoise's LabelTransformer)
    continuous       columns read as numbers (smartnoise's BinTransformer, ``bins`` equal
                     bins between DP-estimated bounds)
    nullable         columns with missing values (they get smartnoise's null flag)
    bins             bins per continuous column (smartnoise's default is 10)
    options          keyword arguments for the synthesizer (e.g. AIM's rounds)

Only the standard library, numpy, pandas and smartnoise-synth are imported, all from
the environment this script runs in. smartnoise's own progress prints go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (VmHWM; ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def main(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    started = time.perf_counter()
    import numpy as np
    import pandas as pd
    from snsynth import Synthesizer
    from snsynth.transform import BinTransformer, LabelTransformer, TableTransformer

    import_s = time.perf_counter() - started
    categorical = list(spec["categorical"])
    continuous = list(spec["continuous"])
    nullable = set(spec.get("nullable", []))
    frame = pd.read_csv(
        spec["train_csv"],
        dtype={name: str for name in categorical} | {name: float for name in continuous},
        keep_default_na=False,
        na_values={name: [""] for name in categorical + continuous},
    )
    columns = list(frame.columns)
    unknown = [c for c in columns if c not in categorical and c not in continuous]
    if unknown:
        raise SystemExit(f"columns {unknown} are neither categorical nor continuous in the spec")
    # smartnoise's transformers take None, not NaN, for a missing category.
    for name in categorical:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)

    transformers = []
    for name in columns:
        if name in categorical:
            transformers.append(LabelTransformer(nullable=name in nullable))
        else:
            # No lower/upper: smartnoise estimates the bounds with part of preprocessor_eps.
            transformers.append(BinTransformer(bins=int(spec.get("bins", 10)), nullable=name in nullable))
    transformer = TableTransformer(transformers)

    np.random.seed(int(spec["seed"]))
    random.seed(int(spec["seed"]))
    rss_before = peak_rss_bytes()
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        synthesizer = Synthesizer.create(
            spec["method"], epsilon=float(spec["epsilon"]), delta=float(spec["delta"]), **spec.get("options", {})
        )
        synthesizer.fit(frame, transformer=transformer, preprocessor_eps=float(spec["preprocessor_eps"]))
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        synthetic = synthesizer.sample(int(spec["rows"]))
    sample_s = time.perf_counter() - started
    if not isinstance(synthetic, pd.DataFrame):
        synthetic = pd.DataFrame(list(synthetic), columns=columns)
    synthetic.columns = columns
    # mbi writes its rows grouped by value; shuffle them (post-processing, no privacy cost).
    synthetic = synthetic.sample(frac=1.0, random_state=int(spec["seed"])).reset_index(drop=True)
    synthetic.to_csv(spec["out_csv"], index=False, na_rep="")

    spent_pre, _ = transformer.odometer.spent
    result = {
        "fit_s": fit_s,
        "sample_s": sample_s,
        "import_s": import_s,
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_before_fit_bytes": rss_before,
        "epsilon_preprocessing": float(spent_pre),
        "epsilon_measurements": float(synthesizer.epsilon),
        "epsilon_total": float(spec["epsilon"]),
        "delta": float(spec["delta"]),
        "bounds": {
            name: [float(t.fit_lower), float(t.fit_upper)]
            for name, t in zip(columns, transformers)
            if isinstance(t, BinTransformer)
        },
    }
    with open(spec["result_json"], "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1]))
