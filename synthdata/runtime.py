"""Where the work runs: the torch device, and how many CPU threads torch may use.

A steward's machine is rarely idle: a shared server or a laptop doing other things. torch's
intra-op thread pool spins while it waits for work, so on a busy machine a pool as wide as
the machine fights the other processes for every core, and a fit that takes a minute on a
quiet machine can take twenty. The models here are small (a few hundred thousand
parameters), and one thread does their work nearly as fast as two on a quiet machine and
far faster on a busy one (figures in ``benchmarks/README.md``, ``runtime.py``), so the
default is one thread unless the work is large enough to gain from more.

The thread count honours, in order: an explicit ``threads`` (``--threads``),
``SYNTHDATA_THREADS``, ``OMP_NUM_THREADS``, and never exceeds the CPUs this process may
run on (``os.sched_getaffinity`` and a cgroup CPU quota).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["available_cpus", "configure_threads", "resolve_device", "resolve_precision", "thread_count",
           "torch_threads", "training_autocast"]

THREADS_ENV = "SYNTHDATA_THREADS"


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup (v2 or v1) CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def _cgroup_quota() -> float | None:
    """The cgroup's CPU limit in CPUs, or None when there is none (or it cannot be read)."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def thread_count(threads: int | None = None, *, work: float = 0.0) -> int:
    """How many intra-op threads to use.

    ``work`` is a rough size of one step (multiply-adds); below about 50 million a step
    is too short for a second thread to pay off once another process shares the cores.

    >>> import os
    >>> os.environ.pop("SYNTHDATA_THREADS", None) and None
    >>> thread_count(1)
    1
    """
    limit = available_cpus()
    for value in (threads, os.environ.get(THREADS_ENV), os.environ.get("OMP_NUM_THREADS")):
        if value is None or value == "":
            continue
        try:
            wanted = int(value)
        except (TypeError, ValueError):
            continue
        if wanted >= 1:
            return min(wanted, limit)
    return 1 if work < 5e7 else min(limit, 4)


def configure_threads(threads: int | None = None, *, work: float = 0.0) -> int:
    """Set torch's intra-op thread count (see :func:`thread_count`); returns it.

    An explicit ``threads`` (``--threads``) is also what every later model fit in this
    process uses (it is kept in ``SYNTHDATA_THREADS``, which :func:`torch_threads` reads).
    """
    import torch

    count = thread_count(threads, work=work)
    if threads is not None:
        os.environ[THREADS_ENV] = str(count)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


@contextmanager
def torch_threads(threads: int | None = None, *, work: float = 0.0) -> Iterator[int]:
    """Run a block with torch's intra-op threads set by :func:`thread_count`, then restore them.

    What ``fit`` uses, so that a library call leaves the caller's setting as it found it.
    """
    import torch

    before = torch.get_num_threads()
    count = thread_count(threads, work=work)
    if count != before:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def resolve_device(device):
    """``"auto"`` is CUDA when available, else CPU; ``"cuda"`` without a GPU is refused."""
    import torch

    from .errors import ModelError

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was asked for but no CUDA GPU is available; use --device auto or cpu")
    return resolved


PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision, device) -> str:
    """The arithmetic a model's *generator* trains in: ``"float32"`` or ``"bfloat16"``.

    ``"auto"`` is bfloat16 where the device computes it natively — a CUDA GPU that supports
    it, or a CPU whose oneDNN kernels have bfloat16 instructions (AVX-512 BF16 or AMX) — and
    float32 elsewhere, where bfloat16 would be emulated and slower. Only post-processing
    runs in it (the generator and the features of its own images): every computation on the
    private data, and so every sensitivity bound, stays in float32.
    """
    import torch

    from .errors import ModelError

    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float32"
    if device.type == "cpu":
        try:
            native = torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # an older or differently built torch: say no
            native = False
        return "bfloat16" if native else "float32"
    return "float32"


def training_autocast(precision: str, device):
    """A context in which the generator's training arithmetic runs at ``precision`` (torch autocast)."""
    import torch

    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")
