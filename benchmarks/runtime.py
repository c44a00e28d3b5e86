"""Fit time on a busy machine: the Adult fit alone, and beside another CPU-bound process.

A steward's server or laptop is rarely idle. This runs the same fit (TabularGAN on Adult's
training split, ε=1, the defaults) side by side in one run:

* ``quiet``: nothing else running (as far as this script can make it);
* ``busy``: while a competing process keeps one core at 100% (a pure-Python loop, or
  ``--competitor torch`` for a process running torch matrix products on every core);

each with the thread count the runtime policy picks (``synthdata.runtime``: one thread
for models this small) and with torch's own default (as many threads as cores), and prints
the fit seconds and the busy/quiet ratio. Issue 16's target: busy ≤ 1.5 × quiet with the
policy's default.

    .venv/bin/python benchmarks/runtime.py                   # policy default and torch default
    .venv/bin/python benchmarks/runtime.py --rows 8000       # a shorter run
    .venv/bin/python benchmarks/runtime.py --competitor torch
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ADULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "adult" / "train.csv"

FIT = """
import json, sys, time, warnings
import pandas as pd
import torch
warnings.simplefilter("ignore")
threads = int(sys.argv[1])
if threads > 0:
    torch.set_num_threads(threads)
from synthdata import TabularGAN
frame = pd.read_csv(sys.argv[2]).head(int(sys.argv[3]))
start = time.perf_counter()
TabularGAN(epsilon=1.0, seed=0).fit(frame)
print(json.dumps({"seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}))
"""

SPIN = "while True:\n    pass\n"
TORCH_SPIN = "import torch\nx = torch.randn(1500, 1500)\nwhile True:\n    x @ x\n"


def _fit(threads: int, rows: int) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    else:
        env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", FIT, str(threads), str(ADULT), str(rows)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=32_561, help="Adult rows to fit on (default: all)")
    parser.add_argument("--competitor", choices=["python", "torch"], default="python")
    args = parser.parse_args()
    if not ADULT.exists():
        sys.exit(f"{ADULT} is not present (the shared datasets live beside the repository)")
    from synthdata.runtime import available_cpus, thread_count

    policy = thread_count()
    print(f"CPUs available: {available_cpus()}; the runtime policy picks {policy} thread(s); "
          f"competitor: {args.competitor}")
    settings = [("policy default", policy), ("torch default", 0)]
    results = {}
    for label, threads in settings:
        quiet = _fit(threads, args.rows)
        competitor = subprocess.Popen([sys.executable, "-c", TORCH_SPIN if args.competitor == "torch" else SPIN])
        try:
            time.sleep(1.0)
            busy = _fit(threads, args.rows)
        finally:
            competitor.kill()
            competitor.wait()
        results[label] = (quiet, busy)
        print(f"{label:<16} threads={quiet['threads']}: quiet {quiet['seconds']:7.1f} s, "
              f"busy {busy['seconds']:7.1f} s, ratio {busy['seconds'] / quiet['seconds']:.2f}")
    quiet, busy = results["policy default"]
    ratio = busy["seconds"] / quiet["seconds"]
    print(f"target: busy <= 1.5 x quiet with the policy default: {'met' if ratio <= 1.5 else 'MISSED'} "
          f"({ratio:.2f})")


if __name__ == "__main__":
    main()
