"""Release time, peak memory and utility as the table grows (issue 13).

For each size, a Parquet table of the perturbed-Adult process (``scale_data.py``: Adult's
rows resampled with small perturbations, 15 columns) is written once, then released end to
end with the default backend for Parquet (DuckDB, out of core, every row read, no sampling
down) in a fresh child process, as ``synthdata release FILE --epsilon 1 --target income``
would: DP count, private schema, histograms, 2-way marginals, DP-SGD discriminator on
Poisson batches drawn in one pass, sampling ``n`` synthetic rows, audit, report, signature.

Printed per size: wall time and CPU time (the fairer figure on a shared machine), peak RSS
of the release process (DuckDB included), wall and CPU seconds of each stage and of each
pass over the data (measured by wrapping the engine's methods; CPU is ``process_time``, so
DuckDB's threads count), rows per CPU second of each pass, and the mean 2-way TVD between
the synthetic rows and a *real holdout* (a fresh draw of 200,000 rows from the same
process), next to the TVD between two real draws of the same size (the sampling floor of
the figure). With two sizes or more, each pass's CPU seconds are projected linearly to 10^8
rows from the two largest.

    nice -n 10 .venv/bin/python benchmarks/scale.py --rows 1e6 1e7 --delta 1e-9 --work /tmp/scale-bench

``--passes`` times only the passes over the data a release makes (value counts,
fingerprint, DP count, private schema, histograms, level codes, pair tables, every DP-SGD
step's Poisson batch, the audit's samples) without training or sampling: minutes instead
of an hour at 10^7 rows.

    nice -n 10 .venv/bin/python benchmarks/scale.py --passes --rows 1e6 1e7 --work /tmp/scale-bench

The tables (about 25 MB per million rows) go to ``--work``, never into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd

HOLDOUT_ROWS = 200_000
TARGET = "income"


class PassClock:
    """Wall and CPU seconds (``time.process_time``: every thread of the process, DuckDB's
    included) of each pass over the data, by wrapping the methods that make them; a pass
    called inside another is counted once, in the inner one."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self._stack: list[list[float]] = []

    def wrap(self, owner, method: str, name: str) -> None:
        inner = getattr(owner, method)

        def timed(*args, **kwargs):
            frame = [time.monotonic(), time.process_time(), 0.0, 0.0]  # start wall, start CPU, nested wall, CPU
            self._stack.append(frame)
            try:
                return inner(*args, **kwargs)
            finally:
                self._stack.pop()
                wall, cpu = time.monotonic() - frame[0], time.process_time() - frame[1]
                if self._stack:
                    self._stack[-1][2] += wall
                    self._stack[-1][3] += cpu
                total = self.seconds.setdefault(name, [0.0, 0.0, 0])
                total[0] += wall - frame[2]
                total[1] += cpu - frame[3]
                total[2] += 1

        setattr(owner, method, timed)

    def watch(self, engine) -> None:
        """The per-row passes of a DuckDB release (see ``synthdata.engines``)."""
        from synthdata.engines.local import LocalCodes

        self.wrap(engine, "value_tables", "value counts")
        self.wrap(engine, "digest", "fingerprint")
        self.wrap(engine, "encode", "level codes")
        self.wrap(engine, "sample", "audit samples")
        self.wrap(LocalCodes, "cross_counts", "contingency tables")
        self.wrap(LocalCodes, "real_units", "Poisson batches")

    def table(self) -> dict[str, dict[str, float]]:
        return {name: {"seconds": wall, "cpu_seconds": cpu, "calls": calls}
                for name, (wall, cpu, calls) in self.seconds.items()}


