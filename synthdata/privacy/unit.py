"""The unit of privacy and the neighbouring relation every sensitivity follows from.

By default the guarantee protects **one row**: two inputs are neighbours when one is the
other plus or minus one row (add/remove). With a privacy unit column (``--privacy-unit
COL``) it protects **one person**: neighbours differ by one person with all their rows,
after a public cap of ``max_rows`` rows per person. Every mechanism's sensitivity is what
one unit can change, so a histogram a person contributes ``k`` rows to has L1/L2
sensitivity ``k`` / ``√(k·…)`` rather than 1.

Under add/remove the number of units is itself private: it is released only as a DP
count, never exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PrivacyError

__all__ = ["IMAGE", "PERSON", "ROW", "PrivacyUnit"]


@dataclass(frozen=True)
class PrivacyUnit:
    """Who the guarantee protects: one row, or one person (all their rows, at most ``max_rows``)."""

    column: str | None = None
    max_rows: int = 1
    noun: str = "row"

    def __post_init__(self) -> None:
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int) or self.max_rows < 1:
            raise PrivacyError(f"the cap on rows per unit must be a whole number >= 1, got {self.max_rows!r}")
        if self.column is None and self.max_rows != 1:
            raise PrivacyError("a cap on rows per unit needs a privacy unit column")

    @property
    def per_row(self) -> bool:
        return self.column is None

    @property
    def description(self) -> str:
        """What one unit is, for the report.

        >>> PrivacyUnit().description
        'one row of the input'
        >>> PrivacyUnit(column="patient_id", max_rows=5, noun="patient").description
        'one patient (patient_id): all their rows, up to 5 rows'
        """
        if self.column is None:
            return f"one {self.noun} of the input"
        rows = "1 row" if self.max_rows == 1 else f"{self.max_rows} rows"
        return f"one {self.noun} ({self.column}): all their rows, up to {rows}"

    @property
    def relation(self) -> str:
        """The neighbouring relation the guarantee holds for."""
        if self.column is None:
            return f"add/remove one {self.noun}"
        return f"add/remove one {self.noun} with all their rows (at most {self.max_rows} after the cap)"

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "max_rows": self.max_rows, "noun": self.noun,
                "description": self.description, "relation": self.relation}

    @classmethod
    def from_dict(cls, data: Any) -> PrivacyUnit:
        if not isinstance(data, dict):
            raise PrivacyError("a saved privacy unit must be a JSON object")
        return cls(column=data.get("column"), max_rows=data.get("max_rows", 1), noun=data.get("noun", "row"))


ROW = PrivacyUnit()
#: One image of an image set.
IMAGE = PrivacyUnit(noun="image")
#: The default noun for a person-level unit.
PERSON = "person"
