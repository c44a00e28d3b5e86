import json
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from opacus import GradSampleModule
from opacus.accountants.analysis.rdp import compute_rdp
from opacus.optimizers import DPOptimizer
from scipy.stats import norm

from synthdata.errors import PrivacyError
from synthdata.privacy import (
    DPSGD_MECHANISM,
    RDP_ORDERS,
    DPSGDRequest,
    GaussianRequest,
    PrivacyLedger,
    check_privacy_parameters,
    default_delta,
    gaussian_threshold,
    plan_noise,
)

DELTA = 1e-5
GAUSSIANS = {
    "bounds": GaussianRequest(sensitivity=1.0, share=0.1),
    "marginals": GaussianRequest(sensitivity=math.sqrt(2), share=0.2),
}


class FakeOptimizer:
    """What the hook reads off a DPOptimizer, without the cost of a model."""

    def __init__(self, noise_multiplier, max_grad_norm=1.0):
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.accumulated_iterations = 1


def spend_plan(ledger, plan, gaussians, dpsgd):
    """Spend exactly what was planned, the way the pipeline will."""
    for name, request in gaussians.items():
        ledger.gaussian(name, sensitivity=request.sensitivity, sigma=plan.sigmas[name])
    if dpsgd is not None:
        hook = ledger.dpsgd_hook(
            "discriminator", noise_multiplier=plan.noise_multiplier, sample_rate=dpsgd.sample_rate, max_grad_norm=1.0
        )
        optimizer = FakeOptimizer(plan.noise_multiplier)
        for _ in range(dpsgd.steps):
            hook(optimizer)


def accountant_epsilon(ledger):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns when the best order is an extreme one
        return ledger.accountant.get_epsilon(ledger.delta - ledger.threshold_delta)


# --------------------------------------------------------------------------- parameters


def test_default_delta():
    assert default_delta(1000) == 1e-5
    assert default_delta(1_000_000) == pytest.approx(1 / (1e6 * math.log(1e6)))
    assert default_delta(2) == 1e-5
    for n in (1, 0, -5):
        with pytest.raises(PrivacyError, match="at least 2 rows"):
            default_delta(n)
    with pytest.raises(PrivacyError, match="whole number"):
        default_delta(10.5)


@pytest.mark.parametrize("epsilon", [0, -1, math.inf, math.nan, "1", True, None])
def test_bad_epsilon_is_refused(epsilon):
    with pytest.raises(PrivacyError) as caught:
        check_privacy_parameters(epsilon=epsilon, delta=1e-5)
    assert caught.value.message.startswith("epsilon must be a positive finite number")
    assert "use e.g. epsilon=1.0" in caught.value.message


@pytest.mark.parametrize("delta", [0, 1, 1.5, -1e-5, math.nan, "1e-5"])
def test_bad_delta_is_refused(delta):
    with pytest.raises(PrivacyError, match=r"^delta must be a number between 0 and 1 \(exclusive\)"):
        check_privacy_parameters(epsilon=1.0, delta=delta)


def test_delta_must_be_well_below_one_over_n():
    check_privacy_parameters(epsilon=1.0, delta=1e-5, n=1000)
    with pytest.raises(PrivacyError) as caught:
        check_privacy_parameters(epsilon=1.0, delta=0.01, n=1000)
    message = caught.value.message
    assert message == "delta=0.01 is not well below 1/n=0.001 (n=1000 rows); use at most 1e-05"
    assert "\n" not in message
    expected = r"^delta=1e-06 is not well below 1/n=2e-07 \(n=5000000 rows\); use at most 1\.3e-08$"
    with pytest.raises(PrivacyError, match=expected):
        check_privacy_parameters(epsilon=1.0, delta=1e-6, n=5_000_000)


