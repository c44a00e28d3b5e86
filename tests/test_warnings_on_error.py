"""A command that fails still shows the warnings it gave before failing (issue 11).

On a 178-row table the release left 11 of 14 columns out with a warning each during the
private schema, then refused ("no column can be released: 'alcohol', 'flavanoids',
'hue'"): the warnings were lost with the error, so the refusal named 3 columns of 14 and
said nothing of the rest.
"""

from __future__ import annotations

import json
import warnings

import click
import pytest

from synthdata.cli import _warnings_to_stderr
from synthdata.errors import DataError, SynthdataWarning


def test_warnings_given_before_an_error_are_shown(capsys):
    with pytest.raises(DataError):
        with _warnings_to_stderr():
            warnings.warn("column 'proline' looks like an identifier", SynthdataWarning, stacklevel=1)
            raise DataError("no column can be released at this privacy budget")
    assert capsys.readouterr().err == "Warning: column 'proline' looks like an identifier\n"


def test_warnings_of_a_block_that_ends_normally_are_shown_once(capsys):
    with _warnings_to_stderr():
        warnings.warn("one", SynthdataWarning, stacklevel=1)
        click.echo("done")
    captured = capsys.readouterr()
    assert captured.out == "done\n" and captured.err == "Warning: one\n"


def test_inspect_refused_by_its_schema_still_shows_the_warning_it_gave(invoke, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("item,qty\n" + "".join(f"{'=SUM(A1)' if i == 3 else 'pen'},{i}\n" for i in range(20)))
    schema = tmp_path / "orders.schema.json"
    schema.write_text(json.dumps({"columns": [{"name": "product", "type": "categorical"}]}))
    result = invoke("inspect", path, "--schema", schema)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("Warning: column 'item' holds text starting with =")
    assert lines[-1].startswith("Error: ") and len(lines) == 2, lines
