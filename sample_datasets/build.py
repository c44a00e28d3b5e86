"""Rebuild the sample datasets from the PyPI packages that ship them.

Run from the repository root, in an environment with statsmodels, palmerpenguins and
scikit-learn installed (they are not dependencies of synthdata):

    python sample_datasets/build.py

The files it writes are committed; see README.md beside this script for sources,
licences and citations.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

# Code books from statsmodels' description of Fair (1978), so the table reads as the
# survey's answers rather than as numeric codes.
RATING = {1: "very poor", 2: "poor", 3: "fair", 4: "good", 5: "very good"}
RELIGIOUS = {1: "not", 2: "mildly", 3: "fairly", 4: "strongly"}
EDUCATION = {9: "grade school", 12: "high school", 14: "some college", 16: "college graduate",
             17: "some graduate school", 20: "advanced degree"}
OCCUPATION = {1: "student", 2: "farming or unskilled", 3: "white-collar",
              4: "teacher, nurse, artist or technician", 5: "managerial or business",
              6: "professional with advanced degree"}


def affairs() -> pd.DataFrame:
    from statsmodels.datasets import fair

    raw = fair.load_pandas().data
    return pd.DataFrame({
        "rate_marriage": raw["rate_marriage"].astype(int).map(RATING),
        "age": raw["age"],
        "yrs_married": raw["yrs_married"],
        "children": raw["children"],
        "religious": raw["religious"].astype(int).map(RELIGIOUS),
        "education": raw["educ"].astype(int).map(EDUCATION),
        "occupation": raw["occupation"].astype(int).map(OCCUPATION),
        "occupation_husband": raw["occupation_husb"].astype(int).map(OCCUPATION),
        "affairs": raw["affairs"].round(6),
    })


def penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    table = load_penguins()
    # Whole-number measurements come back as floats because of their missing values.
    for name in ("flipper_length_mm", "body_mass_g"):
        table[name] = table[name].astype("Int64")
    return table


def digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    # 0..16 grey levels scaled to 0..255 bytes, as an image file would hold them.
    images = np.round(data.images * (255 / 16)).astype(np.uint8)
    return {"images": images, "labels": data.target.astype(np.int64)}


def main() -> None:
    table = affairs()
    assert table.notna().all().all(), "a code is missing from the code books"
    table.to_csv(HERE / "affairs.csv", index=False)
    penguins().to_csv(HERE / "penguins.csv", index=False)
    np.savez_compressed(HERE / "digits.npz", **digits())


if __name__ == "__main__":
    main()