def test_ledger_refuses_bad_budgets():
    with pytest.raises(PrivacyError, match="epsilon must be"):
        PrivacyLedger(epsilon=0, delta=1e-5)
    with pytest.raises(PrivacyError, match="threshold_delta=1e-05 must be at least 0 and below delta=1e-05"):
        PrivacyLedger(epsilon=1, delta=1e-5, threshold_delta=1e-5)
    with pytest.raises(TypeError):
        PrivacyLedger(1.0, 1e-5)  # keyword-only: a swapped epsilon and delta must not pass


# --------------------------------------------------------------------------- plan + ledger


@pytest.mark.parametrize("with_gaussians", [False, True], ids=["dpsgd-only", "with-gaussians"])
@pytest.mark.parametrize("steps", [1, 100, 2000])
@pytest.mark.parametrize("sample_rate", [0.001, 0.01, 0.1])
@pytest.mark.parametrize("epsilon", [0.1, 0.5, 1, 3, 10])
def test_plan_spent_meets_target_without_exceeding(epsilon, sample_rate, steps, with_gaussians):
    gaussians = GAUSSIANS if with_gaussians else {}
    dpsgd = DPSGDRequest(sample_rate=sample_rate, steps=steps, share=0.7)
    plan = plan_noise(epsilon=epsilon, delta=DELTA, gaussians=gaussians, dpsgd=dpsgd)
    assert 0.9 * epsilon <= plan.epsilon <= epsilon
    assert set(plan.sigmas) == set(gaussians)

    ledger = PrivacyLedger(epsilon=epsilon, delta=DELTA)
    spend_plan(ledger, plan, gaussians, dpsgd)
    assert 0.9 * epsilon <= ledger.epsilon_spent <= epsilon
    assert ledger.epsilon_spent == pytest.approx(plan.epsilon, rel=1e-12)
    assert ledger.spends[-1].parameters["steps"] == steps
    if with_gaussians:
        # RDP composition is sub-additive: the standalone costs add up to more than the target.
        assert sum(plan.standalone.values()) > epsilon
        shares = {name: plan.standalone[name] / plan.standalone["dpsgd"] for name in gaussians}
        assert shares == pytest.approx({"bounds": 0.1 / 0.7, "marginals": 0.2 / 0.7})
    else:
        assert plan.standalone == {"dpsgd": pytest.approx(plan.epsilon, rel=1e-6)}


@pytest.mark.parametrize("epsilon", [0.1, 1, 10])
@pytest.mark.parametrize("threshold_delta", [0.0, 5e-6])
def test_gaussian_only_plan(epsilon, threshold_delta):
    plan = plan_noise(epsilon=epsilon, delta=DELTA, gaussians=GAUSSIANS, threshold_delta=threshold_delta)
    assert plan.noise_multiplier is None and "dpsgd" not in plan.standalone
    ledger = PrivacyLedger(epsilon=epsilon, delta=DELTA, threshold_delta=threshold_delta)
    spend_plan(ledger, plan, GAUSSIANS, None)
    assert 0.9 * epsilon <= ledger.epsilon_spent <= epsilon
    assert plan.standalone["marginals"] == pytest.approx(2 * plan.standalone["bounds"])
    # Noise scales with sensitivity: the larger share gets the smaller noise multiplier.
    assert plan.sigmas["marginals"] / math.sqrt(2) < plan.sigmas["bounds"]


