import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthdata import Column, DataError, Excluded, IdentifierColumnWarning, Schema, SchemaError, infer_schema


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


def test_only_identifiers_left_is_an_error():
    with pytest.raises(DataError, match="no column is left"), pytest.warns(IdentifierColumnWarning):
        infer_schema(pd.DataFrame({"id": range(50)}))


@pytest.mark.parametrize("column, message", [
    ({"name": "a", "type": "number"}, "unknown type 'number'"),
    ({"name": "a", "type": "numerical", "bounds": [5, 1]}, "need min < max"),
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
        return Column(name=name, type=kind, integer=draw(st.booleans()), bounds=bounds)
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
