"""One-command release: private synthetic data, audited, reported and signed, written atomically.

:func:`release` is the pipeline of ``synthdata release``, stage by stage::

    ingest -> schema -> holdout split -> fit -> sample -> audit -> report -> sign -> write

:func:`release_images` is the same pipeline for images (PNG files, ``images.npz`` and a
sample grid in place of ``synthetic.csv``); both share :func:`_write_release`, which
reserves the budget, signs, renames into place and records the spend.

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

__all__ = ["DEFAULT_HOLDOUT_FRACTION", "DEFAULT_RELEASES_DIR", "REPORT_FORMAT", "ReleaseResult", "release",
           "release_images"]

REPORT_FORMAT = "synthdata-report/1"
DEFAULT_HOLDOUT_FRACTION = 0.2
#: Most synthetic rows the audit reads back; rows are drawn independently, so the first
#: rows of the file are a uniform sample of it.
AUDIT_SYNTHETIC_ROWS = 200_000
#: The files of a table release that the signature covers (report.json and its envelope
#: are the signature itself).
TABLE_FILES = ("synthetic.csv", "report.html")
#: Most synthetic images the image audit reads.
AUDIT_SYNTHETIC_IMAGES = 5_000
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
    from .signing import fingerprint
    from .sampling import write_csv

    say = progress or (lambda _message: None)
    _check_options(table, epsilon=epsilon, delta=delta, target=target, holdout_fraction=holdout_fraction, rows=rows)
    directory = _release_directory(out, table.source)
    seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed

    def build(staging: Path, key) -> tuple[dict[str, Any], list[str], float | None]:
        say("schema")
        table_schema = schema if schema is not None else infer_schema(table.frame)
        say("holdout split")
        train, holdout = split_holdout(table.frame, holdout_fraction, seed)
        say(f"fit: {len(train):,} training rows, epsilon {epsilon:g}")
        model = TabularGAN(epsilon=epsilon, delta=delta, seed=seed, progress=fit_progress, **(model_options or {}))
        model.fit(train, schema=table_schema)
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
        return predicate, list(TABLE_FILES), model.delta_

    return _write_release(directory, build, input_sha256=table.sha256, epsilon=epsilon, delta=delta, key=key,
                          key_path=key_path, ledger=ledger, budget_limit=budget_limit, say=say)


def release_images(
    images: ImageSet,
    *,
    epsilon: float,
    delta: float | None = None,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    count: int | None = None,
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
    """Release an image set (from :func:`synthdata.images.read_images`) as private synthetic images.

    The same pipeline, atomicity, signature and ledger as :func:`release`; the released
    files are the PNGs (``images/…``, one sub-folder per class when there are labels),
    ``images.npz``, ``grid.png`` and ``report.html`` (see
    :func:`synthdata.images.write_images`). ``count`` is the number of synthetic images
    (default: as many as the training images). The other arguments are those of
    :func:`release`.
    """
    from .audit.images import audit_images
    from .images import write_images
    from .report import render_html
    from .signing import fingerprint

    say = progress or (lambda _message: None)
    _check_image_options(images, epsilon=epsilon, delta=delta, holdout_fraction=holdout_fraction, count=count)
    directory = _release_directory(out, images.source)
    seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed

    def build(staging: Path, key) -> tuple[dict[str, Any], list[str], float | None]:
        height, width, channels = images.images.shape[1:]
        say(f"schema: {len(images):,} images, {height}x{width} {images.mode}"
            + (f", {len(images.class_names)} classes" if images.class_names else ""))
        say("holdout split")
        train, holdout = _split_indices(len(images), holdout_fraction, seed)
        labels = images.labels
        say(f"fit: {len(train):,} training images, epsilon {epsilon:g}")
        model = _image_model(epsilon=epsilon, delta=delta, seed=seed, progress=fit_progress, **(model_options or {}))
        model.fit(images.images[train], None if labels is None else labels[train])
        n_images = len(train) if count is None else count
        say(f"sample: {n_images:,} images")
        synthetic, synthetic_labels = model.sample(n_images, seed=seed + 1)
        files = write_images(staging, synthetic, synthetic_labels if labels is not None else None,
                             images.class_names)
        say("audit")
        has_holdout = len(holdout) > 0
        audited = audit_images(images.images[train], None if labels is None else labels[train],
                               synthetic[:AUDIT_SYNTHETIC_IMAGES],
                               None if labels is None or synthetic_labels is None
                               else np.asarray(synthetic_labels)[:AUDIT_SYNTHETIC_IMAGES],
                               holdout_images=images.images[holdout] if has_holdout else None,
                               holdout_labels=labels[holdout] if has_holdout and labels is not None else None,
                               epsilon=epsilon, delta=model.delta_, seed=seed)
        say("report")
        predicate = _image_predicate(images, model, audited, train=len(train), holdout=len(holdout),
                                     holdout_fraction=holdout_fraction, count=n_images,
                                     key_fingerprint=fingerprint(key.public_key()))
        (staging / "report.html").write_text(render_html(predicate), encoding="utf-8")
        return predicate, [*files, "report.html"], model.delta_

    return _write_release(directory, build, input_sha256=images.sha256, epsilon=epsilon, delta=delta, key=key,
                          key_path=key_path, ledger=ledger, budget_limit=budget_limit, say=say)


def _image_model(**options):
    """The image generator (a seam the tests replace with a stub)."""
    try:
        from .models.images import ImageGAN
    except ImportError as exc:
        raise SynthdataError(f"the image model is not available in this installation ({exc})") from None
    return ImageGAN(**options)


def _write_release(directory: Path, build: Callable[[Path, Any], tuple[dict[str, Any], list[str], float | None]], *,
                   input_sha256: str, epsilon: float, delta: float | None, key, key_path: Path | None,
                   ledger: str | os.PathLike | None, budget_limit: float, say: Callable[[str], None]) -> ReleaseResult:
    """The steps every modality shares: reserve the budget, build in a staging sibling, sign, rename, record.

    ``build(staging, key)`` writes the released files into ``staging`` and returns
    ``(predicate, the files to sign, the delta spent)``. Any failure or interrupt removes
    the staging directory and cancels the ledger reservation.
    """
    from .signing import default_key, write_signed

    public_key_path, key_created = key_path, False
    ledger_file = BudgetLedger(Path(ledger) if ledger is not None else directory.parent / LEDGER_NAME)
    reservation = ledger_file.reserve(input_sha256=input_sha256, epsilon=epsilon, delta=delta,
                                      release=directory, limit=budget_limit)
    staging = reservation.staging
    try:
        if key is None:
            key, public_key_path, key_created = default_key()
        staging.mkdir()
        predicate, files, delta_spent = build(staging, key)
        say("sign")
        write_signed(staging, predicate, files, key)
        say("write")
        if directory.exists():
            raise SynthdataError(f"{directory} appeared while the release was being made; it was left as it is")
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        ledger_file.cancel(reservation)
        raise
    ledger_file.commit(reservation, delta=delta_spent)
    return ReleaseResult(directory=directory, predicate=predicate, public_key_path=public_key_path,
                         key_created=key_created)


def split_holdout(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A seeded random split: (training rows, holdout rows, or None for fraction 0).

    The holdout rows never reach the generator; only the audit reads them.
    """
    if fraction == 0:
        return frame.reset_index(drop=True), None
    train, holdout = _split_indices(len(frame), fraction, seed)
    return frame.iloc[train].reset_index(drop=True), frame.iloc[holdout].reset_index(drop=True)


