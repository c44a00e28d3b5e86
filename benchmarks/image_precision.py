"""What a generator step of the image model costs in float32 and in bfloat16, side by side.

``ImageGAN(precision=...)`` trains the generator (post-processing of the releases) in
bfloat16 where the device computes it natively ("auto"). This times the model's own fit at
two step counts for each precision, interleaved so that a busy machine slows both alike,
and prints the cost of one generator step (the difference of the two fits over the extra
steps: the releases, the DP discriminator and the setup cancel out) and the ratio.

    python benchmarks/image_precision.py                      # 28x28, one thread
    python benchmarks/image_precision.py --threads 2 --size 32 --channels 3

The images are random pixels: a step costs the same whatever they show. What the two
precisions do to the synthetic images' quality is measured with benchmarks/images.py
(``--option precision='"float32"'``), not here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synthdata import ImageGAN  # noqa: E402
from synthdata.runtime import configure_threads, resolve_precision  # noqa: E402


def fit_seconds(images, labels, precision: str, steps: int) -> tuple[float, float]:
    """Wall and CPU seconds of one fit (CPU time is the steadier figure on a shared machine)."""
    model = ImageGAN(epsilon=10.0, delta=1e-6, classes=range(10), seed=0, device="cpu", generator_steps=steps,
                     precision=precision, budget_split={"discriminator": 0.0})
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(images, labels)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=60, help="extra generator steps timed per fit")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configure_threads(args.threads)
    rng = np.random.default_rng(0)
    shape = (args.images, args.size, args.size) + ((args.channels,) if args.channels > 1 else ())
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    labels = rng.integers(0, 10, args.images)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, images {shape}, "
          f"auto = {resolve_precision('auto', torch.device('cpu'))}", flush=True)
    per_step: dict[str, dict[str, list[float]]] = {p: {"wall": [], "cpu": []} for p in ("float32", "bfloat16")}
    for _ in range(args.repeats):
        for precision, figures in per_step.items():
            short = fit_seconds(images, labels, precision, 5)
            long = fit_seconds(images, labels, precision, 5 + args.steps)
            figures["wall"].append((long[0] - short[0]) / args.steps)
            figures["cpu"].append((long[1] - short[1]) / args.steps)
    for precision, figures in per_step.items():
        print(f"{precision:9s} generator step: " + "; ".join(
            f"{kind} median {1000 * statistics.median(values):6.1f} ms (runs "
            f"{', '.join(f'{1000 * v:.0f}' for v in values)})" for kind, values in figures.items()))
    for kind in ("wall", "cpu"):
        ratio = statistics.median(per_step["bfloat16"][kind]) / statistics.median(per_step["float32"][kind])
        print(f"bfloat16 / float32 ({kind}): {ratio:.2f}")


if __name__ == "__main__":
    main()
