"""Privacy budget: one ledger for every mechanism that reads the real data.

Every release computed from the real rows (private bounds and category lists in
preprocessing, noisy marginals, every DP-SGD step of the discriminator) records a spend
in a :class:`PrivacyLedger`. The ledger composes them all with Opacus' Rényi-DP
accountant, which it holds as ``ledger.accountant`` so a ``DPOptimizer`` step hook can
drive it, and it refuses, *before* recording, any spend that would take epsilon past the
target: privacy is correctness, so the target is never exceeded, not even by one step.

Budgets are planned up front with :func:`plan_noise`: it sets every mechanism's noise so
that the RDP composition of all of them lands just under the target. Planning first and
then spending what was planned avoids the "train, check, oops" overshoot, and RDP
composition lets the components share the budget without paying basic (additive)
composition.

Thresholded releases (Gaussian sparse histograms that publish only values whose noisy
count clears :func:`gaussian_threshold`) fail with a small probability, which is an
additive delta; ``threshold_delta`` reserves that part of delta, and the RDP part is
converted to (epsilon, delta - threshold_delta).

Epsilons are computed with :func:`opacus.accountants.analysis.rdp.compute_rdp` and
:func:`~opacus.accountants.analysis.rdp.get_privacy_spent` over :data:`RDP_ORDERS`:
Opacus' default orders extended to order 1024. The default orders stop at 63, where the
RDP-to-(epsilon, delta) conversion alone costs about 0.1 at delta=1e-5, so a target of
epsilon=0.1 could not be certified at all; the ledger's accountant is given the same
orders, so ``ledger.accountant.get_epsilon(delta)`` agrees with the ledger.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent
from scipy import optimize, special
from scipy.stats import norm

from .errors import PrivacyError

__all__ = [
    "DPSGD_MECHANISM",
    "GAUSSIAN_MECHANISM",
    "LEDGER_FORMAT",
    "MAX_STEPS",
    "RDP_ORDERS",
    "DPSGDRequest",
    "GaussianRequest",
    "NoisePlan",
    "PrivacyLedger",
    "Spend",
    "check_privacy_parameters",
    "default_delta",
    "gaussian_threshold",
    "plan_noise",
    "poisson_sample",
]

#: RDP orders of every epsilon computed here: Opacus' defaults (1.1 .. 63) plus larger
#: orders, which small targets (epsilon <= 0.1) and small deltas need to be reachable.
RDP_ORDERS: tuple[float, ...] = tuple(RDPAccountant.DEFAULT_ALPHAS) + (
    64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 1024,
)
LEDGER_FORMAT = "synthdata-privacy-ledger/1"
DPSGD_MECHANISM = "DP-SGD (Poisson-subsampled Gaussian)"
GAUSSIAN_MECHANISM = "Gaussian mechanism"
#: remaining_steps() answers at most this many: beyond it, the budget is not the limit.
MAX_STEPS = 10**12

_ORDERS = np.asarray(RDP_ORDERS, dtype=float)
_ORDERS_LIST = list(RDP_ORDERS)
# A plan aims this far (relative) under the target, so that composing the same spends in
# another order (float sums are not associative) cannot push the ledger over it.
_PLAN_AIM = 1e-7
_PLAN_SLACK = 1e-10
# Dense orders used only to calibrate one Gaussian to a standalone epsilon: its RDP is
# closed-form at every order, so "standalone" means the best RDP bound, not the best
# bound over the ledger's orders (which has a floor that small shares would hit).
# Noise multipliers outside this range mean no privacy, or no signal; refusing them keeps
# the RDP arithmetic (alpha / (2 z^2)) clear of float underflow and overflow.
_MIN_Z, _MAX_Z = 1e-6, 1e12
_DENSE_ORDERS = np.unique(np.concatenate([_ORDERS, np.geomspace(1.001, 1e7, 4000)]))


# --------------------------------------------------------------------------- validation


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


# --------------------------------------------------------------------------- RDP arithmetic


@lru_cache(maxsize=4096)
def _rdp_curve(q: float, z: float) -> np.ndarray:
    """RDP of one step of the sampled Gaussian at every order, exactly as Opacus computes it.

    Cached: a training run takes thousands of steps with one (q, z), and Opacus spends
    tens of milliseconds per curve.
    """
    curve = np.asarray(compute_rdp(q=q, noise_multiplier=z, steps=1, orders=_ORDERS_LIST), dtype=float)
    curve.setflags(write=False)
    return curve


def _compose(history: Iterable[tuple[float, float, int]], delta: float) -> float:
    """Epsilon of an accountant history, bit for bit what ``RDPAccountant`` reports."""
    terms = [_rdp_curve(float(q), float(z)) * n for z, q, n in history]
    if not terms:
        return 0.0
    with warnings.catch_warnings():
        # Opacus warns when the best order is the first or last one; the bound is valid
        # either way, and a warning is not something a data steward can act on.
        warnings.simplefilter("ignore")
        eps, _ = get_privacy_spent(orders=_ORDERS_LIST, rdp=sum(terms), delta=delta)
    return max(float(eps), 0.0)


def _merged(history: Iterable[Any], z: float, q: float, n: int) -> list[tuple[float, float, int]]:
    """The history after ``n`` more accountant steps: Opacus merges a repeat of the last entry."""
    out = [tuple(entry) for entry in history]
    if n <= 0:
        return out
    if out and out[-1][0] == z and out[-1][1] == q:
        out[-1] = (z, q, out[-1][2] + n)
    else:
        out.append((z, q, n))
    return out


@lru_cache(maxsize=64)
def _offsets(delta: float, dense: bool = False) -> np.ndarray:
    """Per order, what the RDP-to-(epsilon, delta) conversion adds (Balle et al. 2020, Thm 21)."""
    a = _DENSE_ORDERS if dense else _ORDERS
    out = -(math.log(delta) + np.log(a)) / (a - 1) + np.log((a - 1) / a)
    out.setflags(write=False)
    return out


def _fast_eps(rdp: np.ndarray, delta: float) -> float:
    with np.errstate(invalid="ignore"):
        eps = rdp + _offsets(delta)
    return float(np.nanmin(eps)) if not np.isnan(eps).all() else math.inf


# Planning searches over noise levels, and Opacus' scalar loops cost tens of ms per
# curve. These vectorised twins of its formulas (Mironov et al. 2019, Sec. 3.3) make the
# search cheap; the final plan is always verified with Opacus itself.
_INT = np.array([float(a).is_integer() for a in RDP_ORDERS])
_A_FRAC = _ORDERS[~_INT]


def _int_block(orders: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i = np.arange(int(orders.max()) + 1, dtype=float)
    with np.errstate(divide="ignore"):
        log_binom = np.log(special.binom(orders[:, None], i[None, :]))
    log_binom[i[None, :] > orders[:, None]] = -np.inf
    return orders, i, log_binom


# Small and large integer orders apart: one padded block would be mostly padding.
_INT_BLOCKS = [_int_block(_ORDERS[_INT & (_ORDERS <= 64)]), _int_block(_ORDERS[_INT & (_ORDERS > 64)])]
# Opacus sums the series of a fractional order until a term is negligible, which takes
# from tens to tens of thousands of terms; rows are tried with growing numbers of terms.
_FRAC_TERMS = (64, 256, 1024, 4096, 16384)


@lru_cache(maxsize=None)
def _frac_block(terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i = np.arange(terms, dtype=float)
    binom = special.binom(_A_FRAC[:, None], i[None, :])
    with np.errstate(divide="ignore"):
        return i, np.log(np.abs(binom)), np.sign(binom)


def _frac_series(q: float, z: float, rows: np.ndarray, terms: int) -> tuple[np.ndarray, np.ndarray]:
    """log A_alpha of the fractional orders ``rows`` (Opacus' series, same stopping rule)."""
    i, log_binom, sign = _frac_block(terms)
    log_binom, sign = log_binom[rows], sign[rows]
    i = i[None, :]
    j = _A_FRAC[rows][:, None] - i
    log_q, log_1q = math.log(q), math.log1p(-q)
    z0 = z**2 * math.log(1 / q - 1) + 0.5
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s0 = log_binom + i * log_q + j * log_1q + (i * i - i) / (2 * z**2) + special.log_ndtr((z0 - i) / z)
        s1 = log_binom + j * log_q + i * log_1q + (j * j - j) / (2 * z**2) + special.log_ndtr((j - z0) / z)
        small = np.maximum(s0, s1) < -30
        done = small.any(axis=1)
        keep = i <= np.argmax(small, axis=1)[:, None]  # up to the first negligible term
        parts = []
        for s in (s0, s1):
            s = np.where(keep, s, -np.inf)
            top = s.max(axis=1)
            total = (np.where(keep, sign, 0.0) * np.exp(s - top[:, None])).sum(axis=1)
            parts.append(np.where(np.isfinite(top), top + np.log(total), -np.inf))
        log_a = np.logaddexp(parts[0], parts[1])
    return log_a, done & np.isfinite(log_a)


def _fast_curve(q: float, z: float) -> np.ndarray:
    """RDP of one sampled-Gaussian step at every order: Opacus' formulas, vectorised."""
    if q == 1.0:
        return _ORDERS / (2 * z**2)
    out = np.empty_like(_ORDERS)
    log_q, log_1q = math.log(q), math.log1p(-q)
    ints = []
    for orders, i, log_binom in _INT_BLOCKS:
        with np.errstate(invalid="ignore", over="ignore"):
            s = log_binom + i * log_q + (orders[:, None] - i) * log_1q + (i * i - i) / (2 * z**2)
        s[np.isnan(s)] = -np.inf
        ints.append(special.logsumexp(s, axis=1) / (orders - 1))
    out[_INT] = np.concatenate(ints)

    frac = np.full(len(_A_FRAC), np.nan)
    rows = np.arange(len(_A_FRAC))
    for terms in _FRAC_TERMS:
        log_a, ok = _frac_series(q, z, rows, terms)
        frac[rows[ok]] = log_a[ok] / (_A_FRAC[rows[ok]] - 1)
        rows = rows[~ok]
        if not len(rows):
            break
    if len(rows):  # very slow series (sample rates near 1/2): Opacus' own loop
        frac[rows] = compute_rdp(q=q, noise_multiplier=z, steps=1, orders=[float(a) for a in _A_FRAC[rows]])
    out[~_INT] = frac
    return out


def _calibrate_gaussians(targets: np.ndarray, delta: float) -> np.ndarray:
    """Smallest noise multiplier per standalone epsilon: alpha/(2 z^2) + offset <= target."""
    offsets = _offsets(delta, dense=True)
    gap = np.asarray(targets, dtype=float)[:, None] - offsets[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.sqrt(_DENSE_ORDERS[None, :] / (2 * gap))
    z[~(gap > 0)] = np.inf
    return z.min(axis=1)


# --------------------------------------------------------------------------- ledger


@dataclass(frozen=True)
class Spend:
    """One line of the privacy budget, as the report shows it.

    ``epsilon`` is cumulative: the RDP composition of this spend with every spend
    recorded before it (not this spend alone, which would invite adding lines up).
    ``delta`` is the ledger's total delta.
    """

    step: str
    mechanism: str
    epsilon: float
    delta: float
    parameters: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "parameters": json.loads(json.dumps(self.parameters)),
        }


class _Line:
    """A spend line's bookkeeping, kept apart from the accountant, which merges entries."""

    __slots__ = (
        "step", "mechanism", "kind", "parameters", "first_position", "last_position",
        "count", "noise_multiplier", "sample_rate", "max_grad_norm", "restored",
    )

    def __init__(self, *, step, mechanism, kind, parameters, noise_multiplier, sample_rate,
                 max_grad_norm=None, first_position=None, last_position=None, count=0, restored=False):
        self.step = step
        self.mechanism = mechanism
        self.kind = kind
        self.parameters = parameters
        self.noise_multiplier = noise_multiplier
        self.sample_rate = sample_rate
        self.max_grad_norm = max_grad_norm
        self.first_position = first_position
        self.last_position = last_position
        self.count = count
        self.restored = restored

    def public_parameters(self) -> dict[str, Any]:
        parameters = json.loads(json.dumps(self.parameters))  # a copy: callers cannot edit the ledger
        if self.kind == "dpsgd":
            parameters["steps"] = self.count
        return parameters

    def to_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "mechanism": self.mechanism,
            "kind": self.kind,
            "parameters": json.loads(json.dumps(self.parameters)),
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "max_grad_norm": self.max_grad_norm,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "count": self.count,
        }


