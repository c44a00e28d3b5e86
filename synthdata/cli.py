"""Command line: a thin layer over the Python API.

Every user-facing problem is a :class:`~synthdata.errors.SynthdataError`, which click
prints as one ``Error: …`` line on stderr with exit status 1 (2 for usage errors).
An unexpected exception is reported the same way, as a bug, unless SYNTHDATA_DEBUG=1
asks for the traceback.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# OpenMP threads that wait for work spin by default, fighting other processes for the
# cores on a busy machine; set before torch (imported lazily below) reads it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402
from tqdm import tqdm

from . import __version__
from .errors import DataError, SynthdataError, SynthdataWarning
from .files import printable
from .ingest import Table, parse_size, read_table
from .budget import DEFAULT_BUDGET_LIMIT, DEFAULT_RELEASES_DIR, LEDGER_NAME
from .schema import Schema, infer_schema, summarize


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Show library warnings as one 'Warning: …' line each, not Python's two-line form.

    Shown when the block ends, however it ends: a refused release's warnings (the columns
    left out before no column could be released) explain its error.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                click.echo(f"Warning: {warning.message}", err=True)


class _Size(click.ParamType):
    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except DataError as exc:
            self.fail(exc.message, param, ctx)


def _read_options(command):
    """Options shared by every command that reads a table."""
    options = [
        click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of a CSV file."),
        click.option("--delimiter", default=None, help="CSV delimiter (default: detect , ; tab |)."),
        click.option("--thousands", default=None, help="Thousands separator in numbers, e.g. ','."),
        click.option("--decimal", default=".", show_default=True, help="Decimal mark in numbers."),
        click.option("--memory-limit", type=_Size(), default=None,
                      help="Largest file loaded whole, e.g. 2GB; a larger one is sampled "
                           "(default: a tenth of free memory, 256MB-2GB)."),
        click.option("--drop", "drop", multiple=True, metavar="COLUMN",
                      help="Leave this column out (repeat for several)."),
        click.option("--na-values", "na_values", multiple=True, metavar="TEXT",
                      help="Read cells holding TEXT as missing values, e.g. '?' (repeat for several; "
                           "empty cells, NA, NaN and NULL are always missing)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _load(data: str, *, encoding, delimiter, thousands, decimal, memory_limit, drop, na_values=()) -> Table:
    # read_table checks and drops the --drop columns (a Parquet file's are never read).
    return read_table(data, encoding=encoding, delimiter=delimiter, thousands=thousands,
                      decimal=decimal, memory_limit=memory_limit, na_values=na_values, drop=drop)


def _unit_options(command):
    """The unit of privacy: one row by default, or one person (a column naming them)."""
    options = [
        click.option("--privacy-unit", "privacy_unit", default=None, metavar="COLUMN",
                     help="Protect one person, not one row: COLUMN names whose row it is (patient_id, CustomerID). "
                          "The guarantee then covers all of a person's rows; the column is never released, and "
                          "rows without a value in it are left out."),
        click.option("--max-rows-per-unit", "max_rows_per_unit", type=click.IntRange(min=1), default=None,
                     metavar="K",
                     help="With --privacy-unit: keep at most K rows per person (a uniform sample; public). "
                          "Default: chosen with DP as the smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24, 32 that keeps "
                          "every row of 3 persons in 4."),
        click.option("--unit-noun", "unit_noun", default=None, metavar="WORD",
                     help="With --privacy-unit: what one unit is, for the report (default: from the column name, "
                          "patient_id -> patient)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _unit_request(privacy_unit, max_rows_per_unit, unit_noun):
    if privacy_unit is None:
        if max_rows_per_unit is not None or unit_noun is not None:
            raise click.UsageError("--max-rows-per-unit and --unit-noun need --privacy-unit COLUMN")
        return None
    from .privacy.bounding import UnitRequest

    return UnitRequest(column=privacy_unit, max_rows=max_rows_per_unit, noun=unit_noun)


#: Seeds numpy and torch both take (a negative or a 70-bit seed failed only when first used).
_SEED = click.IntRange(min=0, max=2**63 - 1)
#: Fewest bytes a synthetic CSV cell takes (one character and a delimiter): a lower bound of
#: a requested output's size, refused up front when even that cannot fit on the disk.
_CELL_BYTES = 2


def _check_room(folder: Path, rows: int, columns: int, option: str) -> None:
    """Refuse a --rows/-n whose CSV cannot fit on the disk, before any work (public facts only)."""
    from .files import check_free_space

    check_free_space(folder, float(rows) * max(columns, 1) * _CELL_BYTES,
                     what=f"writing {rows:,} rows of {columns:,} columns", fix=f"ask for fewer rows ({option})")


def _check_release_paths(data: str, out: Path | None, ledger: Path | None) -> None:
    """Refuse, before any work, a release written into its own input or a ledger inside the release."""
    if out is None:
        return
    target, source = Path(os.path.abspath(out)), Path(os.path.abspath(data))
    if target == source or source in target.parents:
        raise SynthdataError(f"--out {printable(out)} is inside the input {printable(data)}: the release would "
                             "change the data it is made from; choose a folder outside it")
    if ledger is not None and target in Path(os.path.abspath(ledger)).parents:
        raise SynthdataError(f"--ledger {printable(ledger)} is inside --out {printable(out)}: the budget ledger "
                             "must outlive each release; keep it beside the releases (the default)")


_EXCEL_SAFE_HELP = ("Prefix text cells and column names that start with =, +, -, @, a tab or a carriage return with "
                    "' so that spreadsheets do not run them as formulas (default: write them as they are, and warn).")


def _model_option(command):
    """--model NAME: the generator family (the default stays the best one by measurement)."""
    return click.option("--model", "model_name", default=None, metavar="NAME",
                        help="Generator: 'gan' (default: the best measured) or 'vae' (a DP-SGD variational "
                             "autoencoder); or a registered name: tabular-gan, tabular-vae, image-gan, image-vae.")(command)


def _model_for(name: str | None, modality: str) -> str:
    """The registered model --model NAME means for a modality ("table" or "image"); None: its default."""
    from .models import MODELS, models_for

    names = models_for(modality)
    if name is None:
        return names[0]
    full = name if name in MODELS else f"{'tabular' if modality == 'table' else modality}-{name}"
    if full not in names:
        short = [n.split("-", 1)[1] for n in names]
        raise SynthdataError(f"--model {name}: no such model for {modality}s; choose {', '.join(short)} "
                             f"(or {', '.join(names)})")
    return full


def _saved_model_class(model_dir: Path):
    """The class of the model saved in ``model_dir`` (by the name in its model.json; the GAN if unreadable,
    whose load then says what is wrong)."""
    from .files import read_regular_file
    from .models import MODELS, model_class

    try:  # a regular file under a cap (a FIFO planted as model.json must not block); load() checks the rest
        raw = read_regular_file(Path(model_dir) / "model.json", max_bytes=64 << 20, what="model file")
        name = json.loads(raw.decode("utf-8")).get("model")
    except (SynthdataError, ValueError, AttributeError, RecursionError):
        name = None
    known = isinstance(name, str) and name in MODELS and MODELS[name][0] == "table"
    return model_class(name if known else "tabular-gan")


def _try_saved_model(model, model_dir: Path) -> None:
    """Decode every saved level once and sample two rows before anything is written.

    model.json is not signed: a malformed or inconsistent saved state (a level's points
    set to null, bounds of the wrong type) otherwise failed halfway through the CSV, as
    "unexpected TypeError … a bug". Here it is one :class:`ModelError` line naming the
    folder and what Python said.
    """
    from .models.persistence import model_errors

    codes = getattr(getattr(model, "encoder_", None), "codes_", None) or []
    with model_errors(model_dir), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what the rows deserve is said once, by the sampling itself
        sizes = [int(code.size) for code in codes]
        if sizes and min(sizes) >= 1:
            import numpy as np

            levels = np.stack([np.arange(max(sizes)) % size for size in sizes], axis=1)
            model.encoder_.decode_arrow(levels, rng=np.random.default_rng(0))
        model.sample(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="synthdata")
def cli() -> None:
    """Differentially private synthetic data, with audited and signed release reports.

    Start with `synthdata inspect DATA` to review how your table will be read.
    """


@cli.command()
@click.argument("data", type=click.Path(path_type=str))
@click.option("--schema-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the inferred schema here (JSON) for you to review and edit.")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path), default=None,
              help="Check DATA against this schema instead of inferring one.")
@_read_options
def inspect(data, schema_out, schema_path, **read):
    """Show how DATA (CSV or Parquet) will be read: column types, missing values, and
    which facts are public (free) or estimated privately (paid from the budget).

    What inspect prints is read off your data, for your eyes only; nothing is released.
    """
    from .schema import Excluded
    from .tabular.modality import person_id_candidates

    persons = []
    with _warnings_to_stderr():
        table = _load(data, **read)
        _warn_formulas(table.frame)
        if schema_path is None:
            _warn_missing_markers(table.frame)
        if schema_path is not None:
            schema = Schema.load(schema_path)
            schema.check_frame(table.frame, source=data)
        else:
            # A person's id that repeats over rows is the unit of privacy, not a column to model.
            persons = person_id_candidates(table.frame)
            names = [name for name, _, _ in persons]
            schema = infer_schema(table.frame.drop(columns=names), source=data)
            if names:
                schema = Schema(columns=schema.columns, excluded=schema.excluded + tuple(
                    Excluded(name, "looks like a person's id repeated over rows: protect persons with "
                                   f"--privacy-unit {name}") for name in names))
    if schema_out is not None and os.path.lexists(schema_out) and schema_path != schema_out:
        raise SynthdataError(f"{printable(schema_out)} already exists; choose another --schema-out or remove it")

    click.echo(f"{data}: {table.rows_total:,} rows, {len(table.frame.columns)} columns"
               + (f", delimiter {table.delimiter!r}, {table.encoding}" if table.delimiter else ""))
    if table.note:
        click.echo(f"Note: {table.note}; the figures below describe that sample.")
    click.echo()
    _echo_table(summarize(table.frame, schema))
    click.echo()
    for excluded in schema.excluded:
        click.echo(f"Left out: {printable(excluded.name)} ({printable(excluded.reason)})")
    paid, public = schema.paid_facts(), schema.public_facts()
    if paid:
        click.echo("Estimated privately, paid from the privacy budget at release:")
        for fact, names in _group(paid).items():
            click.echo(f"  {fact} of: {', '.join(printable(n) for n in names)}")
    if public:
        click.echo("Declared public in the schema, free:")
        for fact, names in _group(public).items():
            click.echo(f"  {fact}: {', '.join(printable(n) for n in names)}")
    for name, distinct, rows in persons:
        click.echo(f"Person id? {printable(name)} repeats over rows ({distinct:,} distinct values in {rows:,} "
                   f"rows): if a value is a person, protect persons rather than rows with --privacy-unit "
                   f"{printable(name)}")
    click.echo("Observed values above are read off your data and shown only to you; nothing here "
               "is released.")
    if schema_out is not None:
        try:
            schema_out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SynthdataError(f"cannot create {schema_out.parent}: {exc.strerror}") from None
        schema.save(schema_out)
        click.echo(f"Schema written to {schema_out}: review it, and set bounds or categories that are "
                   "public knowledge to make them free.")


def _warn_formulas(frame) -> None:
    """Warn (naming the column, never the value) about text a spreadsheet would run as a formula.

    ``inspect`` reads the real rows for the steward's eyes only; the release warns again
    from what it publishes (the synthetic values and the column names), see
    :mod:`synthdata.tabular.sampling`.
    """
    import pandas as pd

    from .tabular.sampling import FORMULA_PREFIXES, looks_like_formula

    starts = "[" + "".join("\\" + c if c in "-\\]^" else c for c in FORMULA_PREFIXES) + "]"
    for name in frame.columns:
        if looks_like_formula(name):
            warnings.warn(f"the column name {printable(name)!r} starts with =, +, -, @, a tab or a carriage return, "
                          "which a spreadsheet may run as a formula; release (or sample) with --excel-safe to "
                          "prefix it with '", SynthdataWarning, stacklevel=2)
        series = frame[name]
        if series.dtype != object and not isinstance(series.dtype, pd.StringDtype):
            continue
        try:
            text = series.str
            found = (text.match(starts, na=False) & ~text.fullmatch(_PLAIN_NUMBER, na=False)).any()
        except (AttributeError, TypeError):  # an object column of numbers, dates or bytes: no text to look at
            continue
        if found:
            warnings.warn(f"column {printable(name)!r} holds text starting with =, +, -, @, a tab or a carriage "
                          "return, which a spreadsheet may run as a formula if such values are released; release "
                          "(or sample) with --excel-safe to prefix them with '", SynthdataWarning, stacklevel=2)


_PLAIN_NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"

#: Cell texts public data sets use for "missing" that are not read as missing by default
#: (a value could be meant): "?" (UCI), "-", "--", ".".
SUSPECT_MARKERS = ("?", "-", "--", ".")


def _warn_missing_markers(frame, schema=None) -> None:
    """Warn (naming the column and the marker) about cells that look like a missing-value marker.

    Without ``--na-values '?'`` (or the schema's ``missing_values``) such a cell is a value:
    a category of its own (``'?'`` beside ``'Private'``), or text that keeps a column of
    numbers from being read as numbers. Read for the steward's eyes only (a warning on the
    terminal); nothing is released.
    """
    import pandas as pd

    found: dict[str, list[str]] = {}
    for name in frame.columns:
        series = frame[name]
        if series.dtype != object and not isinstance(series.dtype, pd.StringDtype):
            continue
        declared = set()
        if schema is not None and name in schema.names:
            declared = {m.strip() for m in (getattr(schema[name], "missing_values", None) or ())}
        cells = series.dropna().astype(str).str.strip()  # vectorised: no Python call per cell
        present = set(cells[cells.isin(SUSPECT_MARKERS)].unique()) - declared
        for marker in SUSPECT_MARKERS:
            if marker in present:
                found.setdefault(marker, []).append(printable(name))
    for marker, names in found.items():
        shown = ", ".join(repr(n) for n in names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        warnings.warn(f"column{'s' if len(names) > 1 else ''} {shown} hold{'' if len(names) > 1 else 's'} cells "
                      f"{marker!r}, which public data sets often use for a missing value; they are read as a value "
                      f"(a category of its own, or text that keeps numbers from being read as numbers). If "
                      f"{marker!r} means missing, pass --na-values {marker!r}", SynthdataWarning, stacklevel=2)


class _Progress:
    """A tqdm bar on stderr fed by the model's progress dicts; silent with --quiet.

    The bar appears with the first progress report, so lines printed before it stay
    whole.
    """

    def __init__(self, quiet: bool, description: str) -> None:
        self.quiet = quiet
        self.description = description
        self.bar = None
        self.pass_bar, self.pass_name = None, None

    def __call__(self, info: dict) -> None:
        if self.quiet:
            return
        if "pass" in info:  # a pass of an engine over the data: a bar of its own
            self._pass(info)
            return
        if self.bar is None:
            self.bar = tqdm(desc=self.description, unit="step", file=sys.stderr, leave=True, dynamic_ncols=True)
        self.bar.total = info["total"]
        self.bar.n = info["step"]
        shown = {}
        for key, label, fmt in (("epoch", "epoch", ".2f"), ("loss", "loss", ".4f"), ("d_loss", "d_loss", ".3f"),
                                ("epsilon", "eps", ".3f")):
            value = info.get(key)
            if isinstance(value, (int, float)):
                shown[label] = format(value, fmt)
        self.bar.set_postfix(shown, refresh=False)
        self.bar.refresh()

    def _pass(self, info: dict) -> None:
        name = info["pass"]
        if self.pass_bar is None or self.pass_name != name:
            if self.pass_bar is not None:
                self.pass_bar.close()
            unit = info.get("unit", "rows")
            self.pass_name = name
            self.pass_bar = tqdm(desc=name, unit="row" if unit == "rows" else unit, unit_scale=unit == "rows",
                                 file=sys.stderr, leave=True, dynamic_ncols=True)
        self.pass_bar.total = info.get("total")
        self.pass_bar.n = info.get("done", 0)
        self.pass_bar.refresh()
        if info.get("total") is not None and info.get("done", 0) >= info["total"]:
            self.pass_bar.close()
            self.pass_bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.pass_bar is not None:
            self.pass_bar.close()
            self.pass_bar = None


_THREADS_HELP = ("CPU threads for training (default: 1 for these small networks, which stays fast on a busy "
                 "machine; or SYNTHDATA_THREADS).")


@cli.command()
@click.argument("data", type=click.Path(path_type=str))
@click.option("--epsilon", type=float, required=True, help="Privacy budget: the epsilon never exceeded.")
@click.option("--delta", type=float, default=None,
              help="Privacy delta (default: min(1/(n ln n), 1e-5), well below 1/n).")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path), default=None,
              help="Schema JSON (from `synthdata inspect --schema-out`); inferred when absent.")
@click.option("--epochs", type=click.FloatRange(min=0), default=None,
              help="Passes of DP-SGD (the GAN's discriminator, the VAE) over the data (default: the model's, "
                   "4 for the GAN).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Expected size of the Poisson-sampled real batches (default: the model's, 1024).")
@click.option("--seed", type=_SEED, default=None, help="Seed: a seeded CPU run is reproducible.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--discriminator-share", type=click.FloatRange(min=0, max=0.9), default=None,
              help="Share of epsilon for the DP-SGD discriminator (default 0.1 of the total weight; "
                   "0 turns it off).")
@click.option("--model-out", type=click.Path(path_type=Path), required=True,
              help="Directory to save the fitted model in (must not exist).")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Save the fit's state here every --checkpoint-every steps.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=100, show_default=True,
              help="Generator steps between checkpoints.")
@click.option("--resume", is_flag=True,
              help="Continue a killed fit from --checkpoint-dir; the privacy count continues too.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help=_THREADS_HELP)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_model_option
@_unit_options
@_read_options
def fit(data, epsilon, delta, schema_path, epochs, batch_size, seed, device, discriminator_share, model_out,
        checkpoint_dir, checkpoint_every, resume, threads, quiet, model_name, privacy_unit, max_rows_per_unit,
        unit_noun, **read):
    """Fit a differentially private generator to DATA and save it to --model-out.

    The privacy budget (--epsilon, --delta) covers every read of DATA: the private
    preprocessing, the measured marginals and every discriminator step.
    """
    if resume and checkpoint_dir is None:
        raise click.UsageError("--resume needs --checkpoint-dir")
    if epochs is not None and not math.isfinite(epochs):
        raise click.UsageError(f"--epochs must be a finite number of passes, got {epochs}")
    unit = _unit_request(privacy_unit, max_rows_per_unit, unit_noun)
    model_name = _model_for(model_name, "table")
    if discriminator_share is not None and model_name != "tabular-gan":
        raise SynthdataError(f"--discriminator-share applies to the GAN, not to --model {model_name}")
    from .models import create_model

    if os.path.lexists(model_out):
        raise SynthdataError(f"{printable(model_out)} already exists; choose another --model-out or remove it")
    _check_folder_for(model_out, "--model-out")  # before the fit, not after it
    from .runtime import configure_threads

    configure_threads(threads)
    with _warnings_to_stderr():
        table = _load(data, **read)
        if table.sampled:
            raise DataError(f"{data} is larger than the in-memory limit; raise --memory-limit to train on it")
        schema = Schema.load(schema_path) if schema_path is not None else None
        _warn_missing_markers(table.frame, schema)
        progress = _Progress(quiet, "fit")
        split = None if discriminator_share is None else {"discriminator": discriminator_share}
        sizes = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if v is not None}
        model = create_model(model_name, epsilon=epsilon, delta=delta, seed=seed, device=device, budget_split=split,
                             **sizes)
        try:
            model.fit(table.frame, schema=schema, checkpoint_dir=checkpoint_dir, resume=resume,
                      checkpoint_every=checkpoint_every, progress=progress, **({"unit": unit} if unit else {}))
        finally:
            progress.close()
    _save_model(model, model_out)
    fitted = (f"about {model.n_rows_:,.0f} rows (a DP count)" if model.unit_.per_row else
              f"about {model.n_units_:,.0f} {model.unit_.noun}s (a DP count), at most {model.unit_.max_rows} rows each")
    click.echo(f"Fitted on {fitted}: epsilon spent {model.epsilon_spent_:.4f} of {epsilon} "
               f"(delta {model.delta_:.3g}); unit of privacy: {model.unit_.description}. Model saved to {model_out}")
    for spend in model.ledger_.spends:
        click.echo(f"  {spend.step:<20} {spend.mechanism} -> cumulative epsilon {spend.epsilon:.4f}")


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("-n", "--rows", type=click.IntRange(min=1), required=True, help="Rows to generate.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CSV file to write (must not exist).")
@click.option("--seed", type=_SEED, default=None, help="Seed for sampling.")
@click.option("--excel-safe", is_flag=True, help=_EXCEL_SAFE_HELP)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sample(model_dir, rows, output, seed, excel_safe, quiet):
    """Write ROWS synthetic rows from a fitted model to a CSV file (streamed in chunks)."""
    from .tabular.sampling import write_csv

    model = _saved_model_class(model_dir).load(model_dir)
    _try_saved_model(model, model_dir)
    _check_room(output.parent, rows, len(getattr(model, "columns_", None) or [1]), "-n")
    bar = None if quiet else tqdm(total=rows, desc="sample", unit="row", unit_scale=True, file=sys.stderr)
    with _warnings_to_stderr():
        try:
            write_csv(model, rows, output, seed=seed, progress=None if bar is None else bar.update,
                      excel_safe=excel_safe)
        finally:
            if bar is not None:
                bar.close()
    click.echo(f"Wrote {rows:,} synthetic rows to {printable(output)}")


@cli.command(name="audit")
@click.argument("real_train", type=click.Path(path_type=str))
@click.argument("synthetic", type=click.Path(path_type=str))
@click.option("--holdout", type=click.Path(path_type=str), required=True,
              help="Real rows from the same source that the generator never saw.")
@click.option("--target", default=None, help="Column to score ML utility on (train on synthetic, test on holdout).")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path), default=None,
              help="Schema JSON: the audited columns and their types (default: REAL_TRAIN's columns).")
@click.option("--epsilon", type=float, default=None, help="The claimed epsilon to test.")
@click.option("--delta", type=float, default=None,
              help="The claimed delta (default: min(1/(n ln n), 1e-5) for REAL_TRAIN's n rows).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every figure here as JSON (replaced atomically if it exists).")
@click.option("--seed", type=_SEED, default=0, show_default=True, help="Seed of the audit's sampling and models.")
@click.option("--max-rows", type=click.IntRange(min=100), default=10_000, show_default=True,  # audit.run.MAX_ROWS
              help="Rows per table read by the costly metrics (detection, membership inference).")
@click.option("--image-size", default=None, metavar="HxW",
              help="Images only: resize every image of the three sets to HEIGHTxWIDTH pixels.")
@_read_options
def audit_command(real_train, synthetic, holdout, target, schema_path, epsilon, delta, json_out, seed, max_rows,
                  image_size, **read):
    """Audit SYNTHETIC's quality and leakage against REAL_TRAIN, the rows it was made from.

    Works on a synthetic CSV or Parquet file made by any tool, or on images (REAL_TRAIN,
    SYNTHETIC and --holdout each a folder of PNG/JPEG files, optionally one sub-folder per
    class, or a .npz/.npy file). The audit reads the real data and is not differentially
    private; what it prints and writes holds aggregates only, never a real row or image.
    """
    from .audit import audit, summary
    from .images import is_image_input
    from .images.audit import MAX_IMAGES as MAX_AUDIT_IMAGES

    if json_out is not None and not json_out.parent.is_dir():
        raise SynthdataError(f"cannot write {json_out}: the folder {json_out.parent} does not exist; create it first")
    images = [is_image_input(path) for path in (real_train, synthetic, holdout)]
    if any(images):
        if not all(images):
            raise DataError("REAL_TRAIN, SYNTHETIC and --holdout must all be images (folders, .npz or .npy) or all "
                            "tables")
        if target is not None or schema_path is not None:
            raise DataError("--target and --schema apply to tables; an image audit scores the class labels")
        _audit_images(real_train, synthetic, holdout, epsilon=epsilon, delta=delta, json_out=json_out, seed=seed,
                      max_images=min(max_rows, MAX_AUDIT_IMAGES), image_size=image_size)
        return
    if image_size is not None:
        raise DataError(f"--image-size applies to images (a folder, .npz or .npy), not to {real_train}")
    schema = Schema.load(schema_path) if schema_path is not None else None
    with _warnings_to_stderr():
        drop = read.pop("drop")
        train = _load(real_train, drop=drop, **read)
        fake, held = (_without(_load(path, drop=(), **read), drop) for path in (synthetic, holdout))
        result = audit(train, fake, holdout=held, target=target, schema=schema, epsilon=epsilon, delta=delta,
                       seed=seed, max_rows=max_rows)
    rows = result["rows"]
    click.echo(f"Audit of {synthetic} ({rows['synthetic']:,} rows) against {real_train} ({rows['real_train']:,} "
               f"rows), holdout {holdout} ({rows['holdout']:,} rows): {len(result['columns'])} columns")
    for line in summary(result):
        click.echo(line)
    if json_out is not None:
        _write_json(result, json_out)
        click.echo(f"Written to {json_out}")


def _audit_images(real_train, synthetic, holdout, *, epsilon, delta, json_out, seed, max_images, image_size) -> None:
    from .images import parse_image_size, read_images
    from .images.audit import audit_image_sets, image_summary

    size = None if image_size is None else parse_image_size(image_size)
    with _warnings_to_stderr():
        train, fake, held = (read_images(path, size=size) for path in (real_train, synthetic, holdout))
        result = audit_image_sets(train, fake, held, epsilon=epsilon, delta=delta, seed=seed, max_images=max_images)
    rows = result["rows"]
    click.echo(f"Audit of {printable(synthetic)} ({rows['synthetic']:,} images) against {printable(real_train)} "
               f"({rows['real_train']:,} images), holdout {printable(holdout)} ({rows['holdout']:,} images)")
    for line in image_summary(result):
        click.echo(line)
    if json_out is not None:
        _write_json(result, json_out)
        click.echo(f"Written to {json_out}")


@cli.command(name="keygen")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for signing_key.pem (private, mode 0600) and signing_key.pub.pem (public).")
@click.option("--encrypt", is_flag=True,
              help="Encrypt the private key with a passphrase: $SYNTHDATA_KEY_PASSPHRASE, else asked for twice.")
def keygen_command(out_dir, encrypt):
    """Make an Ed25519 key pair for signing releases.

    Keep signing_key.pem secret; give signing_key.pub.pem to whoever verifies your
    releases. An existing key is never overwritten.
    """
    from .files import printable
    from .signing import PASSPHRASE_ENV, fingerprint, generate_keypair, load_public_key

    passphrase = None
    if encrypt:
        passphrase = os.environ.get(PASSPHRASE_ENV) or click.prompt(
            "Passphrase for the private key", hide_input=True, confirmation_prompt=True)
    private_path, public_path = generate_keypair(out_dir, passphrase=passphrase)
    state = "encrypted" if encrypt else "unencrypted"
    click.echo(f"Private key: {printable(private_path)} ({state}, mode 0600): keep it secret")
    click.echo(f"Public key:  {printable(public_path)}: give it to whoever verifies your releases")
    click.echo(f"Fingerprint: {fingerprint(load_public_key(public_path))}")


@cli.command(name="verify")
@click.argument("release_dir", type=click.Path(path_type=Path))
@click.option("--public-key", type=click.Path(path_type=Path), required=True,
              help="The signer's public key (signing_key.pub.pem), obtained from the signer directly.")
def verify_command(release_dir, public_key):
    """Check that RELEASE_DIR is exactly the release its signer made.

    The Ed25519 signature in report.dsse.json must verify with PUBLIC_KEY, report.json must
    be the signed payload, every released file must match its sha256, and no other file
    may be present. Exit status 0 when all hold; otherwise 1, naming what failed.
    """
    from .files import printable
    from .signing import STEWARD_PREDICATE_TYPE, summary, verify_release, verify_steward_audit

    verified = verify_release(release_dir, public_key)
    click.echo(f"Verified {printable(release_dir)}: signed with {printable(public_key)}, nothing altered, added "
               "or missing")
    for line in summary(verified):
        click.echo(line)
    if verified.get("predicate_type") != STEWARD_PREDICATE_TYPE:
        steward = verify_steward_audit(release_dir, public_key)
        if steward is not None:
            click.echo("  steward     the steward's audit beside it (not for release) is verified too and bound to "
                       "this release")


@cli.command(name="release")
@click.argument("data", type=click.Path(path_type=str))
@click.option("--epsilon", type=float, required=True, help="Privacy budget of this release: never exceeded.")
@click.option("--delta", type=float, default=None,
              help="Privacy delta (default: 1e-6, fixed in advance; must be well below 1/n).")
@click.option("--target", default=None, help="Column the audit scores ML utility on (train on synthetic, test on real).")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path), default=None,
              help="Schema JSON (from `synthdata inspect --schema-out`): public and free. Without it the column "
                   "types are decided with DP from a small share of epsilon.")
@click.option("--holdout-fraction", type=float, default=None,
              help="Share of rows (or images) kept from the generator for the audits; 0 turns the membership "
                   "audit off. Default: 0.2 for tables and --items data, 0.1 for images.")
@click.option("--rows", type=click.IntRange(min=1), default=None,
              help="Synthetic rows (or images) to write (default: the DP count of the training rows; "
                   "images: three per training image, up to 30,000).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ed25519 private key (PEM) to sign with (default: your default key, created on first use).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Release directory to create (must not exist; default: privacy_reports/NAME-TIME).")
@click.option("--seed", type=_SEED, default=None,
              help="Seed of what no privacy rests on (initial weights, sampling from the model); the privacy "
                   "noise always comes from the OS's cryptographic entropy.")
@click.option("--ledger", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Budget ledger file (default: budget-ledger.json beside the release directory).")
@click.option("--budget-limit", type=float, default=DEFAULT_BUDGET_LIMIT, show_default=True,
              help="Largest cumulative epsilon of all releases of the same dataset.")
@click.option("--dataset-id", default=None,
              help="Name of the dataset in the budget ledger (default: a keyed fingerprint of its content, the "
                   "same whatever the row order, column order or file format).")
@click.option("--image-size", default=None, metavar="HxW",
              help="Images only: resize every image to HEIGHTxWIDTH pixels (needed when their sizes differ).")
@click.option("--classes", "classes_option", default=None, metavar="A,B,C|FILE.json",
              help="Images only: the public label domain (class names, comma-separated, or a JSON file listing "
                   "them): every class is released, none thresholded away. Default: classes.json in the image "
                   "folder (NAME.classes.json beside NAME.npz) if present; otherwise the classes are released "
                   "by a thresholded DP histogram.")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Passes of DP-SGD over the data (in expectation; default: the model's).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Expected size of the Poisson-sampled DP-SGD batches (default: the model's).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help=_THREADS_HELP)
@click.option("--items", "item_column", default=None, metavar="COLUMN",
              help="Interaction data (who bought/rated/viewed what): COLUMN names the item, --privacy-unit the "
                   "user. Releases synthetic users' histories over the items that survive DP thresholding.")
@click.option("--excel-safe", is_flag=True, help=_EXCEL_SAFE_HELP)
@click.option("--engine", type=click.Choice(["auto", "memory", "duckdb", "spark"]), default="auto", show_default=True,
              help="What counts the table's rows: pandas in memory; DuckDB out of core (auto for Parquet, a "
                   "directory or glob of Parquet/CSV files, or a file above --memory-limit; no sampling down); "
                   "Spark on a cluster (with --master).")
@click.option("--master", default=None, metavar="URL",
              help="Spark master to run on (spark://host:7077, yarn, local[4]); implies --engine spark.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@_model_option
@_unit_options
@_read_options
def release_command(data, epsilon, delta, target, schema_path, holdout_fraction, rows, key_path, out, seed, ledger,
                    budget_limit, dataset_id, image_size, classes_option, epochs, batch_size, threads, item_column,
                    excel_safe, engine, master, quiet, model_name, privacy_unit, max_rows_per_unit, unit_noun, **read):
    """Release DATA as private synthetic data: fit, sample, audit, report, sign.

    DATA is a table (CSV, Parquet) or images (a folder of PNG/JPEG files, optionally one
    sub-folder per class, or a .npz/.npy file). Writes synthetic.csv (or, for images,
    images/*.png, images.npz and grid.png), report.json (an in-toto statement: DP content
    only), report.dsse.json (its Ed25519 signature) and report.html into a new directory,
    and the steward's exact audit (not for release) beside it, atomically; records the
    spend in the budget ledger. Check both with `synthdata verify DIR --public-key KEY`.
    """
    unit = _unit_request(privacy_unit, max_rows_per_unit, unit_noun)
    if _torchrun_worker(data, model_name, image_size, classes_option, threads):
        return  # a process of a torchrun group other than rank 0: it took part in the fit only
    _check_release_paths(data, out, ledger)
    from .images import is_image_input
    from .release import STAGES, release
    from .runtime import configure_threads
    from .signing import load_private_key

    key = None
    if key_path is not None:
        key = load_private_key(key_path, passphrase=os.environ.get("SYNTHDATA_KEY_PASSPHRASE"))
    configure_threads(threads)
    progress = _Progress(quiet, "fit")
    stages = _Stages(quiet, progress, total=len(STAGES))
    from .engines.base import choose_engine, is_engine_input

    if master is not None:
        if engine not in ("auto", "spark"):
            raise click.UsageError("--master is Spark's: use it with --engine spark")
        engine = "spark"
    table_input = is_engine_input(data) or engine in ("duckdb", "spark")
    opened = None
    with _warnings_to_stderr():
        if excel_safe and (item_column is not None or (is_image_input(data) and not table_input)):
            raise DataError("--excel-safe applies to table releases (synthetic.csv), not to images or --items data")
        if is_image_input(data) and not table_input:
            if target is not None or schema_path is not None or unit is not None or item_column is not None:
                raise DataError(f"{data} holds images: --target, --schema, --privacy-unit and --items apply to "
                                "tables only")
            from .images import parse_image_size, read_images
            from .images.ingest import declared_classes
            from .images.modality import ImageModality

            classes = declared_classes(data, classes_option)
            modality = ImageModality(read_images(data, size=None if image_size is None else
                                                 parse_image_size(image_size)), model=_model_for(model_name, "image"),
                                     classes=classes)
        else:
            if image_size is not None or classes_option is not None:
                raise DataError(f"--image-size and --classes apply to images (a folder, .npz or .npy), not to {data}")
            from .tabular.modality import TableModality

            schema = Schema.load(schema_path) if schema_path is not None else None
            if item_column is not None:
                if unit is None:
                    raise DataError("--items needs --privacy-unit USER_COLUMN: in interaction data the user is the "
                                    "unit of privacy")
                if target is not None or schema is not None:
                    raise DataError("--target and --schema apply to table releases, not to --items interaction data")
                if model_name is not None or epochs is not None or batch_size is not None:
                    raise SynthdataError("--model, --epochs and --batch-size apply to tables and images, not to "
                                         "--items interaction data")
                from .interactions.modality import InteractionModality

                modality = InteractionModality(_load(data, **read), user=unit, item=item_column)
            else:
                chosen = choose_engine(data, engine, memory_limit=read.get("memory_limit"))
                if chosen == "memory":
                    table = _load(data, **read)
                    _warn_missing_markers(table.frame, schema)
                else:
                    table = opened = _open_engine(data, chosen, master=master, threads=threads, progress=progress,
                                                  **read)
                modality = TableModality(table, target=target, schema=schema, unit=unit,
                                         model=_model_for(model_name, "table"), excel_safe=excel_safe)
                if rows is not None:
                    _check_room(Path(os.path.abspath(out)).parent if out is not None else Path("."), rows,
                                len(modality.table.frame.columns), "--rows")
        try:
            result = release(modality, epsilon=epsilon, delta=delta, holdout_fraction=holdout_fraction, rows=rows,
                             key=key, key_path=key_path, out=out, seed=seed, ledger=ledger,
                             budget_limit=budget_limit, dataset_id=dataset_id, progress=stages,
                             fit_progress=progress, model_options={k: v for k, v in (
                                 ("epochs", epochs), ("batch_size", batch_size)) if v is not None})
        finally:
            progress.close()
            if opened is not None:
                opened.close()
    for line in release_summary(result):
        click.echo(line)


def _torchrun_worker(data, model_name, image_size, classes_option, threads) -> bool:
    """Under torchrun with several processes: join the group (gloo on CPU, NCCL on GPUs).

    Rank 0 goes on with the release and hands the fit to the other processes; they read
    the images, take part in the fit (DP-SGD on their part of the images) and write
    nothing. True on those. See ``synthdata.images.distributed``.
    """
    from .images.distributed import launched_by_torchrun

    if not launched_by_torchrun():
        return False
    from .images import is_image_input
    from .images.distributed import abort_fit, serve_fit, start_cluster, stop_cluster
    from .runtime import configure_threads

    if not is_image_input(data) or _model_for(model_name, "image") != "image-gan":
        raise DataError("torchrun (several processes) runs image releases with the image GAN only; run tables and "
                        "--model vae in one process, or count a large table on Spark (--engine spark)")
    cluster = start_cluster()

    def finish() -> None:
        abort_fit()  # rank 0 stopped before its fit: let the others go
        stop_cluster()

    click.get_current_context().call_on_close(finish)
    if cluster is None or cluster.main:
        return False
    from .images import parse_image_size, read_images
    from .images.ingest import declared_classes
    from .images.modality import ImageModality

    configure_threads(threads)
    with _warnings_to_stderr():
        serve_fit(lambda: ImageModality(read_images(data, size=None if image_size is None else
                                                    parse_image_size(image_size)), model="image-gan",
                                        classes=declared_classes(data, classes_option)))
    return True


def _open_engine(data: str, engine: str, *, master, threads, progress, encoding, delimiter, thousands, decimal,
                 memory_limit, drop, na_values=()):
    """An engine over DATA (DuckDB or Spark): every row counted where it is, nothing loaded whole."""
    from .engines import TableSource, open_engine

    if thousands is not None or decimal != ".":
        raise DataError(f"--thousands and --decimal need --engine memory; the {engine} engine reads numbers written "
                        "with a '.' decimal mark and no thousands separator")
    source = TableSource.of(data, delimiter=delimiter, encoding=encoding, na_values=na_values, drop=drop)
    return open_engine(source, engine, master=master, threads=threads, progress=progress)


def release_summary(result) -> list[str]:
    """The lines ``release`` prints: where it went, what it spent, what the public audit says."""
    predicate = result.predicate
    privacy, data, audit = predicate["privacy"], predicate["data"], predicate.get("audit") or {}
    what = {"image": "images", "interactions": f"{privacy.get('unit', 'one user').split()[1]}s"}.get(
        predicate["modality"], "rows")
    lines = [f"Released {data['rows_synthetic']:,} synthetic {what} to {printable(result.directory)}",
             f"  epsilon spent {privacy['epsilon_spent']:.4f} of {privacy['epsilon']:g} (delta {privacy['delta']:.3g}); "
             f"unit: {privacy['unit']}"]
    bounding = data.get("privacy_unit")
    if isinstance(bounding, dict) and bounding.get("max_rows"):
        dropped = max(bounding['rows_dropped_by_cap_dp'], 0)
        std = bounding.get('estimates_noise_std', {}).get('dropped', 0)
        # Within two noise stds of none, the estimate cannot tell whether the cap dropped anything.
        lines.append(f"  cap: at most {bounding['max_rows']} rows per {bounding['noun']} (chosen "
                     f"{str(bounding['cap']).split(':')[0]}); the cap dropped about "
                     f"{dropped:,.0f} rows (a DP estimate, noise std {std:,.0f}"
                     + ("; too noisy to tell from none)" if std and dropped < 2 * std else ")"))
    figures = audit.get("figures") or {}
    utility = figures.get("ml_utility")
    if utility:
        held = f"{bounding['noun']}s (each one's share of rows)" if isinstance(bounding, dict) and \
            bounding.get("noun") else what
        # The figure is noisy (small holdouts: very): say how noisy, and what guessing scores.
        std, majority = utility.get("accuracy_noise_std"), utility.get("majority_class_accuracy")
        lines.append(f"  utility (DP figure): a model trained on the synthetic data scores {utility['accuracy']:.3f} "
                     "accuracy" + (f" (noise std {std:.3f})" if std is not None else "") + f" on real holdout {held}"
                     + (f"; always guessing the most common class: {majority:.3f}" if majority is not None else ""))
    if not utility and figures.get("ml_utility_note"):
        lines.append(f"  utility (DP figure): {figures['ml_utility_note']}")
    recommended = figures.get("recommender")
    if recommended:
        lines.append(f"  recommender (DP figures, held-out real {what}): recall@10 "
                     f"{recommended['synthetic_als']['recall@10']:.3f} (ALS on the synthetic data), "
                     f"{recommended['synthetic_knn']['recall@10']:.3f} (item-kNN), "
                     f"{recommended['dp_popularity']['recall@10']:.3f} (DP popularity); noise std "
                     f"{recommended['score_noise_std']:.3f} each")
    if audit.get("verdict"):
        lines.append(f"  leakage: {audit['verdict']}")
    lines.append(f"  steward's exact audit (not for release): {printable(result.steward_directory)}")
    if result.key_created:
        lines.append(f"  created your signing key; its public half is {printable(result.public_key_path)}")
    public = printable(result.public_key_path) if result.public_key_path is not None else "PUBLIC_KEY.pem"
    lines.append(f"  verify with: synthdata verify {printable(result.directory)} --public-key {public}")
    return lines


class _Stages:
    """Prints each release stage as it starts, on stderr (after closing the fit's bar)."""

    def __init__(self, quiet: bool, bar: _Progress, *, total: int) -> None:
        self.quiet = quiet
        self.bar = bar
        self.number = 0
        self.total = total

    def __call__(self, message: str) -> None:
        self.number += 1
        self.bar.close()
        if not self.quiet:
            click.echo(f"[{self.number}/{self.total}] {message}", err=True)


@cli.command(name="budget")
@click.option("--ledger", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_RELEASES_DIR / LEDGER_NAME, show_default=True, help="Budget ledger file.")
@click.option("--repair", is_flag=True,
              help="Settle the reservations of crashed releases, remove their staging folders, and say what "
                   "was done.")
def budget_command(ledger, repair):
    """List the budget ledger: every release, and the cumulative epsilon per input.

    Crashed releases are settled on every read: released if their directory is in place,
    dropped (and their staging folder removed) if not; abandoned staging folders beside
    the ledger are removed. --repair also settles reservations of other machines whose
    lock is free, and says what it did.
    """
    from .budget import BudgetLedger, LedgerReadOnlyError, cleanup_staging
    from .files import printable

    if not os.path.lexists(ledger):
        raise SynthdataError(f"{printable(ledger)} does not exist: no release has been recorded there "
                             "(choose it with --ledger)")
    book = BudgetLedger(ledger)
    if repair:
        for line in book.repair() or ["nothing to settle: no crashed release, no abandoned staging folder"]:
            click.echo(f"Repair: {line}")
    try:
        entries = book.entries()
    except LedgerReadOnlyError:
        if repair:
            raise
        entries = book.snapshot()
        click.echo(f"Note: {printable(ledger.parent)} is not writable: the ledger is listed as it is, crashed "
                   "releases (if any) not settled", err=True)
    else:
        for staging in cleanup_staging(ledger.parent):  # a killed release's data, whatever ledger it used
            click.echo(f"Note: removed the abandoned staging folder {printable(staging)}", err=True)
    totals: dict[str, float] = {}
    click.echo(f"{'time':<26} {'input sha256':<14} {'epsilon':>8} {'delta':>9}  {'state':<9} release")
    for entry in entries:
        totals[entry["input_sha256"]] = totals.get(entry["input_sha256"], 0.0) + entry["epsilon"]
        delta = "-" if entry.get("delta") is None else f"{entry['delta']:.3g}"
        click.echo(f"{printable(entry['time']):<26} {printable(entry['input_sha256'][:12]):<14} "
                   f"{entry['epsilon']:>8g} {delta:>9}  {entry['state']:<9} {printable(entry['release'])}")
    for sha, total in totals.items():
        click.echo(f"input {printable(sha[:12])}: cumulative epsilon {total:g}")


def _check_folder_for(path: Path, option: str) -> None:
    """Refuse, before any work, a ``path`` whose folder cannot be made or written (the nearest existing
    ancestor must be a folder we can write)."""
    folder = Path(os.path.abspath(path)).parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise SynthdataError(f"{printable(folder)} is a file, not a folder; choose another {option}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SynthdataError(f"cannot write in {printable(folder)} (permission denied); choose another {option}")


def _save_model(model, model_out: Path) -> None:
    """Save into a fresh folder beside ``model_out`` (``mkdtemp``: an unpredictable name, made by us), then
    rename it into place; a crash or Ctrl-C leaves no half-saved model and no folder behind."""
    import tempfile

    from .files import os_error_message

    try:
        model_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=model_out.parent, prefix=f".{model_out.name}.partial-"))
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; the model folder is as mkdir would make it
    except OSError as exc:
        raise SynthdataError(os_error_message(exc, path=model_out, writing=True)) from None
    try:
        model.save(tmp)
        if os.path.lexists(model_out):  # appeared during the fit: never replaced
            raise SynthdataError(f"{printable(model_out)} appeared while the model was being fitted; it was left "
                                 "as it is: choose another --model-out")
        os.rename(tmp, model_out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SynthdataError(os_error_message(exc, path=model_out, writing=True)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _without(table: Table, drop: tuple[str, ...]) -> Table:
    """The table less the --drop columns it holds (the synthetic file may lack them)."""
    present = [name for name in drop if name in table.frame.columns]
    return Table(**{**table.__dict__, "frame": table.frame.drop(columns=present)}) if present else table


def _write_json(data: dict, path: Path) -> None:
    """Write ``data`` as JSON atomically: a crash leaves the old file or none, never half of one,
    and a link planted at a temporary name is never followed (:func:`synthdata.files.atomic_write`)."""
    from .files import atomic_write

    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def _group(facts: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, fact in facts:
        grouped.setdefault(fact, []).append(name)
    return grouped


def _echo_table(rows: list[dict[str, str]], width: int = 42) -> None:
    headers = list(rows[0])
    # Values and names read off the data: escapes in them are shown, never run by the terminal.
    cells = [[_clip(printable(row[h]), width) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def main(argv: list[str] | None = None) -> None:
    """Console entry point.

    A file-system error that reaches here (a read-only --out folder, a full disk, a
    permission) is the user's to fix: one line naming the path. Any other exception is
    a bug in synthdata, and is reported as one.
    """
    try:
        cli.main(args=argv, prog_name="synthdata")
    except MemoryError:
        click.echo("Error: ran out of memory; lower --memory-limit so that large inputs are sampled",
                   err=True)
        sys.exit(1)
    except OSError as exc:
        if os.environ.get("SYNTHDATA_DEBUG") or not _is_environmental(exc):
            _report_bug(exc)
        from .files import os_error_message

        click.echo(f"Error: {os_error_message(exc)}", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug, not a user error: say so in one line
        _report_bug(exc)


#: OSErrors that come from the environment (the file system, the machine), not from synthdata's code.
_ENVIRONMENTAL_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC),
                         errno.ENOENT, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP,
                         errno.EIO, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EBUSY, errno.ETXTBSY,
                         errno.EXDEV, errno.ENOTEMPTY, errno.ENXIO, errno.ENODEV, errno.EFBIG}


def _is_environmental(exc: OSError) -> bool:
    return exc.errno in _ENVIRONMENTAL_ERRNOS


def _report_bug(exc: BaseException) -> None:
    if os.environ.get("SYNTHDATA_DEBUG"):
        raise exc
    from .files import printable

    click.echo(f"Error: unexpected {type(exc).__name__}: {printable(exc)} — this is a bug in synthdata; "
               "re-run with SYNTHDATA_DEBUG=1 for the traceback and report it", err=True)
    sys.exit(1)
