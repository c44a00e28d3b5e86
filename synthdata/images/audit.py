"""Image audit: quality and leakage of synthetic images, in the table audit's key names.

:func:`audit_images` returns ``{"format", "rows", "seed", "quality", "leakage", "notes",
"subsampled"}`` where ``quality`` and ``leakage`` use the keys of the table audit
(:mod:`synthdata.audit`) wherever they apply:

* ``quality.ml_utility`` — a small CNN (:func:`_small_cnn`) trained on the synthetic
  images and labels, tested on the real holdout images (accuracy), beside the same CNN
  trained on the real training images. Needs labels on all three sets; else ``None``.
* ``quality.frechet_distance`` — the Fréchet distance between Gaussians fitted to the
  real training and the synthetic images in the 64-dimensional penultimate layer of a
  CNN trained to classify the real *holdout* images (a random, untrained CNN of the same
  shape when there are no labels). It is **not** the Inception-based FID: pretrained
  Inception weights cannot be had here, so its scale is not comparable with published
  FIDs; ``frechet_distance_floor`` gives the same distance between two random halves of
  the training images, a sampling-noise reference (with half the images on each side it
  runs above what a perfect generator reaches, as the distance's bias grows as samples
  shrink: read it as a scale, not a bar).
* ``quality.sdmetrics_score`` — ``None``: SDMetrics scores tables, not images.
* ``leakage`` — membership inference as for tables (:mod:`synthdata.audit.leakage`):
  members are training images, non-members holdout images; the attacks are
  ``distance_to_closest_record`` (minus the pixel distance from the image to its closest
  synthetic image) and ``density_ratio`` (DOMIAS, 1-nearest-neighbour densities of the
  synthetic images over a real reference — half the holdout — in 8 whitened PCA
  dimensions of pixel space). Each gets AUROC with DeLong's interval and TPR at 1 % and
  0.1 % FPR; ``empirical_epsilon_lower_bound``, ``max_certifiable_epsilon``,
  ``leak_detected`` and ``verdict`` follow the table audit's rules exactly (the same
  functions compute them).
* ``leakage.exact_copies`` — synthetic images byte-identical to a training image, and
  to a holdout image, with the table audit's matched test.
* ``leakage.memorisation`` — the distance from each synthetic image to its closest
  training image (root-mean-square pixel difference, pixels in [0, 1]): quantiles only,
  beside the same distances for holdout images (real images the generator never saw), and
  the share of synthetic images closer to a training image than 99 % of holdout images
  are. The released report never holds an image; :func:`closest_pairs` gives the steward
  the closest pairs' indices to look at locally.

The audit reads the real images freely and is not differentially private; its output
holds aggregates only. Pixel distances are computed on images scaled to [0, 1]; the CNNs
see images downscaled to at most 32 pixels a side.
"""

from __future__ import annotations

import hashlib
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, PrivacyError
from ..audit.leakage import MIN_HOLDOUT_ROWS, _verdict, exact_copies, run_attacks, split_members
from ..audit.log import AuditLog

__all__ = ["IMAGE_AUDIT_FORMAT", "audit_image_sets", "audit_images", "closest_pairs", "frechet_distance",
           "image_summary"]

IMAGE_AUDIT_FORMAT = "synthdata-image-audit/1"
#: Most images per set the costly parts read (CNN training, neighbour searches).
MAX_IMAGES = 5_000
#: Quantiles of the memorisation distances that are reported.
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75)
#: CNN training: epochs over at most MAX_IMAGES images, batch size, and the side the
#: images are downscaled to at most.
CNN_EPOCHS = 12
CNN_BATCH = 64
CNN_SIDE = 32
FEATURES = 64

FRECHET_NOTE = (
    "Fréchet distance in the 64-dimensional feature space of a small CNN trained on the real holdout images, not "
    "the Inception-based FID (pretrained Inception weights are not available here): read it beside "
    "frechet_distance_floor (the distance between two halves of the training images), not beside published FIDs"
)
NOTE = (
    "This audit reads the real images and is not differentially private itself; its output holds aggregates only "
    "(rates, counts, distance quantiles), never a real image."
)


