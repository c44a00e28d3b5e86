import hashlib
import string

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthdata import DataError, from_frame, load_table, read_table
from synthdata.ingest import DELIMITERS, MISSING_MARKERS, parse_size


def _frame(n=40):
    return pd.DataFrame({
        "age": np.arange(n) % 50 + 18,
        "score": np.linspace(0.5, 9.5, n),
        "group": [["north", "south", "east"][i % 3] for i in range(n)],
    })


@pytest.mark.parametrize("delimiter", DELIMITERS)
def test_delimiters_are_detected(tmp_path, delimiter):
    path = tmp_path / "d.csv"
    _frame().to_csv(path, sep=delimiter, index=False)
    table = read_table(path)
    assert table.delimiter == delimiter
    pd.testing.assert_frame_equal(table.frame, _frame())


def test_semicolon_file_with_commas_in_values(tmp_path):
    path = tmp_path / "d.csv"
    frame = _frame().assign(group=lambda f: f["group"] + ", county")
    frame.to_csv(path, sep=";", index=False)
    assert read_table(path).delimiter == ";"


def test_utf8_bom_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _frame().to_csv(index=False).encode())
    assert list(read_table(path).frame.columns) == ["age", "score", "group"]


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "t.parquet"
    frame = _frame().assign(when=pd.date_range("2020-01-01", periods=40, freq="D"))
    frame.to_parquet(path)
    table = read_table(path)
    assert table.format == "parquet"
    pd.testing.assert_frame_equal(table.frame, frame)
    assert table.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_parquet_sampled_when_large(tmp_path):
    path = tmp_path / "t.parquet"
    frame = pd.DataFrame({"x": np.arange(20_000), "g": np.arange(20_000) % 3})
    frame.to_parquet(path)
    table = read_table(path, memory_limit=1000, sample_rows=500)
    assert table.sampled and len(table.frame) == 500 and table.rows_total == 20_000
    # The index names the source rows, and the values are those rows' values.
    np.testing.assert_array_equal(table.frame["x"].to_numpy(), table.frame.index.to_numpy())


def test_csv_sample_is_uniform_and_points_at_source_rows(tmp_path):
    path = tmp_path / "big.csv"
    n = 30_000
    pd.DataFrame({"row": np.arange(n), "g": np.arange(n) % 4}).to_csv(path, index=False)
    table = read_table(path, memory_limit=10_000, sample_rows=3_000, seed=3)
    assert table.sampled and len(table.frame) == 3_000 and table.rows_total == n
    np.testing.assert_array_equal(table.frame["row"].to_numpy(), table.frame.index.to_numpy())
    # Uniform over the file, not the first rows: each quarter holds about a quarter.
    quarters = np.bincount(table.frame["row"].to_numpy() * 4 // n, minlength=4)
    assert quarters.min() > 600
    assert "random sample of 3,000 of 30,000 rows" in table.note


def test_large_file_can_be_refused(tmp_path):
    path = tmp_path / "big.csv"
    _frame(400).to_csv(path, index=False)
    with pytest.raises(DataError, match="above the in-memory limit"):
        read_table(path, memory_limit=100, on_large="error")


def test_input_file_is_not_modified(tmp_path):
    path = tmp_path / "d.csv"
    _frame().to_csv(path, index=False)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    table = read_table(path)
    table.frame.iloc[0, 0] = -1
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert table.sha256 == hashlib.sha256(before[0]).hexdigest()


def test_from_frame_checks_names_and_rows():
    with pytest.raises(DataError, match="duplicate column name 'a'"):
        from_frame(pd.DataFrame([[1, 2]] * 20, columns=["a", "a"]))
    with pytest.raises(DataError, match="column names must be text"):
        from_frame(pd.DataFrame(np.zeros((20, 2))))
    with pytest.raises(DataError, match="no data rows"):
        from_frame(pd.DataFrame({"a": []}))
    with pytest.raises(DataError, match="expected a pandas DataFrame"):
        from_frame([[1, 2]])


def test_from_frame_fingerprint_follows_content():
    frame = _frame()
    same = from_frame(frame.copy()).sha256
    assert from_frame(frame).sha256 == same
    changed = frame.copy()
    changed.loc[3, "score"] = 100.0
    assert from_frame(changed).sha256 != same


def test_load_table_dispatch(tmp_path):
    path = tmp_path / "d.csv"
    _frame().to_csv(path, index=False)
    assert load_table(str(path)).format == "csv"
    assert load_table(_frame()).format == "dataframe"
    with pytest.raises(DataError, match="cannot read data of type int"):
        load_table(3)


@pytest.mark.parametrize("text, size", [("100KB", 102_400), ("2GB", 2 << 30), ("512", 512), ("1.5 MB", 1_572_864)])
def test_parse_size(text, size):
    assert parse_size(text) == size


_word = (st.text(alphabet=string.ascii_letters + " -", min_size=1, max_size=8).map(str.strip)
         .filter(lambda w: w and w not in MISSING_MARKERS))


def test_missing_markers_and_none_as_a_value(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("allergies,n\n" + "None,1\nNA,2\n,3\nnull,4\npollen,5\n" * 4)
    column = read_table(path).frame["allergies"]
    assert column.isna().sum() == 12
    assert (column == "None").sum() == 4


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    delimiter=st.sampled_from(DELIMITERS),
    numbers=st.lists(st.integers(-10_000, 10_000), min_size=12, max_size=40),
    words=st.lists(_word, min_size=2, max_size=5, unique=True),
)
def test_csv_round_trip_any_delimiter(tmp_path, delimiter, numbers, words):
    frame = pd.DataFrame({
        "n": numbers,
        "w": [words[i % len(words)] for i in range(len(numbers))],
        "f": [x / 4 for x in numbers],
    })
    path = tmp_path / "rt.csv"
    frame.to_csv(path, sep=delimiter, index=False)
    table = read_table(path)
    assert table.delimiter == delimiter
    pd.testing.assert_frame_equal(table.frame, frame, check_dtype=False)
