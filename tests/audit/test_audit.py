"""The whole audit through its Python API: schema of the result, tables from other tools."""

import json

import numpy as np
import pandas as pd
import pytest

from synthdata import DataError, Schema, infer_schema
from synthdata.schema import Column
from synthdata.audit import AUDIT_FORMAT, audit, prepare, summary
from synthdata.audit.run import _default_delta
from synthdata.errors import PrivacyError

from .conftest import PLANTED, population


@pytest.fixture(scope="module")
def tables():
    train = population(800, 1)
    train.loc[5, "city"] = PLANTED  # one person's value
    return {"train": train, "holdout": population(800, 2), "other": population(800, 3)}


@pytest.fixture(scope="module")
def copied(tables):
    """Training rows passed as synthetic, as another tool would write them."""
    synthetic = tables["train"].iloc[:, ::-1].copy()  # columns in another order
    synthetic["age"] = synthetic["age"].astype(float)  # 39 written as 39.0
    synthetic["smoker"] = np.where(synthetic["smoker"], "true", "false")
    synthetic["visit"] = synthetic["visit"].dt.strftime("%Y-%m-%d")
    synthetic["exporter_id"] = np.arange(len(synthetic))  # a column of the other tool's own
    return audit(tables["train"], synthetic, holdout=tables["holdout"], target="label", epsilon=0.5, seed=0)


def test_result_schema(tables):
    result = audit(tables["train"], tables["other"], holdout=tables["holdout"], target="label", seed=0)
    assert result["format"] == AUDIT_FORMAT
    assert result["rows"] == {"real_train": 800, "synthetic": 800, "holdout": 800}
    assert result["columns"] == list(tables["train"].columns)
    quality, leakage = result["quality"], result["leakage"]
    for key in ("sdmetrics_score", "column_shapes", "column_pair_trends", "tvd_1way", "tvd_2way", "detection_auc"):
        assert 0.0 <= quality[key] <= 1.0, key
    assert quality["sdmetrics_score"] > 0.8 and quality["tvd_1way"] < 0.1
    assert 0.4 < quality["detection_auc"] < 0.6  # two samples of one population
    assert {row["Column"] for row in quality["details"]["column_shapes"]} == set(result["columns"])
    assert len(quality["details"]["column_pair_trends"]) == 15
    assert set(quality["details"]["tvd_per_column"]) == set(result["columns"])
    utility = quality["ml_utility"]
    assert utility["task"] == "classification" and utility["n_classes"] == 2 and "classes" not in utility
    assert utility["synthetic"]["auroc"] > 0.9 and utility["real"]["auroc"] > 0.9
    for key in ("mia_auc", "empirical_epsilon_lower_bound", "max_certifiable_epsilon"):
        assert isinstance(leakage[key], float), key
    assert leakage["leak_detected"] is False and isinstance(leakage["verdict"], str)
    assert set(leakage["attacks"]) == {"distance_to_closest_record", "density_ratio"}
    assert {"train_share", "holdout_share", "matched"} <= set(leakage["exact_copies"])
    assert "k" in leakage["rare_values"]
    assert "aggregates only" in leakage["note"]
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_a_table_from_another_tool_compares_equal(copied):
    # Reordered columns, floats for integers, text booleans and dates: still exact copies.
    assert copied["leakage"]["exact_copies"]["train_share"] == 1.0
    assert copied["quality"]["tvd_1way"] == 0.0 and copied["quality"]["tvd_2way"] == 0.0
    assert copied["quality"]["sdmetrics_score"] == pytest.approx(1.0, abs=1e-6)
    assert any("'exporter_id' are not audited" in note for note in copied["notes"])
    assert copied["leakage"]["verdict"].startswith("VIOLATION")


def test_categories_and_booleans_compare_as_canonical_text():
    # Codes kept as text in the real table, written as floats by another tool; booleans as 1/0.
    real = pd.DataFrame({"grade": ["1", "2", "10"] * 10, "ok": [True, False, True] * 10, "note": ["a", None, "b"] * 10})
    other = pd.DataFrame({"grade": [1.0, 2.0, 10.0] * 10, "ok": ["1", "0", "TRUE"] * 10, "note": ["a", None, "b"] * 10})
    tables = prepare(real, other)
    assert tables.kinds == {"grade": "categorical", "ok": "boolean", "note": "categorical"}
    pd.testing.assert_frame_equal(tables.train, tables.synthetic)
    assert tables.train["note"].isna().sum() == 10


def test_no_real_value_reaches_the_output(copied):
    text = json.dumps(copied, allow_nan=False) + "\n".join(summary(copied))
    assert PLANTED not in text
    assert copied["leakage"]["rare_values"]["columns"]["city"]["rare_values"] >= 1


def test_missing_and_mistyped_columns_are_refused(tables):
    train = tables["train"]
    with pytest.raises(DataError, match=r"synthetic table lacks column\(s\) 'age', 'city' of the real training"):
        audit(train, tables["other"].drop(columns=["city", "age"]), holdout=tables["holdout"])
    with pytest.raises(DataError, match=r"holdout table lacks column\(s\) 'label'"):
        audit(train, tables["other"], holdout=tables["holdout"].drop(columns="label"))
    with pytest.raises(DataError, match="'income' holds numbers in the real table"):
        audit(train, tables["other"].assign(income="lots"), holdout=tables["holdout"])
    with pytest.raises(DataError, match="target column 'nope'"):
        audit(train, tables["other"], holdout=tables["holdout"], target="nope")
    with pytest.raises(PrivacyError, match="claimed epsilon"):
        audit(train, tables["other"], epsilon=0)
    with pytest.raises(PrivacyError, match="delta"):
        audit(train, tables["other"], delta=1.5)


