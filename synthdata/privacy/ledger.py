"""The privacy ledger: every spend on the real data, composed, never past the target.

Every release computed from the real rows (private bounds and category lists in
preprocessing, noisy marginals, every DP-SGD step of the discriminator) records a spend
in a :class:`PrivacyLedger`. The ledger composes them all with Opacus' Rényi-DP
accountant, which it holds as ``ledger.accountant`` so a ``DPOptimizer`` step hook can
drive it, and it refuses, *before* recording, any spend that would take epsilon past the
target: privacy is correctness, so the target is never exceeded, not even by one step.

Thresholded releases (Gaussian sparse histograms that publish only values whose noisy
count clears :func:`~synthdata.privacy.gaussian_threshold`) fail with a small
probability, which is an additive delta; ``threshold_delta`` reserves that part of
delta, and the RDP part is converted to (epsilon, delta - threshold_delta).
"""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import PrivacyError
from .parameters import (
    _check_threshold_delta,
    _json_parameters,
    _noise_multiplier,
    _number,
    _over,
    _positive,
    _sample_rate,
    _step_name,
    _steps,
    check_privacy_parameters,
)
from .noise import NoiseSource
from .rdp import _compose, _merged, new_accountant
from .unit import ROW, PrivacyUnit

__all__ = ["DPSGD_MECHANISM", "GAUSSIAN_MECHANISM", "LAPLACE_MECHANISM", "LEDGER_FORMAT", "MAX_STEPS",
           "PrivacyLedger", "Spend", "watch_ledgers"]

LEDGER_FORMAT = "synthdata-privacy-ledger/2"
DPSGD_MECHANISM = "DP-SGD (Poisson-subsampled Gaussian)"
GAUSSIAN_MECHANISM = "Gaussian mechanism"
LAPLACE_MECHANISM = "discrete Laplace mechanism"
#: remaining_steps() answers at most this many: beyond it, the budget is not the limit.
MAX_STEPS = 10**12
#: The lists that :func:`watch_ledgers` is collecting ledgers into (innermost last).
_WATCHERS: contextvars.ContextVar[tuple[list, ...]] = contextvars.ContextVar("synthdata_ledger_watchers", default=())


@contextmanager
def watch_ledgers() -> Iterator[list[PrivacyLedger]]:
    """Collect every :class:`PrivacyLedger` made inside the block, in a list yielded to the caller.

    The release orchestrator uses it to learn what a release spent on the real data even
    when the release stops before its model is returned (a refusal whose message carries
    DP figures still counts against the data's budget: see :mod:`synthdata.budget`).
    """
    made: list[PrivacyLedger] = []
    token = _WATCHERS.set((*_WATCHERS.get(), made))
    try:
        yield made
    finally:
        _WATCHERS.reset(token)


@dataclass(frozen=True)
class Spend:
    """One line of the privacy budget, as the report shows it.

    ``epsilon`` is cumulative: the composition of this spend with every spend recorded
    before it (not this spend alone, which would invite adding lines up). ``delta`` is
    the ledger's total delta. ``sensitivity`` is what one unit of privacy (``unit``) can
    change the released values by (L2 for Gaussians, L1 for Laplace, the clipping norm
    for DP-SGD).
    """

    step: str
    mechanism: str
    epsilon: float
    delta: float
    parameters: dict[str, Any]
    sensitivity: float | None = None
    unit: str = ROW.description

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "sensitivity": self.sensitivity,
            "unit": self.unit,
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



