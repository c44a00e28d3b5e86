"""Saved models on disk: ``model.json`` (plain JSON) beside ``generator.pt`` (tensors only).

Shared by every synthesiser, so each refuses a damaged, tampered or pickled model the
same way: both files must be regular files (not links, FIFOs or devices) under a size
cap, ``model.json`` strict JSON of limited depth whose sections are objects, the
weights' sha256 must match the one in ``model.json``, and they are read with
``torch.load(weights_only=True)``, which executes no code. The weights are read once:
the bytes checked are the bytes loaded.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError
from ..files import load_json, printable, read_regular_file, sha256_file

__all__ = ["MAX_META_BYTES", "MAX_WEIGHTS_BYTES", "META_NAME", "SECTIONS", "WEIGHTS_NAME", "model_errors",
           "read_model", "weights_sha256"]

META_NAME = "model.json"
WEIGHTS_NAME = "generator.pt"
#: Largest model.json read: it holds the schema and encoder (category lists), never rows.
MAX_META_BYTES = 256 * 1024 * 1024
#: Largest generator.pt read; the weights are held in memory once to check and load the same bytes.
MAX_WEIGHTS_BYTES = 2 * 1024 * 1024 * 1024
_MAX_DEPTH = 64
#: Sections every synthesiser's model.json holds, each a JSON object.
SECTIONS = ("params", "state", "generator")


def weights_sha256(path: Path) -> str:
    """The checksum ``model.json`` records for the weights file in ``path``."""
    return sha256_file(Path(path) / WEIGHTS_NAME, what="model weights", follow_symlinks=False, error=ModelError)


def read_model(path: str | Path, model_format: str, *,
               sections: Iterable[str] = SECTIONS) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(meta, state_dict)`` of the model saved in ``path``, checked; :class:`ModelError` (one line) if not.

    ``sections`` name the top-level entries of model.json that must be JSON objects.
    """
    path = Path(path)
    meta_path, weights = path / META_NAME, path / WEIGHTS_NAME
    if not (os.path.lexists(meta_path) and os.path.lexists(weights)):
        raise ModelError(f"{printable(path)} is not a saved synthdata model ({META_NAME} and {WEIGHTS_NAME} "
                         "expected)")
    text = read_regular_file(meta_path, max_bytes=MAX_META_BYTES, what="model description", error=ModelError)
    try:
        meta = load_json(text, what=str(meta_path), max_depth=_MAX_DEPTH, error=ModelError)
    except ModelError as exc:
        raise ModelError(f"{printable(meta_path)} is not valid JSON ({exc.reason}); the model is damaged") from None
    if not isinstance(meta, dict) or meta.get("format") != model_format:
        raise ModelError(f"{printable(meta_path)} is not a {model_format} model")
    for section in sections:
        if not isinstance(meta.get(section), dict):
            raise ModelError(f"{printable(meta_path)} has no {section} object; the model is damaged or was not "
                             "saved by synthdata")
    expected = meta.get("generator", {}).get("sha256") if isinstance(meta.get("generator"), dict) else None
    if not isinstance(expected, str):
        raise ModelError(f"{printable(meta_path)} records no checksum of {WEIGHTS_NAME}; the model is damaged")
    data = read_regular_file(weights, max_bytes=MAX_WEIGHTS_BYTES, what="model weights", error=ModelError)
    if hashlib.sha256(data).hexdigest() != expected:
        raise ModelError(f"{printable(weights)} does not match the checksum in {META_NAME}; it was modified — "
                         "do not use this model")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickled code objects
        raise ModelError(f"{printable(weights)} is not a plain tensor file ({type(exc).__name__}); refusing to "
                         "load it") from None
    if not isinstance(state, dict):
        raise ModelError(f"{printable(weights)} holds no dict of named tensors; refusing to load it")
    return meta, state


@contextmanager
def model_errors(path: str | Path) -> Iterator[None]:
    """Turn what a malformed model.json makes an estimator's ``load`` raise into one :class:`ModelError` line.

    For the code that rebuilds a model from ``meta`` (wrong types, missing keys, shapes
    that do not fit): ``with model_errors(path): ...``.
    """
    try:
        yield
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        reason = printable(f"{type(exc).__name__}: {exc}")
        raise ModelError(f"{printable(path)}: the saved model is incomplete or inconsistent "
                         f"({reason[:200]})") from None
