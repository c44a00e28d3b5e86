"""Schema: what each column is, and which facts about it are public.

A :class:`Schema` is immutable and round-trips through JSON. Per column it holds a type
(numerical, categorical, boolean, datetime) and, optionally, *public* facts: numeric or
date bounds, a category list, a numeric lattice step, missing-value markers. What the
schema declares is public knowledge and costs no privacy budget. What it leaves out (``null`` in the JSON) is estimated from the data by
later stages, privately, at a stated cost — :meth:`Schema.paid_facts` lists those.

:func:`infer_schema` proposes a schema from the data for the steward to review. It
declares **no** data-derived bound or category as public: an observed maximum is a real
person's value. It leaves out, with a warning, columns nothing can be learned from (all
missing, or one value in every row) and identifier-like columns (an
:class:`~synthdata.errors.IdentifierColumnWarning`), and refuses columns it cannot read
(infinite numbers, numbers stored as text).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .errors import DataError, IdentifierColumnWarning, SchemaError, SynthdataError, SynthdataWarning

__all__ = [
    "COLUMN_TYPES",
    "ColumnKind",
    "ID_NAME",
    "MAX_CATEGORIES",
    "SCHEMA_FORMAT",
    "Column",
    "Excluded",
    "Schema",
    "infer_schema",
    "mark_missing",
    "parse_datetimes",
    "summarize",
]

class ColumnKind(str, Enum):
    """The one vocabulary of column kinds, shared by the schema, the encoder and the audits.

    A ``str`` enum: ``ColumnKind.NUMERICAL == "numerical"``, and it is written to JSON as
    that text. The names are SDMetrics' sdtypes too.

    >>> ColumnKind("boolean").sdtype, ColumnKind.DATETIME.compares_as_number
    ('boolean', True)
    """

    NUMERICAL = "numerical"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"

    @property
    def sdtype(self) -> str:
        """SDMetrics' name for it (the same)."""
        return self.value

    @property
    def compares_as_number(self) -> bool:
        """Numbers and dates are compared by value (distances, quantile bins); the rest by label."""
        return self in (ColumnKind.NUMERICAL, ColumnKind.DATETIME)

    @property
    def is_label(self) -> bool:
        """Categories and booleans: a set of labels."""
        return not self.compares_as_number

    @classmethod
    def of_dtype(cls, series: pd.Series) -> ColumnKind:
        """The kind a column's pandas dtype suggests (for tables read without a schema)."""
        if ptypes.is_bool_dtype(series.dtype):
            return cls.BOOLEAN
        if ptypes.is_datetime64_any_dtype(series.dtype):
            return cls.DATETIME
        if ptypes.is_numeric_dtype(series.dtype):
            return cls.NUMERICAL
        return cls.CATEGORICAL

    def __str__(self) -> str:
        return self.value


COLUMN_TYPES = tuple(kind.value for kind in ColumnKind)
SCHEMA_FORMAT = "synthdata-schema/1"
#: More distinct values than this in a categorical column cannot be modelled usefully.
MAX_CATEGORIES = 1000
#: Largest schema file read (a schema with every category of a thousand columns is a few MB).
MAX_SCHEMA_BYTES = 64 << 20
#: A column with a distinct value on at least this share of its rows is identifier-like.
ID_DISTINCT_SHARE = 0.95
#: Below this many non-missing values we do not call a column identifier-like.
ID_MIN_VALUES = 20

#: Column names that say "identifier" (public: the header is not anyone's data).
#: Column names that say "identifier": ``patient_id``, ``id``, ``case_no``, ``CustomerID``,
#: ``orderId``. "no", "nr", "num" and "number" only after another word (``visit_num``):
#: alone (``num``) they usually name a count. The camel-case endings are case-sensitive
#: (``Id``/``ID`` after a letter): a case-blind "id" ending would take ``malic_acid``.
ID_NAME = re.compile(r"(^|[_\W])(id|ids|uuid|guid|key|code)$|[_\W](no|nr|num|number)$|^id[_\W]"
                     r"|(?-i:[a-z0-9](Id|ID|Ids|IDs)$)", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_THOUSANDS = re.compile(r"^\s*[+-]?\d{1,3}(?P<sep>[,.' \u00a0\u202f])\d{3}(?:(?P=sep)\d{3})*(?:[.,]\d+)?\s*$")
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
_DATETIME_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
)
_ISO = "%Y-%m-%d %H:%M:%S"
_Scalar = str | int | float | bool


# --------------------------------------------------------------------------- value objects


