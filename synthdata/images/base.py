"""What every image model shares: the input check, the DP image count, sampling through a
class-conditional generator, and the label and shape state a saved model carries.

:class:`ImageSynthesizer` is the base of :class:`~synthdata.images.estimator.ImageGAN` and
:class:`~synthdata.images.vae.ImageVAE`; a subclass implements :meth:`_pixels` (a batch of
images in [0, 1] for class indices) and saves its own network beside :meth:`_image_state`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..checkpoint import Checkpointer
from ..errors import DataError, ModelError, SynthdataWarning
from ..models.base import Synthesizer, fresh_seed
from ..privacy import IMAGE, NoiseSource, PrivacyLedger, check_delta_for_units

#: Share of epsilon of the DP image count (pure ε, spent first), and its cap.
COUNT_SHARE = 0.05
COUNT_CAP = 0.1
#: Smallest count the plan uses (a handful of images cannot be planned for).
MIN_COUNT = 10
#: Share of delta reserved for the thresholded label histogram (labels not declared public).
THRESHOLD_DELTA_SHARE = 0.1
PIXEL_MAX = 255.0
#: Images generated per batch when sampling.
SAMPLE_BATCH = 1024
#: The consistency filter of sampling: images generated for its classifier (in all, split evenly
#: over the classes, at least FILTER_MIN_PER_CLASS each), its Adam steps (about 5 passes over
#: 20,000) and batch size; the most images drawn per image asked for, before a class is filled with
#: the best of its dropped images, and the most images generated at once.
FILTER_POOL = 20_000
FILTER_MIN_PER_CLASS = 100
FILTER_STEPS = 800
FILTER_BATCH = 128
FILTER_MAX_DRAWS = 20
FILTER_ROUND_IMAGES = 16 * SAMPLE_BATCH

__all__ = ["COUNT_CAP", "COUNT_SHARE", "FILTER_POOL", "MIN_COUNT", "PIXEL_MAX", "THRESHOLD_DELTA_SHARE",
           "ImageSynthesizer", "ResumedFit", "WeightAverage", "as_bytes", "check_average", "check_consistency",
           "check_images", "class_index", "consistency_classifier", "consistent_pixels", "input_fingerprint",
           "load_checkpoint", "refuse_used_checkpoint", "write_first_checkpoint"]


def check_average(value: Any, what: str) -> float:
    """The decay of a weight average (``average=``): a number in [0, 1), 0 for none."""
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ModelError(f"average must be a number in [0, 1) (the decay of the {what}'s weight average), "
                         f"got {value!r}")
    return float(value)


class WeightAverage:
    """Exponential moving average of a module's weights over the training steps.

    A function of the (noisy) steps only: post-processing, no privacy cost. The decay warms
    up as ``min(decay, (1 + step) / (10 + step))``, so the initial weights do not linger.
    """

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.module, self.decay = module, float(decay)
        self.weights = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for key, value in self.module.state_dict().items():
                self.weights[key].mul_(decay).add_(value.detach(), alpha=1 - decay)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.cpu() for k, v in self.weights.items()}

    def restore(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        self.weights = {k: v.to(device) for k, v in state.items()}

    def apply(self) -> None:
        """Load the average into the module: the model sampled from."""
        with torch.no_grad():
            self.module.load_state_dict(self.weights)


def check_consistency(value: Any) -> float | None:
    """The threshold of the sampling's consistency filter (``consistency=``): None, or a number in [0, 1)."""
    if value is None:
        return None
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ModelError(f"consistency must be None or a number in [0, 1) (the probability a classifier of the "
                         f"generator's own images must give an image's class for it to be kept), got {value!r}")
    return float(value)


def check_images(images: Any, labels: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Images as N x C x H x W floats in [0, 1]; labels as a 1-D array (or None). Refusals depend on shapes only."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
        what = (f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray)
                else type(images).__name__)
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


def class_index(labels: np.ndarray | None, classes: np.ndarray, n: int) -> np.ndarray:
    """Each image's index into the released classes (-1: its class was not released)."""
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    position = {value: i for i, value in enumerate(classes.tolist())}
    return np.asarray([position.get(value, -1) for value in labels.tolist()], dtype=np.int64)


def as_bytes(images: torch.Tensor) -> np.ndarray:
    """Images in [0, 1] (N x C x H x W) as uint8, N x H x W x C."""
    with torch.no_grad():
        return torch.round(images.permute(0, 2, 3, 1) * PIXEL_MAX).clamp(0, PIXEL_MAX).to(torch.uint8).numpy()


