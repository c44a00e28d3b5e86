"""A '?' (or '-', '--', '.') in a table read without --na-values gets a hint (issue 11).

Public tables mark missing values with '?' (UCI) or '-'; read as values they become a
category of their own or keep a numeric column from being numbers, silently. The
commands that read a table say which columns hold such cells and how to declare them.
"""

from __future__ import annotations

import warnings

import pandas as pd

from synthdata.cli import _warn_missing_markers
from synthdata.errors import SynthdataWarning
from synthdata.schema import Column, Schema


def _messy(path):
    rows = [f"{20 + i % 50},{'?' if i % 7 == 0 else ['Private', 'State'][i % 2]},{'?' if i % 11 == 0 else i % 30}"
            for i in range(200)]
    path.write_text("age,work,hours\n" + "\n".join(rows) + "\n")
    return path


def test_inspect_names_the_columns_holding_question_marks_and_the_option(invoke, tmp_path):
    result = invoke("inspect", _messy(tmp_path / "survey.csv"))
    assert result.exit_code == 0, result.output
    hints = [line for line in result.stderr.splitlines() if "--na-values '?'" in line]
    assert len(hints) == 1, result.stderr  # one line for the marker, naming both columns
    assert "'work'" in hints[0] and "'hours'" in hints[0] and "'age'" not in hints[0]


def test_no_hint_once_the_marker_is_declared(invoke, tmp_path):
    result = invoke("inspect", _messy(tmp_path / "survey.csv"), "--na-values", "?")
    assert result.exit_code == 0, result.output
    assert "--na-values" not in result.stderr


def test_a_marker_the_schema_declares_is_not_hinted_and_plain_text_is_not_flagged():
    frame = pd.DataFrame({"work": ["Private", " ?", "State"], "grade": ["A-", "B", "C."],
                          "sign": ["-", "+", "-"], "n": [1, 2, 3]})
    schema = Schema(columns=(Column("work", "categorical", missing_values=("?",)), Column("grade", "categorical"),
                             Column("sign", "categorical"), Column("n", "numerical")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_missing_markers(frame, schema)
    messages = [str(w.message) for w in caught if issubclass(w.category, SynthdataWarning)]
    assert len(messages) == 1, messages  # only '-' in 'sign': '?' is declared, 'A-' and 'C.' are values
    assert "'sign'" in messages[0] and "--na-values '-'" in messages[0]
