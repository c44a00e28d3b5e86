"""Issue 17, the independent set: odd files, odd values and odd flags through the CLI.

Each case is something a user (or an adversary) can hand synthdata that is not in the
issue's list. Every one must end in one ``Error:`` line naming what to change (or
succeed), quickly, and never in "unexpected … this is a bug".
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthdata.errors import DataError
from synthdata.ingest import read_table

from .conftest import assert_one_line_error

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX files: FIFOs and devices")


def _rows(n: int) -> str:
    return "".join(f"{i % 7},{i % 3},{'xyz'[i % 3]}\n" for i in range(n))


def _csv(tmp_path, data: bytes | str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def _parquet(tmp_path, name: str, column, n: int = 60):
    path = tmp_path / name
    pq.write_table(pa.table({"x": column, "g": [["a", "b", "c"][i % 3] for i in range(n)],
                             "w": [i % 5 for i in range(n)]}), path)
    return path


# --------------------------------------------------------------------------- CSV files


def test_a_nul_byte_past_the_first_64_kb_is_refused_with_its_line(invoke, tmp_path):
    path = _csv(tmp_path, b"a,b,c\n" + _rows(20_000).encode() + b"1,2,x\x00y\n" + _rows(5).encode())
    assert_one_line_error(invoke("inspect", path), "line 20002", "NUL byte")
    # The same when the file is streamed and sampled.
    assert_one_line_error(invoke("inspect", path, "--memory-limit", "1KB"), "line 20002", "NUL byte")


def test_bare_carriage_return_line_endings_say_what_to_convert(invoke, tmp_path):
    path = _csv(tmp_path, ("a,b,c\n" + _rows(20)).replace("\n", "\r"))
    assert_one_line_error(invoke("inspect", path), "bare carriage return", "LF")


def test_a_value_longer_than_the_csv_field_limit_is_one_line(invoke, tmp_path):
    path = _csv(tmp_path, "a,b\n1," + "x" * 200_000 + "\n" + "".join(f"{i},y\n" for i in range(20)))
    assert_one_line_error(invoke("inspect", path), "line 2", "longer than", "unclosed quote")


def test_half_utf8_half_latin1_names_the_line(invoke, tmp_path):
    text = b"a,b,c\n" + _rows(30).encode() + "1,2,caf\xe9\n".encode("latin-1") + "1,2,café\n".encode()
    assert_one_line_error(invoke("inspect", _csv(tmp_path, text)), "line 32", "0xe9", "--encoding")


@pytest.mark.parametrize("encoding", ["rot13", "base64", "zlib"])
def test_a_codec_that_is_not_a_text_encoding_is_refused(invoke, tmp_path, encoding):
    path = _csv(tmp_path, "a,b,c\n" + _rows(20))
    assert_one_line_error(invoke("inspect", path, "--encoding", encoding), "not a text encoding")


@pytest.mark.parametrize(("options", "fragment"), [
    (("--delimiter", ",", "--decimal", ","), "both the delimiter and the decimal mark"),
    (("--delimiter", ";", "--thousands", ";"), "both the delimiter and the thousands separator"),
    (("--delimiter", "\n"), "line break or a quote"),
    (("--delimiter", '"'), "line break or a quote"),
])
def test_contradictory_or_impossible_delimiters(invoke, tmp_path, options, fragment):
    path = _csv(tmp_path, "a,b,c\n" + _rows(20))
    assert_one_line_error(invoke("inspect", path, *options), fragment)


def test_drop_named_twice_is_dropped_once(invoke, tmp_path):
    path = _csv(tmp_path, "a,b,c\n" + _rows(40))
    result = invoke("inspect", path, "--drop", "a", "--drop", "a")
    assert result.exit_code == 0, result.output
    assert "2 columns" in result.output


# --------------------------------------------------------------------------- Parquet files


@pytest.mark.parametrize(("column", "kind"), [
    (pa.array([{"k": i % 4, "v": "a"} for i in range(60)]), "a struct"),
    (pa.array([[i % 4, 1] for i in range(60)]), "a list"),
    (pa.array([[("k", i % 4)] for i in range(60)], type=pa.map_(pa.string(), pa.int64())), "a map"),
    (pa.array([{"a": {"b": i % 4}} for i in range(60)]), "a struct"),
])
def test_a_nested_parquet_column_is_refused_naming_it_and_can_be_dropped(invoke, tmp_path, column, kind):
    path = _parquet(tmp_path, "nested.parquet", column)
    assert_one_line_error(invoke("inspect", path), "column 'x'", kind, "flatten", "--drop x")
    result = invoke("inspect", path, "--drop", "x")  # never read, so it can be left out
    assert result.exit_code == 0, result.output
    assert "2 columns" in result.output


def test_timestamps_with_a_zone_or_beyond_2262_are_read_with_a_warning(tmp_path):
    n = 60
    zoned = _parquet(tmp_path, "tz.parquet", pa.array([datetime.datetime(2020, 1, 1, i % 24) for i in range(n)],
                                                       type=pa.timestamp("us", tz="Europe/Oslo")))
    with pytest.warns(UserWarning, match="time-zone-aware"):
        table = read_table(zoned)
    assert str(table.frame["x"].dtype) == "datetime64[ns]"
    assert table.frame["x"].iloc[0] == pd.Timestamp("2020-01-01 00:00")  # the instant stored (UTC), zone dropped
    far = _parquet(tmp_path, "far.parquet", pa.array([datetime.datetime(9999, 1, 1 + i % 28) if i % 2 else
                                                      datetime.datetime(2000, 1, 1 + i % 28) for i in range(n)],
                                                     type=pa.timestamp("s")))
    with pytest.warns(UserWarning, match="outside the years 1677-2262"):
        table = read_table(far)
    assert table.frame["x"].isna().sum() == n // 2 and str(table.frame["x"].dtype) == "datetime64[ns]"


def test_a_timestamp_with_a_zone_reaches_the_release_fingerprint(tmp_path):
    from synthdata.fingerprint import content_digest

    n = 60
    path = _parquet(tmp_path, "tz.parquet", pa.array([datetime.datetime(2020, 1, 1, i % 24) for i in range(n)],
                                                     type=pa.timestamp("us", tz="UTC")))
    with pytest.warns(UserWarning, match="time-zone-aware"):
        frame = read_table(path).frame
    assert len(content_digest(frame)) == 32  # raised TypeError on a zone-aware column


# --------------------------------------------------------------------------- planted inputs


@posix_only
def test_an_input_swapped_for_a_fifo_after_the_check_is_refused(tmp_path, monkeypatch):
    """The file is opened without blocking and checked again: a FIFO never hangs the read."""
    from synthdata import ingest

    path = tmp_path / "data.csv"
    os.mkfifo(path)
    monkeypatch.setattr(ingest, "_check_file", lambda _path: None)  # as if it was swapped after the check
    monkeypatch.setattr(ingest.Path, "stat", lambda self, **kw: os.stat(tmp_path))
    with pytest.raises(DataError, match="FIFO"):
        read_table(path)


# --------------------------------------------------------------------------- pre-flight (no hours of training)


def _within(seconds: float, function, *args, **kwargs):
    """Run ``function`` in a thread; fail (instead of training for hours) if it runs past ``seconds``."""
    import threading

    box: dict = {}

    def run():
        try:
            box["value"] = function(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: no pre-flight refusal"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def wide(tmp_path):
    """10,000 columns x 30 rows (it trained at 48 s a step, about 20 hours)."""
    rng = np.random.default_rng(0)
    path = tmp_path / "wide.csv"
    pd.DataFrame(rng.integers(0, 5, (30, 10_000)), columns=[f"c{i}" for i in range(10_000)]).to_csv(path, index=False)
    return path


@pytest.fixture
def small_with_target(adult_train, tmp_path):
    """400 rows of Adult at epsilon 1 with a target (it trained 7 minutes, then failed in the audit)."""
    path = tmp_path / "adult400.csv"
    with open(adult_train, encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(401), source)), encoding="utf-8")
    return path


def test_preflight_refuses_ten_thousand_columns_before_reading_a_row(invoke, wide, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    result = _within(120, invoke, "release", wide, "--epsilon", "1", "--out", tmp_path / "rel", "--quiet")
    assert_one_line_error(result, "10,000 columns", "hours", "--drop", "SYNTHDATA_MAX_FIT_HOURS")
    assert not (tmp_path / "rel").exists()


def test_preflight_refuses_ten_thousand_columns_in_fit_from_the_dp_count(invoke, wide, tmp_path):
    result = _within(120, invoke, "fit", wide, "--epsilon", "1", "--model-out", tmp_path / "model", "--quiet")
    assert_one_line_error(result, "10,000 columns", "DP count", "--schema")
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("declared", [False, True])
def test_preflight_refuses_a_target_that_cannot_be_released(invoke, small_with_target, tmp_path, monkeypatch,
                                                           declared):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    args = ["release", small_with_target, "--epsilon", "1", "--target", "income", "--out", tmp_path / "rel",
            "--quiet"]
    if declared:
        schema = tmp_path / "schema.json"
        assert invoke("inspect", small_with_target, "--schema-out", schema).exit_code == 0
        args += ["--schema", schema]
    result = _within(120, invoke, *args)
    line = assert_one_line_error(result)
    assert "--target income" in line or "no column can" in line, line
    assert not (tmp_path / "rel").exists()


def test_preflight_refusals_rest_on_the_dp_count_not_the_exact_one(wide, monkeypatch):
    """A refusal is published to whoever runs the command: it states the DP count, never len(frame)."""
    from synthdata.models import TabularGAN
    from synthdata.privacy import PrivacyLedger

    frame = pd.read_csv(wide, usecols=range(3000))
    original = PrivacyLedger.noisy_count

    def noisy_count(self, step, value, **kwargs):
        original(self, step, value, **kwargs)  # spent as usual
        return 123  # what the noise said

    monkeypatch.setattr(PrivacyLedger, "noisy_count", noisy_count)
    with pytest.raises(DataError) as info:
        TabularGAN(epsilon=1.0).fit(frame)
    assert "about 123 rows" in info.value.message
    assert " 30 rows" not in info.value.message


def test_estimates_and_the_least_noise_of_one_release():
    from synthdata.tabular.preflight import estimate_fit, least_sigma

    # The analytic Gaussian mechanism (Balle and Wang 2018): sigma for (1, 1e-6) with sensitivity 1.
    assert least_sigma(1.0, 1e-6) == pytest.approx(4.2247, rel=1e-3)
    assert least_sigma(0.5, 1e-6) > least_sigma(1.0, 1e-6) > least_sigma(10.0, 1e-6)
    small = estimate_fit(rows=30_000, columns=15, generator_steps=1500, sizes=[20] * 15, coarse=[16] * 15)
    wide = estimate_fit(rows=30, columns=10_000, generator_steps=1500)
    assert small.seconds < 600 < 2 * 3600 < wide.seconds
    assert (wide.onehot, wide.groups) == (20_000, 20_000)


def test_max_fit_hours_can_be_raised_or_turned_off(monkeypatch):
    from synthdata.models import TabularGAN
    from synthdata.tabular.preflight import check_columns

    model = TabularGAN(epsilon=1.0)
    with pytest.raises(DataError, match="hours"):
        check_columns(10_000, model=model)
    monkeypatch.setenv("SYNTHDATA_MAX_FIT_HOURS", "0")
    check_columns(10_000, model=model)  # no limit
    monkeypatch.setenv("SYNTHDATA_MAX_FIT_HOURS", "lots")
    with pytest.raises(DataError, match="not a number of hours"):
        check_columns(10, model=model)


# --------------------------------------------------------------------------- odd flags


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "table.csv"
    pd.DataFrame({"a": rng.integers(0, 9, 300), "b": rng.choice(["x", "y", "z"], 300)}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("--epochs", "nan", "--epochs"),
    ("--epochs", "-1", "--epochs"),
    ("--batch-size", "0", "--batch-size"),
])
def test_fit_refuses_impossible_training_sizes_as_usage_errors(invoke, table, tmp_path, option, value, fragment):
    result = invoke("fit", table, "--epsilon", "1", "--model-out", tmp_path / "model", option, value, "--quiet")
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "Traceback" not in result.output and "this is a bug" not in result.output
    assert not (tmp_path / "model").exists()


def test_fit_refuses_a_model_out_under_a_file_before_training(invoke, table, tmp_path):
    (tmp_path / "afile").write_text("x")
    result = _within(60, invoke, "fit", table, "--epsilon", "1", "--model-out", tmp_path / "afile" / "model",
                     "--quiet")
    assert_one_line_error(result, "is a file, not a folder", "--model-out")


def test_a_dataset_id_the_ledger_cannot_hold_is_refused_and_the_ledger_stays_readable(invoke, table, tmp_path,
                                                                                      monkeypatch):
    """A --dataset-id with control characters was written as a reservation the ledger reader then
    refused: every later release into that folder failed until the ledger was restored."""
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    result = invoke("release", table, "--epsilon", "1", "--out", tmp_path / "rel", "--quiet",
                    "--dataset-id", "x\x1b[31m\n")
    assert_one_line_error(result, "--dataset-id", "printable")
    from synthdata.budget import BudgetLedger

    ledger = tmp_path / "budget-ledger.json"
    if ledger.exists():
        assert BudgetLedger(ledger).entries() == []  # readable, and nothing recorded


def test_a_fitted_model_is_saved_through_an_unpredictable_folder(table, tmp_path, monkeypatch):
    """The fit's staging folder was .NAME.partial: a link planted there was written through."""
    from synthdata import cli as cli_module

    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / ".model.partial").symlink_to(victim)

    class _Model:
        def save(self, path):
            (Path(path) / "model.json").write_text("{}")

    cli_module._save_model(_Model(), tmp_path / "model")
    assert list(victim.iterdir()) == []
    assert (tmp_path / "model" / "model.json").read_text() == "{}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.partial-")]


