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
   Poisson-sampled real batches (:func:`~synthdata.privacy.poisson_sample`), each real
   image's exact gradient clipped (book-keeping), the generated images' gradient added
   unclipped (post-processing), noise by Opacus' DP optimizer, every step booked by the
   ledger's step hook (:class:`~synthdata.images.releases.DPDiscriminator`).

The generator (a conditional DCGAN-style stack of transposed convolutions) never reads
a real image: it is trained to match the noisy class-conditional mean embeddings, plus
``adversarial_weight`` times the private discriminator's signal — post-processing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
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
from ..privacy.distributed import SharedReleaseLedger
from ..runtime import resolve_device, resolve_precision, training_autocast
from .base import (
    THRESHOLD_DELTA_SHARE,
    ImageSynthesizer,
    WeightAverage,
    check_average,
    check_consistency,
    check_images,
    input_fingerprint,
    load_checkpoint,
    refuse_used_checkpoint,
    write_first_checkpoint,
)
from .distributed import current_cluster
from .networks import ConvFeatures, ImageGenerator, embedding, fourier_projection
from .releases import DPDiscriminator, check_domain, release_embeddings, release_labels

__all__ = ["ImageGAN"]

MODEL_FORMAT = "synthdata-image-gan/1"
#: Images the generator draws per step, split evenly over the classes, MIN_PER_CLASS to
#: MAX_PER_CLASS each: a step's cost is proportional. Until session 8 it was 640 (64 per class)
#: for 1,000 steps; half as many images per step for twice the steps (``generator_steps=2000``)
#: costs the same CPU at 28x28 and read 91.3-91.7% instead of 89.4-90.2% on MNIST at
#: epsilon=10 (benchmarks/README.md, images.py, session 8). Post-processing: no privacy cost.
GENERATED_PER_STEP = 320
MIN_PER_CLASS, MAX_PER_CLASS = 8, 32
#: Random 5x5 filters of the optional convolutional features (``conv_features > 0``).
CONV_FILTERS = 64
#: Relative weights of the budget (normalised to sum 1; RDP composition lets each part
#: get more than its slice of an additive split). The mean embeddings carry the image
#: signal, so they get most of it.
#: The DP-SGD discriminator's share is small: on the 8x8 digits at epsilon=10 it cost
#: 0.8 points of accuracy (logistic regression on synthetic digits, 0.942 against 0.950
#: without it) and a third more fit time; set it to 0 to train on the embeddings alone.
DEFAULT_BUDGET_SPLIT = {"labels": 0.1, "embeddings": 0.9, "discriminator": 0.1, "audit": 0.0}


# --------------------------------------------------------------------------- the model


