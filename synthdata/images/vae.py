"""ImageVAE: a differentially private, class-conditional variational autoencoder for images.

    model = ImageVAE(epsilon=10.0, seed=0).fit(images, labels)
    synthetic, synthetic_labels = model.sample(2000)
    model.save("model_dir"); ImageVAE.load("model_dir")

``fit`` reads the real images through two private mechanisms, planned together up front
(:meth:`~synthdata.privacy.PrivacyLedger.plan`) after a DP count of the images, each booked
on :attr:`ImageVAE.ledger_` as its own line — the same count and label handling as
:class:`~synthdata.images.estimator.ImageGAN`:

1. **image count** — discrete Laplace, pure ε, first: batches and steps are planned from
   it, never from the exact number of images.
2. **label frequencies** — :func:`~synthdata.images.releases.release_labels` (a Gaussian
   sparse histogram, or noisy counts over a declared public domain). Images of classes
   not released take part in nothing later.
3. **vae** — encoder and decoder, both conditioned on the class, trained together with
   DP-SGD through Opacus: Poisson-sampled batches from the ledger's CSPRNG, per-sample
   gradients from Opacus' :class:`~opacus.GradSampleModule` (convolutions and linear
   layers, GroupNorm: nothing mixes images), clipping and noise by Opacus' DP optimizer,
   every step booked, exactly as many steps as planned.

Why conditional, and why small. DP-SGD's noise grows with the number of parameters
and shrinks with the batch; a plain fully connected VAE spends its few noisy steps
learning what class an image is and collapses to blurred averages of all digits. Here
the class is an input of both networks (its frequency is already released), so the
latent only has to carry the style within a class; the networks are small
convolutional stacks, batches are large (a high sampling rate, few steps, less noise
per step), and the latent is small (``latent_dim``). Each layer's part of a per-image
gradient is clipped on its own first (``layer_clipping``), so that no one layer takes the
whole clipping norm while the same noise lands on every weight. Samples are the decoder's pixel
means for prior draws, at ``temperature`` (a scale of the prior's standard deviation;
post-processing).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..checkpoint import Checkpointer
from ..errors import ModelError, PrivacyError
from ..models.base import fresh_seed
from ..privacy import (
    budget_split,
    DEFAULT_DELTA,
    IMAGE,
    DPSGDRequest,
    GaussianRequest,
    NoiseSource,
    PrivacyLedger,
    check_privacy_parameters,
)
from ..privacy.dpsgd import make_dp_optimizer
from ..runtime import resolve_device
from .base import (
    THRESHOLD_DELTA_SHARE,
    ImageSynthesizer,
    WeightAverage,
    check_average,
    check_images,
    input_fingerprint,
    load_checkpoint,
    refuse_used_checkpoint,
    write_first_checkpoint,
)
from .releases import check_domain, release_labels

__all__ = ["ImageDecoder", "ImageVAE", "ImageVAENetwork"]

MODEL_FORMAT = "synthdata-image-vae/1"
#: Ledger line of the VAE's DP-SGD steps.
VAE_STEP = "vae"
#: Relative shares of epsilon (normalised to sum 1), as ImageGAN's labels against the rest:
#: label counts need little, but a thresholded histogram of a small image set needs some.
#: The class means ("templates") are one Gaussian release against DP-SGD's many steps, so
#: under RDP composition a larger share sharpens them a lot for little: on 4,000 images at
#: epsilon 10, templates 0.1 -> 0.5 cuts their noise multiplier from 4.2 to 1.1 and raises
#: DP-SGD's from 2.05 to 2.31 (benchmarks/README.md).
DEFAULT_BUDGET_SPLIT = {"labels": 0.1, "templates": 0.5, "vae": 0.9, "audit": 0.0}
_LOGVAR_RANGE = (-8.0, 4.0)


# --------------------------------------------------------------------------- networks


def _groups(channels: int) -> int:
    return max(g for g in (1, 2, 4, 8) if channels % g == 0)


class ImageDecoder(nn.Module):
    """(latent, class) -> pixel logits, channels first, H x W.

    A per-class template (a linear map of the class's one-hot to pixel logits: the class's
    mean image, learned fast because every image of the class pulls it the same way)
    plus a style term of the latent and the class: a small MLP (``kind="mlp"``) or an
    upsampling conv stack cropped to H x W (``kind="conv"``). The style term starts at
    zero, so training starts from the templates.
    """

    def __init__(self, *, classes: int, height: int, width: int, channels: int, latent_dim: int, base: int,
                 kind: str = "mlp", hidden: int = 128, project: int | None = None) -> None:
        super().__init__()
        if kind not in ("mlp", "conv"):
            raise ModelError(f"decoder must be 'mlp' or 'conv', got {kind!r}")
        project = 2 * base if project is None else int(project)
        if project < 1:
            raise ModelError(f"project must be a whole number >= 1 (channels of the conv decoder's grid), got {project!r}")
        self.classes, self.height, self.width, self.channels = classes, height, width, channels
        self.latent_dim, self.base, self.kind, self.hidden, self.grid = latent_dim, base, kind, hidden, project
        pixels = channels * height * width
        self.template = nn.Linear(classes, pixels)
        if kind == "mlp":
            self.style = nn.Sequential(nn.Linear(latent_dim + classes, hidden), nn.ReLU(), nn.Linear(hidden, pixels))
            last = self.style[-1]
        else:
            self.h0, self.w0 = math.ceil(height / 4), math.ceil(width / 4)
            self.project = nn.Linear(latent_dim + classes, project * self.h0 * self.w0)
            self.style = nn.Sequential(
                nn.ReLU(),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(project, base, 3, padding=1), nn.GroupNorm(_groups(base), base), nn.ReLU(),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(base, channels, 3, padding=1),
            )
            last = self.style[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        shape = (-1, self.channels, self.height, self.width)
        code = torch.cat([z, onehot], dim=1)
        if self.kind == "mlp":
            style = self.style(code).view(shape)
        else:
            style = self.style(self.project(code).view(-1, self.grid, self.h0, self.w0))
            style = style[:, :, :self.height, :self.width]
        return self.template(onehot).view(shape) + style

    def images(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Pixel means in [0, 1] for latents ``z`` and class indices ``labels``."""
        return torch.sigmoid(self(z, F.one_hot(labels, self.classes).to(z.dtype)))

    def config(self) -> dict[str, Any]:
        return {"classes": self.classes, "height": self.height, "width": self.width, "channels": self.channels,
                "latent_dim": self.latent_dim, "base": self.base, "kind": self.kind, "hidden": self.hidden,
                "project": self.grid}


