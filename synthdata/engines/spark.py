"""Apache Spark: a table's counts computed on a cluster (or a local session), through Spark's own API.

The rows never leave the cluster: value counts are one ``GROUPING SETS`` query; the
per-row work shared with the other engines (level codes, row hashes, the Poisson
batches' coins) runs in ``mapInArrow`` on the executors, on Arrow batches, with the
same numpy functions as DuckDB and pandas, so the counts before noise are identical.
What comes back to the driver is counts, packed row hashes (for the dataset's
fingerprint) and the sampled batches' level codes (bounded by the training plan, not by
the table).

Needs ``pyspark`` (``pip install 'synthdata[spark]'``) and a Java runtime; on a cluster,
synthdata must be installed on the executors too (as any Python UDF's code).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from .base import (
    HASH_BUCKETS,
    Progress,
    RowHasher,
    SortedDigest,
    Split,
    TableSource,
    ValueTable,
    _needs_plain,
    code_dtype,
    plain_array,
    signed_zeros,
)
from .poisson import StepBatches, StepSpill, memberships

__all__ = ["SparkEngine", "spark_available"]


def spark_available() -> str | None:
    """None when Spark can run here, else why not (no pyspark, no Java)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'synthdata[spark]')"
    import shutil

    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no Java runtime (install one, e.g. Debian's default-jre-headless)"
    return None


def local_session(master: str = "local[2]"):
    """A SparkSession for this machine, its Python workers running this interpreter and this synthdata."""
    reason = spark_available()
    if reason is not None:
        raise DataError(f"--engine spark: {reason}")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join([package_root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
    builder = (SparkSession.builder.master(master).appName("synthdata")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "8")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.executorEnv.PYTHONPATH", path)
               .config("spark.pyspark.python", sys.executable))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkEngine:
    """Counts over a :class:`~synthdata.engines.base.TableSource` with Spark (a session or a master URL)."""

    name = "spark"

    def __init__(self, source: TableSource | None = None, *, master: str | None = None, session=None,
                 frame=None, progress: Progress | None = None) -> None:
        if session is None:
            session = local_session(master or "local[2]") if master is None or master.startswith("local") else \
                _cluster_session(master)
        self.session = session
        self.source = source
        self.progress = progress
        self.frame = frame if frame is not None else self._read(source)
        self.columns = [str(c) for c in self.frame.columns]
        self._tables: dict = {}
        self._persisted = []

    def _read(self, source: TableSource):
        reader = self.session.read
        if source.format == "parquet":
            try:
                frame = reader.parquet(*source.paths)
            except Exception as error:  # pyspark's AnalysisException, whatever its module
                if "TIMESTAMP(NANOS" not in str(error):
                    raise
                raise DataError(f"{source.display}: Spark cannot read timestamps stored in nanoseconds (pandas' "
                                "default); write them in microseconds (pyarrow: coerce_timestamps='us') or use "
                                "--engine duckdb") from None
        else:
            from pyspark.sql import functions as F

            from ..ingest import MISSING_MARKERS

            frame = reader.csv(list(source.paths), header=True, inferSchema=True, sep=source.delimiter or ",",
                               encoding=source.encoding, nullValue="")
            markers = list(dict.fromkeys([*MISSING_MARKERS, *source.na_values]))
            frame = frame.select([F.when(F.col(f"`{c}`").cast("string").isin(markers), None)
                                  .otherwise(F.col(f"`{c}`")).alias(c) for c in frame.columns])
        missing = [name for name in source.drop if name not in frame.columns]
        if missing:
            raise DataError(f"{source.display}: --drop {missing[0]}: no such column")
        return frame.drop(*source.drop) if source.drop else frame

    # ------------------------------------------------------------------ pieces

    def _cols(self):
        from pyspark.sql import functions as F

        return [F.col(f"`{c}`") for c in self.columns]

    def _held(self, split: Split):
        from pyspark.sql import functions as F

        return F.pmod(F.xxhash64(F.lit(int(split.salt)), *self._cols()), F.lit(HASH_BUCKETS)) < split.threshold

    def _side(self, split: Split | None, side: str):
        if split is None:
            return self.frame if side != "holdout" else self.frame.limit(0)
        if side == "all":
            return self.frame
        held = self._held(split)
        return self.frame.where(held if side == "holdout" else ~held)

    # ------------------------------------------------------------------ passes

    def value_tables(self, split: Split | None, progress: Progress | None = None) -> dict[str, ValueTable]:
        import pyarrow as pa
        import pyarrow.compute as pc
        from pyspark.sql import functions as F

        key = None if split is None else (split.salt, split.fraction)
        if key in self._tables:
            return self._tables[key]
        held = F.lit(False) if split is None else self._held(split)
        # Spark groups -0.0 with 0.0; pandas writes them apart ("-0.0"): a flag keeps them apart.
        kinds = dict(self.frame.dtypes)
        floats = [i for i, c in enumerate(self.columns) if kinds[c] in ("double", "float")]
        zeros = [((F.col(f"`{self.columns[i]}`") == 0) & F.col(f"`{self.columns[i]}`").cast("string").startswith("-"))
                 .alias(f"__z{i}") for i in floats]
        view = self.frame.select(*self._cols(), held.alias("__held"), *zeros)
        name = f"synthdata_{id(self)}"
        view.createOrReplaceTempView(name)
        names = ", ".join(f"`{c}`" for c in self.columns)
        flags = ", ".join(f"grouping(`{c}`) AS `__g{i}`" for i, c in enumerate(self.columns))
        sets = ", ".join(f"(__held, `{c}`{f', __z{i}' if i in floats else ''})" for i, c in enumerate(self.columns))
        zero = "".join(f", __z{i}" for i in floats)
        query = self.session.sql(f"SELECT __held, {names}{zero}, {flags}, count(*) AS __n FROM {name} "
                                 f"GROUP BY GROUPING SETS ({sets})")
        table = self._track(query.toArrow, "value counts", progress)
        self.session.catalog.dropTempView(name)
        held_column = table.column("__held").to_numpy(zero_copy_only=False).astype(bool)
        counts = table.column("__n").to_numpy(zero_copy_only=False).astype(np.int64)
        dtypes = self.source.pandas_dtypes() if self.source is not None else {}
        out = {}
        for i, column in enumerate(self.columns):
            rows = np.flatnonzero(table.column(f"__g{i}").to_numpy(zero_copy_only=False) == 0)
            values = _plain(table.column(i + 1).take(pa.array(rows)).combine_chunks())
            if i in floats:
                values = signed_zeros(values, table.column(f"__z{i}").take(pa.array(rows)).to_pylist())
            unique = pc.unique(values)
            position = np.asarray(pc.index_in(values, value_set=unique, skip_nulls=False)
                                  .to_numpy(zero_copy_only=False), dtype=np.int64)
            train = np.bincount(position, weights=np.where(held_column[rows], 0, counts[rows]),
                                minlength=len(unique)).astype(np.int64)
            holdout = np.bincount(position, weights=np.where(held_column[rows], counts[rows], 0),
                                  minlength=len(unique)).astype(np.int64)
            out[column] = ValueTable.from_arrow(column, unique, train, holdout, dtype=dtypes.get(column))
        self._tables[key] = out
        return out

    def rows(self, split: Split | None, side: str) -> int:
        table = next(iter(self.value_tables(split).values()))
        return int({"train": table.train.sum(), "holdout": table.holdout.sum(),
                    "all": table.train.sum() + table.holdout.sum()}[side])

    def digest(self, progress: Progress | None = None) -> bytes:
        tables = self.value_tables(None)
        total = self.rows(None, "all")
        hashes = self.frame.select(*self._cols()).mapInArrow(_PackedHashes(RowHasher(tables)), "h binary")
        digest = SortedDigest(self.columns, total)

        def collect() -> None:
            for row in hashes.toLocalIterator(prefetchPartitions=True):
                digest.add(np.frombuffer(row[0], dtype="<u8"))

        self._track(collect, "fingerprint", progress)
        return digest.finish()

    def encode(self, kernel: Callable, columns: list[str], split: Split | None, sizes: list[int],
               progress: Progress | None = None) -> SparkCodes:
        from pyspark import StorageLevel

        dtype = code_dtype(sizes)
        kind = "smallint" if dtype == np.uint8 else "int"  # Spark's integers are signed
        schema = ", ".join(f"c{j} {kind}" for j in range(len(columns)))
        train = self._side(split, "train").select(*[f"`{c}`" for c in columns])
        codes = train.mapInArrow(_CodeColumns(kernel, len(columns)), schema).persist(StorageLevel.DISK_ONLY)
        self._persisted.append(codes)
        rows = self._track(codes.count, "level codes", progress)
        return SparkCodes(self, codes, rows=rows, width=len(columns), dtype=dtype)

    def sample(self, split: Split | None, side: str, rate: float, salt: int, limit: int | None = None) -> pd.DataFrame:
        from pyspark.sql import functions as F

        from ..ingest import _plain_datetimes

        frame = self._side(split, side)
        if rate < 1:
            frame = frame.where(F.pmod(F.xxhash64(F.lit(int(salt)), *self._cols()), F.lit(HASH_BUCKETS))
                                < int(round(rate * HASH_BUCKETS)))
        if limit is not None:
            frame = frame.limit(int(limit))
        table = _plain_table(frame.toArrow())
        return _plain_datetimes(table.to_pandas(), self.source.display if self.source else "<Spark>")

    # ------------------------------------------------------------------ plumbing

    def _track(self, action: Callable, what: str, progress: Progress | None):
        """Run ``action`` (a Spark action), reporting finished tasks of the running stages."""
        progress = progress or self.progress
        if progress is None:
            return action()
        result: dict = {}

        def work() -> None:
            try:
                result["value"] = action()
            except BaseException as exc:
                result["error"] = exc

        thread = threading.Thread(target=work, daemon=True)
        started = time.monotonic()
        thread.start()
        tracker = self.session.sparkContext.statusTracker()
        done = total = 0
        while thread.is_alive():
            thread.join(0.5)
            stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            stages = [s for s in stages if s is not None]
            if stages and thread.is_alive():
                done, total = sum(s.numCompletedTasks for s in stages), sum(s.numTasks for s in stages)
                progress({"pass": what, "done": done, "total": total, "unit": "tasks",
                          "seconds": time.monotonic() - started})
        if "error" in result:
            raise result["error"]
        # The pass is over (a quick one may finish between two looks): say so, which closes its bar.
        total = max(total, 1)
        progress({"pass": what, "done": total, "total": total, "unit": "tasks", "seconds": time.monotonic() - started})
        return result.get("value")

    def close(self) -> None:
        for frame in self._persisted:
            try:
                frame.unpersist()
            except Exception:
                pass
        self._persisted = []


class SparkCodes:
    """Level codes of the training rows, persisted on the cluster."""

    def __init__(self, engine: SparkEngine, frame, *, rows: int, width: int, dtype: np.dtype) -> None:
        self.engine, self.frame, self.rows, self.width, self.dtype = engine, frame, int(rows), width, dtype
        self._batches = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.width)

    def chunks(self, rows: int = 1 << 20):
        """(first row, codes) blocks of the codes, brought to the driver (tests, small tables)."""
        packed = self.frame.mapInArrow(_PackedCodes(self.width, self.dtype), "c binary")
        start = 0
        for row in packed.toLocalIterator(prefetchPartitions=True):
            block = np.frombuffer(row[0], dtype=self.dtype).reshape(-1, self.width)
            yield start, block
            start += len(block)

    def cross_counts(self, groups, maps, sizes, progress: Progress | None = None,
                     what: str = "contingency tables") -> list[np.ndarray]:
        from pyspark.sql import functions as F

        used = sorted({c for g in groups for c in g})
        mapped = self.frame.select(*[F.element_at(F.array(*[F.lit(int(v)) for v in maps[c]]),
                                                  F.col(f"c{c}").cast("int") + 1).alias(f"m{c}") for c in used])
        name = f"synthdata_codes_{id(self)}"
        mapped.createOrReplaceTempView(name)
        flags = ", ".join(f"grouping(m{c}) AS g{c}" for c in used)
        sets = ", ".join("(" + ", ".join(f"m{c}" for c in g) + ")" for g in groups)
        query = self.engine.session.sql(f"SELECT {', '.join(f'm{c}' for c in used)}, {flags}, count(*) AS n "
                                        f"FROM {name} GROUP BY GROUPING SETS ({sets})")
        table = self.engine._track(query.toArrow, what, progress)
        self.engine.session.catalog.dropTempView(name)
        flags_of = {c: table.column(f"g{c}").to_numpy(zero_copy_only=False) for c in used}
        counts = table.column("n").to_numpy(zero_copy_only=False).astype(np.int64)
        values = {c: table.column(f"m{c}").to_numpy(zero_copy_only=False) for c in used}
        out = []
        for group in groups:
            rows = np.ones(len(counts), dtype=bool)
            for c in used:
                rows &= flags_of[c] == (0 if c in group else 1)
            index = np.zeros(int(rows.sum()), dtype=np.int64)
            for c in group:
                index = index * sizes[c] + values[c][rows].astype(np.int64)
            cells = int(np.prod([sizes[c] for c in group]))
            out.append(np.bincount(index, weights=counts[rows], minlength=cells).astype(np.int64))
        return out

    def real_units(self, *, offsets: np.ndarray, device, noise, rate: float, steps: int,
                   progress: Progress | None = None) -> StepBatches:
        """Every step's Poisson batch, drawn on the executors in one pass (geometric skipping per
        partition, each partition's coins from a generator keyed from ``noise``)."""
        key = [int(k) for k in noise.generator().integers(0, 2**63, size=4)]
        records = self.frame.mapInArrow(_PoissonRecords(key, rate, steps, self.width, self.dtype), "r binary")
        spill = StepSpill(steps=steps, width=self.width, dtype=self.dtype, expected_batch=rate * self.rows)

        def collect() -> None:
            for row in records.toLocalIterator(prefetchPartitions=True):
                block = np.frombuffer(row[0], dtype=spill.record)
                spill.add(block["step"].astype(np.int64), block["codes"])

        try:
            self.engine._track(collect, "Poisson batches", progress)
        except BaseException:
            spill.close()
            raise
        self._batches = StepBatches(spill, offsets=offsets, rate=rate, device=device)
        return self._batches

    def close(self) -> None:
        if self._batches is not None:
            self._batches.close()
        try:
            self.frame.unpersist()
        except Exception:
            pass


# --------------------------------------------------------------------------- executor-side functions (picklable)


class _PackedHashes:
    """mapInArrow: each batch's row hashes, packed in one binary cell."""

    def __init__(self, hasher: RowHasher) -> None:
        self.hasher = hasher

    def __call__(self, batches):
        import pyarrow as pa

        for batch in batches:
            hashes = self.hasher(_plain_batch(batch))
            yield pa.record_batch([pa.array([hashes.astype("<u8").tobytes()], pa.binary())], names=["h"])


class _CodeColumns:
    """mapInArrow: each batch's level codes as small-integer columns."""

    def __init__(self, kernel: Callable, width: int) -> None:
        self.kernel, self.width = kernel, width

    def __call__(self, batches):
        import pyarrow as pa

        for batch in batches:
            codes = self.kernel(_plain_batch(batch))
            kind = pa.int16() if codes.dtype == np.uint8 else pa.int32()
            yield pa.record_batch([pa.array(codes[:, j].astype(kind.to_pandas_dtype()), kind)
                                   for j in range(self.width)], names=[f"c{j}" for j in range(self.width)])


class _PackedCodes:
    """mapInArrow over the codes: each batch's codes packed in one binary cell."""

    def __init__(self, width: int, dtype: np.dtype) -> None:
        self.width, self.dtype = width, np.dtype(dtype)

    def __call__(self, batches):
        import pyarrow as pa

        for batch in batches:
            codes = np.stack([batch.column(j).to_numpy(zero_copy_only=False) for j in range(self.width)],
                             axis=1).astype(self.dtype) if batch.num_rows else np.zeros((0, self.width), self.dtype)
            yield pa.record_batch([pa.array([np.ascontiguousarray(codes).tobytes()], pa.binary())], names=["c"])


class _PoissonRecords:
    """mapInArrow over the codes: each partition's (step, codes) records, packed per batch."""

    def __init__(self, key: list[int], rate: float, steps: int, width: int, dtype: np.dtype) -> None:
        self.key, self.rate, self.steps, self.width, self.dtype = key, rate, steps, width, np.dtype(dtype)

    def __call__(self, batches):
        import pyarrow as pa
        from pyspark import TaskContext

        partition = TaskContext.get().partitionId()
        rng = np.random.Generator(np.random.PCG64DXSM(np.random.SeedSequence([*self.key, partition])))
        record = np.dtype([("step", "<u4"), ("codes", self.dtype, (self.width,))])
        position = None
        for batch in batches:
            codes = np.stack([batch.column(j).to_numpy(zero_copy_only=False) for j in range(self.width)],
                             axis=1).astype(self.dtype) if batch.num_rows else np.zeros((0, self.width), self.dtype)
            rows, steps, position = memberships(len(codes), self.steps, self.rate, rng, position)
            out = np.empty(len(rows), dtype=record)
            out["step"], out["codes"] = steps, codes[rows]
            yield pa.record_batch([pa.array([out.tobytes()], pa.binary())], names=["r"])


def _plain(array):
    """Large strings as plain ones (Spark may hand either): one Arrow type per column; decimals
    and binary cells as the in-memory reader gives them (:func:`~synthdata.engines.base.plain_array`)."""
    import pyarrow as pa

    if pa.types.is_large_string(array.type):
        return array.cast(pa.string())
    return plain_array(array, "the Spark table")


def _plain_batch(batch):
    import pyarrow as pa

    if not any(pa.types.is_large_string(f.type) for f in batch.schema) and not _needs_plain(batch.schema):
        return batch
    return pa.record_batch([_plain(c) for c in batch.columns], names=batch.schema.names)


def _plain_table(table):
    import pyarrow as pa

    return pa.table([_plain(c.combine_chunks()) for c in table.columns], names=table.column_names)


def _cluster_session(master: str):
    reason = spark_available()
    if reason is not None:
        raise DataError(f"--engine spark: {reason}")
    from pyspark.sql import SparkSession

    return SparkSession.builder.master(master).appName("synthdata").getOrCreate()