class ImageGAN(ImageSynthesizer):
    """Differentially private conditional image generator.

    Parameters (keyword-only, stored unchanged; all work happens in :meth:`fit`):
        epsilon: the privacy budget; never exceeded.
        delta: defaults to min(1/(n ln n), 1e-5), well below 1/n.
        epochs: passes of the DP discriminator over the data (in expectation), if used.
        batch_size: expected size of the discriminator's Poisson-sampled real batches.
        generator_steps: optimisation steps of the generator (post-processing: free in privacy; each
            step draws GENERATED_PER_STEP images, 32 per class for up to 10 classes). 3000 since
            session 10, when bfloat16 training (``precision``) made a step 13-35% cheaper (about a
            quarter over whole quiet releases): 3,000 bfloat16 steps cost ~5-10% more CPU than 2,000
            float32 ones did, and on MNIST (paired fits)
            read 91.7 / 90.7% against 88.7 / 90.6% at epsilon=10; at epsilon=1 two pairs moved by
            +0.75 and -0.35 points (benchmarks/README.md, session 10). 2000 from session 8, 1000
            of 64 images per class before; models saved before keep the steps they were fit with.
        features: random Fourier features of the mean embeddings (even).
        length_scales: kernel widths, relative to sqrt(pixels), the features are split over.
        budget_split: relative shares of epsilon for labels, embeddings, discriminator.
        adversarial_weight: weight of the discriminator's signal in the generator's loss.
        max_grad_norm: per-sample clipping norm of the discriminator.
        learning_rate: of the generator (Adam, cosine schedule).
        average: decay of an exponential moving average of the generator's weights (0: none, the
            last weights are the model). The average is a function of the generator's steps only:
            post-processing, free. On MNIST at epsilon=10 (one fit, paired) a 0.999 average scored
            as the last weights (CNN 85.6% both): the cosine schedule already anneals them.
        conv_features: weight w in [0, 1) of fixed random convolutional features in the mean
            embeddings (default 0.5; 0: none, pixels' random Fourier features only). With w > 0 every image's
            embedding is [sqrt(1-w) Fourier features, sqrt(w) random conv features] (norm <= 1: the
            same sensitivity, the same single "embeddings" release). The filters come from the seed,
            never from the data (:class:`~synthdata.images.networks.ConvFeatures`). On 4,000 MNIST
            digits at epsilon=10, w=0.5 read 89.4-90.2% (CNN on synthetic, two fits) against 87.1-88.6%
            without, at epsilon=1 74.9-78.6% (two fits) against 73.2-76.6%, at up to 1.6x the fit's CPU
            (benchmarks/README.md, session 7). Models saved before this option load with it unset (0).
        upsample: how the generator doubles its maps: "transposed" (stride-2 transposed
            convolutions) or "nearest" (nearest-neighbour upsampling + 3x3 convolution: no
            checkerboard, about twice the generator's cost).
        consistency: a consistency filter at sampling time (None: none): a small classifier is trained
            on the generator's own images, and an image is kept only if that classifier assigns it to
            the class it was generated for with at least this probability (a number in [0, 1));
            others are drawn again (:meth:`sample`). Post-processing of the generator: free.
        classes: the public label domain, if known (e.g. range(10) for digits): every declared
            class is released and no threshold applies; labels outside it are refused.
            None: the classes are the observed labels, thresholded (costs rare classes).
        seed: makes a CPU run reproducible; drawn at random when None.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        precision: the arithmetic of the generator's training steps: "auto" (bfloat16 where the device
            computes it natively: a CPU with AVX-512 BF16 or AMX, a CUDA GPU that supports it; float32
            elsewhere), "float32" or "bfloat16". Only the generator and the features of its own images
            run in it (post-processing); the releases and the DP discriminator read the real images in
            float32 whatever it is, so the sensitivities hold. On 3,577 MNIST digits a fit took 490-494
            CPU s in bfloat16 against 736-749 s in float32 (one thread, AVX-512 BF16, beside other fits;
            13-35% less a step over other measures), with the same accuracy on three paired fits (benchmarks/README.md, session 10). A seeded fit is
            reproducible on one machine; "auto" may choose differently on another.
    """

    model_format = MODEL_FORMAT
    # Files saved before an option existed lack it: conv_features (session 7), precision (session 10).
    older_defaults = {"conv_features": 0.0, "precision": "float32"}
    model_name = "image-gan"

    def __init__(self, *, epsilon: float, delta: float | None = None, epochs: float = 2.0,
                 batch_size: int = 64, generator_steps: int = 3000, features: int = 4000,
                 length_scales: tuple[float, ...] = (0.2, 0.4), budget_split: dict[str, float] | None = None,
                 adversarial_weight: float = 0.05, max_grad_norm: float = 1.0, learning_rate: float = 2e-3,
                 average: float = 0.0, conv_features: float = 0.5, upsample: str = "transposed",
                 consistency: float | None = None, classes: Any = None,
                 seed: int | None = None, device: str = "auto", precision: str = "auto",
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
        self.average = average
        self.conv_features = conv_features
        self.upsample = upsample
        self.consistency = consistency
        self.classes = classes
        self.seed = seed
        self.device = device
        self.precision = precision
        self.insecure_noise_seed = insecure_noise_seed

    # ------------------------------------------------------------------ fit

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None, *,
            checkpoint_dir: str | os.PathLike | None = None, resume: bool = False, checkpoint_every: int = 100,
            progress: Callable[[dict], None] | None = None) -> ImageGAN:
        """Learn from ``images`` (N x H x W or N x H x W x C, uint8) and optional ``labels``.

        With ``checkpoint_dir``, the fit saves its state there every ``checkpoint_every``
        generator steps (the ledger in the same file as the training state); ``resume=True``
        continues a killed fit from it: the private releases (count, labels, embeddings) are
        reused, never repeated, and the DP-SGD count continues. ``progress`` receives a dict
        (step, total, loss, epoch, epsilon, …) every few steps.
        """
        pixels, label_array = check_images(images, labels)
        domain = check_domain(self.classes, label_array)
        n = pixels.shape[0]
        delta = DEFAULT_DELTA if self.delta is None else self.delta
        check_privacy_parameters(epsilon=self.epsilon, delta=delta)
        split = self._split()
        if self.features < 2 or self.features % 2:
            raise ModelError(f"features must be an even number >= 2, got {self.features!r}")
        check_average(self.average, "generator")
        check_consistency(self.consistency)
        conv_weight = _check_conv_features(self.conv_features)
        if self.upsample not in ("transposed", "nearest"):
            raise ModelError(f"upsample must be 'transposed' or 'nearest', got {self.upsample!r}")
        device = resolve_device(self.device)
        precision = resolve_precision(self.precision, device)
        cluster = current_cluster()  # several processes under torchrun: see synthdata.images.distributed
        if cluster is not None and checkpoint_dir is not None:
            raise ModelError("checkpoints are not supported when training on several processes (torchrun)")
        seed = self.seed if self.seed is not None else fresh_seed() % 2**31
        if cluster is not None:  # the same images and settings everywhere; rank 0's seed
            seed = cluster.start_fit(seed, self._saved_params(), input_fingerprint(images, labels))
        torch.manual_seed(seed)
        threshold_delta = delta * THRESHOLD_DELTA_SHARE if label_array is not None and domain is None else 0.0
        noise = NoiseSource(seed=self.insecure_noise_seed) if cluster is None else \
            cluster.noise_source(self.insecure_noise_seed)
        checkpoint = Checkpointer(checkpoint_dir, every=checkpoint_every) if checkpoint_dir is not None else None
        params = json.loads(json.dumps(self._saved_params()))
        fingerprint = input_fingerprint(images, labels)

        if resume:
            resumed = load_checkpoint(
                checkpoint, fingerprint, params, noise, labels=label_array, n=n,
                replan=lambda ledger, setup: _plan(ledger, split, label_array is not None, setup["sample_rate"],
                                                   setup["discriminator_steps"]))
            setup, state, ledger = resumed.setup, resumed.state, resumed.ledger
            count, sample_rate, batch, d_steps = (setup["count"], setup["sample_rate"], setup["batch"],
                                                  setup["discriminator_steps"])
            noise_multiplier, plan_dict = setup["noise_multiplier"], setup["noise_plan"]
            classes, counts, class_index = resumed.classes, resumed.counts, resumed.index
            projection = state["projection"].to(device)
            targets = state["targets"].to(device)
            conv = None
            if conv_weight > 0:
                conv = ConvFeatures(channels=pixels.shape[1], filters=CONV_FILTERS, seed=0).to(device)
                conv.weight.copy_(state["conv"].to(device))
        else:
            refuse_used_checkpoint(checkpoint)
            state = None
            ledger = (PrivacyLedger if cluster is None else SharedReleaseLedger)(
                epsilon=self.epsilon, delta=delta, threshold_delta=threshold_delta, unit=IMAGE, noise=noise)
            # (0) how many images: a DP count, from which batches and steps are planned.
            count = self._dp_image_count(ledger, n, delta)
            # The sampling rate, and from it the steps, follow from the DP count; capped at 1/2
            # so that a small set does not make the count's parity decide the step count.
            sample_rate = min(self.batch_size / count, 0.5)
            batch = max(1, round(sample_rate * count))
            d_steps = int(math.ceil(self.epochs / sample_rate)) if split["discriminator"] > 0 else 0
            _plan(ledger, split, label_array is not None, sample_rate, d_steps)
            plan_dict, noise_multiplier = ledger.plan_.to_dict(), ledger.plan_.noise_multiplier

            # (1) label frequencies: which classes exist, how often.
            classes, class_index, counts = release_labels(label_array, domain, count, ledger=ledger,
                                                          threshold_delta=threshold_delta, n=n)
            # (2) class-conditional mean embeddings (DP-MERF), over the images of released classes.
            keep = class_index >= 0
            projection = fourier_projection(int(np.prod(pixels.shape[1:])), self.features,
                                            tuple(self.length_scales), seed).to(device)
            conv = ConvFeatures(channels=pixels.shape[1], filters=CONV_FILTERS, seed=seed).to(device) \
                if conv_weight > 0 else None
            targets = release_embeddings(torch.as_tensor(pixels[keep], device=device),
                                         torch.as_tensor(class_index[keep], dtype=torch.long, device=device),
                                         len(classes), projection, counts, ledger=ledger, conv=conv,
                                         conv_weight=conv_weight)
            setup = {"input": fingerprint, "params": params, "count": count, "sample_rate": sample_rate,
                     "batch": batch, "discriminator_steps": d_steps, "noise_multiplier": noise_multiplier,
                     "noise_plan": plan_dict, "classes": classes.tolist(), "classes_dtype": classes.dtype.str,
                     "counts": counts.tolist()}

        # Images of unreleased classes take part in no later release.
        keep = class_index >= 0
        real = torch.as_tensor(pixels[keep], dtype=torch.float32, device=device)  # N x C x H x W in [0, 1]
        real_labels = torch.as_tensor(class_index[keep], dtype=torch.long, device=device)
        if cluster is not None:  # this process's part: the union of the parts' Poisson batches is the batch
            real, real_labels = cluster.part(real), cluster.part(real_labels)

        # (3) train the generator on the noisy embeddings (+ the DP discriminator).
        _, channels, height, width = real.shape
        generator = ImageGenerator(classes=len(classes), height=height, width=width, channels=channels,
                                   upsample=self.upsample).to(device)
        discriminator = None
        if d_steps:
            discriminator = DPDiscriminator(
                classes=len(classes), channels=channels, real=real, real_labels=real_labels,
                sample_rate=sample_rate, expected=batch, steps=d_steps, noise_multiplier=noise_multiplier,
                max_grad_norm=self.max_grad_norm, ledger=ledger, device=device)
        if cluster is not None:
            cluster.prepare(generator, discriminator, ledger, seed)
        training = _Training(generator, discriminator, self.generator_steps, self.learning_rate, ledger, device,
                             projection, targets, average=float(self.average), conv=conv, conv_weight=conv_weight,
                             precision=precision)
        if state is not None:
            training.restore(state)
        elif checkpoint is not None:  # the releases are saved before any training step
            write_first_checkpoint(checkpoint, training.state(0), setup)
        self._train(training, counts, progress, checkpoint)
        if ledger.epsilon_spent > self.epsilon:  # the plan makes this impossible; never release
            raise PrivacyError(f"internal error: epsilon spent {ledger.epsilon_spent} exceeds {self.epsilon}")
        if training.average is not None:  # the weight average is the model (post-processing of the steps)
            training.average.apply()

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
        self.noise_plan_ = plan_dict
        self.fitted_ = True
        return self

    def _split(self) -> dict[str, float]:
        return budget_split(self.budget_split, DEFAULT_BUDGET_SPLIT, positive=("labels", "embeddings"))

    def _train(self, training: _Training, counts: np.ndarray, progress: Callable[[dict], None] | None,
               checkpoint: Checkpointer | None) -> None:
        generator, discriminator, targets = training.generator, training.discriminator, training.targets
        device, ledger, steps = training.device, training.ledger, training.steps
        classes = targets.shape[0]
        per_class = max(MIN_PER_CLASS, min(MAX_PER_CLASS, GENERATED_PER_STEP // classes))
        labels = torch.arange(classes, device=device).repeat_interleave(per_class)
        # Classes weigh by their released frequency (a rare class's noisy mean is noisier).
        weights = torch.as_tensor(counts / counts.sum(), dtype=torch.float32, device=device)
        d_every = steps / discriminator.steps if discriminator is not None else math.inf
        d_loss = float("nan")
        for step in range(training.start, steps):
            if checkpoint is not None and step > training.start and step % checkpoint.every == 0:
                checkpoint.save_training(training.state(step))
            while discriminator is not None and discriminator.done < discriminator.steps \
                    and discriminator.done <= step / d_every:
                d_loss = discriminator.step(generator)
            with training_autocast(training.precision, device):  # post-processing: the generator's own images
                fake = generator(torch.randn(labels.shape[0], generator.noise_dim, device=device), labels)
                phi = embedding(fake, training.projection, training.conv, training.conv_weight)
            fake, phi = fake.float(), phi.float()
            means = torch.zeros_like(targets).index_add_(0, labels, phi) / per_class
            loss = (weights * ((means - targets) ** 2).sum(1)).sum() * classes
            if discriminator is not None and self.adversarial_weight > 0:
                loss = loss + self.adversarial_weight * F.softplus(-discriminator.module(fake, labels)).mean()
            training.optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=list(generator.parameters()))
            training.optimizer.step()
            training.schedule.step()
            training.update_average(step)
            if progress is not None and (step % 25 == 0 or step == steps - 1):
                progress({"step": step + 1, "total": steps, "loss": float(loss.detach()), "d_loss": d_loss,
                          "epoch": 0.0 if discriminator is None else discriminator.done * discriminator.sample_rate,
                          "epsilon": ledger.epsilon_spent})
        while discriminator is not None and discriminator.done < discriminator.steps:  # never fewer than planned
            discriminator.step(generator)
        if checkpoint is not None and training.start < steps:
            # The finished state too: resuming a finished fit gives the same generator, never a second
            # one trained again from the last checkpoint with fresh noise under the same ledger.
            checkpoint.save_training(training.state(steps))

    # ------------------------------------------------------------------ sample

    def _consistency(self) -> float | None:
        return check_consistency(self.consistency)

    def _pixels(self, classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(len(classes), self.generator_.noise_dim, generator=generator)
        return self.generator_(noise, classes)

    # ------------------------------------------------------------------ persistence

    def _saved_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {**self._image_state(), "generator": self.generator_.config()}, self.generator_.state_dict()

    def _restore_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        if isinstance(self.length_scales, list):
            self.length_scales = tuple(self.length_scales)
        generator = ImageGenerator(**state["generator"])
        generator.load_state_dict(tensors)
        generator.eval()
        self.generator_ = generator
        self._restore_image_state(state)
        self.seed_ = None  # no seed of any kind is saved


# --------------------------------------------------------------------------- private releases


# --------------------------------------------------------------------------- training state


class _Training:
    """The generator's optimiser and schedule, the DP discriminator, and what a checkpoint holds."""

    def __init__(self, generator: ImageGenerator, discriminator: DPDiscriminator | None, steps: int,
                 learning_rate: float, ledger: PrivacyLedger, device: torch.device, projection: torch.Tensor,
                 targets: torch.Tensor, average: float = 0.0, conv: ConvFeatures | None = None,
                 conv_weight: float = 0.0, precision: str = "float32") -> None:
        self.generator, self.discriminator, self.steps = generator, discriminator, steps
        self.precision = precision
        self.conv, self.conv_weight = conv, conv_weight
        self.ledger, self.device, self.projection, self.targets = ledger, device, projection, targets
        self.optimizer = torch.optim.Adam(generator.parameters(), lr=learning_rate, betas=(0.5, 0.999))
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(steps, 1))
        self.start = 0
        self.average = WeightAverage(generator, average) if average > 0 else None

    def update_average(self, step: int) -> None:
        """One step of the weights' moving average (see :class:`~synthdata.images.base.WeightAverage`)."""
        if self.average is not None:
            self.average.update(step)

    def state(self, step: int) -> dict[str, Any]:
        """Everything a resumed fit continues from; the ledger in the same file, so the count saved
        always matches the training saved. The noisy embeddings and the (data-independent)
        random projection are saved, not the seed they were drawn from."""
        d = self.discriminator
        return {
            "step": step, "generator": self.generator.state_dict(), "g_opt": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}),
            "ledger": json.dumps(self.ledger.state_dict()),
            "projection": self.projection.cpu(), "targets": self.targets.cpu(),
            **({"averaged": self.average.state()} if self.average is not None else {}),
            **({"conv": self.conv.weight.cpu()} if self.conv is not None else {}),
            **({"d_done": d.done, "discriminator": d.module.state_dict(),
                "d_opt": d.optimizer.original_optimizer.state_dict()} if d is not None else {}),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.optimizer.load_state_dict(state["g_opt"])
        self.schedule.load_state_dict(state["schedule"])
        if self.average is not None:
            self.average.restore(state["averaged"], self.device)
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        if self.discriminator is not None:
            self.discriminator.module.load_state_dict(state["discriminator"])
            self.discriminator.optimizer.original_optimizer.load_state_dict(state["d_opt"])
            self.discriminator.done = int(state["d_done"])
        self.start = int(state["step"])


def _check_conv_features(value: Any) -> float:
    """The weight of the random convolutional features: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ModelError(f"conv_features must be a number in [0, 1), got {value!r}")
    return float(value)


def _plan(ledger: PrivacyLedger, split: dict[str, float], labelled: bool, sample_rate: float, d_steps: int):
    """The RDP plan of every Gaussian release and the discriminator's DP-SGD (step names = ledger lines)."""
    gaussians = {name: GaussianRequest(sensitivity=1.0, share=split[name])
                 for name in ("labels", "embeddings", "audit") if split[name] > 0 and (labelled or name != "labels")}
    return ledger.plan(gaussians=gaussians, dpsgd=DPSGDRequest(sample_rate=sample_rate, steps=d_steps,
                                                               share=split["discriminator"]) if d_steps else None)
