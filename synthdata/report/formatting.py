"""How numbers and values are written on the report pages: Jinja filters.

Each filter takes a plain value (usually from :mod:`synthdata.report.values`, so a
number or None) and returns text. A missing value comes out as a grey "not reported".
Filters return plain strings, which the template's autoescaping escapes; only the two
that build markup themselves (:func:`missing` and :func:`small`) return
:class:`markupsafe.Markup`, and they put no text of the predicate in it unescaped.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from markupsafe import Markup

from .values import number

__all__ = ["FILTERS", "NOT_REPORTED"]

#: What the page says where the predicate holds no value.
NOT_REPORTED = Markup('<span class="na">not reported</span>')


def missing(value: Any = None) -> Markup:
    """The "not reported" mark (``{{ none|missing }}`` or as a fallback of the filters below)."""
    return NOT_REPORTED


def fixed(value: Any, digits: int = 3) -> str | Markup:
    """``0.148`` — a number with ``digits`` decimals."""
    x = number(value)
    return NOT_REPORTED if x is None else f"{x:.{digits}f}"


def percent(value: Any, digits: int = 1) -> str | Markup:
    """``14.8%`` — a share in [0, 1] as a percentage."""
    x = number(value)
    return NOT_REPORTED if x is None else f"{100 * x:.{digits}f}%"


def count(value: Any) -> str | Markup:
    """``5,047`` — a whole number with thousands separators (a noisy count is rounded)."""
    x = number(value)
    return NOT_REPORTED if x is None else f"{round(x):,}"


def general(value: Any) -> str | Markup:
    """``0.7477`` — four significant digits."""
    x = number(value)
    return NOT_REPORTED if x is None else f"{x:.4g}"


def epsilon(value: Any) -> str | Markup:
    """ε rounded *down* to 6 significant digits: a page never shows more privacy left than there is."""
    x = number(value)
    if x is None:
        return NOT_REPORTED
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    quantum = Decimal(1).scaleb(exponent - 5)
    text = format(Decimal(repr(x)).quantize(quantum, rounding=ROUND_FLOOR), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def small(value: Any) -> str | Markup:
    """``2.96×10⁻⁶`` (with a ``<sup>``) for a small or large number, ``0.05`` otherwise."""
    x = number(value)
    if x is None:
        return NOT_REPORTED
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    if -3 <= exponent < 4:
        return f"{x:.3g}"
    mantissa = f"{x / 10.0 ** exponent:.3g}"
    power = f"{'−' if exponent < 0 else ''}{abs(exponent)}"
    return Markup("{}10<sup>{}</sup>").format("" if mantissa == "1" else mantissa + "×", power)


def interval(value: Any, as_percent: bool = False) -> str:
    """``[0.475–0.539]`` for a pair of numbers; empty text otherwise."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return ""
    low, high = number(value[0]), number(value[1])
    if low is None or high is None:
        return ""
    if as_percent:
        return f"[{100 * low:.2f}%–{100 * high:.2f}%]"
    return f"[{low:.3f}–{high:.3f}]"


def parameter(value: Any, limit: int = 80) -> str:
    """A parameter's value for a table cell: numbers compact, lists and mappings by their size."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        if value and len(value) <= 4 and all(isinstance(v, (str, numbers.Real)) for v in value.values()):
            return shorten(", ".join(f"{k}: {parameter(v)}" for k, v in value.items()), limit)
        return f"{len(value)} entries"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (str, numbers.Real)) for v in value) and len(value) <= 8:
            return shorten(", ".join(parameter(v) if not isinstance(v, str) else v for v in value), limit)
        return f"{len(value)} items"
    return shorten(str(value), limit)


def shorten(value: Any, limit: int = 40) -> str:
    """The text, cut with an ellipsis past ``limit`` characters."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def words(value: Any) -> str:
    """``distance_to_closest_record`` → ``distance to closest record``."""
    return str(value).replace("_", " ")


def text(value: Any) -> str | Markup:
    """The text, or "not reported" if it is missing or empty."""
    if value is None or value == "" or isinstance(value, (Mapping, list, tuple)):
        return NOT_REPORTED
    return str(value)


FILTERS = {
    "missing": missing,
    "fixed": fixed,
    "percent": percent,
    "count": count,
    "general": general,
    "epsilon": epsilon,
    "small": small,
    "interval": interval,
    "parameter": parameter,
    "shorten": shorten,
    "words": words,
    "text": text,
}
