"""Ingestion: read a sensitive table (CSV, Parquet or a pandas DataFrame) as it is.

The input is never modified. Every problem with the file itself (missing, a folder,
empty, binary, badly encoded, ragged rows, duplicate column names) is raised as one
:class:`~synthdata.errors.DataError` line naming the file and, where it helps, the line.
Problems with the *values* (infinite numbers, constant columns, …) are the schema's job,
see :mod:`synthdata.schema`.

A file bigger than memory is comfortable with is not loaded whole: :func:`read_table`
streams it once and keeps a uniform random sample of rows, and says so in
:attr:`Table.note` (or refuses, with ``on_large="error"``).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, SynthdataWarning
from .files import open_regular_file, sha256_file

__all__ = [
    "MIN_ROWS",
    "DEFAULT_SAMPLE_ROWS",
    "DELIMITERS",
    "MISSING_MARKERS",
    "Table",
    "read_table",
    "from_frame",
    "load_table",
    "default_memory_limit",
    "parse_size",
    "format_size",
]

#: Fewer data rows than this cannot be modelled, privately or not.
MIN_ROWS = 10
#: Rows kept when a file is too large to load whole.
DEFAULT_SAMPLE_ROWS = 100_000
#: Delimiters tried, in order of preference, when none is given.
DELIMITERS = (",", ";", "\t", "|")

#: Cell texts read as a missing value (beside the empty cell). pandas' defaults less
#: "None", "null"-like words that are often real answers ("Allergies: None").
MISSING_MARKERS = ("", "NA", "N/A", "n/a", "#N/A", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "<NA>")

_HEAD_BYTES = 64 * 1024

# Formats people hand us by mistake, recognised by their first bytes.
_MAGIC = (
    (b"PK\x03\x04", "is a ZIP archive (an Excel .xlsx workbook?); save the sheet as CSV and try again"),
    (b"\x1f\x8b", "is gzip-compressed; decompress it (gunzip) and try again"),
    (b"BZh", "is bzip2-compressed; decompress it and try again"),
    (b"\xd0\xcf\x11\xe0", "is an old Excel/Office file; save the sheet as CSV and try again"),
    (b"%PDF", "is a PDF document; export the table as CSV and try again"),
    (b"SQLite format 3\x00", "is an SQLite database; export the table as CSV and try again"),
    (b"\x89PNG", "is a PNG image, not a table"),
    (b"\xff\xd8\xff", "is a JPEG image, not a table"),
)
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass(frozen=True)
class Table:
    """A table as read from its source, plus where it came from.

    ``frame`` holds the rows (all of them, or a uniform random sample when ``sampled``);
    its index is the 0-based data-row number in the source, so messages can point at a
    row. ``sha256`` fingerprints the source bytes (for a DataFrame, its contents).
    """

    frame: pd.DataFrame
    source: str
    format: str
    sha256: str
    rows_total: int
    sampled: bool = False
    delimiter: str | None = None
    encoding: str | None = None
    size_bytes: int | None = None
    memory_limit: int | None = None

    @property
    def note(self) -> str | None:
        """A sentence on sampling, or None when every row was read."""
        if not self.sampled:
            return None
        return (
            f"read a uniform random sample of {len(self.frame):,} of {self.rows_total:,} rows: "
            f"{self.source} is {format_size(self.size_bytes or 0)}, above the in-memory limit of "
            f"{format_size(self.memory_limit or 0)} (raise it with --memory-limit)"
        )


# --------------------------------------------------------------------------- public API


def load_table(data: str | os.PathLike | pd.DataFrame | Table, **options) -> Table:
    """Read ``data`` whatever it is: a path (CSV or Parquet), a DataFrame, or a Table."""
    if isinstance(data, Table):
        return data
    if isinstance(data, pd.DataFrame):
        return from_frame(data)
    if isinstance(data, (str, os.PathLike)):
        return read_table(data, **options)
    raise DataError(
        f"cannot read data of type {type(data).__name__}; "
        "pass a path to a CSV or Parquet file, or a pandas DataFrame"
    )


def from_frame(frame: pd.DataFrame, *, source: str = "<DataFrame>") -> Table:
    """Wrap a DataFrame given through the Python API, after the same checks as a file."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    names = list(frame.columns)
    for position, name in enumerate(names, start=1):
        if not isinstance(name, str):
            raise DataError(
                f"{source}: column {position} is named {name!r} ({type(name).__name__}); "
                "column names must be text — rename the columns"
            )
    _check_names(names, source)
    _check_row_count(len(frame), source)
    frame = _plain_datetimes(frame, source)
    digest = hashlib.sha256()
    digest.update("\x1f".join(names).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return Table(
        frame=frame,
        source=source,
        format="dataframe",
        sha256=digest.hexdigest(),
        rows_total=len(frame),
    )


def read_table(
    path: str | os.PathLike,
    *,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    thousands: str | None = None,
    decimal: str = ".",
    memory_limit: int | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    on_large: str = "sample",
    seed: int = 0,
    na_values: Iterable[str] = (),
    drop: Iterable[str] = (),
) -> Table:
    """Read a CSV or Parquet file without modifying it.

    CSV delimiters ``, ; tab |`` are detected unless ``delimiter`` is given; text is
    UTF-8 unless ``encoding`` says otherwise. ``thousands`` accepts numbers written with
    a thousands separator (``"1,234"``), which are otherwise refused; ``decimal=","``
    numbers written with a decimal comma (``"3,5"``). A file larger than
    ``memory_limit`` bytes (default: :func:`default_memory_limit`) is streamed and a
    uniform random sample of ``sample_rows`` rows kept (``on_large="sample"``), or
    refused (``on_large="error"``). ``na_values`` are more cell texts that mean "missing"
    (``"?"`` in many public data sets), beside :data:`MISSING_MARKERS`; surrounding spaces
    are ignored. Columns named in ``drop`` are left out (a Parquet file's are never read,
    so a column synthdata cannot model can be dropped).
    """
    na_values = _markers(na_values)
    drop = tuple(dict.fromkeys([drop] if isinstance(drop, str) else drop))
    if on_large not in ("sample", "error"):
        raise ValueError("on_large must be 'sample' or 'error'")
    if delimiter is not None and len(delimiter) != 1:
        raise DataError(f"delimiter {delimiter!r} must be a single character, such as ',' or ';'")
    if thousands is not None and len(thousands) != 1:
        raise DataError(f"thousands separator {thousands!r} must be a single character, such as ','")
    if len(decimal) != 1 or decimal == thousands:
        raise DataError(f"decimal mark {decimal!r} must be one character, other than the thousands separator")
    if delimiter is not None and delimiter in (decimal, thousands):
        what = "decimal mark" if delimiter == decimal else "thousands separator"
        raise DataError(f"{delimiter!r} cannot be both the delimiter and the {what}; give another --delimiter")
    if delimiter is not None and delimiter in '\r\n"':
        raise DataError(f"delimiter {delimiter!r} cannot be a line break or a quote; use ',', ';', a tab or '|'")
    path = Path(path)
    where = str(path)
    _check_file(path)
    size = path.stat().st_size
    limit = memory_limit if memory_limit is not None else default_memory_limit()
    with _open(path) as handle:
        head = handle.read(_HEAD_BYTES)
    large = size > limit
    if large and on_large == "error":
        raise DataError(
            f"{where} is {format_size(size)}, above the in-memory limit of {format_size(limit)}; "
            "raise it with --memory-limit, or work on a sample of the rows"
        )
    sample = _Sample(size=size, limit=limit, rows=sample_rows, seed=seed) if large else None
    if head.startswith(b"PAR1") or path.suffix.lower() in _PARQUET_SUFFIXES:
        table = _read_parquet(path, head, sample, drop)
    else:
        _check_text(head, where, encoding)
        table = _read_csv(path, encoding=encoding, delimiter=delimiter, numbers=(thousands, decimal), sample=sample,
                          na_values=na_values)
        _drop_names(drop, list(table.frame.columns), where)
        table = _drop(table, drop)
    if na_values:
        table = Table(**{**table.__dict__, "frame": _apply_markers(table.frame, na_values)})
    return table


def _markers(na_values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(na_values, str):
        na_values = (na_values,)
    markers = []
    for marker in na_values:
        if not isinstance(marker, str):
            raise DataError(f"missing-value marker {marker!r} must be text, as it appears in the file")
        if marker.strip() not in markers:
            markers.append(marker.strip())
    return tuple(markers)


def _apply_markers(frame: pd.DataFrame, markers: tuple[str, ...]) -> pd.DataFrame:
    """Cells equal to a marker (spaces aside) become missing; a text column left holding
    only numbers is read as numbers, as it would have been without the markers (unless a
    cell carries leading zeros: see :func:`_keep_leading_zeros`)."""
    from .schema import mark_missing

    out = {}
    for name in frame.columns:
        series = frame[name]
        if series.dtype == object:
            marked = mark_missing(series, markers)
            if marked is not series:
                present = marked.dropna()
                if len(present) and present.map(lambda v: isinstance(v, str)).all():
                    numbers = pd.to_numeric(present.str.strip(), errors="coerce")
                    if numbers.notna().all():
                        parsed = pd.to_numeric(marked.where(marked.isna(), marked.astype(str).str.strip()))
                        marked = _codes_as_text(marked, parsed) if present.str.match(LEADING_ZEROS).any() else parsed
            series = marked
        out[name] = series
    return pd.DataFrame(out, index=frame.index)


def default_memory_limit() -> int:
    """How many bytes of input we load whole: a tenth of available memory, 256 MiB–2 GiB."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        available = 8 << 30
    return int(min(max(available // 10, 256 << 20), 2 << 30))


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``"500MB"`` → bytes (binary units: 1 KB = 1024 bytes)."""
    match = _SIZE.match(str(text))
    if not match:
        raise DataError(f"cannot read the size {text!r}; write it like 500MB, 2GB or 1048576")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").lower()[:1]])


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- file checks


def _open(path: Path):
    """The input opened for binary reading: a regular file, never a FIFO or device (not even
    one swapped in after :func:`_check_file`); a symbolic link to a regular file is followed."""
    return open_regular_file(path, what="input file", follow_symlinks=True, error=DataError)


def _drop(table: Table, drop: tuple[str, ...]) -> Table:
    """``table`` less the ``drop`` columns (checked by :func:`_drop_names`)."""
    if not drop:
        return table
    return Table(**{**table.__dict__, "frame": table.frame.drop(columns=list(drop))})


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a file; give the path of a CSV or Parquet file")
    if not path.is_file():
        raise DataError(f"{path} is not a regular file; give the path of a CSV or Parquet file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path} cannot be read (permission denied); check its permissions")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); give a file with a header row and data rows")


def _check_text(head: bytes, where: str, encoding: str) -> None:
    """Refuse files that are clearly not delimited text, before trying to parse them."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise DataError(f"{where} {what}")
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; use a name such as utf-8, latin-1 or cp1252") from None
    if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib: codecs, not text encodings
        raise DataError(f"{encoding!r} is not a text encoding; use a name such as utf-8, latin-1 or cp1252")
    codec = info.name
    if codec.startswith(("utf-16", "utf-32")):
        return  # NUL bytes are normal there
    if head.startswith(_UTF16_BOMS):
        raise DataError(f"{where} looks like UTF-16 text; re-run with --encoding utf-16")
    nul = head.find(b"\x00")
    control = sum(1 for byte in head if byte < 9 or 13 < byte < 32 or byte == 127)
    if nul >= 0 or control > max(2, len(head) // 100):
        offset = nul if nul >= 0 else next(i for i, b in enumerate(head) if b < 9 or 13 < b < 32 or b == 127)
        raise DataError(
            f"{where} does not look like a CSV file (binary content at byte {offset}); "
            "give a CSV text file or a Parquet file"
        )


def _check_names(names: list[str], where: str) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name.strip() == "":
            raise DataError(
                f"{where}: column {position} has no name in the header; name it "
                "(or remove a trailing delimiter at the end of the header line)"
            )
        if name in seen:
            raise DataError(
                f"{where}: duplicate column name {name!r} (columns {seen[name]} and {position}); "
                "rename one of them"
            )
        seen[name] = position


def _check_row_count(rows: int, where: str) -> None:
    if rows == 0:
        raise DataError(f"{where} has a header but no data rows; give a file with data rows")
    if rows < MIN_ROWS:
        noun = "row" if rows == 1 else "rows"
        raise DataError(
            f"{where} has only {rows} data {noun}; synthdata needs at least {MIN_ROWS} rows "
            "(and far more for a useful private release)"
        )


# --------------------------------------------------------------------------- CSV


@dataclass(frozen=True)
class _Sample:
    """How to sample a file too large to load whole."""

    size: int
    limit: int
    rows: int
    seed: int


def _read_csv(path: Path, *, encoding: str, delimiter: str | None, numbers: tuple[str | None, str],
              sample: _Sample | None, na_values: tuple[str, ...] = ()) -> Table:
    where = str(path)
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    if sample is None:
        with _open(path) as handle:
            raw = handle.read()
        sha256 = hashlib.sha256(raw).hexdigest()
        text = _decode(raw, codec, encoding, where)
        del raw
        _check_nul(text, where)
        delimiter = delimiter or _detect_delimiter(text[:_HEAD_BYTES])
        header, rows_total, kept = _scan(io.StringIO(text), delimiter, where, encoding)
        buffer, index = io.StringIO(text), None
    else:
        sha256 = sha256_file(path, what="input file", error=DataError)
        with _text(path, codec) as handle:
            try:
                head_text = handle.read(_HEAD_BYTES)
            except UnicodeDecodeError as exc:
                raise _decode_error(exc, encoding, where, line=None) from None
        delimiter = delimiter or _detect_delimiter(head_text)
        # Estimate the row count from the head to aim the Bernoulli sample at `rows`.
        head_lines = max(head_text.count("\n"), 1)
        estimated = max(sample.size * head_lines / max(len(head_text.encode(codec, "replace")), 1), 1)
        probability = min(1.0, 1.2 * sample.rows / estimated)
        rng = np.random.default_rng(sample.seed)
        with _text(path, codec) as handle:
            header, rows_total, kept = _scan(_refuse_nul(handle, where), delimiter, where, encoding,
                                             keep=(probability, rng))
        if len(kept) > sample.rows:
            chosen = np.sort(rng.choice(len(kept), size=sample.rows, replace=False))
            kept = [kept[i] for i in chosen]
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(row for _, row in kept)
        buffer.seek(0)
        index = pd.Index([number for number, _ in kept])
    _check_row_count(rows_total, where)
    frame = _parse(buffer, delimiter, numbers, where, na_values)
    if index is not None:
        frame.index = index
    return Table(
        frame=frame,
        source=where,
        format="csv",
        sha256=sha256,
        rows_total=rows_total,
        sampled=sample is not None,
        delimiter=delimiter,
        encoding=encoding,
        size_bytes=path.stat().st_size,
        memory_limit=sample.limit if sample else None,
    )


@contextmanager
def _text(path: Path, codec: str) -> Iterator[io.TextIOWrapper]:
    """The input as text lines (``newline=""``, as the csv module wants), from a regular file."""
    with _open(path) as raw, io.TextIOWrapper(raw, encoding=codec, newline="", errors="strict") as handle:
        yield handle


def _nul_error(where: str, line: int) -> DataError:
    return DataError(f"{where}, line {line}: a NUL byte (binary content) inside the text; the file is damaged or "
                     "not a CSV file: remove the NUL bytes (tr -d '\\000') or export the table again")


def _check_nul(text: str, where: str) -> None:
    """Refuse NUL characters anywhere (the head check sees only the first 64 KB)."""
    at = text.find("\x00")
    if at >= 0:
        raise _nul_error(where, text.count("\n", 0, at) + 1)


def _refuse_nul(lines: Iterable[str], where: str) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        if "\x00" in line:
            raise _nul_error(where, number)
        yield line


def _decode(raw: bytes, codec: str, encoding: str, where: str) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _decode_error(exc, encoding, where, line=line) from None


def _decode_error(exc: UnicodeDecodeError, encoding: str, where: str, line: int | None) -> DataError:
    bad = exc.object[exc.start:exc.start + 1].hex()
    place = f"{where}, line {line}" if line else where
    other = "--encoding latin-1 or --encoding cp1252" if "utf" in encoding.lower() else "--encoding utf-8"
    return DataError(
        f"{place}: byte 0x{bad} is not valid {encoding} text; the file uses another encoding — "
        f"re-run with the right one, for example {other}"
    )


def _detect_delimiter(sample: str) -> str:
    """The candidate that splits the header into the most columns, consistently."""
    if "\n" in sample:
        sample = sample[: sample.rfind("\n") + 1]  # drop a line cut in the middle
    best, best_score = ",", (0.0, 1)
    for candidate in DELIMITERS:
        try:
            rows = [row for row in _first_rows(sample, candidate, 50) if row]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(len(row) == width for row in rows) / len(rows), width)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _first_rows(sample: str, delimiter: str, count: int) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter, strict=True)
    for number, row in enumerate(reader):
        if number >= count:
            return
        yield row


def _scan(lines: Iterable[str], delimiter: str, where: str, encoding: str,
          keep: tuple[float, np.random.Generator] | None = None) -> tuple[list[str], int, list]:
    """Check every row's field count; return the header, the data-row count, kept rows."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    kept: list[tuple[int, list[str]]] = []
    rows = 0
    try:
        header = next((row for row in reader if row), None)
        if header is None:
            raise DataError(f"{where} holds only blank lines; give a file with a header row and data rows")
        _check_names(header, where)
        width = len(header)
        for row in reader:
            if not row:
                continue  # blank line
            if len(row) != width:
                hint = (
                    f"quote values that contain {_show(delimiter)}" if len(row) > width
                    else "fill in the missing fields (an empty field is a missing value)"
                )
                raise DataError(
                    f"{where}, line {reader.line_num}: {len(row)} fields where the header has {width}; "
                    f"fix that row ({hint})"
                )
            if keep is not None and keep[1].random() < keep[0]:
                kept.append((rows, row))
            rows += 1
    except csv.Error as exc:
        raise _csv_error(exc, where, reader.line_num) from None
    except UnicodeDecodeError as exc:
        raise _decode_error(exc, encoding, where, line=reader.line_num + 1) from None
    return header, rows, kept


def _csv_error(exc: csv.Error, where: str, line: int) -> DataError:
    text = str(exc)
    if "new-line character seen in unquoted field" in text:
        return DataError(f"{where}, line {line}: the lines end with a bare carriage return (CR, as on classic Mac "
                         "OS); convert the line endings to LF or CRLF and try again")
    if "field larger than field limit" in text:
        return DataError(f"{where}, line {line}: a value longer than {csv.field_size_limit():,} characters; an "
                         "unclosed quote (which runs to the end of the file) or a file that is not a table? check "
                         "the quotes on that line")
    return DataError(f"{where}, line {line}: {text}; check the quotes on that line")


def _parse(buffer: io.StringIO, delimiter: str, numbers: tuple[str | None, str], where: str,
           na_values: tuple[str, ...] = ()) -> pd.DataFrame:
    thousands, decimal = numbers
    options = dict(sep=delimiter, keep_default_na=False, skip_blank_lines=True, low_memory=False,
                   na_values=list(MISSING_MARKERS) + [m for m in na_values if m not in MISSING_MARKERS])
    try:
        frame = pd.read_csv(buffer, thousands=thousands, decimal=decimal, **options)
        frame = _numbers_in_text(frame, thousands, decimal)  # before: it reads only columns read as text
        return _keep_leading_zeros(frame, buffer, options)
    except (pd.errors.ParserError, ValueError) as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{where} could not be parsed as CSV ({message}); check the file's format") from None


#: A whole number written with leading zeros (``02134``, ``007``): a code, not a quantity.
LEADING_ZEROS = re.compile(r"^\s*0+[1-9]\d*\s*$")


def _keep_leading_zeros(frame: pd.DataFrame, buffer: io.StringIO, options: dict) -> pd.DataFrame:
    """Columns the CSV parser read as numbers, kept as the file's text where a cell carries
    leading zeros (zip codes ``02134``, ids ``007``): parsed, ``02134`` is ``2134`` and the
    zeros are gone before anything can see them. Whether such a column is a code or a number
    is then the schema's decision (declared, or private inference); reading a number from
    its text later gives the same number. Only the numeric columns where a scan of the raw
    text finds a field of that shape (:func:`_leading_zero_columns`) are read again as text:
    on Adult's train.csv that read took twice the parse's CPU time, and found nothing."""
    numbers = [name for name in frame.columns
               if pd.api.types.is_numeric_dtype(frame[name].dtype) and not pd.api.types.is_bool_dtype(frame[name].dtype)]
    if not numbers:
        return frame
    suspects = _leading_zero_columns(buffer, options["sep"])  # a scan of the raw text first: cheap
    if suspects is not None:
        numbers = [name for name in numbers if frame.columns.get_loc(name) in suspects]
        if not numbers:
            return frame
    buffer.seek(0)
    text = pd.read_csv(buffer, usecols=numbers, dtype=str, **options)
    padded = [name for name in numbers if text[name].str.match(LEADING_ZEROS).any()]
    if not padded:
        return frame
    frame = frame.copy()
    for name in padded:
        frame[name] = _codes_as_text(text[name], frame[name]).to_numpy()
    return frame


def _leading_zero_field(delimiter: str) -> re.Pattern:
    """A field of raw CSV text that may read as a :data:`LEADING_ZEROS` cell: a ``0`` at the
    start of a field (after the delimiter, a line break, a quote or a space; the start of
    the text is checked apart), more zeros, a digit 1-9 and digits, then nothing but spaces
    and a quote before the field ends. Every such cell has this shape in the raw text (a
    quoted ``" 007"`` too); a hit on anything else (``Apt 05`` in free text) only costs the
    exact check. The pattern starts with the literal ``0`` (its lookbehind after it), which
    the regex engine finds fast: about 7 ms over Adult's 3.5 MB, where a lookbehind first
    took 90."""
    separator = re.escape(delimiter)
    return re.compile(rf'0(?<=[{separator}\s"]0)0*[1-9]\d*(?=[\s"]*(?:[{separator}\r\n]|$))')


#: The same at the start of a piece of text (:func:`_leading_zero_columns`).
_LEADING_ZERO_START = re.compile(r"0+[1-9]\d*")

#: Characters of raw text :func:`_leading_zero_columns` searches at a time.
_SCAN_CHARS = 1 << 22


def _leading_zero_columns(buffer: io.StringIO, delimiter: str) -> set[int] | None:
    """The positions of the columns of the CSV text in ``buffer`` that may hold a cell with
    leading zeros: those where a field of the raw text has that shape
    (:func:`_leading_zero_field`); an empty set when none does, and None (any column may)
    when the text holds a quote, since a quoted field may hold the delimiter or a line
    break and the count of delimiters before a field on its line is then not its column.

    Read in pieces cut after a line break, so no digit run or line is cut; a piece's start
    counts as a field's start. Each hit costs a search back to its line's start."""
    pattern = _leading_zero_field(delimiter)
    found: set[int] = set()
    buffer.seek(0)
    while True:
        piece = buffer.read(_SCAN_CHARS)
        if not piece:
            return found
        if not piece.endswith("\n"):
            piece += buffer.readline()
        if '"' in piece:
            return None if found or _may_hold_leading_zeros(buffer, delimiter, piece, pattern) else set()
        hits = [match.start() for match in pattern.finditer(piece)]
        if _LEADING_ZERO_START.match(piece):
            hits.insert(0, 0)
        for at in hits:
            found.add(piece.count(delimiter, piece.rfind("\n", 0, at) + 1, at))


def _may_hold_leading_zeros(buffer: io.StringIO, delimiter: str, piece: str = "",
                            pattern: re.Pattern | None = None) -> bool:
    """Whether the rest of the CSV text in ``buffer`` (after ``piece``, already read) may hold
    a cell with leading zeros, in any column (see :func:`_leading_zero_columns`)."""
    pattern = pattern or _leading_zero_field(delimiter)
    while True:
        if pattern.search(piece) or _LEADING_ZERO_START.match(piece):
            return True
        piece = buffer.read(_SCAN_CHARS)
        if not piece:
            return False
        if not piece.endswith("\n"):
            piece += buffer.readline()


def _codes_as_text(raw: pd.Series, numbers: pd.Series) -> pd.Series:
    """A column of numbers held as text because some cell has leading zeros: those cells
    keep the file's text, every other cell is its parsed number written canonically
    (``7``, ``1.5``, ``1e-05``). So one row's leading zeros change no other cell's shape
    class in private inference: the file's ``1e3``, ``5.`` or ``1,5`` (with ``--decimal ,``)
    would otherwise read as other shapes as text than as the numbers they are (a
    neighbouring table with one row more would change every cell's class, not one)."""
    padded = raw.astype(object).map(lambda v: isinstance(v, str) and LEADING_ZEROS.match(v) is not None)
    out = numbers.astype(object).map(_number_text)
    out[padded.to_numpy(dtype=bool)] = raw[padded.to_numpy(dtype=bool)].str.strip()
    return out


def _number_text(value):
    """A parsed number as text whose shape class is the number's own (missing stays missing)."""
    if value is None or pd.isna(value):
        return np.nan
    if isinstance(value, (int, np.integer)):
        return str(int(value))  # exact, past float precision too
    number = float(value)
    if not math.isfinite(number):
        return repr(number)
    return str(int(number)) if number == round(number) else repr(number)


def _numbers_in_text(frame: pd.DataFrame, thousands: str | None, decimal: str) -> pd.DataFrame:
    """Text columns' cells that read as numbers under the declared marks, written as those
    numbers canonically (``1,5`` → ``1.5`` with ``--decimal ,``; ``1.234`` → ``1234`` with
    ``--thousands .``); leading zeros (``007``) keep their text.

    One text cell (``abc``) turns a column of numbers to text as read. Read as text, a cell
    is later classed and parsed with a '.' decimal mark and no thousands separator (private
    inference's shape classes, :meth:`Schema.conform`), so without this a neighbouring table
    with that one row more changed the class of every ``1,5`` in the column (half → text),
    not one cell. With the default marks, text already reads that way: nothing to do.
    """
    if decimal == "." and thousands is None:
        return frame
    pattern = _marked_number(thousands, decimal)
    out = None
    for name in frame.columns:
        series = frame[name]
        if series.dtype != object:
            continue
        text = series.map(lambda v: v.strip() if isinstance(v, str) else "")
        parts = text.str.extract(pattern)
        digits = (parts["whole"].fillna("") + parts["fraction"].fillna("")).str.contains("[0-9]")
        hit = (digits & ~text.str.match(LEADING_ZEROS)).to_numpy()
        if not hit.any():
            continue
        if out is None:
            out = frame.copy()
        column = series.astype(object).copy()
        column[hit] = [_marked_text(*row, thousands) for row in parts[hit].fillna("").itertuples(index=False)]
        out[name] = column
    return frame if out is None else out


def _marked_number(thousands: str | None, decimal: str) -> re.Pattern:
    """A number as pandas' CSV parser reads it under these marks (spaces already stripped):
    a sign, digits with thousands separators after the first digit, a decimal mark with
    digits, an exponent. It accepts a few spellings pandas does not (``1.2..3,5`` with a '.'
    separator); such a cell keeps its column text as read with or without a neighbouring
    row, so reading it as a number moves no class between neighbours."""
    separator = "" if thousands is None else re.escape(thousands)
    return re.compile(rf"^(?P<sign>[+-]?)(?P<whole>(?:[0-9][0-9{separator}]*)?)"
                      rf"(?:{re.escape(decimal)}(?P<fraction>[0-9]*))?(?P<exponent>[eE][+-]?[0-9]+)?$")


def _marked_text(sign: str, whole: str, fraction: str, exponent: str, thousands: str | None) -> str:
    """The parts of a cell :func:`_marked_number` matched (with a digit) as the number's
    canonical text (:func:`_number_text`): whole numbers exactly, others as floats."""
    if thousands is not None:
        whole = whole.replace(thousands, "")
    if not fraction and not exponent:
        return str(int(sign + whole))
    return _number_text(float(f"{sign}{whole or '0'}.{fraction}{exponent}"))


def _show(delimiter: str) -> str:
    return {"\t": "a tab", ",": "','", ";": "';'", "|": "'|'"}.get(delimiter, repr(delimiter))


# --------------------------------------------------------------------------- Parquet


def _drop_names(drop: tuple[str, ...], names: list[str], where: str) -> None:
    missing = [name for name in drop if name not in names]
    if missing:
        raise DataError(f"{where}: --drop {missing[0]}: no such column; the columns are {', '.join(names)}")
    if len(drop) >= len(names):
        raise DataError(f"{where}: --drop leaves no column")


def _check_flat(field, where: str) -> None:
    """Refuse a column of nested values (struct, map, list, union): one value per cell is what
    synthdata models."""
    import pyarrow as pa

    kind = field.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    nested = {"struct": pa.types.is_struct, "map": pa.types.is_map, "union": pa.types.is_union,
              "list": lambda t: pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
              or getattr(pa.types, "is_list_view", lambda _t: False)(t)
              or getattr(pa.types, "is_large_list_view", lambda _t: False)(t)}
    for what, test in nested.items():
        if test(kind):
            raise DataError(f"{where}: column {field.name!r} holds nested values (a {what}: {kind}); synthdata "
                            f"models one plain value per cell: flatten it into columns of their own, or leave it "
                            f"out with --drop {_shell_word(field.name)}")


def _shell_word(name: str) -> str:
    """``name`` as one word on a command line (quoted when it needs to be), printable."""
    import shlex

    from .files import printable

    return shlex.quote(printable(name))


def _plain_arrow(table, where: str):
    """Decimal columns as floats and binary columns as text: the values synthdata models.

    Read as they are, a Decimal column became text categories ("2.25") and a binary one was
    written back as "b'A'". Decimals of more than 15 digits are rounded (with a warning);
    binary cells that are not UTF-8 text are refused, naming the column.
    """
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        column = table.column(index)
        if pa.types.is_dictionary(field.type) and (pa.types.is_decimal(kind) or _is_binary(kind)):
            column = column.cast(kind)
        if pa.types.is_decimal(kind):
            if kind.precision > 15:
                warnings.warn(f"{where}: column {field.name!r} holds decimals of up to {kind.precision} digits; they "
                              "are read as floating-point numbers, rounded to about 15 significant digits",
                              SynthdataWarning, stacklevel=5)
            column = column.cast(pa.float64(), safe=False)
        elif _is_binary(kind):
            try:
                column = column.cast(pa.binary()).cast(pa.string())
            except pa.ArrowInvalid:
                raise DataError(f"{where}: column {field.name!r} holds binary values that are not UTF-8 text; "
                                "synthdata models text and numbers: decode them into a text column, or leave it "
                                f"out with --drop {_shell_word(field.name)}") from None
        else:
            continue
        table = table.set_column(index, field.name, column)
    return table


def _is_binary(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)


def _plain_datetimes(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Timestamps as the rest of synthdata reads them: time-zone-naive nanoseconds.

    A Parquet file (or a DataFrame) may hold time-zone-aware timestamps, or timestamps in
    seconds beyond the years 1677-2262 that nanoseconds hold. Aware ones are read as UTC
    (the instants kept, the zone dropped); ones outside the range as missing; each with a
    warning naming the column. ``frame`` itself is never modified.
    """
    out = None
    for name in frame.columns:
        series = frame[name]
        if not isinstance(series.dtype, pd.DatetimeTZDtype) and not (
                pd.api.types.is_datetime64_dtype(series.dtype) and series.dtype != np.dtype("datetime64[ns]")):
            continue
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            warnings.warn(f"{where}: column {name!r} holds time-zone-aware timestamps ({series.dtype.tz}); they are "
                          "read as UTC, without the zone", SynthdataWarning, stacklevel=4)
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        if series.dtype != np.dtype("datetime64[ns]"):
            low, high = pd.Timestamp.min, pd.Timestamp.max
            outside = series.notna() & ((series < low) | (series > high))
            if outside.any():
                warnings.warn(f"{where}: column {name!r} holds timestamps outside the years 1677-2262, which "
                              "synthdata cannot represent; they are read as missing", SynthdataWarning, stacklevel=4)
                series = series.where(~outside)
            series = series.astype("datetime64[ns]")
        if out is None:
            out = frame.copy(deep=False)
        out[name] = series
    return frame if out is None else out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_parquet(path: Path, head: bytes, sample: _Sample | None, drop: tuple[str, ...] = ()) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = str(path)
    if not head.startswith(b"PAR1"):
        raise DataError(f"{where} is not a Parquet file (it does not start with PAR1); check the file")
    try:
        with _open(path) as handle:
            parquet = pq.ParquetFile(handle)
            names = list(parquet.schema_arrow.names)
            if not names:
                raise DataError(f"{where} holds no column; give a table with columns")
            _check_names(names, where)
            _drop_names(drop, names, where)
            kept = [field for field in parquet.schema_arrow if field.name not in drop]
            for field in kept:
                _check_flat(field, where)
            columns = [field.name for field in kept]
            rows_total = parquet.metadata.num_rows
            _check_row_count(rows_total, where)
            if sample is None:
                frame = _plain_arrow(parquet.read(columns=columns), where).to_pandas()
            else:
                rng = np.random.default_rng(sample.seed)
                chosen = np.sort(rng.choice(rows_total, size=min(sample.rows, rows_total), replace=False))
                pieces, start = [], 0
                for batch in parquet.iter_batches(batch_size=65_536, columns=columns):
                    stop = start + batch.num_rows
                    lo, hi = np.searchsorted(chosen, [start, stop])
                    if hi > lo:
                        pieces.append(batch.take(pa.array(chosen[lo:hi] - start)))
                    start = stop
                frame = _plain_arrow(pa.Table.from_batches(pieces, schema=pa.schema(kept)), where).to_pandas()
                frame.index = pd.Index(chosen)
            frame = _plain_datetimes(frame, where)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{where} is not a readable Parquet file ({_first_line(exc)}); check the file") from None
    return Table(
        frame=frame,
        source=where,
        format="parquet",
        sha256=sha256_file(path, what="input file", error=DataError),
        rows_total=rows_total,
        sampled=sample is not None,
        size_bytes=path.stat().st_size,
        memory_limit=sample.limit if sample else None,
    )
