import json
import subprocess
import sys

from synthdata import __version__
from synthdata.schema import Schema

from .conftest import assert_one_line_error


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_inspect(invoke):
    result = invoke("--help")
    assert result.exit_code == 0
    assert "inspect" in result.output


def test_unknown_option_is_a_usage_error(invoke, tmp_path):
    result = invoke("inspect", tmp_path / "x.csv", "--no-such-option")
    assert result.exit_code == 2


def test_inspect_adult_types_and_missing(invoke, adult_train, tmp_path):
    out = tmp_path / "adult.schema.json"
    result = invoke("inspect", adult_train, "--schema-out", out)
    assert result.exit_code == 0, result.output
    schema = Schema.load(out)
    for name in ("age", "fnlwgt", "capital_gain", "capital_loss", "hours_per_week"):
        assert schema[name].type == "numerical"
        assert schema[name].integer
    for name in ("workclass", "education", "marital_status", "occupation", "relationship",
                 "race", "sex", "native_country", "income"):
        assert schema[name].type == "categorical"
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "1,836 (5.6%)" in lines["workclass"]
    assert "1,843 (5.7%)" in lines["occupation"]
    assert "583 (1.8%)" in lines["native_country"]
    assert lines["age"].split()[3] == "0"  # no missing ages
    # Nothing read off the data is declared public.
    assert schema.public_facts() == []
    assert ("age", "range") in schema.paid_facts()
    assert ("income", "category list") in schema.paid_facts()
    assert "paid from the privacy budget" in result.output


def test_inspect_penguins_reports_missing(invoke):
    result = invoke("inspect", "sample_datasets/penguins.csv")
    assert result.exit_code == 0, result.output
    sex = next(line for line in result.output.splitlines() if line.startswith("sex "))
    assert "11 (3.2%)" in sex


def test_schema_out_is_not_overwritten(invoke, tmp_path):
    out = tmp_path / "s.json"
    out.write_text("{}")
    result = invoke("inspect", "sample_datasets/penguins.csv", "--schema-out", out)
    assert_one_line_error(result, "already exists")
    assert out.read_text() == "{}"


def test_inspect_with_edited_schema(invoke, tmp_path):
    out = tmp_path / "s.json"
    assert invoke("inspect", "sample_datasets/penguins.csv", "--schema-out", out).exit_code == 0
    data = json.loads(out.read_text())
    for column in data["columns"]:
        if column["name"] == "body_mass_g":
            column["bounds"] = [2000, 7000]
        if column["name"] == "sex":
            column["categories"] = ["female", "male"]
    out.write_text(json.dumps(data))
    result = invoke("inspect", "sample_datasets/penguins.csv", "--schema", out)
    assert result.exit_code == 0, result.output
    assert "bounds [2000, 7000]: body_mass_g" in result.output
    assert "2 categories: sex" in result.output
    paid = result.output.split("paid from the privacy budget")[1].split("Declared public")[0]
    assert "body_mass_g" not in paid and "sex" not in paid


def test_schema_that_does_not_match(invoke, tmp_path):
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"columns": [{"name": "species", "type": "categorical"}]}))
    result = invoke("inspect", "sample_datasets/penguins.csv", "--schema", schema)
    assert_one_line_error(result, "'island' is in the data but not in the schema")


def test_drop_unknown_column(invoke):
    result = invoke("inspect", "sample_datasets/penguins.csv", "--drop", "nope")
    assert_one_line_error(result, "--drop nope: no such column")


def test_identifier_column_is_left_out_with_a_warning(invoke, tmp_path):
    path = tmp_path / "ids.csv"
    rows = "\n".join(f"P{i:05d},{i % 7},{'ab'[i % 2]}" for i in range(200))
    path.write_text("patient,visits,group\n" + rows + "\n")
    result = invoke("inspect", path)
    assert result.exit_code == 0, result.output
    assert "Warning: " in result.stderr and "'patient' looks like an identifier" in result.stderr
    assert "Left out: patient" in result.output


def test_entry_point_prints_no_traceback(tmp_path):
    """The installed entry point, not only the in-process runner."""
    missing = tmp_path / "nope.csv"
    proc = subprocess.run([sys.executable, "-m", "synthdata", "inspect", str(missing)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"Error: {missing}: no such file; check the path"]
