"""Where privacy noise comes from: the operating system's cryptographic entropy, never a seed.

Anyone who can reproduce the noise added to a count can subtract it. So every random
draw the privacy guarantee rests on — noise on counts, scores and embeddings, DP-SGD's
gradient noise, and which rows a Poisson batch or the holdout takes — comes from a
:class:`NoiseSource` that draws fresh entropy from the OS (``os.urandom``, at least 256
bits) and keeps no seed anywhere: not in model files, checkpoints, reports or logs. A
resumed fit draws new noise; it never replays old noise.

The samplers, by what they draw:

* **integer counts** (histograms, marginals, label counts): OpenDP's exact discrete
  Gaussian (:func:`opendp.measurements.make_gaussian` on integers) and discrete Laplace,
  sampled in Rust from the OS CSPRNG, with no floating-point arithmetic to attack. The
  discrete Gaussian has the continuous one's Rényi-DP curve (Canonne, Kamath & Steinke
  2020), so the accountant is unchanged;
* **real vectors** (selection scores, embeddings) and **DP-SGD's gradient noise**:
  Gaussians from a ChaCha20 keystream keyed with 256 bits of OS entropy
  (``cryptography``), by the Box–Muller transform in double precision; each sample is
  the sum of two such draws scaled by 1/√2, the defence Opacus' ``secure_mode`` uses
  against the floating-point attacks on Gaussian noise (Holohan et al. 2021; Haney et
  al. 2022);
* **sampling decisions** (Poisson batches, the holdout split): a NumPy generator keyed
  with 256 bits of OS entropy, re-keyed for every source; its state is never written.

``NoiseSource(seed=...)`` exists for tests only: it makes every draw reproducible, which
destroys the privacy guarantee, so it says so (:attr:`NoiseSource.secure` is False and a
release states it in its report).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..errors import PrivacyError

__all__ = ["NoiseSource", "SECURE_DESCRIPTION"]

SECURE_DESCRIPTION = (
    "OS cryptographic entropy: OpenDP exact discrete Gaussian/Laplace for counts; ChaCha20-keyed "
    "Gaussians for released real values (sum of two, as Opacus secure_mode) and for DP-SGD's gradient noise; "
    "no seed is kept"
)
INSECURE_DESCRIPTION = "SEEDED FOR TESTING: the noise is reproducible from a seed and protects nothing"

_OPENDP_READY = False


def _opendp():
    global _OPENDP_READY
    import opendp.prelude as dp

    if not _OPENDP_READY:
        dp.enable_features("contrib")
        _OPENDP_READY = True
    return dp


class _ChaChaStream:
    """Uniform doubles in (0, 1) from a ChaCha20 keystream keyed with fresh OS entropy.

    The cipher's 16-byte nonce is a 4-byte block counter (from 0) and 12 random bytes; a
    stream is re-keyed long before the counter's 256 GiB would wrap.
    """

    _REKEY_BYTES = 1 << 36

    def __init__(self) -> None:
        self._rekey()

    def _rekey(self) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

        nonce = bytes(4) + os.urandom(12)
        self._encryptor = Cipher(algorithms.ChaCha20(os.urandom(32), nonce), mode=None).encryptor()
        self._used = 0

    def bytes(self, count: int) -> bytes:
        if self._used + count > self._REKEY_BYTES:
            self._rekey()
        self._used += count
        return self._encryptor.update(bytes(count))

    def uniform(self, n: int) -> np.ndarray:
        raw = self.bytes(8 * n)
        words = np.frombuffer(raw, dtype=np.uint64) >> np.uint64(11)  # 53 random bits
        return (words.astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


class NoiseSource:
    """The source of every random draw the privacy guarantee rests on.

    By default cryptographically secure and unreproducible (see the module docstring).
    ``seed`` (tests only) makes every draw reproducible and the release unprivate.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._seed = seed
        if seed is None:
            self._stream: _ChaChaStream | None = _ChaChaStream()
            self._rng = np.random.Generator(np.random.PCG64DXSM(int.from_bytes(os.urandom(32), "little")))
        else:
            self._stream = None
            self._rng = np.random.default_rng([int(seed), 0x5EED])

    def __repr__(self) -> str:
        return "NoiseSource(secure)" if self.secure else "NoiseSource(seeded: NOT PRIVATE)"

    # ------------------------------------------------------------------ description

    @property
    def secure(self) -> bool:
        """Whether the noise comes from the OS CSPRNG (False only for a test seed)."""
        return self._seed is None

    @property
    def description(self) -> str:
        return SECURE_DESCRIPTION if self.secure else INSECURE_DESCRIPTION

    # ------------------------------------------------------------------ noise

    def integer_gaussian(self, counts: Any, sigma: float) -> np.ndarray:
        """``counts`` (integers) plus exact discrete Gaussian noise of scale ``sigma``."""
        values = np.asarray(counts, dtype=np.int64)
        _check_scale(sigma)
        if values.size == 0:
            return values.astype(np.int64)
        if not self.secure:
            return values + np.round(self._rng.normal(0.0, sigma, values.shape)).astype(np.int64)
        dp = _opendp()
        flat = values.ravel()
        measurement = dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int),
                                         scale=float(sigma))
        noisy = np.asarray(measurement([int(v) for v in flat]), dtype=np.int64)
        return noisy.reshape(values.shape)

    def integer_laplace(self, count: int, scale: float) -> int:
        """``count`` plus exact discrete Laplace noise of scale ``scale`` (ε = sensitivity / scale)."""
        _check_scale(scale)
        if not self.secure:
            return int(count) + int(np.round(self._rng.laplace(0.0, scale)))
        dp = _opendp()
        measurement = dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=float(scale))
        return int(measurement(int(count)))

    def gaussian(self, shape: int | tuple[int, ...], sigma: float) -> np.ndarray:
        """Real Gaussian noise of standard deviation ``sigma`` (float64)."""
        _check_scale(sigma)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        n = int(np.prod(shape)) if shape else 1
        if not self.secure:
            return self._rng.normal(0.0, sigma, shape)
        # Two Box–Muller normals summed and scaled: the same standard deviation, and a
        # floating-point value no longer reveals its uniform inputs (Opacus secure_mode).
        first, second = self._standard_normals(n), self._standard_normals(n)
        return ((first + second) * (sigma / np.sqrt(2.0))).reshape(shape)

    def _standard_normals(self, n: int) -> np.ndarray:
        half = (n + 1) // 2
        u = self._stream.uniform(2 * half)
        radius = np.sqrt(-2.0 * np.log(u[:half]))
        angle = 2.0 * np.pi * u[half:]
        return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:n]

    def torch_gaussian(self, std: float, reference):
        """DP-SGD noise shaped like tensor ``reference`` (same dtype and device).

        Box–Muller in torch, in the reference's precision, from ChaCha20 uniforms: the
        noise is added to gradients and never published as such, so the floating-point
        attacks on released noisy values (which the two-draw sum of :meth:`gaussian` guards
        against) have nothing to read; one draw keeps a DP-SGD step cheap.
        """
        import torch

        if std == 0:
            return torch.zeros_like(reference)
        n = reference.numel()
        if not self.secure:
            noise = torch.as_tensor(self._rng.standard_normal(n), dtype=reference.dtype)
        else:
            half = (n + 1) // 2
            words = np.frombuffer(self._stream.bytes(8 * half), dtype=np.uint32)
            u = (torch.from_numpy(words.astype(np.float64)) + 0.5) * (1.0 / 4294967296.0)
            u = u.to(torch.float32 if reference.dtype != torch.float64 else torch.float64)
            radius = torch.sqrt(-2.0 * torch.log(u[:half]))
            angle = (2.0 * math.pi) * u[half:]
            noise = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)])[:n]
        return noise.mul_(float(std)).reshape(reference.shape).to(dtype=reference.dtype, device=reference.device)

    # ------------------------------------------------------------------ sampling decisions

    def poisson_sample(self, n: int, rate: float) -> np.ndarray:
        """Indices of a Poisson sample of ``n`` items: each in independently with probability ``rate``.

        Binomial(n, rate) then a uniform subset of that size: the same distribution as n
        coin flips, in O(batch) rather than O(n).
        """
        return self._rng.choice(n, size=int(self._rng.binomial(n, rate)), replace=False, shuffle=False)

    def bernoulli(self, n: int, p: float) -> np.ndarray:
        """``n`` independent coin flips, each True with probability ``p``."""
        return self._rng.random(n) < p

    def generator(self) -> np.random.Generator:
        """A NumPy generator for sampling decisions (keyed from this source; never saved)."""
        return np.random.Generator(np.random.PCG64DXSM(self._rng.integers(0, 2**63, size=4).tolist()))


def _check_scale(scale: float) -> None:
    if not (isinstance(scale, (int, float, np.floating)) and np.isfinite(scale) and scale > 0):
        raise PrivacyError(f"a noise scale must be a positive finite number, got {scale!r}")