def test_threshold_delta_is_taken_out_of_the_rdp_delta():
    kwargs = dict(epsilon=1.0, gaussians=GAUSSIANS, dpsgd=DPSGDRequest(sample_rate=0.01, steps=100, share=0.7))
    plain = plan_noise(delta=1e-5, **kwargs)
    reserved = plan_noise(delta=1e-5, threshold_delta=9e-6, **kwargs)
    assert reserved.noise_multiplier > plain.noise_multiplier  # less delta left: more noise
    same_rdp_delta = plan_noise(delta=1e-6, **kwargs)
    assert reserved.noise_multiplier == pytest.approx(same_rdp_delta.noise_multiplier, rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(gaussians={}), "nothing to plan"),
        (dict(gaussians={"dpsgd": GAUSSIANS["bounds"]}), "other than 'dpsgd'"),
        (dict(gaussians={"x": (1.0, 0.5)}), "x: expected a GaussianRequest"),
        (dict(gaussians={}, dpsgd=(0.01, 100, 1.0)), "dpsgd must be a DPSGDRequest"),
        (dict(gaussians=GAUSSIANS, threshold_delta=2e-5), "threshold_delta=2e-05 must be at least 0 and below"),
        (dict(gaussians=GAUSSIANS, epsilon=1e-4), "epsilon=0.0001 cannot be reached"),
    ],
)
def test_impossible_plans_are_refused(kwargs, fragment):
    arguments = dict(epsilon=1.0, delta=DELTA) | kwargs
    with pytest.raises(PrivacyError, match=fragment):
        plan_noise(**arguments)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: DPSGDRequest(sample_rate=0.0, steps=10, share=1), r"sample_rate must be in \(0, 1\]"),
        (lambda: DPSGDRequest(sample_rate=1.5, steps=10, share=1), r"sample_rate must be in \(0, 1\]"),
        (lambda: DPSGDRequest(sample_rate=0.1, steps=0, share=1), "steps must be a whole number >= 1"),
        (lambda: DPSGDRequest(sample_rate=0.1, steps=2.5, share=1), "steps must be a whole number >= 1"),
        (lambda: DPSGDRequest(sample_rate=0.1, steps=10, share=0), "share must be positive"),
        (lambda: GaussianRequest(sensitivity=1.0, share=-1), "share must be positive"),
        (lambda: GaussianRequest(sensitivity=0.0, share=1), "sensitivity must be positive"),
        (lambda: GaussianRequest(sensitivity=math.inf, share=1), "sensitivity must be a finite number"),
    ],
)
def test_bad_requests_are_refused(make, fragment):
    with pytest.raises(PrivacyError, match=fragment):
        make()


# --------------------------------------------------------------------------- ledger


def test_gaussian_refuses_a_spend_over_the_target_and_records_nothing():
    ledger = PrivacyLedger(epsilon=1.0, delta=DELTA)
    ledger.gaussian("bounds", sensitivity=1.0, sigma=5.0)
    before = (list(ledger.accountant.history), ledger.spends, ledger.epsilon_spent, ledger.state_dict())
    assert ledger.epsilon_if(gaussians=[(1.0, 2.0)]) > 1.0
    with pytest.raises(PrivacyError) as caught:
        ledger.gaussian("marginals", sensitivity=1.0, sigma=2.0)
    message = caught.value.message
    assert message.startswith("marginals: this Gaussian release (sigma=2, sensitivity=1) would bring epsilon to ")
    reached = float(message.split("epsilon to ")[1].split(",")[0])
    assert reached > 1.0 and "over the target 1;" in message and "nothing was recorded" in message
    after = (list(ledger.accountant.history), ledger.spends, ledger.epsilon_spent, ledger.state_dict())
    assert after == before
    # The suggested noise does fit.
    suggested = float(message.split("sigma >= ")[1].split(",")[0])
    assert ledger.epsilon_if(gaussians=[(1.0, suggested)]) <= 1.0
    spend = ledger.gaussian("marginals", sensitivity=1.0, sigma=suggested)
    assert spend.epsilon == ledger.epsilon_spent <= 1.0


def test_extra_delta_stays_within_threshold_delta():
    ledger = PrivacyLedger(epsilon=5.0, delta=1e-5, threshold_delta=2e-6)
    spend = ledger.gaussian("categories", sensitivity=1.0, sigma=3.0, extra_delta=1.5e-6,
                            mechanism="Gaussian sparse histogram")
    assert spend.parameters["extra_delta"] == 1.5e-6 and spend.mechanism == "Gaussian sparse histogram"
    before = ledger.state_dict()
    with pytest.raises(PrivacyError, match=r"categories2: extra_delta=1e-06 would bring the thresholding delta to "
                                           r"2\.5e-06, over threshold_delta=2e-06; nothing was recorded"):
        ledger.gaussian("categories2", sensitivity=1.0, sigma=3.0, extra_delta=1e-6)
    assert ledger.state_dict() == before
    ledger.gaussian("categories2", sensitivity=1.0, sigma=3.0, extra_delta=5e-7)
    with pytest.raises(PrivacyError, match="over threshold_delta=0"):
        PrivacyLedger(epsilon=5.0, delta=1e-5).gaussian("c", sensitivity=1.0, sigma=3.0, extra_delta=1e-9)


