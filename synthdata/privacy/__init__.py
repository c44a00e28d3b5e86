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

from .ledger import (
    DPSGD_MECHANISM,
    GAUSSIAN_MECHANISM,
    LAPLACE_MECHANISM,
    LEDGER_FORMAT,
    MAX_STEPS,
    PrivacyLedger,
    Spend,
    watch_ledgers,
)
from .mechanisms import gaussian_threshold, poisson_sample
from .noise import NoiseSource
from .parameters import DEFAULT_DELTA, budget_split, check_delta_for_units, check_privacy_parameters, default_delta
from .planning import DPSGDRequest, GaussianRequest, NoisePlan, plan_noise
from .rdp import RDP_ORDERS
from .unit import IMAGE, ROW, PrivacyUnit

__all__ = [
    "DEFAULT_DELTA",
    "DPSGD_MECHANISM",
    "GAUSSIAN_MECHANISM",
    "IMAGE",
    "LAPLACE_MECHANISM",
    "LEDGER_FORMAT",
    "MAX_STEPS",
    "RDP_ORDERS",
    "DPSGDRequest",
    "budget_split",
    "GaussianRequest",
    "NoisePlan",
    "NoiseSource",
    "PrivacyLedger",
    "PrivacyUnit",
    "ROW",
    "Spend",
    "watch_ledgers",
    "check_delta_for_units",
    "check_privacy_parameters",
    "default_delta",
    "gaussian_threshold",
    "plan_noise",
    "poisson_sample",
]