def test_schema_picks_the_columns_and_types(tables):
    with pytest.warns(UserWarning):
        schema = infer_schema(tables["train"].assign(row_id=np.arange(800)))  # an identifier, left out
    synthetic = tables["other"].assign(city=tables["other"]["city"].fillna("Oslo"))
    result = audit(tables["train"].assign(row_id=np.arange(800)), synthetic, holdout=tables["holdout"],
                   schema=schema, seed=0)
    assert "row_id" not in result["columns"]
    assert any("schema excludes" in note and "'row_id'" in note for note in result["notes"])
    as_categories = Schema.from_dict({"columns": [{"name": "age", "type": "categorical"}]})
    result = audit(tables["train"], tables["other"].assign(age=tables["other"]["age"] * 1.0), schema=as_categories)
    assert result["columns"] == ["age"] and result["quality"]["tvd_1way"] < 0.2  # 39.0 read as category '39'


def test_without_holdout_and_with_sampling(tables):
    result = audit(tables["train"], tables["other"], target="label", max_rows=200)
    assert result["rows"]["holdout"] is None
    assert result["quality"]["ml_utility"] is None
    assert result["leakage"]["leak_detected"] is None
    assert any("ML utility needs holdout rows" in note for note in result["notes"])
    assert any("membership inference" in note for note in result["notes"])
    detection = [s for s in result["subsampled"] if s["metric"] == "detection"]
    assert detection == [{"metric": "detection", "rows_used": {"real_train": 200, "synthetic": 200},
                          "rows_total": {"real_train": 800, "synthetic": 800}}]


def test_default_delta_is_the_training_default():
    from synthdata.privacy import default_delta

    for n in (10, 1000, 32_561, 10**7):
        assert _default_delta(n) == default_delta(n)


def test_plot_data_holds_no_rare_or_extreme_real_value(tables):
    train = tables["train"].copy()  # PLANTED is one person's city already
    train.loc[7, "income"] = 987654321.0  # one person's extreme number
    train.loc[9, "age"] = 1234567
    train.loc[11, "visit"] = pd.Timestamp("2199-03-04")  # one person's extreme date
    result = audit(train, tables["other"], holdout=tables["holdout"], seed=0)
    text = json.dumps(result, allow_nan=False) + "\n".join(summary(result))
    for planted in (PLANTED, "987654321", "9.87654321e", "1234567", "1.234567e", "2199-03"):
        assert planted not in text, planted

    distributions = result["quality"]["details"]["distributions"]
    assert list(distributions) == result["columns"]
    city = distributions["city"]
    assert city["binning"] == "values" and set(city["labels"]) == {"Oslo", "Lima", "Pune", "Kyiv", "Accra"}
    assert city["other"]["real"] == pytest.approx(1 / 800) and city["missing"]["real"] > 0
    assert distributions["income"]["binning"] == "intervals" and distributions["smoker"]["labels"] == ["False", "True"]
    for entry in distributions.values():
        for table in ("real", "synthetic"):
            other = entry["other"][table] if entry["other"] else 0.0
            assert sum(entry[table]) + other + entry["missing"][table] == pytest.approx(1.0, abs=1e-5)

    for attack in result["leakage"]["attacks"].values():
        roc = attack["roc"]
        assert 2 < len(roc["fpr"]) == len(roc["tpr"]) <= 201
        assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0) and (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
        assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(attack["auroc"], abs=0.01)


def test_a_release_with_only_the_target_left_is_audited_with_a_note():
    # Every feature column can be left out of a small private release; the audit must still
    # succeed (the ML utility is skipped with a reason), never fail the release.
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"flag": rng.random(300) < 0.4})
    result = audit(real.iloc[:200], real.iloc[:150].reset_index(drop=True), holdout=real.iloc[200:].reset_index(drop=True),
                   target="flag", seed=0)
    assert result["quality"]["ml_utility"] is None
    assert any("no column besides the target" in note for note in result["notes"])


def test_dates_in_a_local_format_are_read_with_the_schemas_format_without_pandas_warnings():
    # "12/1/10 8:26" (Online Retail's layout): pandas cannot guess a format for it and warns
    # ("could not infer format") once per table; the schema knows the format (tests turn
    # warnings into errors, so a leaked pandas warning fails here).
    stamps = pd.Series(pd.date_range("2010-12-01 08:26", periods=10, freq="37h").repeat(4))
    text = pd.Series([f"{t.month}/{t.day}/{t:%y} {t.hour}:{t:%M}" for t in stamps])
    real = pd.DataFrame({"when": text, "n": np.arange(40) % 5})
    schema = Schema(columns=(Column(name="when", type="datetime", datetime_format="%m/%d/%y %H:%M"),
                             Column(name="n", type="numerical", integer=True)))
    tables = prepare(real, real.iloc[::-1], schema=schema)
    np.testing.assert_array_equal(np.sort(tables.train["when"].to_numpy()), np.sort(stamps.to_numpy()))
    # Without a schema the dates are read cell by cell, still without a warning.
    other = pd.DataFrame({"when": stamps, "n": np.arange(40) % 5})
    assert prepare(other, other.assign(when=text)).synthetic["when"].notna().all()