def test_remaining_steps_is_exact():
    ledger = PrivacyLedger(epsilon=1.0, delta=DELTA)
    ledger.gaussian("marginals", sensitivity=1.0, sigma=20.0)
    z, q = 1.1, 0.01
    remaining = ledger.remaining_steps(noise_multiplier=z, sample_rate=q)
    assert 10 < remaining < 10_000
    hook = ledger.dpsgd_hook("discriminator", noise_multiplier=z, sample_rate=q, max_grad_norm=1.0)
    for _ in range(remaining):
        hook(FakeOptimizer(z))
    assert ledger.epsilon_spent <= 1.0
    assert ledger.remaining_steps(noise_multiplier=z, sample_rate=q) == 0
    assert ledger.epsilon_if(dpsgd=[(z, q, 1)]) > 1.0
    history = list(ledger.accountant.history)
    with pytest.raises(PrivacyError, match=rf"discriminator: DP-SGD step {remaining + 1} would bring epsilon to 1\.0"):
        hook(FakeOptimizer(z))
    assert ledger.accountant.history == history
    assert ledger.spends[-1].parameters["steps"] == remaining


def test_remaining_steps_when_the_budget_is_not_the_limit():
    ledger = PrivacyLedger(epsilon=10.0, delta=DELTA)
    assert ledger.remaining_steps(noise_multiplier=1e4, sample_rate=1e-4) == 10**12
    assert ledger.remaining_steps(noise_multiplier=0.01, sample_rate=1.0) == 0


def test_gaussian_is_plain_gaussian_rdp_in_opacus():
    """sample_rate=1 is the Gaussian mechanism itself: RDP alpha / (2 z^2), no subsampling."""
    z = 1.5
    assert np.array_equal(compute_rdp(q=1.0, noise_multiplier=z, steps=1, orders=list(RDP_ORDERS)),
                          np.array(RDP_ORDERS) / (2 * z**2))
    ledger = PrivacyLedger(epsilon=10.0, delta=DELTA)
    spend = ledger.gaussian("bounds", sensitivity=2.0, sigma=3.0)
    assert ledger.accountant.history == [(z, 1.0, 1)]
    alphas = np.array(RDP_ORDERS)
    closed_form = np.min(alphas / (2 * z**2) - (np.log(DELTA) + np.log(alphas)) / (alphas - 1)
                         + np.log((alphas - 1) / alphas))
    assert spend.epsilon == ledger.epsilon_spent == pytest.approx(closed_form, rel=1e-12)
    assert accountant_epsilon(ledger) == ledger.epsilon_spent


