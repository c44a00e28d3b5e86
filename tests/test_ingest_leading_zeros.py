"""Whole numbers written with leading zeros (zip codes ``02134``, ids ``007``) keep their
zeros through ingest, and private inference reads such a column as a code (issue 11,
tables nobody tuned on): parsed as numbers, ``02134`` was ``2134`` before inference saw it.

Noisy decisions are tested with fresh CSPRNG noise: each test first asserts that its data
sits many noise standard deviations (the estimator's own σ) from the rule's threshold.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

from synthdata import read_table
from synthdata.privacy import GaussianRequest, PrivacyLedger
from synthdata.tabular.inference import schema_noise
from synthdata.tabular.inference import _CODE_SHARE, _MINORITY_MARGIN, PADDED, SHAPES, infer_schema_private, \
    shape_codes

MARGIN = 10.0


def _write(tmp_path, text: str):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def test_leading_zeros_are_kept_as_text_and_other_numbers_are_parsed_as_before(tmp_path):
    path = _write(tmp_path, "zip,id,amount,rate,zero\n"
                            "02134,007,12,0.5,0\n"
                            "98109,120,7,1.25,00\n"
                            "10001,3,0,0.05,0\n" + "60601,44,5,2.0,0\n" * 10)
    frame = read_table(path).frame
    assert frame["zip"].tolist()[:3] == ["02134", "98109", "10001"]
    assert frame["id"].tolist()[:3] == ["007", "120", "3"]
    # Numbers without leading zeros ("0", "00", "0.5") are numbers, as pandas reads them.
    assert frame["amount"].dtype.kind == "i" and frame["rate"].dtype.kind == "f" and frame["zero"].dtype.kind == "i"


def test_leading_zeros_survive_missing_markers(tmp_path):
    """A column with a declared marker (``?``) left holding only numbers was re-read as
    numbers, losing the zeros."""
    path = _write(tmp_path, "zip,n\n" + "02134,1\n?,2\n98109,3\n" * 5)
    frame = read_table(path, na_values=["?"]).frame
    assert frame["zip"].iloc[0] == "02134" and frame["zip"].isna().sum() == 5
    assert frame["n"].dtype.kind == "i"


def test_shape_of_zero_padded_numbers():
    shapes = [SHAPES[c] for c in shape_codes(pd.Series(["02134", "007", "0", "00", "0.5", "-07", "98109", "10"]))]
    assert shapes[:2] == ["leading-zeros", "leading-zeros"]
    assert shapes[2:4] == ["zero", "zero"] and shapes[5] == "integer" and shapes[7] == "integer"
    assert "leading-zeros" not in shapes[2:]


def test_zip_codes_with_leading_zeros_are_a_code_column_and_a_stray_padded_number_is_not(tmp_path):
    """Zip codes, 20% of them starting with 0, are categorical and come back with their
    zeros; a count column where 3 cells were typed ``05`` stays a number (read as 5)."""
    rng = np.random.default_rng(11)
    n = 6_000
    zips = np.where(rng.random(n) < 0.2, rng.choice(["02134", "01002", "07030"], n),
                    rng.choice(["98109", "10001", "60601", "94110"], n))
    count = rng.integers(1, 60, n).astype(str).astype(object)
    count[:3] = "05"
    path = tmp_path / "z.csv"
    pd.DataFrame({"zip": zips, "count": count, "x": rng.normal(size=n)}).to_csv(path, index=False)
    frame = read_table(path).frame
    assert (frame["zip"].to_numpy() == zips).all()
    ledger = PrivacyLedger(epsilon=1.0, delta=1e-6)  # fresh CSPRNG noise
    ledger.plan(gaussians={"schema": GaussianRequest(sensitivity=1.0, share=1.0)})
    sigma = schema_noise(ledger.planned_multiplier("schema"), frame.shape[1])
    padded = int((shape_codes(frame["zip"]) == PADDED).sum())
    threshold = max(_MINORITY_MARGIN * sigma, _CODE_SHARE * n)
    assert padded - MARGIN * sigma > threshold > 3 + MARGIN * sigma
    schema = infer_schema_private(frame, ledger=ledger)
    assert schema["zip"].type == "categorical"
    assert schema["count"].type == "numerical" and schema["count"].integer
    conformed = schema.conform(frame)
    assert set(conformed["zip"].astype(str)) == set(zips)
    assert conformed["count"].iloc[0] == 5


def test_the_audit_reads_a_synthetic_code_column_as_text(tmp_path):
    """The audit read synthetic.csv with pandas' type guessing, so a released ``02134`` came
    back as 2134 and was scored as a value the real column never holds (zip TVD 0.27 on an
    8,000-row table whose zip codes were emitted exactly)."""
    from synthdata.ingest import from_frame
    from synthdata.tabular.modality import TableModality

    (tmp_path / "synthetic.csv").write_text("zip,n\n02134,1\n98109,2\n")
    modality = TableModality(from_frame(pd.DataFrame({"zip": ["02134"] * 10, "n": range(10)})))
    frame = modality.read_synthetic(tmp_path, ("zip",))
    assert frame["zip"].tolist() == ["02134", "98109"] and frame["n"].dtype.kind == "i"


def test_one_row_with_leading_zeros_changes_no_other_cells_shape(tmp_path):
    """Neighbour check of ingest + shape classes: a table and the same table plus one row
    whose cell has leading zeros. The column turns to text on the second; every other
    cell must keep its shape class (the file's ``1e3`` or ``5.`` read as text would not)."""
    cells = ["1e3", "5.", "1.50", "-0", "12345", "-7", "0.25", " 8 ", "1e-05", "123456789012345678", ""]
    for decimal, extra in ((".", []), (",", ["3,5", "1.000,25"])):
        rows = [c.replace(".", ",") if decimal == "," and c in ("1.50", "0.25") else c for c in cells] + extra
        base = "x;y\n" + "".join(f"{c};a\n" for c in rows)
        options = dict(delimiter=";", decimal=decimal, thousands="." if decimal == "," else None)
        d = read_table(_write(tmp_path, base), **options).frame
        d_plus = read_table(_write(tmp_path, base + "007;a\n"), **options).frame
        assert d["x"].dtype.kind in "if" and d_plus["x"].dtype == object  # the row did turn the column to text
        before, after = shape_codes(d["x"]), shape_codes(d_plus["x"])
        assert len(after) == len(before) + 1 and after[-1] == PADDED
        assert [SHAPES[c] for c in after[:-1]] == [SHAPES[c] for c in before]


#: Number cells per declared decimal mark and thousands separator: what pandas' CSV parser
#: reads as numbers in a column of numbers under those marks (``1,5`` is 1.5 with a decimal
#: comma, ``1.234`` is 1234 with a '.' separator, ``1,5`` is 15 with a ',' separator).
_MARKED = [
    (".", None, ["1e3", "5.", "1E3", "2.50e1", "-0", "12345", "0.25", " 8 ", ".5", "1e-05", "", "7"]),
    (",", None, ["1,5", "-1,5", "+2,25", ",5", "3,", "1,5e3", "1e3", " 0,2 ", "0,5", "12345", "-0", "", "7"]),
    (",", ".", ["1,5", "1.234,5", "1.234", "1.5", "12.345.678", "0.123", "1234.", "1.,5", "2,5E-1", "-1.000", "",
                "7"]),
    (",", ".", ["1..234", "1.234", "-1.000", "1234.", "123456.789.012.345.678", "7"]),  # whole numbers only
    (",", " ", ["1,5", "1 234", "1 234,5", "12 345 678", "", "7"]),
    (".", ",", ["1,5", "1,234.5", "1,5.", "0,5", "12,345,678", "1,5e3", "1.25", "", "7"]),
    (".", "'", ["1'234", "1'234.5", "0.5", "", "7"]),
]


@pytest.mark.parametrize(("decimal", "thousands", "cells"), _MARKED)
def test_one_text_row_changes_no_number_cells_shape(tmp_path, decimal, thousands, cells):
    """Neighbour check: a column of numbers, and the same plus one row of text, which turns
    the column to text as read. Every other cell keeps the class its number has, under the
    declared decimal mark and thousands separator too (pandas' ``to_numeric`` knows neither:
    read as text, a decimal comma's ``1,5`` was text, where the number 1.5 is a half)."""
    cells = cells + ["7"] * (12 - len(cells))
    base = "x;y\n" + "".join(f"{c};a\n" for c in cells)
    options = dict(delimiter=";", decimal=decimal, thousands=thousands)
    d = read_table(_write(tmp_path, base), **options).frame
    d_plus = read_table(_write(tmp_path, base + "abc;a\n"), **options).frame
    assert d["x"].dtype.kind in "if" and d_plus["x"].dtype == object  # the row did turn the column to text
    before, after = shape_codes(d["x"]), shape_codes(d_plus["x"])
    assert [SHAPES[c] for c in after[:-1]] == [SHAPES[c] for c in before] and SHAPES[after[-1]] == "text"
    # and the schema reads them as the same numbers: conform loses none of them
    from synthdata.schema import Column, Schema

    schema = Schema(columns=(Column(name="x", type="numerical"), Column(name="y", type="categorical")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'abc' does not fit: read as missing, with a warning
        numbers = schema.conform(d_plus)["x"]
    assert numbers.iloc[:-1].equals(d["x"].astype(float).rename(numbers.name)) and pd.isna(numbers.iloc[-1])


def test_one_spaced_missing_marker_row_changes_no_number_cells_shape(tmp_path):
    """The same through the declared missing markers: `` ?`` (spaces around it) turns the
    column to text as read, and the marker step reads the rest back as numbers, which it
    did with '.' only (a decimal comma's ``1,5`` stayed text, the column with it)."""
    cells = ["1,5", "2,25", "1.234,5", "3", "0,2", "", "7", "8", "9", "10", "11"]
    base = "x;y\n" + "".join(f"{c};a\n" for c in cells)
    options = dict(delimiter=";", decimal=",", thousands=".", na_values=["?"])
    d = read_table(_write(tmp_path, base), **options).frame
    d_plus = read_table(_write(tmp_path, base + " ? ;a\n"), **options).frame
    assert d["x"].dtype.kind == "f" and d_plus["x"].dtype.kind == "f"
    assert d_plus["x"].iloc[:-1].equals(d["x"]) and pd.isna(d_plus["x"].iloc[-1])


_PADDED_CELLS = ["007", " 007", "007 ", '"007"', '" 0001 "', "02134"]
_PLAIN_CELLS = ["0.5", "-0", "00", "0", "10", "1007", "-07", "+07", "0e5", '"0.50"', "100"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_the_raw_text_scan_finds_every_leading_zero_cell_and_reads_as_the_exact_check(tmp_path, monkeypatch,
                                                                                       delimiter, where):
    """The reader looks for leading zeros in the raw text before reading numeric columns
    again as text: it must find the column wherever the exact check finds such a cell
    (quoted, spaced, first or last field, the file's last line without a line break), and
    give the same frame as always reading every numeric column again; on numbers without
    leading zeros (0.5, -0, 00, 1007, with a decimal comma 0,5) it finds none, so the
    re-read is skipped."""
    from synthdata import ingest

    position = {"first": 0, "middle": 1, "last": 2}[where]

    def table(cell: str) -> str:
        fields = ["1", "2", "3"]
        fields[position] = cell
        rows = [delimiter.join(fields)] + [delimiter.join(["3", "4", "5"])] * 10
        return delimiter.join(["a", "b", "c"]) + "\n" + "\n".join(rows[::-1])  # the cell on the last line, no \n

    cases = [(cell, ".", True) for cell in _PADDED_CELLS] + [(cell, ".", False) for cell in _PLAIN_CELLS]
    if delimiter != ",":
        cases += [("0,5", ",", False), ("007", ",", True)]
    scan = ingest._leading_zero_columns
    for cell, decimal, padded in cases:
        text = table(cell)
        found = scan(io.StringIO(text), delimiter)
        if '"' in text:
            assert found is None if padded else found == set(), (cell, decimal)  # quoted: any column, if any
        else:
            assert found == ({position} if padded else set()), (cell, decimal)
        path = _write(tmp_path, text)
        fast = read_table(path, delimiter=delimiter, decimal=decimal).frame
        assert (fast["abc"[position]].dtype == object) == padded, (cell, decimal)
        monkeypatch.setattr(ingest, "_leading_zero_columns", lambda buffer, delimiter: None)
        slow = read_table(path, delimiter=delimiter, decimal=decimal).frame
        monkeypatch.setattr(ingest, "_leading_zero_columns", scan)
        pd.testing.assert_frame_equal(fast, slow)


def test_the_raw_text_scan_reads_in_pieces_cut_after_line_breaks(monkeypatch):
    """Pieces of a few characters: a cell at a piece's start or end is still found, in its
    column, and a digit run is never cut in two (``1007`` split as ``1`` + ``007`` would be
    a false hit, ``0`` + ``07`` a miss); a quote in a later piece makes any column a suspect
    (a quoted field may hold the delimiter)."""
    from synthdata import ingest

    monkeypatch.setattr(ingest, "_SCAN_CHARS", 3)
    scan = ingest._leading_zero_columns
    assert scan(io.StringIO("a,b\n1,1007\n5,100\n"), ",") == set()
    assert scan(io.StringIO("a,b\n1,1007\n007,100\n"), ",") == {0}
    assert scan(io.StringIO("a,b\n1,1007\n5,0007"), ",") == {1}
    assert scan(io.StringIO('a,b\n1,007\n5,"x,y"\n'), ",") is None
    assert scan(io.StringIO('a,b\n1,7\n5,"x,y"\n6,"08"\n'), ",") is None
    assert scan(io.StringIO('a,b\n1,7\n5,"x,y"\n6,"8"\n'), ",") == set()


def test_only_the_numeric_columns_the_scan_finds_are_read_again(tmp_path, monkeypatch):
    """Zeros in one numeric column: only that column is read again as text (a text column's
    ``Apt 05`` is a hit too, but is no number); the frame is the one of reading every
    numeric column again."""
    from synthdata import ingest

    path = _write(tmp_path, "a,zip,c,note\n" + "1,02134,2.5,Apt 05\n" + "3,98109,4.5,x\n" * 12)
    read = []
    real = pd.read_csv

    def spy(*args, **kwargs):
        read.append(kwargs.get("usecols"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", spy)
    fast = read_table(path).frame
    assert read == [None, ["zip"]]  # the parse, then the one column
    monkeypatch.setattr(ingest, "_leading_zero_columns", lambda buffer, delimiter: None)
    slow = read_table(path).frame
    assert read[-1] == ["a", "zip", "c"]
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["zip"].tolist()[:2] == ["02134", "98109"] and fast["a"].dtype.kind == "i"
