"""A privacy unit: the guarantee protects one person with all their rows, not one row.

Contribution bounding (a cap of k rows per person, sampled uniformly, before any
mechanism), sensitivities scaled by k, DP-SGD that samples and clips persons, a holdout
and an audit per person, the report's unit, and the neighbour test with "remove one
person" neighbours.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from synthdata import from_frame
from synthdata.errors import DataError
from synthdata.models import TabularGAN
from synthdata.privacy import NoiseSource, PrivacyLedger, PrivacyUnit
from synthdata.privacy.bounding import (
    ROWS_PER_UNIT_BINS,
    UnitRequest,
    _sample_rows,
    bound_contributions,
    choose_cap,
    noun_for_column,
    unit_codes,
)
from synthdata.schema import Column, Schema
from synthdata.tabular.modality import TableModality, person_id_candidates
from synthdata.tabular.networks import Discriminator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"generator_steps": 30, "epochs": 0.5, "device": "cpu"}


def encounters(patients: int = 2500, seed: int = 0, *, heavy: int = 0) -> pd.DataFrame:
    """A hospital-style table: one row per encounter, a geometric number of encounters per
    patient (mean about 3), patient-level age and sex, encounter-level ward and stay.
    ``heavy`` > 0 adds one patient with that many encounters (patient ``P-HEAVY``)."""
    rng = np.random.default_rng(seed)
    counts = rng.geometric(0.35, patients)
    ids = np.repeat([f"P{p:05d}" for p in range(patients)], counts)
    age = np.repeat(rng.integers(18, 90, patients), counts)
    sex = np.repeat(rng.choice(["F", "M"], patients), counts)
    n = len(ids)
    ward = rng.choice(["cardiology", "orthopaedics", "neurology", "oncology"], n, p=[0.4, 0.3, 0.2, 0.1])
    stay = np.clip(rng.poisson(3, n) + (ward == "oncology") * 4, 1, 30)
    frame = pd.DataFrame({"patient_id": ids, "age": age, "sex": sex.astype(object), "ward": ward.astype(object),
                          "length_of_stay": stay, "readmitted": rng.random(n) < 0.15 + 0.002 * (age - 18)})
    if heavy:
        extra = frame.iloc[:heavy].copy()
        extra["patient_id"] = "P-HEAVY"
        extra["age"] = 97
        extra["ward"] = "oncology"
        frame = pd.concat([frame, extra], ignore_index=True)
    return frame


# --------------------------------------------------------------------------- per-unit clipping


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_unit_clipping_equals_clipping_each_persons_summed_gradient_by_autograd(seed):
    torch.manual_seed(seed)
    network = Discriminator(input_dim=11, hidden=7)
    rows = 40
    x = torch.randn(rows, 11) * 2
    labels = (torch.rand(rows) < 0.5).float()
    groups = torch.randint(0, 12, (rows,))
    groups = torch.unique(groups, return_inverse=True)[1]  # 0..G-1, unsorted, sizes 1 to ~8
    persons = int(groups.max()) + 1
    summed = []
    for g in range(persons):  # one person at a time: the sum of their rows' gradients, by autograd
        mine = groups == g
        network.zero_grad()
        F.binary_cross_entropy_with_logits(network(x[mine]), labels[mine], reduction="sum").backward()
        summed.append([p.grad.clone() for p in network.parameters()])
    norms = [float(torch.sqrt(sum((grad ** 2).sum() for grad in grads))) for grads in summed]
    clip = float(np.median(norms))  # some persons clipped, some not: both paths exercised
    expected = [sum(min(1.0, clip / (norm + 1e-6)) * grads[k] for grads, norm in zip(summed, norms))
                for k in range(len(summed[0]))]

    network.zero_grad()
    network.clipped_backward(x, lambda logits: F.binary_cross_entropy_with_logits(logits, labels, reduction="none"),
                             max_grad_norm=clip, groups=groups)
    got = [p.grad.clone() for p in network.parameters()]
    assert max(norms) > clip > min(norms)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_singleton_groups_are_per_row_clipping():
    torch.manual_seed(3)
    network = Discriminator(input_dim=6, hidden=5)
    x, labels = torch.randn(25, 6), (torch.rand(25) < 0.5).float()
    loss = lambda logits: F.binary_cross_entropy_with_logits(logits, labels, reduction="none")  # noqa: E731
    network.clipped_backward(x, loss, max_grad_norm=0.2)
    rows = [p.grad.clone() for p in network.parameters()]
    network.clipped_backward(x, loss, max_grad_norm=0.2, groups=torch.arange(25))
    for a, p in zip(rows, network.parameters()):
        torch.testing.assert_close(a, p.grad)


# --------------------------------------------------------------------------- contribution bounding


def test_the_cap_keeps_at_most_k_rows_per_person_drawn_uniformly():
    codes = np.repeat(np.arange(3), [10, 2, 1])
    codes = np.r_[codes, [-1, -1]]  # two rows without a unit
    kept_counts = np.zeros(len(codes))
    draws = 4000
    rng = np.random.default_rng(7)
    for _ in range(draws):
        keep = _sample_rows(codes, 3, 4, rng)
        assert np.all(np.bincount(codes[keep], minlength=3) == [4, 2, 1])
        assert np.all(codes[keep] >= 0) and np.all(np.diff(keep) > 0)
        kept_counts[keep] += 1
    # Each of the heavy person's 10 rows is kept with probability 4/10; the others always; unitless never.
    share = kept_counts[:10] / draws
    assert np.all(np.abs(share - 0.4) < 0.04), share
    assert np.all(kept_counts[10:13] == draws) and np.all(kept_counts[13:] == 0)


def test_rows_without_a_unit_are_never_read_and_the_histogram_counts_persons():
    frame = pd.DataFrame({"pid": ["a", "a", "a", None, "b", None], "x": [1, 2, 3, 4, 5, 6]})
    ledger = PrivacyLedger(epsilon=1.0, delta=1e-6, noise=NoiseSource(seed=1))
    from synthdata.privacy import GaussianRequest

    ledger.plan(gaussians={"rows per unit": GaussianRequest(sensitivity=1.0, share=1.0)})
    bounded = bound_contributions(frame, UnitRequest("pid", max_rows=2, noun="patient"), ledger)
    assert sorted(frame.loc[bounded.keep, "pid"]) == ["a", "a", "b"]
    assert ledger.unit == PrivacyUnit(column="pid", max_rows=2, noun="patient")
    line = ledger.spends[-1]
    assert line.step == "rows per unit" and line.sensitivity == 1.0  # one person is in one bin
    assert line.unit == "one patient (pid): all their rows, up to 2 rows"
    assert bounded.report()["column_released"] is False and bounded.cap_chosen.startswith("by the steward")


def test_the_default_cap_keeps_every_row_of_three_persons_in_four():
    counts = np.zeros(len(ROWS_PER_UNIT_BINS))
    counts[0], counts[3], counts[6] = 500, 200, 300  # 1 row, 4 rows, 9-12 rows
    assert choose_cap(counts) == 12  # 4 rows keep 70% of the persons whole: not enough; 9-12 ends a bin
    counts[6] = 150
    assert choose_cap(counts) == 4  # 700 of 850
    counts[6], counts[4] = 0, 400  # 1, 4 or 5 rows (people followed 3 or 5 years): 6, not the power of two 8
    assert choose_cap(counts) == 6
    counts[-1] = 10_000  # persons with 1025+ rows: the default never goes past 32
    assert choose_cap(counts) == 32
    assert choose_cap(np.zeros(len(ROWS_PER_UNIT_BINS))) == 1


@pytest.mark.parametrize("column, noun", [("patient_id", "patient"), ("CustomerID", "customer"),
                                          ("user", "user"), ("member_no", "member"), ("ID", "person")])
def test_the_reports_noun_comes_from_the_public_header(column, noun):
    assert noun_for_column(column) == noun


def test_unit_codes_leave_missing_units_out():
    codes, count = unit_codes(pd.Series(["x", None, "y", "x", np.nan]))
    assert count == 2 and list(codes) == [0, -1, 1, 0, -1]


# --------------------------------------------------------------------------- the guarantee is per person


def _fit(frame, cap, **options):
    model = TabularGAN(epsilon=2.0, insecure_noise_seed=11, seed=3, **{**FAST, **options})
    with _quiet():
        return model.fit(frame, unit=UnitRequest("patient_id", max_rows=cap, noun="patient"))


class _quiet:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def test_one_person_with_50_rows_is_protected_as_one_person_noise_scales_with_the_cap():
    frame = encounters(heavy=50)
    fits = {cap: _fit(frame, cap) for cap in (2, 6)}
    lines = {cap: {line.step: line for line in model.ledger_.spends} for cap, model in fits.items()}
    for cap, model in fits.items():
        # Every spend is for one person with all their rows (at most the cap), and the total is within epsilon.
        assert {line.unit for line in lines[cap].values()} == {
            f"one patient (patient_id): all their rows, up to {cap} rows"}
        assert model.epsilon_spent_ <= 2.0
        assert "patient_id" not in model.columns_ and "P-HEAVY" not in json.dumps(model.encoder_.state_dict())
        dpsgd = lines[cap]["discriminator"]
        assert dpsgd.parameters["sampled"].startswith("units") and "per-unit" in dpsgd.parameters["clipping"]
        assert dpsgd.sensitivity == model.max_grad_norm  # one person's summed gradient is clipped to C
    # Same (seeded, test-only) noisy count -> same plan; each row-reading mechanism's sensitivity,
    # and so its noise, grows with the cap: one person moves every count by up to k.
    per_release = {  # sensitivity of one release, over the number of counts it is spread over
        cap: {"preprocessing": lines[cap]["preprocessing"].sensitivity,
              "selection": lines[cap]["selection"].sensitivity,
              "marginals": lines[cap]["marginals"].sensitivity / np.sqrt(len(lines[cap]["marginals"].parameters["pairs"]))}
        for cap in fits}
    for step in per_release[2]:
        assert per_release[6][step] == pytest.approx(3.0 * per_release[2][step]), step
        assert lines[6][step].parameters["sigma"] / lines[6][step].sensitivity == pytest.approx(
            lines[2][step].parameters["sigma"] / lines[2][step].sensitivity)  # same plan: noise ∝ sensitivity
    # Counts that a person moves by one whatever their rows do not scale.
    assert lines[6]["patient count"].sensitivity == lines[2]["patient count"].sensitivity == 1.0
    assert lines[6]["rows per unit"].sensitivity == 1.0


def test_the_heavy_persons_rows_are_capped_before_any_mechanism(monkeypatch):
    seen = {}
    from synthdata.tabular import stats

    original = stats.FrameStats.histograms

    def spy(self, schema):  # the rows whose counts the encoder's histograms are made of
        seen["rows"] = len(self.frame)
        seen["old"] = int((self.frame["age"] == 97).sum())
        return original(self, schema)

    monkeypatch.setattr(stats.FrameStats, "histograms", spy)
    frame = encounters(patients=1500, heavy=50)
    _fit(frame, 3)
    assert seen["old"] == 3  # the 97-year-old heavy patient: 3 of 50 rows reach the histograms
    per_patient = frame.groupby("patient_id").size().clip(upper=3)
    assert seen["rows"] == per_patient.sum()


def test_a_declared_schema_may_name_the_unit_and_must_not_synthesise_it():
    frame = encounters(patients=1500)
    columns = (Column("age", "numerical", integer=True, bounds=(18, 90)), Column("sex", "categorical"),
               Column("ward", "categorical"), Column("length_of_stay", "numerical", integer=True, bounds=(1, 30)),
               Column("readmitted", "boolean"))
    schema = Schema(columns=columns, privacy_unit={"column": "patient_id", "max_rows": 4, "noun": "patient"})
    with _quiet():
        model = TabularGAN(epsilon=2.0, **FAST).fit(frame, schema=schema)
    assert model.unit_ == PrivacyUnit(column="patient_id", max_rows=4, noun="patient")
    assert "schema" not in {line.step for line in model.ledger_.spends}
    with pytest.raises(DataError, match="never released"):
        TabularGAN(epsilon=2.0, **FAST).fit(frame, schema=Schema(columns=columns + (
            Column("patient_id", "categorical"),)), unit="patient_id")


def test_the_public_audit_per_patient_when_the_synthetic_rows_hold_one_class_of_the_target():
    from synthdata.tabular.audit import public_audit

    frame = encounters(patients=600)
    train, holdout = frame.iloc[:1200], frame.iloc[1200:]
    model = _fit(train, 2, budget_split={"audit": 0.05})
    synthetic = model.sample(300, seed=0).assign(readmitted=False)  # no classifier can be trained on one class
    public = public_audit(model, train, holdout, synthetic, target="readmitted", holdout_fraction=0.2, seed=0,
                          units=unit_codes(train["patient_id"])[0], holdout_units=unit_codes(holdout["patient_id"])[0])
    figures = public["figures"]  # no utility figure, the rest still released per patient
    assert figures["ml_utility"] is None and figures["unit"].startswith("one patient (patient_id)")
    assert set(figures["copies"]) == {"train_patients_with_a_copy", "holdout_patients_with_a_copy"}


def test_the_holdout_keeps_each_persons_rows_together():
    frame = encounters(patients=800)
    modality = TableModality(from_frame(frame), unit="patient_id")
    train, holdout = modality.split(0.25, NoiseSource(seed=2))
    assert set(train["patient_id"]).isdisjoint(holdout["patient_id"])
    assert len(train) + len(holdout) == len(frame)
    assert 0.15 < holdout["patient_id"].nunique() / 800 < 0.35


def test_inspect_finds_a_repeating_person_id():
    frame = encounters(patients=300)
    frame["encounter_id"] = np.arange(len(frame))
    assert [name for name, _, _ in person_id_candidates(frame)] == ["patient_id"]


# --------------------------------------------------------------------------- releases


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from synthdata.signing import generate_keypair, load_private_key

    private, public = generate_keypair(tmp_path_factory.mktemp("keys"))
    return load_private_key(private), public


@pytest.mark.slow
def test_a_hospital_table_releases_in_one_command_with_the_unit_one_patient(invoke, tmp_path, monkeypatch):
    """The steward's one command, with the default progress output (stages, the fit's bar) and summary."""
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "encounters.csv"
    encounters(patients=3000).to_csv(path, index=False)
    out = tmp_path / "release"
    result = invoke("release", path, "--epsilon", "1", "--privacy-unit", "patient_id", "--target", "readmitted",
                    "--out", out, "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "unit: one patient (patient_id)" in result.stdout and "cap: at most" in result.stdout
    stages = re.findall(r"^\[(\d+)/(\d+)\] ", result.stderr, flags=re.MULTILINE)
    assert len(stages) >= 5 and stages[0][0] == "1" and len({total for _, total in stages}) == 1, result.stderr
    assert "Traceback" not in result.output and not re.search(r"P\d{5}", result.output)  # no patient id
    predicate = json.loads((out / "report.json").read_text())["predicate"]
    assert predicate["privacy"]["unit"].startswith("one patient (patient_id): all their rows, up to ")
    assert predicate["privacy"]["neighbouring_relation"].startswith("add/remove one patient with all their rows")
    section = predicate["data"]["privacy_unit"]
    assert section["column"] == "patient_id" and section["max_rows"] >= 1 and "rows_dropped_by_cap_dp" in section
    figures = predicate["audit"]["figures"]
    # Counts of patients: one patient moves each by at most 1 — copies, and the utility's two counts and the
    # attack's two where they are released (~600 holdout patients at epsilon 1: the utility's noise too large).
    utility, attack = figures["ml_utility"] is not None, figures["membership"] is not None
    assert figures["sensitivity"] == pytest.approx(np.sqrt(1 + 2 * utility + 2 * attack))
    assert utility or figures["ml_utility_note"].startswith("not released: at this budget and holdout size")
    assert "patients" in json.dumps(figures["copies"])
    synthetic = pd.read_csv(out / "synthetic.csv")
    assert "patient_id" not in synthetic.columns
    # At epsilon 1 per patient a column can be left out (a warning says so); never the id, never a new one.
    assert set(synthetic.columns) <= {"age", "sex", "ward", "length_of_stay", "readmitted"}
    assert "readmitted" in synthetic.columns and len(synthetic.columns) >= 3
    steward = json.loads((tmp_path / "release.steward-audit" / "report.json").read_text())["predicate"]
    assert steward["audit"]["membership_per_unit"]["units_scored"] > 50
    assert steward["data"]["privacy_unit"]["units_train"] > 2000
    html = (out / "report.html").read_text()
    assert "one patient" in html


# --------------------------------------------------------------------------- neighbours: remove one person


def _published(frame: pd.DataFrame, tmp: Path, keys, tag: str) -> dict:
    """Every field a release with the person as the unit publishes (report, HTML, CSV, model.json)."""
    from synthdata.release import release

    from .test_neighbours import _Keeping
    from .test_neighbours import _published as published_fields

    key, public = keys
    out = tmp / f"release-{tag}"
    modality = _Keeping(from_frame(frame, source="encounters.csv"), target="readmitted", unit="patient_id")
    with _quiet():
        release(modality, epsilon=1.0, key=key, key_path=public, out=out, ledger=tmp / f"ledger-{tag}.json",
                model_options=FAST, seed=5)
    modality.model.save(tmp / f"model-{tag}")  # what `synthdata fit --privacy-unit` writes
    return published_fields(out, tmp / f"model-{tag}")


@pytest.mark.slow
def test_no_published_field_tells_d_from_d_minus_one_person(tmp_path, keys, monkeypatch):
    """Neighbours under the person relation: D, and D without one person (all their rows).

    The neighbour harness of ``tests/test_neighbours.py`` (fields constant over the runs on
    D must be the same on D′; a difference is re-run on both sides before it counts), with
    D′ = D minus the patient with 50 encounters: before the cap, the rows most likely to
    move a count, a category or a range deterministically.
    """
    from .test_neighbours import _confirmed, _deterministic_differences

    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    # The steward's exact audit is never published: skip its costly models here.
    monkeypatch.setattr("synthdata.audit.audit", lambda *args, **kwargs: {"format": "skipped in this test"})
    monkeypatch.setattr("synthdata.tabular.audit.unit_membership", lambda *args, **kwargs: {"skipped": True})
    frame = encounters(patients=1200, heavy=50)
    neighbour = frame[frame["patient_id"] != "P-HEAVY"]
    assert len(frame) - len(neighbour) == 50
    runs = [_published(frame, tmp_path, keys, f"d{i}") for i in range(3)]
    noisy = [name for name in runs[0] if runs[0][name] != runs[1].get(name)]
    assert noisy and len(noisy) < len(runs[0]) / 2, noisy
    assert runs[0]["report.privacy.unit"].startswith("one patient (patient_id)")

    def on_neighbour(label: str, i: int) -> dict:
        return _published(neighbour, tmp_path, keys, f"n{i}")

    neighbours = {"without P-HEAVY": [on_neighbour("without P-HEAVY", 0)]}
    problems = _confirmed(_deterministic_differences(runs, neighbours), runs, neighbours,
                          lambda i: _published(frame, tmp_path, keys, f"d{i}"), on_neighbour)
    assert not problems, json.dumps(problems, indent=1)


def test_cli_inspect_suggests_the_privacy_unit_and_leaves_the_id_out(invoke, tmp_path):
    path = tmp_path / "encounters.csv"
    encounters(patients=1500).to_csv(path, index=False)
    result = invoke("inspect", path, "--schema-out", tmp_path / "schema.json")
    assert result.exit_code == 0, result.output
    assert "--privacy-unit patient_id" in result.output
    schema = Schema.load(tmp_path / "schema.json")
    assert "patient_id" not in schema.names and "patient_id" in {e.name for e in schema.excluded}


def test_cli_cap_and_noun_need_the_unit_column(invoke, tmp_path):
    path = tmp_path / "encounters.csv"
    encounters(patients=100).to_csv(path, index=False)
    result = invoke("fit", path, "--epsilon", "1", "--max-rows-per-unit", "3", "--model-out", tmp_path / "m")
    assert result.exit_code == 2 and "--privacy-unit" in result.output
    assert not (tmp_path / "m").exists()
