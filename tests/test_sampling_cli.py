"""`synthdata fit` and `synthdata sample` from the command line.

The CLI trains with the model's default generator_steps (no option for it), so the
table is small and narrow: about 500 rows, four short columns. One fit serves the module.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from synthdata.cli import cli
from synthdata.errors import SynthdataError, SynthdataWarning
from synthdata.tabular.sampling import write_csv

from .conftest import assert_one_line_error

ROWS = 500


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write_table(path, n: int = ROWS, seed: int = 0):
    rng = np.random.default_rng(seed)
    score = np.round(rng.normal(50, 10, n), 1)
    score[rng.random(n) < 0.1] = np.nan
    pd.DataFrame({
        # Five ages of about 100 rows each: every one far above the release threshold (about
        # 44 rows at epsilon 5), so no run warns that some are too rare (ten ages of 40-59
        # rows sat on it, and the warning came or not with the noise).
        "age": rng.integers(20, 25, n),
        "city": rng.choice(["Oslo", "Lima", "Pune"], n),
        "smoker": rng.random(n) < 0.3,
        "score": score,
    }).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _write_table(tmp_path_factory.mktemp("data") / "people.csv")


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """(result of `synthdata fit`, model directory), fitted once for the module."""
    model_dir = tmp_path_factory.mktemp("models") / "model"
    result = CliRunner().invoke(cli, ["fit", str(data), "--epsilon", "5", "--model-out", str(model_dir),
                                      "--seed", "0"])
    return result, model_dir


def test_fit_then_sample(fitted, invoke, tmp_path):
    result, model_dir = fitted
    assert result.exit_code == 0, result.output
    # The progress bar shows the epoch, the losses and epsilon spent, and nothing else is said.
    assert "epoch=" in result.stderr and "eps=" in result.stderr and "loss=" in result.stderr
    assert "Warning" not in result.stderr
    assert "epsilon spent" in result.output and str(model_dir) in result.output
    assert (model_dir / "model.json").is_file() and (model_dir / "generator.pt").is_file()
    assert not any(p.name.endswith(".partial") for p in model_dir.parent.iterdir())

    out = tmp_path / "out.csv"
    result = invoke("sample", model_dir, "-n", 1234, "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "1,234" in result.output
    synthetic = pd.read_csv(out)
    assert len(synthetic) == 1234
    assert list(synthetic.columns) == ["age", "city", "smoker", "score"]
    assert set(synthetic["city"].dropna()) <= {"Oslo", "Lima", "Pune"}
    assert synthetic["smoker"].dtype == bool
    assert pd.api.types.is_integer_dtype(synthetic["age"])
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_sample_is_reproducible_with_a_seed(fitted, invoke, tmp_path):
    _, model_dir = fitted
    for name in ("a.csv", "b.csv"):
        assert invoke("sample", model_dir, "-n", 300, "-o", tmp_path / name, "--seed", 5, "--quiet").exit_code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_fit_refuses_an_existing_model_out(data, invoke, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "keep.txt").write_text("mine")
    result = invoke("fit", data, "--epsilon", 5, "--model-out", model_dir, "--quiet")
    assert_one_line_error(result, "already exists")
    assert [p.name for p in model_dir.iterdir()] == ["keep.txt"]


def test_sample_refuses_an_existing_output(fitted, invoke, tmp_path):
    _, model_dir = fitted
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    result = invoke("sample", model_dir, "-n", 10, "-o", out, "--quiet")
    assert_one_line_error(result, "already exists")
    assert out.read_text() == "precious\n"


def test_sample_refuses_a_directory_that_is_not_a_model(invoke, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    result = invoke("sample", tmp_path, "-n", 10, "-o", tmp_path / "out.csv", "--quiet")
    assert_one_line_error(result, "not a saved synthdata model")
    assert not (tmp_path / "out.csv").exists()


def test_sample_refuses_a_missing_model(invoke, tmp_path):
    result = invoke("sample", tmp_path / "nowhere", "-n", 10, "-o", tmp_path / "out.csv", "--quiet")
    assert_one_line_error(result, "nowhere")


def test_sample_refuses_zero_rows(fitted, invoke, tmp_path):
    _, model_dir = fitted
    result = invoke("sample", model_dir, "-n", 0, "-o", tmp_path / "out.csv", "--quiet")
    assert result.exit_code == 2, result.output  # a usage error: click adds its usage lines
    assert "Error: " in result.stderr and "--rows" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("--epsilon", "0", "epsilon"),
    ("--epsilon", "-1", "epsilon"),
    ("--delta", "2", "delta"),
])
def test_fit_refuses_bad_privacy_parameters(data, invoke, tmp_path, option, value, fragment):
    args = ["fit", data, "--epsilon", "5", "--model-out", tmp_path / "model", "--quiet"]
    if option == "--epsilon":
        args[3] = value
    else:
        args += [option, value]
    result = invoke(*args)
    assert result.exit_code in (1, 2), result.output
    assert_one_line_error(result, fragment, exit_code=result.exit_code)
    assert "Traceback" not in result.output
    assert not (tmp_path / "model").exists()


# --------------------------------------------------------------------------- spreadsheet formulas (issue 17)


class _Rows:
    """A stand-in model: sample_arrow_chunks yields fixed Arrow chunks (the writer is what is tested)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def sample_arrow_chunks(self, n, *, chunk_size, seed=None):
        for start in range(0, n, chunk_size):
            yield self.table.slice(start % self.table.num_rows, min(chunk_size, n - start))