def audit_images(
    train_images: np.ndarray,
    train_labels: np.ndarray | None,
    synthetic_images: np.ndarray,
    synthetic_labels: np.ndarray | None,
    *,
    holdout_images: np.ndarray | None,
    holdout_labels: np.ndarray | None,
    epsilon: float | None = None,
    delta: float | None = None,
    seed: int = 0,
    max_images: int = MAX_IMAGES,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Audit synthetic images against the training images they were made from.

    Images are uint8 ``(N, H, W)`` or ``(N, H, W, C)``, all of one shape; labels are
    integer class codes (or None). ``holdout_*`` are real images the generator never saw;
    without them (or with fewer than 40) membership inference, ML utility and the Fréchet
    feature CNN's training are skipped with a note. ``epsilon``/``delta`` are the privacy
    claim under test (``delta`` defaults to ``min(1/(n ln n), 1e-5)``). The same inputs and
    ``seed`` give the same result. ``epochs`` of the CNNs: ``CNN_EPOCHS`` unless given.
    """
    import torch

    epochs = CNN_EPOCHS if epochs is None else epochs
    log = AuditLog()
    train, synthetic = _as_images(train_images, "training"), _as_images(synthetic_images, "synthetic")
    holdout = None if holdout_images is None else _as_images(holdout_images, "holdout")
    for name, images in (("synthetic", synthetic), ("holdout", holdout)):
        if images is not None and images.shape[1:] != train.shape[1:]:
            raise DataError(f"the {name} images are {images.shape[1:]}, the training images {train.shape[1:]}: "
                            "they must have one shape")
    if epsilon is not None and not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise PrivacyError(f"the claimed epsilon must be a positive finite number, got {epsilon!r}")
    if delta is None:
        n = len(train)
        delta = min(1.0 / (n * math.log(n)), 1e-5) if n >= 2 else 0.0
        log.note(f"delta for the ε lower bound: {delta:.3g}, the training default for {n:,} images")
    labels = {"train": _as_labels(train_labels, train), "synthetic": _as_labels(synthetic_labels, synthetic),
              "holdout": None if holdout is None else _as_labels(holdout_labels, holdout)}

    rng = np.random.default_rng([seed, 11])
    generator = torch.Generator().manual_seed(int(seed))
    quality = _quality(train, synthetic, holdout, labels, rng=rng, generator=generator, max_images=max_images,
                       epochs=epochs, log=log)
    leakage = _leakage(train, synthetic, holdout, epsilon=epsilon, delta=delta, rng=rng, max_images=max_images,
                       log=log)
    return {
        "format": IMAGE_AUDIT_FORMAT,
        "rows": {"real_train": len(train), "synthetic": len(synthetic),
                 "holdout": None if holdout is None else len(holdout)},
        "seed": seed,
        "quality": quality,
        "leakage": leakage,
        **log.to_dict(),
    }


def audit_image_sets(train, synthetic, holdout, *, epsilon: float | None = None, delta: float | None = None,
                     seed: int = 0, max_images: int = MAX_IMAGES) -> dict[str, Any]:
    """:func:`audit_images` on three :class:`~synthdata.images.ImageSet` (what ``synthdata audit`` reads).

    Labels are matched by class name: every set's codes are mapped into the training
    set's class names (a synthetic or holdout class the training images lack is refused).
    Labels count only when all three sets have them.
    """
    sets = {"training": train, "synthetic": synthetic, "holdout": holdout}
    shapes = {name: images.images.shape[1:] for name, images in sets.items()}
    if len(set(shapes.values())) > 1:
        raise DataError("the image sets must have one shape (use --image-size): "
                        + ", ".join(f"{name} {h}x{w}x{c}" for name, (h, w, c) in shapes.items()))
    names = train.class_names
    labelled = all(images.labels is not None for images in sets.values())
    labels: dict[str, np.ndarray | None] = {name: None for name in sets}
    if labelled:
        for name, images in sets.items():
            unknown = sorted(set(images.class_names) - set(names))
            if unknown:
                raise DataError(f"the {name} images hold class {unknown[0]!r}, which no training image holds")
            code = np.asarray([names.index(c) for c in images.class_names], dtype=np.int64)
            labels[name] = code[images.labels]
    result = audit_images(train.images, labels["training"], synthetic.images, labels["synthetic"],
                          holdout_images=holdout.images, holdout_labels=labels["holdout"], epsilon=epsilon,
                          delta=delta, seed=seed, max_images=max_images)
    if not labelled and any(images.labels is not None for images in sets.values()):
        result["notes"].append("labels were used only where all three image sets have them (class sub-folders or "
                               "a labels array); some did not, so labels were left out")
    return result


def image_summary(result: dict[str, Any]) -> list[str]:
    """A few lines for people: quality, utility, leakage, verdict (the image audit's figures)."""
    quality, leakage = result["quality"], result["leakage"]

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [f"Quality: Fréchet distance {num(quality['frechet_distance'])} in a small CNN's features (the same "
             f"distance between two halves of the training images: {num(quality['frechet_distance_floor'])}; "
             "not Inception's FID)"]
    utility = quality["ml_utility"]
    if utility is not None:
        lines.append(f"ML utility (label, {utility['n_classes']} classes): a CNN trained on the synthetic images "
                     f"scores accuracy {num(utility['synthetic']['accuracy'])}; trained on the real training images "
                     f"{num(utility['real']['accuracy'])} (tested on the holdout)")
    if leakage["mia_auc"] is not None:
        low, high = leakage["mia_auc_ci"]
        lines.append(f"Membership inference: best attack {leakage['best_attack']}, AUROC {leakage['mia_auc']:.3f} "
                     f"(95% CI {low:.3f}-{high:.3f}); "
                     + ", ".join(f"{name} {attack['auroc']:.3f}" for name, attack in leakage["attacks"].items()))
        claim = leakage["claimed_epsilon"]
        lines.append(f"Empirical epsilon lower bound: {leakage['empirical_epsilon_lower_bound']:.2f} "
                     f"({leakage['epsilon_bound']['attack']}, delta {leakage['epsilon_bound']['delta']:.3g}); the "
                     f"largest this audit can certify: {leakage['max_certifiable_epsilon']:.2f}"
                     + ("" if claim is None else f"; claimed epsilon: {claim:g}"))
    copies = leakage["exact_copies"]
    lines.append(f"Exact copies: {copies['train_share']:.2%} of synthetic images equal a training image"
                 + ("" if copies["holdout_share"] is None else f", {copies['holdout_share']:.2%} a holdout image"))
    memorised = leakage["memorisation"]
    share = memorised["share_closer_than_holdout_q01"]
    lines.append(f"Memorisation: median distance to the closest training image "
                 f"{memorised['synthetic_to_train']['q50']:.3f} (RMS pixel difference)"
                 + ("" if share is None else f"; {share:.2%} of synthetic images are closer to a training image "
                    "than 99% of holdout images are (about 1% expected)"))
    lines.append(f"Verdict: {leakage['verdict']}")
    for entry in result.get("subsampled", []):
        used = ", ".join(f"{entry['rows_used'][role]:,} of {entry['rows_total'][role]:,} {role.replace('_', ' ')}"
                         for role in entry["rows_used"])
        lines.append(f"Sub-sampled: {entry['metric']}: {used} images")
    lines += [f"Note: {note}" for note in result.get("notes", [])]
    lines.append(f"Note: {leakage['note']}")
    return lines


def closest_pairs(train_images: np.ndarray, synthetic_images: np.ndarray, k: int = 16) -> list[dict[str, Any]]:
    """The ``k`` synthetic images closest to a training image, for the steward to look at locally.

    Returns ``[{"synthetic_index", "train_index", "distance"}]``, closest first. These
    indices point at real images: never put them, or the images, in a released report.
    """
    train, synthetic = _flat(_as_images(train_images, "training")), _flat(_as_images(synthetic_images, "synthetic"))
    distance, nearest = _nearest(train, synthetic)
    order = np.argsort(distance, kind="stable")[:k]
    return [{"synthetic_index": int(i), "train_index": int(nearest[i]), "distance": float(distance[i])}
            for i in order]


# --------------------------------------------------------------------------- inputs


def _as_images(images: Any, what: str) -> np.ndarray:
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.dtype != np.uint8:
        raise DataError(f"the {what} images must be uint8 (N, H, W) or (N, H, W, C), got {array.dtype} {array.shape}")
    if len(array) < 2:
        raise DataError(f"the audit needs at least 2 {what} images, got {len(array)}")
    return array


def _as_labels(labels: Any, images: np.ndarray) -> np.ndarray | None:
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.shape != (len(images),) or not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
        raise DataError(f"labels must be one non-negative integer class code per image, got {array.dtype} "
                        f"{array.shape} for {len(images)} images")
    return array.astype(np.int64)


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def _nearest(reference: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMS pixel distance from each query to its closest reference image, and that image's index."""
    from sklearn.neighbors import NearestNeighbors

    nearest = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(reference).kneighbors(
        queries, return_distance=False)[:, 0]
    # Recomputed exactly: the fast search leaves an exact copy about 1e-4 away.
    distance = np.sqrt(np.mean((queries - reference[nearest]) ** 2, axis=1, dtype=np.float64))
    return distance, nearest


def _subsample(images: np.ndarray, labels: np.ndarray | None, limit: int, rng: np.random.Generator):
    if len(images) <= limit:
        return images, labels
    keep = np.sort(rng.choice(len(images), size=limit, replace=False))
    return images[keep], None if labels is None else labels[keep]


# --------------------------------------------------------------------------- quality


def _quality(train, synthetic, holdout, labels, *, rng, generator, max_images, epochs, log) -> dict[str, Any]:
    sets = {"real_train": (train, labels["train"]), "synthetic": (synthetic, labels["synthetic"])}
    if holdout is not None:
        sets["holdout"] = (holdout, labels["holdout"])
    used = {name: _subsample(images, lab, max_images, rng) for name, (images, lab) in sets.items()}
    log.record("CNN quality metrics (ML utility, Fréchet distance)", {n: len(v[0]) for n, v in used.items()},
               {n: len(v[0]) for n, v in sets.items()})
    n_classes = 1 + max(int(lab.max()) for _, lab in used.values() if lab is not None) if any(
        lab is not None for _, lab in used.values()) else 0
    labelled = holdout is not None and all(lab is not None for _, lab in used.values())

    utility = None
    if labelled:
        (holdout_x, holdout_y) = used["holdout"]
        real_acc = _fit_and_score(*used["real_train"], holdout_x, holdout_y, n_classes, generator, epochs)
        synthetic_acc = _fit_and_score(*used["synthetic"], holdout_x, holdout_y, n_classes, generator, epochs)
        utility = {
            "target": "label",
            "task": "classification",
            "model": "small CNN (2 convolutions, GroupNorm, 2 dense layers), Adam, "
                     f"{epochs} epochs",
            "n_classes": n_classes,
            "synthetic": {"accuracy": synthetic_acc},
            "real": {"accuracy": real_acc},
            "tested_on": "real holdout images",
        }
    else:
        log.note("ML utility needs labels on the training, synthetic and holdout images; it was skipped")

    if holdout is not None and used["holdout"][1] is not None:
        net = _train(*used["holdout"], n_classes, generator, epochs)
        basis = "a CNN trained to classify the real holdout images"
    else:
        net = _small_cnn(train.shape[-1], max(n_classes, 2), generator)
        basis = "an untrained CNN with seeded random weights (no labelled holdout images to train one on)"
        log.note(f"the Fréchet distance was measured in the features of {basis}")
    real_features = _features(net, used["real_train"][0])
    synthetic_features = _features(net, used["synthetic"][0])
    halves = rng.permutation(len(real_features))
    floor = frechet_distance(real_features[halves[::2]], real_features[halves[1::2]])
    return {
        "sdmetrics_score": None,
        "sdmetrics_note": "SDMetrics scores tables; it does not apply to images",
        "ml_utility": utility,
        "frechet_distance": frechet_distance(real_features, synthetic_features),
        "frechet_distance_floor": floor,
        "frechet_distance_note": FRECHET_NOTE,
        "frechet_feature_basis": basis,
    }


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and of ``b``.

    ``|mu_a - mu_b|² + tr(S_a + S_b - 2 (S_a S_b)^½)``; the trace of the square root is
    computed as that of the symmetric ``(S_a^½ S_b S_a^½)^½``, by eigenvalues.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu = a.mean(axis=0) - b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sqrt(np.clip(middle, 0, None)).sum())
    return float(max(mu @ mu + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root, 0.0))


def _small_cnn(channels: int, classes: int, generator):
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.GroupNorm(8, 32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.GroupNorm(8, 64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, FEATURES), nn.ReLU(),
        )
        return nn.Sequential(features, nn.Linear(FEATURES, classes))


def _tensor(images: np.ndarray):
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    if max(x.shape[-2:]) > CNN_SIDE:
        scale = CNN_SIDE / max(x.shape[-2:])
        size = (max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale)))
        x = F.interpolate(x, size=size, mode="area")
    return x


