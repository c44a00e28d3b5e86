import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthdata import Column, DataError, Excluded, IdentifierColumnWarning, Schema, SchemaError, infer_schema
from synthdata.errors import SynthdataWarning


def _frame(n=60):
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "record_id": np.arange(1000, 1000 + n),
        "age": rng.integers(18, 90, n),
        "weight": rng.normal(70, 10, n).round(1),
        "smoker": [bool(i % 3 == 0) for i in range(n)],
        "visit": [f"2021-0{1 + i % 9}-1{i % 10}" for i in range(n)],
        "city": [["Oslo", "Lima", "Pune"][i % 3] for i in range(n)],
        "note": [f"free text {i} about patient" for i in range(n)],
    })


def test_inference_types_and_exclusions():
    with pytest.warns(IdentifierColumnWarning) as caught:
        schema = infer_schema(_frame(), source="patients.csv")
    assert {str(w.message).split("'")[1] for w in caught} == {"record_id", "note"}
    assert "patients.csv: column 'record_id' looks like an identifier" in str(caught[0].message)
    assert schema.names == ["age", "weight", "smoker", "visit", "city"]
    assert [e.name for e in schema.excluded] == ["record_id", "note"]
    assert schema["age"].type == "numerical" and schema["age"].integer
    assert schema["weight"].type == "numerical" and not schema["weight"].integer
    assert schema["smoker"].type == "boolean"
    assert schema["visit"].type == "datetime" and schema["visit"].datetime_format == "%Y-%m-%d"
    assert schema["city"].type == "categorical"


def test_no_data_derived_fact_is_public():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentifierColumnWarning)
        schema = infer_schema(_frame())
    assert all(c.bounds is None and c.categories is None for c in schema)
    assert schema.public_facts() == [("smoker", "values true/false")]
    assert ("age", "range") in schema.paid_facts() and ("city", "category list") in schema.paid_facts()


def test_distinct_measurements_are_not_identifiers():
    """Continuous values are distinct on nearly every row; they are data, not ids."""
    frame = pd.DataFrame({"income": np.random.default_rng(1).integers(10_000, 900_000, 100),
                          "g": ["a", "b"] * 50})
    schema = infer_schema(frame)
    assert schema["income"].type == "numerical" and not schema.excluded


def test_integer_valued_floats_stay_integers():
    frame = pd.DataFrame({"n": [1.0, 2.0, np.nan, 4.0] * 5, "g": ["a", "b"] * 10})
    assert infer_schema(frame)["n"].integer


def test_booleans_with_missing_values():
    frame = pd.DataFrame({"b": [True, False, None, True] * 5, "g": ["a", "b"] * 10})
    assert infer_schema(frame)["b"].type == "boolean"


def test_constant_with_missing_values_is_informative():
    frame = pd.DataFrame({"flag": ["Y", None] * 10, "g": ["a", "b", "c", "d"] * 5})
    assert infer_schema(frame)["flag"].type == "categorical"


def test_constant_and_empty_columns_are_left_out_with_a_warning():
    """Nothing to learn from them: a warning, not a refusal (issue 11)."""
    frame = pd.DataFrame({"country": ["France"] * 30, "empty": [None] * 30, "n": [1, 2, 3] * 10})
    with pytest.warns(SynthdataWarning) as caught:
        schema = infer_schema(frame)
    assert schema.names == ["n"]
    assert {e.name: e.reason for e in schema.excluded} == {"country": "holds the same value in every row",
                                                           "empty": "is missing in every row"}
    assert len(caught) == 2 and "public constant" in str(caught[0].message)


def test_declared_constants_lattice_and_markers_round_trip():
    schema = Schema(columns=(
        Column("unit", "numerical", bounds=(5, 5)),
        Column("site", "categorical", categories=("A",)),
        Column("mass", "numerical", integer=True, step=25, missing_values=("?", "-1")),
        Column("age", "numerical", step=0.5),
        Column("city", "categorical"),
    ))
    assert [c.constant for c in schema] == [True, True, False, False, False]
    data = json.loads(schema.to_json())
    assert data["columns"][2] == {"name": "mass", "type": "numerical", "integer": True, "bounds": None, "step": 25,
                                  "missing_values": ["?", "-1"]}
    assert data["columns"][3]["step"] == 0.5 and "missing_values" not in data["columns"][3]
    assert Schema.from_json(schema.to_json()) == schema
    assert ("mass", "step 25") in schema.public_facts()


