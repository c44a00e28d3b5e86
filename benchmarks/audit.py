"""Speed and figures of ``synthdata audit`` on the Adult census table.

Runs the command end to end (a fresh process: imports, reading the CSV files, the
audit, writing its JSON), as a user would, with Adult's training split (32,561 rows) as
the real training table and its test split (16,281 rows) as the holdout, for two
synthetic tables whose right answers are known:

* ``independent`` — each column drawn on its own from the real column: right marginals,
  no dependence, and no row of anyone in particular. Leakage must read as chance.
* ``copy`` — the real training rows themselves. Leakage must be flagged, and a claimed
  epsilon violated.

Prints one block of figures per case and the wall-clock time against the issue's
target (the whole audit within 60 s on 2 CPU cores).

    .venv/bin/python benchmarks/audit.py
    .venv/bin/python benchmarks/audit.py --case copy --epsilon 1 --json out.json

The data is read from ``../shared/datasets/adult/`` beside the repository; it is never
copied into it (the synthetic tables go to a temporary folder). Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ADULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "adult"
TARGET = "income"
TARGET_SECONDS = 60.0
CASES = ("independent", "copy")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    train_path, test_path = ADULT / "train.csv", ADULT / "test.csv"
    absent = [str(p) for p in (train_path, test_path) if not p.is_file()]
    if absent:
        sys.exit(f"error: the Adult data is not at {ADULT} (missing {', '.join(absent)})")
    train = pd.read_csv(train_path)
    print(f"synthdata audit on Adult: real train {train_path} ({len(train):,} rows), holdout {test_path}; "
          f"{os.cpu_count()} CPU cores, Python {platform.python_version()}")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for case in args.case or CASES:
            synthetic_path = Path(folder) / f"{case}.csv"
            _synthetic(case, train, args.seed).to_csv(synthetic_path, index=False)
            out = Path(folder) / f"{case}.json"
            command = [sys.executable, "-m", "synthdata", "audit", str(train_path), str(synthetic_path),
                       "--holdout", str(test_path), "--target", TARGET, "--seed", str(args.seed), "--json", str(out)]
            if args.epsilon is not None:
                command += ["--epsilon", str(args.epsilon)]
            started = time.perf_counter()
            run = subprocess.run(command, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if run.returncode != 0:
                sys.exit(f"error: the audit of the {case} case failed: {run.stderr.strip()}")
            results[case] = {"seconds": seconds, "audit": json.loads(out.read_text(encoding="utf-8"))}
            _print_case(case, seconds, results[case]["audit"])
    slowest = max(r["seconds"] for r in results.values())
    verdict = "met" if slowest <= TARGET_SECONDS else "MISSED"
    print(f"\ntarget: the whole audit within {TARGET_SECONDS:.0f} s -> slowest case {slowest:.1f} s: {verdict}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"every figure written to {args.json}")
    return 0


def _synthetic(case: str, train: pd.DataFrame, seed: int) -> pd.DataFrame:
    if case == "copy":
        return train
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: train[name].to_numpy()[rng.integers(0, len(train), len(train))] for name in train})


def _print_case(case: str, seconds: float, audit: dict[str, Any]) -> None:
    quality, leakage = audit["quality"], audit["leakage"]
    utility = quality["ml_utility"]
    copies = leakage["exact_copies"]
    print(f"\n== {case}: {seconds:.1f} s end to end (process start, imports, reading, audit, JSON)")
    print(f"  quality    SDMetrics {quality['sdmetrics_score']:.3f} (shapes {quality['column_shapes']:.3f}, "
          f"pair trends {quality['column_pair_trends']:.3f}); TVD 1-way {quality['tvd_1way']:.3f}, "
          f"2-way {quality['tvd_2way']:.3f}; detection AUROC {quality['detection_auc']:.3f}")
    print(f"  utility    AUROC trained on synthetic {utility['synthetic']['auroc']:.3f} "
          f"(accuracy {utility['synthetic']['accuracy']:.3f}), on real {utility['real']['auroc']:.3f} "
          f"(accuracy {utility['real']['accuracy']:.3f})")
    for name, attack in leakage["attacks"].items():
        low, high = attack["auroc_ci"]
        tprs = ", ".join(f"TPR@{t['target_fpr']:.1%} {t['tpr']:.3f}" for t in attack["tpr_at_fpr"])
        print(f"  attack     {name:<27} AUROC {attack['auroc']:.3f} [{low:.3f}, {high:.3f}]; {tprs}")
    print(f"  epsilon    lower bound {leakage['empirical_epsilon_lower_bound']:.2f} "
          f"({leakage['epsilon_bound']['attack']}); largest certifiable {leakage['max_certifiable_epsilon']:.2f}; "
          f"claimed {leakage['claimed_epsilon']}")
    print(f"  copies     {copies['train_share']:.2%} of synthetic rows are training rows, "
          f"{copies['holdout_share']:.2%} holdout rows (matched p = {copies['matched']['p_value']:.3g})")
    print(f"  rare       {leakage['rare_values']['rare_values']} values held by < {leakage['rare_values']['k']} "
          f"training rows")
    print(f"  verdict    leak_detected={leakage['leak_detected']}: {leakage['verdict']}")
    for entry in audit["subsampled"]:
        print(f"  sampled    {entry['metric']}: {entry['rows_used']} of {entry['rows_total']}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=CASES, help="run only this case (repeatable)")
    parser.add_argument("--epsilon", type=float, default=1.0, help="claimed epsilon to test (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    return parser


if __name__ == "__main__":
    sys.exit(main())
