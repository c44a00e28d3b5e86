"""Image training on several processes (GPUs, or CPU processes) under ``torchrun``.

    torchrun --nproc_per_node 2 -m synthdata release IMAGES --epsilon 1 --out rel

Every process reads the images; the release runs on rank 0, which hands the fit to the
others (:func:`send_fit` / :func:`serve_fit`) and alone writes files, reports and the
budget ledger. Inside :meth:`ImageGAN.fit <synthdata.images.estimator.ImageGAN.fit>`:

* **one ledger, one plan**: the DP image count, the label histogram and the mean
  embeddings are released once (rank 0's noisy outputs, broadcast; every process records
  the same spends: :class:`~synthdata.privacy.distributed.SharedReleaseLedger`), so every
  process plans the same q, σ and steps from the same DP count;
* **Poisson sampling that composes to the accountant's rate**: process r holds the images
  r, r+W, r+2W, … and takes each of them into a step's batch independently with
  probability q (its own CSPRNG); the parts partition the images, so the union batch
  takes every image independently with probability q: the single-process sampling;
* **DP-SGD with Opacus' distributed DP optimizer**: each process clips and sums its
  part; the noise (CSPRNG, from the ledger) is added once, on rank 0; an all-reduce sums
  the parts (:mod:`synthdata.privacy.distributed`). Every process records every step, so
  every ledger equals the single-process one for the same q, σ and steps;
* the networks start from rank 0's weights (as Opacus' ``DPDDP`` does); each process
  draws its own fake images (its share of the batch) and generator noise, and the
  generator's gradients are averaged, so every process holds the same weights.

The backend is NCCL when the model runs on CUDA (one GPU per process, ``LOCAL_RANK``),
gloo on CPU. Checkpoints and the image VAE are single-process only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist

from ..errors import ModelError
from ..privacy import NoiseSource

__all__ = ["Cluster", "abort_fit", "current_cluster", "launched_by_torchrun", "send_fit", "serve_fit",
           "start_cluster", "stop_cluster"]


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by torchrun (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


@dataclass(frozen=True)
class Cluster:
    """This process's place in the default ``torch.distributed`` group."""

    rank: int
    world_size: int
    backend: str

    @property
    def main(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process (a collective: every process calls it)."""
        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def start_fit(self, seed: int, params: dict[str, Any], fingerprint: str) -> int:
        """Check that every process fits the same images with the same settings; rank 0's seed.

        Refused on every process otherwise: the parts of different image sets need not
        partition one set (an image could be in two parts, sampled at twice the rate), and
        different settings would plan different steps.
        """
        mine = {key: value for key, value in params.items() if key != "seed"}
        everyone: list[Any] = [None] * self.world_size
        dist.all_gather_object(everyone, (mine, fingerprint))
        differ = [rank for rank, theirs in enumerate(everyone) if theirs != everyone[0]]
        if differ:
            raise ModelError(f"process {differ[0]} of the torchrun group reads other images or has other settings "
                             "than rank 0; every process must fit the same images with the same settings")
        return self.broadcast(seed)

    def noise_source(self, insecure_seed: int | None) -> NoiseSource:
        """This process's own CSPRNG (a test seed is offset by the rank: the processes' draws stay independent)."""
        return NoiseSource(seed=None if insecure_seed is None else insecure_seed + self.rank)

    def part(self, values: torch.Tensor) -> torch.Tensor:
        """This process's part of ``values`` (rows rank, rank + W, …): the parts partition the rows."""
        return values[self.rank::self.world_size].contiguous()

    def share(self, total: int) -> int:
        """This process's share of ``total`` items (the shares add up to ``total``; at least 1)."""
        return max(1, total * (self.rank + 1) // self.world_size - total * self.rank // self.world_size)

    def prepare(self, generator: torch.nn.Module, discriminator: Any, ledger: Any, seed: int) -> None:
        """After the shared releases, before training: same starting weights everywhere, this
        process's share of fake images and its own generator noise, averaged generator gradients."""
        ledger.detach()  # every shared release is done; what follows on rank 0 (the audit) is its own
        modules = [generator] + ([discriminator.module] if discriminator is not None else [])
        with torch.no_grad():
            for module in modules:
                for tensor in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(tensor.data, src=0)
        if discriminator is not None:
            # The optimizer normalises by the whole batch (real + fake, fixed when it was made);
            # each process adds its share of the fakes.
            discriminator.expected = self.share(discriminator.expected)
        torch.manual_seed(seed + 1 + self.rank)  # fakes and generator noise: each process its own
        for parameter in generator.parameters():
            if parameter.requires_grad:
                _hooks.append(parameter.register_post_accumulate_grad_hook(self._average))

    def _average(self, parameter: torch.Tensor) -> None:
        if parameter.grad is not None and dist.is_initialized():
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad /= self.world_size


def current_cluster() -> Cluster | None:
    """The running group of several processes, or None (one process: every fit is single-process)."""
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() < 2:
        return None
    return Cluster(rank=dist.get_rank(), world_size=dist.get_world_size(), backend=str(dist.get_backend()))


def start_cluster(device: str = "auto") -> Cluster | None:
    """Join torchrun's group (``init_process_group`` from its environment); None when not under torchrun.

    NCCL when the model will run on CUDA (``device`` auto with a GPU, or cuda), one GPU per
    process (``LOCAL_RANK``); gloo otherwise.
    """
    if not launched_by_torchrun():
        return None
    if not dist.is_available():
        raise ModelError("this torch has no torch.distributed; run without torchrun")
    if not dist.is_initialized():
        cuda = str(device) != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return current_cluster()


def stop_cluster() -> None:
    """Leave the group; the generators trained in it keep no gradient hook."""
    global _sent
    _sent = False
    while _hooks:
        _hooks.pop().remove()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- the fit, handed out by rank 0

_sent = False
_hooks: list[Any] = []  # the generators' gradient-averaging hooks, removed by stop_cluster


def send_fit(request: dict[str, Any]) -> None:
    """On rank 0 of a group: hand the fit (train indices, ε, δ, seed, options) to the other processes."""
    global _sent
    cluster = current_cluster()
    if cluster is not None and cluster.main and not _sent:
        cluster.broadcast(request)
        _sent = True


def abort_fit() -> None:
    """On rank 0, when the release stopped before its fit: let the other processes go."""
    global _sent
    cluster = current_cluster()
    if cluster is not None and cluster.main and not _sent:
        cluster.broadcast(None)
        _sent = True


def serve_fit(modality: Callable[[], Any]) -> bool:
    """On ranks > 0: wait for rank 0's fit request; take part in the fit on ``modality()``.

    Returns False when rank 0 stopped before the fit (it reports why). Nothing is written.
    """
    cluster = current_cluster()
    if cluster is None or cluster.main:
        raise ModelError("serve_fit runs on the processes of a torchrun group other than rank 0")
    request = cluster.broadcast(None)
    if request is None:
        return False
    modality().fit(request.pop("train"), progress=None, **request)
    return True
