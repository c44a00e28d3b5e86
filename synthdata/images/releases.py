"""The private releases an image model reads the real images through.

1. **label frequencies** (:func:`release_labels`) — a Gaussian sparse histogram of the
   labels (L2 sensitivity 1: one image moves one count by 1). A class is released only
   if its noisy count clears :func:`~synthdata.privacy.gaussian_threshold`, unless the
   label domain is declared public.
2. **mean embeddings** (:func:`release_embeddings`) — DP-MERF (Harder et al. 2021):
   per-class sums of norm-1 random Fourier features, with Gaussian noise added once.
3. **discriminator** (:class:`DPDiscriminator`) — a conditional conv discriminator
   trained with DP-SGD: Poisson-sampled real batches, each real image's exact gradient
   (book-keeping, ``ImageDiscriminator.clipped_backward``) clipped and summed, noise by
   Opacus' DP optimizer, every step on the ledger. The generated images' gradient needs no
   clipping or noise (post-processing, see :class:`DPDiscriminator`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import DataError, ModelError
from ..privacy import PrivacyLedger, gaussian_threshold
from ..privacy.dpsgd import make_dp_optimizer
from .networks import ConvFeatures, ImageDiscriminator, ImageGenerator, embedding

__all__ = ["DPDiscriminator", "check_domain", "release_embeddings", "release_labels"]


def check_domain(classes: Any, labels: np.ndarray | None) -> np.ndarray | None:
    """The declared public label domain (sorted, unique), checked against the labels."""
    if classes is None:
        return None
    if labels is None:
        raise DataError("classes were declared but no labels were given; pass labels, or leave classes=None")
    domain = np.unique(np.asarray(list(classes)))
    if domain.size == 0 or domain.ndim != 1:
        raise DataError("classes must be a non-empty list of label values")
    outside = np.setdiff1d(np.unique(labels), domain)
    if outside.size:
        raise DataError(f"{outside.size} label value(s) are not among the declared classes; declare every "
                        "class, or leave classes=None to release the observed ones")
    return domain.astype(labels.dtype) if labels.dtype.kind != "U" else domain


def release_labels(labels: np.ndarray | None, domain: np.ndarray | None, count: int, *, ledger: PrivacyLedger,
                   threshold_delta: float, n: int):
    """Noisy label counts (the ledger's planned ``"labels"`` noise); only classes clearing the threshold are released.

    Over a declared public ``domain`` every class is released (noisy counts, at least 1),
    with no threshold: the domain reveals nothing about the images. Without labels there
    is one class whose count is the DP image ``count`` already released.

    Returns the released classes, each image's index into them (-1: not released), and
    the released noisy counts. L2 sensitivity 1: one image moves one count by 1.
    """
    if labels is None:
        return np.asarray([0]), np.zeros(n, dtype=np.int64), np.asarray([max(float(count), 1.0)])
    if domain is not None:
        index = np.searchsorted(domain, labels)
        noisy = ledger.noisy("labels", np.bincount(index, minlength=len(domain)), sensitivity=1.0, integer=True,
                             mechanism="Gaussian mechanism on label counts over the declared classes",
                             parameters={"classes_released": int(len(domain)), "domain": "declared (public)"})
        return domain, index, np.maximum(noisy.astype(float), 1.0)
    observed, inverse, true_counts = np.unique(labels, return_inverse=True, return_counts=True)
    sigma = ledger.planned_multiplier("labels")
    threshold = gaussian_threshold(sigma=sigma, fail_probability=threshold_delta)
    noisy = ledger.noisy("labels", true_counts, sensitivity=1.0, integer=True,
                         mechanism="Gaussian sparse histogram of labels (classes below the threshold are not released)",
                         parameters={"threshold": round(threshold, 3), "threshold_delta": threshold_delta},
                         extra_delta=threshold_delta).astype(float)
    released = noisy > threshold
    if not released.any():
        raise ModelError(f"no class has enough images to be released at epsilon={ledger.epsilon:g} (every noisy "
                         f"count is below the threshold {threshold:.0f}); raise epsilon, declare the classes "
                         "(--classes), or give more images per class")
    position = np.full(len(observed), -1)
    position[released] = np.arange(int(released.sum()))
    return observed[released], position[inverse], noisy[released]


def release_embeddings(real: torch.Tensor, labels: torch.Tensor, classes: int, projection: torch.Tensor,
                       counts: np.ndarray, *, ledger: PrivacyLedger, conv: ConvFeatures | None = None,
                       conv_weight: float = 0.0) -> torch.Tensor:
    """Per-class sums of features of norm <= 1 (:func:`~synthdata.images.networks.embedding`) + Gaussian
    noise (planned ``"embeddings"``), over the noisy counts."""
    with_conv = conv is not None and conv_weight > 0
    width = embedding(torch.zeros(1, *real.shape[1:], device=real.device), projection, conv, conv_weight).shape[1]
    sums = torch.zeros(classes, width, device=real.device, dtype=torch.float64)
    # float32 even inside a caller's autocast: rounded features could leave norm 1 (the sensitivity).
    with torch.no_grad(), torch.autocast(device_type=real.device.type, enabled=False):
        for start in range(0, real.shape[0], 2048):
            phi = embedding(real[start:start + 2048], projection, conv, conv_weight).double()
            sums.index_add_(0, labels[start:start + 2048], phi)
    mechanism = "Gaussian mechanism on per-class sums of random Fourier features (DP-MERF)"
    parameters: dict[str, Any] = {"features": int(sums.shape[1]), "classes": classes}
    if with_conv:
        mechanism += " and of fixed random convolutional features (norm <= 1 together)"
        parameters["conv_weight"] = conv_weight
    noisy = ledger.noisy("embeddings", sums.cpu().numpy(), sensitivity=1.0, mechanism=mechanism,
                         parameters=parameters)
    return torch.as_tensor(noisy / counts[:, None], dtype=torch.float32, device=real.device)


class DPDiscriminator:
    """The DP-SGD discriminator: Poisson batches, per-sample clipping of the real images, noise, ledger hook.

    Only the real images are private. Each step's update direction is

        ( sum_i clip_C(g_i(real_i)) + N(0, (sigma C)^2 I) + sum_j g_j(fake_j) ) / (2 B)

    with B the expected real batch (as many generated images are drawn). The generated
    images' gradient depends only on the generator and discriminator (both already DP
    outputs) and fresh randomness: adding it is post-processing of the Gaussian mechanism
    on the clipped real sum, whose L2 sensitivity is still C (one image in or out of the
    Poisson batch), so it is neither clipped nor noised (as in DP-GAN, GS-WGAN and "DP-GAN
    revisited"). The accounting is DP-SGD's with the real sampling rate q, multiplier sigma
    and the planned steps, unchanged.

    Each real image's exact gradient comes from
    :meth:`~synthdata.images.networks.ImageDiscriminator.clipped_backward` (book-keeping:
    one forward, one backward to the layer outputs, per-image weight gradients from
    activations and output gradients), which sets ``p.grad`` to the clipped real sum; one
    plain backward of the generated half adds its gradient; Opacus' DP optimizer
    (``clipped_before``) adds the noise, divides by 2B and books the step.
    ``benchmarks/dp_overhead.py --model conv`` times it against a plain step and Opacus'
    own ways.
    """

    def __init__(self, *, classes: int, channels: int, real: torch.Tensor, real_labels: torch.Tensor,
                 sample_rate: float, expected: int, steps: int, noise_multiplier: float, max_grad_norm: float,
                 ledger: PrivacyLedger, device: torch.device) -> None:
        self.module = ImageDiscriminator(classes=classes, channels=channels).to(device)
        self.real, self.real_labels = real, real_labels
        self.sample_rate, self.steps, self.done = sample_rate, steps, 0
        self.classes = classes
        self.expected = expected
        self.max_grad_norm = max_grad_norm
        self.optimizer = make_dp_optimizer(
            torch.optim.Adam(self.module.parameters(), lr=2e-3, betas=(0.5, 0.9)), ledger=ledger,
            step="discriminator", noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
            sample_rate=sample_rate, expected_batch_size=2 * expected, clipped_before=True,
            parameters={"batch_size_expected": expected,
                        "clipping": "exact per-sample of the real images (book-keeping); "
                                    "generated images' gradient unclipped (post-processing)"})
        self.sampler = ledger.noise
        self.device = device

    def step(self, generator: ImageGenerator) -> float:
        # float32 even inside a caller's autocast: the clipping reads each real image's gradient norm.
        with torch.autocast(device_type=self.device.type, enabled=False):
            return self._step(generator)

    def _step(self, generator: ImageGenerator) -> float:
        # Each image in independently with probability q (images of unreleased classes
        # were dropped before: they are in no batch, which only helps them).
        chosen = self.sampler.poisson_sample(self.real.shape[0], self.sample_rate)
        chosen = torch.as_tensor(chosen, dtype=torch.long, device=self.device)
        fake_labels = torch.randint(self.classes, (self.expected,), device=self.device)
        with torch.no_grad():
            fake = generator(torch.randn(self.expected, generator.noise_dim, device=self.device), fake_labels)
        self.optimizer.zero_grad(set_to_none=True)
        real_losses = self.module.clipped_backward(
            self.real[chosen], self.real_labels[chosen], torch.ones(len(chosen), device=self.device),
            max_grad_norm=self.max_grad_norm)
        # The generated half: one plain backward, added to the clipped real sum.
        fake_losses = F.binary_cross_entropy_with_logits(
            self.module(fake, fake_labels), torch.zeros(self.expected, device=self.device), reduction="none")
        fake_losses.sum().backward(inputs=list(self.module.parameters()))
        self.optimizer.step()  # + N(0, (sigma C)^2), / 2B, booked on the ledger
        self.done += 1
        return float(torch.cat([real_losses, fake_losses.detach()]).mean())
