"""Every bad input gets one clear line, a non-zero exit and no traceback."""

import hashlib

import numpy as np
import pytest

from .conftest import assert_one_line_error


def _csv(tmp_path, text, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def _rows(n, extra=""):
    return "".join(f"{i},{i % 3},{'xyz'[i % 3]}{extra}\n" for i in range(n))


def test_missing_file(invoke, tmp_path):
    assert_one_line_error(invoke("inspect", tmp_path / "absent.csv"), "absent.csv", "no such file")


def test_directory(invoke, tmp_path):
    assert_one_line_error(invoke("inspect", tmp_path), "is a directory", "CSV or Parquet file")


def test_empty_file(invoke, tmp_path):
    assert_one_line_error(invoke("inspect", _csv(tmp_path, "")), "is empty (0 bytes)")


def test_only_blank_lines(invoke, tmp_path):
    assert_one_line_error(invoke("inspect", _csv(tmp_path, "\n\n\n")), "only blank lines")


def test_header_only(invoke, tmp_path):
    assert_one_line_error(invoke("inspect", _csv(tmp_path, "a,b,c\n")), "header but no data rows")


def test_one_data_row(invoke, tmp_path):
    line = assert_one_line_error(invoke("inspect", _csv(tmp_path, "a,b,c\n1,2,x\n")), "only 1 data row")
    assert "at least 10 rows" in line


def test_ragged_row_with_too_many_fields(invoke, tmp_path):
    text = "a,b,c\n" + _rows(5) + "1,2,3,4\n" + _rows(10)
    assert_one_line_error(invoke("inspect", _csv(tmp_path, text)),
                          "line 7: 4 fields where the header has 3", "quote values")


def test_ragged_row_with_too_few_fields(invoke, tmp_path):
    text = "a,b,c\n" + _rows(12) + "1,2\n"
    assert_one_line_error(invoke("inspect", _csv(tmp_path, text)), "line 14: 2 fields where the header has 3")


def test_duplicate_column_names(invoke, tmp_path):
    text = "a,b,a\n" + _rows(20)
    assert_one_line_error(invoke("inspect", _csv(tmp_path, text)),
                          "duplicate column name 'a' (columns 1 and 3)", "rename")


def test_unnamed_column(invoke, tmp_path):
    text = "a,,c\n" + _rows(20)
    assert_one_line_error(invoke("inspect", _csv(tmp_path, text)), "column 2 has no name")


def test_binary_garbage(invoke, tmp_path):
    garbage = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    assert_one_line_error(invoke("inspect", _csv(tmp_path, garbage, "data.bin")),
                          "does not look like a CSV file", "binary content at byte")


@pytest.mark.parametrize("magic, words", [
    (b"PK\x03\x04rest-of-zip", "ZIP archive"),
    (b"\x1f\x8b\x08\x00gzipped", "gzip-compressed"),
])
def test_known_binary_formats(invoke, tmp_path, magic, words):
    assert_one_line_error(invoke("inspect", _csv(tmp_path, magic * 10)), words)


def test_non_utf8_text(invoke, tmp_path):
    text = "name,city,n\n" + "".join(f"p{i % 4},Paris,{i % 5}\n" for i in range(12)) + "p1,Besançon,1\n"
    path = _csv(tmp_path, text, encoding="latin-1")
    assert_one_line_error(invoke("inspect", path), "line 14", "byte 0xe7 is not valid utf-8",
                          "--encoding latin-1")
    result = invoke("inspect", path, "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    assert "Besançon" in result.output or "Paris" in result.output


def test_unknown_encoding(invoke, tmp_path):
    path = _csv(tmp_path, "a,b,c\n" + _rows(20))
    assert_one_line_error(invoke("inspect", path, "--encoding", "klingon"), "unknown encoding 'klingon'")


def test_all_missing_column(invoke, tmp_path):
    """Nothing to learn from it: left out with a warning, never a refusal (issue 11)."""
    text = "a,b,c,empty\n" + _rows(20, extra=",")
    result = invoke("inspect", _csv(tmp_path, text))
    assert result.exit_code == 0, result.output
    assert "column 'empty' is missing in every row" in result.stderr
    assert "Left out: empty (is missing in every row)" in result.output


def test_constant_column(invoke, tmp_path):
    text = "a,b,c,country\n" + _rows(20, extra=",France")
    result = invoke("inspect", _csv(tmp_path, text))
    assert result.exit_code == 0, result.output
    assert "column 'country' holds the same value in every row" in result.stderr
    assert "Left out: country (holds the same value in every row)" in result.output
    assert invoke("inspect", _csv(tmp_path, text), "--drop", "country").exit_code == 0


def test_numbers_with_thousands_separators(invoke, tmp_path):
    text = "id_group,income\n" + "".join(f'{i % 4},"{1000 + 37 * i:,}"\n' for i in range(30))
    path = _csv(tmp_path, text)
    assert_one_line_error(invoke("inspect", path), "column 'income'", "thousands separator",
                          "'1,000'", "--thousands ','")
    result = invoke("inspect", path, "--thousands", ",")
    assert result.exit_code == 0, result.output
    income = next(line for line in result.output.splitlines() if line.startswith("income"))
    assert "numerical" in income and "1000 .. 2073" in income


def test_numbers_with_decimal_comma(invoke, tmp_path):
    text = "g;x\n" + "".join(f"{i % 3};{i},5\n" for i in range(30))
    path = _csv(tmp_path, text)
    assert_one_line_error(invoke("inspect", path), "decimal comma", "--decimal ','")
    assert invoke("inspect", path, "--decimal", ",").exit_code == 0


def test_infinite_values(invoke, tmp_path):
    text = "a,x\n" + "".join(f"{i % 3},{i}.5\n" for i in range(8)) + "1,inf\n2,NaN\n" + "1,2.5\n" * 5
    assert_one_line_error(invoke("inspect", _csv(tmp_path, text)),
                          "column 'x' holds infinite values (inf in data row 9)")


def test_nan_text_is_a_missing_value(invoke, tmp_path):
    text = "a,x\n" + "".join(f"{i % 3},{i}.5\n" for i in range(12)) + "2,NaN\n"
    result = invoke("inspect", _csv(tmp_path, text))
    assert result.exit_code == 0, result.output
    assert "1 (7.7%)" in next(line for line in result.output.splitlines() if line.startswith("x "))


def test_categorical_with_100k_distinct_values(invoke, tmp_path):
    # Each value held by two people: not an identifier, but far too many categories.
    values = np.repeat(np.arange(100_000), 2)
    lines = "".join(f"{i % 5},c{v}\n" for i, v in enumerate(values))
    result = invoke("inspect", _csv(tmp_path, "g,code\n" + lines))
    # A value on a few rows each looks like a person's id: left out, with the way to protect persons.
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "Left out: code" in result.output
    assert "--privacy-unit code" in result.output


def test_file_larger_than_memory_limit_is_sampled(invoke, tmp_path):
    rng = np.random.default_rng(1)
    text = "age,group\n" + "".join(f"{a},{'abc'[g]}\n" for a, g in zip(rng.integers(18, 90, 50_000),
                                                                       rng.integers(0, 3, 50_000)))
    path = _csv(tmp_path, text)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = invoke("inspect", path, "--memory-limit", "100KB")
    assert result.exit_code == 0, result.output
    assert "50,000 rows" in result.output
    assert "random sample" in result.output and "above the in-memory limit of 100.0 KB" in result.output
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # never modified


def test_bad_memory_limit_is_a_usage_error(invoke, tmp_path):
    path = _csv(tmp_path, "a,b,c\n" + _rows(20))
    result = invoke("inspect", path, "--memory-limit", "lots")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_broken_parquet(invoke, tmp_path):
    path = _csv(tmp_path, b"PAR1 not really parquet PAR1", name="t.parquet")
    assert_one_line_error(invoke("inspect", path), "not a readable Parquet file")


def test_unterminated_quote(invoke, tmp_path):
    text = "a,b,c\n" + _rows(10) + '1,"open,x\n' + _rows(3)
    result = invoke("inspect", _csv(tmp_path, text))
    assert_one_line_error(result)
