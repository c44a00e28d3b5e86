"""The image discriminator's DP-SGD step: each real image's exact gradient (book-keeping, the same
as a vectorised torch.func pass) clipped to C and summed, the generated images' gradient added
exactly (post-processing: no clipping, no noise), Gaussian noise of std sigma*C on that sum, the
whole divided by the expected 2B images; every step one step of the ledger's DP-SGD line at the
planned q and sigma."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from synthdata.images.networks import ImageDiscriminator, ImageGenerator, per_sample_gradients
from synthdata.images.releases import DPDiscriminator
from synthdata.privacy import IMAGE, DPSGDRequest, NoiseSource, PrivacyLedger

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXPECTED = 8


def _plain_copy(d: DPDiscriminator, channels: int) -> ImageDiscriminator:
    """The same weights in a network without Opacus' hooks (torch.func cannot run through them)."""
    plain = ImageDiscriminator(classes=3, channels=channels)
    plain.load_state_dict(d.module.state_dict())
    return plain


def _discriminator(channels=1, side=12, max_grad_norm=1.0):
    torch.manual_seed(0)
    ledger = PrivacyLedger(epsilon=5.0, delta=1e-5, unit=IMAGE, noise=NoiseSource(seed=1))
    ledger.plan(gaussians={}, dpsgd=DPSGDRequest(sample_rate=0.2, steps=3, share=1.0))
    real = torch.rand(40, channels, side, side)
    labels = torch.randint(3, (40,))
    d = DPDiscriminator(classes=3, channels=channels, real=real, real_labels=labels, sample_rate=0.2,
                        expected=EXPECTED, steps=3, noise_multiplier=ledger.plan_.noise_multiplier,
                        max_grad_norm=max_grad_norm, ledger=ledger, device=torch.device("cpu"))
    generator = ImageGenerator(classes=3, height=side, width=side, channels=channels)
    return d, generator, ledger


class _Recorder:
    """Records the Poisson batches the step draws (or hands it a fixed one)."""

    def __init__(self, sampler, fixed=None):
        self.sampler, self.fixed, self.batches = sampler, fixed, []

    def poisson_sample(self, n, q):
        chosen = self.sampler.poisson_sample(n, q) if self.fixed is None else self.fixed
        self.batches.append(np.asarray(chosen))
        return chosen


def _spy(d: DPDiscriminator) -> dict:
    """What the optimizer is handed (p.grad before the noise) and what it applies (p.grad after it)."""
    seen: dict = {}
    pre_step = d.optimizer.pre_step

    def spying_pre_step(*args, **kwargs):
        seen["handed"] = {name: p.grad.clone() for name, p in d.module.named_parameters()}
        done = pre_step(*args, **kwargs)
        seen["applied"] = {name: p.grad.clone() for name, p in d.module.named_parameters()}
        return done

    d.optimizer.pre_step = spying_pre_step
    return seen


def _rebuilt_fakes(generator, state):
    """The generated half of the step, from the same torch state (labels, then noise)."""
    torch.set_rng_state(state)
    fake_labels = torch.randint(3, (EXPECTED,))
    with torch.no_grad():
        fake = generator(torch.randn(EXPECTED, generator.noise_dim), fake_labels)
    return fake, fake_labels


def _expected_sum(plain, real, real_labels, fake, fake_labels, max_grad_norm):
    """sum_i clip_C(g_i) over the real images (torch.func) + the exact gradient of the generated half."""
    if len(real):
        grads, _ = per_sample_gradients(plain, real, real_labels, torch.ones(len(real)))
        norms = torch.sqrt(sum(g.flatten(1).square().sum(1) for g in grads.values()))
        factor = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        clipped = {name: torch.einsum("i,i...", factor, g) for name, g in grads.items()}
    else:
        clipped = {name: torch.zeros_like(p) for name, p in plain.named_parameters()}
    loss = F.binary_cross_entropy_with_logits(plain(fake, fake_labels), torch.zeros(len(fake)), reduction="sum")
    names, params = zip(*plain.named_parameters())
    fake_grads = dict(zip(names, torch.autograd.grad(loss, params)))
    return {name: clipped[name] + fake_grads[name] for name in names}, norms if len(real) else None