_GAUSSIAN_KEYS = ("sensitivity", "sigma", "noise_multiplier", "sample_rate", "steps", "extra_delta")
_DPSGD_KEYS = ("noise_multiplier", "sample_rate", "max_grad_norm", "steps")


def _new_accountant() -> RDPAccountant:
    accountant = RDPAccountant()
    # An instance attribute: get_epsilon() then uses the ledger's orders, and the class
    # (shared with any other Opacus user in the process) is left alone.
    accountant.DEFAULT_ALPHAS = list(_ORDERS_LIST)
    return accountant


class PrivacyLedger:
    """The privacy budget of one release: every spend on the real data, RDP-composed.

    ``epsilon`` is the target, ``delta`` the total delta, of which ``threshold_delta`` is
    reserved for the failure probability of thresholded releases. Every spend is checked
    before it is recorded; one that would exceed the target raises
    :class:`~synthdata.errors.PrivacyError` and records nothing.
    """

    def __init__(self, *, epsilon: float, delta: float, threshold_delta: float = 0.0) -> None:
        check_privacy_parameters(epsilon=epsilon, delta=delta)
        self._epsilon = float(epsilon)
        self._delta = float(delta)
        self._threshold_delta = _check_threshold_delta(threshold_delta, self._delta)
        self.accountant = _new_accountant()
        self._lines: list[_Line] = []
        self._extra_deltas: list[float] = []
        self._allowance: tuple[Any, int] | None = None

    def __repr__(self) -> str:
        return (
            f"PrivacyLedger(epsilon={self._epsilon:g}, delta={self._delta:g}, "
            f"spent={self.epsilon_spent:.4g}, lines={len(self.spends)})"
        )

    # Budget -----------------------------------------------------------------------------

    @property
    def epsilon(self) -> float:
        """The target epsilon, never to be exceeded."""
        return self._epsilon

    @property
    def delta(self) -> float:
        """The total delta: the RDP conversion's plus ``threshold_delta``."""
        return self._delta

    @property
    def threshold_delta(self) -> float:
        return self._threshold_delta

    @property
    def _rdp_delta(self) -> float:
        return self._delta - self._threshold_delta

    @property
    def epsilon_spent(self) -> float:
        """Epsilon of everything the accountant holds (also steps a foreign hook recorded)."""
        return _compose(self.accountant.history, self._rdp_delta)

    @property
    def spends(self) -> tuple[Spend, ...]:
        """The budget lines, in the order of their first spend."""
        lines = sorted((line for line in self._lines if line.count), key=lambda line: line.first_position)
        return tuple(self._spend_of(line) for line in lines)

    def _spend_of(self, line: _Line) -> Spend:
        prefix, left = [], line.last_position
        for z, q, n in self.accountant.history:
            if left <= 0:
                break
            prefix.append((z, q, min(n, left)))
            left -= n
        return Spend(
            step=line.step,
            mechanism=line.mechanism,
            epsilon=_compose(prefix, self._rdp_delta),
            delta=self._delta,
            parameters=line.public_parameters(),
        )

    def _position(self) -> int:
        return sum(int(n) for *_, n in self.accountant.history)

    # Spending ---------------------------------------------------------------------------

    def gaussian(
        self,
        step: str,
        *,
        sensitivity: float,
        sigma: float,
        mechanism: str = GAUSSIAN_MECHANISM,
        parameters: Mapping[str, Any] | None = None,
        extra_delta: float = 0.0,
    ) -> Spend:
        """Record one release of the Gaussian mechanism (noise std ``sigma``, L2 ``sensitivity``).

        Recorded as accountant entry (sigma/sensitivity, sample_rate=1, 1 step), whose RDP
        is alpha / (2 z^2). ``extra_delta`` is the failure probability of a thresholded
        release, drawn from ``threshold_delta``. Checked first, recorded only if it fits.
        """
        step = _step_name(step)
        sensitivity = _positive("sensitivity", sensitivity, where=step)
        sigma = _positive("sigma", sigma, where=step)
        extra_delta = _number("extra_delta", extra_delta, where=step)
        if not isinstance(mechanism, str) or not mechanism.strip():
            raise PrivacyError(f"{step}: mechanism must be a non-empty name, got {mechanism!r}")
        user = _json_parameters(parameters, where=step, reserved=_GAUSSIAN_KEYS)
        z = _noise_multiplier(sigma / sensitivity, where=step, name="sigma/sensitivity")
        if extra_delta < 0:
            raise PrivacyError(f"{step}: extra_delta must be at least 0, got {extra_delta!r}")
        if extra_delta > 0:
            used = math.fsum(self._extra_deltas)
            if math.fsum([*self._extra_deltas, extra_delta]) > self._threshold_delta:
                raise PrivacyError(
                    f"{step}: extra_delta={extra_delta:g} would bring the thresholding delta to "
                    f"{used + extra_delta:.3g}, over threshold_delta={self._threshold_delta:g}; nothing was "
                    f"recorded. Use a higher threshold or reserve more threshold_delta"
                )
        reached = _compose(_merged(self.accountant.history, z, 1.0, 1), self._rdp_delta)
        if reached > self._epsilon:
            raise PrivacyError(
                f"{step}: this Gaussian release (sigma={sigma:g}, sensitivity={sensitivity:g}) would bring "
                f"epsilon to {_over(reached, self._epsilon)}, over the target {self._epsilon:g}; nothing was recorded. "
                f"{self._more_noise_hint(sensitivity)}"
            )
        self.accountant.step(noise_multiplier=z, sample_rate=1.0)
        if extra_delta > 0:
            self._extra_deltas.append(extra_delta)
        computed = {"sensitivity": sensitivity, "sigma": sigma, "noise_multiplier": z, "sample_rate": 1.0, "steps": 1}
        if extra_delta > 0:
            computed["extra_delta"] = extra_delta
        position = self._position()
        line = _Line(
            step=step, mechanism=mechanism, kind="gaussian", parameters={**computed, **user},
            noise_multiplier=z, sample_rate=1.0, first_position=position, last_position=position, count=1,
        )
        self._lines.append(line)
        return self._spend_of(line)

    def _more_noise_hint(self, sensitivity: float) -> str:
        """What to do instead: the smallest sigma that still fits, if any does."""
        history, delta = self.accountant.history, self._rdp_delta

        def fits(z: float) -> bool:
            return _compose(_merged(history, z, 1.0, 1), delta) <= self._epsilon

        high = 1.0
        while not fits(high):
            high *= 4
            if high > 1e9:
                return f"The budget is spent (epsilon_spent={self.epsilon_spent:.4g}); plan it with plan_noise"
        low = high / 4
        for _ in range(40):
            mid = math.sqrt(low * high)
            low, high = (low, mid) if fits(mid) else (mid, high)
        return f"Use sigma >= {high * sensitivity * 1.001:.4g}, or plan the budget with plan_noise"

    def dpsgd_hook(
        self,
        step: str,
        *,
        noise_multiplier: float,
        sample_rate: float,
        max_grad_norm: float,
        parameters: Mapping[str, Any] | None = None,
    ) -> Callable[[Any], None]:
        """A step hook for ``DPOptimizer.attach_step_hook``: each call records one DP-SGD step.

        The hook checks that the step fits before recording it; one that would exceed
        the target raises :class:`PrivacyError` inside ``optimizer.step()``, before the
        parameters are updated, so the noisy gradient is never used. Stop training after
        :meth:`remaining_steps` steps to never get there. After :meth:`load_state_dict`,
        the first hook asked for with the same step and parameters continues the saved
        line, so a resumed run continues the count.
        """
        step = _step_name(step)
        z = _noise_multiplier(noise_multiplier, where=step)
        q = _sample_rate(sample_rate, where=step)
        max_grad_norm = _positive("max_grad_norm", max_grad_norm, where=step)
        user = _json_parameters(parameters, where=step, reserved=_DPSGD_KEYS)
        base = {"noise_multiplier": z, "sample_rate": q, "max_grad_norm": max_grad_norm, **user}
        line = next(
            (
                old for old in self._lines
                if old.restored and old.kind == "dpsgd" and old.step == step and old.parameters == base
            ),
            None,
        )
        if line is not None:
            line.restored = False  # claimed: a second hook gets a line of its own
        else:
            line = _Line(
                step=step, mechanism=DPSGD_MECHANISM, kind="dpsgd", parameters=base,
                noise_multiplier=z, sample_rate=q, max_grad_norm=max_grad_norm,
            )
            self._lines.append(line)

        def hook(optimizer: Any = None) -> None:
            self._dpsgd_step(line, optimizer)

        return hook

    def _dpsgd_step(self, line: _Line, optimizer: Any) -> None:
        where = f"{line.step}: DP-SGD step {line.count + 1}"
        if not any(line is mine for mine in self._lines):
            raise PrivacyError(
                f"{where}: this hook belongs to a ledger state replaced by load_state_dict; "
                f"attach a new hook from ledger.dpsgd_hook(...)"
            )
        z, q = line.noise_multiplier, line.sample_rate
        if optimizer is not None:
            actual = getattr(optimizer, "noise_multiplier", None)
            if actual is not None and float(actual) != z:
                raise PrivacyError(
                    f"{where}: the optimizer adds noise_multiplier={actual!r} but the ledger was told "
                    f"{z!r}; create the hook with the optimizer's own noise_multiplier"
                )
            clip = getattr(optimizer, "max_grad_norm", None)
            if clip is not None and float(clip) != line.max_grad_norm:
                raise PrivacyError(
                    f"{where}: the optimizer clips at max_grad_norm={clip!r} but the ledger was told "
                    f"{line.max_grad_norm!r}; create the hook with the optimizer's own max_grad_norm"
                )
            try:
                batches = int(optimizer.accumulated_iterations)
            except (AttributeError, TypeError, ValueError):
                batches = 1
            if batches != 1:
                raise PrivacyError(
                    f"{where}: the optimizer accumulated {batches} batches in one step, so the step samples at "
                    f"rate {batches} x {q:g}; call optimizer.step() after every batch"
                )
        if not self._fits_one_more(z, q):
            reached = _compose(_merged(self.accountant.history, z, q, 1), self._rdp_delta)
            raise PrivacyError(
                f"{where} would bring epsilon to {_over(reached, self._epsilon)}, over the target "
                f"{self._epsilon:g}; nothing was recorded and the step is not taken. Stop after "
                f"ledger.remaining_steps(...) steps"
            )
        self.accountant.step(noise_multiplier=z, sample_rate=q)
        line.count += 1
        line.last_position = self._position()
        if line.first_position is None:
            line.first_position = line.last_position

    def _fits_one_more(self, z: float, q: float) -> bool:
        """Whether one more (z, q) step fits; O(1) per step while nothing else is spent."""
        history = self.accountant.history
        if history and history[-1][0] == z and history[-1][1] == q:
            prefix, current = tuple(tuple(e) for e in history[:-1]), int(history[-1][2])
        else:
            prefix, current = tuple(tuple(e) for e in history), 0
        key = (prefix, z, q, self._epsilon, self._rdp_delta)
        if self._allowance is None or self._allowance[0] != key:
            self._allowance = (key, current + self._remaining(z, q))
        return current + 1 <= self._allowance[1]

    # Questions --------------------------------------------------------------------------

    def remaining_steps(self, *, noise_multiplier: float, sample_rate: float) -> int:
        """How many more DP-SGD steps with these parameters keep epsilon within the target.

        Exactly: that many steps fit, one more does not (at most :data:`MAX_STEPS`).
        """
        z = _noise_multiplier(noise_multiplier)
        q = _sample_rate(sample_rate)
        return self._remaining(z, q)

    def _remaining(self, z: float, q: float) -> int:
        history, delta = list(self.accountant.history), self._rdp_delta

        def fits(n: int) -> bool:
            return _compose(_merged(history, z, q, n), delta) <= self._epsilon

        if not fits(1):
            return 0
        low, high = 1, 2
        while fits(high):
            if high >= MAX_STEPS:
                return MAX_STEPS
            low, high = high, min(2 * high, MAX_STEPS)
        while high - low > 1:  # fits(low), not fits(high)
            mid = (low + high) // 2
            low, high = (mid, high) if fits(mid) else (low, mid)
        return low

    def epsilon_if(
        self,
        *,
        gaussians: Iterable[tuple[float, float]] = (),
        dpsgd: Iterable[tuple[float, float, int]] = (),
    ) -> float:
        """Epsilon if these were spent now: Gaussians as (sensitivity, sigma), DP-SGD runs
        as (noise_multiplier, sample_rate, steps). Records nothing."""
        history = list(self.accountant.history)
        try:
            for sensitivity, sigma in gaussians:
                z = _positive("sigma", sigma) / _positive("sensitivity", sensitivity)
                history = _merged(history, _noise_multiplier(z, name="sigma/sensitivity"), 1.0, 1)
            for noise_multiplier, sample_rate, steps in dpsgd:
                z = _noise_multiplier(noise_multiplier)
                history = _merged(history, z, _sample_rate(sample_rate), _steps(steps))
        except (TypeError, ValueError):
            raise PrivacyError(
                "epsilon_if takes gaussians as (sensitivity, sigma) pairs and dpsgd as "
                "(noise_multiplier, sample_rate, steps) triples"
            ) from None
        return _compose(history, self._rdp_delta)

    # Saving -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The budget section of the release report."""
        return {
            "epsilon": self._epsilon,
            "epsilon_spent": self.epsilon_spent,
            "delta": self._delta,
            "threshold_delta": self._threshold_delta,
            "accountant": "rdp",
            "budget": [spend.to_dict() for spend in self.spends],
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: JSON-serialisable, restored exactly by load_state_dict."""
        return {
            "format": LEDGER_FORMAT,
            "epsilon": self._epsilon,
            "delta": self._delta,
            "threshold_delta": self._threshold_delta,
            "extra_deltas": list(self._extra_deltas),
            "accountant": {
                "mechanism": "rdp",
                "history": [[float(z), float(q), int(n)] for z, q, n in self.accountant.history],
            },
            "lines": [line.to_state() for line in self._lines if line.count],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a saved ledger: the count continues where it stopped, never from zero.

        The saved budget must be this ledger's (same epsilon, delta, threshold_delta): a
        resumed run that silently changed its target would certify something else.
        """
        history, lines, extras = _parse_state(state)
        saved = (state["epsilon"], state["delta"], state["threshold_delta"])
        if tuple(float(v) for v in saved) != (self._epsilon, self._delta, self._threshold_delta):
            raise PrivacyError(
                f"the saved privacy ledger is for epsilon={saved[0]:g}, delta={saved[1]:g}, "
                f"threshold_delta={saved[2]:g}, not epsilon={self._epsilon:g}, delta={self._delta:g}, "
                f"threshold_delta={self._threshold_delta:g}; resume with the same budget "
                f"(PrivacyLedger.from_state_dict)"
            )
        self.accountant.history = history  # same accountant object: hooks bound to it keep working
        self._lines = lines
        self._extra_deltas = extras
        self._allowance = None

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> PrivacyLedger:
        if not isinstance(state, Mapping):
            raise PrivacyError("a saved privacy ledger must be a JSON object; use PrivacyLedger.state_dict()")
        try:
            ledger = cls(epsilon=state["epsilon"], delta=state["delta"], threshold_delta=state["threshold_delta"])
        except KeyError as exc:
            raise PrivacyError(
                f"the saved privacy ledger lacks {exc.args[0]!r}; use PrivacyLedger.state_dict()"
            ) from None
        ledger.load_state_dict(state)
        return ledger


def _parse_state(state: Any) -> tuple[list[tuple[float, float, int]], list[_Line], list[float]]:
    """Validate a saved ledger; a tampered or truncated one must not lower the count."""

    def bad(what: str) -> PrivacyError:
        return PrivacyError(f"the saved privacy ledger is malformed ({what}); use PrivacyLedger.state_dict()")

    if not isinstance(state, Mapping):
        raise bad("not a JSON object")
    if state.get("format") != LEDGER_FORMAT:
        raise bad(f"format {state.get('format')!r}, expected {LEDGER_FORMAT!r}")
    try:
        for key in ("epsilon", "delta", "threshold_delta"):
            _number(key, state[key])
        accountant = state["accountant"]
        if accountant.get("mechanism") != "rdp":
            raise ValueError(f"accountant {accountant.get('mechanism')!r}, expected 'rdp'")
        history = []
        for z, q, n in accountant["history"]:
            history.append((_noise_multiplier(z), _sample_rate(q), _steps(n)))
        total = sum(n for *_, n in history)
        extras = [_number("extra_delta", e) for e in state.get("extra_deltas", [])]
        if any(e <= 0 for e in extras) or math.fsum(extras) > float(state["threshold_delta"]):
            raise ValueError("extra deltas exceed threshold_delta")
        lines = []
        for entry in state["lines"]:
            kind = entry["kind"]
            if kind not in ("gaussian", "dpsgd"):
                raise ValueError(f"line kind {kind!r}")
            count = _steps(entry["count"])
            first, last = entry["first_position"], entry["last_position"]
            if not (isinstance(first, int) and isinstance(last, int) and 1 <= first <= last <= total):
                raise ValueError(f"positions {first!r}, {last!r} of line {entry['step']!r}")
            if not isinstance(entry["parameters"], dict) or not isinstance(entry["mechanism"], str):
                raise ValueError(f"line {entry['step']!r}")
            lines.append(_Line(
                step=_step_name(entry["step"]),
                mechanism=entry["mechanism"],
                kind=kind,
                parameters=json.loads(json.dumps(entry["parameters"])),
                noise_multiplier=_noise_multiplier(entry["noise_multiplier"]),
                sample_rate=_sample_rate(entry["sample_rate"]),
                max_grad_norm=None if kind == "gaussian" else _positive("max_grad_norm", entry["max_grad_norm"]),
                first_position=first,
                last_position=last,
                count=count,
                restored=kind == "dpsgd",
            ))
    except PrivacyError as exc:
        raise bad(exc.message) from None
    except KeyError as exc:
        raise bad(f"missing {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise bad(str(exc)) from None
    return history, lines, extras


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class GaussianRequest:
    """A Gaussian release to plan: its L2 sensitivity and its share of the budget."""

    sensitivity: float
    share: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensitivity", _positive("sensitivity", self.sensitivity, where="GaussianRequest"))
        object.__setattr__(self, "share", _positive("share", self.share, where="GaussianRequest"))


@dataclass(frozen=True)
class DPSGDRequest:
    """A DP-SGD run to plan: Poisson sample rate, number of steps, share of the budget."""

    sample_rate: float
    steps: int
    share: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "sample_rate", _sample_rate(self.sample_rate, where="DPSGDRequest"))
        object.__setattr__(self, "steps", _steps(self.steps, where="DPSGDRequest"))
        object.__setattr__(self, "share", _positive("share", self.share, where="DPSGDRequest"))


@dataclass(frozen=True)
class NoisePlan:
    """Noise for every planned mechanism; spent as planned, epsilon lands at ``epsilon``.

    ``sigmas`` are noise standard deviations (sensitivity included) per Gaussian,
    ``noise_multiplier`` is DP-SGD's (None without DP-SGD), ``epsilon`` the RDP
    composition of all of it (<= the target), and ``standalone`` what each component
    alone would cost (key ``"dpsgd"`` for DP-SGD); these add up to more than the target,
    which is what RDP composition saves over adding epsilons.
    """

    sigmas: dict[str, float]
    noise_multiplier: float | None
    epsilon: float
    standalone: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sigmas": dict(self.sigmas),
            "noise_multiplier": self.noise_multiplier,
            "epsilon": self.epsilon,
            "standalone": dict(self.standalone),
        }


