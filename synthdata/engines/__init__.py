"""Engines that count: where the exact statistics of a table are computed before noise.

Everything a private table release reads from the real rows is a count: the DP row
count, each column's value counts (the schema's shape counts and the encoder's
histograms are functions of them), contingency tables of level codes (the 2- and 3-way
marginals and their selection scores), and the Poisson-sampled DP-SGD batches. An
*engine* computes those counts where the rows are and hands back only the counts (and,
for the batches, the sampled rows' level codes); noise is added afterwards by the
:class:`~synthdata.privacy.PrivacyLedger`, exactly as for an in-memory table.

* :class:`~synthdata.engines.memory.MemoryEngine` — pandas/numpy, a table in memory;
* :class:`~synthdata.engines.duck.DuckDBEngine` — DuckDB, embedded: Parquet files, a
  directory of them, a glob of CSVs, anything larger than memory; out of core, no
  sampling down, memory bounded whatever the number of rows;
* :class:`~synthdata.engines.spark.SparkEngine` — Apache Spark (``pyspark``), a local
  session or an existing cluster (``--engine spark --master URL``).

Per-row work (which value a cell holds, its level code, a row's digest hash) is done by
the same numpy functions on every engine, so the counts before noise are identical
whatever runs them (``tests/test_engines.py``) and the privacy analysis is the same.

The modules here know nothing of tables' models; the tabular modality drives them
through :class:`synthdata.tabular.stats.TableStats`.
"""

from typing import Any

from ..errors import DataError
from .base import (
    CodeSource,
    Engine,
    EngineView,
    Split,
    TableSource,
    ValueTable,
    Progress,
    choose_engine,
)

__all__ = ["CodeSource", "Engine", "EngineView", "Split", "TableSource", "ValueTable", "choose_engine",
           "open_engine"]


def open_engine(source: TableSource, engine: str, *, master: str | None = None, session: Any = None,
                threads: int | None = None, memory_limit: str | None = None,
                progress: Progress | None = None) -> Engine:
    """An engine over ``source`` ("duckdb" or "spark"; the memory engine wraps a DataFrame instead)."""
    if engine == "duckdb":
        from .duck import DuckDBEngine

        return DuckDBEngine(source, threads=threads, memory_limit=memory_limit, progress=progress)
    if engine == "spark":
        from .spark import SparkEngine

        return SparkEngine(source, master=master, session=session, progress=progress)
    raise DataError(f"engine {engine!r} cannot open files; use 'duckdb' or 'spark'")