def _train(images, labels, classes, generator, epochs):
    import torch

    net = _small_cnn(images.shape[-1], max(classes, 2), generator)
    x, y = _tensor(images), torch.from_numpy(labels)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), CNN_BATCH):
            batch = order[start:start + CNN_BATCH]
            optimizer.zero_grad()
            loss_fn(net(x[batch]), y[batch]).backward()
            optimizer.step()
    net.eval()
    return net


def _fit_and_score(images, labels, test_images, test_labels, classes, generator, epochs) -> float:
    import torch

    net = _train(images, labels, classes, generator, epochs)
    with torch.no_grad():
        predicted = torch.cat([net(chunk).argmax(1) for chunk in _tensor(test_images).split(1024)])
    return float((predicted.numpy() == test_labels).mean())


def _features(net, images) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.cat([net[0](chunk) for chunk in _tensor(images).split(1024)]).numpy().astype(np.float64)


# --------------------------------------------------------------------------- leakage


def _leakage(train, synthetic, holdout, *, epsilon, delta, rng, max_images, log) -> dict[str, Any]:
    copies = exact_copies(_hash_tables(train, synthetic, holdout), rng)
    result: dict[str, Any] = {"claimed_epsilon": epsilon, "delta": delta}
    searched, _ = _subsample(synthetic, None, max_images, rng)
    train_used, _ = _subsample(train, None, max_images, rng)
    log.record("memorisation (closest training image)", {"synthetic": len(searched), "real_train": len(train_used)},
               {"synthetic": len(synthetic), "real_train": len(train)})
    synthetic_flat, train_flat = _flat(searched), _flat(train_used)
    memorised, _ = _nearest(train_flat, synthetic_flat)
    holdout_distance = None
    if holdout is None or len(holdout) < MIN_HOLDOUT_ROWS:
        log.note(f"membership inference and the ε lower bound need at least {MIN_HOLDOUT_ROWS} holdout images; "
                 + ("none were given" if holdout is None else f"only {len(holdout)} were given") + ", so they were skipped")
        result.update(_skipped())
    else:
        result.update(_membership_inference(train, holdout, synthetic_flat, delta=delta, rng=rng,
                                            max_images=max_images, log=log))
        result.update(_verdict(result, copies, epsilon))
        holdout_used, _ = _subsample(holdout, None, max_images, rng)
        holdout_distance, _ = _nearest(train_flat, _flat(holdout_used))
    result["exact_copies"] = copies
    result["rare_values"] = None
    result["memorisation"] = _memorisation(memorised, holdout_distance)
    result["note"] = NOTE
    return result


