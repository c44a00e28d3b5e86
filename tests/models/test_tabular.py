"""TabularGAN: what it samples, what it spends, what it refuses.

Fast: small tables (a few hundred to 2,000 rows) and short training
(``generator_steps`` in the tens to hundreds, one epoch of the discriminator). Fits are
seeded on the CPU, so every assertion below is deterministic.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizerFastGradientClipping
from torch.nn import functional as F

from synthdata import read_table
from synthdata.errors import ModelError, SynthdataWarning
from synthdata.models import TabularGAN
from synthdata.tabular.networks import Discriminator
from synthdata.privacy import DPSGD_MECHANISM
from synthdata.schema import Column, Schema

ADULT_TRAIN = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "adult" / "train.csv"

FAST = {"generator_steps": 200, "epochs": 1, "device": "cpu"}


# --------------------------------------------------------------------------- data


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mixed(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Every kind of column the model handles, with values dense enough to be released."""
    rng = np.random.default_rng(seed)
    score = rng.normal(50, 10, n)
    score[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame({
        "age": rng.integers(20, 60, n),                                            # int64, ~50 rows per value
        "gain": np.where(rng.random(n) < 0.9, 0, rng.integers(1000, 20000, n)),    # int64, 90% zeros
        "kids": rng.integers(0, 5, n),                                             # int64, few values
        "score": score,                                                            # float64, 20% missing
        "city": rng.choice(["Oslo", "Lima", "Pune", "Rome"], n).astype(object),    # object labels
        "smoker": rng.random(n) < 0.3,                                             # bool
    })


def _small(n: int = 1000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "size": rng.integers(1, 4, n),
        "colour": rng.choice(["red", "green", "blue"], n).astype(object),
        "flag": rng.random(n) < 0.5,
    })


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    return _mixed()


@pytest.fixture(scope="module")
def fitted(mixed) -> TabularGAN:
    return TabularGAN(epsilon=10.0, seed=0, **FAST).fit(mixed)


@pytest.fixture(scope="module")
def synthetic(fitted) -> pd.DataFrame:
    return fitted.sample(20_000, seed=1)


# --------------------------------------------------------------------------- shape of the output


def test_columns_order_and_dtypes_match_the_input(mixed, synthetic):
    assert list(synthetic.columns) == list(mixed.columns)
    assert len(synthetic) == 20_000
    for name in mixed.columns:
        assert synthetic[name].dtype == mixed[name].dtype, (name, synthetic[name].dtype, mixed[name].dtype)
    # Columns without missing values get none.
    for name in ("age", "gain", "kids", "city", "smoker"):
        assert not synthetic[name].isna().any(), name


def test_labels_are_a_subset_of_the_input_labels(mixed, synthetic):
    assert set(synthetic["city"].unique()) <= set(mixed["city"].unique())
    assert set(synthetic["smoker"].unique()) <= {True, False}
    assert all(isinstance(v, (bool, np.bool_)) for v in synthetic["smoker"].unique())


def test_float_column_keeps_missing_values_at_a_realistic_rate(mixed, synthetic):
    real = mixed["score"].isna().mean()
    fake = synthetic["score"].isna().mean()
    assert 0 < fake
    assert abs(fake - real) < 0.05, (real, fake)
    assert np.isfinite(synthetic["score"].dropna()).all()


def test_dominant_value_keeps_its_share(mixed, synthetic):
    real = (mixed["gain"] == 0).mean()
    fake = (synthetic["gain"] == 0).mean()
    assert abs(fake - real) <= 0.10, (real, fake)


def test_integers_stay_near_the_input_range(mixed, synthetic):
    """Without public bounds the range itself is a DP estimate: a released coarse cell
    (1 significant digit) may reach past the true extreme, but never further, and
    noise-only remainders must not invent values outside it."""
    from synthdata.tabular.encoding import round_significant

    for name in ("age", "gain", "kids"):
        low, high = mixed[name].min(), mixed[name].max()
        values = synthetic[name]
        outside = values[(values < low) | (values > high)]
        assert len(outside) / len(values) < 0.02, (name, len(outside))
        m, e = round_significant(np.array([max(abs(low), abs(high)), 1.0]), 1)
        cell = 10.0 ** e[0]
        assert values.min() >= low - cell and values.max() <= high + cell, (name, values.min(), values.max())


