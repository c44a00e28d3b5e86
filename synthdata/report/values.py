"""Reading a predicate defensively: every getter returns a plain value of the expected type, or None.

A report page must render any predicate, including a sparse, older or hand-edited one, so
the view builders never index a predicate directly: they go through these getters, and a
missing key, a ``None`` or a value of the wrong type all read as "not reported".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["get", "mapping", "number", "pair_values", "sequence", "text"]


def get(value: Any, *path: Any) -> Any:
    """``value[path[0]][path[1]]…``, or None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def mapping(value: Any, *path: Any) -> Mapping[str, Any]:
    """The mapping at ``path``, or an empty one."""
    found = get(value, *path)
    return found if isinstance(found, Mapping) else {}


def sequence(value: Any, *path: Any) -> Sequence[Any]:
    """The list at ``path``, or an empty one (a string is not a list here)."""
    found = get(value, *path)
    return found if isinstance(found, (list, tuple)) else ()


def number(value: Any, *path: Any) -> float | None:
    """The finite real number at ``path`` (booleans excluded), or None."""
    found = get(value, *path)
    if isinstance(found, numbers.Real) and not isinstance(found, bool) and math.isfinite(found):
        return float(found)
    return None


def text(value: Any, *path: Any) -> str | None:
    """The non-empty text at ``path``, or None; numbers are not text."""
    found = get(value, *path)
    return found if isinstance(found, str) and found else None


def pair_values(per_pair: Mapping[str, Any], columns: list[str]) -> dict[tuple[str, str], float]:
    """``{"a | b": tvd}`` as ``{(a, b): tvd}`` with ``a`` before ``b`` in ``columns``.

    Keys are matched against the known column names, so a name holding " | " still
    finds its pair; a key that matches no two columns is left out.
    """
    position = {c: i for i, c in enumerate(columns)}
    names = {f"{a} | {b}": (a, b) for a in columns for b in columns if a != b}
    values = {}
    for key, value in per_pair.items():
        pair, tvd = names.get(str(key)), number(value)
        if pair is None or tvd is None:
            continue
        a, b = sorted(pair, key=position.__getitem__)
        values[(a, b)] = tvd
    return values
