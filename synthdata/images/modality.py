"""Images as a release modality: what :func:`synthdata.release.release` needs to know about them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import DataError
from ..files import printable
from ..privacy import NoiseSource
from .ingest import ImageSet, write_images

__all__ = ["IMAGE_HOLDOUT_FRACTION", "IMAGES_PER_TRAINING_IMAGE", "MAX_DEFAULT_IMAGES", "ImageModality",
           "default_image_count"]

#: Most synthetic images the audit reads.
AUDIT_SYNTHETIC_IMAGES = 5_000
#: Share of the images held out when ``--holdout-fraction`` is not given (tables: 0.2). A public
#: constant. The holdout serves only the audits, and the generator's signal grows with what it
#: trains on: DP-MERF's mean embeddings carry noise of a fixed size over a sum of training images,
#: so 3,600 training images of 4,000 instead of 3,200 carry 11% less relative noise. What the
#: audits keep at 0.1 (default audit share, delta 1e-6): the steward's exact audit scores
#: membership on about 200 members against 200 held-out images (200 more as the density attack's
#: reference) and utility on about 400 real images, per 4,000; the public membership figure is
#: skipped at epsilon=1 whatever the fraction and the image count (its noise would need about
#: 3,100 members, above the 2,000 it scores) and at epsilon=10 needs about 720 held-out images:
#: from about 7,200 images at 0.1 (3,600 at 0.2); the public utility figure's noise std at
#: epsilon=10 is about 14 divided by the held-out images (0.035 on 400, 0.3 at epsilon=1).
IMAGE_HOLDOUT_FRACTION = 0.1
#: Images released when ``rows`` is not given: this many per training image (the DP count)...
IMAGES_PER_TRAINING_IMAGE = 3
#: ... until that passes this many; a larger set releases its DP count. The generator, not its
#: images, is what was fitted: its samples are free, and a classifier trained on more of them
#: averages the generator's noise instead of fitting one finite sample's. On 3,577 MNIST digits
#: (benchmarks/README.md, images.py, session 11), the same fits sampled at 10,000 digits instead of
#: their ~3,560: a CNN trained on them scored +1.65 to +2.4 points at epsilon=1 (three noise seeds;
#: logistic regression +4 to +7.7) and +1.2 at epsilon=10 (one fit; logistic regression -0.2).
MAX_DEFAULT_IMAGES = 30_000


def default_image_count(dp_count: float) -> int:
    """How many images a release writes by default, from the DP count of the training images
    (post-processing of it): :data:`IMAGES_PER_TRAINING_IMAGE` times it, never more than
    :data:`MAX_DEFAULT_IMAGES` unless the count itself is larger."""
    n = int(round(dp_count))
    return max(n, min(IMAGES_PER_TRAINING_IMAGE * n, MAX_DEFAULT_IMAGES))


class ImageModality:
    """An image set (folder, .npz, .npy) released as PNG files, ``images.npz`` and ``grid.png``."""

    name = "image"
    noun = "images"
    default_holdout_fraction = IMAGE_HOLDOUT_FRACTION

    def __init__(self, images: ImageSet, *, model: str = "image-gan", classes: list[str] | None = None) -> None:
        self.source = images.source
        self.model_name = model
        # The declared public label domain (class names), if any. The labels are then codes
        # into it, in the declared order: every declared class is released, whether or not
        # an image holds it (which classes the images hold must not decide what is published).
        self.classes = None if classes is None else [str(c) for c in classes]
        if self.classes is not None:
            if not self.classes or len(set(self.classes)) != len(self.classes):
                raise DataError("--classes must name each class once (a non-empty list)")
            if images.class_names is not None:
                unknown = [c for c in images.class_names if c not in self.classes]
                if unknown:
                    raise DataError(f"class {printable(unknown[0])!r} of {printable(self.source)} is not among the "
                                    "declared --classes; declare every class")
                code = np.asarray([self.classes.index(c) for c in images.class_names], dtype=np.int64)
                images = dataclasses.replace(images, labels=code[images.labels], class_names=list(self.classes))
        self.images = images
        self._synthetic: tuple[np.ndarray, np.ndarray | None] | None = None

    def check(self, *, holdout_fraction: float, rows: int | None) -> None:
        if rows is not None and rows < 2:
            raise DataError(f"--rows (the number of synthetic images) must be at least 2, got {rows}")
        if self.classes is not None and self.images.class_names is None:
            raise DataError(f"--classes was given but {self.source} holds no labels (no class sub-folders or "
                            "labels array)")

    def describe(self) -> str:
        height, width, _ = self.images.images.shape[1:]
        return f"{height}x{width} {self.images.mode} images" + (
            ", labelled" if self.images.class_names else ", unlabelled")

    def digest(self) -> bytes:
        from ..fingerprint import image_digest

        return image_digest(self.images)

    def split(self, fraction: float, noise: NoiseSource):
        n = len(self.images)
        held = noise.bernoulli(n, fraction) if fraction > 0 else np.zeros(n, dtype=bool)
        return np.flatnonzero(~held), (np.flatnonzero(held) if fraction > 0 else None)

    def fit(self, train: np.ndarray, *, epsilon: float, delta: float | None, seed: int,
            model_options: dict[str, Any], progress: Callable[[dict], None] | None):
        from ..models import create_model
        from .distributed import send_fit

        send_fit({"train": train, "epsilon": epsilon, "delta": delta, "seed": seed,  # torchrun: to ranks > 0
                  "model_options": dict(model_options)})
        labels = self.images.labels
        options = dict(model_options)
        if self.classes is not None and labels is not None:
            options["classes"] = list(range(len(self.classes)))  # codes into the declared names
        model = create_model(self.model_name, epsilon=epsilon, delta=delta, seed=seed, **options)
        return model.fit(self.images.images[train], None if labels is None else labels[train], progress=progress)

    def write(self, model, directory: Path, count: int | None, seed: int) -> tuple[list[str], int]:
        n = default_image_count(model.n_images_) if count is None else count
        synthetic, labels = model.sample(max(n, 2), seed=seed)
        has_labels = self.images.labels is not None
        written_labels, names = None, None
        if has_labels:
            # Only the released classes are named (and numbered) in the files: a class held
            # by too few images to clear the DP threshold must not appear even as a name.
            released = [int(c) for c in model.classes_]
            names = [self.images.class_names[c] for c in released]
            written_labels = np.searchsorted(np.asarray(released), np.asarray(labels, dtype=np.int64))
        files = write_images(directory, synthetic, written_labels, names)
        self._synthetic = (synthetic, labels if has_labels else None)
        return files, max(n, 2)

    def audit(self, model, train: np.ndarray, holdout: np.ndarray | None, directory: Path, *,
              holdout_fraction: float, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        from .audit import audit_images, public_image_audit

        synthetic, synthetic_labels = self._synthetic
        synthetic = synthetic[:AUDIT_SYNTHETIC_IMAGES]
        synthetic_labels = None if synthetic_labels is None else np.asarray(synthetic_labels)[:AUDIT_SYNTHETIC_IMAGES]
        images, labels = self.images.images, self.images.labels
        has_holdout = holdout is not None and len(holdout) > 0
        public = public_image_audit(
            model, images[train], None if labels is None else labels[train],
            images[holdout] if has_holdout else None, labels[holdout] if has_holdout and labels is not None else None,
            synthetic, synthetic_labels, holdout_fraction=holdout_fraction, seed=seed)
        steward = audit_images(images[train], None if labels is None else labels[train], synthetic, synthetic_labels,
                               holdout_images=images[holdout] if has_holdout else None,
                               holdout_labels=labels[holdout] if has_holdout and labels is not None else None,
                               epsilon=model.epsilon, delta=model.delta_, seed=seed)
        return public, steward

    def data_section(self, model, count: int) -> dict[str, Any]:
        height, width, channels = self.images.images.shape[1:]
        released = None
        if self.images.class_names is not None and getattr(model, "has_labels_", False):
            released = [self.images.class_names[int(c)] for c in model.classes_]
        return {
            "input_name": Path(self.source).name,
            "images_train_dp": int(round(model.n_images_)),
            "rows_synthetic": count,
            "image_shape": [int(height), int(width), int(channels)],
            "image_mode": self.images.mode,
            "classes_released": released,
            "classes": "declared by the steward (public)" if self.classes is not None else
                       ("released by a thresholded DP histogram" if released is not None else None),
        }

    def steward_data(self, train: np.ndarray, holdout: np.ndarray | None) -> dict[str, Any]:
        return {"input_images": len(self.images), "images_train": len(train),
                "images_holdout": 0 if holdout is None else len(holdout), "source": str(self.source)}
