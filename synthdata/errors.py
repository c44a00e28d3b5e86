"""One exception family for every problem a user can fix.

Each error carries a single line that says what is wrong, where (file, column, row or
value) and what to do. They subclass :class:`click.ClickException`, so the CLI prints
them as ``Error: <message>`` on stderr and exits with status 1, never with a traceback;
Python callers catch :class:`SynthdataError`.
"""

from __future__ import annotations

import click

__all__ = [
    "SynthdataError",
    "DataError",
    "SchemaError",
    "PrivacyError",
    "ModelError",
    "VerificationError",
    "SynthdataWarning",
    "IdentifierColumnWarning",
]


class SynthdataError(click.ClickException):
    """Base class of user-facing problems: one line, exit status 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # One line, always: a message that wraps over lines reads like a traceback.
        super().__init__(" ".join(str(message).split()))


class DataError(SynthdataError):
    """The input data cannot be read or modelled as it is."""


class SchemaError(SynthdataError):
    """A schema file is malformed, or does not match the data."""


class PrivacyError(SynthdataError):
    """A privacy parameter is invalid, or a spend would exceed the budget."""


class ModelError(SynthdataError):
    """A saved model cannot be loaded (missing, tampered, not ours), or is not fitted."""


class VerificationError(SynthdataError):
    """A release directory does not match its signed report: altered, incomplete or signed by another key."""


class SynthdataWarning(UserWarning):
    """Something the user should know that does not stop the run."""


class IdentifierColumnWarning(SynthdataWarning):
    """A column looks like a record identifier and was left out of the synthesis."""
