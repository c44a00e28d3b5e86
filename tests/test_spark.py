"""The same counts and the same release on a local Spark (issue 13).

Skipped, with the reason, where Java or pyspark is missing (``pip install 'synthdata[spark]'``
and a JRE: ``.ci/run`` installs Debian's ``default-jre-headless`` when it can). One local
session serves the module: starting the JVM takes a while.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from synthdata.engines import EngineView, TableSource
from synthdata.engines.spark import spark_available
from synthdata.fingerprint import content_digest
from synthdata.schema import Column, Schema
from synthdata.tabular.stats import EngineStats, FrameStats

from .test_engines import _write, census, compare_engines, mixed, money

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::synthdata.errors.SynthdataWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::ResourceWarning")]


@pytest.fixture(scope="module")
def spark():
    reason = spark_available()
    if reason is not None:
        pytest.skip(f"Spark cannot run here: {reason}")
    from synthdata.engines.spark import local_session

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = local_session("local[2]")
    yield session
    session.stop()


def _engine(path: str, spark):
    from synthdata.engines.spark import SparkEngine

    return SparkEngine(TableSource.of(path), session=spark)


def test_spark_counts_are_the_in_memory_counts(spark, tmp_path):
    """Decimals with -0.0 and gaps, booleans, dates as text, spaces in text (the census table's
    counts are compared through a whole fit below)."""
    path, frame = _write(mixed(), tmp_path, "t")
    _assert_counts_and_digest_match(spark, path, frame)


def test_spark_reads_decimals_and_binary_cells_as_the_in_memory_reader(spark, tmp_path):
    path = tmp_path / "money.parquet"
    frame = money(path)
    _assert_counts_and_digest_match(spark, str(path), frame)


def _assert_counts_and_digest_match(spark, path, frame) -> None:
    """Spark's counts and fingerprint of ``path`` are pandas' of ``frame`` (the same rows)."""
    engine = _engine(path, spark)
    try:
        compare_engines(frame, FrameStats(frame), EngineStats(EngineView(engine, None)))
        assert engine.digest() == content_digest(frame)
    finally:
        engine.close()


def test_nanosecond_timestamps_are_refused_in_one_line(spark, tmp_path):
    from synthdata.errors import DataError

    path = tmp_path / "t.parquet"
    pd.DataFrame({"when": pd.to_datetime(["2021-01-01 10:00:00.000000001"])}).to_parquet(path, index=False)
    with pytest.raises(DataError, match="microseconds"):
        _engine(str(path), spark)


SCHEMA = Schema(columns=(Column("age", "numerical", integer=True),
                         Column("job", "categorical", categories=("clerk", "nurse", "driver", "teacher", "cook")),
                         Column("weight", "numerical", integer=True), Column("hours", "numerical", integer=True),
                         Column("married", "categorical", categories=("yes", "no"))))


def test_a_fit_on_spark_measures_exactly_what_the_in_memory_fit_measures(spark, tmp_path):
    """Same seeds, same declared schema: every private measurement (histograms, pair scores,
    2-way marginals, with the noise drawn in the same order) comes out the same; the DP-SGD
    batches are drawn on the executors, one pass, and every planned step is on the ledger."""
    from synthdata import TabularGAN

    path, frame = _write(census(2500), tmp_path, "t")
    engine = _engine(path, spark)
    options = dict(epsilon=3.0, seed=4, generator_steps=40, epochs=1, insecure_noise_seed=9, device="cpu")
    passes = []
    try:
        spark_model = TabularGAN(**options).fit(EngineView(engine, None), schema=SCHEMA,
                                                progress=lambda info: passes.append(info.get("pass")))
    finally:
        engine.close()
    memory_model = TabularGAN(**options).fit(frame, schema=SCHEMA)
    assert json.dumps(spark_model.encoder_.state_dict()) == json.dumps(memory_model.encoder_.state_dict())
    assert json.dumps(spark_model.marginals_.to_dict()) == json.dumps(memory_model.marginals_.to_dict())
    spends = [(s.step, s.epsilon) for s in spark_model.ledger_.spends]
    assert spends == [(s.step, s.epsilon) for s in memory_model.ledger_.spends]
    steps = spark_model.training_.discriminator_steps
    assert steps > 0 and spark_model.ledger_.spends[-1].step == "discriminator"
    assert spark_model.ledger_.spends[-1].parameters["steps"] == steps  # every planned step, counted
    assert {"value counts", "level codes", "Poisson batches"} <= set(passes)
    assert spark_model.epsilon_spent_ <= 3.0


def test_a_release_runs_on_spark_and_verifies(spark, tmp_path, monkeypatch):
    from synthdata.engines.spark import SparkEngine
    from synthdata.release import release
    from synthdata.signing import generate_keypair, load_private_key, verify_release
    from synthdata.tabular.modality import TableModality

    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    path, frame = _write(census(3000), tmp_path, "people")
    private, public = generate_keypair(tmp_path / "keys")
    engine = SparkEngine(TableSource.of(path), session=spark)
    try:
        result = release(TableModality(engine, target="married"), epsilon=3.0, key=load_private_key(private),
                         key_path=public, out=tmp_path / "release", seed=1, ledger=tmp_path / "ledger.json",
                         model_options={"generator_steps": 40, "epochs": 1, "device": "cpu"})
    finally:
        engine.close()
    predicate = verify_release(result.directory, public)["predicate"]
    assert predicate["privacy"]["epsilon_spent"] <= 3.0
    rows = predicate["data"]["rows_train_dp"]
    assert abs(rows - 0.8 * 3000) < 6 * np.sqrt(3000 * 0.16) + 60  # the holdout's rows were never counted
    assert predicate["audit"]["sample"]["rate"]["train"] == 1.0
    synthetic = pd.read_csv(result.directory / "synthetic.csv")
    assert list(synthetic.columns) == list(frame.columns)
    steward = json.loads((result.steward_directory / "report.json").read_text())["predicate"]
    assert steward["data"]["engine"] == "spark" and steward["data"]["input_rows"] == 3000