def _finite_number(value: Any) -> bool:
    """A JSON number a float holds: not a bool, not NaN or infinite, not an integer past 1.8e308."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # math.isfinite(10**400)
        return False


@dataclass(frozen=True)
class Column:
    """One column: its type and the facts about it that are public.

    ``bounds`` is a public (min, max) — numbers, or date strings in ``datetime_format``
    for datetime columns; equal bounds declare a public constant. ``categories`` is a
    public list of values (one value: a public constant). ``None`` means "not public:
    estimate it privately". ``integer`` marks a numerical column whose values are whole
    numbers, so synthetic values are written as integers. ``step`` is the public lattice
    of a numerical column (0.5: values like 17.5 and 22; 25: grams weighed in steps of
    25): every synthetic value is a multiple of it. ``missing_values`` lists cell texts
    that mean "missing" in this column (``"?"``, ``"-1"``), read as missing values.
    ``halves_undecided`` is set by private inference only (never read from or written to
    JSON): it read the column as whole numbers, but halves (``17.5``) too few to clear its
    noise may be there; the encoder's own release of exact values decides, and the schema
    a fit ends with says which (whole numbers, or ``step`` 0.5). ``clock`` marks whole numbers
    that are times of day written HHMM (``830`` is 8:30, ``2359`` one minute to midnight):
    their last two digits are minutes, so synthetic values never end in 60 to 99.
    """

    name: str
    type: str
    integer: bool = False
    bounds: tuple[Any, Any] | None = None
    categories: tuple[_Scalar, ...] | None = None
    datetime_format: str | None = None
    step: float | None = None
    missing_values: tuple[str, ...] | None = None
    halves_undecided: bool = False
    clock: bool = False

    def __post_init__(self) -> None:
        where = f"column {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise SchemaError(f"a column has no name ({self.name!r}); give every column a non-empty name")
        if self.type not in COLUMN_TYPES:
            raise SchemaError(f"{where}: unknown type {self.type!r}; use one of {', '.join(COLUMN_TYPES)}")
        if self.integer and self.type != "numerical":
            raise SchemaError(f"{where}: 'integer' applies to numerical columns only")
        if not isinstance(self.clock, bool):
            raise SchemaError(f"{where}: 'clock' must be true or false, got {self.clock!r}")
        if self.clock and not (self.type == "numerical" and self.integer):
            raise SchemaError(f"{where}: 'clock' (times of day written HHMM, such as 830 for 8:30) applies to "
                              "numerical columns of whole numbers only: set \"integer\": true")
        if self.halves_undecided and not (self.integer and self.step is None):
            raise SchemaError(f"{where}: only a column of whole numbers without a step can leave halves undecided")
        if self.categories is not None:
            object.__setattr__(self, "categories", tuple(self.categories))
            self._check_categories(where)
        if self.bounds is not None:
            object.__setattr__(self, "bounds", tuple(self.bounds))
            self._check_bounds(where)
        if self.datetime_format is not None and not isinstance(self.datetime_format, str):
            raise SchemaError(f"{where}: 'format' must be a date format text such as \"%Y-%m-%d\", got "
                              f"{self.datetime_format!r}")
        if isinstance(self.datetime_format, str):
            try:  # a directive pandas does not know ("%Q") fails here, not on the first value read
                pd.to_datetime(pd.Series(["2000-01-01"]), format=self.datetime_format, errors="coerce")
            except ValueError as exc:
                raise SchemaError(f"{where}: 'format' {self.datetime_format!r} is not a date format ({exc}); use "
                                  "codes such as %Y-%m-%d %H:%M:%S") from None
        if self.datetime_format is not None and self.type != "datetime":
            raise SchemaError(f"{where}: 'format' applies to datetime columns only")
        if self.type == "datetime" and self.datetime_format is None:
            object.__setattr__(self, "datetime_format", _ISO)
        if self.step is not None:
            self._check_step(where)
            if self.clock and 20 % self.step:
                raise SchemaError(f"{where}: a column of times (clock) takes a step of 1, 2, 4, 5, 10 or 20 minutes "
                                  f"only (one that steps HHMM and minutes alike), got {self.step:g}")
        if self.missing_values is not None:
            object.__setattr__(self, "missing_values", tuple(self.missing_values))
            for marker in self.missing_values:
                if not isinstance(marker, str):
                    raise SchemaError(f"{where}: missing_values must be texts as they appear in the file, "
                                      f"got {marker!r}")
            if len(set(self.missing_values)) != len(self.missing_values):
                raise SchemaError(f"{where}: a missing-value marker is listed twice; list each once")

    def _check_step(self, where: str) -> None:
        if self.type != "numerical":
            raise SchemaError(f"{where}: 'step' applies to numerical columns only")
        step = self.step
        if not _finite_number(step) or step <= 0:
            raise SchemaError(f"{where}: 'step' must be a positive number (the lattice values lie on), got {step!r}")
        if self.integer and float(step) != round(float(step)):
            raise SchemaError(f"{where}: an integer column's step must be a whole number, got {step!r}")
        object.__setattr__(self, "step", float(step))

    def _check_categories(self, where: str) -> None:
        if self.type != "categorical":
            raise SchemaError(f"{where}: 'categories' applies to categorical columns only")
        if not self.categories:
            raise SchemaError(f"{where}: the public category list is empty; list the values, or use null")
        for value in self.categories:
            if not isinstance(value, (str, int, float, bool)) or (isinstance(value, float) and not math.isfinite(value)):
                raise SchemaError(f"{where}: category {value!r} is not a plain text or number value")
        if len(set(self.categories)) != len(self.categories):
            duplicate = next(v for v in self.categories if self.categories.count(v) > 1)
            raise SchemaError(f"{where}: category {duplicate!r} is listed twice; list each value once")

    def _check_bounds(self, where: str) -> None:
        if self.type not in ("numerical", "datetime"):
            raise SchemaError(f"{where}: 'bounds' applies to numerical and datetime columns only")
        if len(self.bounds) != 2:
            raise SchemaError(f"{where}: bounds must be [min, max], got {list(self.bounds)}")
        low, high = self.bounds
        if self.type == "numerical":
            ok = all(_finite_number(v) for v in (low, high))
            if not ok:
                raise SchemaError(f"{where}: bounds must be two finite numbers [min, max], got {list(self.bounds)}")
        else:
            try:
                low, high = (pd.Timestamp(v) for v in (low, high))
            except (ValueError, TypeError, OverflowError):
                raise SchemaError(f"{where}: bounds must be two dates like \"2020-01-31\", got {list(self.bounds)}") from None
        if not low <= high:
            raise SchemaError(f"{where}: bounds [min, max] need min <= max (equal bounds declare a constant), "
                              f"got {list(self.bounds)}")

    # Facts ----------------------------------------------------------------------------

    @property
    def constant(self) -> bool:
        """Whether the schema declares the column a public constant (equal bounds, one category)."""
        if self.bounds is not None:
            return self.bounds[0] == self.bounds[1] or (
                self.type == "datetime" and pd.Timestamp(self.bounds[0]) == pd.Timestamp(self.bounds[1]))
        return self.categories is not None and len(self.categories) == 1

    @property
    def public_facts(self) -> list[str]:
        """Facts the schema declares public (free)."""
        facts = []
        if self.type == "boolean":
            facts.append("values true/false")
        if self.bounds is not None:
            facts.append(f"bounds [{self.bounds[0]}, {self.bounds[1]}]")
        if self.categories is not None:
            facts.append(f"{len(self.categories)} categories")
        if self.step is not None:
            facts.append(f"step {self.step:g}")
        if self.clock:
            facts.append("times of day HHMM")
        return facts

    @property
    def paid_facts(self) -> list[str]:
        """Facts the schema leaves out, which preprocessing estimates privately (paid)."""
        if self.type in ("numerical", "datetime") and self.bounds is None:
            return ["range"]
        if self.type == "categorical" and self.categories is None:
            return ["category list"]
        return []

    # JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == "numerical":
            out["integer"] = self.integer
        if self.type == "datetime":
            out["format"] = self.datetime_format
        if self.type in ("numerical", "datetime"):
            out["bounds"] = list(self.bounds) if self.bounds is not None else None
        if self.type == "numerical":
            out["step"] = _plain_number(self.step) if self.step is not None else None
            if self.clock:  # (only when set: the other columns' JSON stays as it was)
                out["clock"] = True
        if self.type == "categorical":
            out["categories"] = list(self.categories) if self.categories is not None else None
        if self.missing_values:
            out["missing_values"] = list(self.missing_values)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Column:
        if not isinstance(data, dict):
            raise SchemaError(f"each entry of 'columns' must be an object, got {data!r}")
        known = {"name", "type", "integer", "bounds", "categories", "format", "step", "missing_values", "clock"}
        name = data.get("name")
        unknown = sorted(k for k in data if k not in known and not str(k).startswith("_"))
        if unknown:
            raise SchemaError(
                f"column {name!r}: unknown key {unknown[0]!r}; known keys are {', '.join(sorted(known))}"
            )
        for key in ("name", "type"):
            if key not in data:
                raise SchemaError(f"column {name!r}: missing key {key!r}")
        integer = data.get("integer", False)
        if not isinstance(integer, bool):
            raise SchemaError(f"column {name!r}: 'integer' must be true or false, got {integer!r}")
        for key in ("bounds", "categories", "missing_values"):
            if data.get(key) is not None and not isinstance(data[key], list):
                raise SchemaError(f"column {name!r}: {key!r} must be a list or null, got {data[key]!r}")
        return cls(
            name=name,
            type=data["type"],
            integer=integer,
            bounds=data.get("bounds"),
            categories=data.get("categories"),
            datetime_format=data.get("format"),
            step=data.get("step"),
            missing_values=data.get("missing_values") or None,
            clock=data.get("clock", False),
        )


@dataclass(frozen=True)
class Excluded:
    """A column left out of the synthesis, and why."""

    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Any) -> Excluded:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise SchemaError(f"each entry of 'excluded' must be an object with a 'name', got {data!r}")
        return cls(name=data["name"], reason=str(data.get("reason", "excluded by the steward")))


@dataclass(frozen=True)
class Schema:
    """The columns to synthesise, in order, and the columns left out.

    ``privacy_unit`` (optional) names the column whose value is a person — the unit of
    privacy — as ``{"column": NAME, "max_rows": K or null, "noun": WORD or null}``
    (a null cap is chosen with DP); that column is never synthesised or released.
    """

    columns: tuple[Column, ...]
    excluded: tuple[Excluded, ...] = field(default=())
    privacy_unit: dict[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "excluded", tuple(self.excluded))
        if not self.columns:
            raise SchemaError("the schema has no columns to synthesise")
        seen: set[str] = set()
        for name in [c.name for c in self.columns] + [e.name for e in self.excluded]:
            if name in seen:
                raise SchemaError(f"column {name!r} appears twice in the schema; list it once")
            seen.add(name)
        if self.privacy_unit is not None:
            unit = self.privacy_unit
            if not isinstance(unit, dict) or not isinstance(unit.get("column"), str) or set(unit) - {
                    "column", "max_rows", "noun"}:
                raise SchemaError("'privacy_unit' must be {\"column\": NAME, \"max_rows\": K or null, \"noun\": "
                                  f"WORD or null}}, got {unit!r}")
            cap = unit.get("max_rows")
            if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
                raise SchemaError(f"privacy_unit: max_rows must be a whole number >= 1 or null, got {cap!r}")
            if unit.get("noun") is not None and not isinstance(unit["noun"], str):
                raise SchemaError(f"privacy_unit: noun must be a word such as \"patient\", got {unit['noun']!r}")
            if unit["column"] in {c.name for c in self.columns}:
                raise SchemaError(f"privacy_unit: {unit['column']!r} is among the columns to synthesise; a person's "
                                  "id is never released, so leave it out of 'columns'")
            object.__setattr__(self, "privacy_unit", {"column": unit["column"], "max_rows": cap,
                                                      "noun": unit.get("noun")})

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def paid_facts(self) -> list[tuple[str, str]]:
        """(column, fact) pairs that later stages must estimate privately, at a cost."""
        return [(c.name, fact) for c in self.columns for fact in c.paid_facts]

    def public_facts(self) -> list[tuple[str, str]]:
        """(column, fact) pairs the schema declares public: free."""
        return [(c.name, fact) for c in self.columns for fact in c.public_facts]

    # JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "_help": (
                "bounds and categories set to null are estimated from the data with differential "
                "privacy, paid from the budget. Replace null with a value only if it is public "
                "knowledge (a code book, a legal range), never one read off this data: e.g. "
                "\"bounds\": [0, 120] or \"categories\": [\"Female\", \"Male\"]."
            ),
            "columns": [c.to_dict() for c in self.columns],
            "excluded": [e.to_dict() for e in self.excluded],
            **({"privacy_unit": dict(self.privacy_unit)} if self.privacy_unit is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Schema:
        if not isinstance(data, dict):
            raise SchemaError("a schema must be a JSON object with 'columns'")
        if data.get("format", SCHEMA_FORMAT) != SCHEMA_FORMAT:
            raise SchemaError(f"unsupported schema format {data.get('format')!r}; expected {SCHEMA_FORMAT!r}")
        unknown = sorted(k for k in data if k not in {"format", "columns", "excluded", "privacy_unit"}
                         and not k.startswith("_"))
        if unknown:
            raise SchemaError(f"unknown schema key {unknown[0]!r}; known keys are columns, excluded, format, "
                              "privacy_unit")
        columns = data.get("columns")
        if not isinstance(columns, list):
            raise SchemaError("the schema needs a 'columns' list")
        excluded = data.get("excluded") or []
        if not isinstance(excluded, list):
            raise SchemaError("'excluded' must be a list")
        return cls(
            columns=tuple(Column.from_dict(c) for c in columns),
            excluded=tuple(Excluded.from_dict(e) for e in excluded),
            privacy_unit=data.get("privacy_unit"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "schema") -> Schema:
        try:
            data = json.loads(text.removeprefix("\ufeff"))  # a byte-order mark some editors write: not content
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{source}, line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})") from None
        except RecursionError:
            raise SchemaError(f"{source}: invalid JSON (nested too deeply); a schema is a list of columns") from None
        except ValueError:  # an integer past Python's digit limit (sys.get_int_max_str_digits)
            raise SchemaError(f"{source}: invalid JSON (a number has too many digits)") from None
        try:
            return cls.from_dict(data)
        except SchemaError as exc:
            raise SchemaError(f"{source}: {exc.message}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the schema as JSON, atomically (a crash leaves the old file or none; a link at a
        temporary name is never followed: :func:`synthdata.files.atomic_write`)."""
        from .files import atomic_write

        try:
            atomic_write(Path(path), self.to_json())
        except SynthdataError as exc:
            raise SchemaError(f"cannot write the schema: {exc.message}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Schema:
        from .files import printable, read_regular_file

        path = Path(path)
        if not os.path.lexists(path):
            raise SchemaError(f"{printable(path)}: no such schema file; check the path")
        if path.is_dir():
            raise SchemaError(f"{printable(path)} is a directory; give the schema's JSON file")
        # A regular file under a cap: a FIFO or /dev/zero given as --schema must not hang or fill memory.
        raw = read_regular_file(path, max_bytes=MAX_SCHEMA_BYTES, what="schema", follow_symlinks=True,
                                error=SchemaError)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SchemaError(f"{printable(path)} is not UTF-8 text; a schema is a JSON file") from None
        return cls.from_json(text, source=str(path))

    # Data -------------------------------------------------------------------------------

    def check_columns(self, frame: pd.DataFrame, *, source: str | None = None) -> None:
        """Refuse data whose columns are not the schema's (names only: the header is public)."""
        prefix = f"{source}: " if source else ""
        present = set(frame.columns)
        for column in self.columns:
            if column.name not in present:
                raise SchemaError(
                    f"{prefix}column {column.name!r} of the schema is not in the data; "
                    "check the column names, or remove it from the schema"
                )
        known = set(self.names) | {e.name for e in self.excluded} | (
            {self.privacy_unit["column"]} if self.privacy_unit is not None else set())
        for name in frame.columns:
            if name not in known:
                raise SchemaError(
                    f"{prefix}column {name!r} is in the data but not in the schema; "
                    "add it to the schema's columns, or to its excluded list"
                )

    def conform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The schema's columns of ``frame``, each value read as its column's type.

        A value that does not fit (text in a numerical column, an unparseable date, an
        infinite number) becomes missing, with a warning for the steward: whether one
        row fits must never decide whether a release happens, or what it publishes.
        """
        out = {}
        for column in self.columns:
            series = mark_missing(frame[column.name], column.missing_values)
            if column.type == "numerical":
                values = pd.to_numeric(series, errors="coerce") if not ptypes.is_numeric_dtype(series.dtype) \
                    or ptypes.is_bool_dtype(series.dtype) else series.astype(float)
                values = values.astype(float).where(np.isfinite(values.astype(float)))
            elif column.type == "datetime":
                values = parse_datetimes(series, column.datetime_format)
            else:
                values = series
            lost = int((values.isna() & series.notna()).sum())
            if lost:
                warnings.warn(f"column {column.name!r}: {lost:,} value(s) do not fit its type ({column.type}) and are "
                              "read as missing", SynthdataWarning, stacklevel=2)
            out[column.name] = values
        return pd.DataFrame(out, index=frame.index)

    def check_frame(self, frame: pd.DataFrame, *, source: str | None = None) -> None:
        """Refuse data that does not fit this schema, naming the column and what to do."""
        prefix = f"{source}: " if source else ""
        present = set(frame.columns)
        for column in self.columns:
            if column.name not in present:
                raise SchemaError(
                    f"{prefix}column {column.name!r} of the schema is not in the data; "
                    "check the column names, or remove it from the schema"
                )
        known = set(self.names) | {e.name for e in self.excluded} | (
            {self.privacy_unit["column"]} if self.privacy_unit is not None else set())
        for name in frame.columns:
            if name not in known:
                raise SchemaError(
                    f"{prefix}column {name!r} is in the data but not in the schema; "
                    "add it to the schema's columns, or to its excluded list"
                )
        for column in self.columns:
            series = mark_missing(frame[column.name], column.missing_values)
            _check_values(column.name, series, prefix)
            _check_type(column, series, prefix)


# --------------------------------------------------------------------------- inference


def infer_schema(frame: pd.DataFrame, *, source: str | None = None) -> Schema:
    """Propose a schema for ``frame``; no data-derived fact is declared public.

    Raises :class:`~synthdata.errors.DataError` for a column nothing can be learned from,
    and warns (:class:`~synthdata.errors.IdentifierColumnWarning`) for each
    identifier-like column it leaves out.
    """
    prefix = f"{source}: " if source else ""
    columns: list[Column] = []
    excluded: list[Excluded] = []
    for name in frame.columns:
        result = _infer_column(str(name), frame[name], prefix)
        if isinstance(result, _Uninformative):
            warnings.warn(f"{prefix}column {name!r} {result.reason}, so there is nothing to learn from it; it is "
                          "left out of the synthesis (declare it in the schema with equal bounds or a single "
                          "category to keep it as a public constant)", SynthdataWarning, stacklevel=2)
            excluded.append(Excluded(result.name, result.reason))
        elif isinstance(result, Excluded):
            warnings.warn(
                f"{prefix}column {name!r} looks like an identifier ({result.reason}); it is left out "
                "of the synthesis, since real ids must never be reproduced",
                IdentifierColumnWarning,
                stacklevel=2,
            )
            excluded.append(result)
        else:
            columns.append(result)
    if not columns:
        raise DataError(f"{prefix}no column is left to synthesise once identifier-like, constant and empty "
                        "columns are left out")
    return Schema(columns=tuple(columns), excluded=tuple(excluded))


class _Uninformative(Excluded):
    """A column left out because it holds nothing to learn (empty, or one value)."""


def _infer_column(name: str, series: pd.Series, prefix: str) -> Column | Excluded:
    values = series.dropna()
    if values.empty:
        return _Uninformative(name, "is missing in every row")
    _check_values(name, series, prefix)
    if len(values) == len(series) and values.astype(str).str.strip().nunique() == 1:
        return _Uninformative(name, "holds the same value in every row")
    if ptypes.is_bool_dtype(series.dtype) or _all_bool(values):
        return Column(name=name, type="boolean")
    if ptypes.is_datetime64_any_dtype(series.dtype):
        return Column(name=name, type="datetime", datetime_format=_datetime_output_format(values))
    if ptypes.is_numeric_dtype(series.dtype):
        array = values.to_numpy(dtype=float)
        integer = bool(ptypes.is_integer_dtype(series.dtype) or np.all(array == np.round(array)))
        if integer and _integer_ids(name, array):
            return Excluded(name, f"{len(array):,} distinct whole numbers in {len(array):,} rows")
        return Column(name=name, type="numerical", integer=integer)
    text = values.astype(str)
    _check_numbers_as_text(name, text, prefix)
    datetime_format = _datetime_format(text)
    if datetime_format is not None:
        return Column(name=name, type="datetime", datetime_format=datetime_format)
    distinct = text.nunique()
    if len(text) >= ID_MIN_VALUES and distinct >= ID_DISTINCT_SHARE * len(text):
        return Excluded(name, f"{distinct:,} distinct values in {len(text):,} rows")
    if distinct > MAX_CATEGORIES:
        raise DataError(
            f"{prefix}column {name!r} has {distinct:,} distinct values, more than the {MAX_CATEGORIES:,} "
            f"a categorical column may have; group rare values into broader ones, or drop it (--drop {name})"
        )
    return Column(name=name, type="categorical")


def _check_values(name: str, series: pd.Series, prefix: str) -> None:
    """Refusals that hold whatever the column's type."""
    values = series.dropna()
    if values.empty:
        raise DataError(
            f"{prefix}column {name!r} is missing in every row; drop it (--drop {name}) or fill it in"
        )
    if ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype):
        array = values.to_numpy(dtype=float)
        bad = ~np.isfinite(array)
        if bad.any():
            row = values.index[int(np.argmax(bad))]
            raise DataError(
                f"{prefix}column {name!r} holds infinite values ({array[bad][0]} in data row {_row(row)}); "
                "replace them with finite numbers, or leave the cell empty for a missing value"
            )


