import json

import pytest

from ..conftest import assert_one_line_error
from .conftest import PLANTED, population


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit")
    train = population(600, 1)
    train.loc[3, "city"] = PLANTED
    train.to_csv(folder / "train.csv", index=False)
    population(600, 2).to_csv(folder / "holdout.csv", index=False)
    # The training rows, as another tool writes them: columns reversed, integers as floats.
    copied = train.iloc[:, ::-1].astype({"age": float})
    copied.to_csv(folder / "copied.csv", index=False, float_format="%.6f")
    copied.drop(columns=["city", "age"]).to_csv(folder / "narrow.csv", index=False)
    (folder / "binary.csv").write_bytes(b"PK\x03\x04 not a table")
    return folder


def test_audit_prints_a_summary_and_writes_json(invoke, files, tmp_path):
    out = tmp_path / "audit.json"
    result = invoke("audit", files / "train.csv", files / "copied.csv", "--holdout", files / "holdout.csv",
                    "--target", "label", "--epsilon", "1", "--json", out)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Audit of {files / 'copied.csv'} (600 rows) against")
    for start in ("Quality: SDMetrics score", "ML utility ('label', classification)", "Membership inference:",
                  "Empirical epsilon lower bound:", "Exact copies: 100.00%", "Verdict: VIOLATION",
                  "Sub-sampled: membership inference", f"Written to {out}"):
        assert any(line.startswith(start) for line in lines), start
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["format"] == "synthdata-audit/1"
    assert data["leakage"]["leak_detected"] is True and data["leakage"]["claimed_epsilon"] == 1.0
    assert data["quality"]["ml_utility"]["target"] == "label"
    assert PLANTED not in out.read_text(encoding="utf-8") and PLANTED not in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["audit.json"]  # no temporary file left


def test_audit_refuses_missing_columns_in_one_line(invoke, files):
    result = invoke("audit", files / "train.csv", files / "narrow.csv", "--holdout", files / "holdout.csv")
    assert_one_line_error(result, "narrow.csv lacks column(s) 'age', 'city' of", "train.csv")


def test_audit_refuses_unreadable_files_in_one_line(invoke, files):
    result = invoke("audit", files / "train.csv", files / "missing.csv", "--holdout", files / "holdout.csv")
    assert_one_line_error(result, "missing.csv", "no such file")
    result = invoke("audit", files / "train.csv", files / "binary.csv", "--holdout", files / "holdout.csv")
    assert_one_line_error(result, "binary.csv", "ZIP archive")


def test_audit_checks_its_options_before_reading(invoke, files, tmp_path):
    result = invoke("audit", files / "train.csv", files / "copied.csv", "--holdout", files / "holdout.csv",
                    "--json", tmp_path / "no" / "such" / "folder.json")
    assert_one_line_error(result, "does not exist")
    result = invoke("audit", files / "train.csv", files / "copied.csv")
    assert result.exit_code == 2 and "--holdout" in result.output
