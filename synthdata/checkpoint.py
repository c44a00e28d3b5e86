"""Checkpoints: resume a killed fit without resetting (or double-charging) the budget.

A checkpoint directory holds two files, each replaced atomically (write, then rename):

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

from .errors import ModelError

__all__ = ["Checkpointer"]

SETUP = "setup.json"
TRAINING = "training.pt"


class Checkpointer:
    """Save and load fit checkpoints in ``directory`` every ``every`` generator steps."""

    def __init__(self, directory: str | os.PathLike, *, every: int = 100) -> None:
        self.directory = Path(directory)
        self.every = every

    def exists(self) -> bool:
        return (self.directory / SETUP).is_file()

    def save_setup(self, payload: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.directory / SETUP, lambda path: path.write_text(json.dumps(payload), encoding="utf-8"))

    def load_setup(self) -> dict[str, Any]:
        path = self.directory / SETUP
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{self.directory} holds no checkpoint to resume from; run without --resume") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path} is damaged ({exc}); remove the checkpoint directory and start again") from None

    def save_training(self, state: dict[str, Any]) -> None:
        _atomic_write(self.directory / TRAINING, lambda path: torch.save(state, path))

    def load_training(self) -> dict[str, Any] | None:
        path = self.directory / TRAINING
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # weights_only refuses anything but tensors and plain data
            raise ModelError(f"{path} cannot be loaded ({type(exc).__name__}); remove the checkpoint "
                             "directory and start again") from None


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
