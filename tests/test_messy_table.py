"""A messy real-world table releases in one command, with warnings and no error (issue 11).

A constant column, ``?`` for missing values (``--na-values``) and a repeating person id:
each one stopped the command or was modelled wrongly before. The release goes through,
the steward is told what was left out, ``?`` is a missing value (never a category), and
neither the constant nor the person id reaches the synthetic data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _visits(patients: int = 700, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    visits = rng.integers(1, 5, patients)
    patient = np.repeat(np.arange(10_000, 10_000 + patients), visits)
    n = len(patient)
    age = np.repeat(rng.integers(20, 90, patients), visits).astype(object)
    age[rng.random(n) < 0.15] = "?"
    ward = rng.choice(["cardio", "neuro", "ortho", "onco"], n).astype(object)
    ward[rng.random(n) < 0.1] = "?"
    stay = rng.geometric(0.3, n)
    return pd.DataFrame({
        "patient_id": patient,
        "hospital": "St Olav",  # the same in every row
        "age": age,
        "ward": ward,
        "stay_days": stay,
        "readmitted": np.where(rng.random(n) < 0.2 + 0.05 * (stay > 4), "yes", "no"),
    })


@pytest.mark.slow
def test_constant_column_question_marks_and_a_person_id_release_in_one_command(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "visits.csv"
    _visits().to_csv(path, index=False)
    assert "?" in path.read_text()
    out = tmp_path / "release"
    result = invoke("release", path, "--epsilon", "4", "--na-values", "?", "--target", "readmitted",
                    "--out", out, "--seed", "1", "--epochs", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "Error" not in result.stderr
    warned = " ".join(result.stderr.split())
    assert "'hospital'" in warned and "'patient_id'" in warned  # both left out, with a warning each
    assert "--privacy-unit" in warned  # the repeating id: the way to protect persons is named
    synthetic = pd.read_csv(out / "synthetic.csv", keep_default_na=False, na_values=[""])
    assert "patient_id" not in synthetic.columns and "hospital" not in synthetic.columns
    assert {"age", "ward", "stay_days", "readmitted"} <= set(synthetic.columns)
    # "?" was read as missing: age is a number, and no "?" category is invented.
    assert pd.api.types.is_numeric_dtype(synthetic["age"])
    assert "?" not in set(synthetic["ward"].dropna())
    assert synthetic["ward"].isna().any() and synthetic["age"].isna().any()
    assert (synthetic["age"].dropna() % 1 == 0).all()