class PrivacyLedger:
    """The privacy budget of one release: every spend on the real data, RDP-composed.

    ``epsilon`` is the target, ``delta`` the total delta, of which ``threshold_delta`` is
    reserved for the failure probability of thresholded releases. Every spend is checked
    before it is recorded; one that would exceed the target raises
    :class:`~synthdata.errors.PrivacyError` and records nothing.
    """

    def __init__(self, *, epsilon: float, delta: float, threshold_delta: float = 0.0,
                 unit: PrivacyUnit = ROW, noise: NoiseSource | None = None) -> None:
        check_privacy_parameters(epsilon=epsilon, delta=delta)
        if not isinstance(unit, PrivacyUnit):
            raise PrivacyError(f"unit must be a PrivacyUnit, got {unit!r}")
        self._epsilon = float(epsilon)
        self._delta = float(delta)
        self._threshold_delta = _check_threshold_delta(threshold_delta, self._delta)
        self.unit = unit
        #: Where every noisy release of this ledger draws its noise (never saved).
        self.noise = noise if noise is not None else NoiseSource()
        self.accountant = new_accountant()
        self._lines: list[_Line] = []
        self._pure: list[dict[str, Any]] = []
        self._extra_deltas: list[float] = []
        self._allowance: tuple[Any, int] | None = None
        #: The noise plan (:meth:`plan`), joined to the spends by step name.
        self.plan_: Any = None
        for made in _WATCHERS.get():
            made.append(self)

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
    def pure_epsilon(self) -> float:
        """Epsilon of the pure (Laplace) spends, which compose by addition with the rest."""
        return math.fsum(line["epsilon"] for line in self._pure)

    @property
    def _rdp_target(self) -> float:
        """What the RDP-composed spends may reach: the target less the pure spends."""
        return self._epsilon - self.pure_epsilon

    @property
    def epsilon_spent(self) -> float:
        """The pure spends plus the RDP composition of everything the accountant holds."""
        return self.pure_epsilon + _compose(self.accountant.history, self._rdp_delta)

    @property
    def spends(self) -> tuple[Spend, ...]:
        """The budget lines, in the order of their first spend (pure spends come first)."""
        pure, cumulative = [], 0.0
        for line in self._pure:
            cumulative += line["epsilon"]
            pure.append(Spend(step=line["step"], mechanism=line["mechanism"], epsilon=cumulative,
                              delta=self._delta, parameters=json.loads(json.dumps(line["parameters"])),
                              sensitivity=line["sensitivity"], unit=self.unit.description))
        lines = sorted((line for line in self._lines if line.count), key=lambda line: line.first_position)
        return tuple(pure) + tuple(self._spend_of(line) for line in lines)

    def _spend_of(self, line: _Line) -> Spend:
        prefix, left = [], line.last_position
        for z, q, n in self.accountant.history:
            if left <= 0:
                break
            prefix.append((z, q, min(n, left)))
            left -= n
        sensitivity = line.max_grad_norm if line.kind == "dpsgd" else line.parameters.get("sensitivity")
        return Spend(
            step=line.step,
            mechanism=line.mechanism,
            epsilon=self.pure_epsilon + _compose(prefix, self._rdp_delta),
            delta=self._delta,
            parameters=line.public_parameters(),
            sensitivity=None if sensitivity is None else float(sensitivity),
            unit=self.unit.description,
        )

    def _position(self) -> int:
        return sum(int(n) for *_, n in self.accountant.history)

    # Spending ---------------------------------------------------------------------------

    def noisy_count(self, step: str, count: int, *, epsilon: float, sensitivity: float = 1.0,
                    mechanism: str = LAPLACE_MECHANISM, parameters: Mapping[str, Any] | None = None) -> int:
        """Release ``count`` with discrete Laplace noise for ``epsilon`` (pure ε-DP), and record it.

        Pure spends compose with the rest by addition (basic composition), so later
        mechanisms may be planned from the noisy count (a sampling rate, a number of
        steps) and still compose soundly. They must come before any other spend.
        """
        step = _step_name(step)
        epsilon = _positive("epsilon", epsilon, where=step)
        sensitivity = _positive("sensitivity", sensitivity, where=step)
        if self._lines and any(line.count for line in self._lines):
            raise PrivacyError(f"{step}: a pure (Laplace) spend must come before every Gaussian or DP-SGD spend")
        if self.pure_epsilon + epsilon >= self._epsilon:
            raise PrivacyError(f"{step}: epsilon={epsilon:g} for the count leaves nothing of the target "
                               f"{self._epsilon:g} for the rest; give the count a smaller share")
        user = _json_parameters(parameters, where=step, reserved=("scale", "sensitivity"))
        scale = sensitivity / epsilon
        noisy = self.noise.integer_laplace(int(count), scale)
        self._pure.append({"step": step, "mechanism": mechanism, "epsilon": epsilon, "sensitivity": sensitivity,
                           "parameters": {"scale": scale, **user}})
        self._allowance = None
        return noisy

    def plan(self, *, gaussians: Mapping[str, Any], dpsgd: Any = None) -> Any:
        """Plan the noise of every mechanism still to spend (see :func:`~synthdata.privacy.plan_noise`).

        The plan gets what the pure spends left of the target; it is kept as
        :attr:`plan_`, and :meth:`noisy` spends it by step name.
        """
        from .planning import plan_noise

        self.plan_ = plan_noise(epsilon=self._rdp_target, delta=self._delta, gaussians=gaussians, dpsgd=dpsgd,
                                threshold_delta=self._threshold_delta)
        return self.plan_

    def planned_multiplier(self, step: str) -> float:
        """The noise multiplier (σ over sensitivity) the plan set for ``step``."""
        if self.plan_ is None or step not in self.plan_.sigmas:
            raise PrivacyError(f"{step}: no noise was planned for this step; plan it first with ledger.plan(...)")
        return float(self.plan_.sigmas[step])

    def noisy(self, step: str, values: Any, *, sensitivity: float, integer: bool = False,
              mechanism: str = GAUSSIAN_MECHANISM, parameters: Mapping[str, Any] | None = None,
              extra_delta: float = 0.0) -> Any:
        """``values`` plus Gaussian noise at the planned level for ``step``; recorded on this ledger.

        ``sensitivity`` is the L2 sensitivity of the whole vector under the ledger's unit
        of privacy. Integer counts get OpenDP's exact discrete Gaussian. Checked before
        any noise is drawn: a release that would pass the target raises and draws nothing.
        """
        import numpy as np

        sigma = self.planned_multiplier(step) * _positive("sensitivity", sensitivity, where=step)
        self._check_gaussian(step, sensitivity=sensitivity, sigma=sigma, extra_delta=extra_delta)
        array = np.asarray(values)
        if integer:
            noisy = self.noise.integer_gaussian(np.rint(array).astype(np.int64), sigma)
        else:
            noisy = array.astype(np.float64) + self.noise.gaussian(array.shape, sigma)
        self.gaussian(step, sensitivity=sensitivity, sigma=sigma, mechanism=mechanism, parameters=parameters,
                      extra_delta=extra_delta)
        return noisy

    def _check_gaussian(self, step: str, *, sensitivity: float, sigma: float, extra_delta: float) -> None:
        z = _noise_multiplier(sigma / sensitivity, where=step, name="sigma/sensitivity")
        reached = self.pure_epsilon + _compose(_merged(self.accountant.history, z, 1.0, 1), self._rdp_delta)
        if reached > self._epsilon:
            raise PrivacyError(f"{step}: this release would bring epsilon to {_over(reached, self._epsilon)}, "
                               f"over the target {self._epsilon:g}; nothing was released")
        if extra_delta > 0 and math.fsum([*self._extra_deltas, extra_delta]) > self._threshold_delta:
            raise PrivacyError(f"{step}: extra_delta={extra_delta:g} would exceed threshold_delta="
                               f"{self._threshold_delta:g}; nothing was released")

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
        reached = self.pure_epsilon + _compose(_merged(self.accountant.history, z, 1.0, 1), self._rdp_delta)
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
            return _compose(_merged(history, z, 1.0, 1), delta) <= self._rdp_target

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
            reached = self.pure_epsilon + _compose(_merged(self.accountant.history, z, q, 1), self._rdp_delta)
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
        key = (prefix, z, q, self._rdp_target, self._rdp_delta)
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
            return _compose(_merged(history, z, q, n), delta) <= self._rdp_target

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
        return self.pure_epsilon + _compose(history, self._rdp_delta)

    # Saving -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The budget section of the release report."""
        return {
            "epsilon": self._epsilon,
            "epsilon_spent": self.epsilon_spent,
            "delta": self._delta,
            "threshold_delta": self._threshold_delta,
            "accountant": "rdp",
            "unit": self.unit.description,
            "relation": self.unit.relation,
            "noise_source": self.noise.description,
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
            "unit": self.unit.to_dict(),
            "pure": json.loads(json.dumps(self._pure)),
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
        pure = _parse_pure(state.get("pure", []))
        unit = PrivacyUnit.from_dict(state["unit"]) if "unit" in state else ROW
        if unit != self.unit:
            raise PrivacyError(f"the saved privacy ledger protects {unit.description}, not {self.unit.description}; "
                               "resume with the same privacy unit")
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
        self._pure = pure
        self._extra_deltas = extras
        self._allowance = None

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> PrivacyLedger:
        if not isinstance(state, Mapping):
            raise PrivacyError("a saved privacy ledger must be a JSON object; use PrivacyLedger.state_dict()")
        try:
            unit = PrivacyUnit.from_dict(state["unit"]) if "unit" in state else ROW
            ledger = cls(epsilon=state["epsilon"], delta=state["delta"], threshold_delta=state["threshold_delta"],
                         unit=unit)
        except KeyError as exc:
            raise PrivacyError(
                f"the saved privacy ledger lacks {exc.args[0]!r}; use PrivacyLedger.state_dict()"
            ) from None
        ledger.load_state_dict(state)
        return ledger


def _parse_pure(entries: Any) -> list[dict[str, Any]]:
    """Validate saved pure spends: a tampered entry must not lower the count."""
    def bad(what: str) -> PrivacyError:
        return PrivacyError(f"the saved privacy ledger is malformed ({what}); use PrivacyLedger.state_dict()")

    if not isinstance(entries, list):
        raise bad("pure spends are not a list")
    out = []
    for entry in entries:
        try:
            epsilon = _positive("epsilon", entry["epsilon"])
            sensitivity = _positive("sensitivity", entry["sensitivity"])
            if not isinstance(entry["parameters"], dict) or not isinstance(entry["mechanism"], str):
                raise ValueError("pure spend")
            out.append({"step": _step_name(entry["step"]), "mechanism": entry["mechanism"], "epsilon": epsilon,
                        "sensitivity": sensitivity, "parameters": json.loads(json.dumps(entry["parameters"]))})
        except PrivacyError as exc:
            raise bad(exc.message) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(str(exc)) from None
    return out


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


