"""Every engine computes the same exact counts before noise (issue 13).

A table's private measurements read it only through counts (:mod:`synthdata.tabular.stats`):
the row count, the schema's shape and distinct counts, the encoder's histograms, the rows'
level codes and the contingency tables of pairs and triples. Here each is computed on
several small tables in memory (pandas, the per-row functions) and by DuckDB (and by a
local Spark, when Java and pyspark are present: ``test_spark.py``) and must be *identical*,
so the privacy analysis is the same whatever runs it. The dataset fingerprint an engine
computes out of core must be :func:`~synthdata.fingerprint.content_digest`'s, bit for bit,
so releases of the same data compose in the budget ledger whatever engine made them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthdata.engines import EngineView, Split, TableSource
from synthdata.engines.duck import DuckDBEngine
from synthdata.fingerprint import content_digest
from synthdata.privacy import GaussianRequest, NoiseSource, PrivacyLedger
from synthdata.schema import Column, Schema
from synthdata.tabular.encoding import TabularEncoder
from synthdata.tabular.inference import infer_schema_private
from synthdata.tabular.stats import EngineStats, FrameStats, cross_counts


def census(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Integers, categories with rare values and gaps, a high-cardinality integer column."""
    rng = np.random.default_rng(seed)
    job = rng.choice(["clerk", "nurse", "driver", "teacher", "cook"], rows, p=[0.3, 0.25, 0.2, 0.15, 0.1]).astype(object)
    job[rng.random(rows) < 0.05] = None
    rare = rng.choice(rows, 12, replace=False)
    job[rare] = [f"rare-{i % 6}" for i in range(12)]  # held by 2 rows each: below the release threshold
    age = rng.integers(18, 80, rows)
    return pd.DataFrame({
        "age": age,
        "job": job,
        "weight": rng.integers(10_000, 400_000, rows),
        "hours": np.clip(np.round(rng.normal(40, 8, rows)), 1, 99).astype(np.int64),
        "married": np.where(age + rng.normal(0, 10, rows) > 35, "yes", "no"),
    })


