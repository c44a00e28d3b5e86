"""Networks of the image model: the random Fourier features of DP-MERF, the conditional
generator, and the DP-SGD-safe conditional discriminator with per-sample gradients."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

__all__ = ["ImageDiscriminator", "ImageGenerator", "fourier_features", "fourier_projection", "per_sample_gradients"]


def fourier_projection(pixels: int, features: int, length_scales: tuple[float, ...], seed: int) -> torch.Tensor:
    """The random frequencies of :func:`fourier_features` (pixels x features/2), from the seed alone.

    Length scales are relative to sqrt(pixels) (the distance between two images in [0,1]
    grows like that); the frequencies are split evenly between the scales, a sum of
    Gaussian kernels of several widths.
    """
    rng = np.random.default_rng([seed, 7])
    half = features // 2
    scales = np.resize(np.asarray(length_scales, dtype=float), half) * math.sqrt(pixels)
    return torch.as_tensor(rng.standard_normal((pixels, half)) / scales, dtype=torch.float32)


def fourier_features(flat: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """Random Fourier features [cos, sin] / sqrt(features/2): every row has L2 norm exactly 1."""
    z = flat @ projection
    return torch.cat([torch.cos(z), torch.sin(z)], dim=1) / math.sqrt(projection.shape[1])


# --------------------------------------------------------------------------- networks


class ImageGenerator(nn.Module):
    """(noise, class) -> image in [0, 1], channels first.

    A conditional DCGAN-style stack: a linear layer to a (4·width) x h0 x w0 map with
    h0 = ceil(H/4), two stride-2 transposed convolutions, a sigmoid, then a crop to
    H x W (so any size works: 8x8, 28x28, 32x32 exactly; odd sizes are cropped).
    GroupNorm keeps one image independent of the others in its batch.
    """

    def __init__(self, *, classes: int, height: int, width: int, channels: int,
                 noise_dim: int = 32, base: int = 16) -> None:
        super().__init__()
        self.classes, self.height, self.width, self.channels = classes, height, width, channels
        self.noise_dim, self.base = noise_dim, base
        self.h0, self.w0 = math.ceil(height / 4), math.ceil(width / 4)
        self.embed = nn.Embedding(classes, noise_dim)
        self.project = nn.Linear(2 * noise_dim, 4 * base * self.h0 * self.w0)
        self.net = nn.Sequential(
            nn.GroupNorm(8, 4 * base), nn.ReLU(),
            nn.ConvTranspose2d(4 * base, 2 * base, 4, stride=2, padding=1),
            nn.GroupNorm(8, 2 * base), nn.ReLU(),
            nn.ConvTranspose2d(2 * base, base, 4, stride=2, padding=1),
            nn.GroupNorm(8, base), nn.ReLU(),
            nn.Conv2d(base, channels, 3, padding=1),
        )

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.project(torch.cat([noise, self.embed(labels)], dim=1))
        x = self.net(x.view(-1, 4 * self.base, self.h0, self.w0))
        return torch.sigmoid(x[:, :, :self.height, :self.width])

    def config(self) -> dict[str, int]:
        return {"classes": self.classes, "height": self.height, "width": self.width, "channels": self.channels,
                "noise_dim": self.noise_dim, "base": self.base}


class ImageDiscriminator(nn.Module):
    """Conditional conv discriminator (projection style): DP-SGD safe.

    GroupNorm, not BatchNorm (BatchNorm mixes samples, so per-sample gradients and their
    clipping would not bound one image's influence); no in-place activations.
    """

    def __init__(self, *, classes: int, channels: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.GroupNorm(4, width), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GroupNorm(8, 2 * width), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.out = nn.Linear(2 * width, 1)
        self.embed = nn.Embedding(classes, 2 * width)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(images)
        return self.out(h).squeeze(1) + (self.embed(labels) * h).sum(1)


def per_sample_gradients(module: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                         targets: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Each sample's gradient of its own loss (vectorised ``torch.func``), and the losses."""
    params = {name: p.detach() for name, p in module.named_parameters()}

    def loss_of(p, image, label, target):
        logit = functional_call(module, p, (image[None], label[None]))
        return F.binary_cross_entropy_with_logits(logit, target[None])

    grads = vmap(grad(loss_of), in_dims=(None, 0, 0, 0))(params, images, labels, targets)
    with torch.no_grad():
        losses = F.binary_cross_entropy_with_logits(module(images, labels), targets, reduction="none")
    return grads, losses

