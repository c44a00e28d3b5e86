"""Generators, picked by name: ``create_model("tabular-gan", epsilon=1.0)``."""

from __future__ import annotations

from .images import ImageGAN
from .tabular import TabularGAN

__all__ = ["MODELS", "ImageGAN", "TabularGAN", "create_model"]

#: Registry of synthesisers by name; the image GAN joins it later.
MODELS = {"tabular-gan": TabularGAN}


def create_model(name: str, **params):
    """Build a registered synthesiser by name, with keyword-only parameters."""
    try:
        return MODELS[name](**params)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