def test_integers_stay_within_public_bounds():
    rng = np.random.default_rng(3)
    n = 1000
    frame = pd.DataFrame({"age": rng.integers(18, 91, n), "visits": rng.poisson(3, n)})
    schema = Schema([Column("age", "numerical", integer=True, bounds=(18, 90)),
                     Column("visits", "numerical", integer=True, bounds=(0, 12))])
    model = TabularGAN(epsilon=10.0, seed=0, generator_steps=30, epochs=1, device="cpu").fit(frame, schema)
    sample = model.sample(20_000, seed=2)
    assert sample["age"].dtype == np.int64 and sample["visits"].dtype == np.int64
    assert sample["age"].between(18, 90).all(), (sample["age"].min(), sample["age"].max())
    assert sample["visits"].between(0, 12).all(), (sample["visits"].min(), sample["visits"].max())


# --------------------------------------------------------------------------- privacy accounting


@pytest.mark.filterwarnings("ignore::synthdata.errors.SynthdataWarning")  # tiny budgets may empty a column
@pytest.mark.parametrize("epsilon", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("discriminator", [True, False], ids=["dpsgd", "no-dpsgd"])
def test_epsilon_spent_never_exceeds_epsilon(epsilon, discriminator):
    split = None if discriminator else {"discriminator": 0.0}
    model = TabularGAN(epsilon=epsilon, seed=0, generator_steps=5, epochs=1, device="cpu",
                       budget_split=split).fit(_small())
    assert 0 < model.epsilon_spent_ <= epsilon
    assert model.ledger_.epsilon_spent == model.epsilon_spent_
    steps = [s.step for s in model.ledger_.spends]
    assert ("discriminator" in steps) == discriminator


@pytest.mark.parametrize("n", [1000, 20_000])
def test_default_delta_is_well_below_one_over_n(n):
    model = TabularGAN(epsilon=2.0, seed=0, generator_steps=5, epochs=1, device="cpu").fit(_small(n))
    assert model.delta_ < 1 / n
    assert model.delta_ <= min(1 / (n * math.log(n)), 1e-5) * (1 + 1e-12)
    assert model.ledger_.delta == model.delta_


def test_explicit_delta_is_kept():
    model = TabularGAN(epsilon=2.0, delta=1e-6, seed=0, generator_steps=5, epochs=1, device="cpu").fit(_small())
    assert model.delta_ == 1e-6


def test_every_ledger_line_is_complete_and_the_last_is_the_total(fitted):
    spends = fitted.ledger_.spends
    assert len(spends) >= 3  # preprocessing, marginals, discriminator at least
    previous = 0.0
    for spend in spends:
        assert isinstance(spend.step, str) and spend.step.strip()
        assert isinstance(spend.mechanism, str) and spend.mechanism.strip()
        assert isinstance(spend.parameters, dict) and spend.parameters
        assert spend.delta == fitted.delta_
        assert previous <= spend.epsilon <= fitted.epsilon  # cumulative, never past the target
        previous = spend.epsilon
        as_dict = spend.to_dict()
        assert set(as_dict) >= {"step", "mechanism", "epsilon", "delta", "parameters"}
        json.dumps(as_dict, allow_nan=False)
    assert spends[-1].epsilon == pytest.approx(fitted.epsilon_spent_, rel=1e-12, abs=0)
    assert fitted.epsilon_spent_ <= fitted.epsilon


@pytest.mark.parametrize("generator_steps", [25, 4], ids=["spread", "more-d-than-g-steps"])
def test_dpsgd_steps_recorded_equal_planned_steps(monkeypatch, generator_steps):
    calls = []
    original = DPOptimizerFastGradientClipping.step

    def counting_step(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DPOptimizerFastGradientClipping, "step", counting_step)
    frame = _small(1000)
    model = TabularGAN(epsilon=3.0, seed=0, generator_steps=generator_steps, epochs=1, batch_size=100,
                       device="cpu").fit(frame)
    plan = model.training_
    assert plan.noise_multiplier is not None
    # Planned from the DP row count, never from the exact one.
    assert plan.discriminator_steps == math.ceil(1 * model.n_rows_ / 100)
    line = next(s for s in model.ledger_.spends if s.step == "discriminator")
    assert line.mechanism == DPSGD_MECHANISM
    assert line.parameters["steps"] == plan.discriminator_steps
    assert line.parameters["sample_rate"] == pytest.approx(plan.sample_rate)
    assert line.parameters["noise_multiplier"] == plan.noise_multiplier
    assert len(calls) == plan.discriminator_steps  # the optimizer really stepped that often
    dpsgd = sum(n for z, q, n in model.ledger_.accountant.history
                if z == plan.noise_multiplier and q == plan.sample_rate)
    assert dpsgd == plan.discriminator_steps


# --------------------------------------------------------------------------- rare values never leak


def _adult_with_outliers() -> pd.DataFrame:
    if not ADULT_TRAIN.exists():
        pytest.skip(f"{ADULT_TRAIN} is not present (the shared datasets live beside the repository)")
    frame = read_table(ADULT_TRAIN).frame.head(2000).copy()
    assert (frame["native_country"] != "Atlantis").all() and frame["age"].max() < 100
    frame.loc[7, "native_country"] = "Atlantis"  # a unique category value
    frame.loc[11, "age"] = 150                    # a unique numeric outlier
    return frame


NOISE_SEED = 1


@pytest.mark.parametrize("epsilon", [1.0, 10.0])
def test_unique_values_never_appear_in_the_synthetic_data(epsilon):
    frame = _adult_with_outliers()
    with warnings.catch_warnings():  # 2,000 rows at epsilon 1: the private schema may warn; not the point here
        warnings.simplefilter("ignore", SynthdataWarning)
        # Test noise (a fixed draw): with fresh noise at epsilon 1 the released counts leave too few rows
        # besides 'United-States' to tell native_country from a constant in a share of releases, and it
        # was left out (CI at 8a87b4c) -- a quality question of its own (see the session-7 note), not this one.
        model = TabularGAN(epsilon=epsilon, seed=0, generator_steps=30, epochs=1, device="cpu",
                           insecure_noise_seed=NOISE_SEED).fit(frame)
    seen_countries, ages = set(), []
    for chunk in model.sample_chunks(100_000, chunk_size=50_000, seed=4):
        seen_countries |= set(chunk["native_country"].dropna().unique())
        ages.append(chunk["age"].to_numpy())
    ages = np.concatenate(ages)
    assert len(ages) == 100_000
    assert "Atlantis" not in seen_countries
    assert "United-States" in seen_countries  # the common value is there: the check is not vacuous
    assert not (ages == 150).any()
    # 150's own rounding cells: nothing else in the real table lies near it (real max 90).
    assert not (ages >= 100).any(), ages.max()


# --------------------------------------------------------------------------- persistence


def test_save_load_round_trip_gives_identical_samples(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = TabularGAN.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.sample(3000, seed=11), fitted.sample(3000, seed=11))
    assert loaded.columns_ == fitted.columns_
    assert loaded.epsilon_spent_ == fitted.epsilon_spent_
    assert loaded.delta_ == fitted.delta_
    assert [s.to_dict() for s in loaded.ledger_.spends] == [s.to_dict() for s in fitted.ledger_.spends]
    assert loaded.schema_.to_dict() == fitted.schema_.to_dict()


@pytest.mark.filterwarnings("ignore::synthdata.errors.SynthdataWarning")  # 600 rows: some values too rare
def test_seeded_cpu_fit_is_reproducible_only_with_the_test_noise_seed():
    frame = _mixed(600, seed=5)
    settings = {"epsilon": 5.0, "generator_steps": 40, "epochs": 1, "batch_size": 100, "device": "cpu"}
    first = TabularGAN(seed=7, insecure_noise_seed=3, **settings).fit(frame)
    second = TabularGAN(seed=7, insecure_noise_seed=3, **settings).fit(frame)
    other = TabularGAN(seed=8, insecure_noise_seed=3, **settings).fit(frame)
    assert first.epsilon_spent_ == second.epsilon_spent_
    pd.testing.assert_frame_equal(first.sample(2000, seed=1), second.sample(2000, seed=1))
    for a, b in zip(first.generator_.state_dict().values(), second.generator_.state_dict().values()):
        assert torch.equal(a, b)
    assert not first.sample(2000, seed=1).equals(other.sample(2000, seed=1))  # the seed matters
    # ... and a seeded noise source says, everywhere the budget is shown, that it protects nothing.
    assert "SEEDED" in first.ledger_.to_dict()["noise_source"]


@pytest.mark.filterwarnings("ignore::synthdata.errors.SynthdataWarning")  # 600 rows: small-table warnings by noise
def test_the_model_seed_never_reproduces_the_privacy_noise():
    frame = _mixed(600, seed=5)
    settings = {"epsilon": 5.0, "generator_steps": 5, "epochs": 1, "batch_size": 100, "device": "cpu"}
    first = TabularGAN(seed=7, **settings).fit(frame)
    second = TabularGAN(seed=7, **settings).fit(frame)
    counts = [c.counts for c in first.encoder_.codes_], [c.counts for c in second.encoder_.codes_]
    assert counts[0] != counts[1]  # fresh noise from the OS CSPRNG each time
    assert first.n_rows_ != second.n_rows_ or counts[0] != counts[1]
    assert "OS cryptographic entropy" in first.ledger_.to_dict()["noise_source"]


# --------------------------------------------------------------------------- load refuses


def _pwned(path: str) -> None:  # what a malicious pickle would run
    Path(path).write_text("code ran")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (_pwned, (self.marker,))


@pytest.fixture
def saved(fitted, tmp_path) -> Path:
    path = tmp_path / "model"
    fitted.save(path)
    return path


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = exc.value.message
    assert "\n" not in message and message.strip()
    return message


def test_load_refuses_a_missing_directory(tmp_path):
    with pytest.raises(ModelError) as exc:
        TabularGAN.load(tmp_path / "nowhere")
    assert "nowhere" in _one_line(exc)


def test_load_refuses_a_directory_without_a_model(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(ModelError) as exc:
        TabularGAN.load(tmp_path)
    assert "model.json" in _one_line(exc)


def test_load_refuses_a_modified_generator(saved):
    weights = saved / "generator.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte changed
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError) as exc:
        TabularGAN.load(saved)
    message = _one_line(exc)
    assert "generator.pt" in message and "checksum" in message


def test_load_refuses_a_model_json_with_another_checksum(saved):
    meta_path = saved / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["generator"]["sha256"] = hashlib.sha256(b"something else").hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError) as exc:
        TabularGAN.load(saved)
    assert "checksum" in _one_line(exc)


