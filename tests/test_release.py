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

from synthdata import from_frame, read_table
from synthdata.budget import BudgetLedger
from synthdata.errors import PrivacyError
from synthdata.privacy import NoiseSource
from synthdata.release import STAGES, release
from synthdata.signing import generate_keypair, load_private_key, verify_release
from synthdata.tabular.estimator import TabularGAN
from synthdata.tabular.modality import TableModality

from .conftest import assert_one_line_error

FAST = {"generator_steps": 60, "epochs": 1, "device": "cpu"}


# Small tables at small budgets warn about what the DP release cannot resolve; these tests are
# about the release's mechanics (the warnings have their own tests).
pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::synthdata.errors.SynthdataWarning")]


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


@pytest.fixture(autouse=True)
def steward_config(tmp_path, monkeypatch):
    """Each test's own fingerprint secret and default key (never the user's)."""
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))


def _release(tmp_path, keys, *, frame=None, target="high", **options):
    key, public = keys
    table = from_frame(_frame() if frame is None else frame, source="people.csv")
    defaults = dict(epsilon=3.0, key=key, key_path=public, out=tmp_path / "release", seed=1,
                    ledger=tmp_path / "ledger.json", model_options=FAST)
    return release(TableModality(table, target=target), **{**defaults, **options})


def test_release_writes_a_verifiable_signed_directory_and_the_stewards_audit_beside_it(tmp_path, keys):
    # 3,000 rows: the 600 held out make the public utility figure's noise small enough to release.
    result = _release(tmp_path, keys, frame=_frame(3000))
    directory = tmp_path / "release"
    assert result.directory == directory
    assert sorted(p.name for p in directory.iterdir()) == ["report.dsse.json", "report.html", "report.json",
                                                           "synthetic.csv"]
    verified = verify_release(directory, keys[1])
    predicate = verified["predicate"]
    privacy = predicate["privacy"]
    assert privacy["epsilon"] == 3.0 and 0 < privacy["epsilon_spent"] <= 3.0
    assert privacy["unit"] == "one row of the input" and privacy["neighbouring_relation"] == "add/remove one row"
    assert [line["step"] for line in privacy["budget"]][:3] == ["row count", "schema", "preprocessing"]
    assert all({"step", "epsilon", "delta", "mechanism", "sensitivity", "unit"} <= set(line)
               for line in privacy["budget"])
    assert "OS cryptographic entropy" in privacy["noise_source"] and privacy["noise_reproducible"] is False
    # No exact count of real rows, no plain hash of the input, no seed, anywhere in the public report.
    text = json.dumps(predicate)
    assert "rows_train\"" not in text and "rows_holdout" not in text and "input_sha256" not in text
    assert from_frame(_frame(3000), source="people.csv").sha256 not in text
    assert "seed" not in json.dumps(predicate["model"])
    assert set(predicate["data"]["input_fingerprint"]) == {"algorithm", "salt", "mac"}
    assert predicate["audit"]["figures"]["ml_utility"]["target"] == "high"
    assert predicate["audit"]["figures"]["ml_utility"]["accuracy_noise_std"] <= 0.1
    assert predicate["data"]["holdout_fraction"] == 0.2  # the tables' default (images hold out 0.1)
    synthetic = pd.read_csv(directory / "synthetic.csv")
    assert list(synthetic.columns) == list(_frame().columns)
    assert len(synthetic) == predicate["data"]["rows_synthetic"] == predicate["data"]["rows_train_dp"]
    # The steward's exact audit: beside the release, signed, bound to it, labelled not for release.
    steward = verify_release(tmp_path / "release.steward-audit", keys[1])
    assert steward["predicate"]["label"].startswith("NOT FOR RELEASE")
    assert steward["predicate"]["release"]["directory"] == "release"
    assert steward["predicate"]["data"]["rows_train"] + steward["predicate"]["data"]["rows_holdout"] == 3000
    entries = BudgetLedger(tmp_path / "ledger.json").entries()
    assert len(entries) == 1 and entries[0]["epsilon"] == 3.0 and entries[0]["input_sha256"].startswith("content:")


def test_verify_checks_the_stewards_audit_beside_a_release_and_its_binding(tmp_path, keys, invoke):
    import shutil

    from synthdata.errors import VerificationError
    from synthdata.signing import verify_steward_audit

    _release(tmp_path, keys, out=tmp_path / "one")
    _release(tmp_path, keys, out=tmp_path / "two", epsilon=2.0)
    verified = invoke("verify", tmp_path / "one", "--public-key", keys[1])
    assert verified.exit_code == 0 and "steward's audit beside it" in verified.output, verified.output
    # Another release's audit put in its place is refused: it is bound to the other report.
    shutil.rmtree(tmp_path / "one.steward-audit")
    shutil.copytree(tmp_path / "two.steward-audit", tmp_path / "one.steward-audit")
    with pytest.raises(VerificationError, match="made for another release"):
        verify_steward_audit(tmp_path / "one", keys[1])
    refused = invoke("verify", tmp_path / "one", "--public-key", keys[1])
    assert_one_line_error(refused, "made for another release")


def test_holdout_rows_never_reach_the_generator():
    frame = _frame(500).assign(row=np.arange(500))
    modality = TableModality(from_frame(frame))
    train, holdout = modality.split(0.2, NoiseSource(seed=4))
    assert 50 < len(holdout) < 150  # each row independently, with probability 0.2
    assert set(train["row"]).isdisjoint(holdout["row"]) and len(set(train["row"]) | set(holdout["row"])) == 500
    again, _ = modality.split(0.2, NoiseSource(seed=4))
    pd.testing.assert_frame_equal(train, again)
    whole, none = modality.split(0.0, NoiseSource())
    assert none is None and len(whole) == 500