def _hash_tables(train, synthetic, holdout) -> SimpleNamespace:
    """One column of per-image hashes per set, so the table audit's copy test applies unchanged."""
    def frame(images):
        digests = [hashlib.blake2b(image.tobytes(), digest_size=8).digest() for image in images]
        return pd.DataFrame({"image": np.frombuffer(b"".join(digests), dtype=np.uint64)})

    return SimpleNamespace(train=frame(train), synthetic=frame(synthetic),
                           holdout=None if holdout is None else frame(holdout))


def _skipped() -> dict[str, Any]:
    return {"mia_auc": None, "mia_auc_ci": None, "best_attack": None, "attacks": {}, "rows": None,
            "empirical_epsilon_lower_bound": None, "epsilon_bound": None, "max_certifiable_epsilon": None,
            "leak_detected": None, "tests": None,
            "verdict": f"not tested: membership inference needs at least {MIN_HOLDOUT_ROWS} holdout images (real "
                       "images the generator never saw) to compare the training images with"}


def _membership_inference(train, holdout, synthetic_flat, *, delta, rng, max_images, log) -> dict[str, Any]:
    members, non_members, reference = split_members(len(train), len(holdout), max_rows=max_images, rng=rng, log=log)
    return run_attacks(
        synthetic_flat, _flat(holdout[reference]), _flat(np.concatenate([train[members], holdout[non_members]])),
        delta=delta, rng=rng, max_rows=max_images,
        descriptions={
            "distance_to_closest_record": "minus the Euclidean pixel distance from the image to its closest "
                                          "synthetic image",
            "density_ratio": "DOMIAS: log of the density of the synthetic images over that of a real reference "
                             "sample (half the holdout), at the image; 1-nearest-neighbour densities in 8 whitened "
                             "PCA dimensions of pixel space",
        },
    )