def mixed(rows: int = 2500, seed: int = 1) -> pd.DataFrame:
    """Decimals, booleans with gaps, dates as text, an integer column with gaps, spaces in text."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3, 1, rows), 2)
    amount[rng.random(rows) < 0.03] = np.nan
    flag = pd.array(rng.random(rows) < 0.4, dtype="boolean")
    flag[rng.random(rows) < 0.1] = pd.NA
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D")
    visits = pd.array(rng.poisson(3, rows), dtype="Int64")
    visits[rng.random(rows) < 0.05] = pd.NA
    city = rng.choice([" Oslo", "Oslo", "Bergen ", "Tromsø"], rows).astype(object)
    return pd.DataFrame({"amount": amount, "flag": flag, "day": days.strftime("%Y-%m-%d"), "visits": visits,
                         "city": city, "score": np.round(rng.normal(0, 1, rows), 1)})


def stamps(rows: int = 2000, seed: int = 2) -> pd.DataFrame:
    """Timestamps (whole minutes), a category declared public, a float without a lattice."""
    rng = np.random.default_rng(seed)
    when = pd.Timestamp("2021-03-01") + pd.to_timedelta(rng.integers(0, 60 * 24 * 90, rows), unit="min")
    return pd.DataFrame({"when": when, "kind": rng.choice(["a", "b", "c"], rows),
                         "x": rng.normal(0, 1, rows), "n": rng.integers(0, 5, rows)})


TABLES = {"census": census, "mixed": mixed, "stamps": stamps}


def _write(frame: pd.DataFrame, tmp_path: Path, name: str) -> tuple[str, pd.DataFrame]:
    """The table as a Parquet file, and as the memory path reads that file."""
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return str(path), pd.read_parquet(path)


def _ledger(seed: int = 0) -> PrivacyLedger:
    ledger = PrivacyLedger(epsilon=8.0, delta=1e-6, threshold_delta=1e-7, noise=NoiseSource(seed=seed))
    ledger.plan(gaussians={"schema": GaussianRequest(sensitivity=1.0, share=0.5),
                           "preprocessing": GaussianRequest(sensitivity=1.0, share=0.5)})
    return ledger


def _histogram_dicts(exact) -> list[list[dict]]:
    return [[dict(zip(keys, counts.tolist())) for keys, counts in zip(e.keys, e.counts)] + [{"missing": e.missing}]
            for e in exact]


def _code_rows(codes) -> dict:
    """The multiset of code rows (engines keep rows in their own order)."""
    if isinstance(codes, np.ndarray):
        blocks = [codes]
    else:
        blocks = [chunk for _, chunk in codes.chunks()]
    unique, counts = np.unique(np.concatenate(blocks).astype(np.int64), axis=0, return_counts=True)
    return {tuple(row): int(c) for row, c in zip(unique.tolist(), counts)}


def compare_engines(frame: pd.DataFrame, memory: FrameStats, engine: EngineStats, schema: Schema | None = None):
    """Assert that every exact count the fit reads is the same in memory and on ``engine``."""
    assert engine.rows == memory.rows == len(frame)
    names = list(frame.columns)
    np.testing.assert_array_equal(engine.shape_counts(names), memory.shape_counts(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if schema is None:  # decided privately, from the same noise on both: the same schema
            schema = infer_schema_private(memory, ledger=_ledger(1))
            assert infer_schema_private(engine, ledger=_ledger(1)).to_dict() == schema.to_dict()
        encoder = TabularEncoder(max_levels=12, max_coarse=6)
        columns = list(schema)
        resolutions = [encoder._resolutions(c, encoder._lattice(c)) for c in columns]
        lattices = [encoder._lattice(c) for c in columns]
        assert _histogram_dicts(engine.histograms(schema)(columns, resolutions, lattices)) == \
            _histogram_dicts(memory.histograms(schema)(columns, resolutions, lattices))
        ledger = _ledger(2)
        encoder.fit(None, schema, ledger=ledger, threshold_delta=1e-7, rows=float(len(frame)),
                    counts=memory.histograms(schema))
    in_memory = memory.encode(encoder, schema, seed=11)
    on_engine = engine.encode(encoder, schema, seed=11)
    try:
        assert on_engine.rows == len(frame)
        assert _code_rows(on_engine) == _code_rows(in_memory)
        maps = [np.asarray(code.coarse) for code in encoder.codes_]
        sizes = [code.coarse_size for code in encoder.codes_]
        width = len(encoder.codes_)
        pairs = [(i, j) for i in range(width) for j in range(i + 1, width)]
        triples = [(i, j, k) for i in range(width) for j in range(i + 1, width) for k in range(j + 1, width)][:6]
        for groups in (pairs, triples):
            for a, b in zip(cross_counts(on_engine, groups, maps, sizes), cross_counts(in_memory, groups, maps, sizes)):
                np.testing.assert_array_equal(a, b)
    finally:
        on_engine.close()
    return encoder


@pytest.mark.parametrize("name", sorted(TABLES))
def test_duckdb_counts_are_the_in_memory_counts(name, tmp_path):
    path, frame = _write(TABLES[name](), tmp_path, name)
    engine = DuckDBEngine(TableSource.of(path), threads=1)
    try:
        schema = None
        if name == "stamps":  # a declared schema: public categories counted over their domain
            schema = Schema(columns=(Column("when", "datetime", datetime_format="%Y-%m-%d %H:%M:%S"),
                                     Column("kind", "categorical", categories=("a", "b", "c", "d")),
                                     Column("x", "numerical"), Column("n", "numerical", integer=True)))
        encoder = compare_engines(frame, FrameStats(frame), EngineStats(EngineView(engine, None)), schema)
        if name == "census":  # the rare jobs were reassigned: the deterministic draw was exercised
            job = next(code for code in encoder.codes_ if code.name == "job")
            assert not any(str(level["points"][0]).startswith("rare") for level in job.levels)
        assert engine.digest() == content_digest(frame)
    finally:
        engine.close()


def test_batches_worked_on_in_two_threads_give_the_same_codes_and_digest(tmp_path, monkeypatch):
    """The per-batch work (row hashes, level codes) runs in a thread per core: many small
    batches on two threads give the in-memory counts and content_digest's fingerprint."""
    path, frame = _write(census(6000, seed=5), tmp_path, "threads")
    batches = DuckDBEngine.batches
    sizes = []

    def small(self, columns, split, side, batch_rows=None):
        for batch in batches(self, columns, split, side, batch_rows=300):
            sizes.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(DuckDBEngine, "batches", small)
    engine = DuckDBEngine(TableSource.of(path), threads=2)
    try:
        assert engine.workers == 2
        assert engine.digest() == content_digest(frame)
        assert len(sizes) >= 10
        compare_engines(frame, FrameStats(frame), EngineStats(EngineView(engine, None)))
    finally:
        engine.close()


def test_duckdb_reads_a_directory_and_a_glob_as_one_table(tmp_path):
    frame = census(2400)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):
        frame.iloc[k * 800:(k + 1) * 800].to_parquet(folder / f"part-{k}.parquet", index=False)
    whole = pd.read_parquet(folder)
    for spec in (folder, str(folder / "*.parquet")):
        engine = DuckDBEngine(TableSource.of(spec), threads=1)
        try:
            assert engine.rows(None, "all") == 2400
            assert engine.digest() == content_digest(whole)
        finally:
            engine.close()


