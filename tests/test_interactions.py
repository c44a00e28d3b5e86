"""Interaction data: synthetic users' histories over the DP catalogue, the user as the unit of privacy."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from synthdata import from_frame
from synthdata.errors import DataError
from synthdata.interactions.baselines import dp_cooccurrence, dp_popularity
from synthdata.interactions.data import baskets_from_frame
from synthdata.interactions.estimator import (
    ACTIVITY_BINS,
    SCORES_STEP,
    InteractionGAN,
    _bin_of,
    _cap_items,
    catalogue_counts,
    plan_catalogue,
    top_item_weights,
)
from synthdata.interactions.modality import InteractionModality
from synthdata.interactions.recommender import ItemKNN, Popularity, evaluate, make_queries, recommender
from synthdata.models import MODELS, model_class
from synthdata.privacy import NoiseSource, PrivacyLedger

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"generator_steps": 300, "epochs": 0.5}


def shop(users: int = 3000, seed: int = 0, *, singles: int = 200) -> pd.DataFrame:
    """Users of 8 types, each type with its favourite items over a Zipf popularity; plus
    ``singles`` items each bought by exactly one user (they must never be released)."""
    rng = np.random.default_rng(seed)
    items = 300
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    structure = np.random.default_rng(1234)  # the same shop whatever the seed: only its customers differ
    favourites = [structure.choice(items, 15, replace=False) for _ in range(8)]
    rows = []
    for u in range(users):
        p = popularity.copy()
        p[favourites[u % 8]] *= 100
        p /= p.sum()
        n = int(min(items, 1 + rng.geometric(0.08)))
        rows += [(f"cust{u:05d}", f"SKU{i:03d}", int(rng.integers(1, 5))) for i in rng.choice(items, n, False, p=p)]
    for k in range(singles):
        rows.append((f"cust{rng.integers(users):05d}", f"RARE{k:04d}", 1))
    rows += [(None, "SKU000", 1)] * 50  # guest checkouts: no user
    return pd.DataFrame(rows, columns=["customer_id", "sku", "quantity"])


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return shop()


@pytest.fixture(scope="module")
def fitted(data) -> InteractionGAN:
    # The generator at its default steps: at FAST's 300 the mixture has barely begun to split into
    # user types (item-kNN 0.24-0.28 against 0.22-0.25 with the items dealt out at random, over ten
    # fits under fresh noise), at 1000 it reads 0.59-0.64 (2000: 0.63). ~15 s.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return InteractionGAN(epsilon=4.0, seed=0, epochs=0.5).fit(data, user="customer_id", item="sku")


def test_baskets_are_distinct_items_per_user_and_rows_without_a_user_are_left_out():
    frame = pd.DataFrame({"u": ["a", "a", "a", None, "b", "b"], "i": [1, 1.0, "x", 1, None, "y"]})
    baskets = baskets_from_frame(frame, user="u", item="i")
    assert list(baskets.users) == ["a", "b"]
    assert list(baskets.sizes) == [2, 1]  # 1 and 1.0 are one item; the row without an item is no interaction
    assert sorted(baskets.items) == ["1", "x", "y"]


def test_the_cap_keeps_at_most_k_items_per_user_drawn_uniformly():
    matrix = sp.csr_matrix(np.r_[np.ones((1, 10)), np.eye(10)[:3]])
    rng = np.random.default_rng(3)
    kept = np.zeros(10)
    for _ in range(3000):
        capped = _cap_items(matrix, 4, rng)
        assert list(np.diff(capped.indptr)) == [4, 1, 1, 1]
        kept += capped.toarray()[0]
    assert np.all(np.abs(kept / 3000 - 0.4) < 0.04)


def test_the_catalogue_count_weighs_each_users_items_to_unit_norm_and_counts_only_counted_items():
    # Users hold 10, 4 and 1 items; with a cap of 16 nobody is sampled down.
    matrix = sp.csr_matrix(np.array([[1] * 10, [1] * 4 + [0] * 6, [1] + [0] * 9], dtype=np.float32))
    items, counts = catalogue_counts(matrix, 16, np.random.default_rng(0))
    expected = np.r_[1 / np.sqrt(10) + 1 / 2 + 1, [1 / np.sqrt(10) + 1 / 2] * 3, [1 / np.sqrt(10)] * 6]
    assert list(items) == list(range(10)) and counts == pytest.approx(expected)
    # Sampled down to the cap: 4 of 9 items counted, 1/2 each (L2 norm 1); the other 5 are no candidates,
    # so an item only this user holds and their sample left out can never be released.
    rng = np.random.default_rng(1)
    for _ in range(50):
        items, counts = catalogue_counts(sp.csr_matrix(np.ones((1, 9), dtype=np.float32)), 4, rng)
        assert len(items) == 4 and counts == pytest.approx([0.5] * 4)


def test_pass_two_puts_each_users_unit_norm_on_their_top_scored_held_items_only():
    rng = np.random.default_rng(7)
    dense = (rng.random((40, 25)) < 0.2).astype(np.float32)
    dense[3] = 0  # a user with no item puts no weight anywhere
    matrix = sp.csr_matrix(dense)
    scores = rng.normal(size=25)
    for top in (1, 3, 8):
        weights = top_item_weights(matrix, scores, top, rng)
        norms = np.sqrt(np.asarray(weights.multiply(weights).sum(1)).ravel())
        held = np.diff(matrix.indptr)
        assert np.all(norms <= 1 + 1e-12) and np.allclose(norms[held > 0], 1.0) and norms[3] == 0
        assert (weights.multiply(matrix) != weights).nnz == 0  # weight only on items the user holds
        for user in range(40):
            own = matrix.indices[matrix.indptr[user]:matrix.indptr[user + 1]]
            chosen = weights[user].indices
            assert len(chosen) == min(top, len(own))
            assert set(chosen) == set(own[np.argsort(-scores[own])][:top])  # the user's own top-scored items


def test_the_catalogue_takes_two_passes_only_when_the_population_is_small_for_the_budget():
    def planned(users: float):
        ledger = PrivacyLedger(epsilon=1.0, delta=1e-6, threshold_delta=1e-7)
        return plan_catalogue(ledger, {"activity": 0.2, "catalogue": 0.8}, users), set(ledger.plan_.sigmas)
    top, steps = planned(568)
    assert top == 1 and steps == {"activity", SCORES_STEP, "catalogue"}
    top, steps = planned(200_000)
    assert top is None and steps == {"activity", "catalogue"}


def test_the_two_pass_catalogue_keeps_its_pass_one_scores_out_of_everything_published(tmp_path, monkeypatch):
    scores = []
    spend = PrivacyLedger.noisy

    def watching(self, step, values, **kwargs):
        noisy = spend(self, step, values, **kwargs)
        if step == SCORES_STEP:
            scores.append(np.array(noisy, dtype=float))
        return noisy

    monkeypatch.setattr(PrivacyLedger, "noisy", watching)
    frame = shop(users=800, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = InteractionGAN(epsilon=4.0, top_items_per_user=4, **FAST).fit(frame, user="customer_id", item="sku")
    lines = {line.step: line for line in model.ledger_.spends}
    assert list(lines)[:4] == ["customer count", "activity", SCORES_STEP, "catalogue"]
    assert lines[SCORES_STEP].sensitivity == 1.0 and lines["catalogue"].sensitivity == 1.0
    assert lines[SCORES_STEP].parameters["published"] is False and lines["catalogue"].parameters["items_per_user"] == 4
    assert len(scores) == 1 and len(scores[0]) == frame["sku"].nunique()  # every held item scored once
    single = set(frame.groupby("sku")["customer_id"].nunique().loc[lambda s: s == 1].index)
    assert len(model.catalogue_) >= 10 and not single & set(model.catalogue_)
    model.save(tmp_path / "model")
    published = json.dumps([json.loads((tmp_path / "model" / "model.json").read_text()),
                            model.ledger_.state_dict()])
    numbers = {float(v) for v in __import__("re").findall(r"-?\d+\.\d+(?:e-?\d+)?", published)}
    assert numbers and not numbers & set(scores[0].tolist())  # no pass-1 score, not even a released item's
    assert not any(isinstance(v, np.ndarray) and v.shape == scores[0].shape for v in vars(model).values())
    assert model.measurements_.top_items == 4 and InteractionGAN.load(tmp_path / "model").measurements_.top_items == 4


def test_no_item_held_by_a_single_user_is_ever_released(data, fitted):
    single = set(data.groupby("sku")["customer_id"].nunique().loc[lambda s: s == 1].index)
    assert len(single) >= 200
    assert not single & set(fitted.catalogue_)
    synthetic = fitted.sample(2000, seed=1)
    assert not single & set(synthetic["sku"])
    assert len(fitted.catalogue_) > 50  # the popular items are released


def test_the_guarantee_is_per_user_and_every_spend_says_so(fitted):
    lines = {line.step: line for line in fitted.ledger_.spends}
    assert list(lines) == ["customer count", "activity", "catalogue", "cooccurrence", "discriminator"]
    assert {line.unit for line in lines.values()} == {"one customer (customer_id): all their interactions"}
    assert lines["activity"].sensitivity == 1.0  # one user is in one bin
    assert lines["catalogue"].sensitivity == 1.0  # a user's counted items are weighted to unit L2 norm
    assert lines["cooccurrence"].sensitivity == 1.0  # a user's pairs are weighted to unit norm
    assert lines["discriminator"].parameters["sampled"].startswith("users")
    assert fitted.epsilon_spent_ <= 4.0
    assert fitted.ledger_.unit.relation.startswith("add/remove one customer with all their interactions")


def test_synthetic_users_are_new_ids_with_realistic_activity(data, fitted):
    synthetic = fitted.sample(3000, seed=2)
    assert list(synthetic.columns) == ["customer_id", "sku"]
    assert synthetic["customer_id"].str.fullmatch(r"S\d{6}").all()
    assert not set(synthetic["customer_id"]) & set(data["customer_id"].dropna())
    real = baskets_from_frame(data, user="customer_id", item="sku").sizes
    made = synthetic.groupby("customer_id").size().to_numpy()
    share = lambda sizes: np.bincount(_bin_of(sizes), minlength=len(ACTIVITY_BINS)) / len(sizes)  # noqa: E731
    assert 0.5 * np.abs(share(real) - share(made)).sum() < 0.1
    assert synthetic.groupby("customer_id")["sku"].nunique().equals(synthetic.groupby("customer_id").size())


def test_synthetic_users_carry_co_occurrence_a_recommender_can_use(data, fitted):
    """Trained on synthetic users only, item-kNN finds held-out real users' items better than on the same
    items dealt out at random, and better than the private popularity ranking."""
    rng = np.random.default_rng(5)
    fresh = shop(users=600, seed=9, singles=0)
    held = baskets_from_frame(fresh, user="customer_id", item="sku")
    queries = make_queries(held.matrix, held.items, seed=0)
    sampled = fitted.sample(3000, seed=3)
    synthetic = baskets_from_frame(sampled, user="customer_id", item="sku")
    knn, _ = evaluate(ItemKNN(synthetic.matrix), synthetic.items, queries)
    popular, _ = evaluate(Popularity(fitted.measurements_.counts), np.asarray(fitted.catalogue_), queries)
    # The same synthetic items dealt out to users at random: popularity kept, co-occurrence gone.
    shuffled = sampled.assign(sku=rng.permutation(sampled["sku"].to_numpy()))
    dealt = baskets_from_frame(shuffled, user="customer_id", item="sku")
    knn_dealt, _ = evaluate(ItemKNN(dealt.matrix), dealt.items, queries)
    # Paired on the same queries; over ten fits under fresh noise, 0.59-0.64 against 0.21-0.24
    # dealt out and popularity 0.22-0.24.
    assert knn.mean() > knn_dealt.mean() + 0.15, (knn.mean(), knn_dealt.mean())
    assert knn.mean() > popular.mean() + 0.15, (knn.mean(), popular.mean())


def test_a_budget_too_small_for_any_item_is_refused_with_dp_figures_only(data):
    small = data[data["customer_id"].isin(data["customer_id"].dropna().unique()[:200])]
    with pytest.raises(DataError, match=r"no item is held by enough customers.*DP figures"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            InteractionGAN(epsilon=0.5, **FAST).fit(small, user="customer_id", item="sku")


def test_a_release_refused_after_its_dp_measurements_stays_on_the_budget_ledger(invoke, data, tmp_path, monkeypatch):
    # The refusal is decided by DP counts and tells the steward so: the next release is chosen
    # knowing it, so the refused release's spend counts (adaptive composition).
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "purchases.csv"
    data[data["customer_id"].isin(data["customer_id"].dropna().unique()[:200])].to_csv(path, index=False)
    ledger = tmp_path / "ledger.json"
    result = invoke("release", path, "--epsilon", "0.5", "--privacy-unit", "customer_id", "--items", "sku",
                    "--out", tmp_path / "release", "--ledger", ledger, "--quiet")
    assert result.exit_code == 1, result.output
    # One error line; a noise-dependent warning may come before it (the DP customer count of 200
    # customers read near 0 once in CI: "planning for 10"), never a traceback.
    message = [line for line in result.output.strip().splitlines() if not line.startswith("Warning:")]
    assert len(message) == 1 and "no item is held by enough customers" in message[0], result.output
    assert result.output.strip().splitlines()[-1] == message[0], result.output
    assert "the budget ledger counts it" in message[0] and "Traceback" not in result.output
    assert not (tmp_path / "release").exists() and not (tmp_path / "release.steward-audit").exists()
    [entry] = json.loads(ledger.read_text())["entries"]
    assert entry["state"] == "refused" and 0 < entry["epsilon"] <= 0.5, entry
    listing = invoke("budget", "--ledger", ledger)
    assert listing.exit_code == 0 and "refused" in listing.output, listing.output
    # It counts against the limit: 0.5 more would pass 0.5 of budget limit only without it.
    again = invoke("release", path, "--epsilon", "0.5", "--privacy-unit", "customer_id", "--items", "sku",
                   "--out", tmp_path / "again", "--ledger", ledger, "--budget-limit", "0.5", "--quiet")
    assert again.exit_code == 1 and "over the budget limit" in again.output, again.output


def test_the_model_saves_without_a_seed_and_samples_the_same_after_loading(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["params"].get("seed") is None and "cust0" not in json.dumps(meta)
    again = InteractionGAN.load(tmp_path / "model")
    pd.testing.assert_frame_equal(again.sample(50, seed=4), fitted.sample(50, seed=4))
    assert again.unit_.description == fitted.unit_.description
    assert MODELS["interaction-gan"][0] == "interactions" and model_class("interaction-gan") is InteractionGAN


def test_recommender_evaluation_scores_a_perfect_and_a_useless_model():
    held = sp.csr_matrix(np.c_[np.ones((20, 5)), np.zeros((20, 35))])
    items = np.array([f"i{k}" for k in range(40)], dtype=object)
    queries = make_queries(held, items, seed=0)
    assert len(queries) == 20
    perfect = Popularity(np.r_[np.ones(5), np.zeros(35)])
    useless = Popularity(np.r_[np.zeros(5), np.ones(35)])
    assert evaluate(perfect, items, queries)[0].mean() == 1.0
    recall, ndcg = evaluate(useless, items, queries)
    assert recall.mean() == 0.0 and ndcg.mean() == 0.0
    assert recommender(held[:, :5], seed=0) is not None


def test_private_baselines_release_only_thresholded_items(data):
    single = set(data.groupby("sku")["customer_id"].nunique().loc[lambda s: s == 1].index)
    baskets = baskets_from_frame(data, user="customer_id", item="sku")
    items, counts = dp_popularity(baskets, epsilon=2.0, seed=1)
    assert len(items) > 20 and not single & set(items) and np.all(np.diff(counts) <= 0)
    co_items, model = dp_cooccurrence(baskets, epsilon=2.0, seed=1)
    assert not single & set(co_items) and model.matrix.shape == (len(co_items), len(co_items))


def test_the_holdout_keeps_each_users_interactions_together(data):
    modality = InteractionModality(from_frame(data), user="customer_id", item="sku")
    train, holdout = modality.split(0.2, NoiseSource(seed=3))
    assert set(train["customer_id"]).isdisjoint(holdout["customer_id"])
    assert train["customer_id"].notna().all() and len(train) + len(holdout) == data["customer_id"].notna().sum()


@pytest.mark.slow
def test_an_interaction_release_runs_in_one_command_and_verifies(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "purchases.csv"
    frame = shop(users=2500)
    frame.to_csv(path, index=False)
    out = tmp_path / "release"
    result = invoke("release", path, "--epsilon", "4", "--privacy-unit", "customer_id", "--items", "sku",
                    "--out", out, "--seed", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert "synthetic customers" in result.output and "recall@10" in result.output
    public = tmp_path / "config" / "signing_key.pub.pem"
    assert invoke("verify", out, "--public-key", public).exit_code == 0
    predicate = json.loads((out / "report.json").read_text())["predicate"]
    assert predicate["modality"] == "interactions"
    assert predicate["privacy"]["unit"] == "one customer (customer_id): all their interactions"
    figures = predicate["audit"]["figures"]
    assert set(figures["recommender"]) >= {"synthetic_als", "synthetic_knn", "dp_popularity"}
    assert figures["sensitivity"] == pytest.approx(np.sqrt(10))
    synthetic = pd.read_csv(out / "synthetic.csv")
    assert list(synthetic.columns) == ["customer_id", "sku"]
    assert not set(synthetic["customer_id"]) & set(frame["customer_id"].dropna())
    steward = json.loads((tmp_path / "release.steward-audit" / "report.json").read_text())["predicate"]
    assert steward["audit"]["distribution"]["synthetic_rows_on_items_of_a_single_real_user"] == 0
    assert set(steward["audit"]["recommender"]) >= {"real_als", "real_knn", "synthetic_als"}
    assert "quantity" in predicate["data"]["excluded_columns"]


def _published_interactions(frame: pd.DataFrame, tmp_path, keys, tag: str) -> dict:
    """Every field an interaction release publishes: the report, its HTML, the CSV's header and users."""
    from synthdata.release import release

    from .test_neighbours import _published

    key, public = keys
    out = tmp_path / f"release-{tag}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        release(InteractionModality(from_frame(frame, source="purchases.csv"), user="customer_id", item="sku"),
                epsilon=4.0, key=key, key_path=public, out=out, ledger=tmp_path / f"ledger-{tag}.json",
                model_options=FAST, seed=3)
    fields = _published(out, None)
    fields["synthetic.csv users"] = pd.read_csv(out / "synthetic.csv", dtype=str)["customer_id"].nunique()
    return fields