def _generate(pixels: Callable[[torch.Tensor, torch.Generator], torch.Tensor], labels: np.ndarray,
              generator: torch.Generator) -> torch.Tensor:
    with torch.no_grad():
        parts = [pixels(torch.as_tensor(labels[s:s + SAMPLE_BATCH], dtype=torch.long), generator)
                 for s in range(0, len(labels), SAMPLE_BATCH)]
    return torch.cat(parts)


def _generate_released(pixels: Callable[[torch.Tensor, torch.Generator], torch.Tensor], labels: np.ndarray,
                       generator: torch.Generator) -> torch.Tensor:
    """Generated images as released: rounded to the 256 levels of a byte."""
    return torch.round(_generate(pixels, labels, generator) * PIXEL_MAX) / PIXEL_MAX


def consistency_classifier(pixels: Callable[[torch.Tensor, torch.Generator], torch.Tensor], classes: int,
                           generator: torch.Generator) -> torch.nn.Module:
    """The consistency filter's classifier (:class:`~synthdata.images.networks.SampleClassifier`),
    trained on :data:`FILTER_POOL` of the generator's own images labelled with the class each was
    generated for (never a real image); every draw from ``generator``."""
    from .networks import SampleClassifier

    per_class = max(FILTER_MIN_PER_CLASS, FILTER_POOL // classes)
    labels = np.repeat(np.arange(classes), per_class)
    images = _generate_released(pixels, labels, generator)
    targets = torch.as_tensor(labels, dtype=torch.long)
    with torch.random.fork_rng(devices=[]):  # the weights' initialisation, from ``generator`` alone
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        model = SampleClassifier(classes=classes, channels=images.shape[1], height=images.shape[2],
                                 width=images.shape[3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches: list[torch.Tensor] = []
    with torch.enable_grad():
        for _ in range(FILTER_STEPS):
            if not batches:  # passes over the pool in a fresh order each
                batches = list(torch.randperm(len(labels), generator=generator).split(FILTER_BATCH))[::-1]
            batch = batches.pop()
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(images[batch]), targets[batch]).backward()
            optimizer.step()
    return model.eval()


def consistent_pixels(pixels: Callable[[torch.Tensor, torch.Generator], torch.Tensor], index: np.ndarray,
                      classes: int, threshold: float, generator: torch.Generator,
                      classifier: torch.nn.Module) -> np.ndarray:
    """Images (uint8, N x H x W x C) for the class indices ``index``, each one the filter keeps.

    An image of class ``c`` (as released: in bytes) is kept when ``classifier``
    (:func:`consistency_classifier`) finds ``c`` most likely and gives it probability at least
    ``threshold``. Each class is drawn in rounds, sized by the share of its images kept so far
    (:data:`FILTER_ROUND_IMAGES` at most in a round), until its count is filled or
    :data:`FILTER_MAX_DRAWS` times its count are drawn; a class still short then (one the classifier
    rarely gives its own images) is filled with its dropped images the classifier found most
    likely to be of it. The images are returned in the order of ``index`` (the class mix
    asked for, exactly)."""
    need = np.bincount(index, minlength=classes)
    budget = FILTER_MAX_DRAWS * need + SAMPLE_BATCH // 8
    kept: list[list[np.ndarray]] = [[] for _ in range(classes)]
    spare: list[tuple[np.ndarray, np.ndarray] | None] = [None] * classes  # best dropped images, most likely first
    got, drawn, accepted = (np.zeros(classes, dtype=np.int64) for _ in range(3))
    as_released = np.zeros((0, 1, 1, 1), dtype=np.uint8)
    while True:  # each round draws at least one image of a class short of its count, within its budget
        short = need - got
        rate = np.where(drawn > 0, accepted / np.maximum(drawn, 1), 0.5).clip(1 / FILTER_MAX_DRAWS, 1.0)
        draw = np.where(short > 0, np.minimum(np.ceil(short / rate * 1.2).astype(np.int64) + 8, budget - drawn), 0)
        if not (draw > 0).any():
            break
        if draw.sum() > FILTER_ROUND_IMAGES:  # memory: at most so many images at once
            draw = np.where(draw > 0, np.maximum(draw * FILTER_ROUND_IMAGES // draw.sum(), 1), 0)
        labels = np.repeat(np.arange(classes), draw)
        images = _generate_released(pixels, labels, generator)
        with torch.no_grad():
            probability = torch.cat([torch.softmax(classifier(images[s:s + SAMPLE_BATCH]), 1)
                                     for s in range(0, len(labels), SAMPLE_BATCH)])
        own = probability[torch.arange(len(labels)), torch.as_tensor(labels)].numpy()
        keep = (probability.argmax(1).numpy() == labels) & (own >= threshold)
        as_released = as_bytes(images)
        for c in np.flatnonzero(draw > 0):
            mine = np.flatnonzero(labels == c)
            drawn[c] += len(mine)
            accepted[c] += keep[mine].sum()
            chosen = mine[keep[mine]][:short[c]]
            kept[c].append(as_released[chosen])
            got[c] += len(chosen)
            rest = mine[~keep[mine]]
            if got[c] < need[c] and len(rest):
                old_images, old_own = spare[c] if spare[c] is not None else (as_released[:0], own[:0])
                pooled_own = np.concatenate([old_own, own[rest]])
                best = np.argsort(-pooled_own, kind="stable")[:need[c] - got[c]]
                spare[c] = (np.concatenate([old_images, as_released[rest]])[best], pooled_own[best])
    out = np.empty((len(index), *as_released.shape[1:]), dtype=np.uint8)
    for c in np.flatnonzero(need):
        images = np.concatenate(kept[c] + ([spare[c][0]] if spare[c] is not None else []))[:need[c]]
        if len(images) < need[c]:
            raise RuntimeError("internal error: the consistency filter drew too few images")
        out[index == c] = images
    return out

# --------------------------------------------------------------------------- checkpoints
# An image model's checkpoint directory (synthdata.checkpoint.Checkpointer) holds setup.json,
# written once after the private releases (a fingerprint of the input, the parameters, the DP
# count, the plan, the released classes and counts), and training.pt with the training state
# and the ledger in the same file. Never a seed.


def input_fingerprint(images: np.ndarray, labels: Any) -> str:
    """SHA-256 of the pixels and labels: that a checkpoint is resumed on the same input (kept in the
    steward's checkpoint directory, never published)."""
    digest = hashlib.sha256(repr(images.shape).encode() + np.ascontiguousarray(images).tobytes())
    if labels is not None:
        digest.update(np.asarray(labels).astype(str).astype("U").tobytes())
    return digest.hexdigest()


def refuse_used_checkpoint(checkpoint: Checkpointer | None) -> None:
    """A fresh fit never overwrites another fit's checkpoint (whose ledger it would lose)."""
    if checkpoint is not None and checkpoint.exists():
        raise ModelError(f"{checkpoint.directory} already holds a checkpoint; resume it (resume=True) "
                         "or choose another directory")


def write_first_checkpoint(checkpoint: Checkpointer, state: dict[str, Any], setup: dict[str, Any]) -> None:
    """The training state before any step, then the setup (its presence marks a resumable checkpoint)."""
    try:
        checkpoint.directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from ..files import os_error_message

        raise ModelError(os_error_message(exc, path=checkpoint.directory, writing=True)) from None
    checkpoint.save_training(state)
    checkpoint.save_setup(setup)


def load_checkpoint(checkpoint: Checkpointer | None, fingerprint: str, params: dict[str, Any],
                    noise: NoiseSource, *, replan: Callable[[PrivacyLedger, dict[str, Any]], Any],
                    labels: np.ndarray | None, n: int) -> ResumedFit:
    """What a fit resumes from: a checkpoint made from the same input and settings.

    The ledger continues with ``noise`` (drawn afresh: the saved count continues, no noise is
    replayed). ``replan(ledger, setup)`` re-derives the noise plan from the same requests on
    the restored ledger; it must equal the saved one. The released classes and their noisy
    counts are the saved ones (never released again); ``labels`` are indexed into them."""
    if checkpoint is None:
        raise ModelError("resume needs a checkpoint directory (checkpoint_dir)")
    setup = checkpoint.load_setup()
    if setup.get("input") != fingerprint:
        raise ModelError(f"the checkpoint in {checkpoint.directory} was made from other images; resume with the "
                         "same input, or start afresh in another directory")
    if setup.get("params") != params:
        raise ModelError(f"the checkpoint in {checkpoint.directory} was made with other settings; resume with the "
                         "same settings")
    state = checkpoint.load_training()
    if state is None:
        raise ModelError(f"the checkpoint in {checkpoint.directory} lacks its training state; remove it and start "
                         "again")
    ledger = PrivacyLedger.from_state_dict(json.loads(state["ledger"]))
    if ledger.unit != IMAGE:
        raise ModelError(f"the checkpoint in {checkpoint.directory} protects {ledger.unit.description}, not one image")
    ledger.noise = noise
    # The same requests on the same pure spends give the same plan (for later steps, such as "audit").
    if json.loads(json.dumps(replan(ledger, setup).to_dict())) != setup["noise_plan"]:
        raise ModelError(f"the checkpoint in {checkpoint.directory} does not match its own noise plan; remove it "
                         "and start again")
    classes = np.asarray(setup["classes"], dtype=np.dtype(setup["classes_dtype"]))
    return ResumedFit(setup=setup, state=state, ledger=ledger, classes=classes,
                      counts=np.asarray(setup["counts"], dtype=float), index=class_index(labels, classes, n))


@dataclass(frozen=True)
class ResumedFit:
    """A checkpoint's setup, training state and ledger, with the saved class releases."""

    setup: dict[str, Any]
    state: dict[str, Any]
    ledger: PrivacyLedger
    classes: np.ndarray
    counts: np.ndarray
    index: np.ndarray


class ImageSynthesizer(Synthesizer):
    """Base of the image models (see the module docstring)."""

    fit_signature = "fit(images, labels)"

    def _dp_image_count(self, ledger: PrivacyLedger, n: int, delta: float) -> int:
        """The ledger's first spend: a pure-ε DP count of the images, from which every size is planned."""
        count = ledger.noisy_count("image count", n, epsilon=min(COUNT_SHARE * self.epsilon, COUNT_CAP),
                                   parameters={"what": "images"})
        if count < MIN_COUNT:
            warnings.warn(f"a DP count says the image set holds about {max(count, 0)} images; planning for "
                          f"{MIN_COUNT}", SynthdataWarning, stacklevel=3)
            count = MIN_COUNT
        check_delta_for_units(delta, count, what="images")
        return count

    def _pixels(self, classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Images in [0, 1], N x C x H x W, for class indices ``classes``."""
        raise NotImplementedError

    def _consistency(self) -> float | None:
        """The consistency filter's threshold (see :meth:`sample`); None: no filter."""
        return None

    def sample(self, n: int, *, seed: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` synthetic images (uint8, the input's layout) and their labels (None if fitted without).

        The labels are drawn from the released class frequencies. With a consistency filter
        (:meth:`_consistency`; labelled models of two classes or more), a small classifier is first
        trained on :data:`FILTER_POOL` images the generator makes of each class (labelled with the
        class asked for), and each class's images are then drawn until its count is filled by
        images that classifier assigns to their own class, with probability at least the
        threshold (:func:`consistency_classifier`, :func:`consistent_pixels`). It reads the
        generator only: post-processing of the DP fit, no privacy cost. ``seed`` (None: fresh OS entropy) fixes every draw, the
        filter's classifier included.
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a whole number >= 0, got {n!r}")
        seed = fresh_seed() if seed is None else seed
        rng = np.random.default_rng(seed)
        torch_rng = torch.Generator().manual_seed(seed)
        index = rng.choice(len(self.classes_), size=int(n), p=self.class_weights_)
        threshold = self._consistency()
        if threshold is not None and self.has_labels_ and len(self.classes_) > 1 and n > 0:
            classifier = consistency_classifier(self._pixels, len(self.classes_), torch_rng)
            out = consistent_pixels(self._pixels, index, len(self.classes_), threshold, torch_rng, classifier)
        else:
            h, w = self.image_shape_[:2]
            out = np.empty((int(n), h, w, self.image_shape_[2] if len(self.image_shape_) == 3 else 1), dtype=np.uint8)
            with torch.no_grad():
                for start in range(0, int(n), SAMPLE_BATCH):
                    rows = torch.as_tensor(index[start:start + SAMPLE_BATCH], dtype=torch.long)
                    out[start:start + len(rows)] = as_bytes(self._pixels(rows, torch_rng))
        return out.reshape((int(n), *self.image_shape_)), (self.classes_[index] if self.has_labels_ else None)

    # ------------------------------------------------------------------ persistence

    def _saved_params(self) -> dict[str, Any]:
        params = super()._saved_params()
        if params["classes"] is not None:
            params["classes"] = np.asarray(list(self.classes)).tolist()
        return params

    def _image_state(self) -> dict[str, Any]:
        """The learned state every image model saves, beside its own network's."""
        return {
            "privacy": self.ledger_.state_dict(),
            "epsilon_spent": self.epsilon_spent_, "delta": self.delta_,
            "n_images": self.n_images_, "image_shape": list(self.image_shape_),
            "classes": self.classes_.tolist(), "classes_dtype": self.classes_.dtype.str,
            "class_weights": self.class_weights_.tolist(), "has_labels": self.has_labels_,
            "noise_plan": self.noise_plan_,
        }

    def _restore_image_state(self, state: dict[str, Any]) -> None:
        self.ledger_ = PrivacyLedger.from_state_dict(state["privacy"])
        self.classes_ = np.asarray(state["classes"], dtype=np.dtype(state["classes_dtype"]))
        self.class_weights_ = np.asarray(state["class_weights"], dtype=float)
        self.image_shape_ = tuple(int(v) for v in state["image_shape"])
        self.epsilon_spent_ = float(state["epsilon_spent"])
        self.delta_ = float(state["delta"])
        self.n_images_ = float(state["n_images"])
        self.has_labels_ = bool(state["has_labels"])
        self.noise_plan_ = state["noise_plan"]
