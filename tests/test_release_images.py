"""synthdata release for images: signed, verifiable, atomic, on the ledger.

A stub generator with the image model's interface (noisy class means: no training, so
the pipeline is tested in seconds); one test runs the real ``ImageGAN`` when it exists.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from synthdata.budget import BudgetLedger
from synthdata.errors import VerificationError
from synthdata.images import read_images
from synthdata.release import release_images
from synthdata.report import render_html
from synthdata.signing import generate_keypair, load_private_key, verify_release

from .conftest import assert_one_line_error

DIGITS = Path(__file__).resolve().parents[1] / "sample_datasets" / "digits.npz"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Ledger:
    def __init__(self, epsilon, delta):
        self.epsilon, self.delta = epsilon, delta

    def to_dict(self):
        return {"epsilon": self.epsilon, "epsilon_spent": self.epsilon * 0.98, "delta": self.delta,
                "accountant": "rdp",
                "budget": [{"step": "training", "epsilon": self.epsilon * 0.98, "delta": self.delta,
                            "mechanism": "stub"}]}


class StubImageGAN:
    """The promised ImageGAN interface: class means plus noise; records what fit saw."""

    seen: list = []

    def __init__(self, *, epsilon, delta=None, seed=None, device="auto", progress=None):
        self.epsilon, self.delta, self.seed = epsilon, delta, seed

    def fit(self, images, labels=None):
        images = images if images.ndim == 4 else images[..., None]
        StubImageGAN.seen.append(images)
        self.image_shape_ = images.shape[1:]
        self.classes_ = None if labels is None else np.unique(labels)
        groups = [images] if labels is None else [images[labels == c] for c in self.classes_]
        self.means_ = [g.astype(float).mean(axis=0) for g in groups]
        self.delta_ = self.delta if self.delta is not None else 1e-5
        self.epsilon_spent_ = self.epsilon * 0.98
        self.ledger_ = _Ledger(self.epsilon, self.delta_)
        return self

    def sample(self, n, *, seed=None):
        rng = np.random.default_rng(seed)
        which = rng.integers(0, len(self.means_), n)
        noise = rng.normal(0, 30, (n, *self.image_shape_))
        images = np.clip(np.stack(self.means_)[which] + noise, 0, 255).astype(np.uint8)
        return images, (None if self.classes_ is None else self.classes_[which])

    def get_params(self):
        return {"epsilon": self.epsilon, "delta": self.delta, "seed": self.seed}


@pytest.fixture
def stub(monkeypatch):
    StubImageGAN.seen = []
    monkeypatch.setattr("synthdata.release._image_model", lambda **options: StubImageGAN(**options))
    return StubImageGAN


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    private, public = generate_keypair(tmp_path_factory.mktemp("keys"))
    return load_private_key(private), public


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory) -> Path:
    if not DIGITS.exists():
        pytest.skip(f"{DIGITS} is not present")
    data = np.load(DIGITS)
    path = tmp_path_factory.mktemp("data") / "digits300.npz"
    np.savez(path, images=data["images"][:300], labels=data["labels"][:300])
    return path


def _release(tmp_path, keys, source, **options):
    key, public = keys
    defaults = dict(epsilon=5.0, key=key, key_path=public, out=tmp_path / "release", seed=3,
                    ledger=tmp_path / "ledger.json")
    return release_images(read_images(source), **{**defaults, **options})


def test_image_release_verifies_and_a_changed_png_fails(tmp_path, keys, digits_npz, stub):
    result = _release(tmp_path, keys, digits_npz)
    directory = result.directory
    pngs = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.png") if p.name != "grid.png")
    assert len(pngs) == 240 and pngs[0].startswith("images/0/")
    verified = verify_release(directory, keys[1])
    assert set(verified["subjects"]) == {*pngs, "images.npz", "grid.png", "report.html"}
    predicate = verified["predicate"]
    assert predicate["modality"] == "image" and predicate["data"]["image_shape"] == [8, 8, 1]
    assert predicate["data"]["rows_train"] == 240 and predicate["data"]["rows_holdout"] == 60
    assert predicate["quality"]["sdmetrics_score"] is None and predicate["quality"]["ml_utility"] is not None
    assert predicate["leakage"]["mia_auc"] is not None and "memorisation" in predicate["leakage"]
    assert "seed" not in predicate["model"]["params"]
    # The generator saw only the training images; the release reads back as an image set.
    assert len(stub.seen) == 1 and len(stub.seen[0]) == 240
    again = read_images(directory / "images")
    assert len(again) == 240 and again.class_names == [str(d) for d in range(10)]
    npz = np.load(directory / "images.npz")
    assert npz["images"].shape == (240, 8, 8, 1) and npz["labels"].shape == (240,)
    html = (directory / "report.html").read_text()
    assert "Fréchet" in html and "id=\"verdict\"" in html and "Memorisation" in html
    assert [e["epsilon"] for e in BudgetLedger(tmp_path / "ledger.json").entries()] == [5.0]

    target = directory / pngs[17]
    data = bytearray(target.read_bytes())
    data[60] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match=pngs[17]):
        verify_release(directory, keys[1])


def test_unlabelled_folder_release_and_an_added_png_fails(tmp_path, keys, digits_npz, stub):
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    for i, image in enumerate(np.load(digits_npz)["images"][:120]):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    result = _release(tmp_path, keys, folder, count=50)
    directory = result.directory
    assert len(list((directory / "images").glob("*.png"))) == 50
    assert result.predicate["quality"]["ml_utility"] is None
    verify_release(directory, keys[1])
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(directory / "images" / "extra.png")
    with pytest.raises(VerificationError, match="extra.png"):
        verify_release(directory, keys[1])


@pytest.mark.parametrize("stage", ["schema", "holdout split", "fit", "sample", "audit", "report", "sign", "write"])
def test_a_fault_at_any_stage_leaves_nothing(tmp_path, keys, digits_npz, stub, stage):
    def fail_at(message: str) -> None:
        if message.split(":")[0] == stage:
            raise RuntimeError(f"injected fault at {stage}")

    with pytest.raises(RuntimeError, match="injected fault"):
        _release(tmp_path, keys, digits_npz, progress=fail_at)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ledger.json.lock", "ledger.json"]
    assert BudgetLedger(tmp_path / "ledger.json").entries() == []


def test_render_html_on_an_image_predicate_without_sdmetrics():
    page = render_html({"modality": "image", "quality": {"sdmetrics_score": None, "frechet_distance": 1.5,
                                                          "frechet_distance_floor": 1.0, "ml_utility": {
                                                              "task": "classification", "target": "label",
                                                              "synthetic": {"accuracy": 0.8},
                                                              "real": {"accuracy": 0.9}}},
                        "leakage": {"rare_values": None, "memorisation": {}}})
    assert "modality image" in page and "0.800" in page and "FD 1.50" in page


def test_cli_release_images_then_verify(invoke, tmp_path, keys, digits_npz, stub, monkeypatch):
    from click.testing import CliRunner

    from synthdata.cli import cli

    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    private = tmp_path / "k"
    key_file, public = generate_keypair(private)
    out = tmp_path / "rel"
    result = CliRunner().invoke(cli, ["release", str(digits_npz), "--epsilon", "4", "--key", str(key_file),
                                      "--out", str(out), "--seed", "1", "--ledger", str(tmp_path / "l.json"),
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    assert "synthetic images" in result.output and "Fréchet" in result.output
    verified = invoke("verify", out, "--public-key", public)
    assert verified.exit_code == 0, verified.output
    refused = invoke("release", digits_npz, "--epsilon", "4", "--target", "label", "--out", tmp_path / "x")
    assert_one_line_error(refused, "tables only")
    (tmp_path / "empty").mkdir()
    empty = invoke("release", tmp_path / "empty", "--epsilon", "4", "--out", tmp_path / "y")
    assert_one_line_error(empty, "holds no image")


@pytest.mark.skipif(importlib.util.find_spec("synthdata.models.images") is None,
                    reason="synthdata.models.images (ImageGAN) is not present yet")
def test_release_with_the_real_image_model(tmp_path, keys, digits_npz):
    key, public = keys
    try:
        result = _release(tmp_path, keys, digits_npz, epsilon=10.0,
                          model_options={"device": "cpu", "generator_steps": 60, "epochs": 0.5})
    except TypeError as exc:  # the model's options are still settling
        pytest.skip(f"ImageGAN does not take these options: {exc}")
    verify_release(result.directory, public)
    assert json.loads((result.directory / "report.json").read_text())["predicate"]["modality"] == "image"
