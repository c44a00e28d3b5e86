"""Networks of the image model: the random Fourier features of DP-MERF, the conditional
generator, and the DP-SGD-safe conditional discriminator with per-sample gradients."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

__all__ = ["ConvFeatures", "ImageDiscriminator", "ImageGenerator", "SampleClassifier", "embedding",
           "fourier_features", "fourier_projection", "per_sample_gradients"]


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
    """Random Fourier features [cos, sin] / sqrt(features/2): every row has L2 norm exactly 1.

    Always in float32, even inside a bfloat16 autocast (a training generator's images): a
    rounded projection would move each phase by up to ~1% of its size."""
    with torch.autocast(device_type=flat.device.type, enabled=False):
        z = flat.float() @ projection
    return torch.cat([torch.cos(z), torch.sin(z)], dim=1) / math.sqrt(projection.shape[1])


class ConvFeatures(nn.Module):
    """Fixed random convolutional features of an image, of L2 norm at most 1 (exactly 1 unless all zero).

    One layer of ``filters`` random 5x5 filters (zero mean, unit norm, drawn from the seed alone,
    never from the data; never trained), stride 2, ReLU, 2x2 average pooling, then the whole map
    divided by its norm: a linear kernel on these features compares where in the image which
    local stroke patterns are (a data-free stand-in for DP-MEPF's perceptual features).
    """

    def __init__(self, *, channels: int, filters: int, seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng([seed, 11])
        w = rng.standard_normal((filters, channels, 5, 5))
        w -= w.mean(axis=(1, 2, 3), keepdims=True)
        w /= np.linalg.norm(w.reshape(filters, -1), axis=1)[:, None, None, None]
        self.register_buffer("weight", torch.as_tensor(w, dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(F.relu(F.conv2d(images, self.weight, stride=2, padding=2)), 2, ceil_mode=True).flatten(1)
        return h / torch.linalg.vector_norm(h, dim=1, keepdim=True).clamp(min=1e-12)


def embedding(images: torch.Tensor, projection: torch.Tensor, conv: ConvFeatures | None = None,
              conv_weight: float = 0.0) -> torch.Tensor:
    """The mean-embedding features of images (N x C x H x W): random Fourier features of the pixels,
    and with ``conv`` the random convolutional features beside them, the two parts weighted
    sqrt(1 - w) and sqrt(w) so that every row still has L2 norm at most 1 (sensitivity 1)."""
    phi = fourier_features(images.flatten(1), projection)
    if conv is None or conv_weight <= 0:
        return phi
    return torch.cat([math.sqrt(1.0 - conv_weight) * phi, math.sqrt(conv_weight) * conv(images).float()], dim=1)


# --------------------------------------------------------------------------- networks


class ImageGenerator(nn.Module):
    """(noise, class) -> image in [0, 1], channels first.

    A conditional DCGAN-style stack: a linear layer to a (4·width) x h0 x w0 map with
    h0 = ceil(H/4), two stride-2 transposed convolutions, a sigmoid, then a crop to
    H x W (so any size works: 8x8, 28x28, 32x32 exactly; odd sizes are cropped).
    GroupNorm keeps one image independent of the others in its batch.
    """

    def __init__(self, *, classes: int, height: int, width: int, channels: int,
                 noise_dim: int = 32, base: int = 16, upsample: str = "transposed") -> None:
        super().__init__()
        if upsample not in ("transposed", "nearest"):
            raise ValueError(f"upsample must be 'transposed' or 'nearest', got {upsample!r}")
        self.classes, self.height, self.width, self.channels = classes, height, width, channels
        self.noise_dim, self.base, self.upsample = noise_dim, base, upsample
        self.h0, self.w0 = math.ceil(height / 4), math.ceil(width / 4)
        self.embed = nn.Embedding(classes, noise_dim)
        self.project = nn.Linear(2 * noise_dim, 4 * base * self.h0 * self.w0)

        def up(cin: int, cout: int) -> list[nn.Module]:  # x2 in each direction
            if upsample == "nearest":  # no checkerboard: every output pixel sees the same taps
                return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1)]
            return [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)]

        self.net = nn.Sequential(
            nn.GroupNorm(8, 4 * base), nn.ReLU(),
            *up(4 * base, 2 * base),
            nn.GroupNorm(8, 2 * base), nn.ReLU(),
            *up(2 * base, base),
            nn.GroupNorm(8, base), nn.ReLU(),
            nn.Conv2d(base, channels, 3, padding=1),
        )

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.project(torch.cat([noise, self.embed(labels)], dim=1))
        x = self.net(x.view(-1, 4 * self.base, self.h0, self.w0))
        return torch.sigmoid(x[:, :, :self.height, :self.width])

    def config(self) -> dict[str, int]:
        return {"classes": self.classes, "height": self.height, "width": self.width, "channels": self.channels,
                "noise_dim": self.noise_dim, "base": self.base,
                **({"upsample": self.upsample} if self.upsample != "transposed" else {})}


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

    def clipped_backward(self, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, *,
                         max_grad_norm: float) -> torch.Tensor:
        """Set ``p.grad`` to ``sum_i c_i g_i``: each image's exact gradient of its own binary
        cross-entropy, clipped to norm ``max_grad_norm`` (``c_i = min(1, C/|g_i|)``); zero for
        no image. Returns the losses.

        Book-keeping (as :meth:`synthdata.tabular.networks.Discriminator.clipped_backward`):
        one forward, one backward to the layer outputs only (no weight gradient, nothing
        through the first convolution's input), then each image's weight gradients from its
        own activations and output gradients — an unfolded input against the output gradient
        for a convolution, the normalised input against it for a GroupNorm — so a DP step
        costs about one plain step plus those per-image products. Exact: equal to a
        vectorised ``torch.func`` per-sample gradient (``tests/test_images_dp.py``).
        """
        conv1, norm1, act1, conv2, norm2, act2, pool, flatten = self.features
        if not (isinstance(conv1, nn.Conv2d) and isinstance(norm1, nn.GroupNorm) and isinstance(conv2, nn.Conv2d)
                and isinstance(norm2, nn.GroupNorm) and isinstance(pool, nn.AdaptiveAvgPool2d)):
            raise TypeError("clipped_backward knows this discriminator's layers only")
        if images.shape[0] == 0:
            for p in self.parameters():
                p.grad = torch.zeros_like(p)
            return torch.zeros(0, device=images.device)
        x = images.detach()
        s1 = conv1(x)
        hat1 = F.group_norm(s1, norm1.num_groups, eps=norm1.eps)
        n1 = hat1 * norm1.weight[:, None, None] + norm1.bias[:, None, None]
        h1 = F.leaky_relu(n1, act1.negative_slope)
        s2 = conv2(h1)
        hat2 = F.group_norm(s2, norm2.num_groups, eps=norm2.eps)
        n2 = hat2 * norm2.weight[:, None, None] + norm2.bias[:, None, None]
        h = F.leaky_relu(n2, act2.negative_slope).mean((2, 3))
        e = self.embed(labels)
        logits = self.out(h).squeeze(1) + (e * h).sum(1)
        losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        g_s1, g_n1, g_s2, g_n2, g_logit = torch.autograd.grad(losses.sum(), [s1, n1, s2, n2, logits])
        h, e, hat1, hat2, h1 = h.detach(), e.detach(), hat1.detach(), hat2.detach(), h1.detach()
        b = x.shape[0]

        def conv_weight(layer: nn.Conv2d, inputs: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
            unfolded = F.unfold(inputs, layer.kernel_size, dilation=layer.dilation, padding=layer.padding,
                                stride=layer.stride)  # b x (C k k) x L
            return torch.bmm(grad.flatten(2), unfolded.transpose(1, 2)).view(b, *layer.weight.shape)

        samples = {  # each image's gradient of each parameter (the embedding's: its own row only)
            conv1.weight: conv_weight(conv1, x, g_s1), conv1.bias: g_s1.sum((2, 3)),
            norm1.weight: (g_n1 * hat1).sum((2, 3)), norm1.bias: g_n1.sum((2, 3)),
            conv2.weight: conv_weight(conv2, h1, g_s2), conv2.bias: g_s2.sum((2, 3)),
            norm2.weight: (g_n2 * hat2).sum((2, 3)), norm2.bias: g_n2.sum((2, 3)),
            self.out.weight: (g_logit[:, None] * h)[:, None, :], self.out.bias: g_logit[:, None],
        }
        embed_rows = g_logit[:, None] * h  # image i's gradient of embed.weight: this, in row labels[i]
        if len(samples) + 1 != len(list(self.parameters())):
            raise TypeError("clipped_backward does not cover every parameter of this discriminator")
        norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1)
                             for g in [embed_rows, *samples.values()]], dim=1)
        coef = (max_grad_norm / (torch.linalg.vector_norm(norms, dim=1) + 1e-6)).clamp(max=1.0)
        for p, g in samples.items():
            p.grad = torch.einsum("i,i...->...", coef, g)
        self.embed.weight.grad = torch.zeros_like(self.embed.weight).index_add_(0, labels, coef[:, None] * embed_rows)
        return losses.detach()


class SampleClassifier(nn.Sequential):
    """A small convolutional classifier of any image size: two 3x3 convolutions, max pooling to at
    most 7 x 7, two linear layers. The consistency filter of sampling trains it on the generator's
    own images (never on real ones)."""

    def __init__(self, *, classes: int, channels: int, height: int, width: int) -> None:
        first = nn.MaxPool2d(2) if min(height, width) >= 8 else nn.Identity()
        h, w = (height // 2, width // 2) if min(height, width) >= 8 else (height, width)
        h, w = min(h, 7), min(w, 7)
        super().__init__(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), first,
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d((h, w)), nn.Flatten(),
            nn.Linear(32 * h * w, 64), nn.ReLU(), nn.Linear(64, classes),
        )


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