def plan_noise(
    *,
    epsilon: float,
    delta: float,
    gaussians: Mapping[str, GaussianRequest],
    dpsgd: DPSGDRequest | None = None,
    threshold_delta: float = 0.0,
) -> NoisePlan:
    """Set the noise of every mechanism so that, all spent, epsilon is just under the target.

    Component i gets the noise that alone would cost ``share_i * E`` (shares normalised
    to sum 1), with E the largest scale at which the RDP composition of everything still
    fits the target. Because RDP composes sub-additively, E is usually above the target:
    each component gets more than its slice of a basic-composition split.
    """
    check_privacy_parameters(epsilon=epsilon, delta=delta)
    target = float(epsilon)
    rdp_delta = float(delta) - _check_threshold_delta(threshold_delta, float(delta))
    if not isinstance(gaussians, Mapping):
        raise PrivacyError("gaussians must map a release name to a GaussianRequest")
    for name, request in gaussians.items():
        if not isinstance(name, str) or not name.strip() or name == "dpsgd":
            raise PrivacyError(f"a planned Gaussian needs a name other than 'dpsgd', got {name!r}")
        if not isinstance(request, GaussianRequest):
            raise PrivacyError(f"{name}: expected a GaussianRequest(sensitivity=..., share=...), got {request!r}")
    if dpsgd is not None and not isinstance(dpsgd, DPSGDRequest):
        raise PrivacyError(f"dpsgd must be a DPSGDRequest(sample_rate=..., steps=..., share=...), got {dpsgd!r}")
    if not gaussians and dpsgd is None:
        raise PrivacyError("nothing to plan: give at least one Gaussian release or a DP-SGD run")

    names = list(gaussians)
    sensitivities = [gaussians[name].sensitivity for name in names]
    total = math.fsum([gaussians[name].share for name in names] + ([dpsgd.share] if dpsgd else []))
    shares = np.array([gaussians[name].share / total for name in names])
    aim = target * (1 - _PLAN_AIM)
    orders_half = _ORDERS / 2

    def gaussian_rdp(scale: float) -> tuple[np.ndarray, np.ndarray]:
        if not names:
            return np.zeros(0), np.zeros_like(_ORDERS)
        zs = _calibrate_gaussians(shares * scale, rdp_delta)
        return zs, orders_half * float(np.sum(1.0 / zs**2))

    if dpsgd is None:
        def excess(log_scale: float) -> float:  # increasing in the scale E
            return _fast_eps(gaussian_rdp(math.exp(log_scale))[1], rdp_delta) - aim

        low = math.log(target)
        while excess(low) > 0:
            low -= math.log(2)
            if low < math.log(target * 1e-9):
                raise _unreachable(target, rdp_delta)
        high = low + math.log(2)
        while excess(high) <= 0:
            low, high = high, high + math.log(2)
        scale = math.exp(optimize.brentq(excess, low, high, xtol=1e-10, rtol=1e-10))
        while excess(math.log(scale)) > 0:
            scale *= 1 - 1e-9
        zs = gaussian_rdp(scale)[0]
        z_dpsgd = None
    else:
        q, steps, share_d = dpsgd.sample_rate, dpsgd.steps, dpsgd.share / total

        def evaluate(z: float) -> tuple[float, float, np.ndarray]:
            rdp_d = steps * _fast_curve(q, z)
            scale = _fast_eps(rdp_d, rdp_delta) / share_d
            zs, rdp_g = gaussian_rdp(scale)
            return _fast_eps(rdp_d + rdp_g, rdp_delta), scale, zs

        def excess(log_z: float) -> float:  # decreasing in DP-SGD's noise multiplier
            return evaluate(math.exp(log_z))[0] - aim

        high = 0.0
        while excess(high) > 0:
            high += math.log(2)
            if high > math.log(1e6):
                raise _unreachable(target, rdp_delta)
        low = high - math.log(2)
        while excess(low) <= 0 and low > math.log(1e-3):
            low, high = low - math.log(2), low
        if excess(low) > 0:
            high = optimize.brentq(excess, low, high, xtol=1e-10, rtol=1e-10)
        z_dpsgd = math.exp(high)
        while excess(math.log(z_dpsgd)) > 0:
            z_dpsgd *= 1 + 1e-9
        _, scale, zs = evaluate(z_dpsgd)

    for name, z in zip(names, zs):
        if not z <= _MAX_Z:
            raise PrivacyError(
                f"{name}: its share of the budget is too small to calibrate any noise; give it a larger share"
            )
    standalone = {name: float(share * scale) for name, share in zip(names, shares)}
    if dpsgd is not None:
        standalone["dpsgd"] = float(share_d * scale)

    # Verify with Opacus itself, spent the way a ledger will record it; nudge if needed.
    sigmas = [float(z * s) for z, s in zip(zs, sensitivities)]
    for attempt in range(60):
        history: list[tuple[float, float, int]] = []
        for sigma, sensitivity in zip(sigmas, sensitivities):
            history = _merged(history, sigma / sensitivity, 1.0, 1)
        if dpsgd is not None:
            history = _merged(history, z_dpsgd, dpsgd.sample_rate, dpsgd.steps)
        reached = _compose(history, rdp_delta)
        if reached <= target * (1 - _PLAN_SLACK) and all(math.isfinite(s) for s in sigmas):
            return NoisePlan(
                sigmas=dict(zip(names, sigmas)),
                noise_multiplier=z_dpsgd,
                epsilon=reached,
                standalone=standalone,
            )
        factor = 1 + 1e-7 * 2**attempt
        sigmas = [s * factor for s in sigmas]
        z_dpsgd = None if z_dpsgd is None else z_dpsgd * factor
    raise _unreachable(target, rdp_delta)


