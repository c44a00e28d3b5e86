"""synthdata release: the whole pipeline, its atomicity, and its budget ledger.

Small generated tables and short training (``FAST``) keep each release to seconds; one
CLI test runs the defaults end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthdata import from_frame
from synthdata.budget import BudgetLedger
from synthdata.errors import PrivacyError
from synthdata.release import release, split_holdout
from synthdata.signing import generate_keypair, load_private_key, verify_release

from .conftest import assert_one_line_error

FAST = {"generator_steps": 60, "epochs": 1, "device": "cpu"}
STAGES = ["schema", "holdout split", "fit", "sample", "audit", "report", "sign", "write"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 70, n)
    return pd.DataFrame({
        "age": age,
        "city": rng.choice(["Oslo", "Lima", "Pune"], n).astype(object),
        "hours": np.where(rng.random(n) < 0.7, 40, rng.integers(10, 60, n)),
        "high": np.where(age + rng.normal(0, 10, n) > 45, "yes", "no").astype(object),
    })


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[object, Path]:
    private, public = generate_keypair(tmp_path_factory.mktemp("keys"))
    return load_private_key(private), public


def _release(tmp_path, keys, **options):
    key, public = keys
    table = from_frame(_frame(), source="people.csv")
    defaults = dict(epsilon=3.0, key=key, key_path=public, out=tmp_path / "release", seed=1,
                    ledger=tmp_path / "ledger.json", model_options=FAST, target="high")
    return release(table, **{**defaults, **options})


def test_release_writes_a_verifiable_signed_directory(tmp_path, keys):
    result = _release(tmp_path, keys)
    directory = tmp_path / "release"
    assert result.directory == directory
    assert sorted(p.name for p in directory.iterdir()) == ["report.dsse.json", "report.html", "report.json",
                                                           "synthetic.csv"]
    predicate = verify_release(directory, keys[1])["predicate"]
    privacy = predicate["privacy"]
    assert privacy["epsilon"] == 3.0 and 0 < privacy["epsilon_spent"] <= 3.0
    assert [line["step"] for line in privacy["budget"]][0] == "preprocessing"
    assert predicate["data"]["rows_train"] == 640 and predicate["data"]["rows_holdout"] == 160
    assert predicate["data"]["input_sha256"] == from_frame(_frame(), source="people.csv").sha256
    assert predicate["quality"]["ml_utility"]["target"] == "high"
    assert isinstance(predicate["leakage"]["leak_detected"], bool)
    assert "seed" not in json.dumps(predicate["model"]), "the seed reproduces the privacy noise: never published"
    synthetic = pd.read_csv(directory / "synthetic.csv")
    assert list(synthetic.columns) == list(_frame().columns) and len(synthetic) == 640
    assert BudgetLedger(tmp_path / "ledger.json").spent(predicate["data"]["input_sha256"]) == 3.0


def test_holdout_rows_never_reach_the_generator():
    frame = _frame(500).assign(row=np.arange(500))
    train, holdout = split_holdout(frame, 0.2, seed=4)
    assert len(holdout) == 100 and len(train) == 400
    assert set(train["row"]).isdisjoint(holdout["row"]) and len(set(train["row"]) | set(holdout["row"])) == 500
    again, _ = split_holdout(frame, 0.2, seed=4)
    pd.testing.assert_frame_equal(train, again)
    whole, none = split_holdout(frame, 0.0, seed=4)
    assert none is None and len(whole) == 500


def test_fit_sees_only_the_training_rows(tmp_path, keys, monkeypatch):
    from synthdata.models import TabularGAN

    seen = {}
    original = TabularGAN.fit

    def spy(self, frame, *args, **kwargs):
        seen["rows"] = len(frame)
        return original(self, frame, *args, **kwargs)

    monkeypatch.setattr(TabularGAN, "fit", spy)
    _release(tmp_path, keys, holdout_fraction=0.25)
    assert seen["rows"] == 600


def test_no_holdout_skips_membership_inference_and_says_so(tmp_path, keys):
    result = _release(tmp_path, keys, holdout_fraction=0.0, target=None)
    predicate = result.predicate
    assert predicate["data"]["rows_holdout"] == 0
    assert predicate["leakage"]["mia_auc"] is None and predicate["leakage"]["leak_detected"] is None
    assert any("holdout" in note for note in predicate["audit"]["notes"])


@pytest.mark.parametrize("stage", STAGES)
def test_a_fault_at_any_stage_leaves_no_release_and_no_ledger_entry(tmp_path, keys, stage):
    def fail_at(message: str) -> None:
        if message.split(":")[0] == stage:
            raise RuntimeError(f"injected fault at {stage}")

    with pytest.raises(RuntimeError, match="injected fault"):
        _release(tmp_path, keys, progress=fail_at)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ledger.json.lock", "ledger.json"]  # no release, no staging
    assert BudgetLedger(tmp_path / "ledger.json").entries() == []


@pytest.mark.parametrize("target", ["synthdata.signing.write_signed", "synthdata.report.render_html",
                                    "synthdata.sampling.write_csv", "synthdata.audit.audit", "os.rename"])
def test_an_interrupt_inside_a_stage_leaves_nothing_behind(tmp_path, keys, monkeypatch, target):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    module, name = target.rsplit(".", 1)
    if module == "os":
        monkeypatch.setattr("synthdata.release.os.rename", interrupted)
    else:
        monkeypatch.setattr(target, interrupted)
    with pytest.raises(KeyboardInterrupt):
        _release(tmp_path, keys)
    assert not (tmp_path / "release").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release")]
    assert BudgetLedger(tmp_path / "ledger.json").entries() == []


def test_budget_limit_is_enforced_before_any_training(tmp_path, keys, monkeypatch):
    _release(tmp_path, keys, epsilon=4.0, out=tmp_path / "first")
    from synthdata.models import TabularGAN

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(TabularGAN, "fit", never)
    with pytest.raises(PrivacyError, match="over the budget limit 5"):
        _release(tmp_path, keys, epsilon=2.0, out=tmp_path / "second", budget_limit=5.0)
    assert not (tmp_path / "second").exists()
    assert len(BudgetLedger(tmp_path / "ledger.json").entries()) == 1


def test_an_existing_directory_is_never_overwritten(tmp_path, keys):
    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "keep.txt").write_text("mine")
    with pytest.raises(Exception, match="already exists"):
        _release(tmp_path, keys)
    assert (tmp_path / "release" / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "ledger.json").exists() or BudgetLedger(tmp_path / "ledger.json").entries() == []


# --------------------------------------------------------------------------- command line


@pytest.fixture
def data_csv(tmp_path) -> Path:
    path = tmp_path / "people.csv"
    _frame(400).to_csv(path, index=False)
    return path


def test_cli_release_then_verify_then_budget(invoke, tmp_path, data_csv, keys, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    out = tmp_path / "rel"
    result = invoke("release", data_csv, "--epsilon", "2", "--target", "high", "--out", out, "--seed", "3",
                    "--quiet")
    assert result.exit_code == 0, result.output
    assert "epsilon spent" in result.output and str(out) in result.output
    public = tmp_path / "config" / "signing_key.pub.pem"
    assert public.exists() and str(public) in result.output  # the default key, created on first use
    verified = invoke("verify", out, "--public-key", public)
    assert verified.exit_code == 0, verified.output
    listed = invoke("budget", "--ledger", tmp_path / "budget-ledger.json")
    assert listed.exit_code == 0 and "2" in listed.output and str(out) in listed.output
    again = invoke("release", data_csv, "--epsilon", "9", "--out", tmp_path / "rel2", "--quiet")
    assert_one_line_error(again, "over the budget limit 10")
    assert not (tmp_path / "rel2").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--epsilon", "1", "--target", "nope"], "--target nope: no such column"),
    (["--epsilon", "1", "--holdout-fraction", "0.9"], "--holdout-fraction"),
    (["--epsilon", "-1"], "epsilon"),
])
def test_cli_release_refuses_bad_options_in_one_line(invoke, tmp_path, data_csv, args, fragment, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    result = invoke("release", data_csv, "--out", tmp_path / "rel", "--quiet", *args)
    assert_one_line_error(result, fragment, exit_code=result.exit_code if result.exit_code else 1)
    assert not (tmp_path / "rel").exists()