def test_spend_lines_and_cumulative_epsilons():
    ledger = PrivacyLedger(epsilon=10.0, delta=DELTA)
    hook = ledger.dpsgd_hook("discriminator", noise_multiplier=1.0, sample_rate=0.01, max_grad_norm=2.0,
                             parameters={"batch_size": 64})
    assert ledger.spends == () and ledger.epsilon_spent == 0.0
    first = ledger.gaussian("bounds", sensitivity=1.0, sigma=4.0, parameters={"columns": ("age", "income")})
    second = ledger.gaussian("marginals", sensitivity=1.0, sigma=4.0)  # Opacus merges it with the first
    assert ledger.accountant.history == [(4.0, 1.0, 2)]
    for _ in range(3):
        hook(None)
    spends = ledger.spends
    assert [s.step for s in spends] == ["bounds", "marginals", "discriminator"]  # by first spend
    assert spends[0] == first and spends[1] == second
    assert first.epsilon == PrivacyLedger(epsilon=10.0, delta=DELTA).gaussian("x", sensitivity=1.0, sigma=4.0).epsilon
    assert second.epsilon == pytest.approx(PrivacyLedger(epsilon=10.0, delta=DELTA).epsilon_if(
        gaussians=[(1.0, 4.0), (1.0, 4.0)]), rel=1e-12)
    assert first.epsilon < second.epsilon < spends[2].epsilon == ledger.epsilon_spent
    assert spends[0].parameters == {"sensitivity": 1.0, "sigma": 4.0, "noise_multiplier": 4.0, "sample_rate": 1.0,
                                    "steps": 1, "columns": ["age", "income"]}
    assert spends[2].mechanism == DPSGD_MECHANISM
    assert spends[2].parameters == {"noise_multiplier": 1.0, "sample_rate": 0.01, "max_grad_norm": 2.0,
                                    "batch_size": 64, "steps": 3}
    report = ledger.to_dict()
    assert json.loads(json.dumps(report)) == report
    assert report["accountant"] == "rdp" and report["epsilon"] == 10.0
    assert report["epsilon_spent"] == ledger.epsilon_spent == accountant_epsilon(ledger)
    assert report["budget"] == [s.to_dict() for s in spends]
    assert set(report["budget"][0]) == {"step", "mechanism", "epsilon", "delta", "sensitivity", "unit", "parameters"}


def test_interleaved_lines_keep_their_own_cumulative_epsilon():
    ledger = PrivacyLedger(epsilon=10.0, delta=DELTA)
    hook = ledger.dpsgd_hook("discriminator", noise_multiplier=1.2, sample_rate=0.02, max_grad_norm=1.0)
    hook(None)
    hook(None)
    middle = ledger.gaussian("marginals", sensitivity=1.0, sigma=6.0)
    hook(None)
    lines = ledger.spends
    assert [s.step for s in lines] == ["discriminator", "marginals"]
    assert lines[0].parameters["steps"] == 3 and lines[0].epsilon == ledger.epsilon_spent
    assert lines[1] == middle and middle.epsilon < ledger.epsilon_spent


def test_parameters_must_be_json_and_not_shadow_the_ledger():
    ledger = PrivacyLedger(epsilon=1.0, delta=DELTA)
    with pytest.raises(PrivacyError, match="bounds: parameter 'sigma' is set by the ledger itself"):
        ledger.gaussian("bounds", sensitivity=1.0, sigma=50.0, parameters={"sigma": 1.0})
    with pytest.raises(PrivacyError, match="bounds: parameters must be JSON-serialisable"):
        ledger.gaussian("bounds", sensitivity=1.0, sigma=50.0, parameters={"x": object()})
    with pytest.raises(PrivacyError, match="needs a step name"):
        ledger.gaussian("", sensitivity=1.0, sigma=50.0)
    with pytest.raises(PrivacyError, match="bounds: sigma must be positive"):
        ledger.gaussian("bounds", sensitivity=1.0, sigma=0.0)
    with pytest.raises(PrivacyError, match=r"d: sample_rate must be in \(0, 1\]"):
        ledger.dpsgd_hook("d", noise_multiplier=1.0, sample_rate=2.0, max_grad_norm=1.0)
    assert ledger.accountant.history == [] and ledger.spends == ()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 10.0), st.floats(0.2, 30.0)), min_size=1, max_size=12))
def test_gaussian_spends_never_exceed_the_target(releases):
    ledger = PrivacyLedger(epsilon=1.0, delta=DELTA)
    for sensitivity, sigma in releases:
        before = ledger.epsilon_spent
        expected = ledger.epsilon_if(gaussians=[(sensitivity, sigma)])
        try:
            spend = ledger.gaussian("release", sensitivity=sensitivity, sigma=sigma)
        except PrivacyError:
            assert expected > 1.0 and ledger.epsilon_spent == before
        else:
            assert spend.epsilon == expected == ledger.epsilon_spent <= 1.0
    assert ledger.epsilon_spent <= 1.0