def _check_type(column: Column, series: pd.Series, prefix: str) -> None:
    values = series.dropna()
    if column.type == "numerical" and not (
        ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype)
    ):
        example = next((v for v in values if not _PLAIN_NUMBER.match(str(v))), None)
        if example is None:  # numbers held as text (a declared marker was among them): they read fine
            return
        raise SchemaError(
            f"{prefix}column {column.name!r} is numerical in the schema but holds {str(example)!r}; "
            "fix the value or change the column's type"
        )
    if column.type == "boolean" and not (ptypes.is_bool_dtype(series.dtype) or _all_bool(values)):
        raise SchemaError(
            f"{prefix}column {column.name!r} is boolean in the schema but holds {values.iloc[0]!r}; "
            "make it categorical, or write its values as true/false"
        )
    if column.type == "datetime" and not ptypes.is_datetime64_any_dtype(series.dtype):
        parsed = pd.to_datetime(values.astype(str), format=column.datetime_format, errors="coerce")
        if parsed.isna().any():
            example = values[parsed.isna()].iloc[0]
            raise SchemaError(
                f"{prefix}column {column.name!r}: {example!r} is not a date in the schema's format "
                f"{column.datetime_format!r}; fix the value or the format"
            )


def _check_numbers_as_text(name: str, text: pd.Series, prefix: str) -> None:
    """Numbers the CSV parser left as text because of their separators."""
    sample = text.head(1000)
    thousands = sample.str.match(_THOUSANDS)
    plain = sample.str.match(_PLAIN_NUMBER)
    if thousands.any() and (thousands | plain).mean() >= 0.9:
        example = sample[thousands].iloc[0]
        separator = _THOUSANDS.match(example).group("sep")
        raise DataError(
            f"{prefix}column {name!r} holds numbers written with a thousands separator "
            f"({example.strip()!r} in data row {_row(sample[thousands].index[0])}); re-run with "
            f"--thousands {_quote(separator)} to read them as numbers, or remove the separators"
        )
    comma = sample.str.match(_DECIMAL_COMMA)
    if comma.any() and (comma | plain).mean() >= 0.9:
        example = sample[comma].iloc[0]
        raise DataError(
            f"{prefix}column {name!r} holds numbers written with a decimal comma "
            f"({example.strip()!r} in data row {_row(sample[comma].index[0])}); re-run with --decimal ','"
        )


