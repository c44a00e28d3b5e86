"""The image discriminator's DP-SGD step: Opacus' grad-sample hooks give each sample's exact
gradient of its own loss (the same as a vectorised torch.func pass), only in the
discriminator's own step, and every step is one line's step on the ledger."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from synthdata.images.networks import ImageDiscriminator, ImageGenerator, per_sample_gradients
from synthdata.images.releases import DPDiscriminator
from synthdata.privacy import IMAGE, DPSGDRequest, NoiseSource, PrivacyLedger

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _plain_copy(d: DPDiscriminator, channels: int) -> ImageDiscriminator:
    """The same weights in a network without Opacus' hooks (torch.func cannot run through them)."""
    plain = ImageDiscriminator(classes=3, channels=channels)
    plain.load_state_dict(d.module.state_dict())
    return plain


def _discriminator(channels=1, side=12):
    torch.manual_seed(0)
    ledger = PrivacyLedger(epsilon=5.0, delta=1e-5, unit=IMAGE, noise=NoiseSource(seed=1))
    ledger.plan(gaussians={}, dpsgd=DPSGDRequest(sample_rate=0.2, steps=3, share=1.0))
    real = torch.rand(40, channels, side, side)
    labels = torch.randint(3, (40,))
    d = DPDiscriminator(classes=3, channels=channels, real=real, real_labels=labels, sample_rate=0.2, expected=8,
                        steps=3, noise_multiplier=ledger.plan_.noise_multiplier, max_grad_norm=1.0, ledger=ledger,
                        device=torch.device("cpu"))
    generator = ImageGenerator(classes=3, height=side, width=side, channels=channels)
    return d, generator, ledger


@pytest.mark.parametrize("channels", [1, 3])
def test_hooks_give_each_samples_exact_gradient_in_the_discriminator_step_only(channels):
    d, generator, ledger = _discriminator(channels)
    seen = {}
    batches = []
    real_sample = d.sampler.poisson_sample

    def record_batch(n, q):
        chosen = real_sample(n, q)
        batches.append(chosen)
        return chosen

    d.sampler = type("S", (), {"poisson_sample": staticmethod(record_batch)})()

    def capture(*args, **kwargs):
        seen.update({name: p.grad_sample.clone() for name, p in d.module.named_parameters()})
        return original(*args, **kwargs)

    original = d.optimizer.step
    d.optimizer.step = capture
    before_step = _plain_copy(d, channels)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    d.step(generator)
    # Rebuild the same batch: the sampled real images, then fakes drawn from the same torch state.
    torch.set_rng_state(before)
    chosen = torch.as_tensor(batches[0], dtype=torch.long)
    fake_labels = torch.randint(3, (8,))
    with torch.no_grad():
        fake = generator(torch.randn(8, generator.noise_dim), fake_labels)
    images = torch.cat([d.real[chosen], fake])
    labels = torch.cat([d.real_labels[chosen], fake_labels])
    targets = torch.cat([torch.ones(len(chosen)), torch.zeros(8)])
    expected, _ = per_sample_gradients(before_step, images, labels, targets)
    assert set(seen) == set(expected)
    for name in expected:
        assert np.allclose(seen[name].numpy(), expected[name].numpy(), atol=1e-5), name
    assert [s.step for s in ledger.spends] == ["discriminator"]

    # The generator's adversarial loss through the discriminator leaves no per-sample gradient behind.
    d.optimizer.zero_grad(set_to_none=True)
    fake = generator(torch.randn(4, generator.noise_dim), torch.arange(4) % 3)
    F.softplus(-d.module(fake, torch.arange(4) % 3)).mean().backward(inputs=list(generator.parameters()))
    assert all(getattr(p, "grad_sample", None) is None for p in d.module.parameters())


def test_hook_gradients_equal_torch_func_gradients():
    d, generator, _ = _discriminator(3)
    images, labels = torch.rand(10, 3, 12, 12), torch.randint(3, (10,))
    targets = (torch.arange(10) % 2).float()
    expected, _ = per_sample_gradients(_plain_copy(d, 3), images, labels, targets)
    d.sampled.enable_hooks()
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        F.binary_cross_entropy_with_logits(d.sampled(images, labels), targets, reduction="sum").backward()
    d.sampled.disable_hooks()
    for name, p in d.module.named_parameters():
        assert np.allclose(p.grad_sample.numpy(), expected[name].numpy(), atol=1e-5), name
