"""Synthesisers, picked by name: ``create_model("tabular-gan", epsilon=1.0)``.

The registry names each model's class by import path, so this package sits below the
modality packages that define them (no import cycle) and importing it costs nothing.
``synthdata fit/release --model NAME`` resolves names here.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Synthesizer

__all__ = ["MODELS", "Synthesizer", "create_model", "model_class", "models_for"]

#: name -> (modality, "module:Class")
MODELS: dict[str, tuple[str, str]] = {
    "tabular-gan": ("table", "synthdata.tabular.estimator:TabularGAN"),
    "image-gan": ("image", "synthdata.images.estimator:ImageGAN"),
    "interaction-gan": ("interactions", "synthdata.interactions.estimator:InteractionGAN"),
    "tabular-vae": ("table", "synthdata.tabular.vae:TabularVAE"),
    "image-vae": ("image", "synthdata.images.vae:ImageVAE"),
}


def model_class(name: str) -> type[Synthesizer]:
    """The class registered as ``name``."""
    try:
        _, target = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def create_model(name: str, **params: Any) -> Synthesizer:
    """Build a registered synthesiser by name, with keyword-only parameters."""
    return model_class(name)(**params)


def models_for(modality: str) -> list[str]:
    """Registered model names for a modality ("table", "image", …), default first."""
    return [name for name, (kind, _) in MODELS.items() if kind == modality]


def __getattr__(name: str):
    # ``from synthdata.models import TabularGAN`` keeps working, loaded on first use.
    for registered in MODELS.values():
        if registered[1].endswith(f":{name}"):
            module, _, attribute = registered[1].partition(":")
            return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'synthdata.models' has no attribute {name!r}")