def _integer_ids(name: str, array: np.ndarray) -> bool:
    """Whole numbers, distinct on (nearly) every row, named or laid out like record ids."""
    if len(array) < ID_MIN_VALUES:
        return False
    distinct = len(np.unique(array))
    if distinct < 0.99 * len(array):
        return False
    sequential = (array.max() - array.min() + 1) <= 1.5 * len(array)
    return bool(ID_NAME.search(name)) or sequential


def _all_bool(values: pd.Series) -> bool:
    return len(values) > 0 and values.map(lambda v: isinstance(v, (bool, np.bool_))).all()


def _datetime_format(text: pd.Series) -> str | None:
    if not text.head(20).str.match(_DATE_LIKE).all():
        return None
    for fmt in _DATETIME_FORMATS:
        if pd.to_datetime(text, format=fmt, errors="coerce").notna().all():
            return fmt
    return None


def _datetime_output_format(values: pd.Series) -> str:
    return "%Y-%m-%d" if (values == values.dt.normalize()).all() else _ISO


def _row(index_label: Any) -> str:
    """Data rows are numbered from 1 in messages (the header is not a data row)."""
    try:
        return str(int(index_label) + 1)
    except (TypeError, ValueError):
        return repr(index_label)


def _quote(separator: str) -> str:
    return {"'": '"\'"', " ": "' '"}.get(separator, f"'{separator}'")