class ImageVAENetwork(nn.Module):
    """Conditional encoder and decoder: the module DP-SGD trains. ``forward(x, onehot, eps)``."""

    def __init__(self, *, classes: int, height: int, width: int, channels: int, latent_dim: int, base: int,
                 decoder: str = "mlp", hidden: int = 128, reduce: int = 0, project: int | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(channels, base, 4, stride=2, padding=1), nn.GroupNorm(_groups(base), base), nn.ReLU(),
            nn.Conv2d(base, 2 * base, 4, stride=2, padding=1), nn.GroupNorm(_groups(2 * base), 2 * base), nn.ReLU(),
        ]
        if reduce:  # a 1x1 convolution to fewer channels: a smaller posterior layer
            layers += [nn.Conv2d(2 * base, int(reduce), 1), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels, height, width)).shape[1]
        self.posterior = nn.Linear(flat + classes, 2 * latent_dim)
        self.decoder = ImageDecoder(classes=classes, height=height, width=width, channels=channels,
                                    latent_dim=latent_dim, base=base, kind=decoder, hidden=hidden, project=project)

    def forward(self, x: torch.Tensor, onehot: torch.Tensor, eps: torch.Tensor):
        mu, logvar = self.posterior(torch.cat([self.features(x), onehot], dim=1)).chunk(2, dim=1)
        logvar = logvar.clamp(*_LOGVAR_RANGE)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decoder(z, onehot), mu, logvar


