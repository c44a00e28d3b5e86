"""One-command release, for any modality: the pipeline in one screen.

:func:`release` runs :data:`STAGES` in order on a *modality* (tables, images, …: an
object with the methods of :class:`Modality`), inside :func:`staged_release`, which
reserves the budget, builds everything in hidden staging folders, signs, renames into
place and records the spend — or, on any failure or Ctrl-C, leaves nothing behind and
cancels the reservation.

Two documents come out (PRODUCT.md, rule 10):

* the **release directory** (shareable): the synthetic data, ``report.json`` (an in-toto
  statement whose predicate is the public report: DP outputs only), its DSSE signature
  and ``report.html``;
* the **steward's audit**, ``NAME.steward-audit/`` beside it (not for release): the exact
  audit computed on the real rows, signed the same way and bound to the release by its
  report's sha256.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from . import __version__
from .budget import DEFAULT_BUDGET_LIMIT, DEFAULT_RELEASES_DIR, LEDGER_NAME, BudgetLedger, cleanup_staging
from .errors import DataError, SynthdataError
from .files import os_error_message, printable
from .privacy import NoiseSource, check_privacy_parameters, watch_ledgers

__all__ = ["DEFAULT_AUDIT_SHARE", "DEFAULT_HOLDOUT_FRACTION", "REPORT_FORMAT", "STAGES", "STEWARD_SUFFIX",
           "Modality", "ReleaseResult", "default_holdout_fraction", "release", "staged_release"]

REPORT_FORMAT = "synthdata-report/2"
STEWARD_FORMAT = "synthdata-steward-audit/1"
#: Share of the input held out for the audits when the modality names none (tables and
#: interaction data); a modality may set its own ``default_holdout_fraction`` (images: 0.1).
DEFAULT_HOLDOUT_FRACTION = 0.2
#: Relative share of the budget for the public audit figures (see synthdata.audit.private).
DEFAULT_AUDIT_SHARE = 0.05
#: Suffix of the steward's audit folder, beside the release directory.
STEWARD_SUFFIX = ".steward-audit"
#: The stages a release goes through, in order; the CLI numbers them "[i/n]".
STAGES = ("schema", "holdout split", "fit", "sample", "audit", "report", "sign", "write")
_VERSIONS = ("torch", "opacus", "opendp", "numpy", "pandas", "scikit-learn", "sdmetrics", "pyarrow", "cryptography")


class Modality(Protocol):
    """What the release needs from a kind of data (see :class:`synthdata.tabular.modality.TableModality`).

    A modality may also carry ``default_holdout_fraction``, the share held out when the
    caller names none (a public constant, never computed from the data); without it,
    :data:`DEFAULT_HOLDOUT_FRACTION`.
    """

    name: str
    source: str

    def check(self, *, holdout_fraction: float, rows: int | None) -> None: ...
    def describe(self) -> str: ...
    def digest(self) -> bytes: ...
    def split(self, fraction: float, noise: NoiseSource) -> tuple[Any, Any]: ...
    def fit(self, train: Any, *, epsilon: float, delta: float | None, seed: int, model_options: dict[str, Any],
            progress: Callable[[dict], None] | None) -> Any: ...
    def write(self, model: Any, directory: Path, count: int | None, seed: int) -> tuple[list[str], int]: ...
    def audit(self, model: Any, train: Any, holdout: Any, directory: Path, *, holdout_fraction: float,
              seed: int) -> tuple[dict[str, Any], dict[str, Any]]: ...
    def data_section(self, model: Any, count: int) -> dict[str, Any]: ...
    def steward_data(self, train: Any, holdout: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ReleaseResult:
    """Where the release went and its public report (``predicate``)."""

    directory: Path
    predicate: dict[str, Any]
    steward_directory: Path
    public_key_path: Path | None
    key_created: bool


def release(modality: Modality, *, epsilon: float, delta: float | None = None,
            holdout_fraction: float | None = None, rows: int | None = None, key=None,
            key_path: Path | None = None, out: str | os.PathLike | None = None, seed: int | None = None,
            ledger: str | os.PathLike | None = None, budget_limit: float = DEFAULT_BUDGET_LIMIT,
            dataset_id: str | None = None, model_options: dict[str, Any] | None = None,
            audit_share: float = DEFAULT_AUDIT_SHARE, progress: Callable[[str], None] | None = None,
            fit_progress: Callable[[dict], None] | None = None) -> ReleaseResult:
    """Release ``modality``'s data as private synthetic data; returns where it went.

    ``epsilon``/``delta`` bound everything the release publishes (the fit, the public
    audit figures); ``seed`` fixes only what no privacy rests on (weights' initialisation,
    sampling from the fitted model); the privacy noise always comes from the OS CSPRNG.
    ``key`` is an Ed25519 private key (default: the user's default key); ``out`` must not
    exist (default: a new directory under ``privacy_reports/``); ``ledger`` is the budget
    ledger (default: beside the release), keyed by ``dataset_id`` or by a keyed
    fingerprint of the data's content; a release that would take the dataset's cumulative
    ε above ``budget_limit`` is refused before any training. ``holdout_fraction`` None: the
    modality's default (:func:`default_holdout_fraction`).
    """
    from .fingerprint import keyed_fingerprint, ledger_key, steward_secret
    from .models.base import fresh_seed

    say = progress or (lambda _message: None)
    if holdout_fraction is None:
        holdout_fraction = default_holdout_fraction(modality)
    _check_options(modality, epsilon=epsilon, delta=delta, holdout_fraction=holdout_fraction, rows=rows,
                   audit_share=audit_share)
    directory = release_directory(out, modality.source)
    seed = fresh_seed() % 2**31 if seed is None else seed
    options = {**(model_options or {})}
    if audit_share > 0:
        options["budget_split"] = {**options.get("budget_split", {}), "audit": audit_share}
    noise = NoiseSource(seed=options.get("insecure_noise_seed"))
    secret, digest = steward_secret(), modality.digest()
    dataset = ledger_key(digest, secret, dataset_id)

    with staged_release(directory, ledger=ledger, dataset=dataset, epsilon=epsilon, delta=delta, key=key,
                        key_path=key_path, budget_limit=budget_limit) as stage, _refusals_charged():
        say(f"schema: {modality.describe()}")
        say("holdout split")
        train, holdout = modality.split(holdout_fraction, noise)
        say(f"fit: epsilon {epsilon:g}")
        model = modality.fit(train, epsilon=epsilon, delta=delta, seed=seed, model_options=options,
                             progress=fit_progress)
        say("sample")
        files, count = modality.write(model, stage.path, rows, seed + 1)
        say("audit")
        public_audit, steward_audit = modality.audit(model, train, holdout, stage.path,
                                                     holdout_fraction=holdout_fraction, seed=seed)
        say("report")
        predicate = public_report(modality, model, public_audit, count=count, holdout_fraction=holdout_fraction,
                                  fingerprint=keyed_fingerprint(digest, secret), key_fingerprint=stage.key_fingerprint,
                                  files=[*files, "report.html"])
        stage.write_html(predicate)
        say("sign")
        stage.sign(predicate, [*files, "report.html"])
        stage.sign_steward(steward_report(modality, model, steward_audit, train, holdout, predicate))
        say("write")
    return ReleaseResult(directory=directory, predicate=predicate, steward_directory=stage.steward_final,
                         public_key_path=stage.public_key_path, key_created=stage.key_created)


# --------------------------------------------------------------------------- the staged release


@contextmanager
def _refusals_charged() -> Iterator[None]:
    """A :class:`SynthdataError` raised after the release spent budget on the real data carries
    what was spent (``error.spent = (epsilon, delta)``), for :func:`staged_release` to record.

    A refusal such as "no item is held by enough customers at epsilon=1" is decided by DP
    measurements and tells the steward something about them; the next release is chosen
    knowing it. Adaptive composition counts both, so the refused release's spend stays in
    the budget ledger. What was spent is the composition of every ledger the fit made.
    """
    with watch_ledgers() as ledgers:
        try:
            yield
        except SynthdataError as error:
            spending = [ledger for ledger in ledgers if ledger.epsilon_spent > 0]
            if spending:  # basic composition of the ledgers: their epsilons and deltas add
                error.spent = (math.fsum(ledger.epsilon_spent for ledger in spending),
                               math.fsum(ledger.delta for ledger in spending))
            raise


@dataclass
class Stage:
    """The release being built: its staging folders, the signing key, what gets signed."""

    path: Path
    steward_path: Path
    final: Path
    steward_final: Path
    key: Any
    public_key_path: Path | None
    key_created: bool
    signed: dict[str, Any] = field(default_factory=dict)

    @property
    def key_fingerprint(self) -> str:
        from .signing import fingerprint

        return fingerprint(self.key.public_key())

    def write_html(self, predicate: dict[str, Any]) -> None:
        from .files import atomic_write
        from .report import render_html

        atomic_write(self.path / "report.html", render_html(predicate))

    def sign(self, predicate: dict[str, Any], files: list[str]) -> None:
        from .signing import write_signed

        write_signed(self.path, predicate, files, self.key)
        self.signed["release"] = True

    def sign_steward(self, predicate: dict[str, Any]) -> None:
        """Sign the steward's audit, bound to the signed release by its report's sha256.

        Built inside the release's staging folder (so one cleanup removes both), after
        the release is signed, and moved beside it at the end.
        """
        from .files import atomic_write, sha256_file
        from .report import render_steward_html
        from .signing import REPORT_NAME, STEWARD_PREDICATE_TYPE, write_signed

        self.steward_path.mkdir()
        predicate = {**predicate, "release": {**predicate.get("release", {}), "directory": self.final.name,
                                              "report_sha256": sha256_file(self.path / REPORT_NAME)}}
        atomic_write(self.steward_path / "audit.html", render_steward_html(predicate))
        write_signed(self.steward_path, predicate, ["audit.html"], self.key, predicate_type=STEWARD_PREDICATE_TYPE)


def _public_half(key_path: Path | None) -> Path | None:
    """The public key beside a private key file (``NAME.pem`` -> ``NAME.pub.pem``, as
    ``synthdata keygen`` writes them), or None when there is none: never the private key."""
    if key_path is None:
        return None
    key_path = Path(key_path)
    stem = key_path.name[:-len(".pem")] if key_path.name.endswith(".pem") else key_path.name
    candidate = key_path.with_name(stem + ".pub.pem")
    return candidate if candidate.is_file() else None


@contextmanager
def staged_release(directory: Path, *, ledger: str | os.PathLike | None, dataset: str, epsilon: float,
                   delta: float | None, key=None, key_path: Path | None = None,
                   budget_limit: float = DEFAULT_BUDGET_LIMIT) -> Iterator[Stage]:
    """Reserve the budget, yield the staging folders, then rename them into place and record the spend.

    Any exception or interrupt inside removes the staging folders: nothing is published.
    The reservation is cancelled, except for a :class:`SynthdataError` that carries a spend
    (``error.spent``, see :func:`_refusals_charged`): a release refused after DP
    measurements is recorded as *refused* with the ε it spent, and the message says so.
    """
    from .signing import default_key

    cleanup_staging(directory.parent)
    ledger_file = BudgetLedger(Path(ledger) if ledger is not None else directory.parent / LEDGER_NAME)
    reservation = ledger_file.reserve(input_sha256=dataset, epsilon=epsilon, delta=delta, release=directory,
                                      limit=budget_limit)
    steward_final = directory.with_name(directory.name + STEWARD_SUFFIX)
    stage = None
    try:
        public_key_path, created = _public_half(key_path), False
        if key is None:
            key, public_key_path, created = default_key()
        stage = Stage(path=reservation.staging, steward_path=reservation.staging / STEWARD_SUFFIX,
                      final=directory, steward_final=steward_final, key=key, public_key_path=public_key_path,
                      key_created=created)
        _mkdir(stage.path)
        yield stage
        for target in (directory, steward_final):
            if target.exists():
                raise SynthdataError(f"{printable(target)} appeared while the release was being made; it was left "
                                     "as it is")
        os.rename(stage.steward_path, steward_final)
        try:
            os.rename(stage.path, directory)
        except BaseException:
            shutil.rmtree(steward_final, ignore_errors=True)
            raise
    except BaseException as error:
        shutil.rmtree(reservation.staging, ignore_errors=True)
        spent = getattr(error, "spent", None) if isinstance(error, SynthdataError) else None
        if spent is None:
            ledger_file.cancel(reservation)
            raise
        charged = min(spent[0], epsilon)
        ledger_file.refuse(reservation, epsilon=charged, delta=spent[1])
        error.message = (f"{error.message.rstrip('.')} (this refused release had spent epsilon {charged:.3g} on DP "
                         f"measurements of the data; the budget ledger counts it: "
                         f"{printable(ledger_file.path)})")
        raise
    ledger_file.commit(reservation, delta=delta)


def _mkdir(path: Path) -> None:
    try:
        path.mkdir()
    except OSError as exc:
        raise SynthdataError(os_error_message(exc, path=path, writing=True)) from None


# --------------------------------------------------------------------------- the two reports


def public_report(modality: Modality, model, audit: dict[str, Any], *, count: int, holdout_fraction: float,
                  fingerprint: dict[str, Any], key_fingerprint: str, files: list[str]) -> dict[str, Any]:
    """The public report (the in-toto predicate): differentially private content only."""
    budget = model.ledger_.to_dict()
    params = {k: v for k, v in model.get_params().items() if k not in ("seed", "insecure_noise_seed")}
    insecure = getattr(model, "insecure_noise_seed", None) is not None
    return {
        "format": REPORT_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "modality": modality.name,
        "privacy": {
            "epsilon": budget["epsilon"],
            "epsilon_spent": budget["epsilon_spent"],
            "delta": budget["delta"],
            "unit": budget["unit"],
            "neighbouring_relation": budget["relation"],
            "accountant": "Rényi DP (Opacus RDP accountant, orders 1.1 to 1024) for the Gaussian and DP-SGD "
                          "steps, converted to (epsilon, delta); pure-epsilon counts added by basic composition",
            "noise_source": budget["noise_source"],
            "noise_reproducible": insecure,
            "budget": budget["budget"],
        },
        "audit": audit,
        "data": {**modality.data_section(model, count), "holdout_fraction": holdout_fraction,
                 "input_fingerprint": fingerprint},
        "model": {"name": model.model_name, "class": type(model).__name__, "params": _json_ready(params)},
        "software": _software(),
        "signing": {"algorithm": "Ed25519", "public_key_fingerprint": key_fingerprint},
        "files": files,
        "statement": "Every figure in this report is a differentially private release or post-processing of "
                     "one; the exact audit stays with the data steward.",
    }


def steward_report(modality: Modality, model, audit: dict[str, Any], train: Any, holdout: Any,
                   public: dict[str, Any]) -> dict[str, Any]:
    """The steward's exact audit: NOT FOR RELEASE — computed on the real data."""
    return {
        "format": STEWARD_FORMAT,
        "label": "NOT FOR RELEASE — computed on the real data",
        "created": public["created"],
        "modality": modality.name,
        "data": modality.steward_data(train, holdout),
        "privacy": {k: public["privacy"][k] for k in ("epsilon", "epsilon_spent", "delta", "unit")},
        "audit": audit,
        "release": {"input_fingerprint": public["data"]["input_fingerprint"]},
        "software": public["software"],
    }


# --------------------------------------------------------------------------- checks and helpers


def _check_options(modality: Modality, *, epsilon: float, delta: float | None, holdout_fraction: float,
                   rows: int | None, audit_share: float) -> None:
    from .privacy import DEFAULT_DELTA

    check_privacy_parameters(epsilon=epsilon, delta=DEFAULT_DELTA if delta is None else delta)
    if not 0 <= holdout_fraction <= 0.5:
        raise DataError(f"--holdout-fraction must be between 0 and 0.5, got {holdout_fraction:g}")
    if not 0 <= audit_share < 1:
        raise DataError(f"the audit share must be in [0, 1), got {audit_share:g}")
    modality.check(holdout_fraction=holdout_fraction, rows=rows)


def default_holdout_fraction(modality: Modality) -> float:
    """The share of ``modality``'s input held out when the caller names none: its
    ``default_holdout_fraction`` (a public constant), else :data:`DEFAULT_HOLDOUT_FRACTION`."""
    return float(getattr(modality, "default_holdout_fraction", DEFAULT_HOLDOUT_FRACTION))


def release_directory(out: str | os.PathLike | None, source: str) -> Path:
    """The release directory to create: ``out``, or ``privacy_reports/NAME-TIME``; never an existing one."""
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = DEFAULT_RELEASES_DIR / f"{Path(source).stem or 'release'}-{stamp}"
        try:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SynthdataError(os_error_message(exc, path=Path(out).parent, writing=True)) from None
    directory = Path(os.path.abspath(out))
    if directory.exists():
        raise SynthdataError(f"{printable(out)} already exists; a release is never overwritten: choose another --out")
    if directory.with_name(directory.name + STEWARD_SUFFIX).exists():
        raise SynthdataError(f"{printable(directory.name + STEWARD_SUFFIX)} already exists beside {printable(out)}; "
                             "choose another --out")
    if not directory.parent.is_dir():
        raise SynthdataError(f"{printable(directory.parent)} does not exist; create it first or choose another --out")
    return directory


def _json_ready(params: dict[str, Any]) -> dict[str, Any]:
    """Model parameters as JSON values: numbers, text, booleans, None, and lists/dicts of them; else text."""
    plain = (str, int, float, bool, type(None))

    def convert(value: Any) -> Any:
        if isinstance(value, plain):
            return value
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        return str(value)

    return {str(k): convert(v) for k, v in params.items()}


def _software() -> dict[str, str]:
    versions = {"synthdata_version": __version__, "python": platform.python_version(),
                "platform": f"{sys.platform}-{platform.machine()}"}
    for name in _VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
