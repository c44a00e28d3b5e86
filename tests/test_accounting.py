"""The ledger's epsilon, cross-checked with an independent accountant: Google's dp-accounting.

The ledger composes its Gaussian releases and DP-SGD steps with Opacus' RDP accountant
and adds the pure-epsilon counts by basic composition. Here the same events go through
dp-accounting's own RDP accountant (which must agree closely) and its privacy-loss
distribution (PLD) accountant, which is tighter: the ledger may claim more epsilon than
the PLD proves (it is conservative), never less.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

dp_accounting = pytest.importorskip("dp_accounting")
from dp_accounting import dp_event  # noqa: E402
from dp_accounting.pld import pld_privacy_accountant  # noqa: E402
from dp_accounting.rdp import rdp_privacy_accountant  # noqa: E402

from synthdata.models import TabularGAN  # noqa: E402
from synthdata.privacy import DPSGDRequest, GaussianRequest, NoiseSource, PrivacyLedger  # noqa: E402
from synthdata.privacy.rdp import RDP_ORDERS  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::synthdata.errors.SynthdataWarning")]


def _events(state: dict) -> dp_event.DpEvent:
    """The ledger's RDP-composed spends as dp-accounting events."""
    events = []
    for z, q, steps in state["accountant"]["history"]:
        gaussian = dp_event.GaussianDpEvent(noise_multiplier=z)
        single = gaussian if q == 1.0 else dp_event.PoissonSampledDpEvent(sampling_probability=q, event=gaussian)
        events.append(dp_event.SelfComposedDpEvent(single, int(steps)))
    return dp_event.ComposedDpEvent(events)


def _independent(state: dict, delta: float) -> tuple[float, float]:
    """(RDP epsilon, PLD epsilon) of the RDP-composed part, by dp-accounting."""
    event = _events(state)
    rdp = rdp_privacy_accountant.RdpAccountant(orders=list(RDP_ORDERS))
    rdp.compose(event)
    pld = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4)
    pld.compose(event)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rdp.get_epsilon(delta), pld.get_epsilon(delta)


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 10.0])
def test_a_planned_ledger_agrees_with_dp_accounting(epsilon):
    ledger = PrivacyLedger(epsilon=epsilon, delta=1e-6, threshold_delta=1e-7, noise=NoiseSource(seed=0))
    count = ledger.noisy_count("row count", 10_000, epsilon=0.05 * epsilon)
    q = 256 / count
    ledger.plan(gaussians={"preprocessing": GaussianRequest(sensitivity=1.0, share=0.3),
                           "marginals": GaussianRequest(sensitivity=1.0, share=0.5)},
                dpsgd=DPSGDRequest(sample_rate=q, steps=400, share=0.2))
    ledger.noisy("preprocessing", np.zeros(50), sensitivity=3.0, integer=True)
    ledger.noisy("marginals", np.zeros(200), sensitivity=2.0)
    hook = ledger.dpsgd_hook("discriminator", noise_multiplier=ledger.plan_.noise_multiplier, sample_rate=q,
                             max_grad_norm=1.0)
    for _ in range(400):
        hook()
    state = ledger.state_dict()
    rdp, pld = _independent(state, ledger.delta - ledger.threshold_delta)
    rdp_part = ledger.epsilon_spent - ledger.pure_epsilon
    assert ledger.epsilon_spent <= epsilon
    assert rdp_part == pytest.approx(rdp, rel=0.02)  # the same RDP bound, computed independently
    assert pld <= rdp_part + 1e-9  # the tighter PLD bound never exceeds what the ledger claims
    assert pld > 0.5 * rdp_part  # ... and the claim is not wildly loose


def test_a_real_fit_ledger_agrees_with_dp_accounting():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.integers(0, 5, 2000), "b": rng.choice(["x", "y", "z"], 2000).astype(object),
                          "c": rng.normal(size=2000).round(2)})
    model = TabularGAN(epsilon=2.0, generator_steps=30, epochs=1, batch_size=128, device="cpu").fit(frame)
    ledger = model.ledger_
    rdp, pld = _independent(ledger.state_dict(), ledger.delta - ledger.threshold_delta)
    assert ledger.epsilon_spent == pytest.approx(ledger.pure_epsilon + rdp, rel=0.02)
    assert ledger.pure_epsilon + pld <= ledger.epsilon_spent + 1e-9 <= 2.0 + 1e-9
    assert {spend.step for spend in ledger.spends} >= {"row count", "schema", "preprocessing", "discriminator"}
