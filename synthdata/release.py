"""One-command release: private synthetic data, audited, reported and signed, written atomically.

:func:`release` is the pipeline of ``synthdata release``, stage by stage::

    ingest -> schema -> holdout split -> fit -> sample -> audit -> report -> sign -> write

The release is built in a temporary sibling directory and renamed into place at the end:
a failure or Ctrl-C at any stage leaves no release directory, and the budget ledger (see
:mod:`synthdata.budget`) records the release only once it is in place.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .budget import DEFAULT_BUDGET_LIMIT, DEFAULT_RELEASES_DIR, LEDGER_NAME, BudgetLedger
from .errors import DataError, SynthdataError
from .ingest import MISSING_MARKERS, Table
from .privacy import check_privacy_parameters, default_delta
from .schema import Schema, infer_schema

__all__ = ["DEFAULT_HOLDOUT_FRACTION", "DEFAULT_RELEASES_DIR", "REPORT_FORMAT", "ReleaseResult", "release"]

REPORT_FORMAT = "synthdata-report/1"
DEFAULT_HOLDOUT_FRACTION = 0.2
#: Most synthetic rows the audit reads back; rows are drawn independently, so the first
#: rows of the file are a uniform sample of it.
AUDIT_SYNTHETIC_ROWS = 200_000
#: The files of a table release that the signature covers (report.json and its envelope
#: are the signature itself).
TABLE_FILES = ("synthetic.csv", "report.html")
_MIN_TRAIN_ROWS = 10
_VERSIONS = ("torch", "opacus", "numpy", "pandas", "scikit-learn", "sdmetrics", "pyarrow", "cryptography")


@dataclass(frozen=True)
class ReleaseResult:
    """Where the release went and its headline figures (the whole report is in ``predicate``)."""

    directory: Path
    predicate: dict[str, Any]
    public_key_path: Path | None
    key_created: bool


def release(
    table: Table,
    *,
    epsilon: float,
    delta: float | None = None,
    target: str | None = None,
    schema: Schema | None = None,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    rows: int | None = None,
    key=None,
    key_path: Path | None = None,
    out: str | os.PathLike | None = None,
    seed: int | None = None,
    ledger: str | os.PathLike | None = None,
    budget_limit: float = DEFAULT_BUDGET_LIMIT,
    model_options: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    fit_progress: Callable[[dict], None] | None = None,
) -> ReleaseResult:
    """Release ``table`` as private synthetic data; returns where it went.

    ``key`` is an Ed25519 private key (default: the user's default key, created on first
    use, see :func:`synthdata.signing.default_key`); ``key_path`` only names its public
    half in the result. ``out`` must not exist (default: a new directory under
    ``privacy_reports/``). ``ledger`` is the budget ledger file (default: beside the
    release); a release that would take the input's cumulative ε above ``budget_limit``
    is refused before any training. ``seed`` makes a CPU run reproducible: keep it
    secret, as anyone who knows it can reproduce the privacy noise; it is not written in
    the report.
    """
    from .audit import audit
    from .models import TabularGAN
    from .report import render_html
    from .signing import default_key, fingerprint, write_signed
    from .sampling import write_csv

    say = progress or (lambda _message: None)
    _check_options(table, epsilon=epsilon, delta=delta, target=target, holdout_fraction=holdout_fraction, rows=rows)
    directory = _release_directory(out, table)
    public_key_path, key_created = key_path, False
    ledger_file = BudgetLedger(Path(ledger) if ledger is not None else directory.parent / LEDGER_NAME)
    seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed

    reservation = ledger_file.reserve(input_sha256=table.sha256, epsilon=epsilon, delta=delta,
                                      release=directory, limit=budget_limit)
    staging = reservation.staging
    try:
        if key is None:
            key, public_key_path, key_created = default_key()
        staging.mkdir()
        say("schema")
        schema = schema if schema is not None else infer_schema(table.frame)
        say("holdout split")
        train, holdout = split_holdout(table.frame, holdout_fraction, seed)
        say(f"fit: {len(train):,} training rows, epsilon {epsilon:g}")
        model = TabularGAN(epsilon=epsilon, delta=delta, seed=seed, progress=fit_progress, **(model_options or {}))
        model.fit(train, schema=schema)
        n_rows = len(train) if rows is None else rows
        say(f"sample: {n_rows:,} rows")
        write_csv(model, n_rows, staging / "synthetic.csv", seed=seed + 1)
        say("audit")
        synthetic = pd.read_csv(staging / "synthetic.csv", nrows=AUDIT_SYNTHETIC_ROWS, low_memory=False,
                                keep_default_na=False, na_values=list(MISSING_MARKERS))  # read as the input was
        audited = audit(train, synthetic, holdout=holdout, target=target, schema=model.schema_,
                        epsilon=epsilon, delta=model.delta_, seed=seed)
        say("report")
        predicate = _predicate(table, model, audited, train=len(train), holdout=len(holdout) if holdout is not None
                               else 0, holdout_fraction=holdout_fraction, rows=n_rows, key_fingerprint=fingerprint(
                                   key.public_key()), audit_rows=min(n_rows, AUDIT_SYNTHETIC_ROWS))
        (staging / "report.html").write_text(render_html(predicate), encoding="utf-8")
        say("sign")
        write_signed(staging, predicate, list(TABLE_FILES), key)
        say("write")
        if directory.exists():
            raise SynthdataError(f"{directory} appeared while the release was being made; it was left as it is")
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        ledger_file.cancel(reservation)
        raise
    ledger_file.commit(reservation, delta=model.delta_)
    return ReleaseResult(directory=directory, predicate=predicate, public_key_path=public_key_path,
                         key_created=key_created)


def split_holdout(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A seeded random split: (training rows, holdout rows, or None for fraction 0).

    The holdout rows never reach the generator; only the audit reads them.
    """
    if fraction == 0:
        return frame.reset_index(drop=True), None
    order = np.random.default_rng([seed, 7]).permutation(len(frame))
    cut = int(round(len(frame) * fraction))
    holdout = frame.iloc[np.sort(order[:cut])].reset_index(drop=True)
    train = frame.iloc[np.sort(order[cut:])].reset_index(drop=True)
    return train, holdout


