"""Synthetic interaction data for recommenders, with the user as the unit of privacy.

Run:
    .venv/bin/python benchmarks/interactions.py                       # Online Retail, eps 1 4 8 16 32
    .venv/bin/python benchmarks/interactions.py --data simulated --users 20000 --epsilons 1 4
    .venv/bin/python benchmarks/interactions.py --runs 3 --json out.json

For each epsilon and run: users are split 80/20 at random (the release's holdout split:
a user's interactions all on one side); InteractionGAN is fitted on the training users
at epsilon (unit = user) and samples as many synthetic users as its DP user count; then
recommenders trained on

* the synthetic users (ALS from ``implicit``, and item-kNN),
* the private baselines at the same epsilon: DP item popularity; DP co-occurrence (their
  catalogue is the release's selection, two passes up to k' = 16: the best simple private
  method we have, not a weaker one),
* the real training users (ALS, item-kNN: the non-private ceiling),

are scored on the held-out real users (80% of each one's items as the query, 20% to
find): recall@10 and NDCG@10. Also: the items-per-user TVD (synthetic vs real training
users, on the activity histogram's log2 bins), the share of synthetic interactions on
items held by a single real user (must be 0), and the popularity long tail (share of
interactions on the top 10% of items). ``--data simulated`` draws a larger population
with known structure (types of users with their own favourite items, Zipf popularity),
to show where user-level DP at epsilon = 1 starts to pay.

Rows without a user (Online Retail: guest checkouts, a third of the rows) are left out,
as the release leaves them out; returns (negative quantities) count as interactions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthdata.errors import DataError  # noqa: E402
from synthdata.interactions.baselines import dp_cooccurrence, dp_popularity  # noqa: E402
from synthdata.interactions.data import baskets_from_frame  # noqa: E402
from synthdata.interactions.estimator import ACTIVITY_BINS, InteractionGAN, _bin_of  # noqa: E402
from synthdata.interactions.recommender import (  # noqa: E402
    ALSRecommender,
    ItemKNN,
    Popularity,
    evaluate,
    make_queries,
)

RETAIL = ROOT.parent / "shared" / "datasets" / "online_retail" / "online_retail_dec2010.csv"


def load(name: str, users: int, seed: int) -> tuple[pd.DataFrame, str, str]:
    if name == "retail":
        return pd.read_csv(RETAIL), "CustomerID", "StockCode"
    rng = np.random.default_rng(seed)
    items, types = 2000, 20
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9
    favourites = [rng.choice(items, 60, replace=False) for _ in range(types)]
    rows = []
    for u in range(users):
        kind = rng.integers(types)
        n = int(min(400, rng.lognormal(2.5, 0.9)) + 1)
        p = popularity.copy()
        p[favourites[kind]] *= 40
        p /= p.sum()
        for i in rng.choice(items, min(n, items), replace=False, p=p):
            rows.append((f"u{u}", f"item{i:04d}"))
    return pd.DataFrame(rows, columns=["user", "item"]), "user", "item"


def tvd(a: np.ndarray, b: np.ndarray) -> float:
    pa = np.bincount(_bin_of(a[a > 0]), minlength=len(ACTIVITY_BINS)) / max((a > 0).sum(), 1)
    pb = np.bincount(_bin_of(b[b > 0]), minlength=len(ACTIVITY_BINS)) / max((b > 0).sum(), 1)
    return float(0.5 * np.abs(pa - pb).sum())


def scores(model, items, queries) -> dict[str, float]:
    recall, ndcg = evaluate(model, np.asarray(items), queries)
    return {"recall@10": float(recall.mean()), "ndcg@10": float(ndcg.mean())}


def run(frame: pd.DataFrame, user: str, item: str, epsilons: list[float], run_index: int,
        options: dict) -> list[dict]:
    rng = np.random.default_rng([run_index, 99])
    everyone = frame[user].dropna().unique()
    held = set(everyone[rng.random(len(everyone)) < 0.2])
    train_frame = frame[frame[user].notna() & ~frame[user].isin(held)]
    test_frame = frame[frame[user].isin(held)]
    train = baskets_from_frame(train_frame, user=user, item=item)
    test = baskets_from_frame(test_frame, user=user, item=item)
    queries = make_queries(test.matrix, test.items, seed=run_index)
    real = {"users_train": len(train), "users_holdout": len(test), "queries": len(queries),
            "items_train": len(train.items)}
    real["real ALS"] = scores(ALSRecommender(train.matrix, seed=run_index), train.items, queries)
    real["real item-kNN"] = scores(ItemKNN(train.matrix), train.items, queries)
    real["true popularity"] = scores(Popularity(np.asarray(train.matrix.sum(0)).ravel()), train.items, queries)
    single = set(train.items[np.asarray(train.matrix.sum(0)).ravel() == 1])
    top = np.argsort(-np.asarray(train.matrix.sum(0)).ravel())[: max(1, len(train.items) // 10)]
    real["top10%_share"] = float(np.asarray(train.matrix[:, top].sum()) / train.matrix.sum())
    results = []
    for epsilon in epsilons:
        row = {"epsilon": epsilon, "run": run_index, **real}
        popular_items, popular_counts = dp_popularity(train, epsilon=epsilon)
        row["DP popularity"] = scores(Popularity(popular_counts), popular_items, queries) if len(popular_items) \
            else "no item released"
        row["DP popularity items"] = len(popular_items)
        try:
            co_items, co_model = dp_cooccurrence(train, epsilon=epsilon)
            row["DP co-occurrence"] = scores(co_model, co_items, queries)
        except DataError:
            row["DP co-occurrence"] = "no item released"
        start = time.time()
        try:
            model = InteractionGAN(epsilon=epsilon, seed=run_index, **options).fit(train, user=user, item=item)
        except DataError as exc:
            row["synthetic"] = f"refused: {exc}"
            results.append(row)
            print(json.dumps(row), flush=True)
            continue
        row["fit_seconds"] = round(time.time() - start, 1)
        synthetic = model.sample(int(round(model.n_users_)), seed=run_index)
        syn = baskets_from_frame(synthetic, user=user, item=item)
        row["catalogue"] = len(model.catalogue_)
        row["cap"] = model.measurements_.cap
        row["top_items"] = model.measurements_.top_items  # two-pass catalogue's k' (None: one pass)
        row["synthetic ALS"] = scores(ALSRecommender(syn.matrix, seed=run_index), syn.items, queries)
        row["synthetic item-kNN"] = scores(ItemKNN(syn.matrix), syn.items, queries)
        row["items_per_user_tvd"] = tvd(syn.sizes, train.sizes)
        row["synthetic_rows_on_single_user_items"] = int(synthetic[item].astype(str).isin(single).sum())
        syn_counts = np.asarray(syn.matrix.sum(0)).ravel()
        syn_top = np.argsort(-syn_counts)[: max(1, len(syn.items) // 10)]
        row["synthetic_top10%_share"] = float(syn_counts[syn_top].sum() / syn_counts.sum())
        results.append(row)
        print(json.dumps(row), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["retail", "simulated"], default="retail")
    parser.add_argument("--users", type=int, default=20000, help="simulated users")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--discriminator-share", type=float, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    frame, user, item = load(args.data, args.users, 0)
    options = {}
    if args.discriminator_share is not None:
        options["budget_split"] = {"discriminator": args.discriminator_share}
    results = []
    for r in range(args.runs):
        results += run(frame, user, item, args.epsilons, r, options)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