def release_class_means(real: torch.Tensor, labels: torch.Tensor, counts: np.ndarray, *, norm: float,
                        ledger: PrivacyLedger) -> torch.Tensor:
    """DP mean image per class (the ledger's planned ``"templates"`` noise), over the released counts.

    Every image is scaled down to L2 norm at most ``norm * sqrt(pixels)`` (public), so one
    image moves one class's sum by a vector of at most that norm: the L2 sensitivity of the
    whole (classes x pixels) release. Returns classes x C x H x W means, clamped to [0, 1].
    """
    pixels = int(np.prod(real.shape[1:]))
    bound = float(norm) * math.sqrt(pixels)
    if not (math.isfinite(bound) and bound > 0):
        raise ModelError(f"template_norm must be a number > 0, got {norm!r}")
    sums = torch.zeros(len(counts), pixels, dtype=torch.float64, device=real.device)
    for start in range(0, real.shape[0], 2048):
        flat = real[start:start + 2048].flatten(1).double()
        scale = (bound / flat.norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
        sums.index_add_(0, labels[start:start + 2048], flat * scale[:, None])
    noisy = ledger.noisy("templates", sums.cpu().numpy(), sensitivity=bound,
                         mechanism="Gaussian mechanism on per-class sums of norm-bounded images",
                         parameters={"classes": int(len(counts)), "pixels": pixels, "norm_bound": bound})
    means = noisy / np.maximum(np.asarray(counts, dtype=float), 1.0)[:, None]
    return torch.as_tensor(np.clip(means, 0.0, 1.0), dtype=torch.float32,
                           device=real.device).view(len(counts), *real.shape[1:])


def per_image_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                   kl_weight: float) -> torch.Tensor:
    """Bernoulli reconstruction (pixels in [0, 1]) summed over pixels, plus the weighted KL, per image."""
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1)
    return reconstruction + kl_weight * kl


# --------------------------------------------------------------------------- the model