def _memorisation(synthetic_distance: np.ndarray, holdout_distance: np.ndarray | None) -> dict[str, Any]:
    def quantiles(values):
        return {f"q{round(q * 100):02d}": float(np.quantile(values, q)) for q in QUANTILES}

    result: dict[str, Any] = {
        "metric": "root-mean-square pixel difference (pixels in [0, 1]) to the closest training image",
        "synthetic_to_train": quantiles(synthetic_distance),
        "holdout_to_train": None,
        "share_closer_than_holdout_q01": None,
    }
    if holdout_distance is not None and len(holdout_distance):
        threshold = float(np.quantile(holdout_distance, 0.01))
        result["holdout_to_train"] = quantiles(holdout_distance)
        result["share_closer_than_holdout_q01"] = float((synthetic_distance < threshold).mean())
        result["explain"] = ("a synthetic image much closer to a training image than real unseen images are may be a "
                             "near copy; about 1% of synthetic images are expected below the holdout's 1% quantile")
    return result


# --------------------------------------------------------------------------- the public (DP) audit


#: Most members (and as many non-members) the public membership attack scores.
PUBLIC_MEMBERSHIP_SAMPLE = 2000


def public_image_audit(model, train_images: np.ndarray, train_labels: np.ndarray | None,
                       holdout_images: np.ndarray | None, holdout_labels: np.ndarray | None,
                       synthetic_images: np.ndarray, synthetic_labels: np.ndarray | None, *,
                       holdout_fraction: float, seed: int = 0) -> dict[str, Any]:
    """The audit section of an image release's public report: DP figures only.

    Fidelity (free): the synthetic class shares against the model's noisy label counts.
    Noisy counts (the ledger's ``"audit"`` step, see :mod:`synthdata.audit.private`): the
    accuracy on real holdout images of a small CNN trained on the synthetic images alone;
    a nearest-neighbour membership attack on pixels over equally many members and
    non-members (a number fixed from DP counts); exact copies.
    """
    import torch

    from ..audit.private import (AUDIT_STEP, MEMBERSHIP_SKIPPED, UTILITY_SKIPPED, holdout_count,
                                 membership_sample_size, release_audit_figures, utility_worth_releasing)

    result: dict[str, Any] = {"fidelity": _class_fidelity(model, synthetic_labels)}
    ledger = model.ledger_
    if ledger.plan_ is None or AUDIT_STEP not in ledger.plan_.sigmas:
        result["figures"] = None
        result["note"] = "no share of the budget was reserved for audit figures"
        return result
    rng = ledger.noise.generator()
    train = _as_images(train_images, "training")
    synthetic = _as_images(synthetic_images, "synthetic")
    holdout = _as_images(holdout_images, "holdout") if holdout_images is not None and len(holdout_images) else None
    correct = None
    n_train = float(model.n_images_)  # a DP count; the fraction is public
    n_holdout = holdout_count(n_train, holdout_fraction)
    wanted = holdout is not None and holdout_labels is not None and synthetic_labels is not None
    worth = wanted and utility_worth_releasing(ledger, n_holdout=n_holdout)
    if worth:  # else the CNN is not even trained: its figure would not be released
        classes = int(max(np.max(holdout_labels), np.max(synthetic_labels))) + 1
        generator = torch.Generator().manual_seed(int(seed))
        net = _train(synthetic, np.asarray(synthetic_labels, dtype=np.int64), classes, generator, CNN_EPOCHS)
        with torch.no_grad():
            predicted = torch.cat([net(chunk).argmax(1) for chunk in _tensor(holdout).split(1024)]).numpy()
        correct = predicted == np.asarray(holdout_labels)
    m = membership_sample_size(ledger, n_train=n_train, n_holdout=n_holdout, utility=correct is not None,
                               limit=PUBLIC_MEMBERSHIP_SAMPLE)
    members = non_members = threshold = None
    pool = _flat(synthetic[: min(len(synthetic), MAX_IMAGES)])
    if m and holdout is not None:
        take = lambda images: _flat(images[rng.choice(len(images), min(m, len(images)), replace=False)])  # noqa: E731
        members = -_nearest(pool, take(train))[0]
        non_members = -_nearest(pool, take(holdout))[0]
        m = min(len(members), len(non_members))
        members, non_members = members[:m], non_members[:m]
        threshold = -_self_quantile(pool, 0.01)
    digest = lambda images: {hashlib.sha256(image.tobytes()).hexdigest() for image in images}  # noqa: E731
    synthetic_set = digest(synthetic)
    copies_train = sum(hashlib.sha256(image.tobytes()).hexdigest() in synthetic_set for image in train)
    copies_holdout = 0 if holdout is None else sum(hashlib.sha256(image.tobytes()).hexdigest() in synthetic_set
                                                   for image in holdout)
    figures = release_audit_figures(ledger, correct=correct, member_scores=members, non_member_scores=non_members,
                                    threshold=threshold, copies_train=copies_train, copies_holdout=copies_holdout,
                                    majority_share=_majority(model), what="images",
                                    membership_skipped=None if m else MEMBERSHIP_SKIPPED,
                                    utility_skipped=UTILITY_SKIPPED if wanted and not worth else None)
    result["figures"] = figures
    membership = figures.get("membership")
    result["verdict"] = ("membership not tested publicly: too few images for the attack at this budget" if membership is None
                         else f"no violation detected: membership attack AUC {membership['auc']:.3f} "
                              f"(± {2 * membership['auc_noise_std']:.3f} from the audit's own noise); 0.5 is chance"
                         if membership["epsilon_lower_bound"] <= ledger.epsilon else
                         f"VIOLATION: the membership attack proves epsilon >= {membership['epsilon_lower_bound']:.2f}")
    return result


