"""The DP variational autoencoders: TabularVAE and ImageVAE.

What they spend (never past epsilon, every DP-SGD step booked, exactly as many as
planned), the estimator protocol (``clone``), save/load, checkpoint and resume, the
``--model`` option of ``fit``/``sample``/``release``, and the shapes and labels the image
VAE samples. Small data and a few DP-SGD steps keep each fit to seconds; quality is
measured in ``benchmarks/vae.py``, not here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from opacus.optimizers import DPOptimizer
from sklearn.base import clone

from synthdata import TabularVAE
from synthdata.errors import ModelError, PrivacyError
from synthdata.images.vae import ImageVAE
from synthdata.models import MODELS, create_model, models_for
from synthdata.privacy import DPSGD_MECHANISM

from ..conftest import assert_one_line_error

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::synthdata.errors.SynthdataWarning")]

FAST = {"epochs": 1, "batch_size": 100, "latent_dim": 4, "hidden": 32, "device": "cpu"}
IMAGE_FAST = {"epochs": 1, "batch_size": 40, "latent_dim": 4, "base": 8, "device": "cpu"}


def _table(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 4, n)
    return pd.DataFrame({
        "size": size,
        "colour": np.where(rng.random(n) < 0.8, np.array(["red", "green", "blue"])[size - 1],
                           rng.choice(["red", "green", "blue"], n)).astype(object),
        "weight": np.round(rng.normal(10 * size, 2, n), 1),
        "flag": rng.random(n) < 0.4,
    })


def _images(n: int = 240, seed: int = 0, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = np.clip(rng.normal(60 + 60 * labels[:, None, None], 30, (n, 8, 8)), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _table()


@pytest.fixture(scope="module")
def fitted(table) -> TabularVAE:
    return TabularVAE(epsilon=3.0, seed=0, **FAST).fit(table)


@pytest.fixture(scope="module")
def fitted_images() -> ImageVAE:
    images, labels = _images()
    return ImageVAE(epsilon=5.0, seed=0, classes=[0, 1, 2], **IMAGE_FAST).fit(images, labels)


# --------------------------------------------------------------------------- registry and estimator protocol


def test_both_vaes_are_registered_and_the_gans_stay_the_defaults():
    assert MODELS["tabular-vae"][0] == "table" and MODELS["image-vae"][0] == "image"
    assert models_for("table")[0] == "tabular-gan" and "tabular-vae" in models_for("table")
    assert models_for("image")[0] == "image-gan" and "image-vae" in models_for("image")
    assert isinstance(create_model("tabular-vae", epsilon=1.0), TabularVAE)
    assert isinstance(create_model("image-vae", epsilon=1.0), ImageVAE)


@pytest.mark.parametrize("model", [TabularVAE(epsilon=2.0, latent_dim=3, budget_split={"vae": 0.5}),
                                   ImageVAE(epsilon=2.0, base=4, classes=[0, 1])], ids=["tabular", "image"])
def test_sklearn_clone_copies_the_parameters_unchanged(model):
    copy = clone(model)
    assert copy is not model and type(copy) is type(model)
    assert copy.get_params() == model.get_params()
    assert "latent_dim=3" in repr(model) or "base=4" in repr(model)
    with pytest.raises(ValueError, match="no parameter"):
        copy.set_params(generator_steps=5)  # the GAN's parameter is not the VAE's


# --------------------------------------------------------------------------- tables: privacy accounting


@pytest.mark.parametrize("epsilon", [0.5, 2.0, 8.0])
def test_tabular_epsilon_is_never_exceeded_and_nearly_all_spent(table, epsilon):
    model = TabularVAE(epsilon=epsilon, seed=0, **FAST).fit(table)
    assert 0.97 * epsilon < model.epsilon_spent_ <= epsilon
    assert model.ledger_.epsilon_spent == model.epsilon_spent_
    steps = [s.step for s in model.ledger_.spends]
    # Shared preprocessing first, then DP-SGD; no marginals, no selection, no discriminator.
    assert steps == ["row count", "schema", "preprocessing", "vae"], steps


def test_every_dpsgd_step_is_booked_and_exactly_as_many_as_planned(monkeypatch, table):
    calls = []
    original = DPOptimizer.step

    def counting_step(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DPOptimizer, "step", counting_step)
    model = TabularVAE(epsilon=3.0, seed=0, **{**FAST, "epochs": 2.5}).fit(table)
    plan = model.training_
    # Planned from the DP row count, never from the exact one.
    assert plan.sample_rate == pytest.approx(FAST["batch_size"] / model.n_rows_)
    assert plan.discriminator_steps == math.ceil(2.5 / plan.sample_rate)
    line = next(s for s in model.ledger_.spends if s.step == "vae")
    assert line.mechanism == DPSGD_MECHANISM
    assert line.parameters["steps"] == plan.discriminator_steps
    assert line.parameters["noise_multiplier"] == plan.noise_multiplier
    assert len(calls) == plan.discriminator_steps  # the optimizer really stepped that often
    booked = sum(n for z, q, n in model.ledger_.accountant.history
                 if z == plan.noise_multiplier and q == plan.sample_rate)
    assert booked == plan.discriminator_steps


@pytest.mark.parametrize("split, fragment", [
    ({"marginals": 0.3}, "unknown budget_split part 'marginals'"),
    ({"vae": 0}, "positive shares for preprocessing and vae"),
    ({"preprocessing": -1}, "finite numbers >= 0"),
])
def test_tabular_budget_split_is_checked(table, split, fragment):
    with pytest.raises(PrivacyError, match=fragment):
        TabularVAE(epsilon=1.0, budget_split=split, **FAST).fit(table)


def test_the_decoder_starts_from_the_released_histograms_and_learns_dependence():
    """At a large budget the VAE learns what the 1-way histograms cannot: size and colour go together."""
    frame = _table(3000, seed=2)
    model = TabularVAE(epsilon=50.0, seed=0, epochs=15, batch_size=300, latent_dim=4, hidden=64,
                       device="cpu").fit(frame)
    synthetic = model.sample(6000, seed=1)

    def agree(f: pd.DataFrame) -> float:
        return float((f["size"].map({1: "red", 2: "green", 3: "blue"}) == f["colour"]).mean())

    assert agree(frame) > 0.8
    assert agree(synthetic) > 0.5  # independent columns would agree about a third of the time
    assert set(synthetic["colour"]) <= set(frame["colour"])


# --------------------------------------------------------------------------- tables: same interface as the GAN


def test_samples_keep_columns_dtypes_and_labels(fitted, table):
    synthetic = fitted.sample(500, seed=3)
    assert list(synthetic.columns) == list(table.columns)
    assert [str(t) for t in synthetic.dtypes] == [str(t) for t in table.dtypes]
    assert set(synthetic["colour"]) <= set(table["colour"])
    chunks = list(fitted.sample_chunks(250, chunk_size=100, seed=3))
    assert [len(c) for c in chunks] == [100, 100, 50]
    arrow = list(fitted.sample_arrow_chunks(250, chunk_size=100, seed=3))
    assert pd.concat([a.to_pandas() for a in arrow], ignore_index=True)["size"].tolist() == \
        pd.concat(chunks, ignore_index=True)["size"].tolist()


def test_save_load_round_trip_gives_identical_samples_and_no_seed(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["format"] == "synthdata-tabular-vae/1" and meta["model"] == "tabular-vae"
    assert meta["params"]["seed"] is None
    loaded = TabularVAE.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.sample(300, seed=9), fitted.sample(300, seed=9))
    assert loaded.epsilon_spent_ == fitted.epsilon_spent_
    assert [s.to_dict() for s in loaded.ledger_.spends] == [s.to_dict() for s in fitted.ledger_.spends]
    from synthdata.models import TabularGAN

    with pytest.raises(ModelError, match="not a synthdata-tabular-gan"):
        TabularGAN.load(tmp_path / "model")  # one model's file is never read as the other's


def test_a_killed_fit_resumes_and_the_count_continues(tmp_path, table):
    params = dict(epsilon=3.0, seed=0, **{**FAST, "epochs": 5})

    class Killed(Exception):
        pass

    def kill_at_step_25(info):
        if info["step"] > 25:
            raise Killed

    with pytest.raises(Killed):
        TabularVAE(**params).fit(table, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=10,
                                 progress=kill_at_step_25)
    resumed = TabularVAE(**params).fit(table, checkpoint_dir=tmp_path / "ckpt", resume=True, checkpoint_every=10)
    plan = resumed.training_
    line = next(s for s in resumed.ledger_.spends if s.step == "vae")
    assert line.parameters["steps"] == plan.discriminator_steps  # neither reset nor replayed
    assert sum(1 for s in resumed.ledger_.spends if s.step == "vae") == 1
    assert resumed.epsilon_spent_ <= 3.0
    with pytest.raises(ModelError, match="other settings"):
        TabularVAE(**{**params, "latent_dim": 5}).fit(table, checkpoint_dir=tmp_path / "ckpt", resume=True)


def test_a_person_is_sampled_and_clipped_as_one(table):
    frame = table.assign(person=np.arange(len(table)) // 3)
    model = TabularVAE(epsilon=3.0, seed=0, **FAST).fit(frame, unit="person")
    assert "person" not in model.columns_
    line = next(s for s in model.ledger_.spends if s.step == "vae")
    assert "per-unit" in line.parameters["clipping"]
    assert model.epsilon_spent_ <= 3.0
    synthetic = model.sample(50, seed=0)
    assert list(synthetic.columns) == model.columns_ and set(model.columns_) <= set(table.columns)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def table_csv(tmp_path) -> Path:
    path = tmp_path / "people.csv"
    _table(400).to_csv(path, index=False)
    return path


def test_cli_fit_and_sample_with_model_vae(invoke, tmp_path, table_csv):
    fitted = invoke("fit", table_csv, "--epsilon", "2", "--model", "vae", "--epochs", "1", "--batch-size", "50",
                    "--model-out", tmp_path / "m", "--quiet")
    assert fitted.exit_code == 0, fitted.output
    assert "vae" in fitted.output and "DP-SGD" in fitted.output
    assert json.loads((tmp_path / "m" / "model.json").read_text())["model"] == "tabular-vae"
    sampled = invoke("sample", tmp_path / "m", "--rows", "120", "--output", tmp_path / "s.csv", "--quiet")
    assert sampled.exit_code == 0, sampled.output
    assert len(pd.read_csv(tmp_path / "s.csv")) == 120


@pytest.mark.parametrize("args, fragment", [
    (["--model", "diffusion"], "--model diffusion: no such model for tables"),
    (["--model", "image-vae"], "--model image-vae: no such model for tables"),
    (["--model", "vae", "--discriminator-share", "0.2"], "--discriminator-share applies to the GAN"),
])
def test_cli_fit_refuses_a_model_it_does_not_have(invoke, tmp_path, table_csv, args, fragment):
    result = invoke("fit", table_csv, "--epsilon", "2", "--model-out", tmp_path / "m", "--quiet", *args)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_cli_release_with_model_tabular_vae_verifies_and_names_the_model(invoke, tmp_path, table_csv, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    out = tmp_path / "rel"
    result = invoke("release", table_csv, "--epsilon", "2", "--model", "tabular-vae", "--target", "flag",
                    "--out", out, "--seed", "3", "--quiet")
    assert result.exit_code == 0, result.output
    public = tmp_path / "config" / "signing_key.pub.pem"
    verified = invoke("verify", out, "--public-key", public)
    assert verified.exit_code == 0, verified.output
    steward = invoke("verify", tmp_path / "rel.steward-audit", "--public-key", public)
    assert steward.exit_code == 0, steward.output
    predicate = json.loads((out / "report.json").read_text())["predicate"]
    assert predicate["model"]["name"] == "tabular-vae" and predicate["model"]["class"] == "TabularVAE"
    assert predicate["privacy"]["epsilon_spent"] <= 2.0
    steps = [line["step"] for line in predicate["privacy"]["budget"]]
    assert "vae" in steps and "discriminator" not in steps and "marginals" not in steps
    header = list(pd.read_csv(out / "synthetic.csv").columns)
    assert header == [c["name"] for c in predicate["data"]["columns"]] and set(header) <= set(_table(10).columns)


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize("epsilon", [1.0, 6.0])
def test_image_epsilon_is_never_exceeded_and_every_step_is_booked(epsilon):
    images, labels = _images()
    model = ImageVAE(epsilon=epsilon, seed=0, classes=[0, 1, 2], **IMAGE_FAST).fit(images, labels)
    assert 0.97 * epsilon < model.epsilon_spent_ <= epsilon
    assert [s.step for s in model.ledger_.spends] == ["image count", "labels", "templates", "vae"]
    line = model.ledger_.spends[-1]
    steps = math.ceil(IMAGE_FAST["epochs"] * model.n_images_ / IMAGE_FAST["batch_size"])
    assert line.mechanism == DPSGD_MECHANISM and line.parameters["steps"] == steps
    assert model.noise_plan_["noise_multiplier"] == line.parameters["noise_multiplier"]


def test_image_samples_have_the_input_layout_and_the_released_classes(fitted_images):
    synthetic, labels = fitted_images.sample(60, seed=2)
    assert synthetic.shape == (60, 8, 8) and synthetic.dtype == np.uint8
    assert labels.shape == (60,) and set(labels) <= {0, 1, 2}
    assert len(set(labels)) > 1
    again, _ = fitted_images.sample(60, seed=2)
    np.testing.assert_array_equal(again, synthetic)
    assert fitted_images.sample(0, seed=1)[0].shape == (0, 8, 8)


def test_image_vae_without_labels_and_in_colour():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (120, 6, 10, 3), dtype=np.uint8)
    model = ImageVAE(epsilon=3.0, seed=0, **IMAGE_FAST).fit(images)
    synthetic, labels = model.sample(7, seed=0)
    assert synthetic.shape == (7, 6, 10, 3) and labels is None
    assert [s.step for s in model.ledger_.spends] == ["image count", "templates", "vae"]


def test_a_label_held_by_one_image_is_never_sampled():
    images, labels = _images(900)
    labels[5] = 9  # one image, one class of its own
    model = ImageVAE(epsilon=8.0, seed=0, **{**IMAGE_FAST, "batch_size": 150}).fit(images, labels)
    _, synthetic = model.sample(500, seed=0)
    assert 9 not in set(synthetic) and 9 not in set(model.classes_)


def test_image_save_load_round_trip(fitted_images, tmp_path):
    fitted_images.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format"] == "synthdata-image-vae/1" and meta["params"]["seed"] is None
    loaded = ImageVAE.load(tmp_path / "m")
    a, la = loaded.sample(20, seed=4)
    b, lb = fitted_images.sample(20, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)


def test_image_network_widths_follow_the_options_and_a_model_saved_without_them_loads(tmp_path):
    images, labels = _images(120)
    options = {**IMAGE_FAST, "epochs": 0.5}
    model = ImageVAE(epsilon=3.0, seed=0, classes=[0, 1, 2], encoder_channels=2, project_channels=3,
                     **options).fit(images, labels)
    decoder = model.generator_
    assert decoder.project.out_features == 3 * 2 * 2  # 8x8 images: a 2x2 grid of 3 channels
    assert decoder.config()["project"] == 3
    model.save(tmp_path / "slim")
    assert ImageVAE.load(tmp_path / "slim").generator_.project.out_features == 12
    with pytest.raises(ModelError, match="encoder_channels"):
        ImageVAE(epsilon=3.0, encoder_channels=-1, classes=[0, 1, 2], **options).fit(images, labels)

    # A model saved before these options existed: 2*base channels on the grid, no "project" in its config.
    wide = ImageVAE(epsilon=3.0, seed=0, classes=[0, 1, 2], encoder_channels=0, project_channels=None,
                    **options).fit(images, labels)
    assert wide.generator_.project.out_features == 2 * IMAGE_FAST["base"] * 2 * 2
    wide.save(tmp_path / "old")
    meta_path = tmp_path / "old" / "model.json"
    meta = json.loads(meta_path.read_text())
    del meta["state"]["decoder"]["project"]
    for key in ("encoder_channels", "project_channels"):
        del meta["params"][key]
    meta_path.write_text(json.dumps(meta))
    old = ImageVAE.load(tmp_path / "old")
    np.testing.assert_array_equal(old.sample(10, seed=1)[0], wide.sample(10, seed=1)[0])


def test_layer_clipping_bounds_each_layer_and_leaves_the_dp_step_as_planned():
    import torch

    from synthdata.images.vae import ImageVAENetwork, _clip_layers, _layers

    network = ImageVAENetwork(classes=3, height=8, width=8, channels=1, latent_dim=4, base=8, decoder="conv")
    layers = _layers(network)
    assert sum(len(params) for params in layers) == len(list(network.parameters()))
    assert len(layers) == 7  # 2 encoder convolutions, posterior, template, projection, 2 decoder convolutions
    generator = torch.Generator().manual_seed(0)
    for p in network.parameters():
        p.grad_sample = torch.randn((5, *p.shape), generator=generator)
    for p in layers[0]:
        p.grad_sample[2] = 1e-3  # one image whose first layer is already inside its bound
    for params in layers[1:]:
        for p in params:
            p.grad_sample[2] = 0.0
    before = [p.grad_sample.clone() for p in layers[0]]
    _clip_layers(layers, 0.25)
    for params in layers:
        norms = torch.stack([p.grad_sample.flatten(1).norm(dim=1) for p in params]).norm(dim=0)
        assert torch.all(norms <= 0.25 + 1e-6)
        assert torch.allclose(norms[[0, 1, 3, 4]], torch.full((4,), 0.25))  # these all started above it
    for p, old in zip(layers[0], before):
        torch.testing.assert_close(p.grad_sample[2], old[2])  # under the bound: unchanged

    images, labels = _images(120)
    model = ImageVAE(epsilon=3.0, seed=0, classes=[0, 1, 2], layer_clipping=True, **IMAGE_FAST).fit(images, labels)
    assert [s.step for s in model.ledger_.spends] == ["image count", "labels", "templates", "vae"]
    line = model.ledger_.spends[-1]
    assert "each of 7 layers" in line.parameters["clipping"]
    assert line.parameters["noise_multiplier"] == model.noise_plan_["noise_multiplier"]
    assert line.parameters["max_grad_norm"] == 1.0


def test_image_budget_split_and_inputs_are_checked():
    images, labels = _images(60)
    with pytest.raises(PrivacyError, match="unknown budget_split part 'embeddings'"):
        ImageVAE(epsilon=1.0, budget_split={"embeddings": 1.0}).fit(images, labels)
    model = ImageVAE(epsilon=2.0, seed=0, budget_split={"templates": 0}, classes=[0, 1, 2], **IMAGE_FAST)
    assert [s.step for s in model.fit(images, labels).ledger_.spends] == ["image count", "labels", "vae"]
    from synthdata.errors import DataError

    with pytest.raises(DataError, match="uint8"):
        ImageVAE(epsilon=1.0).fit(images.astype(np.float32), labels)


@pytest.mark.slow
def test_release_of_images_with_the_image_vae(tmp_path, monkeypatch):
    from synthdata.images import ImageSet
    from synthdata.images.modality import ImageModality
    from synthdata.release import release
    from synthdata.signing import generate_keypair, load_private_key, verify_release

    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    images, labels = _images()
    private, public = generate_keypair(tmp_path / "keys")
    result = release(ImageModality(ImageSet(images=images[..., None], labels=labels, class_names=["a", "b", "c"],
                                            source="scans.npz", sha256="0" * 64, mode="L"), model="image-vae"),
                     epsilon=4.0, key=load_private_key(private), key_path=public, out=tmp_path / "rel",
                     ledger=tmp_path / "ledger.json", seed=1, model_options=IMAGE_FAST)
    verify_release(result.directory, public)
    assert result.predicate["model"]["name"] == "image-vae"
    assert result.predicate["privacy"]["epsilon_spent"] <= 4.0


@pytest.mark.slow
def test_cli_release_of_an_image_folder_with_model_vae_verifies_with_its_stewards_audit(invoke, tmp_path, monkeypatch):
    """The same commands as for a table: release --model vae, then verify the release and the steward's audit."""
    from PIL import Image

    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    images, labels = _images(120)
    folder = tmp_path / "scans"
    for code, name in enumerate(["a", "b", "c"]):
        (folder / name).mkdir(parents=True)
        for i in np.flatnonzero(labels == code):
            Image.fromarray(images[i]).save(folder / name / f"{i:03d}.png")
    (folder / "classes.json").write_text(json.dumps(["a", "b", "c"]))  # public: no threshold on 120 images
    out = tmp_path / "rel"
    result = invoke("release", folder, "--epsilon", "4", "--model", "vae", "--epochs", "1", "--batch-size", "20",
                    "--out", out, "--seed", "2", "--ledger", tmp_path / "ledger.json", "--rows", "30", "--quiet")
    assert result.exit_code == 0, result.output
    public = tmp_path / "config" / "signing_key.pub.pem"
    for directory in (out, tmp_path / "rel.steward-audit"):
        verified = invoke("verify", directory, "--public-key", public)
        assert verified.exit_code == 0, verified.output
    predicate = json.loads((out / "report.json").read_text())["predicate"]
    assert predicate["model"]["name"] == "image-vae" and predicate["model"]["class"] == "ImageVAE"
    assert predicate["privacy"]["epsilon_spent"] <= 4.0
    steps = [line["step"] for line in predicate["privacy"]["budget"]]
    assert "vae" in steps and "discriminator" not in steps
    assert len(list((out / "images").rglob("*.png"))) == 30
    # A changed image fails verification, as for the GAN's releases.
    first = sorted((out / "images").rglob("*.png"))[0]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(first)
    assert invoke("verify", out, "--public-key", public).exit_code != 0


