"""An image fit killed with SIGKILL resumes from its checkpoint: training and the privacy
count continue (the private releases are reused, never repeated), and the final epsilon
equals an uninterrupted fit's."""

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from synthdata.errors import ModelError
from synthdata.images.estimator import ImageGAN

from .killing import kill_after_second_checkpoint

DIGITS = Path(__file__).resolve().parents[1] / "sample_datasets" / "digits.npz"

# The test noise seed makes an uninterrupted fit draw the same DP image count as the killed
# one, so both plan the same steps and must land on exactly the same epsilon.
SETTINGS = dict(epsilon=4.0, delta=1e-5, seed=3, generator_steps=24, epochs=0.5, batch_size=32, features=200,
                classes=list(range(10)), device="cpu", insecure_noise_seed=11)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    if not DIGITS.exists():
        pytest.skip(f"{DIGITS} is not present")
    with np.load(DIGITS) as data:
        images, labels = data["images"][:300], data["labels"][:300]
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, images=images, labels=labels)
    return path, images, labels


def _fit_killed_mid_way(path, checkpoints, settings: dict) -> None:
    """Fit ImageGAN(**settings) on the saved digits in another process, killed after its second checkpoint."""
    # Progress reports slow the process down so that it is killed mid-fit.
    script = textwrap.dedent(f"""
        import time, numpy as np, torch
        torch.set_num_threads(1)
        from synthdata.images.estimator import ImageGAN
        data = np.load({str(path)!r})
        ImageGAN(**{settings!r}).fit(data["images"], data["labels"], checkpoint_dir={str(checkpoints)!r},
                                     checkpoint_every=3, progress=lambda info: time.sleep(0.2))
    """)
    kill_after_second_checkpoint(script, checkpoints)


def test_a_killed_image_fit_resumes_to_the_same_epsilon(tmp_path, digits):
    path, images, labels = digits
    checkpoints = tmp_path / "ckpt"
    _fit_killed_mid_way(path, checkpoints, SETTINGS)

    resumed = ImageGAN(**SETTINGS).fit(images, labels, checkpoint_dir=checkpoints, resume=True)
    whole = ImageGAN(**SETTINGS).fit(images, labels)
    assert resumed.epsilon_spent_ == pytest.approx(whole.epsilon_spent_, rel=1e-12)
    assert resumed.epsilon_spent_ <= SETTINGS["epsilon"]
    lines = [s.step for s in resumed.ledger_.spends]
    # The private releases were reused, not repeated: one line each; the DP-SGD line continued.
    assert lines == [s.step for s in whole.ledger_.spends] and lines.count("embeddings") == 1
    steps = {s.step: s.parameters.get("steps") for s in resumed.ledger_.spends}
    assert steps["discriminator"] == {s.step: s.parameters.get("steps") for s in whole.ledger_.spends}["discriminator"]
    synthetic, synthetic_labels = resumed.sample(20, seed=0)
    assert synthetic.shape == (20, 8, 8) and set(synthetic_labels) <= set(range(10))
    # The saved model carries no seed of any kind.
    resumed.save(tmp_path / "model")
    assert "projection_seed" not in (tmp_path / "model" / "model.json").read_text()


def test_image_resume_refuses_other_images_settings_and_a_used_directory(tmp_path, digits):
    _, images, labels = digits
    checkpoints = tmp_path / "ckpt"
    settings = {**SETTINGS, "generator_steps": 6}
    settings["generator_steps"] = 7  # the last checkpoint before the end is at step 6
    first = ImageGAN(**settings).fit(images, labels, checkpoint_dir=checkpoints, checkpoint_every=2)
    with pytest.raises(ModelError, match="other images"):
        ImageGAN(**settings).fit(images[::-1].copy(), labels[::-1].copy(), checkpoint_dir=checkpoints, resume=True)
    with pytest.raises(ModelError, match="other settings"):
        ImageGAN(**{**settings, "epsilon": 3.0}).fit(images, labels, checkpoint_dir=checkpoints, resume=True)
    with pytest.raises(ModelError, match="already holds a checkpoint"):
        ImageGAN(**settings).fit(images, labels, checkpoint_dir=checkpoints)
    with pytest.raises(ModelError, match="no checkpoint to resume from"):
        ImageGAN(**settings).fit(images, labels, checkpoint_dir=tmp_path / "none", resume=True)
    # A finished fit's checkpoint resumes to the same spend, drawing no new noise and no new line.
    again = ImageGAN(**settings).fit(images, labels, checkpoint_dir=checkpoints, resume=True)
    assert [s.step for s in again.ledger_.spends].count("labels") == 1
    # ... and to the same generator: its last steps are not trained again with fresh noise
    # (that would be a second model under one ledger's spend).
    assert again.epsilon_spent_ == pytest.approx(first.epsilon_spent_, rel=1e-12)
    for key, value in first.generator_.state_dict().items():
        assert torch.equal(value, again.generator_.state_dict()[key]), key


def test_a_finished_fit_with_a_weight_average_resumes_to_the_same_average(tmp_path, digits):
    """The checkpoint holds the generator's weight average: resuming a finished fit returns it, not the
    initial weights nor the last ones."""
    _, images, labels = digits
    settings = {**SETTINGS, "generator_steps": 5, "average": 0.9}
    first = ImageGAN(**settings).fit(images, labels, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=2)
    again = ImageGAN(**settings).fit(images, labels, checkpoint_dir=tmp_path / "ckpt", resume=True)
    for key, value in first.generator_.state_dict().items():
        assert torch.equal(value, again.generator_.state_dict()[key]), key


def test_a_killed_fit_with_conv_features_resumes_with_the_fits_own_filters(tmp_path, digits, monkeypatch):
    """The random convolutional filters of conv_features are in the checkpoint: the resumed fit trains
    against the same features its released embeddings were computed with, to the same epsilon."""
    from synthdata.images import estimator
    from synthdata.images.networks import ConvFeatures

    path, images, labels = digits
    checkpoints = tmp_path / "ckpt"
    settings = {**SETTINGS, "conv_features": 0.5, "upsample": "nearest"}
    _fit_killed_mid_way(path, checkpoints, settings)

    trained: list = []
    init = estimator._Training.__init__

    def recording(self, *args, **kwargs):
        init(self, *args, **kwargs)
        trained.append(self)

    monkeypatch.setattr(estimator._Training, "__init__", recording)
    resumed = ImageGAN(**settings).fit(images, labels, checkpoint_dir=checkpoints, resume=True)
    assert trained[0].start > 0  # it did resume mid-fit
    own = ConvFeatures(channels=1, filters=estimator.CONV_FILTERS, seed=settings["seed"]).weight
    assert torch.equal(trained[0].conv.weight, own)
    whole = ImageGAN(**settings).fit(images, labels)
    assert resumed.epsilon_spent_ == pytest.approx(whole.epsilon_spent_, rel=1e-12)
    assert [s.step for s in resumed.ledger_.spends].count("embeddings") == 1
