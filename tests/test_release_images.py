"""synthdata release for images: signed, verifiable, atomic, on the ledger.

A stub generator with the image model's interface (noisy class means: no training, so
the pipeline is tested in seconds); one test runs the real ``ImageGAN`` when it exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthdata.budget import BudgetLedger
from synthdata.errors import DataError, VerificationError
from synthdata.images import read_images
from synthdata.images.modality import MAX_DEFAULT_IMAGES, ImageModality, default_image_count
from synthdata.privacy import DEFAULT_DELTA, IMAGE, GaussianRequest, NoiseSource, PrivacyLedger
from synthdata.release import STAGES, release
from synthdata.signing import generate_keypair, load_private_key, verify_release

from .conftest import assert_one_line_error

DIGITS = Path(__file__).resolve().parents[1] / "sample_datasets" / "digits.npz"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class StubImageGAN:
    """The ImageGAN interface on a real ledger: noisy class means, no training; records what fit saw."""

    seen: list = []
    model_name = "image-gan"

    def __init__(self, *, epsilon, delta=None, seed=None, device="auto", budget_split=None, classes=None):
        self.epsilon, self.delta, self.seed, self.budget_split = epsilon, delta, seed, budget_split

    def fit(self, images, labels=None, *, progress=None):
        images = images if images.ndim == 4 else images[..., None]
        StubImageGAN.seen.append(images)
        ledger = PrivacyLedger(epsilon=self.epsilon, delta=self.delta or DEFAULT_DELTA, unit=IMAGE,
                               noise=NoiseSource(seed=5))
        self.n_images_ = float(max(ledger.noisy_count("image count", len(images), epsilon=0.05 * self.epsilon), 10))
        audit = (self.budget_split or {}).get("audit", 0)
        ledger.plan(gaussians={"embeddings": GaussianRequest(sensitivity=1.0, share=0.9),
                               **({"audit": GaussianRequest(sensitivity=1.0, share=audit)} if audit else {})})
        self.image_shape_ = images.shape[1:]
        self.has_labels_ = labels is not None
        self.classes_ = np.arange(1) if labels is None else np.unique(labels)
        groups = [images] if labels is None else [images[labels == c] for c in self.classes_]
        sums = np.stack([g.astype(float).sum(axis=0) for g in groups])
        noisy = ledger.noisy("embeddings", sums, sensitivity=255.0 * np.sqrt(images[0].size))
        counts = np.array([len(g) for g in groups], dtype=float)
        self.means_ = list(np.clip(noisy / counts.reshape(-1, *[1] * (noisy.ndim - 1)), 0, 255))
        self.class_weights_ = counts / counts.sum()
        self.delta_ = ledger.delta
        self.ledger_ = ledger
        self.epsilon_spent_ = ledger.epsilon_spent
        if progress is not None:  # as the image model reports it: no epoch, no d_loss
            for step in (1, 2):
                progress({"step": step, "total": 2, "loss": 0.5, "epsilon": self.epsilon_spent_})
        return self

    def sample(self, n, *, seed=None):
        rng = np.random.default_rng(seed)
        which = rng.integers(0, len(self.means_), n)
        noise = rng.normal(0, 30, (n, *self.image_shape_))
        images = np.clip(np.stack(self.means_)[which] + noise, 0, 255).astype(np.uint8)
        return images, (self.classes_[which] if self.has_labels_ else None)

    def get_params(self):
        return {"epsilon": self.epsilon, "delta": self.delta, "seed": self.seed}


@pytest.fixture
def stub(monkeypatch):
    from synthdata import models

    StubImageGAN.seen = []
    monkeypatch.setitem(models.MODELS, "image-gan", ("image", "tests.test_release_images:StubImageGAN"))
    return StubImageGAN


@pytest.fixture(autouse=True)
def steward_config(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))


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
    return release(ImageModality(read_images(source)), **{**defaults, **options})


def test_image_release_verifies_and_a_changed_png_fails(tmp_path, keys, digits_npz, stub):
    result = _release(tmp_path, keys, digits_npz)
    directory = result.directory
    pngs = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.png") if p.name != "grid.png")
    count = result.predicate["data"]["rows_synthetic"]
    # By default three images per (DP-counted) training image: post-processing of the DP count.
    assert len(pngs) == count == 3 * result.predicate["data"]["images_train_dp"] and pngs[0].startswith("images/")
    verified = verify_release(directory, keys[1])
    assert set(verified["subjects"]) == {*pngs, "images.npz", "grid.png", "report.html"}
    predicate = verified["predicate"]
    assert predicate["modality"] == "image" and predicate["data"]["image_shape"] == [8, 8, 1]
    assert predicate["privacy"]["unit"] == "one image of the input"
    # 300 images leave about 30 in the holdout (the images' default, 0.1): too few for the public
    # membership attack's noise, and for the utility's (its accuracy's noise std would be ~0.6).
    assert predicate["audit"]["figures"]["ml_utility"] is None
    assert predicate["audit"]["figures"]["ml_utility_note"].startswith("not released: at this budget")
    assert "ML utility: not released: at this budget and holdout size" in (directory / "report.html").read_text()
    assert predicate["data"]["holdout_fraction"] == 0.1
    assert predicate["audit"]["figures"]["membership"] is None and "not tested" in predicate["audit"]["verdict"]
    assert "seed" not in json.dumps(predicate["model"])
    # The generator saw only the training images (about 270: each image held out with probability 0.1).
    steward = verify_release(result.steward_directory, keys[1])["predicate"]
    assert len(stub.seen) == 1 and len(stub.seen[0]) == steward["data"]["images_train"]
    assert steward["data"]["images_train"] + steward["data"]["images_holdout"] == 300
    assert "memorisation" in steward["audit"]["leakage"]
    again = read_images(directory / "images")
    assert len(again) == count and set(again.class_names) <= {str(d) for d in range(10)}
    npz = np.load(directory / "images.npz")
    assert npz["images"].shape == (count, 8, 8, 1) and npz["labels"].shape == (count,)
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
    result = _release(tmp_path, keys, folder, rows=50)
    directory = result.directory
    assert len(list((directory / "images").glob("*.png"))) == 50
    assert result.predicate["audit"]["figures"]["ml_utility"] is None
    verify_release(directory, keys[1])
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(directory / "images" / "extra.png")
    with pytest.raises(VerificationError, match="extra.png"):
        verify_release(directory, keys[1])


def test_images_hold_out_a_tenth_by_default_and_the_option_overrides_it(tmp_path, keys, digits_npz, stub,
                                                                         monkeypatch):
    from synthdata.release import DEFAULT_HOLDOUT_FRACTION, default_holdout_fraction
    from synthdata.tabular.modality import TableModality

    asked = []
    split = ImageModality.split

    def spy(self, fraction, noise):
        asked.append(fraction)
        return split(self, fraction, noise)

    monkeypatch.setattr(ImageModality, "split", spy)
    # A public constant per modality, never read off the data: tables (and interaction data) keep 0.2.
    assert default_holdout_fraction(ImageModality(read_images(digits_npz))) == 0.1
    assert default_holdout_fraction(TableModality) == DEFAULT_HOLDOUT_FRACTION == 0.2
    first = _release(tmp_path, keys, digits_npz)
    second = _release(tmp_path, keys, digits_npz, out=tmp_path / "second", holdout_fraction=0.3)
    assert asked == [0.1, 0.3]
    assert [r.predicate["data"]["holdout_fraction"] for r in (first, second)] == [0.1, 0.3]
    held = [verify_release(r.steward_directory, keys[1])["predicate"]["data"]["images_holdout"]
            for r in (first, second)]
    assert held[0] < 60 < held[1]  # about 30 and 90 of 300 (each image independently)


@pytest.mark.parametrize("stage", STAGES)
def test_a_fault_at_any_stage_leaves_nothing(tmp_path, keys, digits_npz, stub, stage):
    def fail_at(message: str) -> None:
        if message.split(":")[0] == stage:
            raise RuntimeError(f"injected fault at {stage}")

    with pytest.raises(RuntimeError, match="injected fault"):
        _release(tmp_path, keys, digits_npz, progress=fail_at)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "config")
    assert left == [".ledger.json.lock", "ledger.json"]
    assert BudgetLedger(tmp_path / "ledger.json").entries() == []


def test_cli_release_images_with_progress_then_verify(invoke, tmp_path, keys, digits_npz, stub):
    from click.testing import CliRunner

    from synthdata.cli import cli

    private = tmp_path / "k"
    key_file, public = generate_keypair(private)
    out = tmp_path / "rel"
    # Not --quiet: the stages and the fit's progress bar are printed, with what the image model reports.
    result = CliRunner().invoke(cli, ["release", str(digits_npz), "--epsilon", "4", "--key", str(key_file),
                                      "--out", str(out), "--seed", "1", "--ledger", str(tmp_path / "l.json")])
    assert result.exit_code == 0, result.output
    assert "synthetic images" in result.output and f"[1/{len(STAGES)}] schema" in result.output
    assert "eps=" in result.output  # the progress bar ran
    verified = invoke("verify", out, "--public-key", public)
    assert verified.exit_code == 0, verified.output
    # Without --holdout-fraction an image release holds out the images' default share, and says so.
    assert verify_release(out, public)["predicate"]["data"]["holdout_fraction"] == 0.1
    refused = invoke("release", digits_npz, "--epsilon", "4", "--target", "label", "--out", tmp_path / "x")
    assert_one_line_error(refused, "tables only")
    (tmp_path / "empty").mkdir()
    empty = invoke("release", tmp_path / "empty", "--epsilon", "4", "--out", tmp_path / "y")
    assert_one_line_error(empty, "holds no image")


def test_release_with_the_real_image_model(tmp_path, keys, digits_npz):
    key, public = keys
    result = _release(tmp_path, keys, digits_npz, epsilon=10.0,
                      model_options={"device": "cpu", "generator_steps": 60, "epochs": 0.5})
    verify_release(result.directory, public)
    assert json.loads((result.directory / "report.json").read_text())["predicate"]["modality"] == "image"


# --------------------------------------------------------------------------- the command line, real model


class FastImageGAN:
    """The real ImageGAN with few generator steps and features (the command line sets neither)."""

    model_name = "image-gan"

    def __new__(cls, **params):
        from synthdata.images.estimator import ImageGAN

        return ImageGAN(**{"generator_steps": 8, "features": 200, "device": "cpu", **params})


@pytest.fixture
def fast_real_model(monkeypatch):
    from synthdata import models

    monkeypatch.setitem(models.MODELS, "image-gan", ("image", "tests.test_release_images:FastImageGAN"))


def test_cli_release_with_the_real_image_model_its_progress_bar_and_declared_classes(tmp_path, digits_npz,
                                                                                    fast_real_model):
    from click.testing import CliRunner

    from synthdata.cli import cli

    key_file, public = generate_keypair(tmp_path / "k")
    out = tmp_path / "rel"
    # Not --quiet: the fit's progress bar shows what the real image model reports.
    result = CliRunner().invoke(cli, [
        "release", str(digits_npz), "--epsilon", "4", "--key", str(key_file), "--out", str(out), "--seed", "1",
        "--ledger", str(tmp_path / "l.json"), "--classes", ",".join(map(str, range(10))) + ",eleven",
        "--epochs", "0.5", "--batch-size", "40"])
    assert result.exit_code == 0, result.output
    assert "eps=" in result.output and "d_loss=" in result.output and "Traceback" not in result.output
    predicate = verify_release(out, public)["predicate"]
    # Every declared class is released, even one no image holds; no threshold, no line for it on the ledger.
    assert predicate["data"]["classes_released"] == [*map(str, range(10)), "eleven"]
    assert predicate["data"]["classes"] == "declared by the steward (public)"
    params = predicate["model"]["params"]
    assert params["epochs"] == 0.5 and params["batch_size"] == 40 and params["classes"] == list(range(11))
    steps = {s["step"]: s for s in predicate["privacy"]["spends"]} if "spends" in predicate["privacy"] else None
    if steps is not None:
        assert "threshold" not in json.dumps(steps.get("labels", {}))


def test_classes_file_beside_the_images_and_bad_class_lists(tmp_path, invoke, digits_npz):
    from synthdata.images.ingest import declared_classes

    (tmp_path / "digits300.classes.json").write_text(json.dumps({"classes": list(range(10))}))
    beside = tmp_path / "digits300.npz"
    beside.write_bytes(digits_npz.read_bytes())
    assert declared_classes(beside, None) == [str(d) for d in range(10)]
    assert declared_classes(digits_npz, None) is None
    assert declared_classes(digits_npz, " a, b ") == ["a", "b"]
    (tmp_path / "list.json").write_text('["x", "y", "z"]')
    assert declared_classes(digits_npz, str(tmp_path / "list.json")) == ["x", "y", "z"]
    (tmp_path / "bad.json").write_text('{"classes": "x"}')
    for option, fragment in (("a,,b", "separated by commas"), ("a,a", "twice"), ("a", "single class"),
                             (str(tmp_path / "bad.json"), "JSON list")):
        with pytest.raises(DataError, match=fragment):
            declared_classes(digits_npz, option)
    # A label outside the declared domain is refused, naming it (to the steward), before any spend.
    refused = invoke("release", digits_npz, "--epsilon", "4", "--classes", "0,1,2", "--out", tmp_path / "r",
                     "--ledger", tmp_path / "l.json")
    assert_one_line_error(refused, "not among the declared --classes")
    assert not (tmp_path / "l.json").exists() or BudgetLedger(tmp_path / "l.json").entries() == []


def test_declared_classes_do_not_depend_on_which_classes_the_images_hold(digits_npz):
    from synthdata.images import ImageSet

    data = np.load(digits_npz)
    keep = data["labels"] < 3
    images = ImageSet(images=data["images"][keep][..., None], labels=data["labels"][keep].astype(np.int64),
                      class_names=["0", "1", "2"], source="d.npz", sha256="0" * 64, mode="L")
    modality = ImageModality(images, classes=["2", "0", "1", "3"])
    # Codes into the declared order; the undeclared-but-absent class "3" is still a class.
    assert modality.images.class_names == ["2", "0", "1", "3"]
    assert [modality.images.class_names[c] for c in modality.images.labels[:20]] == \
        [str(v) for v in data["labels"][keep][:20]]
    assert modality.digest() == ImageModality(images).digest()


def _rgb_folder(root: Path, per_class: int = 24) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(colour, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{i:03d}.png")
    (root / "classes.json").write_text(json.dumps(["red", "green", "blue"]))
    return root


def test_cli_rgb_folder_of_32x32_class_subfolders_releases_and_verifies(tmp_path, invoke, fast_real_model):
    folder = _rgb_folder(tmp_path / "photos")
    key_file, public = generate_keypair(tmp_path / "k")
    out = tmp_path / "rel"
    result = invoke("release", folder, "--epsilon", "8", "--key", key_file, "--out", out, "--seed", "2",
                    "--ledger", tmp_path / "l.json", "--rows", "30", "--epochs", "0.5", "--batch-size", "16")
    assert result.exit_code == 0, result.output
    verified = invoke("verify", out, "--public-key", public)
    assert verified.exit_code == 0, verified.output
    predicate = verify_release(out, public)["predicate"]
    assert predicate["data"]["image_shape"] == [32, 32, 3] and predicate["data"]["image_mode"] == "RGB"
    assert predicate["data"]["classes_released"] == ["red", "green", "blue"]  # from classes.json, declared order
    again = read_images(out / "images")
    assert again.images.shape[1:] == (32, 32, 3) and len(again) == 30
    assert set(again.class_names) <= {"red", "green", "blue"}
    with np.load(out / "images.npz") as npz:
        assert npz["images"].shape == (30, 32, 32, 3)


def test_the_default_image_count_is_three_per_dp_counted_image_up_to_a_cap():
    """The generator is what was fitted; its samples are free. A classifier trained on three times
    as many of them scored higher on real digits at epsilon 1 and 10 (benchmarks/README.md), so a
    release writes 3 x round(DP count) images by default; a large set, whose DP count already gives
    plenty, writes its count: never fewer than the count, never more than the cap unless the count is."""
    assert default_image_count(3560.6) == 3 * 3561
    assert default_image_count(10.2) == 30
    assert default_image_count(MAX_DEFAULT_IMAGES / 2) == MAX_DEFAULT_IMAGES
    assert default_image_count(MAX_DEFAULT_IMAGES * 2) == MAX_DEFAULT_IMAGES * 2
    assert default_image_count(0.4) == 0  # (write() then draws at least 2)