def test_a_schema_without_the_new_keys_still_loads():
    old = {"format": "synthdata-schema/1", "columns": [
        {"name": "age", "type": "numerical", "integer": True, "bounds": None},
        {"name": "city", "type": "categorical", "categories": None}]}
    schema = Schema.from_dict(old)
    assert schema["age"].step is None and schema["age"].missing_values is None


def test_missing_markers_are_read_as_missing():
    frame = pd.DataFrame({"mass": ["3750", "?", "-1", "4000"], "city": ["Oslo", "?", "Lima", " ? "],
                          "code": [1, -1, 2, -1]})
    schema = Schema(columns=(Column("mass", "numerical", integer=True, missing_values=("?", "-1")),
                             Column("city", "categorical", missing_values=("?",)),
                             Column("code", "numerical", integer=True, missing_values=("-1",))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # markers are not values that "do not fit"
        out = schema.conform(frame)
    assert out["mass"].tolist()[0] == 3750 and out["mass"].isna().tolist() == [False, True, True, False]
    assert out["city"].isna().tolist() == [False, True, False, True]
    assert out["code"].isna().tolist() == [False, True, False, True]
    schema.check_frame(frame)  # "?" in a numerical column is a declared marker, not a type error


def test_only_identifiers_left_is_an_error():
    with pytest.raises(DataError, match="no column is left"), pytest.warns(IdentifierColumnWarning):
        infer_schema(pd.DataFrame({"id": range(50)}))


@pytest.mark.parametrize("column, message", [
    ({"name": "a", "type": "number"}, "unknown type 'number'"),
    ({"name": "a", "type": "numerical", "bounds": [5, 1]}, "need min <= max"),
    ({"name": "a", "type": "numerical", "step": 0}, "'step' must be a positive number"),
    ({"name": "a", "type": "numerical", "step": "1"}, "'step' must be a positive number"),
    ({"name": "a", "type": "numerical", "integer": True, "step": 0.5}, "step must be a whole number"),
    ({"name": "a", "type": "categorical", "step": 1}, "'step' applies to numerical columns only"),
    ({"name": "a", "type": "categorical", "missing_values": "?"}, "'missing_values' must be a list"),
    ({"name": "a", "type": "categorical", "missing_values": [-1]}, "must be texts"),
    ({"name": "a", "type": "numerical", "bounds": [0, "x"]}, "two finite numbers"),
    ({"name": "a", "type": "categorical", "categories": ["x", "x"]}, "listed twice"),
    ({"name": "a", "type": "categorical", "categories": []}, "category list is empty"),
    ({"name": "a", "type": "categorical", "bounds": [0, 1]}, "numerical and datetime columns only"),
    ({"name": "a", "type": "numerical", "bound": [0, 1]}, "unknown key 'bound'"),
    ({"name": "a", "type": "datetime", "bounds": ["2020-01-01", "someday"]}, "two dates"),
    ({"type": "numerical"}, "missing key 'name'"),
])
def test_invalid_schema_json(column, message):
    with pytest.raises(SchemaError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Schema.from_json(json.dumps({"columns": [column]}))


def test_schema_json_errors_name_the_place(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"columns": [\n  {"name": "a",}\n]}')
    with pytest.raises(SchemaError, match=r"s.json, line 2, column \d+: invalid JSON"):
        Schema.load(path)
    with pytest.raises(SchemaError, match="no such schema file"):
        Schema.load(tmp_path / "missing.json")


def test_schema_is_immutable():
    schema = Schema(columns=(Column(name="a", type="numerical"),))
    with pytest.raises(AttributeError):
        schema.columns = ()
    with pytest.raises(AttributeError):
        schema["a"].bounds = (0, 1)


def test_check_frame_reports_mismatches():
    frame = pd.DataFrame({"age": [1, 2] * 10, "city": ["x", "y"] * 10})
    schema = Schema(columns=(Column(name="age", type="numerical"), Column(name="city", type="numerical")))
    with pytest.raises(SchemaError, match="'city' is numerical in the schema but holds 'x'"):
        schema.check_frame(frame)
    schema = Schema(columns=(Column(name="age", type="numerical"),), excluded=(Excluded("city", "steward"),))
    schema.check_frame(frame)  # excluded columns may be present
    with pytest.raises(SchemaError, match="'height' of the schema is not in the data"):
        Schema(columns=(Column(name="height", type="numerical"),)).check_frame(frame)


_name = st.text(min_size=1, max_size=10).filter(lambda s: s.strip() != "")
_number = st.floats(-1e9, 1e9, allow_nan=False)


@st.composite
def _columns(draw):
    name = draw(_name)
    kind = draw(st.sampled_from(["numerical", "categorical", "boolean", "datetime"]))
    if kind == "numerical":
        low, high = sorted(draw(st.lists(_number, min_size=2, max_size=2, unique=True)))
        bounds = draw(st.sampled_from([None, (low, high)]))
        integer = draw(st.booleans())
        step = draw(st.sampled_from([None, 1, 25] if integer else [None, 0.5, 0.01, 25]))
        markers = draw(st.one_of(st.none(), st.lists(st.sampled_from(["?", "-1", "NA", "n/a"]), min_size=1,
                                                     max_size=3, unique=True)))
        return Column(name=name, type=kind, integer=integer, bounds=bounds, step=step, missing_values=markers)
    if kind == "categorical":
        categories = draw(st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=5), st.integers()),
                                                         min_size=1, max_size=6, unique=True)))
        return Column(name=name, type=kind, categories=categories)
    if kind == "datetime":
        bounds = draw(st.sampled_from([None, ("2020-01-01", "2021-06-30")]))
        return Column(name=name, type=kind, datetime_format="%Y-%m-%d", bounds=bounds)
    return Column(name=name, type=kind)