def test_load_refuses_a_damaged_model_json(saved):
    (saved / "model.json").write_text("{not json")
    with pytest.raises(ModelError) as exc:
        TabularGAN.load(saved)
    assert "model.json" in _one_line(exc)


def test_load_refuses_a_pickled_object_even_with_a_matching_checksum(saved, tmp_path):
    marker = tmp_path / "pwned.txt"
    weights = saved / "generator.pt"
    torch.save({"x": _Payload(marker)}, weights)
    meta_path = saved / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["generator"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()  # only weights_only protects
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError) as exc:
        TabularGAN.load(saved)
    assert "generator.pt" in _one_line(exc)
    assert not marker.exists(), "the pickled payload ran"


# --------------------------------------------------------------------------- sampling API


@pytest.mark.parametrize(("n", "chunk_size"), [(2500, 1000), (1000, 1000), (7, 1000), (0, 10), (1001, 100)])
def test_sample_chunks_sizes(fitted, n, chunk_size):
    sizes = []
    for chunk in fitted.sample_chunks(n, chunk_size=chunk_size, seed=3):
        assert list(chunk.columns) == fitted.columns_
        sizes.append(len(chunk))
    assert all(0 < size <= chunk_size for size in sizes), sizes
    assert sum(sizes) == n


@pytest.mark.parametrize("chunk_size", [0, -1])
def test_sample_chunks_refuses_a_chunk_size_below_one(fitted, chunk_size):
    with pytest.raises(ValueError):
        next(iter(fitted.sample_chunks(10, chunk_size=chunk_size, seed=1)))  # bounded: never loops