def mark_missing(series: pd.Series, markers: tuple[str, ...] | list[str] | None) -> pd.Series:
    """``series`` with every cell that is one of ``markers`` (``"?"``, ``"-1"``) made missing.

    A cell matches as text (surrounding spaces ignored); a number matches a marker that
    reads as the same number (``-1.0`` matches ``"-1"``).
    """
    if not markers:
        return series
    texts = {str(m).strip() for m in markers}
    numbers = set()
    for marker in texts:
        try:
            numbers.add(float(marker))
        except ValueError:
            pass
    if ptypes.is_bool_dtype(series.dtype):
        return series
    if ptypes.is_numeric_dtype(series.dtype):
        hit = series.isin(list(numbers)).to_numpy() if numbers else np.zeros(len(series), dtype=bool)
    else:
        present = series.notna().to_numpy()
        hit = np.zeros(len(series), dtype=bool)
        values = series[present]
        stripped = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        matched = stripped.map(lambda v: (v in texts) if isinstance(v, str) else
                               (isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                and float(v) in numbers))
        hit[present] = matched.to_numpy(dtype=bool)
    if not hit.any():
        return series
    out = series.astype(object) if not ptypes.is_float_dtype(series.dtype) else series.copy()
    out[hit] = np.nan if ptypes.is_float_dtype(series.dtype) else None
    if ptypes.is_integer_dtype(series.dtype):
        out = pd.to_numeric(out)
    return out


