"""CPU time of reading a CSV (``synthdata.read_table``), and of its leading-zero check.

The reader keeps the text of a numeric column where a cell has leading zeros (``02134``):
pandas parses the file, then (``ingest._keep_leading_zeros``) the numeric columns were read
again as text to look for such cells. Now a regex over the raw text looks first and the
columns where it finds a field of that shape are read again, only those. This prints, per file, the
CPU seconds of ``read_table`` with the scan (``scan``) and with the exact re-read always
done on every numeric column (``always``, the old behaviour), best of ``--repeat`` runs
each, the scan alone, the columns it found (``any``: the text holds quotes, so every numeric
column is read again when it finds one) and whether the two readings are identical:

    .venv/bin/python benchmarks/ingest.py                     # Adult's train.csv + 1,000,000 generated rows
    .venv/bin/python benchmarks/ingest.py --rows 200000 --repeat 5
    .venv/bin/python benchmarks/ingest.py FILE.csv ...        # other files (read with the default options)

The generated tables (in a temporary folder, removed after) have 8 columns: 6 numeric
(integers, decimals, a 5-digit zip code without leading zeros, negatives) and 2 text; the
``zeros`` variant writes 1 zip code in 1,000 with a leading zero, so that column is read again;
the free-text column holds ``room 05`` (a field of that shape for the scan, in a text column).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synthdata import ingest
from synthdata.errors import DataError
from synthdata.ingest import read_table

ADULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "adult" / "train.csv"


def _generate(path: Path, rows: int, zeros: bool) -> None:
    rng = np.random.default_rng(0)
    zips = rng.integers(10_000, 99_999, rows).astype(str).astype(object)
    if zeros:
        picked = rng.random(rows) < 0.001
        zips[picked] = np.char.zfill(rng.integers(1_000, 9_999, int(picked.sum())).astype(str), 5)
    frame = pd.DataFrame({
        "age": rng.integers(18, 90, rows),
        "amount": np.round(rng.lognormal(5, 1, rows), 2),
        "zip": zips,
        "count": rng.poisson(3, rows),
        "balance": rng.integers(-5_000, 50_000, rows),
        "score": np.round(rng.normal(0.5, 0.2, rows), 4),
        "city": rng.choice(["Boston", "Seattle", "Chicago", "Austin"], rows),
        "note": rng.choice(["ok", "room 05", "none", "n/a 0"], rows),
    })
    frame.to_csv(path, index=False)


def _cpu(run, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        out = run()
        best = min(best, time.process_time() - start)
    return best, out


def _measure(path: Path, repeat: int) -> dict:
    scan_check = ingest._leading_zero_columns
    fast_s, fast = _cpu(lambda: read_table(path).frame, repeat)
    ingest._leading_zero_columns = lambda buffer, delimiter: None  # the old behaviour: read every number again
    try:
        slow_s, slow = _cpu(lambda: read_table(path).frame, repeat)
    finally:
        ingest._leading_zero_columns = scan_check
    text = path.read_text(encoding="utf-8-sig")
    delimiter = read_table(path).delimiter
    scan_s, hit = _cpu(lambda: scan_check(io.StringIO(text), delimiter), repeat)
    names = list(fast.columns)
    hit = "any" if hit is None else ",".join(names[i] for i in sorted(hit)) or "-"
    same = fast.equals(slow) and list(fast.dtypes) == list(slow.dtypes)
    return {"file": path.name, "rows": len(fast), "MB": path.stat().st_size / 1e6, "scan": fast_s, "always": slow_s,
            "scan_only": scan_s, "hit": hit, "same": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help="CSV files (default: Adult's train.csv and generated ones)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated tables (0: none)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per reading; the best CPU time is kept")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        files = list(args.files) or ([ADULT] if ADULT.exists() else [])
        if not args.files and args.rows:
            for zeros in (False, True):
                path = Path(folder) / f"generated-{args.rows}{'-zeros' if zeros else ''}.csv"
                _generate(path, args.rows, zeros)
                files.append(path)
        for path in files:
            try:
                results.append(_measure(path, args.repeat))
            except DataError as exc:
                print(f"{path.name}: not read ({exc})")
    print(f"{'file':34} {'rows':>9} {'MB':>6} {'scan CPU s':>10} {'always CPU s':>12} {'scan alone':>10} "
          f"{'found':>10} {'same':>5}")
    for r in results:
        print(f"{r['file']:34} {r['rows']:>9,} {r['MB']:>6.1f} {r['scan']:>10.3f} {r['always']:>12.3f} "
              f"{r['scan_only']:>10.3f} {r['hit']:>10} {str(r['same']):>5}")


if __name__ == "__main__":
    main()