def test_csv_files_are_read_as_pandas_reads_them(tmp_path):
    frame = census(1500)
    frame.iloc[:700].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[700:].to_csv(tmp_path / "b.csv", index=False)
    read = pd.concat([pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")], ignore_index=True)
    engine = DuckDBEngine(TableSource.of(str(tmp_path / "*.csv")), threads=1)
    try:
        compare_engines(read, FrameStats(read), EngineStats(EngineView(engine, None)))
    finally:
        engine.close()


def test_the_split_is_a_function_of_each_row_and_every_pass_sees_it(tmp_path):
    """The holdout is the rows whose salted hash is low: about the fraction, the same in every
    pass, and adding a row moves no other row across."""
    path, frame = _write(census(4000), tmp_path, "t")
    bigger = pd.concat([frame, frame.iloc[:1].assign(weight=999_999)], ignore_index=True)
    other = tmp_path / "bigger.parquet"
    bigger.to_parquet(other, index=False)
    split = Split(salt=12345, fraction=0.25)
    engines = [DuckDBEngine(TableSource.of(p), threads=1) for p in (path, other)]
    try:
        small, large = engines
        held = small.rows(split, "holdout")
        assert abs(held / 4000 - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 4000)
        sample = small.sample(split, "holdout", 1.0, salt=1)
        assert len(sample) == held
        train = small.sample(split, "train", 1.0, salt=1)
        assert len(train) + held == 4000
        # A row's side depends on its content alone: no row is on both sides.
        assert sample.merge(train, how="inner", on=list(frame.columns)).empty
        larger = large.sample(split, "holdout", 1.0, salt=1)
        extra = len(larger) - len(sample)
        assert extra in (0, 1)  # only the added row may join the holdout
        pd.testing.assert_frame_equal(larger[larger["weight"] != 999_999].sort_values(list(frame.columns))
                                      .reset_index(drop=True),
                                      sample.sort_values(list(frame.columns)).reset_index(drop=True))
    finally:
        for engine in engines:
            engine.close()


def _split_counts(tables) -> dict:
    """Per column, each distinct value (by its spelling: -0.0, nan and missing apart) with its
    (train, holdout) counts."""
    return {name: sorted((str(v), int(t), int(h)) for v, t, h in zip(table.values, table.train, table.holdout))
            for name, table in tables.items()}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_splits_counts_from_the_holdout_alone_are_those_of_both_sides(name, tmp_path):
    """Once the whole table's counts are known, a split's are the holdout's scan subtracted from
    them: the same integers as grouping both sides in one scan, and as the rows of each side."""
    frame = TABLES[name]()
    floats = [c for c in frame.columns if frame[c].dtype.kind == "f"]
    if floats:  # -0.0 and 0.0 are different values to pandas (and in the digest): kept apart
        frame.loc[frame.index[::7], floats[0]] = -0.0
        frame.loc[frame.index[3::7], floats[0]] = 0.0
    path, frame = _write(frame, tmp_path, name)
    split = Split(salt=987, fraction=0.3)
    engines = [DuckDBEngine(TableSource.of(path), threads=1) for _ in range(2)]
    try:
        derived, direct = engines
        derived.value_tables(None)
        counts = _split_counts(derived.value_tables(split))
        assert counts == _split_counts(direct.value_tables(split))
        sides = {side: direct.sample(split, side, 1.0, salt=1) for side in ("train", "holdout")}
        assert len(sides["holdout"]) == derived.rows(split, "holdout") > 0
        for column in frame.columns:  # each side's rows, counted by pandas
            for k, side in enumerate(("train", "holdout")):
                read = sides[side][column].astype(frame[column].dtype) if len(sides[side]) else sides[side][column]
                by_pandas = read.astype(object).map(str).value_counts()
                by_engine = {value: sides_counts[k] for value, *sides_counts in counts[column] if sides_counts[k]}
                assert by_engine == by_pandas.to_dict(), (column, side)
    finally:
        for engine in engines:
            engine.close()


# --------------------------------------------------------------------------- the command line


def test_auto_chooses_duckdb_for_parquet_directories_globs_and_large_files(tmp_path):
    from synthdata.engines import choose_engine
    from synthdata.errors import DataError

    path, _ = _write(census(200), tmp_path, "t")
    small = tmp_path / "t.csv"
    census(200).to_csv(small, index=False)
    folder = tmp_path / "parts"
    folder.mkdir()
    census(200).to_parquet(folder / "part-0.parquet", index=False)
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert choose_engine(path) == "duckdb"
    assert choose_engine(folder) == "duckdb"
    assert choose_engine(str(tmp_path / "*.csv")) == "duckdb"
    assert choose_engine(small) == "memory"
    assert choose_engine(small, memory_limit=100) == "duckdb"  # larger than memory: counted out of core
    assert choose_engine(images) == "memory"  # a folder of images is not a table
    assert choose_engine(small, "spark") == "spark"
    with pytest.raises(DataError, match="--engine duckdb or spark"):
        choose_engine(folder, "memory")


@pytest.fixture
def short_fits(monkeypatch):
    """The command line's release, with a short fit (the CLI has no option for the steps)."""
    import synthdata.release as release_module

    real = release_module.release

    def short(*args, **kwargs):
        kwargs["model_options"] = {"generator_steps": 40, "epochs": 1, **(kwargs.get("model_options") or {})}
        return real(*args, **kwargs)

    monkeypatch.setattr(release_module, "release", short)


@pytest.mark.usefixtures("one_torch_thread", "short_fits")
def test_release_reads_a_directory_of_parquet_files_with_duckdb(invoke, tmp_path, monkeypatch):
    """`synthdata release FOLDER`: every file's rows, counted by DuckDB (no sampling down), a bar
    per pass over the data, a verified release whose steward report has the exact input rows."""
    import json
    import re

    from synthdata.signing import verify_release

    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    frame = census(2400)
    folder = tmp_path / "claims"
    folder.mkdir()
    for k in range(3):
        frame.iloc[k * 800:(k + 1) * 800].to_parquet(folder / f"part-{k}.parquet", index=False)
    out = tmp_path / "release"
    result = invoke("release", folder, "--epsilon", "3", "--target", "married", "--out", out,
                    "--ledger", tmp_path / "ledger.json")
    assert result.exit_code == 0, result.output
    assert "counted by duckdb" in result.output
    for name in ("value counts", "fingerprint", "level codes", "Poisson batches"):
        assert name in result.stderr  # a progress bar per pass
    predicate = verify_release(out, tmp_path / "config" / "signing_key.pub.pem")["predicate"]
    assert predicate["privacy"]["epsilon_spent"] <= 3.0
    # no exact count published (as a number or a word: a salt's or digest's hex may hold the digits)
    assert not re.search(r"(?<![0-9a-zA-Z.])2400(?![0-9a-zA-Z])", json.dumps(predicate["data"]))
    steward = json.loads((tmp_path / "release.steward-audit" / "report.json").read_text())["predicate"]
    assert steward["data"]["engine"] == "duckdb" and steward["data"]["input_rows"] == 2400
    ledger = json.loads((tmp_path / "ledger.json").read_text())
    entries = ledger["entries"] if isinstance(ledger, dict) else ledger
    assert len(entries) == 1


def test_release_refuses_engine_options_that_cannot_work(invoke, tmp_path):
    from .conftest import assert_one_line_error

    folder = tmp_path / "parts"
    folder.mkdir()
    census(300).to_parquet(folder / "part-0.parquet", index=False)
    out = tmp_path / "release"
    assert_one_line_error(invoke("release", folder, "--epsilon", "1", "--engine", "memory", "--out", out),
                          "--engine duckdb or spark")
    result = invoke("release", folder, "--epsilon", "1", "--engine", "duckdb", "--master", "local[2]", "--out", out)
    assert result.exit_code == 2 and "--master" in result.output
    assert_one_line_error(invoke("release", folder, "--epsilon", "1", "--privacy-unit", "job", "--out", out),
                          "--engine memory")
    assert not out.exists()


def money(path: Path) -> pd.DataFrame:
    """Parquet decimals (with gaps) and binary text cells, written by Arrow; returns the table as
    the in-memory reader reads it (decimals as floats, binary cells as text)."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthdata.ingest import read_table

    rng = np.random.default_rng(3)
    prices = [None if rng.random() < 0.05 else Decimal(f"{rng.integers(0, 5000) / 100:.2f}") for _ in range(1200)]
    codes = [rng.choice(["A1", "B2", "C3"]).encode() for _ in range(1200)]
    pq.write_table(pa.table({"price": pa.array(prices, pa.decimal128(9, 2)), "code": pa.array(codes, pa.binary()),
                             "n": pa.array(rng.integers(0, 9, 1200))}), path)
    frame = read_table(path).frame
    assert frame["price"].dtype.kind == "f" and frame["code"].iloc[0] in ("A1", "B2", "C3")
    return frame


def test_decimal_and_binary_columns_are_counted_as_the_in_memory_reader_reads_them(tmp_path):
    """Parquet decimals are floats (by Arrow's cast, as synthdata.ingest reads them: DuckDB's own
    cast rounds some differently) and binary cells text, on every engine."""
    path = tmp_path / "money.parquet"
    frame = money(path)
    engine = DuckDBEngine(TableSource.of(path), threads=1)
    try:
        compare_engines(frame, FrameStats(frame), EngineStats(EngineView(engine, None)))
        assert engine.digest() == content_digest(frame)
    finally:
        engine.close()