def _check_options(table: Table, *, epsilon: float, delta: float | None, target: str | None,
                   holdout_fraction: float, rows: int | None) -> None:
    n_train = len(table.frame) - round(len(table.frame) * holdout_fraction)
    n_train = max(n_train, 2)
    check_privacy_parameters(epsilon=epsilon, delta=default_delta(n_train) if delta is None else delta, n=n_train)
    if not 0 <= holdout_fraction <= 0.5:
        raise DataError(f"--holdout-fraction must be between 0 and 0.5, got {holdout_fraction:g}")
    n = len(table.frame)
    if 0 < holdout_fraction and round(n * holdout_fraction) < 1:
        raise DataError(f"{table.source}: {n} rows leave no holdout row at --holdout-fraction {holdout_fraction:g}; "
                        "raise it, or pass 0 to skip the membership audit")
    if n - round(n * holdout_fraction) < _MIN_TRAIN_ROWS:
        raise DataError(f"{table.source}: {n} rows leave fewer than {_MIN_TRAIN_ROWS} training rows after the holdout; "
                        "lower --holdout-fraction")
    if target is not None and target not in table.frame.columns:
        raise DataError(f"{table.source}: --target {target}: no such column; the columns are "
                        + ", ".join(map(str, table.frame.columns)))
    if rows is not None and rows < 1:
        raise DataError(f"--rows must be at least 1, got {rows}")
    if table.sampled:
        raise DataError(f"{table.source} is larger than the in-memory limit; raise --memory-limit to release it")


def _release_directory(out: str | os.PathLike | None, table: Table) -> Path:
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = DEFAULT_RELEASES_DIR / f"{Path(table.source).stem or 'release'}-{stamp}"
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    directory = Path(os.path.abspath(out))
    if directory.exists():
        raise SynthdataError(f"{out} already exists; a release is never overwritten: choose another --out")
    if not directory.parent.is_dir():
        raise SynthdataError(f"{directory.parent} does not exist; create it first or choose another --out")
    return directory


def _predicate(table: Table, model, audited: dict[str, Any], *, train: int, holdout: int, holdout_fraction: float,
               rows: int, key_fingerprint: str, audit_rows: int) -> dict[str, Any]:
    """The privacy report (the in-toto predicate): aggregates only, never a row or the seed."""
    budget = model.ledger_.to_dict()
    notes = list(audited.get("notes", []))
    if audit_rows < rows:
        notes.append(f"the audit read the first {audit_rows:,} of the {rows:,} synthetic rows (rows are drawn "
                     "independently, so they are a uniform sample)")
    if holdout == 0:
        notes.append("no holdout (--holdout-fraction 0): the membership-inference audit was not run")
    params = {k: v for k, v in model.get_params().items() if k not in ("seed", "progress")}
    return {
        "format": REPORT_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "modality": "table",
        "privacy": {
            "epsilon": budget["epsilon"],
            "epsilon_spent": budget["epsilon_spent"],
            "delta": budget["delta"],
            "accountant": budget["accountant"],
            "accountant_detail": "Opacus RDPAccountant (Renyi DP), orders 1.1 to 1024, converted to (epsilon, "
                                 "delta); each spend's epsilon is the cumulative epsilon after it",
            "unit": "one row of the input table",
            "budget": budget["budget"],
        },
        "quality": audited["quality"],
        "leakage": audited["leakage"],
        "audit": {"notes": notes, "subsampled": audited.get("subsampled", [])},
        "data": {
            "input_name": Path(table.source).name,
            "input_sha256": table.sha256,
            "input_rows": len(table.frame),
            "rows_train": train,
            "rows_holdout": holdout,
            "holdout_fraction": holdout_fraction,
            "rows_synthetic": rows,
            "columns": [{"name": c.name, "type": c.type} for c in model.schema_],
        },
        "model": {"name": type(model).__name__, "params": params},
        "software": _software(),
        "signing": {"algorithm": "Ed25519", "public_key_fingerprint": key_fingerprint},
        "files": list(TABLE_FILES),
    }


def _software() -> dict[str, str]:
    versions = {"synthdata_version": __version__, "python": platform.python_version(),
                "platform": f"{sys.platform}-{platform.machine()}"}
    for name in _VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
