"""ImageGAN: the differentially private synthesiser for images (scikit-learn style).

    model = ImageGAN(epsilon=10.0, seed=0).fit(images, labels)
    synthetic, synthetic_labels = model.sample(2000)
    model.save("model_dir"); ImageGAN.load("model_dir")

``fit`` reads the real images through at most three private mechanisms, planned together
up front with :func:`~synthdata.privacy.plan_noise` so epsilon is never exceeded, each
booked on :attr:`ImageGAN.ledger_` as its own line:

1. **label frequencies** — a Gaussian sparse histogram of the labels (L2 sensitivity 1:
   one image moves one count by 1). A class is released only if its noisy count clears
   :func:`~synthdata.privacy.gaussian_threshold`, so a label held by one image is never
   sampled; the failure probability is booked as ``extra_delta``. With a declared public
   label domain (``classes=[...]``) every declared class is counted, no threshold (as
   for a schema's public category domain). Without labels this is the noisy image count.
2. **mean embeddings** — DP-MERF (Harder et al. 2021): every image is mapped to random
   Fourier features of a Gaussian kernel (a projection drawn from the seed, never from
   the data) of norm exactly 1; the features are summed per class and Gaussian noise is
   added once. One image changes one class's sum by a vector of norm <= 1, so the
   L2 sensitivity of the whole (classes x features) release is 1.
3. **discriminator** (by default; ``budget_split["discriminator"] = 0`` turns it off) — a small conditional
   convolutional discriminator (GroupNorm, no in-place activations) trained with DP-SGD:
   Poisson-sampled real batches (:func:`~synthdata.privacy.poisson_sample`), per-sample
   gradients of real and fake images from one vectorised ``torch.func`` pass, clipping
   and noise by Opacus' ``DPOptimizer``, every step booked by the ledger's step hook.

The generator (a conditional DCGAN-style stack of transposed convolutions) never reads
a real image: it is trained to match the noisy class-conditional mean embeddings, plus
``adversarial_weight`` times the private discriminator's signal — post-processing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import DataError, ModelError, PrivacyError, SynthdataWarning
from ..models.base import Synthesizer, fresh_seed
from ..privacy import (
    DEFAULT_DELTA,
    IMAGE,
    DPSGDRequest,
    GaussianRequest,
    NoiseSource,
    PrivacyLedger,
    check_delta_for_units,
    check_privacy_parameters,
)
from ..runtime import resolve_device
from .networks import ImageGenerator, fourier_features, fourier_projection
from .releases import DPDiscriminator, check_domain, release_embeddings, release_labels

__all__ = ["ImageGAN"]

MODEL_FORMAT = "synthdata-image-gan/1"
#: Relative weights of the budget (normalised to sum 1; RDP composition lets each part
#: get more than its slice of an additive split). The mean embeddings carry the image
#: signal, so they get most of it.
#: The DP-SGD discriminator's share is small: on the 8x8 digits at epsilon=10 it cost
#: 0.8 points of accuracy (logistic regression on synthetic digits, 0.942 against 0.950
#: without it) and a third more fit time; set it to 0 to train on the embeddings alone.
DEFAULT_BUDGET_SPLIT = {"labels": 0.1, "embeddings": 0.9, "discriminator": 0.1, "audit": 0.0}
#: Share of epsilon of the DP image count (pure ε, spent first; see TabularGAN).
COUNT_SHARE = 0.05
#: Most epsilon the count ever takes (a count needs little: at 0.1 its noise is ±10).
COUNT_CAP = 0.1
#: Fewest images a plan assumes, whatever the noisy count says.
MIN_COUNT = 10
#: Share of delta reserved for the label histogram's threshold.
THRESHOLD_DELTA_SHARE = 0.1
#: Pixel values are bytes; this public bound scales them to [0, 1] (never read from data).
PIXEL_MAX = 255.0


# --------------------------------------------------------------------------- the model


class ImageGAN(Synthesizer):
    """Differentially private conditional image generator.

    Parameters (keyword-only, stored unchanged; all work happens in :meth:`fit`):
        epsilon: the privacy budget; never exceeded.
        delta: defaults to min(1/(n ln n), 1e-5), well below 1/n.
        epochs: passes of the DP discriminator over the data (in expectation), if used.
        batch_size: expected size of the discriminator's Poisson-sampled real batches.
        generator_steps: optimisation steps of the generator (post-processing: free).
        features: random Fourier features of the mean embeddings (even).
        length_scales: kernel widths, relative to sqrt(pixels), the features are split over.
        budget_split: relative shares of epsilon for labels, embeddings, discriminator.
        adversarial_weight: weight of the discriminator's signal in the generator's loss.
        max_grad_norm: per-sample clipping norm of the discriminator.
        learning_rate: of the generator (Adam, cosine schedule).
        classes: the public label domain, if known (e.g. range(10) for digits): every declared
            class is released and no threshold applies; labels outside it are refused.
            None: the classes are the observed labels, thresholded (costs rare classes).
        seed: makes a CPU run reproducible; drawn at random when None.
        device: "auto" (CUDA when present), "cpu" or "cuda".
    """

    model_format = MODEL_FORMAT
    model_name = "image-gan"
    fit_signature = "fit(images, labels)"

    def __init__(self, *, epsilon: float, delta: float | None = None, epochs: float = 2.0,
                 batch_size: int = 64, generator_steps: int = 1000, features: int = 4000,
                 length_scales: tuple[float, ...] = (0.2, 0.4), budget_split: dict[str, float] | None = None,
                 adversarial_weight: float = 0.05, max_grad_norm: float = 1.0, learning_rate: float = 2e-3,
                 classes: Any = None, seed: int | None = None, device: str = "auto",
                 insecure_noise_seed: int | None = None) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.epochs = epochs
        self.batch_size = batch_size
        self.generator_steps = generator_steps
        self.features = features
        self.length_scales = length_scales
        self.budget_split = budget_split
        self.adversarial_weight = adversarial_weight
        self.max_grad_norm = max_grad_norm
        self.learning_rate = learning_rate
        self.classes = classes
        self.seed = seed
        self.device = device
        self.insecure_noise_seed = insecure_noise_seed

    # ------------------------------------------------------------------ fit

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None, *,
            progress: Callable[[dict], None] | None = None) -> ImageGAN:
        """Learn from ``images`` (N x H x W or N x H x W x C, uint8) and optional ``labels``.

        ``progress`` receives a dict (step, total, loss, epsilon, …) every few steps.
        """
        pixels, label_array = _check_images(images, labels)
        domain = check_domain(self.classes, label_array)
        n = pixels.shape[0]
        delta = DEFAULT_DELTA if self.delta is None else self.delta
        check_privacy_parameters(epsilon=self.epsilon, delta=delta)
        split = self._split()
        if self.features < 2 or self.features % 2:
            raise ModelError(f"features must be an even number >= 2, got {self.features!r}")
        device = resolve_device(self.device)
        seed = self.seed if self.seed is not None else fresh_seed() % 2**31
        torch.manual_seed(seed)
        threshold_delta = delta * THRESHOLD_DELTA_SHARE if label_array is not None and domain is None else 0.0
        ledger = PrivacyLedger(epsilon=self.epsilon, delta=delta, threshold_delta=threshold_delta,
                               unit=IMAGE, noise=NoiseSource(seed=self.insecure_noise_seed))

        # (0) how many images: a DP count, from which batches and steps are planned.
        count = ledger.noisy_count("image count", n, epsilon=min(COUNT_SHARE * self.epsilon, COUNT_CAP),
                                   parameters={"what": "images"})
        if count < MIN_COUNT:
            warnings.warn(f"a DP count says the image set holds about {max(count, 0)} images; planning for "
                          f"{MIN_COUNT}", SynthdataWarning, stacklevel=2)
            count = MIN_COUNT
        check_delta_for_units(delta, count, what="images")
        # The sampling rate, and from it the steps, follow from the DP count; capped at 1/2
        # so that a small table does not make the count's parity decide the step count.
        sample_rate = min(self.batch_size / count, 0.5)
        batch = max(1, round(sample_rate * count))
        d_steps = int(math.ceil(self.epochs / sample_rate)) if split["discriminator"] > 0 else 0
        gaussians = {name: GaussianRequest(sensitivity=1.0, share=split[name])
                     for name in ("labels", "embeddings", "audit") if split[name] > 0}
        if label_array is None:
            gaussians.pop("labels", None)
        ledger.plan(gaussians=gaussians, dpsgd=DPSGDRequest(sample_rate=sample_rate, steps=d_steps,
                                                            share=split["discriminator"]) if d_steps else None)
        plan = ledger.plan_

        # (1) label frequencies: which classes exist, how often.
        classes, class_index, counts = release_labels(label_array, domain, count, ledger=ledger,
                                                      threshold_delta=threshold_delta, n=n)
        # Images of unreleased classes take part in no later release.
        keep = class_index >= 0
        real = torch.as_tensor(pixels[keep], dtype=torch.float32, device=device)  # N x C x H x W in [0, 1]
        real_labels = torch.as_tensor(class_index[keep], dtype=torch.long, device=device)

        # (2) class-conditional mean embeddings (DP-MERF).
        projection = fourier_projection(int(np.prod(real.shape[1:])), self.features,
                                        tuple(self.length_scales), seed).to(device)
        targets = release_embeddings(real, real_labels, len(classes), projection, counts, ledger=ledger)

        # (3) train the generator on the noisy embeddings (+ the DP discriminator).
        _, channels, height, width = real.shape
        generator = ImageGenerator(classes=len(classes), height=height, width=width, channels=channels).to(device)
        discriminator = None
        if d_steps:
            discriminator = DPDiscriminator(
                classes=len(classes), channels=channels, real=real, real_labels=real_labels,
                sample_rate=sample_rate, expected=batch, steps=d_steps, noise_multiplier=plan.noise_multiplier,
                max_grad_norm=self.max_grad_norm, ledger=ledger, device=device)
        self._train(generator, targets, counts, projection, discriminator, ledger, device, progress)
        if ledger.epsilon_spent > self.epsilon:  # the plan makes this impossible; never release
            raise PrivacyError(f"internal error: epsilon spent {ledger.epsilon_spent} exceeds {self.epsilon}")

        self.generator_ = generator.to("cpu").eval()
        self.classes_ = classes
        self.class_weights_ = counts / counts.sum()
        self.has_labels_ = label_array is not None
        self.image_shape_ = tuple(int(s) for s in images.shape[1:])
        self.n_images_ = float(count)
        self.ledger_ = ledger
        self.epsilon_spent_ = ledger.epsilon_spent
        self.delta_ = delta
        self.seed_ = seed
        self.noise_plan_ = plan.to_dict()
        self.fitted_ = True
        return self

    def _split(self) -> dict[str, float]:
        split = {**DEFAULT_BUDGET_SPLIT, **(self.budget_split or {})}
        unknown = set(split) - set(DEFAULT_BUDGET_SPLIT)
        if unknown:
            raise PrivacyError(f"unknown budget_split part {sorted(unknown)[0]!r}; "
                               f"parts are {', '.join(DEFAULT_BUDGET_SPLIT)}")
        if split["labels"] <= 0 or split["embeddings"] <= 0 or split["discriminator"] < 0 or split["audit"] < 0:
            raise PrivacyError("budget_split needs positive shares for labels and embeddings "
                               "(and a share >= 0 for the discriminator)")
        return split

    def _train(self, generator: ImageGenerator, targets: torch.Tensor, counts: np.ndarray,
               projection: torch.Tensor, discriminator: DPDiscriminator | None, ledger: PrivacyLedger,
               device: torch.device, progress: Callable[[dict], None] | None) -> None:
        steps = self.generator_steps
        classes = targets.shape[0]
        per_class = max(8, min(64, 640 // classes))
        labels = torch.arange(classes, device=device).repeat_interleave(per_class)
        # Classes weigh by their released frequency (a rare class's noisy mean is noisier).
        weights = torch.as_tensor(counts / counts.sum(), dtype=torch.float32, device=device)
        optimizer = torch.optim.Adam(generator.parameters(), lr=self.learning_rate, betas=(0.5, 0.999))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
        d_every = steps / discriminator.steps if discriminator is not None else math.inf
        d_loss = float("nan")
        for step in range(steps):
            while discriminator is not None and discriminator.done < discriminator.steps \
                    and discriminator.done <= step / d_every:
                d_loss = discriminator.step(generator)
            fake = generator(torch.randn(labels.shape[0], generator.noise_dim, device=device), labels)
            phi = fourier_features(fake.flatten(1), projection)
            means = torch.zeros_like(targets).index_add_(0, labels, phi) / per_class
            loss = (weights * ((means - targets) ** 2).sum(1)).sum() * classes
            if discriminator is not None and self.adversarial_weight > 0:
                loss = loss + self.adversarial_weight * F.softplus(-discriminator.module(fake, labels)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=list(generator.parameters()))
            optimizer.step()
            schedule.step()
            if progress is not None and (step % 25 == 0 or step == steps - 1):
                progress({"step": step + 1, "total": steps, "loss": float(loss.detach()), "d_loss": d_loss,
                               "epsilon": ledger.epsilon_spent})
        while discriminator is not None and discriminator.done < discriminator.steps:  # never fewer than planned
            discriminator.step(generator)

    # ------------------------------------------------------------------ sample

    def sample(self, n: int, *, seed: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` synthetic images (uint8, the input's layout) and their labels (None if fitted without)."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a whole number >= 0, got {n!r}")
        seed = fresh_seed() if seed is None else seed
        rng = np.random.default_rng(seed)
        torch_rng = torch.Generator().manual_seed(seed)
        index = rng.choice(len(self.classes_), size=int(n), p=self.class_weights_)
        out = np.empty((int(n), *self._channels_last_shape()), dtype=np.uint8)
        with torch.no_grad():
            for start in range(0, int(n), 1024):
                rows = index[start:start + 1024]
                noise = torch.randn(len(rows), self.generator_.noise_dim, generator=torch_rng)
                images = self.generator_(noise, torch.as_tensor(rows, dtype=torch.long))
                scaled = torch.round(images.permute(0, 2, 3, 1) * PIXEL_MAX).clamp(0, PIXEL_MAX)
                out[start:start + len(rows)] = scaled.to(torch.uint8).numpy()
        images = out.reshape((int(n), *self.image_shape_))
        return images, (self.classes_[index] if self.has_labels_ else None)

    def _channels_last_shape(self) -> tuple[int, int, int]:
        h, w = self.image_shape_[:2]
        return (h, w, self.image_shape_[2] if len(self.image_shape_) == 3 else 1)

    # ------------------------------------------------------------------ persistence

    def _saved_params(self) -> dict[str, Any]:
        params = super()._saved_params()
        if params["classes"] is not None:
            params["classes"] = np.asarray(list(self.classes)).tolist()
        return params

    def _saved_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        state = {
            "privacy": self.ledger_.state_dict(),
            "generator": self.generator_.config(),
            "epsilon_spent": self.epsilon_spent_, "delta": self.delta_, "projection_seed": self.seed_,
            "n_images": self.n_images_, "image_shape": list(self.image_shape_),
            "classes": self.classes_.tolist(), "classes_dtype": self.classes_.dtype.str,
            "class_weights": self.class_weights_.tolist(), "has_labels": self.has_labels_,
            "noise_plan": self.noise_plan_,
        }
        return state, self.generator_.state_dict()

    def _restore_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        if isinstance(self.length_scales, list):
            self.length_scales = tuple(self.length_scales)
        generator = ImageGenerator(**state["generator"])
        generator.load_state_dict(tensors)
        generator.eval()
        self.generator_ = generator
        self.ledger_ = PrivacyLedger.from_state_dict(state["privacy"])
        self.classes_ = np.asarray(state["classes"], dtype=np.dtype(state["classes_dtype"]))
        self.class_weights_ = np.asarray(state["class_weights"], dtype=float)
        self.image_shape_ = tuple(int(v) for v in state["image_shape"])
        self.epsilon_spent_ = float(state["epsilon_spent"])
        self.delta_ = float(state["delta"])
        self.seed_ = int(state["projection_seed"])
        self.n_images_ = float(state["n_images"])
        self.has_labels_ = bool(state["has_labels"])
        self.noise_plan_ = state["noise_plan"]


# --------------------------------------------------------------------------- private releases


def _check_images(images: Any, labels: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Images as N x C x H x W floats in [0, 1]; labels as a 1-D array (or None)."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
        what = f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise DataError(f"images must be a uint8 array of shape N x H x W or N x H x W x C, got a {what}")
    if images.shape[0] < 2 or min(images.shape[1:]) < 1:
        raise DataError(f"images must hold at least 2 non-empty images, got shape {images.shape}")
    pixels = images[..., None] if images.ndim == 3 else images
    pixels = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32) / PIXEL_MAX
    if labels is None:
        return pixels, None
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"labels must be one label per image ({images.shape[0]}), got shape {labels.shape}")
    if labels.dtype.kind not in "biuU":
        raise DataError(f"labels must be integers, booleans or strings, got dtype {labels.dtype}")
    return pixels, labels


