"""Sampling speed and memory: write millions of synthetic rows to CSV with write_csv.

Fits a small TabularGAN (Adult's training split with few generator steps, or a synthetic
table of the same shape when ../shared/datasets/adult is absent) and saves it; then, in a
fresh process, as `synthdata sample` would, loads it and streams --rows rows (default
10,000,000) to a CSV file in a temporary directory with
:func:`synthdata.sampling.write_csv`, and prints:

* rows per second of write_csv (sampling + decoding + CSV formatting + disk writes);
* memory of the sampling process, from the operating system (no tracemalloc, which would
  slow sampling and miss torch's allocations):
  - ru_maxrss: resource.getrusage(RUSAGE_SELF).ru_maxrss, the peak resident set size of
    the sampling process (imports, loading the model and sampling; the fit ran elsewhere);
  - RSS before sampling and the highest RSS while sampling, read from /proc/self/statm
    after every chunk (write_csv's progress callback).

Targets (issue): >= 200,000 rows/s, peak memory < 1 GB (10^9 bytes).

    python benchmarks/sampling.py                   # 10M rows
    python benchmarks/sampling.py --rows 2000000 --chunk-size 50000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from synthdata import read_table
from synthdata.models import TabularGAN
from synthdata.sampling import DEFAULT_CHUNK_ROWS, write_csv

ADULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "adult" / "train.csv"
TARGET_ROWS_PER_S = 200_000
TARGET_PEAK_BYTES = 10**9  # 1 GB
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to write (default 10,000,000)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_ROWS,
                        help=f"rows per chunk (default write_csv's, {DEFAULT_CHUNK_ROWS:,})")
    parser.add_argument("--generator-steps", type=int, default=200, help="training steps of the model (default 200)")
    parser.add_argument("--epsilon", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--synthetic", action="store_true", help="fit on a generated table even if Adult is present")
    parser.add_argument("--sample-only", metavar="MODEL_DIR", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE


def _max_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _table(synthetic: bool, seed: int) -> tuple[pd.DataFrame, str]:
    if ADULT.exists() and not synthetic:
        return read_table(ADULT).frame, f"Adult train ({ADULT})"
    rng = np.random.default_rng(seed)
    n = 32_561
    frame = pd.DataFrame({
        "age": rng.integers(17, 91, n),
        "fnlwgt": rng.lognormal(12, 0.5, n).round().astype(np.int64),
        "hours": rng.choice([20, 40, 50, 60], n, p=[0.1, 0.6, 0.2, 0.1]),
        "gain": np.where(rng.random(n) < 0.9, 0, rng.integers(1000, 99999, n)),
        "score": np.where(rng.random(n) < 0.05, np.nan, rng.normal(0, 1, n)),
    })
    for j, levels in enumerate([8, 16, 7, 14, 6, 5, 2, 40, 2]):
        frame[f"cat{j}"] = rng.choice([f"c{j}_{k}" for k in range(levels)], n).astype(object)
    return frame, "a generated table (32,561 rows, 15 columns)"


def _gb(n: float) -> str:
    return f"{n / 1e9:.3f} GB"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fit_and_save(args: argparse.Namespace, model_dir: Path) -> None:
    frame, source = _table(args.synthetic, args.seed)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = TabularGAN(epsilon=args.epsilon, seed=args.seed, generator_steps=args.generator_steps,
                           device="cpu").fit(frame)
    model.save(model_dir)
    print(f"Model: TabularGAN(epsilon={args.epsilon}, generator_steps={args.generator_steps}) fitted on {source} "
          f"in {time.perf_counter() - start:.1f} s; {len(model.columns_)} columns; saved, then sampled "
          f"in a fresh process")
    for warning in caught:
        print(f"  (fit warning: {warning.message})")


def sample_only(args: argparse.Namespace, model_dir: Path) -> None:
    """The child process: what `synthdata sample` does, measured."""
    model = TabularGAN.load(model_dir)
    peak = {"rss": _rss()}
    before = peak["rss"]

    def progress(_rows: int) -> None:
        peak["rss"] = max(peak["rss"], _rss())

    out = model_dir.parent / "synthetic.csv"
    load_before = _load()
    start = time.perf_counter()
    write_csv(model, args.rows, out, chunk_size=args.chunk_size, seed=args.seed, progress=progress)
    seconds = time.perf_counter() - start
    size = out.stat().st_size
    with out.open("rb") as handle:
        header = handle.readline().decode().strip()
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b""))
    if rows != args.rows:
        raise SystemExit(f"error: the CSV holds {rows:,} rows, not {args.rows:,}")
    out.unlink()
    rate = args.rows / seconds
    max_rss = _max_rss()
    print(f"Wrote {args.rows:,} rows ({size / 1e6:,.0f} MB of CSV, row count checked) in chunks of "
          f"{args.chunk_size:,} in {seconds:.1f} s: {rate:,.0f} rows/s "
          f"({torch.get_num_threads()} torch thread(s); load average {load_before} before, {_load()} after)")
    print(f"  header: {header}")
    print("Memory of the sampling process (OS resident set size, GB = 10^9 bytes):")
    print(f"  RSS after loading the model, before sampling  {_gb(before)}")
    print(f"  highest RSS while sampling                    {_gb(peak['rss'])} (+{_gb(peak['rss'] - before)}; "
          f"/proc/self/statm after every chunk)")
    print(f"  ru_maxrss (peak: imports, load, sampling)     {_gb(max_rss)}")
    print()
    worst = max(peak["rss"], max_rss)
    print(f"Target >= {TARGET_ROWS_PER_S:,} rows/s: {'met' if rate >= TARGET_ROWS_PER_S else 'MISSED'} "
          f"({rate:,.0f})")
    print(f"Target peak memory < 1 GB: {'met' if worst < TARGET_PEAK_BYTES else 'MISSED'} ({_gb(worst)})")


def main() -> None:
    args = _parse()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.sample_only is not None:
        sample_only(args, Path(args.sample_only))
        return
    with tempfile.TemporaryDirectory(prefix="synthdata-sampling-") as tmp:
        model_dir = Path(tmp) / "model"
        fit_and_save(args, model_dir)
        sys.stdout.flush()
        child = [sys.executable, __file__, "--sample-only", str(model_dir), "--rows", str(args.rows),
                 "--chunk-size", str(args.chunk_size), "--seed", str(args.seed)]
        if args.threads is not None:
            child += ["--threads", str(args.threads)]
        subprocess.run(child, check=True)


if __name__ == "__main__":
    main()