def test_sample_is_seeded(fitted):
    pd.testing.assert_frame_equal(fitted.sample(500, seed=9), fitted.sample(500, seed=9))
    assert not fitted.sample(500, seed=9).equals(fitted.sample(500, seed=10))


@pytest.mark.parametrize("call", [
    lambda m, tmp: m.sample(10),
    lambda m, tmp: list(m.sample_chunks(10)),
    lambda m, tmp: m.save(tmp / "m"),
], ids=["sample", "sample_chunks", "save"])
def test_unfitted_model_refuses(call, tmp_path):
    with pytest.raises(ModelError, match="not fitted"):
        call(TabularGAN(epsilon=1.0), tmp_path)
    assert not (tmp_path / "m").exists()


def test_unfitted_model_refuses_zero_rows():
    with pytest.raises(ModelError, match="not fitted"):
        TabularGAN(epsilon=1.0).sample(0)


def test_negative_row_count_is_refused(fitted):
    with pytest.raises(ValueError):
        fitted.sample(-5)


def test_zero_rows_keep_columns_and_dtypes(fitted, mixed):
    empty = fitted.sample(0, seed=1)
    assert len(empty) == 0 and list(empty.columns) == list(mixed.columns)


# --------------------------------------------------------------------------- exact per-sample clipping


