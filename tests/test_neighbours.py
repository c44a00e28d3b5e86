"""The neighbour test: nothing a release publishes may tell D from D plus one crafted row.

Differential privacy says the distribution of every published byte is nearly the same
on neighbouring inputs. A deterministic difference — a field that is the same on every
run on D but different on D′ — is a certain distinguisher, so it is a bug. This harness
runs the real pipeline (``release`` and ``fit`` + ``save``) several times on D and once on
D′ = D + one crafted row (a new category, an extreme number, a fraction in a whole-number
column, a date in another format, a near-identifier, an all-missing row, text in a number
column, 12:75 in a column of times written HHMM, a stamp off the hour among hourly ones) and compares every published field: the public report (JSON, and the HTML with
its numbers masked), the synthetic CSV's header, dtypes and length, and the saved model's
``model.json``. A field that differs between the runs on D is noisy (it is allowed to
differ on D′); any other field must be identical on D′.

The same for images: D′ adds an image of saturated pixels or one with a label no other
image holds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synthdata import from_frame
from synthdata.images import ImageSet
from synthdata.images.modality import ImageModality
from synthdata.release import release
from synthdata.signing import generate_keypair, load_private_key
from synthdata.tabular.modality import TableModality

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::synthdata.errors.SynthdataWarning")]

FAST = {"generator_steps": 20, "epochs": 0.5, "device": "cpu"}
RUNS_ON_D = 3
RUNS_ON_D_PRIME = 2


def _table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    return pd.DataFrame({
        "age": age,
        "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
        "income": np.round(rng.lognormal(10, 0.5, n), 2),
        "visits": rng.poisson(3, n),
        "joined": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "smoker": rng.random(n) < 0.3,
        "note": rng.choice(["none", "mild", "severe"], n).astype(object),
        "departs": (lambda m: (m // 60) * 100 + m % 60)(rng.integers(6 * 60, 22 * 60, n)),  # times HHMM
        "checked_in": (pd.to_datetime("2021-01-01") + pd.to_timedelta(rng.integers(0, 24 * 200, n), unit="h"))
        .strftime("%Y-%m-%dT%H:%M:%SZ"),  # hourly stamps
    }).assign(joined=lambda f: f["joined"].dt.strftime("%Y-%m-%d"))


CRAFTED_ROWS = {
    "new category": {"city": "Atlantis"},
    "extreme number": {"income": 9.9e9, "visits": 10_000},
    "fraction in a whole-number column": {"age": 37.5, "visits": 2.25},
    "date in another format": {"joined": "31.12.2020"},
    "near-identifier": {"note": "patient-000123-unique", "city": "Zq-81734"},
    "all missing": {"age": None, "city": None, "income": None, "visits": None, "joined": None,
                    "smoker": None, "note": None},
    "text in a number column": {"income": "n/a-ish", "age": "forty"},
    "a number that is no time": {"departs": 1275},
    "a stamp off the hour": {"checked_in": "2021-03-04T10:17:00Z"},
}


@pytest.fixture(autouse=True)
def no_stewards_audit(monkeypatch):
    """The steward's exact audit is never published: skip its costly models here."""
    monkeypatch.setattr("synthdata.audit.audit", lambda *args, **kwargs: {"format": "skipped in this test"})
    monkeypatch.setattr("synthdata.images.audit.audit_images", lambda *args, **kwargs: {"format": "skipped"})


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    private, public = generate_keypair(tmp_path_factory.mktemp("keys"))
    return load_private_key(private), public


def _with(frame: pd.DataFrame, row: dict[str, Any]) -> pd.DataFrame:
    base = frame.iloc[[0]].copy().astype(object)
    for column, value in row.items():
        base[column] = value
    return pd.concat([frame.astype(object), base], ignore_index=True)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Fields by path. A list of records (dicts) is compared record by record; any other list
    (values, pairs, cells) is one field, since its order and length are the mechanism's."""
    if isinstance(value, dict):
        out: dict[str, Any] = {f"{prefix}#keys": json.dumps(sorted(map(str, value)))}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        out = {f"{prefix}#len": len(value)}
        for index, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: json.dumps(value, sort_keys=True) if isinstance(value, list) else value}


def _published(directory: Path, model_dir: Path | None) -> dict[str, Any]:
    """Every field a release publishes, by name."""
    fields = _flatten(json.loads((directory / "report.json").read_text())["predicate"], "report")
    fields["report.html (numbers masked)"] = re.sub(r"\d+", "#", (directory / "report.html").read_text())
    csv = directory / "synthetic.csv"
    if csv.exists():
        synthetic = pd.read_csv(csv)
        fields["synthetic.csv header"] = list(synthetic.columns)
        fields["synthetic.csv dtypes"] = [str(t) for t in synthetic.dtypes]
        fields["synthetic.csv rows"] = len(synthetic)
    if model_dir is not None:
        meta = json.loads((model_dir / "model.json").read_text())
        meta.pop("generator", None)  # the weights' checksum: a function of the trained weights
        fields.update(_flatten(meta, "model.json"))
    return fields