def _formula_rows() -> pa.Table:
    return pa.table({
        "=cmd": pa.array(["=1+1", "ok", "-x", "@SUM(A1)", "\tt", "\rr", "+y", "-3", "+1.5e3", None] * 3),
        "city": pa.array(["Oslo", "Lima"] * 15),
        "delta": pa.array([-3, 4, -5] * 10, type=pa.int64()),
        "code": pa.array(["-3", "-4.5", "=x"] * 10).dictionary_encode(),
    })


def test_formula_text_is_written_as_is_with_one_warning_per_column_naming_no_value(tmp_path):
    out = tmp_path / "out.csv"
    with pytest.warns(SynthdataWarning) as caught:
        write_csv(_Rows(_formula_rows()), 30, out, chunk_size=7)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3, messages  # the name '=cmd', and the columns '=cmd' and 'code'
    assert sum("column name '=cmd'" in m for m in messages) == 1
    assert sum(m.startswith("column '=cmd'") for m in messages) == 1
    assert sum(m.startswith("column 'code'") for m in messages) == 1
    assert not any("city" in m or "delta" in m or "=1+1" in m or "SUM" in m for m in messages)
    back = pd.read_csv(out, keep_default_na=False)
    assert list(back.columns) == ["=cmd", "city", "delta", "code"]
    assert back["=cmd"].tolist()[:9] == ["=1+1", "ok", "-x", "@SUM(A1)", "\tt", "\rr", "+y", "-3", "+1.5e3"]


def test_excel_safe_prefixes_formula_text_and_names_only(tmp_path):
    out = tmp_path / "out.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about once the cells are safe
        write_csv(_Rows(_formula_rows()), 30, out, chunk_size=7, excel_safe=True)
    back = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert list(back.columns) == ["'=cmd", "city", "delta", "code"]
    assert back["'=cmd"].tolist()[:10] == ["'=1+1", "ok", "'-x", "'@SUM(A1)", "'\tt", "'\rr", "'+y", "-3", "+1.5e3",
                                           ""]
    assert back["delta"].tolist()[:3] == ["-3", "4", "-5"]  # numbers are no formulas
    assert back["code"].tolist()[:3] == ["-3", "-4.5", "'=x"]  # nor is text that is a plain number
    assert set(back["city"]) == {"Oslo", "Lima"}


def test_undo_excel_safe_reads_back_the_values(tmp_path):
    from synthdata.tabular.sampling import undo_excel_safe

    out = tmp_path / "out.csv"
    write_csv(_Rows(_formula_rows()), 30, out, excel_safe=True)
    back = undo_excel_safe(pd.read_csv(out, keep_default_na=False, dtype=str))
    assert list(back.columns) == ["=cmd", "city", "delta", "code"]
    assert back["=cmd"].tolist()[:4] == ["=1+1", "ok", "-x", "@SUM(A1)"]


def test_write_csv_never_writes_through_a_planted_link(tmp_path):
    """The old temporary name was predictable (.out.csv.partial): a link there was written through."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".out.csv.partial").symlink_to(victim)
    with pytest.warns(SynthdataWarning):
        write_csv(_Rows(_formula_rows()), 30, tmp_path / "out.csv")
    assert victim.read_text() == "precious"
    assert len(pd.read_csv(tmp_path / "out.csv")) == 30
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(SynthdataError, match="already exists"):
        write_csv(_Rows(_formula_rows()), 30, dangling)
    assert not (tmp_path / "nowhere").exists()


def test_released_categories_decide_the_warning_without_reading_cells(tmp_path):
    """A categorical column is judged from its released categories (public: the model's levels)."""
    from types import SimpleNamespace

    rows = _Rows(pa.table({"safe": pa.array(["a", "b"] * 15), "risky": pa.array(["x", "y"] * 14 + ["=1", "x"])}))
    rows.encoder_ = SimpleNamespace(codes_=[
        SimpleNamespace(name="safe", kind="categorical", levels=[{"points": ["a"]}, {"points": ["b"]}]),
        SimpleNamespace(name="risky", kind="categorical", levels=[{"points": ["x"]}, {"points": ["y"]},
                                                                  {"points": ["=1"]}, {"points": [None]}]),
    ])
    with pytest.warns(SynthdataWarning) as caught:
        write_csv(rows, 30, tmp_path / "a.csv", chunk_size=10)
    assert [str(w.message).split(" of ")[0] for w in caught] == ["column 'risky'"]
    write_csv(rows, 30, tmp_path / "b.csv", chunk_size=10, excel_safe=True)
    back = pd.read_csv(tmp_path / "b.csv", dtype=str)
    assert back["risky"].tolist()[-2:] == ["'=1", "x"] and set(back["safe"]) == {"a", "b"}