def _reference_clipped_sum(model: Discriminator, x: torch.Tensor, labels: torch.Tensor,
                           max_grad_norm: float) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Opacus' per-sample gradients (GradSampleModule hooks), each clipped, then summed."""
    gsm = GradSampleModule(copy.deepcopy(model), loss_reduction="sum")
    x = x.clone().requires_grad_(True)  # Opacus' full backward hooks want an input that needs grad
    loss = F.binary_cross_entropy_with_logits(gsm(x), labels, reduction="sum")
    loss.backward()
    params = [p for p in gsm.parameters() if p.requires_grad]
    per_sample = [p.grad_sample.reshape(x.shape[0], -1) for p in params]
    norms = torch.cat(per_sample, dim=1).norm(dim=1)
    coef = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
    return [torch.einsum("i,i...->...", coef, p.grad_sample) for p in params], norms


@pytest.mark.parametrize("regime", ["all-clipped", "mixed", "none-clipped"])
def test_clipped_backward_equals_opacus_per_sample_clipping(regime):
    torch.manual_seed(0)
    model = Discriminator(input_dim=40, hidden=32)
    x = torch.zeros(96, 40)
    x[torch.arange(96), torch.randint(0, 40, (96,))] = 1.0  # one-hot-ish rows, as in training
    x = x + 0.3 * torch.rand(96, 40)
    labels = (torch.rand(96) < 0.5).float()
    _, norms = _reference_clipped_sum(model, x, labels, 1.0)
    max_grad_norm = {"all-clipped": float(norms.min()) / 4, "mixed": float(norms.median()),
                     "none-clipped": float(norms.max()) * 4}[regime]
    expected, norms = _reference_clipped_sum(model, x, labels, max_grad_norm)
    clipped = (norms > max_grad_norm).sum().item()
    assert clipped == {"all-clipped": 96, "none-clipped": 0}.get(regime, clipped)
    if regime == "mixed":
        assert 0 < clipped < 96

    model.zero_grad(set_to_none=True)
    losses, coef = model.clipped_backward(
        x, lambda logits: F.binary_cross_entropy_with_logits(logits, labels, reduction="none"),
        max_grad_norm=max_grad_norm)
    assert losses.shape == (96,) and coef.shape == (96,)
    for got, want in zip([p.grad for p in model.parameters()], expected):
        assert got is not None and got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    if regime == "none-clipped":  # no clipping: the plain gradient of the summed loss
        plain = copy.deepcopy(model)
        plain.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(plain(x), labels, reduction="sum").backward()
        for got, want in zip(model.parameters(), plain.parameters()):
            torch.testing.assert_close(got.grad, want.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("split, fragment", [
    ({"selection": 0.0}, "for selection"),
    ({"preprocessing": 0.0}, "for preprocessing"),
    ({"typo": 0.1}, "unknown budget_split part 'typo'"),
])
def test_budget_split_is_checked(split, fragment):
    from synthdata.errors import PrivacyError

    with pytest.raises(PrivacyError, match=fragment):
        TabularGAN(epsilon=1.0, seed=0, budget_split=split, device="cpu").fit(_small())


# --------------------------------------------------------------------------- higher-order structure


def _xor(n: int = 4000, seed: int = 12) -> pd.DataFrame:
    """c = a XOR b: every pair independent, the triple fully dependent (2-way marginals see nothing)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    return pd.DataFrame({"a": np.where(a, "yes", "no").astype(object), "b": np.where(b, "up", "down").astype(object),
                         "c": np.where(a ^ b, "odd", "even").astype(object), "d": rng.integers(0, 5, n)})


def _xor_share(sample: pd.DataFrame) -> float:
    return float(((sample["a"] == "yes") ^ (sample["b"] == "up") == (sample["c"] == "odd")).mean())


@pytest.mark.parametrize("triples", [True, False], ids=["3-way", "2-way only"])
def test_three_way_marginals_capture_what_pairs_cannot(triples):
    split = {"discriminator": 0.0, **({"selection3": 0.05, "marginals3": 0.2} if triples else {})}
    model = TabularGAN(epsilon=4.0, seed=0, generator_steps=1000, device="cpu", budget_split=split).fit(_xor())
    steps = [s.step for s in model.ledger_.spends]
    assert ("marginals3" in steps) == triples
    assert model.epsilon_spent_ <= 4.0
    share = _xor_share(model.sample(5000, seed=2))
    if triples:
        assert [t[:3] for t in model.marginals_.three_way][:1] == [(0, 1, 2)]  # the XOR triple, chosen first
        assert share > 0.8, share  # 0.88-0.97 seen over fresh noise; pairs alone stay near 0.5
    else:
        assert share < 0.7, share