def _constant(runs: list[dict[str, Any]], name: str) -> bool:
    values = [run.get(name, "<absent>") for run in runs]
    return all(value == values[0] for value in values)


def _inside_varying_container(runs: list[dict[str, Any]], name: str) -> bool:
    """Inside a list of records whose length, or a dict whose keys, vary between ``runs``."""
    for match in re.finditer(r"\[\d+\]", name):
        if not _constant(runs, name[:match.start()] + "#len"):
            return True
    for match in re.finditer(r"\.", name):
        if not _constant(runs, name[:match.start()] + "#keys"):
            return True
    return False


def _differences(reference: list[dict[str, Any]], other: list[dict[str, Any]]) -> list[str]:
    """Fields constant over the ``reference`` runs that take one other value over the ``other`` runs."""
    problems = []
    for name in sorted(set().union(*reference, *other)):
        if _inside_varying_container(reference, name) or not _constant(reference, name) \
                or not _constant(other, name):
            continue
        expected, seen = reference[0].get(name, "<absent>"), other[0].get(name, "<absent>")
        if seen != expected:
            problems.append(f"{name}: {expected!r} on D, {seen!r} on D'")
    return problems


def _deterministic_differences(runs_on_d: list[dict[str, Any]],
                               neighbours: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Deterministic differences between D and its neighbours, by crafted row.

    A field counts as deterministic only when it is constant over many runs: for one crafted
    row, over the runs on D *and* on the other crafted rows' neighbours (each of which is
    also D plus one row); its value on this row's runs must then be the same. A difference
    every neighbour shares (an exact count, say) is caught by comparing D's runs with all
    the neighbours' runs together. A noisy field that rarely changes can coincide over a
    few runs by chance, not over a dozen.
    """
    problems: dict[str, list[str]] = {}
    everyone = [run for runs in neighbours.values() for run in runs]
    common = _differences(runs_on_d, everyone)
    if common:
        problems["every crafted row"] = common
    for label, runs in neighbours.items():
        others = runs_on_d + [run for other, rest in neighbours.items() if other != label for run in rest]
        found = _differences(others, runs)
        if found:
            problems[label] = found
    return problems


def _confirmed(problems: dict[str, list[str]], runs_on_d: list[dict[str, Any]],
               neighbours: dict[str, list[dict[str, Any]]], run_on_d: Callable[[int], dict[str, Any]],
               run_on_neighbour: Callable[[str, int], dict[str, Any]], rounds: int = 6) -> dict[str, list[str]]:
    """Re-run both sides of each difference found before it counts.

    DP post-processing can make a field nearly constant (a value just below its noisy
    threshold is released only now and then), and at a large epsilon one more row moves
    such a value's chance a lot: a few runs can agree by chance. A deterministic leak
    stays the same on every new run; a noisy field sooner or later changes. Rounds cost
    nothing when no difference is found; three were once too few in CI: a numeric level's
    grouping of pieces (``holes`` of level 11, a function of the noisy weights) read one way
    on 10 runs and the other on 5, though on both D and D' either way comes up in about one
    run in four (measured on 12 runs).
    """
    for _ in range(rounds):
        if not problems:
            break
        runs_on_d.append(run_on_d(len(runs_on_d)))
        for label in problems:
            if label in neighbours:
                neighbours[label].append(run_on_neighbour(label, len(neighbours[label])))
        problems = _deterministic_differences(runs_on_d, neighbours)
    return problems


class _Keeping(TableModality):
    """The table modality, keeping the fitted model so its saved files can be compared too."""

    def fit(self, train, **options):
        self.model = super().fit(train, **options)
        return self.model


def _release_table(frame: pd.DataFrame, tmp: Path, keys, epsilon: float, tag: str) -> dict[str, Any]:
    key, public = keys
    out = tmp / f"release-{tag}"
    modality = _Keeping(from_frame(frame, source="patients.csv"), target="smoker")
    release(modality, epsilon=epsilon, key=key, key_path=public, out=out, ledger=tmp / f"ledger-{tag}.json",
            model_options=FAST, seed=5)
    modality.model.save(tmp / f"model-{tag}")  # what `synthdata fit --model-out` writes
    return _published(out, tmp / f"model-{tag}")


# Each crafted row is tried at one budget (both budgets are covered) to keep the suite's time.
@pytest.mark.parametrize("epsilon, crafted", [
    (1.0, ["new category", "fraction in a whole-number column", "date in another format", "all missing",
           "a stamp off the hour"]),
    (10.0, ["extreme number", "near-identifier", "text in a number column", "a number that is no time"]),
])
def test_no_published_table_field_tells_d_from_d_plus_one_crafted_row(tmp_path, keys, monkeypatch, epsilon,
                                                                        crafted):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    # Large enough that the private schema's decisions are clear of the noise at epsilon 1: the
    # harness looks for deterministic leaks, not for the noise deciding a borderline column.
    frame = _table(1500)
    runs = [_release_table(frame, tmp_path, keys, epsilon, f"d{i}") for i in range(RUNS_ON_D)]
    # The harness must be able to see a difference: some fields are noisy, most are not.
    noisy = [name for name in runs[0] if runs[0][name] != runs[1].get(name)]
    assert noisy and len(noisy) < len(runs[0]) / 2, noisy
    assert "report.privacy.budget[0].step" not in noisy
    def on_neighbour(label: str, i: int) -> dict[str, Any]:
        return _release_table(_with(frame, CRAFTED_ROWS[label]), tmp_path, keys, epsilon,
                              re.sub(r"\W+", "-", label) + str(i))

    neighbours = {label: [on_neighbour(label, i) for i in range(RUNS_ON_D_PRIME)] for label in crafted}
    problems = _confirmed(_deterministic_differences(runs, neighbours), runs, neighbours,
                          lambda i: _release_table(frame, tmp_path, keys, epsilon, f"d{i}"), on_neighbour)
    assert not problems, json.dumps(problems, indent=1)


def test_the_harness_catches_a_deterministic_leak(tmp_path, keys, monkeypatch):
    """Sanity: publishing the exact row count (what the old release did) is caught."""
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    import synthdata.tabular.modality as modality

    original = modality.TableModality.data_section

    def leaky(self, model, count):
        return {**original(self, model, count), "rows_exact": len(self.table.frame)}

    monkeypatch.setattr(modality.TableModality, "data_section", leaky)
    frame = _table(300)
    runs = [_release_table(frame, tmp_path, keys, 5.0, f"d{i}") for i in range(2)]
    neighbours = {"one more row": [_release_table(_with(frame, {"city": "Oslo"}), tmp_path, keys, 5.0, f"n{i}")
                                   for i in range(2)]}
    problems = _deterministic_differences(runs, neighbours)
    assert any(p.startswith("report.data.rows_exact") for p in problems["every crafted row"]), problems


# --------------------------------------------------------------------------- images


def _images(n: int = 1500, seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = np.clip(rng.normal(60 + 60 * labels[:, None, None], 30, (n, 8, 8)), 0, 255).astype(np.uint8)[..., None]
    return ImageSet(images=images, labels=labels.astype(np.int64), class_names=["a", "b", "c"], source="scans.npz",
                    sha256="0" * 64, mode="L")


def _with_image(images: ImageSet, image: np.ndarray, label_name: str) -> ImageSet:
    names = list(images.class_names)
    if label_name not in names:
        names.append(label_name)
    return ImageSet(images=np.concatenate([images.images, image[None]]),
                    labels=np.append(images.labels, names.index(label_name)), class_names=names,
                    source=images.source, sha256="1" * 64, mode=images.mode)


def _release_images(images: ImageSet, tmp: Path, keys, epsilon: float, tag: str) -> dict[str, Any]:
    key, public = keys
    out = tmp / f"images-{tag}"
    release(ImageModality(images), epsilon=epsilon, key=key, key_path=public, out=out,
            ledger=tmp / f"ledger-{tag}.json", seed=5,
            model_options={"generator_steps": 10, "epochs": 0.3, "features": 200, "device": "cpu"})
    fields = _published(out, None)
    fields["image files"] = sorted({p.parent.name for p in (out / "images").rglob("*.png")})
    return fields


@pytest.mark.parametrize("epsilon", [1.0, 10.0])
def test_no_published_image_field_tells_d_from_d_plus_one_crafted_image(tmp_path, keys, monkeypatch, epsilon):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    # The audits' CNNs train one epoch instead of 12: their accuracies are noisy figures either
    # way, and every published field is still written (at epsilon 10, 12 epochs were 3/4 of the time).
    monkeypatch.setattr("synthdata.images.audit.CNN_EPOCHS", 1)
    images = _images()
    runs = [_release_images(images, tmp_path, keys, epsilon, f"d{i}") for i in range(RUNS_ON_D)]
    crafted = {"saturated image": (np.full((8, 8, 1), 255, np.uint8), "a"),
               "a label no other image holds": (np.zeros((8, 8, 1), np.uint8), "zebra")}
    def on_neighbour(label: str, i: int) -> dict[str, Any]:
        image, name = crafted[label]
        return _release_images(_with_image(images, image, name), tmp_path, keys, epsilon,
                               re.sub(r"\W+", "-", label) + str(i))

    neighbours = {label: [on_neighbour(label, i) for i in range(RUNS_ON_D_PRIME)] for label in crafted}
    problems = _confirmed(_deterministic_differences(runs, neighbours), runs, neighbours,
                          lambda i: _release_images(images, tmp_path, keys, epsilon, f"d{i}"), on_neighbour)
    assert not problems, json.dumps(problems, indent=1)