@pytest.mark.slow
def test_no_published_field_of_an_interaction_release_tells_d_from_d_minus_one_user(tmp_path, monkeypatch):
    """The neighbour harness of ``tests/test_neighbours.py`` with D′ = D minus its heaviest user, on a shop
    small enough for the budget that the catalogue takes two passes (the one-pass catalogue is the same
    mechanism with the internal pass left out)."""
    from synthdata.signing import generate_keypair, load_private_key

    from .test_neighbours import _confirmed, _deterministic_differences

    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    # The steward's exact audit is never published: skip its costly recommenders here.
    monkeypatch.setattr("synthdata.interactions.audit.steward_interaction_audit",
                        lambda *args, **kwargs: {"format": "skipped in this test"})
    private, public = generate_keypair(tmp_path / "keys")
    keys = (load_private_key(private), public)
    frame = shop(users=700)
    heavy = frame["customer_id"].value_counts().index[0]  # the user with the most interactions
    runs = [_published_interactions(frame, tmp_path, keys, f"d{i}") for i in range(3)]
    assert [run.get("report.data.catalogue.passes") for run in runs] == [2, 2, 2], sorted(runs[0])[:40]
    assert [name for name in runs[0] if runs[0][name] != runs[1].get(name)]  # some fields are noisy
    neighbour = frame[frame["customer_id"] != heavy]

    def on_neighbour(label: str, i: int) -> dict:
        return _published_interactions(neighbour, tmp_path, keys, f"n{i}")

    neighbours = {"without the heaviest user": [on_neighbour("without the heaviest user", 0)]}
    problems = _confirmed(_deterministic_differences(runs, neighbours), runs, neighbours,
                          lambda i: _published_interactions(frame, tmp_path, keys, f"d{i}"), on_neighbour)
    assert not problems, json.dumps(problems, indent=1)
