from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthdata import read_table

from ..conftest import ADULT

#: A value held by one person: it must never reach an audit's output.
PLANTED = "Atlantis-XYZ"


def population(n: int, seed: int) -> pd.DataFrame:
    """Independent draws from one mixed-type population (numbers, categories, booleans,
    dates, missing values), with dependence between columns."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    income = np.round(age * 900 + rng.normal(0, 9000, n), 2)
    income[rng.random(n) < 0.05] = np.nan
    city = rng.choice(["Oslo", "Lima", "Pune", "Kyiv", "Accra"], n, p=[0.4, 0.25, 0.2, 0.1, 0.05]).astype(object)
    city[rng.random(n) < 0.03] = None
    smoker = rng.random(n) < np.where(age > 50, 0.4, 0.15)
    visit = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D")
    label = np.where(income > 45_000, "high", "low")
    label[np.isnan(income)] = "low"
    return pd.DataFrame(
        {"age": age, "income": income, "city": city, "smoker": smoker, "visit": visit, "label": label}
    )


@pytest.fixture(scope="session")
def adult_split() -> dict[str, pd.DataFrame]:
    """Three disjoint random samples of Adult's training split: train, holdout, other."""
    path = ADULT / "train.csv"
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared datasets live beside the repository)")
    frame = read_table(path).frame.sample(n=6000, random_state=0).reset_index(drop=True)
    return {"train": frame.iloc[:2000], "holdout": frame.iloc[2000:4000], "other": frame.iloc[4000:]}