def _split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (training, holdout) positions of a seeded random split; the same for tables and images."""
    order = np.random.default_rng([seed, 7]).permutation(n)
    cut = int(round(n * fraction))
    return np.sort(order[cut:]), np.sort(order[:cut])


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


def _check_image_options(images: ImageSet, *, epsilon: float, delta: float | None, holdout_fraction: float,
                         count: int | None) -> None:
    n = len(images)
    if not 0 <= holdout_fraction <= 0.5:
        raise DataError(f"--holdout-fraction must be between 0 and 0.5, got {holdout_fraction:g}")
    n_train = max(n - round(n * holdout_fraction), 2)
    check_privacy_parameters(epsilon=epsilon, delta=default_delta(n_train) if delta is None else delta, n=n_train)
    if n - round(n * holdout_fraction) < _MIN_TRAIN_ROWS:
        raise DataError(f"{images.source}: {n} images leave fewer than {_MIN_TRAIN_ROWS} training images after the "
                        "holdout; lower --holdout-fraction")
    if count is not None and count < 2:
        raise DataError(f"--rows (the number of synthetic images) must be at least 2, got {count}")


def _release_directory(out: str | os.PathLike | None, source: str) -> Path:
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = DEFAULT_RELEASES_DIR / f"{Path(source).stem or 'release'}-{stamp}"
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


def _image_predicate(images: ImageSet, model, audited: dict[str, Any], *, train: int, holdout: int,
                     holdout_fraction: float, count: int, key_fingerprint: str) -> dict[str, Any]:
    """The privacy report of an image release: the table report's keys, for images; never a real image."""
    budget = model.ledger_.to_dict()
    notes = list(audited.get("notes", []))
    if count > AUDIT_SYNTHETIC_IMAGES:
        notes.append(f"the audit read the first {AUDIT_SYNTHETIC_IMAGES:,} of the {count:,} synthetic images "
                     "(images are drawn independently, so they are a uniform sample)")
    if holdout == 0:
        notes.append("no holdout (--holdout-fraction 0): the membership-inference audit was not run")
    get_params = getattr(model, "get_params", None)
    params = {k: v for k, v in (get_params() if callable(get_params) else {}).items()
              if k not in ("seed", "progress")}
    height, width, channels = images.images.shape[1:]
    return {
        "format": REPORT_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "modality": "image",
        "privacy": {
            "epsilon": budget["epsilon"],
            "epsilon_spent": budget["epsilon_spent"],
            "delta": budget["delta"],
            "accountant": budget.get("accountant"),
            "accountant_detail": budget.get("accountant_detail", "as stated by the model's privacy ledger"),
            "unit": "one image of the input",
            "budget": budget["budget"],
        },
        "quality": audited["quality"],
        "leakage": audited["leakage"],
        "audit": {"notes": notes, "subsampled": audited.get("subsampled", [])},
        "data": {
            "input_name": Path(images.source).name,
            "input_sha256": images.sha256,
            "input_rows": len(images),
            "rows_train": train,
            "rows_holdout": holdout,
            "holdout_fraction": holdout_fraction,
            "rows_synthetic": count,
            "image_shape": [int(height), int(width), int(channels)],
            "image_mode": images.mode,
            "n_classes": None if images.class_names is None else len(images.class_names),
        },
        "model": {"name": type(model).__name__, "params": _json_ready(params)},
        "software": _software(),
        "signing": {"algorithm": "Ed25519", "public_key_fingerprint": key_fingerprint},
        "files": [f"images/ ({count:,} PNG files)", "images.npz", "grid.png", "report.html"],
    }


def _json_ready(params: dict[str, Any]) -> dict[str, Any]:
    """Model parameters as JSON values: numbers, text, booleans and None as they are, anything else as text."""
    plain = (str, int, float, bool, type(None))
    return {str(k): v if isinstance(v, plain) else str(v) for k, v in params.items()}


def _software() -> dict[str, str]:
    versions = {"synthdata_version": __version__, "python": platform.python_version(),
                "platform": f"{sys.platform}-{platform.machine()}"}
    for name in _VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
