"""An ImageVAE fit killed with SIGKILL resumes from its checkpoint: DP-SGD and the privacy
count continue (the private releases are reused, never repeated), and the final epsilon
equals an uninterrupted fit's — as for ImageGAN (tests/test_images_checkpoint.py)."""

import json
import textwrap

import numpy as np
import pytest
import torch

from synthdata.errors import ModelError
from synthdata.images.vae import ImageVAE

from ..killing import kill_after_second_checkpoint

# The test noise seed makes an uninterrupted fit draw the same DP image count as the killed
# one, so both plan the same steps and must land on exactly the same epsilon. ``average``
# makes the checkpoint carry the decoder's weight average too.
SETTINGS = dict(epsilon=4.0, delta=1e-5, seed=3, epochs=3, batch_size=40, latent_dim=4, base=8, average=0.5,
                classes=[0, 1, 2], device="cpu", insecure_noise_seed=11)

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::synthdata.errors.SynthdataWarning")]


def _images(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = np.clip(rng.normal(60 + 60 * labels[:, None, None], 30, (n, 8, 8)), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    images, labels = _images()
    path = tmp_path_factory.mktemp("data") / "images.npz"
    np.savez(path, images=images, labels=labels)
    return path, images, labels


def test_a_killed_image_vae_fit_resumes_to_the_same_epsilon(tmp_path, digits, monkeypatch):
    path, images, labels = digits
    checkpoints = tmp_path / "ckpt"
    # Each checkpoint save is followed by a pause, so that the process is killed mid-fit.
    script = textwrap.dedent(f"""
        import time, numpy as np, torch
        torch.set_num_threads(1)
        from synthdata.checkpoint import Checkpointer
        from synthdata.images.vae import ImageVAE
        save = Checkpointer.save_training
        def slow(self, state):
            save(self, state)
            time.sleep(0.5)
        Checkpointer.save_training = slow
        data = np.load({str(path)!r})
        ImageVAE(**{SETTINGS!r}).fit(data["images"], data["labels"], checkpoint_dir={str(checkpoints)!r},
                                     checkpoint_every=2)
    """)
    kill_after_second_checkpoint(script, checkpoints)
    saved = torch.load(checkpoints / "training.pt", weights_only=True)
    setup = json.loads((checkpoints / "setup.json").read_text())
    assert 0 < saved["step"] < setup["steps"] and "averaged" in saved  # killed mid-fit
    spent_then = next(line for line in json.loads(saved["ledger"])["lines"] if line["step"] == "vae")

    import synthdata.images.vae as module

    def released_again(*args, **kwargs):
        raise AssertionError("a resumed fit released again what its checkpoint holds")

    with monkeypatch.context() as patch:
        for name in ("release_labels", "release_class_means"):
            patch.setattr(module, name, released_again)
        resumed = ImageVAE(**SETTINGS).fit(images, labels, checkpoint_dir=checkpoints, resume=True)
    whole = ImageVAE(**SETTINGS).fit(images, labels)
    assert resumed.epsilon_spent_ == pytest.approx(whole.epsilon_spent_, rel=1e-12)
    assert 0.97 * SETTINGS["epsilon"] < resumed.epsilon_spent_ <= SETTINGS["epsilon"]
    lines = [s.step for s in resumed.ledger_.spends]
    # The private releases were reused, not repeated: one line each; the DP-SGD line continued.
    assert lines == [s.step for s in whole.ledger_.spends] == ["image count", "labels", "templates", "vae"]
    vae = resumed.ledger_.spends[-1]
    assert vae.parameters["steps"] == setup["steps"] == whole.ledger_.spends[-1].parameters["steps"]
    assert spent_then["count"] == saved["step"]  # the count saved matches the training saved
    assert resumed.noise_plan_ == whole.noise_plan_ == setup["noise_plan"]
    synthetic, synthetic_labels = resumed.sample(20, seed=0)
    assert synthetic.shape == (20, 8, 8) and set(synthetic_labels) <= {0, 1, 2}
    # Neither the checkpoint nor the saved model carries a seed.
    assert setup["params"]["seed"] is None and "seed" not in {k for k in setup if k != "params"}
    resumed.save(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "model.json").read_text())["params"]["seed"] is None


def test_image_vae_resume_refuses_other_images_settings_and_a_used_directory(tmp_path, digits):
    _, images, labels = digits
    checkpoints = tmp_path / "ckpt"
    settings = {**SETTINGS, "epochs": 1}
    first = ImageVAE(**settings).fit(images, labels, checkpoint_dir=checkpoints, checkpoint_every=2)
    with pytest.raises(ModelError, match="other images"):
        ImageVAE(**settings).fit(images[::-1].copy(), labels[::-1].copy(), checkpoint_dir=checkpoints, resume=True)
    with pytest.raises(ModelError, match="other settings"):
        ImageVAE(**{**settings, "epsilon": 3.0}).fit(images, labels, checkpoint_dir=checkpoints, resume=True)
    with pytest.raises(ModelError, match="other settings"):
        ImageVAE(**{**settings, "train_templates": False}).fit(images, labels, checkpoint_dir=checkpoints,
                                                               resume=True)
    with pytest.raises(ModelError, match="already holds a checkpoint"):
        ImageVAE(**settings).fit(images, labels, checkpoint_dir=checkpoints)
    with pytest.raises(ModelError, match="no checkpoint to resume from"):
        ImageVAE(**settings).fit(images, labels, checkpoint_dir=tmp_path / "none", resume=True)
    with pytest.raises(ModelError, match="needs a checkpoint directory"):
        ImageVAE(**settings).fit(images, labels, resume=True)
    with pytest.raises(ModelError, match="checkpoint_every"):
        ImageVAE(**settings).fit(images, labels, checkpoint_dir=tmp_path / "other", checkpoint_every=0)
    # A finished fit's checkpoint resumes to the same spend, drawing no new noise and no new line.
    again = ImageVAE(**settings).fit(images, labels, checkpoint_dir=checkpoints, resume=True)
    assert [s.step for s in again.ledger_.spends] == [s.step for s in first.ledger_.spends]
    assert again.epsilon_spent_ == pytest.approx(first.epsilon_spent_, rel=1e-12)
    # ... and samples from the same (averaged) decoder: no step was replayed.
    for key, value in first.generator_.state_dict().items():
        torch.testing.assert_close(again.generator_.state_dict()[key], value)


def test_frozen_templates_stay_the_dp_class_means_and_the_average_is_of_the_steps(monkeypatch, digits):
    _, images, labels = digits
    import synthdata.images.vae as module

    released = []
    release = module.release_class_means
    monkeypatch.setattr(module, "release_class_means", lambda *a, **k: released.append(release(*a, **k)) or released[-1])
    settings = {**SETTINGS, "epochs": 1, "insecure_noise_seed": None}
    frozen = ImageVAE(**{**settings, "train_templates": False}).fit(images, labels)
    template = torch.logit(released[-1].clamp(0.02, 0.98)).flatten(1).t()
    torch.testing.assert_close(frozen.generator_.template.weight, template)
    assert [s.step for s in frozen.ledger_.spends] == ["image count", "labels", "templates", "vae"]
    trained = ImageVAE(**settings).fit(images, labels)  # by default DP-SGD moves them on
    template = torch.logit(released[-1].clamp(0.02, 0.98)).flatten(1).t()
    assert not torch.allclose(trained.generator_.template.weight, template)
    with pytest.raises(ModelError, match="average must be"):
        ImageVAE(**{**settings, "average": 1.0}).fit(images, labels)