# --------------------------------------------------------------------------- saving, resuming


def test_state_dict_round_trip_continues_the_count():
    z, q = 1.3, 0.02
    ledger = PrivacyLedger(epsilon=3.0, delta=DELTA, threshold_delta=1e-6)
    ledger.gaussian("categories", sensitivity=1.0, sigma=8.0, extra_delta=4e-7)
    hook = ledger.dpsgd_hook("discriminator", noise_multiplier=z, sample_rate=q, max_grad_norm=1.0)
    for _ in range(5):
        hook(None)
    state = json.loads(json.dumps(ledger.state_dict()))

    resumed = PrivacyLedger.from_state_dict(state)
    assert resumed.spends == ledger.spends
    assert resumed.epsilon_spent == ledger.epsilon_spent
    assert resumed.to_dict() == ledger.to_dict()
    assert resumed.accountant.history == ledger.accountant.history
    assert (resumed.epsilon, resumed.delta, resumed.threshold_delta) == (3.0, DELTA, 1e-6)

    hook = resumed.dpsgd_hook("discriminator", noise_multiplier=z, sample_rate=q, max_grad_norm=1.0)
    for _ in range(3):
        hook(None)
    assert [s.step for s in resumed.spends] == ["categories", "discriminator"]
    assert resumed.spends[-1].parameters["steps"] == 8
    assert resumed.accountant.history == [(8.0, 1.0, 1), (z, q, 8)]

    uninterrupted = PrivacyLedger(epsilon=3.0, delta=DELTA, threshold_delta=1e-6)
    uninterrupted.gaussian("categories", sensitivity=1.0, sigma=8.0, extra_delta=4e-7)
    hook = uninterrupted.dpsgd_hook("discriminator", noise_multiplier=z, sample_rate=q, max_grad_norm=1.0)
    for _ in range(8):
        hook(None)
    assert resumed.epsilon_spent == uninterrupted.epsilon_spent
    assert resumed.spends == uninterrupted.spends
    # The reserved thresholding delta stays spent too.
    with pytest.raises(PrivacyError, match="over threshold_delta"):
        resumed.gaussian("more", sensitivity=1.0, sigma=8.0, extra_delta=7e-7)


def test_load_state_dict_into_a_ledger_in_use():
    ledger = PrivacyLedger(epsilon=3.0, delta=DELTA)
    stale = ledger.dpsgd_hook("discriminator", noise_multiplier=1.0, sample_rate=0.01, max_grad_norm=1.0)
    stale(None)
    saved = ledger.state_dict()
    stale(None)
    accountant = ledger.accountant
    ledger.load_state_dict(saved)
    assert ledger.accountant is accountant and accountant.history == [(1.0, 0.01, 1)]
    with pytest.raises(PrivacyError, match="replaced by load_state_dict"):
        stale(None)
    with pytest.raises(PrivacyError, match="saved privacy ledger is for epsilon=3, delta=1e-05"):
        PrivacyLedger(epsilon=1.0, delta=DELTA).load_state_dict(saved)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s.update(format="other/1"),
        lambda s: s["accountant"].update(history=[[1.0, 0.01, 0]]),
        lambda s: s["accountant"].update(history=[[-1.0, 0.01, 3]]),
        lambda s: s["lines"][0].update(last_position=99),
        lambda s: s.pop("lines"),
        lambda s: s.update(extra_deltas=[1.0]),
    ],
)
def test_malformed_state_is_refused(tamper):
    ledger = PrivacyLedger(epsilon=3.0, delta=DELTA, threshold_delta=1e-6)
    ledger.gaussian("bounds", sensitivity=1.0, sigma=5.0)
    state = json.loads(json.dumps(ledger.state_dict()))
    tamper(state)
    with pytest.raises(PrivacyError, match="saved privacy ledger"):
        PrivacyLedger.from_state_dict(state)


