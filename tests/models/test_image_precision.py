"""ImageGAN(precision=...): bfloat16 only where it is post-processing.

The generator's training steps may run in bfloat16 (about half the CPU time where the
processor has bfloat16 instructions). Every computation on the real images — the label
counts, the per-class sums of features (sensitivity 1: each image's features of norm <= 1)
and the DP discriminator's clipped gradients — must stay float32 whatever the setting, and
whatever autocast the caller has open.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from synthdata.errors import ModelError
from synthdata.images.networks import ConvFeatures, embedding, fourier_projection
from synthdata.images.releases import release_embeddings
from synthdata.models import ImageGAN
from synthdata.privacy import GaussianRequest, NoiseSource, PrivacyLedger
from synthdata.runtime import resolve_precision

DIGITS = Path(__file__).resolve().parents[2] / "sample_datasets" / "digits.npz"
FAST = {"epsilon": 2.0, "generator_steps": 6, "features": 200, "device": "cpu", "seed": 0, "classes": range(10),
        "insecure_noise_seed": 3, "budget_split": {"discriminator": 0.2}, "epochs": 0.5}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small():
    data = np.load(DIGITS)
    return data["images"][:300], data["labels"][:300]


def _recorded_fit(images, labels, monkeypatch, **params):
    released: dict[str, list[np.ndarray]] = {}
    noisy = PrivacyLedger.noisy

    def recording(self, step, values, **kwargs):
        out = noisy(self, step, values, **kwargs)
        released.setdefault(step, []).append(np.array(out, copy=True))
        return out

    monkeypatch.setattr(PrivacyLedger, "noisy", recording)
    model = ImageGAN(**{**FAST, **params}).fit(images, labels)
    monkeypatch.undo()
    return model, released


def test_bfloat16_changes_the_generator_and_nothing_released_from_the_real_images(small, monkeypatch):
    images, labels = small
    plain, plain_released = _recorded_fit(images, labels, monkeypatch, precision="float32")
    rounded, rounded_released = _recorded_fit(images, labels, monkeypatch, precision="bfloat16")
    assert set(plain_released) == set(rounded_released) and "embeddings" in plain_released
    for step in plain_released:
        for a, b in zip(plain_released[step], rounded_released[step], strict=True):
            np.testing.assert_array_equal(a, b)
    assert [(s.step, s.epsilon, s.delta) for s in plain.ledger_.spends] == \
        [(s.step, s.epsilon, s.delta) for s in rounded.ledger_.spends]
    assert any(s.step == "discriminator" for s in plain.ledger_.spends)
    # The setting did act: the generators trained in different arithmetic differ.
    a, b = plain.generator_.state_dict(), rounded.generator_.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert rounded.get_params()["precision"] == "bfloat16"
    samples, _ = rounded.sample(8, seed=1)
    assert samples.dtype == np.uint8 and samples.shape == (8, 8, 8)


def test_the_release_of_features_ignores_a_callers_autocast():
    rng = np.random.default_rng(0)
    real = torch.as_tensor(rng.random((40, 1, 8, 8)), dtype=torch.float32)
    labels = torch.as_tensor(rng.integers(0, 3, 40))
    projection = fourier_projection(64, 100, (0.2, 0.4), seed=0)
    conv = ConvFeatures(channels=1, filters=8, seed=0)

    def release():
        ledger = PrivacyLedger(epsilon=1.0, delta=1e-5, noise=NoiseSource(seed=5))
        ledger.plan(gaussians={"embeddings": GaussianRequest(sensitivity=1.0, share=1.0)})
        return release_embeddings(real, labels, 3, projection, np.ones(3), ledger=ledger, conv=conv,
                                  conv_weight=0.5)

    plain = release()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        inside = release()
        rounded = embedding(real, projection, conv, 0.5)
    torch.testing.assert_close(inside, plain, rtol=0, atol=0)
    # Inside autocast the generator's own features come out float32, the Fourier part exactly as outside.
    exact = embedding(real, projection, conv, 0.5)
    assert rounded.dtype == torch.float32
    torch.testing.assert_close(rounded[:, :100], exact[:, :100], rtol=0, atol=0)
    assert not torch.equal(rounded[:, 100:], exact[:, 100:])


def test_precision_is_checked_and_auto_follows_the_hardware(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) == "float32"
    assert resolve_precision("bfloat16", cpu) == "bfloat16"
    with pytest.raises(ModelError, match="precision must be one of auto, float32, bfloat16"):
        resolve_precision("half", cpu)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert resolve_precision("auto", cpu) == "float32"
    # A GPU that only emulates bfloat16 (before Ampere) trains in float32.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", torch.device("cuda")) == "float32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision("auto", torch.device("cuda")) == "bfloat16"
    with pytest.raises(ModelError, match="precision must be"):
        ImageGAN(epsilon=1.0, precision="fp8", device="cpu").fit(np.zeros((20, 8, 8), np.uint8))
