"""Planning: set every mechanism's noise up front so that, all spent, epsilon lands at the target.

Planning first and then spending what was planned avoids the "train, check, oops"
overshoot, and RDP composition lets the components share the budget without paying
basic (additive) composition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from ..errors import PrivacyError
from .parameters import _MAX_Z, _check_threshold_delta, _positive, _sample_rate, _steps, check_privacy_parameters
from .rdp import _ORDERS, _calibrate_gaussians, _compose, _fast_curve, _fast_eps, _merged, _offsets

__all__ = ["DPSGDRequest", "GaussianRequest", "NoisePlan", "plan_noise"]

# A plan aims this far (relative) under the target, so that composing the same spends in
# another order (float sums are not associative) cannot push the ledger over it.
_PLAN_AIM = 1e-7
_PLAN_SLACK = 1e-10

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