def _plain_number(value: float) -> int | float:
    """A step as JSON shows it: 25, not 25.0."""
    return int(value) if float(value).is_integer() else float(value)


def parse_datetimes(series: pd.Series, datetime_format: str) -> pd.Series:
    """Dates in ``series`` read with ``datetime_format``, tolerating its near variants.

    A cell that does not parse with the format itself is tried with the seconds dropped
    or added, and with "T" or " " between date and time (``8:26`` where the format says
    ``%H:%M:%S``); what still does not parse is missing (NaT).
    """
    if ptypes.is_datetime64_any_dtype(series.dtype):
        return series
    # Hourly stamps written "%H:00" (a literal 00) read as any time: the data's own minutes and
    # seconds, its "Z" or offset, parse as for "%H:%M"; the hour's lattice is the encoder's.
    datetime_format = datetime_format.replace("%H:00", "%H:%M")
    text = series.astype(object).where(series.notna(), None)
    parsed = pd.to_datetime(text, format=datetime_format, errors="coerce")
    variants = []
    if "%H:%M:%S" in datetime_format:
        variants.append(datetime_format.replace("%H:%M:%S", "%H:%M"))
    elif "%H:%M" in datetime_format:
        variants.append(datetime_format.replace("%H:%M", "%H:%M:%S"))
    for fmt in list(variants) + [datetime_format]:
        if " %H" in fmt:
            variants.append(fmt.replace(" %H", "T%H"))
    if "%H" in datetime_format:
        variants.append(datetime_format.split(" %H")[0].split("T%H")[0])
    for fmt in variants:
        todo = parsed.isna() & text.notna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    todo = parsed.isna() & text.notna()
    if "%H" in datetime_format and todo.any():
        # A UTC marker or an offset after the time (10:00:00Z, 10:00+01:00): read as UTC.
        zoned = text[todo].str.replace(r"\s?UTC$", "Z", regex=True).str.replace(r"\s(Z|[+-]\d{2}:?\d{2})$", r"\1",
                                                                                regex=True)
        for fmt in [datetime_format] + variants:
            if "%H" not in fmt:
                continue
            left = parsed.isna() & text.notna()
            if not left.any():
                break
            stamps = pd.to_datetime(zoned[left[todo].to_numpy()], format=fmt + "%z", errors="coerce", utc=True)
            parsed[left] = stamps.dt.tz_localize(None).to_numpy()
    return parsed