def test_fit_sees_only_the_training_rows(tmp_path, keys, monkeypatch):
    from synthdata.models import TabularGAN

    seen = {}
    original = TabularGAN.fit

    def spy(self, frame, *args, **kwargs):
        seen["rows"] = len(frame)
        return original(self, frame, *args, **kwargs)

    monkeypatch.setattr(TabularGAN, "fit", spy)
    result = _release(tmp_path, keys, holdout_fraction=0.25)
    steward = verify_release(result.steward_directory, keys[1])["predicate"]
    assert seen["rows"] == steward["data"]["rows_train"] < 800


def test_no_holdout_skips_membership_inference_and_says_so(tmp_path, keys):
    result = _release(tmp_path, keys, holdout_fraction=0.0, target=None)
    audit = result.predicate["audit"]
    assert audit["figures"]["membership"] is None and audit["figures"]["ml_utility"] is None
    assert "not tested" in audit["verdict"]


def test_a_re_export_of_the_same_data_shares_its_budget(tmp_path, keys):
    """Rows shuffled, columns reordered, another delimiter: the same dataset to the ledger."""
    frame = _frame()
    _release(tmp_path, keys, epsilon=6.0, out=tmp_path / "first")
    shuffled = frame.sample(frac=1.0, random_state=3)[["high", "hours", "city", "age"]]
    path = tmp_path / "export.tsv"
    shuffled.to_csv(path, sep="\t", index=False)
    table = read_table(path)
    with pytest.raises(PrivacyError, match="over the budget limit 10"):
        release(TableModality(table, target="high"), epsilon=6.0, key=keys[0], key_path=keys[1],
                out=tmp_path / "second", ledger=tmp_path / "ledger.json", model_options=FAST)
    assert not (tmp_path / "second").exists()
    # ... and an explicit dataset id names it whatever its content.
    _release(tmp_path, keys, epsilon=3.0, out=tmp_path / "third", dataset_id="survey-2026")
    keys_seen = {entry["input_sha256"] for entry in BudgetLedger(tmp_path / "ledger.json").entries()}
    assert "id:survey-2026" in keys_seen and len(keys_seen) == 2


@pytest.mark.parametrize("stage", STAGES)
def test_a_fault_at_any_stage_leaves_no_release_and_no_ledger_entry(tmp_path, keys, stage):
    def fail_at(message: str) -> None:
        if message.split(":")[0] == stage:
            raise RuntimeError(f"injected fault at {stage}")

    with pytest.raises(RuntimeError, match="injected fault"):
        _release(tmp_path, keys, progress=fail_at)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "config")
    assert left == [".ledger.json.lock", "ledger.json"]  # no release, no staging, no steward's audit
    assert BudgetLedger(tmp_path / "ledger.json").entries() == []


@pytest.mark.parametrize("target", ["synthdata.signing.write_signed", "synthdata.report.render_html",
                                    "synthdata.tabular.sampling.write_csv", "synthdata.audit.audit", "os.rename"])
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
    assert not (tmp_path / "release").exists() and not (tmp_path / "release.steward-audit").exists()
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


def test_cli_release_then_verify_then_budget(invoke, tmp_path, data_csv, keys):
    out = tmp_path / "rel"
    result = invoke("release", data_csv, "--epsilon", "2", "--target", "high", "--out", out, "--seed", "3",
                    "--quiet")
    assert result.exit_code == 0, result.output
    assert "epsilon spent" in result.output and str(out) in result.output
    public = tmp_path / "config" / "signing_key.pub.pem"
    assert public.exists() and str(public) in result.output  # the default key, created on first use
    verified = invoke("verify", out, "--public-key", public)
    assert verified.exit_code == 0, verified.output
    # Without --holdout-fraction a table release holds out 0.2, as before the images got their own default.
    assert verify_release(out, public)["predicate"]["data"]["holdout_fraction"] == 0.2
    steward = invoke("verify", tmp_path / "rel.steward-audit", "--public-key", public)
    assert steward.exit_code == 0 and "NOT FOR RELEASE" in steward.output, steward.output
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
def test_cli_release_refuses_bad_options_in_one_line(invoke, tmp_path, data_csv, args, fragment):
    result = invoke("release", data_csv, "--out", tmp_path / "rel", "--quiet", *args)
    assert_one_line_error(result, fragment, exit_code=result.exit_code if result.exit_code else 1)
    assert not (tmp_path / "rel").exists()


def test_the_summary_names_the_public_key_never_the_private_one(invoke, tmp_path, data_csv, monkeypatch):
    # The summary line is what is tested, not the fit (the release above runs every default):
    # 100 generator steps instead of 3,000.
    monkeypatch.setitem(TabularGAN.__init__.__kwdefaults__, "generator_steps", 100)
    made = invoke("keygen", "--out", tmp_path / "keys")
    assert made.exit_code == 0, made.output
    private = tmp_path / "keys" / "signing_key.pem"
    result = invoke("release", data_csv, "--epsilon", "2", "--key", private, "--out", tmp_path / "rel", "--quiet")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "verify with:" in line)
    assert line.endswith("--public-key " + str(tmp_path / "keys" / "signing_key.pub.pem")), line


def test_a_private_key_without_its_public_half_beside_it_is_never_named_as_public(tmp_path):
    from synthdata.release import _public_half

    private = tmp_path / "steward.pem"
    private.write_text("private")
    assert _public_half(private) is None
    (tmp_path / "steward.pub.pem").write_text("public")
    assert _public_half(private) == tmp_path / "steward.pub.pem"
