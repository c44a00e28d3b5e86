"""ImageGAN: what it samples, what it spends, what it refuses.

Fast: the 8x8 digits (or a small slice), a few dozen generator steps, seeded on the CPU
with one torch thread, so every assertion below is deterministic.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import warnings

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from synthdata.errors import DataError, ModelError, SynthdataWarning
from synthdata.models import ImageGAN
from synthdata.images.networks import ImageDiscriminator, fourier_features, fourier_projection, per_sample_gradients
from synthdata.privacy import DPSGD_MECHANISM

DIGITS = Path(__file__).resolve().parents[2] / "sample_datasets" / "digits.npz"
FAST = {"generator_steps": 30, "features": 400, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    data = np.load(DIGITS)
    return data["images"], data["labels"]


@pytest.fixture(scope="module")
def small(digits):
    images, labels = digits
    return images[:400], labels[:400]


@pytest.fixture(scope="module")
def fitted(small):
    images, labels = small
    return ImageGAN(epsilon=2.0, seed=0, classes=range(10), **FAST).fit(images, labels)


# --------------------------------------------------------------------------- privacy


@pytest.mark.parametrize("epsilon", [0.3, 1.0, 10.0])
@pytest.mark.parametrize("discriminator", [0.0, 0.2])
def test_epsilon_is_never_exceeded_and_every_release_is_booked(small, epsilon, discriminator):
    images, labels = small
    model = ImageGAN(epsilon=epsilon, seed=1, epochs=0.3, batch_size=32, classes=range(10),
                     budget_split={"discriminator": discriminator}, **{**FAST, "generator_steps": 5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SynthdataWarning)  # at epsilon 0.3 the DP count of 200 images is rough
        model.fit(images[:200], labels[:200])
    assert model.epsilon_spent_ <= epsilon
    assert model.epsilon_spent_ > 0.95 * epsilon  # the plan spends the budget it was given
    assert model.ledger_.epsilon_spent == model.epsilon_spent_
    steps = {spend.step: spend for spend in model.ledger_.spends}
    expected = {"image count", "labels", "embeddings"} | ({"discriminator"} if discriminator else set())
    assert set(steps) == expected
    assert steps["labels"].parameters["sensitivity"] == 1.0
    assert steps["embeddings"].parameters["sensitivity"] == 1.0
    assert steps["embeddings"].parameters["features"] == FAST["features"]
    if discriminator:
        line = steps["discriminator"]
        assert line.mechanism == DPSGD_MECHANISM
        # Every planned step, no more; planned from the DP image count, never the exact one
        # (a rough count at epsilon 0.3 can read small enough that the rate is capped at one half).
        rate = min(32 / model.n_images_, 0.5)
        assert line.parameters["sample_rate"] == pytest.approx(rate)
        assert line.parameters["steps"] == int(np.ceil(0.3 / rate))


def test_fourier_features_have_unit_norm_so_one_image_has_sensitivity_one():
    projection = fourier_projection(64, 200, (0.2, 0.4), seed=3)
    extremes = torch.cat([torch.zeros(1, 64), torch.ones(1, 64), torch.rand(50, 64)])
    norms = fourier_features(extremes, projection).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    # Drawn from the seed alone, never from the data.
    assert torch.equal(projection, fourier_projection(64, 200, (0.2, 0.4), seed=3))


def test_a_label_held_by_one_image_is_never_sampled(small):
    images, labels = small
    labels = labels.astype("U16")
    labels[7] = "unique-person"
    model = ImageGAN(epsilon=10.0, seed=2, **FAST).fit(images, labels)
    assert "unique-person" not in set(model.classes_)
    _, sampled = model.sample(500)
    assert "unique-person" not in set(sampled)
    assert set(sampled) <= set(model.classes_) == set(np.unique(labels)) - {"unique-person"}


def test_declared_classes_are_all_released_and_checked(small):
    images, labels = small
    model = ImageGAN(epsilon=0.5, seed=0, classes=range(12), **{**FAST, "generator_steps": 3}).fit(images, labels)
    np.testing.assert_array_equal(model.classes_, np.arange(12))  # public domain: no threshold
    assert "threshold" not in model.ledger_.spends[0].parameters
    with pytest.raises(DataError, match="not among the declared classes"):
        ImageGAN(epsilon=1.0, classes=range(5), **FAST).fit(images, labels)


def test_too_small_a_budget_for_any_observed_class_is_a_clear_error(small):
    images, labels = small
    with pytest.raises(ModelError, match="no class has enough images"), warnings.catch_warnings():
        warnings.simplefilter("ignore", SynthdataWarning)  # the DP count of 100 images may read below 10 here
        ImageGAN(epsilon=0.3, seed=0, **FAST).fit(images[:100], labels[:100])


def test_per_sample_gradients_match_one_at_a_time():
    torch.manual_seed(0)
    module = ImageDiscriminator(classes=3, channels=1, width=8)
    images, labels = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    targets = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    grads, _ = per_sample_gradients(module, images, labels, targets)
    for i in range(5):
        module.zero_grad()
        F.binary_cross_entropy_with_logits(module(images[i:i + 1], labels[i:i + 1]), targets[i:i + 1]).backward()
        for name, p in module.named_parameters():
            torch.testing.assert_close(grads[name][i], p.grad, atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------- sampling


def test_samples_have_the_input_layout_dtype_and_classes(fitted):
    images, labels = fitted.sample(64, seed=5)
    assert images.shape == (64, 8, 8) and images.dtype == np.uint8
    assert images.max() > 100  # not collapsed to black
    assert labels.shape == (64,) and labels.dtype == np.int64
    assert set(labels) <= set(fitted.classes_)
    assert fitted.image_shape_ == (8, 8)
    assert abs(fitted.n_images_ - 400) < 200  # a DP count (Laplace, scale 25 here), never the exact one
    empty, empty_labels = fitted.sample(0)
    assert empty.shape == (0, 8, 8) and empty_labels.shape == (0,)


def test_colour_images_without_labels(small):
    images, _ = small
    colour = np.stack([images[:120], images[:120] // 2, 255 - images[:120]], axis=-1)  # N x 8 x 8 x 3
    model = ImageGAN(epsilon=1.0, seed=0, **FAST).fit(colour)
    sampled, labels = model.sample(10)
    assert sampled.shape == (10, 8, 8, 3) and sampled.dtype == np.uint8 and labels is None
    assert [spend.step for spend in model.ledger_.spends] == ["image count", "embeddings", "discriminator"]


def test_odd_sizes_are_generated_exactly(small):
    images = np.zeros((60, 11, 7), dtype=np.uint8)
    images[:, 3:8, 2:5] = 200
    model = ImageGAN(epsilon=5.0, seed=0, **{**FAST, "generator_steps": 3}).fit(images)
    assert model.sample(4)[0].shape == (4, 11, 7)


def test_seeded_fits_and_samples_repeat_only_with_the_test_noise_seed(small):
    images, labels = small
    first_model = ImageGAN(epsilon=2.0, seed=0, classes=range(10), insecure_noise_seed=4, **FAST).fit(images, labels)
    again = ImageGAN(epsilon=2.0, seed=0, classes=range(10), insecure_noise_seed=4, **FAST).fit(images, labels)
    first, first_labels = first_model.sample(50, seed=9)
    second, second_labels = again.sample(50, seed=9)
    fitted = first_model
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first_labels, second_labels)
    assert not np.array_equal(first, fitted.sample(50, seed=10)[0])


def test_bad_input_is_refused_in_one_line(small):
    images, labels = small
    model = ImageGAN(epsilon=1.0, **FAST)
    with pytest.raises(DataError, match="uint8"):
        model.fit(images.astype(np.float32), labels)
    with pytest.raises(DataError, match="one label per image"):
        model.fit(images, labels[:-1])
    with pytest.raises(DataError, match="at least 2"):
        model.fit(images[:1])
    with pytest.raises(ModelError, match="not fitted"):
        model.sample(3)


def test_the_generator_is_the_moving_average_of_its_steps(small, monkeypatch):
    """average=d: the model is the exponential moving average of the generator's weights after each
    step, with the decay warming up as min(d, (1 + step) / (10 + step)); average=0: the last weights."""
    from synthdata.images import estimator

    images, labels = small
    seen: list[dict[str, torch.Tensor]] = []
    update = estimator._Training.update_average

    def recording(self, step):
        seen.append({k: v.detach().clone() for k, v in self.generator.state_dict().items()})
        update(self, step)

    monkeypatch.setattr(estimator._Training, "update_average", recording)
    settings = {**FAST, "generator_steps": 12, "classes": range(10), "seed": 0}
    model = ImageGAN(epsilon=2.0, average=0.5, **settings).fit(images, labels)
    assert len(seen) == 12
    initial = ImageGAN(epsilon=2.0, **{**settings, "generator_steps": 0}).fit(images, labels).generator_.state_dict()
    for key, value in model.generator_.state_dict().items():
        expected = initial[key].clone()
        for step, weights in enumerate(seen):
            decay = min(0.5, (1 + step) / (10 + step))
            expected = decay * expected + (1 - decay) * weights[key]
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(value, seen[-1][key])  # not the last weights
    seen.clear()
    last = ImageGAN(epsilon=2.0, **settings).fit(images, labels)
    for key, value in last.generator_.state_dict().items():
        assert torch.equal(value, seen[-1][key])
    for bad in (-0.1, 1.0, True, "0.9"):
        with pytest.raises(ModelError, match="average must be"):
            ImageGAN(epsilon=2.0, average=bad, **settings).fit(images, labels)


# --------------------------------------------------------------------------- persistence


def test_save_load_round_trip_samples_identically(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = ImageGAN.load(tmp_path / "model")
    for a, b in zip(fitted.sample(40, seed=3), loaded.sample(40, seed=3)):
        np.testing.assert_array_equal(a, b)
    assert loaded.epsilon_spent_ == fitted.epsilon_spent_
    assert [s.to_dict() for s in loaded.ledger_.spends] == [s.to_dict() for s in fitted.ledger_.spends]
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)


def test_tampered_or_pickled_weights_are_refused(fitted, tmp_path):
    path = tmp_path / "model"
    fitted.save(path)
    weights = path / "generator.pt"
    state = torch.load(weights, weights_only=True)
    state["project.bias"] = state["project.bias"] + 1
    torch.save(state, weights)
    with pytest.raises(ModelError, match="checksum"):
        ImageGAN.load(path)

    class Payload:  # a pickled object that runs code when unpickled
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"x": Payload()}, weights)
    meta = json.loads((path / "model.json").read_text())
    meta["generator"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()  # a consistent forgery
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="plain tensor file"):
        ImageGAN.load(path)


# --------------------------------------------------------------------------- utility


def test_synthetic_digits_teach_a_classifier(digits):
    """Train on 2,000 synthetic digits, test on held-out real ones: well above chance (0.1)."""
    from sklearn.linear_model import LogisticRegression

    images, labels = digits
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1400], order[1400:]
    model = ImageGAN(epsilon=10.0, delta=1e-5, seed=0, generator_steps=150, features=2000, device="cpu")
    model.fit(images[train], labels[train])
    synthetic, synthetic_labels = model.sample(2000, seed=1)
    classifier = LogisticRegression(max_iter=500).fit(synthetic.reshape(2000, -1) / 255.0, synthetic_labels)
    accuracy = classifier.score(images[test].reshape(len(test), -1) / 255.0, labels[test])
    assert accuracy >= 0.5
