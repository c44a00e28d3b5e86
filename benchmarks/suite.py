"""The benchmark suite: the release model against private and reference synthesizers.

Runs ``synthdata.TabularGAN`` on every table in ``../shared/datasets/`` (Adult, online
shoppers, heart disease, the Online Retail extract) and in ``sample_datasets/``
(affairs, penguins), at each privacy budget, beside — in the same run, on the same
training rows, the same delta and the same holdout — smartnoise-synth's MST and AIM, an
independent-columns reference (not private) and the real training rows themselves (the
ceiling). It prints one table per dataset (methods as rows, metrics as columns), the
real-data floor of the TVDs, our worst columns, and the issue's targets at epsilon=1.

    .venv/bin/python benchmarks/suite.py                               # everything: ~1-2 h on 2 cores
    .venv/bin/python benchmarks/suite.py --datasets heart penguins --epsilons 1
    .venv/bin/python benchmarks/suite.py --methods ours real --json out.json
    .venv/bin/python benchmarks/suite.py --reuse-baselines             # MST/AIM from the cache

MST and AIM run in their own virtual environment (``torch==2.13.0``, then
``smartnoise-synth==1.0.8``, which pins an old Opacus), built on first use under
``benchmarks/.cache/smartnoise-venv`` — git ignores the cache — and never in the
project's ``.venv``. Every method's fit and sampling runs in a fresh process, so its
time and peak memory are its own. Not part of the test suite.
"""

from __future__ import annotations

import os

# One thread everywhere: the machine has 2 shared cores. Set before numpy/torch load,
# and inherited by every subprocess (jax/XLA included).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse
import datetime as dt
import hashlib
import json
import math
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

ROOT = Path(__file__).resolve().parents[1]
# Benchmark the synthdata of the checkout this file is in (ahead of an installed one).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "datasets"  # --data-dir
SAMPLES = ROOT / "sample_datasets"
CACHE = ROOT / "benchmarks" / ".cache"  # --cache-dir; git ignores it
SMARTNOISE_VENV = CACHE / "smartnoise-venv"
SMARTNOISE_RUNNER = ROOT / "benchmarks" / "baselines" / "smartnoise_runner.py"
SMARTNOISE_REQUIREMENTS = ("torch==2.13.0", "smartnoise-synth==1.0.8")  # in this order
BASELINE_CACHE = CACHE / "baselines.json"

#: The same delta for every method, so that they compare at the same privacy.
DELTA = 1e-6
#: Holdout rows of the datasets that ship without a test split, and the split's fixed seed
#: (the same split whatever --seeds says: the seeds vary the methods, not the data).
HOLDOUT_SHARE = 0.2
SPLIT_SEED = 0
#: Share of epsilon MST/AIM spend estimating their continuous columns' bounds.
SMARTNOISE_PREPROCESSOR_SHARE = 0.1
#: Equal-width bins per continuous column for MST/AIM (smartnoise's own default).
SMARTNOISE_BINS = 10
#: AIM's settings (smartnoise's defaults: rounds 16 x columns, max_model_size 80 MB,
#: 1,000 mirror-descent iterations after each round, which takes hours on Adult here).
AIM_OPTIONS = {"rounds": None, "max_model_size": 10, "max_cells": 10000}
#: AIM rounds when AIM_OPTIONS says None: this many per encoded column (see _aim_options).
AIM_ROUNDS_PER_COLUMN = 2
#: A numeric column is checked against a lattice when its real values need at most this
#: many decimals (more: a measurement, checked against its range only).
MAX_LATTICE_DECIMALS = 4
#: Numeric columns with at most this many distinct real values also report the share of
#: synthetic values that are none of them (details only; not counted as impossible).
SMALL_SUPPORT = 20
DEFAULT_TIMEOUT_S = 3600

METHODS = ("real", "independent", "ours", "mst", "aim")
PRIVATE = ("ours", "mst", "aim")
LABELS = {
    "real": "real rows (ceiling)",
    "independent": "independent (NOT private)",
    "ours": "ours: TabularGAN",
    "mst": "smartnoise MST",
    "aim": "smartnoise AIM",
}
#: The issue's targets for our model at epsilon=1, on every dataset.
TARGET_EPSILON = 1.0
TARGET_TVD_1WAY = 0.03


class MethodFailed(Exception):
    """A method could not produce a synthetic table; the run goes on without it."""


# --------------------------------------------------------------------------- datasets


@dataclass
class Dataset:
    name: str
    train: pd.DataFrame
    holdout: pd.DataFrame
    target: str | None
    source: str
    split: str
    notes: list[str] = field(default_factory=list)


def _read(path: Path, **options) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is not there; the suite reads ../shared/datasets/ beside the repository and sample_datasets/"
        )
    import synthdata

    return synthdata.read_table(path, **options).frame.reset_index(drop=True)


def _random_split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(SPLIT_SEED).permutation(len(frame))
    cut = round(HOLDOUT_SHARE * len(frame))
    return (frame.iloc[np.sort(order[cut:])].reset_index(drop=True),
            frame.iloc[np.sort(order[:cut])].reset_index(drop=True))


def _adult() -> Dataset:
    train = _read(SHARED / "adult" / "train.csv")
    holdout = _read(SHARED / "adult" / "test.csv")
    return Dataset("adult", train, holdout, "income", "../shared/datasets/adult/{train,test}.csv",
                   "the Adult test split (adult.test) as the holdout")


def _shoppers() -> Dataset:
    frame = _read(SHARED / "online_shoppers" / "online_shoppers_intention.csv", delimiter=";")
    train, holdout = _random_split(frame)
    return Dataset("shoppers", train, holdout, "Revenue",
                   "../shared/datasets/online_shoppers/online_shoppers_intention.csv",
                   f"a random {HOLDOUT_SHARE:.0%} of the sessions")


