"""Sampling a fitted model to a file, in chunks: memory stays flat however many rows.

The file is written beside its destination under a temporary name (``mkstemp``: never a
predictable name a link could be planted at) and renamed at the end, so an interrupted
run leaves no half-written CSV.

**Spreadsheet formulas.** A text cell (or a column name) that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is run as a formula by spreadsheet programs that
open the CSV, even when quoted (OWASP, "CSV injection"). By default such cells are written
as they are, so that ``pandas.read_csv`` and every other program reads back exactly the
values of the synthetic data, and a :class:`~synthdata.errors.SynthdataWarning` names each
column that holds one (never the value). With ``excel_safe=True`` they are written with a
leading ``'``, as OWASP advises. Text that is a plain number (``-3``, ``+1.5e3``) is no
formula and is left alone, and so is every non-text column. What triggers the warning is
the synthetic data and the column names, which the release publishes anyway.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from ..errors import SynthdataError, SynthdataWarning
from ..files import atomic_writer, printable

__all__ = ["FORMULA_PREFIXES", "excel_safe_text", "looks_like_formula", "undo_excel_safe", "write_csv"]

DEFAULT_CHUNK_ROWS = 50_000
#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_FORMULA_BYTES = tuple(np.uint8(ord(c)) for c in FORMULA_PREFIXES)
_LAST_FORMULA_BYTE = max(_FORMULA_BYTES)


def looks_like_formula(text: object) -> bool:
    """Whether ``text`` is a string a spreadsheet would run as a formula (a plain number is not)."""
    import re

    return (isinstance(text, str) and text[:1] in FORMULA_PREFIXES
            and re.fullmatch(_NUMBER[1:-1], text) is None)


def excel_safe_text(text: str) -> str:
    """``text`` with a leading ``'`` if it :func:`looks_like_formula`, else unchanged."""
    return "'" + text if looks_like_formula(text) else text


def undo_excel_safe(frame):
    """A DataFrame read from a CSV written with ``excel_safe``, with the ``'`` prefixes removed."""
    import pandas as pd

    def undo(text):
        return text[1:] if isinstance(text, str) and text[:1] == "'" and looks_like_formula(text[1:]) else text

    out = frame.rename(columns=undo)
    for name in out.columns:
        series = out[name]
        if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
            out[name] = series.map(undo)
    return out


