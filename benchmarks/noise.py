"""What secure privacy noise costs: OpenDP and ChaCha20 samplers beside numpy's and torch's.

Every privacy draw in synthdata comes from ``synthdata.privacy.NoiseSource`` (the OS
CSPRNG): OpenDP's exact discrete Gaussian for counts, ChaCha20-keyed Gaussians (two draws
summed, as Opacus' secure_mode) for real values and DP-SGD's gradient noise. This prints,
side by side in one run, the time of each beside the insecure sampler it replaced
(``numpy.random.Generator.normal``, ``torch.normal``), at the sizes a fit uses: a table's
histograms (~1e3 cells), its 2-way marginals (~1e4), a large release (~1e5), and one DP-SGD
step of the tabular discriminator (~5e4 parameters) and of a conv discriminator (~3e5).
It also prints how long planning the noise of a fit takes (the RDP search behind
``plan_noise``), which every fit and every pre-flight does once.

    .venv/bin/python benchmarks/noise.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

from synthdata.privacy import NoiseSource


def _time(fn, repeats: int) -> float:
    fn()  # warm up (OpenDP builds its measurement once)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    torch.set_num_threads(1)
    secure, rng = NoiseSource(), np.random.default_rng(0)
    print(f"{'what':<44} {'size':>8} {'insecure':>12} {'secure':>12} {'ratio':>7}")
    for size, repeats in ((1_000, 50), (10_000, 10), (100_000, 3)):
        counts = np.zeros(size, dtype=np.int64)
        plain = _time(lambda: counts + np.round(rng.normal(0, 30.0, size)).astype(np.int64), repeats)
        exact = _time(lambda: secure.integer_gaussian(counts, 30.0), repeats)
        print(f"{'counts: discrete Gaussian (OpenDP) vs numpy':<44} {size:>8,} {plain * 1e3:>10.2f}ms "
              f"{exact * 1e3:>10.2f}ms {exact / plain:>7.1f}")
    for size, repeats in ((1_000, 200), (100_000, 20)):
        plain = _time(lambda: rng.normal(0, 1.0, size), repeats)
        chacha = _time(lambda: secure.gaussian(size, 1.0), repeats)
        print(f"{'reals: ChaCha20 Gaussian vs numpy':<44} {size:>8,} {plain * 1e3:>10.3f}ms "
              f"{chacha * 1e3:>10.3f}ms {chacha / plain:>7.1f}")
    for size, repeats in ((50_000, 200), (300_000, 50)):
        reference = torch.zeros(size)
        plain = _time(lambda: torch.normal(0.0, 1.0, size=(size,)), repeats)
        chacha = _time(lambda: secure.torch_gaussian(1.0, reference), repeats)
        print(f"{'DP-SGD step noise: ChaCha20 vs torch.normal':<44} {size:>8,} {plain * 1e3:>10.3f}ms "
              f"{chacha * 1e3:>10.3f}ms {chacha / plain:>7.1f}")
    from synthdata.privacy import DPSGDRequest, GaussianRequest, plan_noise

    gaussians = {"bounds": GaussianRequest(sensitivity=1.0, share=0.1),
                 "marginals": GaussianRequest(sensitivity=2 ** 0.5, share=0.2)}
    seconds = _time(lambda: plan_noise(epsilon=2, delta=1e-6, gaussians=gaussians,
                                       dpsgd=DPSGDRequest(sample_rate=0.03, steps=700, share=0.6)), 5)
    print(f"planning a fit's noise (plan_noise, 2 Gaussians + 700 DP-SGD steps): {seconds * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