def _passes_only(path: str, epsilon: float, delta: float, threads: int | None) -> dict:
    """In the child: only the passes over the data a release makes (no DP-SGD, no sampling):
    value counts, fingerprint, the fit's measurements (DP count, schema, histograms, level
    codes, pair and triple tables), every DP-SGD step's Poisson batch, the audit samples."""
    import torch

    torch.set_num_threads(1)
    from synthdata.engines import EngineView, Split, TableSource, open_engine
    from synthdata.privacy import NoiseSource, PrivacyLedger
    from synthdata.tabular.estimator import THRESHOLD_DELTA_SHARE, TabularGAN

    clock = PassClock()
    started, cpu0 = time.monotonic(), time.process_time()
    engine = open_engine(TableSource.of(path), "duckdb", threads=threads)
    clock.watch(engine)
    try:
        rows = engine.rows(None, "all")
        engine.digest()
        noise = NoiseSource()
        split = Split.draw(noise, 0.2)
        model = TabularGAN(epsilon=epsilon, delta=delta)
        shares = model._split(schema_declared=False, unit_column=False)
        ledger = PrivacyLedger(epsilon=epsilon, delta=delta, threshold_delta=delta * THRESHOLD_DELTA_SHARE, noise=noise)
        measured = model._measure(EngineView(engine, split, "train"), None, ledger, shares, 1, None, target=TARGET)
        codes, training = measured[2], measured[4]
        offsets = np.zeros(codes.width, dtype=np.int64)
        batches = codes.real_units(offsets=offsets, device="cpu", noise=noise, rate=training.sample_rate,
                                   steps=training.discriminator_steps)
        drawn = sum(len(b) for b in batches.spill.batches())
        codes.close()
        engine.sample(split, "train", 50_000 / rows, 7)
        engine.sample(split, "holdout", 50_000 / rows, 7)
    finally:
        engine.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": time.monotonic() - started, "cpu_seconds": time.process_time() - cpu0,
            "peak_rss_mb": usage.ru_maxrss / 1024, "passes": clock.table(), "steps": training.discriminator_steps,
            "rate": training.sample_rate, "batched_rows": int(drawn)}


def _release_one(path: str, out: str, epsilon: float, delta: float, threads: int | None) -> dict:
    """In the child: release ``path`` (DuckDB) and report times, passes and peak RSS."""
    import torch

    torch.set_num_threads(1)
    from synthdata.engines import TableSource, open_engine
    from synthdata.release import release
    from synthdata.signing import generate_keypair, load_private_key
    from synthdata.tabular.modality import TableModality

    work = Path(out).parent
    os.environ.setdefault("SYNTHDATA_CONFIG_DIR", str(work / "config"))
    keys = work / "keys"
    if not (keys / "signing_key.pem").exists():
        generate_keypair(keys)
    stages: list[tuple[str, float, float]] = []

    def on_stage(stage: str) -> None:
        stages.append((stage.split(":")[0], time.monotonic(), time.process_time()))

    started, cpu0 = time.monotonic(), time.process_time()
    engine = open_engine(TableSource.of(path), "duckdb", threads=threads)
    clock = PassClock()
    clock.watch(engine)
    try:
        result = release(TableModality(engine, target=TARGET), epsilon=epsilon, delta=delta,
                         key=load_private_key(keys / "signing_key.pem"), key_path=keys / "signing_key.pub.pem",
                         out=out, ledger=Path(out + ".ledger.json"), progress=on_stage)
    finally:
        engine.close()
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu0
    marks = [("open, DP count, fingerprint", started, cpu0), *stages, ("end", started + seconds, cpu0 + cpu)]
    stage_seconds: dict[str, list[float]] = {}
    for (name, at, at_cpu), (_, then, then_cpu) in zip(marks, marks[1:]):
        total = stage_seconds.setdefault(name, [0.0, 0.0])
        total[0] += then - at
        total[1] += then_cpu - at_cpu
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": usage.ru_maxrss / 1024,
            "stages": stage_seconds, "passes": clock.table(),
            "directory": str(result.directory)}


def _pass_lines(figures: dict) -> str:
    """The run's totals, then one line per pass: wall s, CPU s, rows/s of CPU."""
    rows = figures["rows"]
    lines = [f"{figures['seconds']:.0f} s wall, {figures['cpu_seconds']:.0f} CPU s, "
             f"peak RSS {figures['peak_rss_mb']:.0f} MB"]
    for name, p in figures["passes"].items():
        lines.append(f"    {name:<20} {p['seconds']:8.1f} s wall {p['cpu_seconds']:8.1f} CPU s "
                     f"{rows / max(p['cpu_seconds'], 1e-9):>12,.0f} rows per CPU s  ({p['calls']} call(s))")
    return "\n".join(lines)


