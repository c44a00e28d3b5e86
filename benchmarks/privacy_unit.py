"""What a privacy unit costs and buys: the tabular GAN on a hospital-style table, per row vs per patient.

Run:
    .venv/bin/python benchmarks/privacy_unit.py                       # eps 1, caps 1 2 4 8 16 + DP default
    .venv/bin/python benchmarks/privacy_unit.py --epsilon 2 --caps 2 8 --runs 2 --json out.json
    .venv/bin/python benchmarks/privacy_unit.py --first-run 1                 # another table and split

The table: one row per hospital encounter, a geometric number of encounters per patient
(mean about 3, a long tail), patient-level age and sex, encounter-level ward, length of
stay and readmission (which depends on age and ward). 80% of the patients train, 20% are
held out. For each setting, the synthetic table (as many rows as the DP estimate) is
compared with the real training rows: mean total-variation distance of the 1-way and
2-way distributions (numbers in 10 quantile bins of the real data), and the AUROC of a
classifier for ``readmitted`` trained on the synthetic rows and tested on the held-out
patients' rows. ``per row`` is the default release: it protects one encounter at ε, so a
patient with r encounters only at about r·ε (group privacy); ``cap k`` protects each
patient at ε with their rows capped at k; ``cap DP`` lets the DP histogram of rows per
patient choose k.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthdata.models import TabularGAN  # noqa: E402
from synthdata.privacy.bounding import UnitRequest  # noqa: E402


def encounters(patients: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = np.minimum(rng.geometric(0.35, patients), 60)
    ids = np.repeat([f"P{p:06d}" for p in range(patients)], counts)
    age = np.repeat(rng.integers(18, 95, patients), counts)
    sex = np.repeat(rng.choice(["F", "M"], patients), counts)
    frequent = np.repeat(counts, counts)
    n = len(ids)
    ward = rng.choice(["cardiology", "orthopaedics", "neurology", "oncology"], n, p=[0.4, 0.3, 0.2, 0.1])
    ward = np.where((frequent > 6) & (rng.random(n) < 0.6), "oncology", ward)  # frequent patients: oncology
    stay = np.clip(rng.poisson(3, n) + (ward == "oncology") * 4 + (age > 70) * 2, 1, 40)
    logit = -3 + 0.03 * (age - 18) + 0.8 * (ward == "oncology") + 0.1 * np.minimum(frequent, 10)
    readmitted = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"patient_id": ids, "age": age, "sex": sex.astype(object), "ward": ward.astype(object),
                         "length_of_stay": stay, "readmitted": readmitted})


def _binned(frame: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for column in reference.columns:
        if pd.api.types.is_numeric_dtype(reference[column]) and reference[column].nunique() > 10:
            edges = np.unique(np.quantile(reference[column], np.linspace(0, 1, 11)))
            out[column] = np.clip(np.searchsorted(edges, pd.to_numeric(frame[column], errors="coerce"), "right"), 0,
                                  len(edges))
        else:
            out[column] = frame[column].astype(str).where(frame[column].notna(), "<left out>")
    return pd.DataFrame(out)


def tvds(real: pd.DataFrame, synthetic: pd.DataFrame) -> tuple[float, float]:
    """Mean 1-way and 2-way TVD; a column the release left out counts as a column of empty cells (TVD 1)."""
    synthetic = synthetic.reindex(columns=real.columns)
    a, b = _binned(real, real), _binned(synthetic, real)
    one = [0.5 * a[c].value_counts(normalize=True).subtract(b[c].value_counts(normalize=True), fill_value=0).abs().sum()
           for c in a.columns]
    two = []
    for x, y in itertools.combinations(a.columns, 2):
        pa = a.groupby([x, y]).size() / len(a)
        pb = b.groupby([x, y]).size() / len(b)
        two.append(0.5 * pa.subtract(pb, fill_value=0).abs().sum())
    return float(np.mean(one)), float(np.mean(two))


def auroc(synthetic: pd.DataFrame, test: pd.DataFrame) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    def features(frame):
        frame = frame.reindex(columns=["age", "sex", "length_of_stay", "ward"])  # a left-out column: empty
        return pd.DataFrame({"age": pd.to_numeric(frame["age"], errors="coerce"),
                             "male": (frame["sex"].astype(str) == "M").astype(float),
                             "stay": pd.to_numeric(frame["length_of_stay"], errors="coerce"),
                             **{f"ward_{w}": (frame["ward"].astype(str) == w).astype(float)
                                for w in ("cardiology", "orthopaedics", "neurology", "oncology")}})

    labels = synthetic["readmitted"].astype(str).str.lower().isin(["true", "1"])
    if labels.nunique() < 2:
        return float("nan")
    try:
        model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(features(synthetic), labels)
    except ValueError:  # a feature the release left entirely empty
        return float("nan")
    return float(roc_auc_score(test["readmitted"].astype(bool), model.predict_proba(features(test))[:, 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=6000)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--caps", type=int, nargs="*", default=[1, 2, 4, 8, 16])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--first-run", type=int, default=0, help="index of the first run (its data and split seed)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    results = []
    for run in range(args.first_run, args.first_run + args.runs):
        frame = encounters(args.patients, seed=run)
        rng = np.random.default_rng([run, 7])
        held = set(frame["patient_id"].unique()[rng.random(args.patients) < 0.2])
        train, test = frame[~frame["patient_id"].isin(held)], frame[frame["patient_id"].isin(held)]
        per_patient = train.groupby("patient_id").size()
        settings = [("per row", None)] + [(f"cap {k}", k) for k in args.caps] + [("cap DP", "dp")]
        for label, cap in settings:
            start = time.time()
            model = TabularGAN(epsilon=args.epsilon, seed=run, device="cpu")
            if cap is None:
                model.fit(train.drop(columns=["patient_id"]))
            else:
                model.fit(train, unit=UnitRequest("patient_id", max_rows=None if cap == "dp" else cap,
                                                  noun="patient"))
            synthetic = model.sample(int(round(model.n_rows_)), seed=run)
            one, two = tvds(train.drop(columns=["patient_id"]), synthetic)
            k = model.unit_.max_rows
            row = {"run": run, "setting": label, "cap": k, "rows_real": len(train),
                   "rows_kept": int(per_patient.clip(upper=k).sum()) if cap is not None else len(train),
                   "rows_synthetic": len(synthetic), "tvd_1way": round(one, 4), "tvd_2way": round(two, 4),
                   "columns_left_out": sorted(set(train.columns) - {"patient_id"} - set(synthetic.columns)),
                   "auroc_readmitted": round(auroc(synthetic, test), 4),
                   "epsilon_per_patient": (f"{args.epsilon:g} (patients with r rows: ~r*{args.epsilon:g})"
                                           if cap is None else args.epsilon),
                   "seconds": round(time.time() - start, 1)}
            results.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
