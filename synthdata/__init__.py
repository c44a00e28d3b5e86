"""synthdata: differentially private synthetic data, audited and signed.

Python API (the CLI is a thin layer over it)::

    from synthdata import read_table, infer_schema, Schema
    table = read_table("patients.csv")
    schema = infer_schema(table.frame, source=table.source)
    schema.save("patients.schema.json")   # review, declare public facts, reuse
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



def __getattr__(name: str):
    # The models import torch (seconds); load them on first use, not for `synthdata --help`.
    if name in ("TabularGAN", "TabularVAE", "create_model"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'synthdata' has no attribute {name!r}")


__all__ = [
    "__version__",
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
