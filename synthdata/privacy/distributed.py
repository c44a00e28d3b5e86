"""DP-SGD and private releases over several processes (``torch.distributed``, launched by torchrun).

Opacus' :class:`~opacus.optimizers.DistributedDPOptimizer` is the model: every process
clips its own per-sample gradients and sums them; the Gaussian noise is added on rank 0
only; an all-reduce sums the processes' gradients. The sum every process then holds is
exactly the single-process DP-SGD release: the sum of the clipped per-sample gradients of
the whole (union) batch plus one draw of N(0, (σC)²) — noise added once, not once per
process. Two things change from Opacus':

* the noise is drawn from the ledger's CSPRNG :class:`~synthdata.privacy.NoiseSource`
  (as :func:`~synthdata.privacy.dpsgd.make_dp_optimizer` does for one process);
* ``expected_batch_size`` is the *whole* batch's expected size (q times the images of all
  processes), so the processes' gradients are summed, not averaged: the update is the
  single-process one, whatever the number of processes.

:class:`SharedReleaseLedger` makes the other private releases (the DP count, noisy
histograms, noisy embeddings) one release for all processes: every process records the
same spend; rank 0's noisy output is the one every process uses (the others' draws are
thrown away unseen), so every process plans the same steps from the same DP count.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.distributed as dist
from opacus.optimizers import DistributedDPOptimizer, DistributedDPOptimizerFastGradientClipping
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

from ..errors import PrivacyError
from .ledger import PrivacyLedger
from .noise import NoiseSource

__all__ = ["SecureDistributedDPOptimizer", "SecureDistributedDPOptimizerFastGradientClipping",
           "SharedReleaseLedger", "distributed_optimizer_class", "distributed_world"]


def distributed_world() -> int:
    """The number of processes of the default ``torch.distributed`` group (1: not distributed)."""
    if not dist.is_available() or not dist.is_initialized():
        return 1
    return dist.get_world_size()


def distributed_optimizer_class(ledger: PrivacyLedger, *, clipped_before: bool) -> type | None:
    """The DP optimizer class for DP-SGD across the processes of a group; None for one process.

    Several processes are trained as one only by a fit made for it, which says so with a
    :class:`SharedReleaseLedger` (and gives each process its own part of the data). Any
    other DP-SGD in a group of several processes is refused: each process would sample the
    whole data and add its own noise, W releases where one was planned.
    """
    world = distributed_world()
    if world == 1:
        return None
    if not isinstance(ledger, SharedReleaseLedger) or not ledger.shared_training:
        raise PrivacyError(f"DP-SGD in a torch.distributed group of {world} processes by a model whose training "
                           "is not made for several processes; run it in one process (without torchrun)")
    return SecureDistributedDPOptimizerFastGradientClipping if clipped_before else SecureDistributedDPOptimizer


class _DistributedSecureNoise:
    """Noise from the CSPRNG on rank 0 only (as ``dpsgd._SecureNoise`` draws it for one process);
    the processes' gradients summed, not averaged."""

    rank: int
    noise_source: NoiseSource

    def add_noise(self) -> None:
        std = getattr(self, "_adjusted_noise_multiplier", self.noise_multiplier) * self.max_grad_norm
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            if self.rank == 0:
                p.grad = (p.summed_grad + self.noise_source.torch_gaussian(std, p.summed_grad)).view_as(p)
            else:
                p.grad = p.summed_grad.view_as(p).clone()
            _mark_as_processed(p.summed_grad)

    def reduce_gradients(self) -> None:
        # Each process scaled its part by 1/expected_batch_size (the whole batch's); the sum is the
        # single-process gradient. Opacus' default would divide by the world size as well.
        for p in self.params:
            if p.requires_grad and p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        if closure is not None:
            with torch.enable_grad():
                closure()
        if self.pre_step():
            self.reduce_gradients()
            return self.original_optimizer.step()
        return None


class SecureDistributedDPOptimizer(_DistributedSecureNoise, DistributedDPOptimizer):
    """Opacus' DistributedDPOptimizer with CSPRNG noise (rank 0) and whole-batch scaling."""


class SecureDistributedDPOptimizerFastGradientClipping(_DistributedSecureNoise,
                                                       DistributedDPOptimizerFastGradientClipping):
    """The same for gradients clipped before the optimizer sees them."""


class SharedReleaseLedger(PrivacyLedger):
    """A ledger whose noisy releases are one release across the processes of a group.

    Each process calls the same releases in the same order (a collective, like any
    ``torch.distributed`` call); each records the spend exactly as a single process would;
    rank 0's noisy output is broadcast and returned by every process. :meth:`detach` ends
    the sharing (after it, a release is this process's own, e.g. rank 0's audit figures).
    DP-SGD steps are recorded by each process's own step hook.
    """

    def __init__(self, *, group: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shared = True
        #: DP-SGD steps are taken together by the group's processes (see distributed_optimizer_class).
        self.shared_training = True
        self._group = group

    def detach(self) -> None:
        """Releases from now on are this process's own."""
        self.shared = False

    def _rank0(self, value: Any) -> Any:
        if not self.shared or distributed_world() == 1:
            return value
        box = [value if dist.get_rank(self._group) == 0 else None]
        dist.broadcast_object_list(box, src=0, group=self._group)
        return box[0]

    def noisy_count(self, step: str, count: int, **kwargs: Any) -> int:
        return self._rank0(super().noisy_count(step, count, **kwargs))

    def noisy(self, step: str, values: Any, **kwargs: Any) -> Any:
        return self._rank0(super().noisy(step, values, **kwargs))