class ImageVAE(ImageSynthesizer):
    """Differentially private class-conditional VAE for images (uint8, N x H x W or N x H x W x C).

    Parameters (keyword-only, stored unchanged; all work happens in :meth:`fit`):
        epsilon: the privacy budget; never exceeded.
        delta: defaults to 1e-6 (fixed in advance); must be well below 1/n.
        epochs: passes of DP-SGD over the images (in expectation); with ``batch_size`` they
            fix the number of steps up front, so the noise can be planned.
        batch_size: expected size of the Poisson-sampled batches.
        latent_dim: dimensions of the Gaussian latent (the style within a class).
        base: channels of the encoder's first convolution (and of the conv decoder).
        decoder: "conv" (the per-class template plus an upsampling conv stack of the latent:
            fewer weights for DP-SGD's noise, and local strokes; the default) or "mlp" (the
            template plus an MLP of the latent: cheaper per step; screened on MNIST at
            epsilon 10, 0.78 against 0.80 for conv, benchmarks/README.md).
        hidden: width of the MLP decoder's hidden layer.
        encoder_channels: channels of a 1x1 convolution between the encoder's convolutions and
            its posterior layer (0: none, the posterior reads the 2*base channels directly).
        project_channels: channels of the conv decoder's first grid (the linear projection of
            latent and class; None: 2*base).
        kl_weight: weight of the KL term (1 is the evidence lower bound).
        kl_warmup: share of the steps over which the KL weight rises from 0 (a public schedule
            against posterior collapse in the first noisy steps).
        template_norm: each image is scaled down to at most this L2 norm, relative to
            sqrt(pixels) (pixels are in [0, 1]), before the DP class means that start the
            decoder's templates; the norm is those means' sensitivity.
        train_templates: whether DP-SGD trains the templates further (False: they stay the DP
            class means, and DP-SGD's clipped gradient is spent on the rest).
        layer_clipping: whether each layer's part of a per-image gradient is first clipped to
            ``max_grad_norm / sqrt(layers)`` (then the whole to ``max_grad_norm`` as always:
            the same sensitivity, the same noise). Without it one layer can take nearly all of
            the clipped norm (the style term's output layer, 145 weights: 95% of it at the start
            on MNIST) while the noise is the same on every weight, so the other layers' steps
            are mostly noise. On by default: on MNIST at epsilon 10 the benchmark's CNN scored
            0.815, 0.825, 0.811 and 0.811 with it against 0.809 +- 0.011 over seven runs
            without (benchmarks/README.md): a modest gain.
        average: decay of an exponential moving average of the decoder's weights over the
            DP-SGD steps, which is the decoder sampled from (0: the last step's weights). The
            average is a function of the noisy steps: post-processing, free.
        temperature: scale of the prior's standard deviation when sampling (post-processing).
            Above 1 by default: the noisy style term is timid, and wider draws give more varied
            digits. On MNIST (4,000 digits, epsilon 10, two fits) a quick CNN scored 0.789 on
            average at 1.0 and 0.81 at 1.3-1.6; the benchmark's CNN 0.807 at 1.0 and 0.811
            at 1.5: a small gain, within run-to-run noise (benchmarks/README.md).
        max_grad_norm: per-sample clipping norm.
        learning_rate: of Adam on the noisy gradients.
        budget_split: relative shares of epsilon for labels, templates (0: none), vae and audit.
        classes: the public label domain, if known (e.g. range(10) for digits): every declared
            class is released and no threshold applies. None: the observed labels, thresholded.
        seed: makes what no privacy rests on reproducible (weights, reparameterisation, sampling).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        insecure_noise_seed: FOR TESTS ONLY: makes the privacy noise reproducible.
    """

    model_format = MODEL_FORMAT
    model_name = "image-vae"

    def __init__(self, *, epsilon: float, delta: float | None = None, epochs: float = 40.0,
                 batch_size: int = 1000, latent_dim: int = 8, base: int = 16, decoder: str = "conv",
                 hidden: int = 128, encoder_channels: int = 0, project_channels: int | None = None,
                 kl_weight: float = 1.0, kl_warmup: float = 0.5,
                 template_norm: float = 0.4, train_templates: bool = True, layer_clipping: bool = True,
                 average: float = 0.0,
                 temperature: float = 1.5, max_grad_norm: float = 1.0, learning_rate: float = 3e-3,
                 budget_split: dict[str, float] | None = None, classes: Any = None, seed: int | None = None,
                 device: str = "auto", insecure_noise_seed: int | None = None) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.epochs = epochs
        self.batch_size = batch_size
        self.latent_dim = latent_dim
        self.base = base
        self.decoder = decoder
        self.hidden = hidden
        self.encoder_channels = encoder_channels
        self.project_channels = project_channels
        self.kl_weight = kl_weight
        self.kl_warmup = kl_warmup
        self.template_norm = template_norm
        self.train_templates = train_templates
        self.layer_clipping = layer_clipping
        self.average = average
        self.temperature = temperature
        self.max_grad_norm = max_grad_norm
        self.learning_rate = learning_rate
        self.budget_split = budget_split
        self.classes = classes
        self.seed = seed
        self.device = device
        self.insecure_noise_seed = insecure_noise_seed

    # ------------------------------------------------------------------ fit

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None, *,
            checkpoint_dir: str | os.PathLike | None = None, resume: bool = False, checkpoint_every: int = 20,
            progress: Callable[[dict], None] | None = None) -> ImageVAE:
        """Learn from ``images`` (uint8) and optional ``labels``; ``progress`` gets a dict every few steps.

        With ``checkpoint_dir``, the fit saves its state there every ``checkpoint_every`` DP-SGD
        steps (the ledger in the same file as the training state); ``resume=True`` continues a
        killed fit from it: the private releases (count, labels, templates) are reused, never
        repeated, and the DP-SGD count continues — as :meth:`ImageGAN.fit
        <synthdata.images.estimator.ImageGAN.fit>`.
        """
        pixels, label_array = check_images(images, labels)
        domain = check_domain(self.classes, label_array)
        n = pixels.shape[0]
        delta = DEFAULT_DELTA if self.delta is None else self.delta
        check_privacy_parameters(epsilon=self.epsilon, delta=delta)
        split = self._split()
        device = resolve_device(self.device)
        seed = self.seed if self.seed is not None else fresh_seed() % 2**31
        torch.manual_seed(seed)
        threshold_delta = delta * THRESHOLD_DELTA_SHARE if label_array is not None and domain is None else 0.0
        noise = NoiseSource(seed=self.insecure_noise_seed)
        checkpoint = Checkpointer(checkpoint_dir, every=checkpoint_every) if checkpoint_dir is not None else None
        if checkpoint is not None and not (isinstance(checkpoint_every, int) and checkpoint_every >= 1):
            raise ModelError(f"checkpoint_every must be a whole number >= 1, got {checkpoint_every!r}")
        params = json.loads(json.dumps(self._saved_params()))
        fingerprint = input_fingerprint(images, labels)

        if resume:
            resumed = load_checkpoint(
                checkpoint, fingerprint, params, noise, labels=label_array, n=n,
                replan=lambda ledger, setup: _plan(ledger, split, label_array is not None, setup["sample_rate"],
                                                   setup["steps"]))
            setup, state, ledger = resumed.setup, resumed.state, resumed.ledger
            count, batch, sample_rate, steps = setup["count"], setup["batch"], setup["sample_rate"], setup["steps"]
            plan_dict = setup["noise_plan"]
            classes, counts, index = resumed.classes, resumed.counts, resumed.index
        else:
            refuse_used_checkpoint(checkpoint)
            state = None
            ledger = PrivacyLedger(epsilon=self.epsilon, delta=delta, threshold_delta=threshold_delta,
                                   unit=IMAGE, noise=noise)
            # (0) how many images: a DP count, from which batches and steps are planned.
            count = self._dp_image_count(ledger, n, delta)
            batch = min(int(self.batch_size), max(1, count // 2))
            sample_rate = batch / count
            steps = int(math.ceil(self.epochs * count / batch))
            plan_dict = _plan(ledger, split, label_array is not None, sample_rate, steps).to_dict()
            # (1) label frequencies: which classes exist, how often.
            classes, index, counts = release_labels(label_array, domain, count, ledger=ledger,
                                                    threshold_delta=threshold_delta, n=n)
            setup = {"input": fingerprint, "params": params, "count": count, "batch": batch,
                     "sample_rate": sample_rate, "steps": steps, "noise_plan": plan_dict,
                     "classes": classes.tolist(), "classes_dtype": classes.dtype.str, "counts": counts.tolist()}
        keep = index >= 0  # images of classes not released take part in nothing later
        real = torch.as_tensor(pixels[keep], dtype=torch.float32, device=device)
        real_labels = torch.as_tensor(index[keep], dtype=torch.long, device=device)

        # (2) the conditional VAE, DP-SGD.
        _, channels, height, width = pixels.shape
        network = ImageVAENetwork(classes=len(classes), height=height, width=width, channels=channels,
                                  latent_dim=int(self.latent_dim), base=int(self.base), decoder=self.decoder,
                                  hidden=int(self.hidden), reduce=self._channels("encoder_channels", 0),
                                  project=self._channels("project_channels", 2 * int(self.base))).to(device)
        if state is None and split["templates"] > 0:  # (2a) the decoder starts from DP class means
            means = release_class_means(real, real_labels, counts, norm=self.template_norm, ledger=ledger)
            with torch.no_grad():
                logits = torch.logit(means.clamp(0.02, 0.98))
                network.decoder.template.weight.copy_(logits.flatten(1).t())
                network.decoder.template.bias.zero_()
        training = _Training(self, network, ledger, plan_dict["noise_multiplier"], sample_rate, batch, steps,
                             device)
        if state is not None:
            training.restore(state)
        elif checkpoint is not None:  # the releases are saved before any training step
            write_first_checkpoint(checkpoint, training.state(0), setup)
        training.run(real, real_labels, progress, checkpoint)
        if ledger.epsilon_spent > self.epsilon:  # the plan makes this impossible; never release
            raise PrivacyError(f"internal error: epsilon spent {ledger.epsilon_spent} exceeds {self.epsilon}")

        self.generator_ = training.final_decoder().to("cpu").eval()
        self.classes_ = classes
        self.class_weights_ = counts / counts.sum()
        self.has_labels_ = label_array is not None
        self.image_shape_ = tuple(int(s) for s in images.shape[1:])
        self.n_images_ = float(count)
        self.ledger_ = ledger
        self.epsilon_spent_ = ledger.epsilon_spent
        self.delta_ = delta
        self.seed_ = seed
        self.noise_plan_ = plan_dict
        self.fitted_ = True
        return self

    def _channels(self, name: str, default: int) -> int:
        value = getattr(self, name)
        if value is None:
            return default
        if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0):
            raise ModelError(f"{name} must be a whole number >= 0 (or None), got {value!r}")
        return int(value) or default

    def _split(self) -> dict[str, float]:
        split = budget_split(self.budget_split, DEFAULT_BUDGET_SPLIT, positive=("labels", "vae"))
        if not (isinstance(self.epochs, (int, float)) and self.epochs > 0):
            raise PrivacyError(f"epochs must be a number > 0 (DP-SGD's passes over the images), got {self.epochs!r}")
        if not (isinstance(self.batch_size, (int, np.integer)) and self.batch_size >= 1):
            raise ModelError(f"batch_size must be a whole number >= 1, got {self.batch_size!r}")
        check_average(self.average, "decoder")
        self._channels("encoder_channels", 0)  # checked before any DP spend, used when the network is built
        self._channels("project_channels", 1)
        return split

    # ------------------------------------------------------------------ sample

    def _pixels(self, classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(len(classes), self.generator_.latent_dim, generator=generator) * float(self.temperature)
        return self.generator_.images(z, classes)

    # ------------------------------------------------------------------ persistence

    def _saved_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {**self._image_state(), "decoder": self.generator_.config()}, self.generator_.state_dict()

    def _restore_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        config = state["decoder"]
        decoder = ImageDecoder(**{k: (str(v) if k == "kind" else int(v)) for k, v in config.items()})
        decoder.load_state_dict(tensors)
        decoder.eval()
        self.generator_ = decoder
        self._restore_image_state(state)


# --------------------------------------------------------------------------- training state


def _layers(network: nn.Module) -> list[list[nn.Parameter]]:
    """The trained parameters by layer (a convolution or linear map, with the GroupNorm after it)."""
    layers: list[list[nn.Parameter]] = []
    for module in network.modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not params:
            continue
        if isinstance(module, nn.GroupNorm) and layers:
            layers[-1].extend(params)
        else:
            layers.append(params)
    return layers


def _clip_layers(layers: list[list[nn.Parameter]], bound: float) -> None:
    """Scale each layer's per-sample gradients (``grad_sample``) down to L2 norm at most ``bound``.

    A per-sample map only: the DP optimizer still clips the whole per-sample gradient to
    max_grad_norm afterwards, so sensitivity and noise are unchanged whatever this does.
    """
    with torch.no_grad():
        for params in layers:
            norms = torch.stack([p.grad_sample.flatten(1).norm(dim=1) for p in params]).norm(dim=0)
            scale = (bound / norms.clamp_min(1e-12)).clamp(max=1.0)
            for p in params:
                p.grad_sample.mul_(scale.view(-1, *([1] * (p.grad_sample.dim() - 1))))


def _plan(ledger: PrivacyLedger, split: dict[str, float], labelled: bool, sample_rate: float, steps: int):
    """The RDP plan of the Gaussian releases and DP-SGD (step names = ledger lines)."""
    gaussians = {name: GaussianRequest(sensitivity=1.0, share=split[name])
                 for name in ("labels", "templates", "audit") if split[name] > 0 and (labelled or name != "labels")}
    return ledger.plan(gaussians=gaussians, dpsgd=DPSGDRequest(sample_rate=sample_rate, steps=steps,
                                                               share=split["vae"]))


class _Training:
    """DP-SGD of the encoder and decoder: the optimiser, the schedule, the decoder's weight average,
    and what a checkpoint holds (the ledger in the same file, never a seed)."""

    def __init__(self, model: ImageVAE, network: ImageVAENetwork, ledger: PrivacyLedger, noise_multiplier: float,
                 sample_rate: float, batch: int, steps: int, device: torch.device) -> None:
        from opacus import GradSampleModule

        self.model, self.network, self.ledger, self.device = model, network, ledger, device
        self.sample_rate, self.steps, self.start = sample_rate, steps, 0
        if not model.train_templates:
            network.decoder.template.requires_grad_(False)
        self.trained = [p for p in network.parameters() if p.requires_grad]
        self.layers = _layers(network) if model.layer_clipping else None
        self.layer_bound = float(model.max_grad_norm) / math.sqrt(len(self.layers)) if self.layers else 0.0
        clipping = "per-sample (Opacus GradSampleModule)"
        if self.layers is not None:
            clipping = (f"per-sample: each of {len(self.layers)} layers to max_grad_norm/sqrt({len(self.layers)}), "
                        "then the whole to max_grad_norm (Opacus GradSampleModule)")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*full_backward_hook.*")
            self.module = GradSampleModule(network, loss_reduction="mean")
        self.optimizer = make_dp_optimizer(
            torch.optim.Adam(self.trained, lr=model.learning_rate), ledger=ledger, step=VAE_STEP,
            noise_multiplier=noise_multiplier, max_grad_norm=model.max_grad_norm, sample_rate=sample_rate,
            expected_batch_size=batch,
            parameters={"batch_size_expected": batch, "clipping": clipping,
                        "network": "class-conditional VAE encoder and decoder", "kl_weight": model.kl_weight,
                        "kl_warmup": model.kl_warmup})
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer.original_optimizer,
                                                                   T_max=max(steps, 1))
        self.average = WeightAverage(network.decoder, model.average) if model.average > 0 else None

    def run(self, real: torch.Tensor, real_labels: torch.Tensor, progress: Callable[[dict], None] | None,
            checkpoint: Checkpointer | None) -> None:
        model, network, ledger, device = self.model, self.network, self.ledger, self.device
        classes, steps = network.decoder.classes, self.steps
        warmup = float(model.kl_warmup) * steps
        self.module.train()
        loss_value = float("nan")
        for step in range(self.start, steps):
            if checkpoint is not None and step > self.start and step % checkpoint.every == 0:
                checkpoint.save_training(self.state(step))
            chosen = torch.as_tensor(ledger.noise.poisson_sample(real.shape[0], self.sample_rate), dtype=torch.long,
                                     device=device)
            self.optimizer.zero_grad(set_to_none=True)
            if chosen.numel():
                x = real[chosen]
                onehot = F.one_hot(real_labels[chosen], classes).float()
                eps = torch.randn(x.shape[0], network.decoder.latent_dim, device=device)
                logits, mu, logvar = self.module(x, onehot, eps)
                beta = model.kl_weight * min(1.0, (step + 1) / warmup) if warmup > 0 else model.kl_weight
                losses = per_image_loss(logits, x, mu, logvar, beta)
                with warnings.catch_warnings():  # torch notes that the images need no gradient
                    warnings.filterwarnings("ignore", message="Full backward hook is firing")
                    losses.mean().backward()
                loss_value = float(losses.detach().mean())
                if self.layers is not None:
                    _clip_layers(self.layers, self.layer_bound)
            else:  # an empty Poisson batch still takes its noise-only step, as the accountant assumes
                for p in self.trained:
                    p.grad_sample = torch.zeros((0, *p.shape), device=device)
            self.optimizer.step()
            self.schedule.step()
            if self.average is not None:
                self.average.update(step)
            if progress is not None and (step % 10 == 0 or step == steps - 1):
                progress({"step": step + 1, "total": steps, "loss": loss_value, "epoch": (step + 1) * self.sample_rate,
                          "epsilon": ledger.epsilon_spent})
        if checkpoint is not None and self.start < steps:
            # The finished state too: resuming a finished fit gives the same decoder, never a second one.
            checkpoint.save_training(self.state(steps))

    def final_decoder(self) -> ImageDecoder:
        """The decoder sampled from: the last step's weights, or their running average."""
        if self.average is not None:
            self.average.apply()
        return self.network.decoder

    def state(self, step: int) -> dict[str, Any]:
        """Everything a resumed fit continues from, after ``step`` steps; the ledger in the same file, so
        the count saved always matches the training saved."""
        return {
            "step": step, "network": self.network.state_dict(),
            "optimizer": self.optimizer.original_optimizer.state_dict(), "schedule": self.schedule.state_dict(),
            "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}),
            **({"averaged": self.average.state()} if self.average is not None else {}),
            "ledger": json.dumps(self.ledger.state_dict()),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.original_optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        if self.average is not None:
            self.average.restore(state["averaged"], self.device)
        self.start = int(state["step"])
