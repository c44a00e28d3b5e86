"""A large table with a known joint structure: Adult's rows resampled with small perturbations.

Every row is a uniformly drawn row of Adult's training split, perturbed a little:

* ``age`` and ``hours_per_week`` move by -1, 0 or +1 (clipped to Adult's range);
* ``fnlwgt`` is multiplied by ``exp(N(0, 0.1))`` and rounded (a high-cardinality column:
  about a million distinct values at 10^8 rows);
* non-zero ``capital_gain``/``capital_loss`` are multiplied by ``exp(N(0, 0.05))``;
* each categorical cell is, with probability 1%, replaced by the same column of another
  uniformly drawn row (so every value stays in the table, and dependence loosens a little).

The joint distribution is therefore Adult's, smoothed: a fresh draw from the same process
(another seed) is a *real holdout* utility can be measured against at any size. Written
as Parquet in row groups of 10^6 rows, chunk by chunk: memory stays bounded whatever the
size. Used by ``benchmarks/scale.py``; not part of the package.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CHUNK = 1_000_000
CATEGORICAL = ("workclass", "education", "marital_status", "occupation", "relationship", "race", "sex",
               "native_country", "income")


def adult_dir() -> Path:
    """Where Adult is: $SYNTHDATA_DATASETS/adult, or ../shared/datasets/adult beside a checkout."""
    here = Path(__file__).resolve().parents[1]
    candidates = [Path(os.environ["SYNTHDATA_DATASETS"]) / "adult"] if "SYNTHDATA_DATASETS" in os.environ else []
    candidates += [here.parent / "shared" / "datasets" / "adult", Path("/work/shared/datasets/adult")]
    for path in candidates:
        if (path / "train.csv").exists():
            return path
    raise SystemExit("Adult not found: set SYNTHDATA_DATASETS to the folder holding adult/train.csv")


class AdultProcess:
    """Draws rows of the perturbed-Adult process (see the module docstring)."""

    def __init__(self) -> None:
        frame = pd.read_csv(adult_dir() / "train.csv")
        self.columns = list(frame.columns)
        self.n = len(frame)
        self.numbers = {c: frame[c].to_numpy(np.int64) for c in self.columns if c not in CATEGORICAL}
        self.dictionaries, self.indices = {}, {}
        for c in CATEGORICAL:
            codes, uniques = pd.factorize(frame[c], use_na_sentinel=True)
            self.dictionaries[c] = pa.array(list(uniques), type=pa.string())
            self.indices[c] = codes.astype(np.int32)  # -1: missing
        self.low = {c: int(v.min()) for c, v in self.numbers.items()}
        self.high = {c: int(v.max()) for c, v in self.numbers.items()}

    def schema(self) -> pa.Schema:
        return pa.schema([(c, pa.string() if c in CATEGORICAL else pa.int64()) for c in self.columns])

    def chunk(self, rows: int, rng: np.random.Generator) -> pa.Table:
        pick = rng.integers(0, self.n, rows)
        arrays = {}
        for c in self.columns:
            if c in CATEGORICAL:
                index = self.indices[c][pick]
                swap = rng.random(rows) < 0.01
                index = np.where(swap, self.indices[c][rng.integers(0, self.n, rows)], index)
                arrays[c] = pa.DictionaryArray.from_arrays(pa.array(index, mask=index < 0),
                                                           self.dictionaries[c]).cast(pa.string())
                continue
            values = self.numbers[c][pick]
            if c in ("age", "hours_per_week"):
                values = np.clip(values + rng.integers(-1, 2, rows), self.low[c], self.high[c])
            elif c == "fnlwgt":
                values = np.round(values * np.exp(rng.normal(0, 0.1, rows))).astype(np.int64)
            elif c in ("capital_gain", "capital_loss"):
                scaled = np.round(values * np.exp(rng.normal(0, 0.05, rows))).astype(np.int64)
                values = np.where(values > 0, scaled, 0)
            arrays[c] = pa.array(values, type=pa.int64())
        return pa.table([arrays[c] for c in self.columns], schema=self.schema())

    def frame(self, rows: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return pa.concat_tables([self.chunk(min(CHUNK, rows - s), rng) for s in range(0, rows, CHUNK)]).to_pandas()

    def write(self, path: Path, rows: int, seed: int, progress=None) -> None:
        rng = np.random.default_rng(seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".part")
        with pq.ParquetWriter(temporary, self.schema(), compression="zstd") as writer:
            for start in range(0, rows, CHUNK):
                writer.write_table(self.chunk(min(CHUNK, rows - start), rng), row_group_size=CHUNK)
                if progress is not None:
                    progress(min(start + CHUNK, rows), rows)
        os.replace(temporary, path)
