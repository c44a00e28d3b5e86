"""Release time, peak memory and utility as the table grows (issue 13).

For each size, a Parquet table of the perturbed-Adult process (``scale_data.py``: Adult's
rows resampled with small perturbations, 15 columns) is written once, then released end to
end with the default backend for Parquet (DuckDB, out of core, every row read, no sampling
down) in a fresh child process, as ``synthdata release FILE --epsilon 1 --target income``
would: DP count, private schema, histograms, 2-way marginals, DP-SGD discriminator on
Poisson batches drawn in one pass, sampling ``n`` synthetic rows, audit, report, signature.

Printed per size: wall time and CPU time (the fairer figure on a shared machine), peak RSS of the release process (DuckDB included), seconds
and rows/s of each pass over the data, and the mean 2-way TVD between the synthetic rows
and a *real holdout* (a fresh draw of 200,000 rows from the same process), next to the
TVD between two real draws of the same size (the sampling floor of the figure).

    nice -n 10 .venv/bin/python benchmarks/scale.py --rows 1e6 1e7 --delta 1e-9 --work /tmp/scale-bench

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

import pandas as pd

HOLDOUT_ROWS = 200_000
TARGET = "income"


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
    passes: list[dict] = []
    stages: list[tuple[str, float]] = []
    last = [time.monotonic()]  # the last event seen: a pass that reports only its end began after it

    def on_pass(info: dict) -> None:
        now = time.monotonic()
        if "pass" not in info:
            last[0] = now
            return
        if not passes or passes[-1]["pass"] != info["pass"] or passes[-1].get("closed"):
            passes.append({"pass": info["pass"], "start": last[0], "end": now})
        passes[-1]["end"] = last[0] = now
        if info.get("total") is not None and info.get("done", 0) >= info["total"]:
            passes[-1]["closed"] = True

    def on_stage(stage: str) -> None:
        stages.append((stage.split(":")[0], time.monotonic()))
        last[0] = time.monotonic()

    started = time.monotonic()
    engine = open_engine(TableSource.of(path), "duckdb", threads=threads, progress=on_pass)
    try:
        result = release(TableModality(engine, target=TARGET), epsilon=epsilon, delta=delta,
                         key=load_private_key(keys / "signing_key.pem"), key_path=keys / "signing_key.pub.pem",
                         out=out, ledger=Path(out + ".ledger.json"),
                         progress=on_stage, fit_progress=on_pass)
    finally:
        engine.close()
    seconds = time.monotonic() - started
    stage_seconds = {"open, DP count, fingerprint": stages[0][1] - started} if stages else {}
    for (name, at), (_, then) in zip(stages, stages[1:] + [("end", started + seconds)]):
        stage_seconds[name] = stage_seconds.get(name, 0.0) + then - at
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "stages": stage_seconds, "passes": [{"pass": p["pass"], "seconds": p["end"] - p["start"]}
                                                for p in passes],
            "directory": str(result.directory)}


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
    parser.add_argument("--one", nargs=2, metavar=("PARQUET", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_release_one(args.one[0], args.one[1], args.epsilon, args.delta, args.threads)))
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
        command = [sys.executable, __file__, "--one", str(path), str(out), "--epsilon", str(args.epsilon),
                   "--delta", str(args.delta)]
        if args.threads is not None:
            command += ["--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"release of {rows:,} rows failed:\n{done.stderr[-4000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        synthetic = pd.read_csv(Path(figures["directory"]) / "synthetic.csv", nrows=HOLDOUT_ROWS)
        figures.update(rows=rows, tvd2=_tvd2(holdout, synthetic), tvd2_real_floor=floor,
                       file_mb=path.stat().st_size / 2**20)
        rows_out.append(figures)
        passes = ", ".join(f"{p['pass']} {p['seconds']:.0f}s ({rows / max(p['seconds'], 1e-9):,.0f} rows/s)"
                           for p in figures["passes"] if p["seconds"] >= 0.5)
        stages = ", ".join(f"{k} {v:.0f}s" for k, v in figures["stages"].items())
        print(f"{rows:>12,} rows: {figures['seconds']:.0f} s ({figures['cpu_seconds']:.0f} CPU s), peak RSS {figures['peak_rss_mb']:.0f} MB, "
              f"2-way TVD {figures['tvd2']:.4f} (real vs real {floor:.4f})\n    stages: {stages}\n"
              f"    passes: {passes}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows_out, indent=2))


if __name__ == "__main__":
    main()
