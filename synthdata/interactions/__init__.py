"""Interaction data (who bought, rated or viewed what) as a release modality, with the user as the unit.

See :mod:`synthdata.interactions.estimator` for the model, :mod:`.audit` for the
recommender audit and :mod:`.baselines` for the private baselines it is measured against.
"""

from .data import Baskets, baskets_from_frame

__all__ = ["Baskets", "InteractionGAN", "baskets_from_frame"]


def __getattr__(name: str):
    if name == "InteractionGAN":  # torch loads on first use
        from .estimator import InteractionGAN

        return InteractionGAN
    raise AttributeError(f"module 'synthdata.interactions' has no attribute {name!r}")