@given(st.lists(_columns(), min_size=1, max_size=6, unique_by=lambda c: c.name))
def test_json_round_trip(columns):
    schema = Schema(columns=tuple(columns), excluded=(Excluded("zz-id-not-a-column-name-drawn", "id"),)
                    if all(c.name != "zz-id-not-a-column-name-drawn" for c in columns) else ())
    assert Schema.from_json(schema.to_json()) == schema


def test_na_values_on_read(tmp_path):
    from synthdata import read_table

    path = tmp_path / "survey.csv"
    path.write_text("age,work,score\n" + "39, ?,1.5\n?,Private,2\n50,Private, ?\n" * 5, encoding="utf-8")
    plain = read_table(path).frame
    assert plain["age"].dtype == object and (plain["work"] == " ?").sum() == 5  # '?' is a value by default
    frame = read_table(path, na_values=["?"]).frame
    assert frame["age"].dtype == float and frame["age"].isna().sum() == 5
    assert frame["work"].isna().sum() == 5 and set(frame["work"].dropna()) == {"Private"}
    assert frame["score"].dtype == float and frame["score"].isna().sum() == 5


def test_na_values_option_of_the_cli(tmp_path):
    from click.testing import CliRunner

    from synthdata.cli import cli

    path = tmp_path / "survey.csv"
    path.write_text("age,work\n" + "".join(f"{20 + i},{'?' if i % 4 == 0 else 'Private' if i % 2 else 'State'}\n"
                                           for i in range(40)), encoding="utf-8")
    result = CliRunner().invoke(cli, ["inspect", str(path), "--na-values", "?"])
    assert result.exit_code == 0, result.output
    work = next(line for line in result.output.splitlines() if line.startswith("work"))
    assert "10 (25.0%)" in work and "?" not in work.split("categorical", 1)[1]