# --------------------------------------------------------------------------- odd values


def test_the_audit_of_values_near_the_float_limits_is_no_crash(invoke, tmp_path):
    """+-1e300 and 5e-324 made the leakage attacks' distances infinite (a sklearn ValueError, 'a bug')."""
    rng = np.random.default_rng(4)

    def table(n, values):
        return pd.DataFrame({"g": rng.choice(["x", "y", "z"], n), "v": rng.choice(values, n)})

    paths = {}
    for name, frame in (("train", table(400, [1e300, -1e300, 0.0, -0.0, 5e-324])),
                        ("holdout", table(200, [1e300, -1e300, 0.0, 5e-324])),
                        ("synthetic", table(400, [9e16, -9e16, 0.0]))):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    result = invoke("audit", paths["train"], paths["synthetic"], "--holdout", paths["holdout"], "--max-rows", "200")
    assert result.exit_code == 0, result.output
    assert "Membership inference" in result.output


def test_a_schema_nested_too_deeply_is_one_line(invoke, table, tmp_path):
    schema = tmp_path / "deep.json"
    schema.write_text("[" * 100_000 + "]" * 100_000)
    assert_one_line_error(invoke("inspect", table, "--schema", schema), "nested too deeply")


@posix_only
def test_sample_from_a_model_folder_with_a_fifo_for_model_json_does_not_block(invoke, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    os.mkfifo(folder / "model.json")
    (folder / "generator.pt").write_bytes(b"x")
    result = _within(30, invoke, "sample", folder, "-n", "10", "-o", tmp_path / "out.csv", "--quiet")
    assert_one_line_error(result, "model.json")
    assert not (tmp_path / "out.csv").exists()
