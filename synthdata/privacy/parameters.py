"""Privacy parameters: validation of every number the privacy code takes, and delta.

Each check raises one :class:`~synthdata.errors.PrivacyError` line that names the value
and what to use instead; nothing here reads data.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import PrivacyError

__all__ = ["DEFAULT_DELTA", "budget_split", "check_delta_for_units", "check_privacy_parameters", "default_delta"]

#: The delta of a release unless the steward sets one. It is fixed in advance, never read
#: off the data: a delta computed from the number of rows would publish that number, and
#: one chosen from a noisy count would only certify its largest possible value.
#: Releases of more than 100,000 units need a smaller one (see check_delta_for_units).
DEFAULT_DELTA = 1e-6

# Noise multipliers outside this range mean no privacy, or no signal; refusing them keeps
# the RDP arithmetic (alpha / (2 z^2)) clear of float underflow and overflow.
_MIN_Z, _MAX_Z = 1e-6, 1e12

def _number(name: str, value: Any, *, where: str = "") -> float:
    """A finite real number (bools and strings are mistakes, not numbers)."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PrivacyError(f"{prefix}{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise PrivacyError(f"{prefix}{name} must be a finite number, got {value!r}")
    return value


def _positive(name: str, value: Any, *, where: str = "") -> float:
    value = _number(name, value, where=where)
    if value <= 0:
        prefix = f"{where}: " if where else ""
        raise PrivacyError(f"{prefix}{name} must be positive, got {value!r}")
    return value


def _noise_multiplier(value: Any, *, where: str = "", name: str = "noise_multiplier") -> float:
    """Noise over sensitivity, within the range the RDP arithmetic handles in floats."""
    value = _positive(name, value, where=where)
    if not _MIN_Z <= value <= _MAX_Z:
        prefix = f"{where}: " if where else ""
        raise PrivacyError(
            f"{prefix}{name}={value:g} (noise std over sensitivity) is outside [{_MIN_Z:g}, {_MAX_Z:g}]; "
            f"below it there is no privacy to speak of, above it the data is not used"
        )
    return value


def _sample_rate(value: Any, *, where: str = "") -> float:
    value = _number("sample_rate", value, where=where)
    if not 0 < value <= 1:
        prefix = f"{where}: " if where else ""
        raise PrivacyError(
            f"{prefix}sample_rate must be in (0, 1] (batch size / number of rows), got {value!r}"
        )
    return value


def _steps(value: Any, *, where: str = "") -> int:
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise PrivacyError(f"{prefix}steps must be a whole number >= 1, got {value!r}")
    return int(value)


def _step_name(step: Any) -> str:
    if not isinstance(step, str) or not step.strip():
        raise PrivacyError(f"a spend needs a step name such as 'marginals', got {step!r}")
    return step


def _json_parameters(parameters: Any, *, where: str, reserved: Iterable[str]) -> dict[str, Any]:
    """A JSON-normalised copy: what the report shows is exactly what a reload gives back."""
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise PrivacyError(f"{where}: parameters must be a dict, got {type(parameters).__name__}")
    clash = sorted(str(k) for k in parameters if k in set(reserved))
    if clash:
        raise PrivacyError(f"{where}: parameter {clash[0]!r} is set by the ledger itself; leave it out")
    try:
        return json.loads(json.dumps(dict(parameters), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise PrivacyError(f"{where}: parameters must be JSON-serialisable finite values ({exc})") from None


def budget_split(user: Any, defaults: dict[str, float], *, positive: Iterable[str] = ()) -> dict[str, float]:
    """A model's budget split: ``defaults`` updated with the user's shares, checked.

    Unknown parts, shares that are not finite numbers >= 0, and a zero share for a part
    named in ``positive`` are refused with one :class:`PrivacyError` line.

    >>> budget_split({"b": 2}, {"a": 1.0, "b": 1.0}, positive=["a"])
    {'a': 1.0, 'b': 2}
    """
    user = dict(user or {})
    unknown = sorted(set(map(str, user)) - set(defaults))
    if unknown:
        raise PrivacyError(f"unknown budget_split part {unknown[0]!r}; parts are {', '.join(defaults)}")
    split = {**defaults, **user}
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0
           for v in split.values()):
        raise PrivacyError("budget_split shares must be finite numbers >= 0")
    positive = list(positive)
    if any(split[part] <= 0 for part in positive):
        raise PrivacyError(f"budget_split needs positive shares for {' and '.join(positive)}")
    return split


def default_delta(n: int) -> float:
    """The delta to use for ``n`` rows: ``min(1 / (n ln n), 1e-5)``.

    delta is the probability that the guarantee fails outright; it must be well below
    1/n, or "release one random row" would qualify.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise PrivacyError(f"the number of rows must be a whole number, got {n!r}")
    if n < 2:
        raise PrivacyError(f"differential privacy needs at least 2 rows, got n={n}")
    return min(1.0 / (n * math.log(n)), 1e-5)


def check_delta_for_units(delta: float, noisy_units: float, *, what: str = "rows") -> None:
    """Refuse a delta that is not well below 1/n, judged on a DP count of the units.

    The refusal is post-processing of a private count, so it reveals nothing more.
    """
    if noisy_units > 0 and delta * noisy_units > 0.1:
        suggestion = 10 ** math.floor(math.log10(0.01 / noisy_units))
        raise PrivacyError(
            f"delta={delta:g} is not well below 1/n for about {noisy_units:,.0f} {what} (a DP count); "
            f"pass --delta {suggestion:g} or smaller"
        )


def check_privacy_parameters(*, epsilon: Any, delta: Any, n: int | None = None) -> None:
    """Refuse (epsilon, delta) that give no meaningful guarantee, before any data is read."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not (
        math.isfinite(epsilon) and epsilon > 0
    ):
        raise PrivacyError(f"epsilon must be a positive finite number, got {epsilon!r}; use e.g. epsilon=1.0")
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not 0 < delta < 1:
        raise PrivacyError(f"delta must be a number between 0 and 1 (exclusive), got {delta!r}; use e.g. delta=1e-5")
    if n is not None:
        suggestion = default_delta(n)
        if delta >= 1.0 / n:
            raise PrivacyError(
                f"delta={delta:g} is not well below 1/n={1.0 / n:.3g} (n={n} rows); use at most {suggestion:.3g}"
            )


def _check_threshold_delta(threshold_delta: Any, delta: float) -> float:
    value = _number("threshold_delta", threshold_delta)
    if not 0 <= value < delta:
        raise PrivacyError(
            f"threshold_delta={value:g} must be at least 0 and below delta={delta:g}; "
            f"it is the part of delta reserved for thresholded releases"
        )
    return value


def _over(value: float, target: float) -> str:
    """``value`` with just enough digits to show that it is above ``target``."""
    for digits in range(4, 18):
        text = f"{value:.{digits}g}"
        if float(text) > target:
            return text
    return repr(value)