def _unreachable(target: float, rdp_delta: float) -> PrivacyError:
    floor = float(np.min(_offsets(rdp_delta)))
    return PrivacyError(
        f"epsilon={target:g} cannot be reached with this plan at delta={rdp_delta:g} (the accountant cannot "
        f"certify less than about epsilon={floor:.3g} at this delta); raise epsilon or delta, or plan fewer steps"
    )


def gaussian_threshold(*, sigma: float, fail_probability: float) -> float:
    """Release threshold of a Gaussian sparse histogram (counts with noise std ``sigma``).

    A value held by a single person has true count 1; it is published with probability
    ``fail_probability`` at most, which a ledger then books as ``extra_delta``.
    """
    sigma = _positive("sigma", sigma)
    p = _number("fail_probability", fail_probability)
    if not 0 < p < 1:
        raise PrivacyError(f"fail_probability must be between 0 and 1 (exclusive), got {p!r}; use e.g. 1e-7")
    return 1.0 + sigma * float(norm.isf(p))


def poisson_sample(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of a Poisson sample of ``n`` rows: each row in independently with probability ``rate``.

    The accountant's assumption. Drawn in O(batch), not O(n): the number of rows
    included is Binomial(n, rate), and given that number every subset of that size is
    equally likely, so a Binomial draw followed by a uniform draw without replacement
    is the same distribution as n coin flips (3x faster on Adult than masking n uniforms).
    """
    return rng.choice(n, size=int(rng.binomial(n, rate)), replace=False, shuffle=False)
