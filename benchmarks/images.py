"""ImageGAN on the 8x8 digits: fit time, train-on-synthetic/test-on-real accuracy, Fréchet distance.

    python benchmarks/images.py [--epsilons 10 1] [--threads 2]

The 1,797 digits (sample_datasets/digits.npz, 8x8, bytes 0..255) are split once (seed 0):
80% train the generator, 20% are the real test set it never sees. For each epsilon
(delta=1e-5, the label domain 0..9 declared public, all other settings the defaults):

* fit time of ``ImageGAN.fit``;
* TSTR: a small CNN trained on 2,000 synthetic digits, tested on the real test set,
  beside the same CNN trained on the real training digits (TRTR);
* Fréchet distance in the penultimate layer of a CNN trained here on the real test
  images — **not Inception** (pretrained weights cannot be downloaded) — between the
  synthetic digits and the real test set; the real training digits give the floor;
* the DP-SGD discriminator's step time over a plain (non-private) step, same batch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from torch import nn
from torch.nn import functional as F

from synthdata.models import ImageGAN
from synthdata.models.images import ImageDiscriminator, per_sample_gradients

DIGITS = Path(__file__).resolve().parents[1] / "sample_datasets" / "digits.npz"


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(images, dtype=torch.float32)[:, None] / 255.0


def train_cnn(images: np.ndarray, labels: np.ndarray, *, epochs: int = 30, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model, x, y = cnn(), as_tensor(images), torch.as_tensor(labels, dtype=torch.long)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(as_tensor(images)).argmax(1).numpy() == labels).mean())


def frechet(model: nn.Module, a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the penultimate-layer features."""
    with torch.no_grad():
        fa, fb = (model[:-1](as_tensor(x)).double().numpy() for x in (a, b))
    mean = np.sum((fa.mean(0) - fb.mean(0)) ** 2)
    ridge = 1e-6 * np.eye(fa.shape[1])  # dead ReLU units make the covariances singular
    ca, cb = np.cov(fa, rowvar=False) + ridge, np.cov(fb, rowvar=False) + ridge
    root = linalg.sqrtm(ca @ cb).real
    return float(mean + np.trace(ca + cb - 2 * root))


def step_ratio(batch: int = 64, steps: int = 40) -> float:
    """DP discriminator step (per-sample grads + clip + noise) over a plain step, same batch."""
    from opacus.optimizers import DPOptimizer

    images, labels = torch.rand(2 * batch, 1, 8, 8), torch.randint(10, (2 * batch,))
    targets = torch.cat([torch.ones(batch), torch.zeros(batch)])
    plain_d, dp_d = ImageDiscriminator(classes=10, channels=1), ImageDiscriminator(classes=10, channels=1)
    plain = torch.optim.Adam(plain_d.parameters())
    dp = DPOptimizer(torch.optim.Adam(dp_d.parameters()), noise_multiplier=1.0, max_grad_norm=1.0,
                     expected_batch_size=2 * batch)

    def plain_step():
        plain.zero_grad()
        F.binary_cross_entropy_with_logits(plain_d(images, labels), targets).backward()
        plain.step()

    def dp_step():
        dp.zero_grad(set_to_none=True)
        grads, _ = per_sample_gradients(dp_d, images, labels, targets)
        for name, p in dp_d.named_parameters():
            p.grad_sample = grads[name]
        dp.step()

    timings = []
    for step in (plain_step, dp_step):
        for _ in range(5):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        timings.append((time.perf_counter() - start) / steps)
    return timings[1] / timings[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[10.0, 1.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--discriminator", type=float, default=None,
                        help="budget share of the DP discriminator (default: the model's default)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = np.load(DIGITS)
    images, labels = data["images"], data["labels"]
    order = np.random.default_rng(0).permutation(len(images))
    test, train = order[: len(order) // 5], order[len(order) // 5:]
    results = {"data": f"8x8 digits: {len(train)} train, {len(test)} real test", "threads": args.threads}

    judge = train_cnn(images[test], labels[test], seed=1)  # the Fréchet feature space
    real_cnn = train_cnn(images[train], labels[train])
    results["trtr_accuracy"] = accuracy(real_cnn, images[test], labels[test])
    results["frechet_real_train_vs_test"] = frechet(judge, images[train], images[test])
    results["dp_over_plain_discriminator_step"] = step_ratio()
    for epsilon in args.epsilons:
        split = None if args.discriminator is None else {"discriminator": args.discriminator}
        model = ImageGAN(epsilon=epsilon, delta=1e-5, seed=0, classes=range(10), budget_split=split)
        start = time.perf_counter()
        model.fit(images[train], labels[train])
        fit_s = time.perf_counter() - start
        synthetic, synthetic_labels = model.sample(2000, seed=1)
        tstr = train_cnn(synthetic, synthetic_labels)
        results[f"epsilon={epsilon:g}"] = {
            "fit_s": round(fit_s, 1),
            "epsilon_spent": model.epsilon_spent_,
            "ledger": [[s.step, round(s.epsilon, 4)] for s in model.ledger_.spends],
            "tstr_accuracy": accuracy(tstr, images[test], labels[test]),
            "frechet_synthetic_vs_test (CNN trained here, not Inception)": frechet(judge, synthetic, images[test]),
        }
        print(json.dumps({f"epsilon={epsilon:g}": results[f"epsilon={epsilon:g}"]}), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
