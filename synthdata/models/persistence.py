"""Saved models on disk: ``model.json`` (plain JSON) beside ``generator.pt`` (tensors only).

Shared by every synthesiser, so each refuses a damaged, tampered or pickled model the
same way: the weights' sha256 must match the one in ``model.json``, and they are read
with ``torch.load(weights_only=True)``, which executes no code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError

__all__ = ["META_NAME", "WEIGHTS_NAME", "read_model", "weights_sha256"]

META_NAME = "model.json"
WEIGHTS_NAME = "generator.pt"


def weights_sha256(path: Path) -> str:
    """The checksum ``model.json`` records for the weights file in ``path``."""
    return hashlib.sha256((path / WEIGHTS_NAME).read_bytes()).hexdigest()


def read_model(path: str | Path, model_format: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(meta, state_dict)`` of the model saved in ``path``, checked; :class:`ModelError` if not."""
    path = Path(path)
    meta_path, weights = path / META_NAME, path / WEIGHTS_NAME
    if not meta_path.is_file() or not weights.is_file():
        raise ModelError(f"{path} is not a saved synthdata model ({META_NAME} and {WEIGHTS_NAME} expected)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{meta_path} is not valid JSON ({exc}); the model is damaged") from None
    if not isinstance(meta, dict) or meta.get("format") != model_format:
        raise ModelError(f"{meta_path} is not a {model_format} model")
    if weights_sha256(path) != meta.get("generator", {}).get("sha256"):
        raise ModelError(f"{weights} does not match the checksum in {META_NAME}; it was modified — "
                         "do not use this model")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickled code objects
        raise ModelError(f"{weights} is not a plain tensor file ({type(exc).__name__}); refusing to load it") \
            from None
    return meta, state