def _projection(runs: list[dict], rows: int) -> str:
    """Each pass's CPU seconds at ``rows``, extrapolated linearly from the two largest runs
    (a + b * rows through both points; passes are linear in the rows plus a fixed part)."""
    runs = sorted(runs, key=lambda r: r["rows"])[-2:]
    (small, large) = runs
    lines = [f"projection to {rows:,} rows (linear through {small['rows']:,} and {large['rows']:,}; CPU s):"]
    total = 0.0
    for name in large["passes"]:
        a = small["passes"].get(name, {}).get("cpu_seconds", 0.0)
        b = large["passes"][name]["cpu_seconds"]
        slope = (b - a) / (large["rows"] - small["rows"])
        value = max(b + slope * (rows - large["rows"]), b)
        total += value
        lines.append(f"    {name:<20} {value:9.0f} CPU s  ({slope * 1e6:.2f} CPU s per 10^6 rows)")
    a, b = small["cpu_seconds"], large["cpu_seconds"]
    whole = b + (b - a) / (large["rows"] - small["rows"]) * (rows - large["rows"])
    lines.append(f"    {'passes together':<20} {total:9.0f} CPU s; the whole run {whole:,.0f} CPU s")
    return "\n".join(lines)


def _tvd2(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    from synthdata.audit import marginal_tvd

    return float(marginal_tvd(real, synthetic[real.columns])["tvd_2way"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, nargs="+", default=[1e6, 1e7])
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-9,
                        help="the same at every size, well below 1/n for 10^7 rows (default 1e-9)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/synthdata-scale"))
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--passes", action="store_true",
                        help="time only the passes over the data (no DP-SGD training, no sampling, no audit "
                             "models): CPU seconds and rows/s per pass, and a linear projection to 10^8 rows")
    parser.add_argument("--one", nargs=2, metavar=("PARQUET", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--one-passes", metavar="PARQUET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_release_one(args.one[0], args.one[1], args.epsilon, args.delta, args.threads)))
        return
    if args.one_passes:
        print(json.dumps(_passes_only(args.one_passes, args.epsilon, args.delta, args.threads)))
        return

    from scale_data import AdultProcess

    process = AdultProcess()
    args.work.mkdir(parents=True, exist_ok=True)
    holdout_path = args.work / "holdout.parquet"
    if not holdout_path.exists():
        process.write(holdout_path, HOLDOUT_ROWS, seed=999)
    holdout = pd.read_parquet(holdout_path)
    floor = _tvd2(holdout, process.frame(HOLDOUT_ROWS, seed=998))
    rows_out = []
    for rows in (int(r) for r in args.rows):
        path = args.work / f"adult-{rows}.parquet"
        if not path.exists():
            started = time.monotonic()
            process.write(path, rows, seed=rows % 1000)
            print(f"wrote {rows:,} rows to {path} in {time.monotonic() - started:.0f} s", flush=True)
        out = args.work / f"release-{rows}-{int(time.time())}"
        command = [sys.executable, __file__, *(["--one-passes", str(path)] if args.passes else
                                                ["--one", str(path), str(out)]),
                   "--epsilon", str(args.epsilon), "--delta", str(args.delta)]
        if args.threads is not None:
            command += ["--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"release of {rows:,} rows failed:\n{done.stderr[-4000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        figures.update(rows=rows)
        print(f"{rows:>12,} rows: {_pass_lines(figures)}", flush=True)
        if args.passes:
            rows_out.append(figures)
            continue
        synthetic = pd.read_csv(Path(figures["directory"]) / "synthetic.csv", nrows=HOLDOUT_ROWS)
        figures.update(tvd2=_tvd2(holdout, synthetic), tvd2_real_floor=floor, file_mb=path.stat().st_size / 2**20)
        rows_out.append(figures)
        stages = ", ".join(f"{k} {wall:.0f} s ({cpu:.0f} CPU s)" for k, (wall, cpu) in figures["stages"].items())
        print(f"    2-way TVD {figures['tvd2']:.4f} (real vs real {floor:.4f})\n    stages: {stages}", flush=True)
    if len(rows_out) >= 2:
        print(_projection(rows_out, 10**8), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows_out, indent=2))


if __name__ == "__main__":
    main()