def _heart() -> Dataset:
    path = SHARED / "heart_disease" / "heart_cleveland.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not there")
    header, _, rest = path.read_text(encoding="utf-8").partition("\n")
    if not header.startswith('""'):
        raise ValueError(f"{path}: expected a leading unnamed row-number column, got the header {header[:40]!r}")
    # The leading unnamed column is a row number (an identifier): name it, read the file
    # as synthdata reads any CSV, and drop it.
    with tempfile.TemporaryDirectory(prefix="suite-heart-") as tmp:
        copy = Path(tmp) / "heart_cleveland.csv"
        copy.write_text('"row_number"' + header[2:] + "\n" + rest, encoding="utf-8")
        frame = _read(copy).drop(columns="row_number")
    train, holdout = _random_split(frame)
    return Dataset("heart", train, holdout, "num", "../shared/datasets/heart_disease/heart_cleveland.csv",
                   f"a random {HOLDOUT_SHARE:.0%} of the patients",
                   ["the leading unnamed row-number column is dropped"])


def _retail() -> Dataset:
    frame = _read(SHARED / "online_retail" / "online_retail_dec2010.csv")
    # One privacy unit per customer (guest purchases: per invoice); the holdout holds
    # whole units, so no customer's or invoice's rows sit on both sides of the split.
    units = np.where(frame["CustomerID"].notna(),
                     "customer:" + frame["CustomerID"].astype("Int64").astype(str),
                     "invoice:" + frame["InvoiceNo"].astype(str))
    distinct = np.unique(units)
    held = np.random.default_rng(SPLIT_SEED).permutation(distinct)[: round(HOLDOUT_SHARE * len(distinct))]
    in_holdout = np.isin(units, held)
    frame = frame.assign(InvoiceDate=pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%y %H:%M"))
    dropped = ["InvoiceNo", "StockCode", "Description", "CustomerID"]
    frame = frame.drop(columns=dropped)
    return Dataset(
        "retail", frame[~in_holdout].reset_index(drop=True), frame[in_holdout].reset_index(drop=True), None,
        "../shared/datasets/online_retail/online_retail_dec2010.csv",
        f"a random {HOLDOUT_SHARE:.0%} of the customers (guest purchases: of the invoices), whole",
        [
            ("kept as a plain table of purchase lines: Quantity, InvoiceDate (parsed as a date-time), UnitPrice, "
             "Country"),
            ("dropped: InvoiceNo (an order id, 1,275 values), StockCode and Description (2,605 and 2,543 values: "
             "over synthdata's 1,000-category limit, which refuses them) and CustomerID (the person behind the row: "
             "an identifier, never a number to model; the privacy-unit issue owns it)"),
            ("no ML-utility target: these are purchase lines of a few hundred customers, and no column is a "
             "target the others predict for customers not seen in training (trained on the real rows: Country, "
             "macro AUROC 0.45; UnitPrice R2 0.19; Quantity R2 0.04), so a TSTR figure would be noise"),
        ],
    )


def _affairs() -> Dataset:
    train, holdout = _random_split(_read(SAMPLES / "affairs.csv"))
    return Dataset("affairs", train, holdout, "rate_marriage", "sample_datasets/affairs.csv",
                   f"a random {HOLDOUT_SHARE:.0%} of the respondents",
                   ["target rate_marriage, as in `make demo`"])


def _penguins() -> Dataset:
    train, holdout = _random_split(_read(SAMPLES / "penguins.csv"))
    return Dataset("penguins", train, holdout, "species", "sample_datasets/penguins.csv",
                   f"a random {HOLDOUT_SHARE:.0%} of the penguins")


DATASETS: dict[str, Callable[[], Dataset]] = {
    "adult": _adult,
    "shoppers": _shoppers,
    "heart": _heart,
    "retail": _retail,
    "affairs": _affairs,
    "penguins": _penguins,
}


# --------------------------------------------------------------------------- methods


def fit_sample_ours(train: pd.DataFrame, rows: int, *, epsilon: float, delta: float, seed: int,
                    options: dict[str, Any], target: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The one place the suite calls the release model: fit on ``train``, sample ``rows``.

    ``target``: the dataset's ML-utility column, passed to ``fit`` as ``synthdata release
    --target`` passes it (the steward names it; public). When the model's constructor or
    ``fit`` gains options, this is the function to change.
    """
    import synthdata

    model = synthdata.TabularGAN(epsilon=epsilon, delta=delta, seed=seed, **options)
    started = time.perf_counter()
    model.fit(train, target=target)
    fit_only_s = time.perf_counter() - started
    synthetic = model.sample(rows)
    return synthetic, {"fit_only_s": fit_only_s, "epsilon_spent": float(model.epsilon_spent_)}


def sample_independent(train: pd.DataFrame, rows: int, *, seed: int) -> pd.DataFrame:
    """Each column drawn with replacement from the real column, on its own (NOT private).

    Every marginal is right up to sampling noise and every dependence is gone: a model
    must beat it on 2-way TVD, pair trends and ML utility to have learned anything.
    """
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {name: train[name].to_numpy()[rng.integers(0, len(train), rows)] for name in train.columns}
    ).astype(train.dtypes.to_dict())


def _thread_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    env.pop("VIRTUAL_ENV", None)
    # Workers import the synthdata beside this file, as the suite does.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _run_process(command: list[str], *, log: Path, timeout: float, what: str) -> None:
    with log.open("w", encoding="utf-8") as handle:
        try:
            completed = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=_thread_env(),
                                       timeout=timeout, cwd=ROOT, check=False)
        except subprocess.TimeoutExpired:
            raise MethodFailed(f"{what} ran past the {timeout:g} s limit (--timeout)") from None
    if completed.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-2:]
        raise MethodFailed(f"{what} failed (exit {completed.returncode}): " + " | ".join(line.strip() for line in tail))


def run_in_worker(method: str, train: pd.DataFrame, rows: int, *, epsilon: float | None, seed: int,
                  options: dict[str, Any], timeout: float, target: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``ours`` or ``independent`` in a fresh process of this interpreter (the project's venv)."""
    with tempfile.TemporaryDirectory(prefix=f"suite-{method}-") as tmp:
        tmp_path = Path(tmp)
        spec = {"method": method, "train": str(tmp_path / "train.pkl"), "out": str(tmp_path / "synthetic.pkl"),
                "result": str(tmp_path / "result.json"), "rows": rows, "epsilon": epsilon, "delta": DELTA,
                "seed": seed, "options": options, "target": target}
        train.to_pickle(spec["train"])
        (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        log = tmp_path / "log.txt"
        _run_process([sys.executable, str(Path(__file__).resolve()), "--worker", str(tmp_path / "spec.json")],
                     log=log, timeout=timeout, what=method)
        synthetic = pd.read_pickle(spec["out"])
        info = json.loads(Path(spec["result"]).read_text(encoding="utf-8"))
    return synthetic, info


def peak_rss_bytes() -> int:
    """This process's peak resident set size: VmHWM of /proc/self/status.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries that high-water mark across
    ``execve`` from the process that forked, so a worker would report the suite's own
    peak (scikit-learn and SDMetrics loaded) instead of its own.
    """
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def worker(spec_path: str) -> int:
    """The body of a worker process: fit and sample one method, report time and peak RSS."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    train = pd.read_pickle(spec["train"])
    info: dict[str, Any] = {}
    if spec["method"] == "ours":
        import torch

        torch.set_num_threads(1)
        import synthdata
        from synthdata import models  # noqa: F401

        info["rss_before_fit_bytes"] = peak_rss_bytes()
        started, cpu_started = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            synthetic, extra = fit_sample_ours(train, spec["rows"], epsilon=spec["epsilon"], delta=spec["delta"],
                                               seed=spec["seed"], options=spec["options"],
                                               target=spec.get("target"))
        info.update(extra)
        # What the model warned about (a column it could not release, say): for the report.
        info["warnings"] = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught
                                              if issubclass(w.category, synthdata.SynthdataWarning)))[:10]
    elif spec["method"] == "independent":
        info["rss_before_fit_bytes"] = peak_rss_bytes()
        started, cpu_started = time.perf_counter(), time.process_time()
        synthetic = sample_independent(train, spec["rows"], seed=spec["seed"])
    else:
        raise SystemExit(f"unknown worker method {spec['method']!r}")
    info["fit_s"] = time.perf_counter() - started
    info["fit_cpu_s"] = time.process_time() - cpu_started  # the machine is shared: wall time alone misleads
    info["peak_rss_bytes"] = peak_rss_bytes()
    synthetic.to_pickle(spec["out"])
    Path(spec["result"]).write_text(json.dumps(info), encoding="utf-8")
    return 0


# ---- smartnoise-synth (MST, AIM) in its own environment


def ensure_smartnoise() -> Path:
    """The smartnoise-synth environment's Python, built under the cache on first use."""
    python = SMARTNOISE_VENV / "bin" / "python"
    stamp = SMARTNOISE_VENV / ".suite-installed"
    if stamp.is_file() and python.is_file():
        return python
    _say(f"smartnoise-synth: building its own environment in {SMARTNOISE_VENV} "
         f"(first use only: {', then '.join(SMARTNOISE_REQUIREMENTS)}; about 2 GB, a few minutes). "
         "The project's .venv is not touched.")
    if SMARTNOISE_VENV.exists():  # a build that stopped half-way: start again
        shutil.rmtree(SMARTNOISE_VENV)
    CACHE.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    steps = [[base, "-m", "venv", str(SMARTNOISE_VENV)]]
    # torch first and pinned: unpinned, smartnoise's old Opacus would pull a CUDA build.
    steps += [[str(python), "-m", "pip", "install", "--quiet", requirement] for requirement in SMARTNOISE_REQUIREMENTS]
    steps.append([str(python), "-c", "import snsynth, mbi, opacus, torch; print(torch.__version__, opacus.__version__)"])
    for command in steps:
        completed = subprocess.run(command, capture_output=True, text=True, env=_thread_env(), check=False)
        if completed.returncode != 0:
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
            raise MethodFailed("could not build the smartnoise-synth environment ("
                               + " ".join(command[-2:]) + "): " + " | ".join(tail))
    stamp.write_text(" ".join(SMARTNOISE_REQUIREMENTS) + "\n" + completed.stdout, encoding="utf-8")
    _say("smartnoise-synth: environment ready")
    return python


def _column_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """'categorical', 'continuous' or 'datetime' from the column's type (as the audit reads it)."""
    kinds = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        if ptypes.is_bool_dtype(dtype):
            kinds[name] = "categorical"
        elif ptypes.is_datetime64_any_dtype(dtype):
            kinds[name] = "datetime"
        elif ptypes.is_numeric_dtype(dtype):
            kinds[name] = "continuous"
        else:
            kinds[name] = "categorical"
    return kinds


def _aim_options(train: pd.DataFrame) -> dict[str, Any]:
    options = dict(AIM_OPTIONS)
    if options.get("rounds") is None:
        # The encoded width: one column each, plus smartnoise's null flag for each
        # continuous column with missing values. AIM spends width/rounds of its budget
        # on the 1-way marginals, so rounds must exceed the width.
        kinds = _column_kinds(train)
        width = len(kinds) + sum(1 for c, k in kinds.items() if k != "categorical" and train[c].isna().any())
        options["rounds"] = AIM_ROUNDS_PER_COLUMN * width
    return options


def run_smartnoise(method: str, train: pd.DataFrame, rows: int, *, epsilon: float, seed: int,
                   timeout: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    python = ensure_smartnoise()
    kinds = _column_kinds(train)
    out = pd.DataFrame(index=train.index)
    for name, kind in kinds.items():
        column = train[name]
        if kind == "datetime":  # seconds since 1970, a continuous column for smartnoise
            out[name] = column.astype("datetime64[ns]").astype("int64").where(column.notna()) / 1e9
        elif kind == "categorical":
            out[name] = column.astype(object).where(column.isna(), column.astype(str))
        else:
            out[name] = column
    options = _aim_options(train) if method == "aim" else {}
    with tempfile.TemporaryDirectory(prefix=f"suite-{method}-") as tmp:
        tmp_path = Path(tmp)
        spec = {
            "method": method, "train_csv": str(tmp_path / "train.csv"), "out_csv": str(tmp_path / "synthetic.csv"),
            "result_json": str(tmp_path / "result.json"), "rows": rows, "epsilon": epsilon, "delta": DELTA,
            "preprocessor_eps": SMARTNOISE_PREPROCESSOR_SHARE * epsilon, "seed": seed,
            "categorical": [c for c, k in kinds.items() if k == "categorical"],
            "continuous": [c for c, k in kinds.items() if k != "categorical"],
            "nullable": [c for c in train.columns if train[c].isna().any()],
            "bins": SMARTNOISE_BINS, "options": options,
        }
        out.to_csv(spec["train_csv"], index=False, na_rep="")
        (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        _run_process([str(python), str(SMARTNOISE_RUNNER), str(tmp_path / "spec.json")],
                     log=tmp_path / "log.txt", timeout=timeout, what=method)
        raw = pd.read_csv(spec["out_csv"], dtype=str, keep_default_na=False, na_values=[""])
        info = json.loads(Path(spec["result_json"]).read_text(encoding="utf-8"))
    info["options"] = {**options, "bins": SMARTNOISE_BINS,
                       "preprocessor_share": SMARTNOISE_PREPROCESSOR_SHARE}
    return _restore_types(raw, train, kinds), info


def _restore_types(raw: pd.DataFrame, train: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Read smartnoise's CSV back in the real columns' types; values are left as they came."""
    frame = pd.DataFrame(index=raw.index)
    for name, kind in kinds.items():
        column = raw[name]
        if kind == "datetime":
            seconds = pd.to_numeric(column, errors="coerce")
            frame[name] = pd.to_datetime(seconds * 1e9, unit="ns")
        elif kind == "continuous":
            frame[name] = pd.to_numeric(column, errors="coerce")
        elif ptypes.is_bool_dtype(train[name].dtype):
            mapped = column.map({"True": True, "False": False})
            frame[name] = mapped.astype(bool) if mapped.notna().all() else mapped.astype(object)
        else:
            frame[name] = column.astype(object)
    return frame[list(train.columns)]


# --------------------------------------------------------------------------- metrics


def _times_of_day(observed: np.ndarray) -> bool:
    """Whether real numbers are times of day written HHMM: all whole, 0 to 2400, none ending in 60
    to 99, and at least 100 distinct values from 100 (not a handful of codes)."""
    if observed.size == 0 or not np.all(observed == np.round(observed)) or observed.min() < 0 or \
            observed.max() > 2400 or np.any(np.fmod(observed, 100) >= 60):
        return False
    return np.unique(observed[observed >= 100]).size >= 100


def impossible_values(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, Any]:
    """Share of synthetic values no real value could be: off range, off lattice, unseen.

    Numbers (and date-times): outside the real training column's [min, max], or off its
    lattice — the smallest step the real values sit on (whole numbers; 0.5 steps from
    17.5; 25 g; whole minutes), read from real values that need at most
    MAX_LATTICE_DECIMALS decimals (columns that need more are measurements: range only);
    real times of day written HHMM (:func:`_times_of_day`) put a value ending in 60 to 99 off.
    Categories: a value the real training column never holds. Any column: a missing
    value where the real column has none. Each synthetic cell counts once however many
    of these it breaks. Returns shares of all cells and of rows with at least one such
    value, and per column, ``{impossible, out_of_range, off_lattice, unseen_value,
    invented_missing, lattice, off_support}``; ``off_support`` (numbers with at most
    SMALL_SUPPORT real values only) is the share of synthetic values that are none of
    those values — reported, not counted.
    """
    rows = len(synthetic)
    any_bad = np.zeros(rows, dtype=bool)
    cells = 0
    per_column: dict[str, Any] = {}
    for name in real.columns:
        if name not in synthetic.columns:
            continue
        r, s = real[name], synthetic[name]
        r_missing = r.isna().to_numpy()
        s_missing = s.isna().to_numpy()
        invented_missing = s_missing if not r_missing.any() else np.zeros(rows, dtype=bool)
        kind = _column_kinds(real[[name]])[name]
        entry: dict[str, Any] = {}
        if kind in ("continuous", "datetime"):
            rv, sv = _numbers(r, kind), _numbers(s, kind)
            unreadable = np.isnan(sv) & ~s_missing  # text that is no number
            observed = rv[~np.isnan(rv)]
            present = ~np.isnan(sv)
            low, high = observed.min(), observed.max()
            out_of_range = present & ((sv < low) | (sv > high))
            lattice = _lattice(observed)
            on = _on_lattice(sv, lattice)
            clock = kind == "continuous" and _times_of_day(observed)
            if clock:  # a minute's ending is 00 to 59: 1275 is no time
                on &= np.fmod(np.where(present, sv, 0.0), 100) < 60
            off_lattice = present & ~on & ~out_of_range
            bad = out_of_range | off_lattice | invented_missing | unreadable
            distinct = np.unique(observed)
            entry.update(
                out_of_range=_share(out_of_range), off_lattice=_share(off_lattice), unseen_value=_share(unreadable),
                lattice=_lattice_text(lattice, kind, clock=clock),
                off_support=_share(present & ~np.isin(sv, distinct)) if distinct.size <= SMALL_SUPPORT else None,
            )
        else:
            levels = pd.Index(pd.unique(_text(r)[~r_missing]))
            unseen = ~s_missing & (levels.get_indexer(_text(s)) < 0)
            bad = unseen | invented_missing
            entry.update(out_of_range=None, off_lattice=None, unseen_value=_share(unseen), lattice=None, off_support=None)
        entry["invented_missing"] = _share(invented_missing)
        entry["impossible"] = _share(bad)
        per_column[name] = entry
        any_bad |= bad
        cells += int(bad.sum())
    total = rows * len(per_column)
    return {
        "cells": cells / total if total else None,
        "rows": float(any_bad.mean()) if rows else None,
        "per_column": per_column,
    }


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else 0.0


def _text(series: pd.Series) -> np.ndarray:
    return series.astype(object).map(lambda v: v if isinstance(v, str) else str(v)).to_numpy(dtype=object)


def _numbers(series: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":  # seconds since 1970: exact in a float, unlike nanoseconds
        stamps = pd.to_datetime(series, errors="coerce")
        values = stamps.astype("datetime64[ns]").to_numpy().view(np.int64) // 1_000_000 / 1e3
        values[stamps.isna().to_numpy()] = np.nan
        return values
    if ptypes.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=float)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _lattice(values: np.ndarray) -> tuple[int, int, int] | None:
    """(decimals, base, step): the values are base + k * step, all in units of 10**-decimals."""
    if values.size == 0:
        return None
    for decimals in range(MAX_LATTICE_DECIMALS + 1):
        scaled = values * 10.0 ** decimals
        rounded = np.round(scaled)
        if np.all(np.abs(scaled - rounded) <= 1e-6 + 1e-12 * np.abs(scaled)):
            break
    else:
        return None
    ints = rounded.astype(np.int64)
    base = int(ints.min())
    step = int(np.gcd.reduce(ints - base)) if ints.size > 1 else 0
    return decimals, base, step


def _on_lattice(values: np.ndarray, lattice: tuple[int, int, int] | None) -> np.ndarray:
    if lattice is None:
        return np.ones(values.shape, dtype=bool)
    decimals, base, step = lattice
    with np.errstate(invalid="ignore"):
        scaled = values * 10.0 ** decimals
        rounded = np.round(scaled)
        near = np.abs(scaled - rounded) <= 1e-6 + 1e-12 * np.abs(scaled)
        safe = near & (np.abs(rounded) < 9e15)
    ints = np.where(safe, rounded, 0).astype(np.int64) - base
    on = safe & ((ints == 0) if step == 0 else (ints % step == 0))
    return on


def _lattice_text(lattice: tuple[int, int, int] | None, kind: str, *, clock: bool = False) -> str | None:
    if lattice is None:  # measurements (more decimals than a lattice is read from): range only
        return None
    if clock:
        return _lattice_text(lattice, kind) + ", times HHMM"
    decimals, base, step = lattice
    if kind == "datetime":
        return f"every {step * 10.0 ** -decimals:g} s" if step else "one instant"
    unit = 10.0 ** -decimals
    if step == 0:
        return "one value"
    text = f"step {step * unit:g}"
    offset = (base % step) * unit if step else 0.0
    return text + (f" from {base * unit:g}" if offset else "")


def categorical_tvd(details: dict[str, Any], kinds: dict[str, str]) -> dict[str, float | None]:
    """Mean 1-way TVD over the categorical columns, and 2-way over pairs of them.

    MST and AIM decode a continuous column to the midpoints of 10 equal-width bins, which
    puts most of its mass in the wrong quantile bin whatever they learned; on categories
    nothing handicaps them, so these two figures compare the methods' modelling alone.
    """
    categorical = {c for c, k in kinds.items() if k == "categorical"}
    ones = [v for c, v in details.get("tvd_per_column", {}).items() if c in categorical]
    twos = [v for pair, v in details.get("tvd_per_pair", {}).items() if set(pair.split(" | ")) <= categorical]
    return {"tvd_1way_cat": float(np.mean(ones)) if ones else None,
            "tvd_2way_cat": float(np.mean(twos)) if twos else None}


def evaluate(data: Dataset, synthetic: pd.DataFrame, *, seed: int) -> dict[str, Any]:
    """Every metric of one synthetic table; a metric that fails is recorded, not raised."""
    from synthdata.audit import (
        detection_auc,
        marginal_tvd,
        ml_utility,
        sdmetrics_quality,
    )

    train = data.train
    missing = [c for c in train.columns if c not in synthetic.columns]
    notes = []
    if missing:
        notes.append(f"the synthetic table lacks {missing}; metrics use the other columns")
        train = train.drop(columns=missing)
    synthetic = synthetic[list(train.columns)]
    holdout = data.holdout[list(train.columns)]
    summary: dict[str, Any] = {}
    details: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def attempt(what: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return call()
        except Exception as exc:  # noqa: BLE001 - a metric that cannot be computed is reported
            errors[what] = f"{type(exc).__name__}: {exc}"[:300]
            return None
        finally:
            details.setdefault("metric_s", {})[what] = time.perf_counter() - started

    tvd = attempt("tvd", lambda: marginal_tvd(train, synthetic))
    if tvd:
        summary.update(tvd_1way=tvd["tvd_1way"], tvd_2way=tvd["tvd_2way"])
        details.update(tvd_per_column=tvd["per_column"], tvd_per_pair=tvd["per_pair"])
        summary.update(categorical_tvd(details, _column_kinds(train)))
    quality = attempt("sdmetrics", lambda: sdmetrics_quality(train, synthetic))
    if quality:
        summary.update(quality=quality["score"], column_shapes=quality["column_shapes"],
                       pair_trends=quality["column_pair_trends"])
        details["sdmetrics"] = quality["details"]
    if data.target is not None and data.target in train.columns:
        utility = attempt("ml_utility", lambda: ml_utility(train, synthetic, holdout, target=data.target, seed=seed))
        if utility:
            key = "r2" if utility["task"] == "regression" else "auroc"
            summary.update(ml=utility["synthetic"][key], ml_real=utility["real"][key], ml_metric=key)
            details["ml_utility"] = utility
    detection = attempt("detection", lambda: detection_auc(train, synthetic, seed=seed))
    if detection:
        summary["detection"] = detection["auroc"]
        details["detection"] = detection
    impossible = attempt("impossible", lambda: impossible_values(train, synthetic))
    if impossible:
        summary.update(impossible_cells=impossible["cells"], impossible_rows=impossible["rows"])
        details["impossible_per_column"] = impossible["per_column"]
    return {"summary": summary, "details": details, "errors": errors, "notes": notes}


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    options = dict(_option(text) for text in args.model_option)
    cache = _load_cache() if args.reuse_baselines else {}
    document: dict[str, Any] = {
        "benchmark": "suite",
        "date": dt.date.today().isoformat(),
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} CPU cores",
        "delta": DELTA,
        "epsilons": args.epsilons,
        "seeds": args.seeds,
        "methods": args.methods,
        "model_options": options,
        "smartnoise": {"requirements": list(SMARTNOISE_REQUIREMENTS), "preprocessor_share": SMARTNOISE_PREPROCESSOR_SHARE,
                       "bins": SMARTNOISE_BINS, "aim": {**AIM_OPTIONS, "rounds_per_column": AIM_ROUNDS_PER_COLUMN}},
        "datasets": {},
    }
    import synthdata

    document["synthdata"] = {"path": str(Path(synthdata.__file__).parent), "version": synthdata.__version__,
                             **_git_state()}
    for name in args.datasets:
        try:
            data = DATASETS[name]()
        except (OSError, ValueError) as exc:
            _say(f"{name}: cannot load ({exc}); skipped")
            document["datasets"][name] = {"error": str(exc)}
            continue
        from synthdata.audit import marginal_tvd

        floor = marginal_tvd(data.train, data.holdout)
        entry = {
            "source": data.source, "split": data.split, "target": data.target, "notes": data.notes,
            "rows": {"train": len(data.train), "holdout": len(data.holdout)}, "columns": list(data.train.columns),
            "kinds": _column_kinds(data.train),
            "floor": {"tvd_1way": floor["tvd_1way"], "tvd_2way": floor["tvd_2way"],
                      **categorical_tvd({"tvd_per_column": floor["per_column"], "tvd_per_pair": floor["per_pair"]},
                                        _column_kinds(data.train))},
            "results": [],
        }
        document["datasets"][name] = entry
        _say(f"{name}: {len(data.train):,} training rows, {len(data.holdout):,} holdout rows, "
             f"{data.train.shape[1]} columns")
        rows = len(data.train)
        for seed in args.seeds:
            plan: list[tuple[str, float | None]] = []
            for method in args.methods:
                if method in PRIVATE:
                    plan += [(method, epsilon) for epsilon in args.epsilons]
                else:
                    plan.append((method, None))
            for method, epsilon in plan:
                label = f"{name} {method}" + (f" eps={epsilon:g}" if epsilon is not None else "") + f" seed={seed}"
                key = _cache_key(data, method, epsilon, seed, rows)
                if method in ("mst", "aim") and key in cache:
                    _say(f"{label}: from the baseline cache (--reuse-baselines)")
                    entry["results"].append({**cache[key], "cached": True})
                    continue
                _say(f"{label}: fitting ...")
                result: dict[str, Any] = {"method": method, "epsilon": epsilon, "seed": seed}
                try:
                    synthetic, info = _synthesise(method, data, rows, epsilon=epsilon, seed=seed,
                                                  options=options, timeout=args.timeout)
                except MethodFailed as exc:
                    _say(f"{label}: FAILED: {exc}")
                    result.update(status="failed", error=str(exc), summary={}, details={}, info={})
                    entry["results"].append(result)
                    continue
                evaluation = evaluate(data, synthetic, seed=seed)
                evaluation["summary"]["fit_s"] = info.get("fit_s")
                evaluation["summary"]["fit_cpu_s"] = info.get("fit_cpu_s")
                peak = info.get("peak_rss_bytes")
                evaluation["summary"]["peak_mb"] = peak / 2**20 if peak else None
                result.update(status="ok", info=info, **evaluation)
                entry["results"].append(result)
                s = evaluation["summary"]
                _say(f"{label}: done" + (f" in {s['fit_s']:.0f} s" if s.get("fit_s") is not None else "")
                     + f"; 1-way TVD {_fmt(s.get('tvd_1way'))}, 2-way {_fmt(s.get('tvd_2way'))}, "
                     f"ML {_fmt(s.get('ml'))}" + (f"; metric errors: {evaluation['errors']}" if evaluation["errors"] else ""))
                if method in ("mst", "aim"):
                    _store_cache(key, result)
    return document


def _synthesise(method: str, data: Dataset, rows: int, *, epsilon: float | None, seed: int,
                options: dict[str, Any], timeout: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    if method == "real":
        return data.train.copy(), {}
    if method in ("ours", "independent"):
        return run_in_worker(method, data.train, rows, epsilon=epsilon, seed=seed, options=options, timeout=timeout,
                             target=data.target)
    return run_smartnoise(method, data.train, rows, epsilon=float(epsilon), seed=seed, timeout=timeout)


def _cache_key(data: Dataset, method: str, epsilon: float | None, seed: int, rows: int) -> str:
    fingerprint = hashlib.sha256(pd.util.hash_pandas_object(data.train, index=False).to_numpy().tobytes())
    settings = json.dumps([DELTA, SMARTNOISE_PREPROCESSOR_SHARE, SMARTNOISE_BINS, AIM_OPTIONS, AIM_ROUNDS_PER_COLUMN,
                           SMARTNOISE_REQUIREMENTS, rows, data.target, len(data.holdout)], sort_keys=True)
    fingerprint.update(settings.encode())
    return f"{data.name}|{method}|eps={epsilon}|seed={seed}|{fingerprint.hexdigest()[:16]}"


def _git_state() -> dict[str, Any]:
    """The commit the benchmarked synthdata comes from, and whether synthdata/ differs from it."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "synthdata"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an exported snapshot)
        return {"commit": os.environ.get("SUITE_COMMIT"), "synthdata_modified": None}
    return {"commit": commit, "synthdata_modified": bool(changed)}


def _load_cache() -> dict[str, Any]:
    try:
        return json.loads(BASELINE_CACHE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _store_cache(key: str, result: dict[str, Any]) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = _load_cache()
    cache[key] = _plain(result)
    temporary = BASELINE_CACHE.with_suffix(".tmp")
    temporary.write_text(json.dumps(cache, allow_nan=False), encoding="utf-8")
    temporary.replace(BASELINE_CACHE)


# --------------------------------------------------------------------------- printing

COLUMNS = (  # key, header, width, format
    ("tvd_1way", "tvd1", 6, "{:.3f}"),
    ("tvd_2way", "tvd2", 6, "{:.3f}"),
    ("tvd_1way_cat", "tvd1c", 6, "{:.3f}"),
    ("tvd_2way_cat", "tvd2c", 6, "{:.3f}"),
    ("quality", "sdm_q", 6, "{:.3f}"),
    ("pair_trends", "pairs", 6, "{:.3f}"),
    ("ml", "ml", 6, "{:.3f}"),
    ("detection", "detect", 6, "{:.3f}"),
    ("impossible_cells", "imp_cell", 8, "{:.2%}"),
    ("impossible_rows", "imp_row", 8, "{:.2%}"),
    ("fit_s", "fit_s", 7, "{:.1f}"),
    ("fit_cpu_s", "cpu_s", 7, "{:.1f}"),
    ("peak_mb", "peak_MB", 7, "{:.0f}"),
)


def print_report(document: dict[str, Any], *, markdown: bool = False) -> None:
    for name, entry in document["datasets"].items():
        if "error" in entry:
            print(f"\n## {name}: not run ({entry['error']})")
            continue
        print()
        ml_metric = next((r["summary"].get("ml_metric") for r in entry["results"] if r.get("summary", {}).get("ml_metric")),
                         None)
        print(f"## {name}: {entry['rows']['train']:,} training rows, {entry['rows']['holdout']:,} holdout rows "
              f"({entry['split']}), {len(entry['columns'])} columns; "
              + (f"target {entry['target']!r}" if entry["target"] else "no ML-utility target")
              + (f" ({'R2' if ml_metric == 'r2' else 'AUROC'})" if ml_metric else ""))
        for note in entry["notes"]:
            print(f"   note: {note}")
        header = ["method", "eps", "seed"] + [c[1] for c in COLUMNS]
        lines = []
        for r in sorted(entry["results"], key=_order):
            cells = [LABELS[r["method"]], _fmt_eps(r["epsilon"]), str(r["seed"]) if r["method"] != "real" else "-"]
            if r["status"] != "ok":
                cells += ["FAILED"] + ["-"] * (len(COLUMNS) - 1)
            else:
                if "tvd_1way_cat" not in r["summary"]:  # a --json written before these two figures
                    r["summary"].update(categorical_tvd(r["details"], entry["kinds"]))
                cells += [_fmt(r["summary"].get(key), fmt) for key, _, _, fmt in COLUMNS]
            lines.append(cells)
        _print_table(header, lines, markdown=markdown)
        for r in sorted(entry["results"], key=_order):
            if r["status"] != "ok":
                print(f"FAILED {r['method']} eps={_fmt_eps(r['epsilon'])} seed={r['seed']}: {r['error']}")
        floor = entry["floor"]
        print(f"real-data floor (real train vs real holdout): 1-way TVD {_fmt(floor['tvd_1way'])}, "
              f"2-way TVD {_fmt(floor['tvd_2way'])}"
              + (f"; categorical columns only: {_fmt(floor.get('tvd_1way_cat'))}, {_fmt(floor.get('tvd_2way_cat'))}"
                 if "tvd_1way_cat" in floor else ""))
        failed_metrics = [(r["method"], r["epsilon"], r["errors"]) for r in entry["results"]
                          if r["status"] == "ok" and r.get("errors")]
        for method, epsilon, errors in failed_metrics:
            print(f"metric errors, {method} eps={_fmt_eps(epsilon)}: {errors}")
        _print_worst(entry)


def _order(result: dict[str, Any]) -> tuple:
    return (result["epsilon"] is not None, result["epsilon"] or 0.0, METHODS.index(result["method"]), result["seed"])


def _print_table(header: list[str], lines: list[list[str]], *, markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for cells in lines:
            print("| " + " | ".join(cells) + " |")
        print()
        return
    widths = [max(len(header[i]), *(len(c[i]) for c in lines)) if lines else len(header[i]) for i in range(len(header))]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for cells in lines:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))


def _print_worst(entry: dict[str, Any], top: int = 4) -> None:
    for r in sorted(entry["results"], key=_order):
        if r["method"] != "ours" or r["status"] != "ok":
            continue
        d = r["details"]
        print(f"ours, eps={_fmt_eps(r['epsilon'])} seed={r['seed']}:")
        for message in r.get("info", {}).get("warnings", []):
            print(f"   model warning: {message[:200]}")
        if d.get("tvd_per_column"):
            worst = sorted(d["tvd_per_column"].items(), key=lambda kv: -kv[1])[:top]
            print("   worst columns (1-way TVD): " + ", ".join(f"{c} {v:.3f}" for c, v in worst))
        if d.get("tvd_per_pair"):
            worst = sorted(d["tvd_per_pair"].items(), key=lambda kv: -kv[1])[:top]
            print("   worst pairs (2-way TVD):   " + ", ".join(f"{c} {v:.3f}" for c, v in worst))
        bad = {c: v for c, v in (d.get("impossible_per_column") or {}).items() if v["impossible"] > 0}
        if bad:
            parts = []
            for column, v in sorted(bad.items(), key=lambda kv: -kv[1]["impossible"]):
                why = [f"{k.replace('_', ' ')} {v[k]:.1%}" for k in ("out_of_range", "off_lattice", "unseen_value",
                                                                    "invented_missing") if v.get(k)]
                parts.append(f"{column} {v['impossible']:.1%} ({', '.join(why)}"
                             + (f"; lattice {v['lattice']}" if v.get("lattice") else "") + ")")
            print("   impossible values:         " + "; ".join(parts))
        support = {c: v["off_support"] for c, v in (d.get("impossible_per_column") or {}).items()
                   if v.get("off_support")}
        if support:
            print("   values outside a small real support (not counted): "
                  + ", ".join(f"{c} {v:.1%}" for c, v in sorted(support.items(), key=lambda kv: -kv[1])))


def print_targets(document: dict[str, Any]) -> None:
    print()
    print(f"targets (issue 11) for ours at eps={TARGET_EPSILON:g}: 1-way TVD <= {TARGET_TVD_1WAY}, 2-way TVD below "
          "MST's and AIM's, ML utility at least theirs, no value off lattice / out of range (impossible cells 0)")
    any_row = False
    for name, entry in document["datasets"].items():
        results = entry.get("results", [])
        for seed in sorted({r["seed"] for r in results}):
            ours = _pick(results, "ours", seed)
            if ours is None:
                if any(r["method"] == "ours" and r["epsilon"] == TARGET_EPSILON for r in results):
                    print(f"  {name} seed={seed}: ours failed at eps={TARGET_EPSILON:g}: every target MISSED")
                    any_row = True
                continue
            any_row = True
            baselines = {m: _pick(results, m, seed) for m in ("mst", "aim")}
            checks = [_check("1-way TVD", ours.get("tvd_1way"), "<=", TARGET_TVD_1WAY)]
            for key, op, what in (("tvd_2way", "<", "2-way TVD"), ("ml", ">=", "ML utility")):
                for method, summary in baselines.items():
                    other = summary.get(key) if summary else None
                    checks.append(_check(f"{what} vs {method.upper()}", ours.get(key), op, other,
                                         missing=_why_missing(results, method, seed) if summary is None else None))
            checks.append(_check("impossible cells", ours.get("impossible_cells"), "<=", 0.0))
            print(f"  {name} seed={seed}: " + "; ".join(checks))
    if not any_row:
        print(f"  (ours was not run at eps={TARGET_EPSILON:g})")


def _pick(results: list[dict[str, Any]], method: str, seed: int) -> dict[str, Any] | None:
    """The summary of ``method`` at the target epsilon for ``seed``, when it ran."""
    for r in results:
        if r["method"] == method and r["seed"] == seed and r["epsilon"] == TARGET_EPSILON and r["status"] == "ok":
            return r["summary"]
    return None


def _why_missing(results: list[dict[str, Any]], method: str, seed: int) -> str:
    for r in results:
        if r["method"] == method and r["seed"] == seed and r["epsilon"] == TARGET_EPSILON and r["status"] != "ok":
            return f"{method.upper()} failed: {r['error'].rsplit(' | ', 1)[-1][:80]}"
    return f"{method.upper()} not run"


def _check(what: str, value: float | None, op: str, threshold: float | None, *, missing: str | None = None) -> str:
    if missing:
        return f"{what}: n/a ({missing})"
    if threshold is None:
        return f"{what}: n/a (no figure to compare with)"
    if value is None:
        return f"{what}: MISSED (ours has no figure)"
    met = {"<=": value <= threshold, "<": value < threshold, ">=": value >= threshold}[op]
    shown = f"{value:.2%}" if what == "impossible cells" else f"{value:.3f}"
    limit = f"{threshold:.0%}" if what == "impossible cells" else f"{threshold:.3f}"
    return f"{what} {shown} {op} {limit} {'met' if met else 'MISSED'}"


def _fmt(value: Any, fmt: str = "{:.3f}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return fmt.format(value)


def _fmt_eps(epsilon: float | None) -> str:
    return "-" if epsilon is None else f"{epsilon:g}"


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# --------------------------------------------------------------------------- CLI


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise SystemExit(f"error: --model-option needs KEY=VALUE with KEY a Python name, got {text!r}")
    value = value.strip()
    if value.lower() in ("true", "false"):
        return key.strip(), value.lower() == "true"
    for kind in (int, float):
        try:
            return key.strip(), kind(value)
        except ValueError:
            pass
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS),
                        help="tables to run (default: all)")
    parser.add_argument("--epsilons", nargs="+", type=float, default=[1.0, 10.0],
                        help="privacy budgets of the private methods (default: 1 10)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS),
                        help="methods to run side by side (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds of the methods (default: 0)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write every figure and detail to this file")
    parser.add_argument("--reuse-baselines", action="store_true",
                        help="take MST/AIM results from baselines.json in the cache when it holds them for "
                        "the same data and settings (default: compute everything)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds one method's fit and sampling may take (default: {DEFAULT_TIMEOUT_S})")
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="keyword argument for TabularGAN's constructor; repeatable")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--data-dir", type=Path, default=SHARED,
                        help="the shared datasets folder (default: ../shared/datasets beside the repository)")
    parser.add_argument("--cache-dir", type=Path, default=CACHE,
                        help="where the smartnoise-synth environment and baselines.json live "
                        "(default: benchmarks/.cache, which git ignores)")
    parser.add_argument("--show", type=Path, metavar="JSON",
                        help="run nothing: print the tables and targets of an earlier run's --json file")
    parser.add_argument("--worker", metavar="SPEC", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.show:
        document = json.loads(args.show.read_text(encoding="utf-8"))
        print_report(document, markdown=args.markdown)
        print_targets(document)
        return 0
    if any(e <= 0 for e in args.epsilons):
        raise SystemExit("error: every epsilon must be positive")
    global SHARED, CACHE, SMARTNOISE_VENV, BASELINE_CACHE
    SHARED = args.data_dir.resolve()
    CACHE = args.cache_dir.resolve()
    SMARTNOISE_VENV, BASELINE_CACHE = CACHE / "smartnoise-venv", CACHE / "baselines.json"
    started = time.perf_counter()
    document = run(args)
    document["wall_s"] = time.perf_counter() - started
    print_report(document, markdown=args.markdown)
    print_targets(document)
    print(f"\nwall time {document['wall_s'] / 60:.1f} min; delta {DELTA:g} for every private method; "
          f"MST/AIM: preprocessor_eps {SMARTNOISE_PREPROCESSOR_SHARE:g} x eps, {SMARTNOISE_BINS} bins per continuous "
          f"column, AIM {json.dumps({k: v for k, v in AIM_OPTIONS.items() if v is not None})}, rounds "
          f"{AIM_ROUNDS_PER_COLUMN} x encoded columns")
    if args.json is not None:
        args.json.write_text(json.dumps(_plain(document), indent=1, allow_nan=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