# --------------------------------------------------------------------------- Opacus


def _train(optimizer, model, steps):
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


def _dp_optimizer(noise_multiplier):
    torch.manual_seed(0)
    model = GradSampleModule(torch.nn.Linear(3, 1))
    optimizer = DPOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), noise_multiplier=noise_multiplier,
                            max_grad_norm=1.0, expected_batch_size=8)
    return model, optimizer


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_dp_optimizer_hook_counts_every_step():
    model, optimizer = _dp_optimizer(1.1)
    ledger = PrivacyLedger(epsilon=5.0, delta=DELTA)
    optimizer.attach_step_hook(
        ledger.dpsgd_hook("discriminator", noise_multiplier=1.1, sample_rate=0.05, max_grad_norm=1.0)
    )
    _train(optimizer, model, 7)
    assert ledger.accountant.history == [(1.1, 0.05, 7)]
    (spend,) = ledger.spends
    assert spend.parameters["steps"] == 7
    assert spend.epsilon == ledger.epsilon_spent == ledger.epsilon_if() == accountant_epsilon(ledger)

    # Two batches accumulated into one step sample at twice the rate: refused, not under-counted.
    optimizer.zero_grad()
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    for _ in range(2):
        torch.nn.functional.mse_loss(model(x), y).backward()
    weight = model._module.weight.detach().clone()
    with pytest.raises(PrivacyError, match="accumulated 2 batches"):
        optimizer.step()
    assert torch.equal(weight, model._module.weight) and ledger.accountant.history == [(1.1, 0.05, 7)]


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_dp_optimizer_with_other_noise_is_refused():
    model, optimizer = _dp_optimizer(0.5)
    ledger = PrivacyLedger(epsilon=5.0, delta=DELTA)
    optimizer.attach_step_hook(
        ledger.dpsgd_hook("discriminator", noise_multiplier=1.1, sample_rate=0.05, max_grad_norm=1.0)
    )
    weight = model._module.weight.detach().clone()
    with pytest.raises(PrivacyError, match="the optimizer adds noise_multiplier=0.5 but the ledger was told 1.1"):
        _train(optimizer, model, 1)
    assert torch.equal(weight, model._module.weight) and ledger.accountant.history == []


# --------------------------------------------------------------------------- thresholds


def test_gaussian_threshold():
    tau = gaussian_threshold(sigma=2.0, fail_probability=1e-6)
    assert tau == pytest.approx(1 + 2.0 * 4.753424308822899)
    for sigma, p in [(0.5, 1e-9), (2.0, 1e-6), (10.0, 0.01), (3.0, 0.3)]:
        tau = gaussian_threshold(sigma=sigma, fail_probability=p)
        assert norm.sf(tau, loc=1.0, scale=sigma) == pytest.approx(p, rel=1e-9)
    sigmas = [gaussian_threshold(sigma=s, fail_probability=1e-6) for s in (0.5, 1, 2, 5, 20)]
    assert sigmas == sorted(sigmas) and len(set(sigmas)) == 5
    fails = [gaussian_threshold(sigma=2.0, fail_probability=p) for p in (0.1, 1e-3, 1e-6, 1e-9, 1e-12)]
    assert fails == sorted(fails) and len(set(fails)) == 5
    # A single person's count crosses the threshold at the stated rate.
    rng = np.random.default_rng(7)
    tau = gaussian_threshold(sigma=2.0, fail_probability=0.01)
    released = np.mean(1 + rng.normal(0, 2.0, 1_000_000) > tau)
    assert abs(released - 0.01) < 5 * math.sqrt(0.01 * 0.99 / 1_000_000)
    with pytest.raises(PrivacyError, match="fail_probability must be between 0 and 1"):
        gaussian_threshold(sigma=1.0, fail_probability=0.0)
    with pytest.raises(PrivacyError, match="sigma must be positive"):
        gaussian_threshold(sigma=-1.0, fail_probability=1e-6)
