"""DP-SGD through Opacus' DP optimizers, with the gradient noise drawn from a :class:`NoiseSource`.

Opacus clips, sums and scales exactly as it always does; only where the Gaussian noise
comes from changes: a CSPRNG-keyed source (see :mod:`synthdata.privacy.noise`) instead of
torch's seeded generator, which a saved seed or a checkpointed RNG state would replay.
:func:`make_dp_optimizer` wraps an optimizer and hooks every step onto the ledger.
"""

from __future__ import annotations

from typing import Any

import torch
from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

from .ledger import PrivacyLedger
from .noise import NoiseSource

__all__ = ["make_dp_optimizer"]


class _SecureNoise:
    """Replaces Opacus' noise draw; everything else of the DP optimizer is unchanged."""

    noise_source: NoiseSource

    def add_noise(self) -> None:
        multiplier = getattr(self, "_adjusted_noise_multiplier", self.noise_multiplier)
        std = multiplier * self.max_grad_norm
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            noise = self.noise_source.torch_gaussian(std, p.summed_grad)
            p.grad = (p.summed_grad + noise).view_as(p)
            _mark_as_processed(p.summed_grad)


class SecureDPOptimizer(_SecureNoise, DPOptimizer):
    """Opacus' DPOptimizer (per-sample gradients in ``p.grad_sample``) with secure noise."""


class SecureDPOptimizerFastGradientClipping(_SecureNoise, DPOptimizerFastGradientClipping):
    """Opacus' optimizer for gradients clipped before it sees them, with secure noise."""


def make_dp_optimizer(optimizer: torch.optim.Optimizer, *, ledger: PrivacyLedger, step: str,
                      noise_multiplier: float, max_grad_norm: float, sample_rate: float,
                      expected_batch_size: int, clipped_before: bool = False,
                      parameters: dict[str, Any] | None = None):
    """Wrap ``optimizer`` for DP-SGD: Opacus clipping/noise, noise from ``ledger.noise``,
    every ``step()`` recorded on ``ledger`` under ``step`` (and refused past the target).

    ``clipped_before``: the caller sets ``p.grad`` to the sum of clipped per-sample
    gradients itself (book-keeping clipping); otherwise ``p.grad_sample`` holds them.
    With a :class:`~synthdata.privacy.distributed.SharedReleaseLedger` in a ``torch.distributed``
    group (torchrun), each process holds its own part of the batch, the noise is added on
    rank 0 only and the parts are summed; ``expected_batch_size`` is the whole batch's.
    """
    from .distributed import distributed_optimizer_class

    cls = distributed_optimizer_class(ledger, clipped_before=clipped_before)
    if cls is None:
        cls = SecureDPOptimizerFastGradientClipping if clipped_before else SecureDPOptimizer
    dp_optimizer = cls(optimizer, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
                       expected_batch_size=expected_batch_size, loss_reduction="mean")
    dp_optimizer.noise_source = ledger.noise
    dp_optimizer.attach_step_hook(ledger.dpsgd_hook(step, noise_multiplier=noise_multiplier, sample_rate=sample_rate,
                                                    max_grad_norm=max_grad_norm, parameters=parameters))
    return dp_optimizer