def _class_fidelity(model, synthetic_labels: np.ndarray | None) -> dict[str, Any]:
    if synthetic_labels is None or not getattr(model, "has_labels_", False):
        return {"class_share_tvd_to_dp_counts": None}
    weights = np.asarray(model.class_weights_, dtype=float)
    index = np.searchsorted(model.classes_, synthetic_labels)
    observed = np.bincount(index, minlength=len(weights)) / max(len(index), 1)
    return {"class_share_tvd_to_dp_counts": float(0.5 * np.abs(observed - weights).sum()),
            "note": "synthetic class shares against the model's noisy label counts (post-processing of DP outputs)"}


def _majority(model) -> float | None:
    weights = np.asarray(getattr(model, "class_weights_", []), dtype=float)
    return float(weights.max()) if weights.size and getattr(model, "has_labels_", False) else None


def _self_quantile(pool: np.ndarray, quantile: float) -> float:
    from sklearn.neighbors import NearestNeighbors

    sample = pool[: min(len(pool), 2000)]
    if len(sample) < 3:
        return 0.0
    distances, _ = NearestNeighbors(n_neighbors=2, algorithm="brute").fit(pool).kneighbors(sample)
    return float(np.quantile(distances[:, 1], quantile) / math.sqrt(pool.shape[1]))  # RMS, as _nearest