# --------------------------------------------------------------------------- summary


def summarize(frame: pd.DataFrame, schema: Schema) -> list[dict[str, str]]:
    """Per column: type, missing share, observed range or top values, public facts.

    For the steward's eyes on their own machine (``synthdata inspect``): the observed
    values are read off the data and are never released.
    """
    rows = []
    for column in schema:
        series = frame[column.name]
        values = series.dropna()
        missing = len(series) - len(values)
        rows.append({
            "column": column.name,
            "type": column.type + (" (integer)" if column.integer else ""),
            "missing": f"{missing:,} ({missing / max(len(series), 1):.1%})" if missing else "0",
            "distinct": f"{values.nunique():,}",
            "observed": _observed(column, values),
            "public": "; ".join(column.public_facts) or "-",
        })
    return rows


def _observed(column: Column, values: pd.Series) -> str:
    if column.type == "numerical":
        return f"{_number(values.min())} .. {_number(values.max())}"
    if column.type == "datetime":
        parsed = values if ptypes.is_datetime64_any_dtype(values.dtype) else pd.to_datetime(
            values.astype(str), format=column.datetime_format, errors="coerce")
        return f"{parsed.min():{column.datetime_format}} .. {parsed.max():{column.datetime_format}}"
    counts = values.astype(str).value_counts()
    top = ", ".join(str(v) for v in counts.index[:3])
    more = ", ..." if len(counts) > 3 else ""
    return f"{top}{more}"


def _number(value: Any) -> str:
    value = float(value)
    if value.is_integer():
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.0f}"
    return f"{value:.4g}"