# --------------------------------------------------------------------------- the neighbour harness (issue 10)

NEIGHBOUR_TABLE = {"epochs": 1, "batch_size": 200, "latent_dim": 4, "hidden": 32, "device": "cpu"}
NEIGHBOUR_IMAGES = {"epochs": 1, "batch_size": 200, "latent_dim": 4, "base": 8, "hidden": 32, "device": "cpu"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from synthdata.signing import generate_keypair, load_private_key

    private, public = generate_keypair(tmp_path_factory.mktemp("keys"))
    return load_private_key(private), public


@pytest.fixture
def no_stewards_audit(monkeypatch, tmp_path):
    """The steward's exact audit is never published: skip its costly models, as the harness does."""
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setattr("synthdata.audit.audit", lambda *args, **kwargs: {"format": "skipped in this test"})
    monkeypatch.setattr("synthdata.images.audit.audit_images", lambda *args, **kwargs: {"format": "skipped"})


def _release_vae_table(frame: pd.DataFrame, tmp: Path, keys, epsilon: float, tag: str) -> dict:
    from synthdata import from_frame
    from synthdata.release import release
    from synthdata.tabular.modality import TableModality

    from ..test_neighbours import _published

    class Keeping(TableModality):
        def fit(self, train, **options):
            self.model = super().fit(train, **options)
            return self.model

    key, public = keys
    modality = Keeping(from_frame(frame, source="patients.csv"), target="smoker", model="tabular-vae")
    release(modality, epsilon=epsilon, key=key, key_path=public, out=tmp / f"release-{tag}",
            ledger=tmp / f"ledger-{tag}.json", model_options=NEIGHBOUR_TABLE, seed=5)
    modality.model.save(tmp / f"model-{tag}")
    return _published(tmp / f"release-{tag}", tmp / f"model-{tag}")


#: Releases of D, shared by every neighbour of the same kind and epsilon (each test then
#: makes only its own neighbour's releases, and stays short).
_RUNS_ON_D: dict[tuple[str, float], list[dict]] = {}


def _runs_on_d(kind: str, epsilon: float, release_d) -> list[dict]:
    from ..test_neighbours import RUNS_ON_D

    if (kind, epsilon) not in _RUNS_ON_D:
        runs = [release_d(i) for i in range(RUNS_ON_D)]
        noisy = [name for name in runs[0] if runs[0][name] != runs[1].get(name)]
        assert noisy and len(noisy) < len(runs[0]) / 2, noisy  # the harness can see a difference
        _RUNS_ON_D[kind, epsilon] = runs
    return list(_RUNS_ON_D[kind, epsilon])


@pytest.mark.slow
@pytest.mark.usefixtures("no_stewards_audit")
@pytest.mark.parametrize("epsilon, label", [
    *[(1.0, label) for label in ("new category", "fraction in a whole-number column", "date in another format",
                                 "all missing")],
    *[(10.0, label) for label in ("extreme number", "near-identifier", "text in a number column")],
])
def test_no_field_the_tabular_vae_publishes_tells_d_from_d_plus_one_row(tmp_path, keys, epsilon, label):
    import re

    from ..test_neighbours import CRAFTED_ROWS, RUNS_ON_D_PRIME, _confirmed, _deterministic_differences, _table, _with

    # 1,400 rows: about 1,120 train rows, DP-SGD steps ceil(count / 200) = 6 on every run. With
    # 1,500 (1,200 train rows: exactly 6 batches) the step count sat on its boundary and
    # flipped 6/7 with the noise, which the harness can (rarely) read as a consistent difference.
    frame = _table(1400)

    def on_d(i: int) -> dict:
        return _release_vae_table(frame, tmp_path, keys, epsilon, f"d{i}")

    def on_neighbour(crafted: str, i: int) -> dict:
        return _release_vae_table(_with(frame, CRAFTED_ROWS[crafted]), tmp_path, keys, epsilon,
                                  re.sub(r"\W+", "-", crafted) + str(i))

    runs = _runs_on_d("table", epsilon, on_d)
    neighbours = {label: [on_neighbour(label, i) for i in range(RUNS_ON_D_PRIME)]}
    problems = _confirmed(_deterministic_differences(runs, neighbours), runs, neighbours,
                          lambda i: on_d(i), on_neighbour)
    assert not problems, json.dumps(problems, indent=1)


IMAGE_NEIGHBOURS = {"saturated image": (np.full((8, 8, 1), 255, np.uint8), "a"),
                    "a label no other image holds": (np.zeros((8, 8, 1), np.uint8), "zebra")}


@pytest.mark.slow
@pytest.mark.usefixtures("no_stewards_audit")
@pytest.mark.parametrize("epsilon", [1.0, 10.0])
@pytest.mark.parametrize("label", list(IMAGE_NEIGHBOURS))
def test_no_field_the_image_vae_publishes_tells_d_from_d_plus_one_image(tmp_path, keys, epsilon, label):
    import re

    from synthdata.images.modality import ImageModality
    from synthdata.release import release

    from ..test_neighbours import RUNS_ON_D_PRIME, _confirmed, _deterministic_differences, _images, _published
    from ..test_neighbours import _with_image

    def published(images, tag: str) -> dict:
        key, public = keys
        out = tmp_path / f"images-{tag}"
        release(ImageModality(images, model="image-vae"), epsilon=epsilon, key=key, key_path=public, out=out,
                ledger=tmp_path / f"ledger-{tag}.json", seed=5, model_options=NEIGHBOUR_IMAGES)
        fields = _published(out, None)
        fields["image files"] = sorted({p.parent.name for p in (out / "images").rglob("*.png")})
        return fields

    images = _images()

    def on_neighbour(crafted: str, i: int) -> dict:
        image, name = IMAGE_NEIGHBOURS[crafted]
        return published(_with_image(images, image, name), re.sub(r"\W+", "-", crafted) + str(i))

    runs = _runs_on_d("images", epsilon, lambda i: published(images, f"d{i}"))
    neighbours = {label: [on_neighbour(label, i) for i in range(RUNS_ON_D_PRIME)]}
    # The DP-SGD step count follows the DP image count: a count near a multiple of the batch
    # moves it now and then; a difference counts only if it survives re-runs on both sides.
    problems = _confirmed(_deterministic_differences(runs, neighbours), runs, neighbours,
                          lambda i: published(images, f"d{i}"), on_neighbour)
    assert not problems, json.dumps(problems, indent=1)