@pytest.mark.parametrize("channels,max_grad_norm", [(1, 1.0), (3, 0.05)])
def test_optimizer_is_handed_the_clipped_real_sum_plus_the_exact_generated_gradient(channels, max_grad_norm):
    d, generator, ledger = _discriminator(channels, max_grad_norm=max_grad_norm)
    recorder = d.sampler = _Recorder(d.sampler)
    seen = _spy(d)
    plain = _plain_copy(d, channels)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    d.step(generator)

    chosen = torch.as_tensor(recorder.batches[0], dtype=torch.long)
    assert len(chosen) > 0
    fake, fake_labels = _rebuilt_fakes(generator, state)
    expected, norms = _expected_sum(plain, d.real[chosen], d.real_labels[chosen], fake, fake_labels, max_grad_norm)
    if max_grad_norm < 1:
        assert (norms > max_grad_norm).all()  # every real image is clipped here: the clip is what is tested
    assert set(seen["handed"]) == set(expected)
    for name in expected:
        assert torch.allclose(seen["handed"][name], expected[name], atol=1e-5, rtol=1e-4), name

    # Applied = (handed + N(0, (sigma C)^2)) / 2B: the noise is at the planned level.
    sigma = ledger.plan_.noise_multiplier
    residual = torch.cat([(seen["applied"][n] * 2 * EXPECTED - seen["handed"][n]).flatten() for n in expected])
    assert residual.numel() > 10_000
    assert abs(float(residual.std()) / (sigma * max_grad_norm) - 1) < 0.05
    assert abs(float(residual.mean())) < 0.05 * sigma * max_grad_norm

    # One step of the planned DP-SGD line: the real sampling rate and the planned multiplier.
    assert [s.step for s in ledger.spends] == ["discriminator"]
    line = ledger.spends[-1]
    assert line.parameters["sample_rate"] == pytest.approx(0.2)
    assert line.parameters["noise_multiplier"] == pytest.approx(sigma)
    assert line.parameters["steps"] == 1


def test_an_empty_real_batch_is_still_a_noisy_booked_step():
    d, generator, ledger = _discriminator(1)
    d.sampler = _Recorder(d.sampler, fixed=np.zeros(0, dtype=np.int64))
    seen = _spy(d)
    plain = _plain_copy(d, 1)
    torch.manual_seed(7)
    state = torch.get_rng_state()
    d.step(generator)
    fake, fake_labels = _rebuilt_fakes(generator, state)
    expected, _ = _expected_sum(plain, d.real[:0], d.real_labels[:0], fake, fake_labels, 1.0)
    for name in expected:
        assert torch.allclose(seen["handed"][name], expected[name], atol=1e-5, rtol=1e-4), name
    residual = torch.cat([(seen["applied"][n] * 2 * EXPECTED - seen["handed"][n]).flatten() for n in expected])
    assert abs(float(residual.std()) / ledger.plan_.noise_multiplier - 1) < 0.05
    assert [s.step for s in ledger.spends] == ["discriminator"] and d.done == 1


@pytest.mark.parametrize("channels,side", [(1, 12), (3, 13), (1, 28)])
def test_book_keeping_gives_each_images_exact_gradient_clipped(channels, side):
    torch.manual_seed(3)
    d = ImageDiscriminator(classes=3, channels=channels)
    images, labels = torch.rand(10, channels, side, side), torch.randint(3, (10,))
    targets = (torch.arange(10) % 2).float()
    grads, losses = per_sample_gradients(d, images, labels, targets)
    norms = torch.sqrt(sum(g.flatten(1).square().sum(1) for g in grads.values()))
    for clip in (float(norms.min()) / 2, float(norms.max()) * 2):  # every image clipped; none
        coef = (clip / (norms + 1e-6)).clamp(max=1.0)
        d.zero_grad(set_to_none=True)
        returned = d.clipped_backward(images, labels, targets, max_grad_norm=clip)
        assert torch.allclose(returned, losses, atol=1e-6)
        for name, p in d.named_parameters():
            expected = torch.einsum("i,i...->...", coef, grads[name])
            assert torch.allclose(p.grad, expected, atol=1e-6, rtol=1e-4), name
    # No image moves the sum by more than C, whatever its gradient.
    clip = float(norms.min()) / 2
    for i in range(3):
        d.zero_grad(set_to_none=True)
        d.clipped_backward(images[i:i + 1], labels[i:i + 1], targets[i:i + 1], max_grad_norm=clip)
        assert float(torch.sqrt(sum(p.grad.square().sum() for p in d.parameters()))) <= clip * (1 + 1e-5)
