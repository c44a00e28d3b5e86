"""synthdata: differentially private synthetic data, audited and signed.

Python API (the CLI is a thin layer over it)::

    import synthdata
    table = synthdata.read_table("patients.csv")
    model = synthdata.TabularGAN(epsilon=1.0).fit(table.frame)   # types decided privately
    synthetic = model.sample(10_000)
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    DataError,
    IdentifierColumnWarning,
    ModelError,
    PrivacyError,
    SchemaError,
    SynthdataError,
    SynthdataWarning,
)
from .ingest import Table, from_frame, load_table, read_table
from .schema import Column, Excluded, Schema, infer_schema

try:
    __version__ = version("synthdata")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"



_MODELS = ("TabularGAN", "TabularVAE", "ImageGAN", "ImageVAE", "InteractionGAN", "create_model")


def __getattr__(name: str):
    # The models import torch (seconds); load them on first use, not for `synthdata --help`.
    if name in _MODELS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'synthdata' has no attribute {name!r}")


__all__ = [
    "__version__",
    "ImageGAN",
    "ImageVAE",
    "InteractionGAN",
    "TabularGAN",
    "TabularVAE",
    "create_model",
    "Column",
    "DataError",
    "Excluded",
    "IdentifierColumnWarning",
    "ModelError",
    "PrivacyError",
    "Schema",
    "SchemaError",
    "SynthdataError",
    "SynthdataWarning",
    "Table",
    "from_frame",
    "infer_schema",
    "load_table",
    "read_table",
]