def write_csv(model, n: int, path: str | os.PathLike, *, chunk_size: int = DEFAULT_CHUNK_ROWS,
              seed: int | None = None, progress: Callable[[int], None] | None = None,
              overwrite: bool = False, excel_safe: bool = False) -> Path:
    """Write ``n`` synthetic rows of ``model`` to ``path`` as CSV; returns the path.

    ``excel_safe``: prefix text cells and column names that a spreadsheet would run as a
    formula with ``'``; without it, warn once per such column (see the module docstring).
    """
    path = Path(path)
    if n < 1:
        raise SynthdataError(f"the number of rows must be at least 1, got {n}")
    if os.path.lexists(path) and not overwrite:
        raise SynthdataError(f"{printable(path)} already exists; choose another output file or remove it")
    if not path.parent.is_dir():
        raise SynthdataError(f"{printable(path.parent)} does not exist; create the folder first")
    guard = _FormulaGuard(excel_safe, _released_text(model))

    def write(handle, chunk: pa.Table, header: bool) -> int:
        chunk = guard.chunk(chunk)
        if header:  # as pandas writes it: Arrow would quote every column name
            line = io.StringIO()
            csv.writer(line, lineterminator="\n").writerow(guard.names(chunk.column_names))
            handle.write(line.getvalue().encode("utf-8"))
        # pyarrow's CSV writer is C++: pandas' to_csv alone would cap us near 100k rows/s.
        pa_csv.write_csv(chunk, handle, pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
        return chunk.num_rows

    try:
        # One chunk is written (mostly outside the GIL) while the next is generated.
        with atomic_writer(path, overwrite=overwrite) as handle, ThreadPoolExecutor(max_workers=1) as writer:
            pending = None
            for number, chunk in enumerate(model.sample_arrow_chunks(n, chunk_size=chunk_size, seed=seed)):
                if pending is not None:
                    done = pending.result()
                    if progress is not None:
                        progress(done)
                pending = writer.submit(write, handle, chunk, number == 0)
            if pending is not None:
                done = pending.result()
                if progress is not None:
                    progress(done)
    except FileExistsError:  # it appeared while the rows were being written
        raise SynthdataError(f"{printable(path)} already exists; choose another output file or remove it") from None
    guard.warn()
    return path


def _released_text(model) -> dict[str, bool]:
    """For each categorical column whose released categories the model lists: whether one may look
    like a formula. Those columns need no look at their cells (the categories are the values)."""
    known: dict[str, bool] = {}
    for code in getattr(getattr(model, "encoder_", None), "codes_", None) or ():
        if getattr(code, "kind", None) != "categorical":
            continue
        try:
            values = [point for level in code.levels for point in level["points"] if point is not None]
        except (AttributeError, KeyError, TypeError):
            continue
        if all(isinstance(value, (str, int, float)) for value in values):
            known[code.name] = any(looks_like_formula(value) for value in values)
    return known


class _FormulaGuard:
    """Finds (and with ``excel_safe``, prefixes) text that a spreadsheet would run as a formula.

    A categorical column is judged once from its released categories (``known``); other
    text columns by the first bytes of their cells (read off the Arrow buffers, no Python
    strings), so the writer keeps its speed. A column already found is not looked at
    again unless it must be rewritten.
    """

    def __init__(self, excel_safe: bool, known: dict[str, bool] | None = None) -> None:
        self.excel_safe = excel_safe
        self.known = dict(known or {})
        self.found: list[str] = [name for name, formula in self.known.items() if formula]  # in order
        self.found_names: list[str] = []  # column names that look like formulas

    def names(self, names: list[str]) -> list[str]:
        flagged = [name for name in names if looks_like_formula(name)]
        self.found_names = flagged
        return [excel_safe_text(name) for name in names] if self.excel_safe else names

    def chunk(self, chunk: pa.Table) -> pa.Table:
        for index, field in enumerate(chunk.schema):
            if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
                    or (pa.types.is_dictionary(field.type) and (pa.types.is_string(field.type.value_type)
                                                                or pa.types.is_large_string(field.type.value_type)))):
                continue
            if self.known.get(field.name) is False or (field.name in self.found and not self.excel_safe):
                continue
            column = chunk.column(index)
            if pa.types.is_dictionary(field.type):
                column = column.cast(field.type.value_type)
            pieces, changed = [], False
            for piece in column.chunks:
                mask = _formula_mask(piece)
                if mask is None:
                    pieces.append(piece)
                    continue
                if field.name not in self.found:
                    self.found.append(field.name)
                if not self.excel_safe:
                    break
                pieces.append(pc.if_else(pa.array(mask), pc.binary_join_element_wise("'", piece, ""), piece))
                changed = True
            if changed:
                chunk = chunk.set_column(index, pa.field(field.name, pieces[0].type),
                                         pa.chunked_array(pieces, type=pieces[0].type))
        return chunk

    def warn(self) -> None:
        if self.excel_safe:
            return
        for name in self.found_names:
            warnings.warn(f"the column name {printable(name)!r} starts with =, +, -, @, a tab or a carriage return, "
                          "which a spreadsheet may run as a formula; write the CSV with --excel-safe to prefix it "
                          "with '", SynthdataWarning, stacklevel=3)
        for name in self.found:
            warnings.warn(f"column {printable(name)!r} of the synthetic data can hold text starting with =, +, -, @, a "
                          "tab or a carriage return, which a spreadsheet may run as a formula; open the CSV as "
                          "text, or write it with --excel-safe to prefix such cells with '", SynthdataWarning,
                          stacklevel=3)


def _formula_mask(array: pa.Array) -> np.ndarray | None:
    """Per cell of a string array, whether it looks like a formula; None when none does.

    Reads each cell's first byte straight off the Arrow buffers (a formula's first
    character is ASCII, and no byte of a multi-byte UTF-8 character is), so a column
    without a candidate costs one gather; only candidates are looked at further.
    """
    data = array.buffers()[2]
    if len(array) == 0 or data is None or data.size == 0:
        return None
    wide = pa.types.is_large_string(array.type)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64 if wide else np.int32)
    offsets = offsets[array.offset:array.offset + len(array) + 1]
    # An empty or missing cell reads its neighbour's first byte (or the last byte): checked below.
    first = np.take(np.frombuffer(data, dtype=np.uint8), offsets[:-1], mode="clip")
    if not (first <= _LAST_FORMULA_BYTE).any():  # every cell starts with a letter (or a byte above '@')
        return None
    mask = first == _FORMULA_BYTES[0]  # a few byte compares: cheaper than a table lookup per cell
    for byte in _FORMULA_BYTES[1:]:
        mask |= first == byte
    if not mask.any():
        return None
    candidates = np.flatnonzero(mask)
    real = offsets[candidates + 1] > offsets[candidates]
    if array.null_count:
        real &= np.asarray(array.is_valid())[candidates]
    mask[candidates[~real]] = False
    candidates = candidates[real]
    if not candidates.size:
        return None
    numbers = np.asarray(pc.match_substring_regex(array.take(pa.array(candidates)), _NUMBER))
    mask[candidates[numbers]] = False
    return mask if mask.any() else None
