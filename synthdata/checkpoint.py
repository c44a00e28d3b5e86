"""Checkpoints: resume a killed fit without resetting (or double-charging) the budget.

A checkpoint directory holds two files, each replaced atomically (:func:`synthdata.files.atomic_writer`:
a temporary file from ``mkstemp``, fsynced, renamed), and read back only if it is a regular
file (a FIFO or device planted there is refused, never opened):

* ``setup.json`` — written once, after the private preprocessing and marginal
  measurements: the released encoder, the noisy marginals, the privacy ledger, the seed
  and a fingerprint of the input. A resumed fit reuses these releases instead of
  measuring again, so it neither pays twice nor draws new noise.
* ``training.pt`` — every few steps: generator, discriminator, optimizers, random number
  generator states, step counters and the ledger *in the same file*, so the privacy
  count saved always matches the training progress saved.

Nothing here holds a real row: every value is a differentially private release or a
model trained on them. Tensors load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .errors import ModelError, SynthdataError
from .files import (
    atomic_write,
    atomic_writer,
    open_regular_file,
    printable,
    read_regular_file,
)

__all__ = ["Checkpointer"]

SETUP = "setup.json"
TRAINING = "training.pt"
#: Largest checkpoint file read back (the setup holds the encoder and the marginals).
MAX_CHECKPOINT_BYTES = 4 << 30


class Checkpointer:
    """Save and load fit checkpoints in ``directory`` every ``every`` generator steps."""

    def __init__(self, directory: str | os.PathLike, *, every: int = 100) -> None:
        self.directory = Path(directory)
        self.every = every

    def exists(self) -> bool:
        return (self.directory / SETUP).is_file()

    def save_setup(self, payload: dict[str, Any]) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from .files import os_error_message

            raise SynthdataError(os_error_message(exc, path=self.directory, writing=True)) from None
        atomic_write(self.directory / SETUP, json.dumps(payload), mode=0o600)

    def load_setup(self) -> dict[str, Any]:
        path = self.directory / SETUP
        if not os.path.lexists(path):
            raise ModelError(f"{printable(self.directory)} holds no checkpoint to resume from; run without --resume")
        data = read_regular_file(path, max_bytes=MAX_CHECKPOINT_BYTES, what="checkpoint", error=ModelError)
        try:
            setup = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ModelError(f"{printable(path)} is damaged ({type(exc).__name__}); remove the checkpoint "
                             "directory and start again") from None
        if not isinstance(setup, dict):
            raise ModelError(f"{printable(path)} is damaged (not a JSON object); remove the checkpoint directory and "
                             "start again")
        return setup

    def save_training(self, state: dict[str, Any]) -> None:
        with atomic_writer(self.directory / TRAINING, mode=0o600) as handle:
            torch.save(state, handle)

    def load_training(self) -> dict[str, Any] | None:
        path = self.directory / TRAINING
        if not os.path.lexists(path):
            return None
        with open_regular_file(path, what="checkpoint", max_bytes=MAX_CHECKPOINT_BYTES, error=ModelError) as handle:
            try:
                return torch.load(handle, map_location="cpu", weights_only=True)
            except Exception as exc:  # weights_only refuses anything but tensors and plain data
                raise ModelError(f"{printable(path)} cannot be loaded ({type(exc).__name__}); remove the checkpoint "
                                 "directory and start again") from None
