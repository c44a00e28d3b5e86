"""DuckDB, embedded: a table's counts computed out of core, memory bounded whatever its rows.

DuckDB reads Parquet (a file, a directory, a glob) and CSV files in parallel and
aggregates out of core (spilling to a private temporary folder past ``memory_limit``).
Value counts are one ``GROUP BY GROUPING SETS`` query over every column at once; the
per-row work shared with the other engines (level codes, row hashes) runs on Arrow
batches streamed from DuckDB, and the codes are kept in a file on disk
(:class:`~synthdata.engines.local.LocalCodes`). Nothing is sampled down: every row of
the table is counted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from ..errors import DataError
from .base import (HASH_BUCKETS, Progress, RowHasher, SortedDigest, Split, TableSource, ValueTable, code_dtype,
                   ordered_map, plain_array, plain_batch, plain_table, prefetch, signed_zeros)
from .local import LocalCodes

__all__ = ["DuckDBEngine", "DEFAULT_MEMORY_LIMIT"]

#: DuckDB's own memory limit (its buffers, hash tables, sort runs); more spills to disk.
DEFAULT_MEMORY_LIMIT = "1GB"
#: Rows per Arrow batch streamed to Python.
BATCH_ROWS = 1 << 18
#: Column types the CSV reader may give (as pandas reads CSV: integers, decimals, text).
_CSV_TYPES = ["BIGINT", "DOUBLE", "VARCHAR"]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBEngine:
    """Counts over a :class:`~synthdata.engines.base.TableSource` with an embedded DuckDB."""

    name = "duckdb"

    def __init__(self, source: TableSource, *, threads: int | None = None, memory_limit: str | None = None,
                 progress: Progress | None = None) -> None:
        import duckdb

        self.source = source
        self.progress = progress
        self._temp = tempfile.mkdtemp(prefix="synthdata-duckdb-")
        #: Threads of DuckDB, and of the per-batch work in Python (level codes, row hashes).
        self.workers = int(threads or os.cpu_count() or 1)
        config = {"threads": self.workers,
                  "memory_limit": memory_limit or os.environ.get("SYNTHDATA_DUCKDB_MEMORY", DEFAULT_MEMORY_LIMIT),
                  "temp_directory": self._temp, "preserve_insertion_order": False}
        self.con = duckdb.connect(config=config)
        self.con.execute("SET enable_progress_bar = false")
        self.relation = self._relation()
        try:
            described = self.con.sql(f"DESCRIBE SELECT * FROM {self.relation}").fetchall()
        except duckdb.Error as exc:
            raise DataError(f"{source.display} could not be read ({str(exc).splitlines()[0]}); check the files") from None
        types = self._types = {row[0]: row[1] for row in described}
        missing = [name for name in source.drop if name not in types]
        if missing:
            raise DataError(f"{source.display}: --drop {missing[0]}: no such column; the columns are "
                            + ", ".join(types))
        self.columns = [name for name in types if name not in source.drop]
        if not self.columns:
            raise DataError(f"{source.display}: --drop leaves no column")
        for name in self.columns:
            kind = types[name].upper()
            if kind.startswith(("STRUCT", "MAP", "UNION")) or kind.endswith("]"):
                raise DataError(f"{source.display}: column {name!r} holds nested values ({types[name]}); synthdata "
                                "models one plain value per cell: flatten it, or leave it out with --drop")
        self._plain_values()
        self._tables: dict[tuple | None, dict[str, ValueTable]] = {}
        self._whole: dict | None = None  # the whole table's distinct values and counts, per column

    def _plain_values(self) -> None:
        """Decimals are read as floats and binary cells as text (:func:`~synthdata.engines.base.plain_array`,
        the in-memory reader's conversion); say so for decimals of more than 15 digits, as it does."""
        import warnings

        from ..errors import SynthdataWarning

        for name in self.columns:
            kind = self._types[name].upper()
            digits = int(kind[kind.index("(") + 1:].split(",")[0]) if kind.startswith("DECIMAL(") else 0
            if digits > 15:
                warnings.warn(f"{self.source.display}: column {name!r} holds decimals of up to {digits} digits; "
                              "they are read as floating-point numbers, rounded to about 15 significant digits",
                              SynthdataWarning, stacklevel=4)

    # ------------------------------------------------------------------ SQL pieces

    def _relation(self) -> str:
        paths = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in self.source.paths) + "]"
        if self.source.format == "parquet":
            return f"read_parquet({paths}, union_by_name = true)"
        from ..ingest import MISSING_MARKERS

        markers = list(dict.fromkeys([*MISSING_MARKERS, *self.source.na_values]))
        options = ["header = true", "sample_size = -1", "auto_type_candidates = " + _sql_list(_CSV_TYPES),
                   "nullstr = " + _sql_list(markers), "union_by_name = true"]
        if self.source.delimiter:
            options.append(f"delim = {_sql_text(self.source.delimiter)}")
        if self.source.encoding.lower().replace("-", "") not in ("utf8", "utf8sig"):
            options.append(f"encoding = {_sql_text(self.source.encoding)}")
        return f"read_csv({paths}, {', '.join(options)})"

    def _columns_sql(self, columns: list[str] | None = None) -> str:
        return ", ".join(quote(c) for c in (columns or self.columns))

    def _hash(self, salt: int) -> str:
        return f"(hash({int(salt)}, {self._columns_sql()}) % {HASH_BUCKETS})"

    def _where(self, split: Split | None, side: str) -> str:
        if split is None:
            return "false" if side == "holdout" else "true"
        if side == "all":
            return "true"
        held = f"{self._hash(split.salt)} < {split.threshold}"
        return held if side == "holdout" else f"NOT ({held})"

    # ------------------------------------------------------------------ passes

    def value_tables(self, split: Split | None, progress: Progress | None = None) -> dict[str, ValueTable]:
        """Every column's distinct values with their train and holdout counts.

        One scan of the table for the whole table's counts. A split's counts, once the whole
        table's are known, need only the holdout's: one more scan that groups the held-out
        rows alone (a fraction of the rows), the training counts being the whole table's
        minus the holdout's — the same integers as grouping both sides.
        """
        key = (None if split is None else (split.salt, split.fraction))
        if key in self._tables:
            return self._tables[key]
        dtypes = self.source.pandas_dtypes() if self.source is not None else {}
        out, held = {}, self._where(split, "holdout")
        if split is None or self._whole is None:
            raw = self._grouped(held, "true", progress)
            if split is None:
                self._whole = {name: (unique, train + holdout) for name, (unique, train, holdout) in raw.items()}
            for name, (unique, train, holdout) in raw.items():
                out[name] = ValueTable.from_arrow(name, unique, train, holdout, dtype=dtypes.get(name))
        else:
            import pyarrow.compute as pc

            raw = self._grouped("true", held, progress)
            for name, (unique, _, holdout) in raw.items():
                every, counts = self._whole[name]
                position = pc.index_in(unique, value_set=every, skip_nulls=False)
                position = np.asarray(position.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
                if (position < 0).any():
                    raise DataError(f"column {name!r}: a value changed while the table was read; is the source "
                                    "being written to?")
                held_counts = np.bincount(position, weights=holdout, minlength=len(every)).astype(np.int64)
                if (held_counts > counts).any():
                    raise DataError(f"column {name!r}: the table changed while it was read; is the source "
                                    "being written to?")
                out[name] = ValueTable.from_arrow(name, every, counts - held_counts, held_counts,
                                                  dtype=dtypes.get(name))
        self._tables[key] = out
        return out

    def _grouped(self, held: str, where: str, progress: Progress | None) -> dict:
        """Per column: (distinct values as an Arrow array, -0.0 apart from 0.0; train counts;
        holdout counts) of the rows ``where`` selects, ``held`` saying which are held out: one
        ``GROUPING SETS`` scan."""
        import pyarrow as pa
        import pyarrow.compute as pc

        names = self._columns_sql()
        # DuckDB groups -0.0 with 0.0; pandas writes them apart ("-0.0"): a flag keeps them apart.
        floats = [i for i, c in enumerate(self.columns) if self._types[c].upper() in ("DOUBLE", "FLOAT", "REAL")]
        flags = "".join(f", ({quote(self.columns[i])} = 0 AND signbit({quote(self.columns[i])})) AS __z{i}"
                        for i in floats)
        sets = ", ".join(f"(__held, {quote(c)}{f', __z{i}' if i in floats else ''})"
                         for i, c in enumerate(self.columns))
        zero = "".join(f", __z{i}" for i in floats)
        sql = (f"SELECT __held, {names}{zero}, GROUPING({names}) AS __set, count(*) AS __n FROM "
               f"(SELECT {names}, {held} AS __held{flags} FROM {self.relation} WHERE {where}) "
               f"GROUP BY GROUPING SETS ({sets})")
        table = self._query(sql, "value counts", progress)
        every = (1 << len(self.columns)) - 1
        sets_column = table.column("__set").to_numpy()
        held_column = table.column("__held").to_numpy(zero_copy_only=False).astype(bool)
        counts_column = table.column("__n").to_numpy().astype(np.int64)
        out = {}
        for i, name in enumerate(self.columns):
            rows = np.flatnonzero(sets_column == every ^ (1 << (len(self.columns) - 1 - i)))
            values = plain_array(table.column(i + 1).take(pa.array(rows)).combine_chunks(), self.source.display)
            if i in floats:
                values = signed_zeros(values, table.column(f"__z{i}").take(pa.array(rows)).to_pylist())
            unique = pc.unique(values)
            position = pc.index_in(values, value_set=unique, skip_nulls=False).to_numpy(zero_copy_only=False)
            position = np.asarray(position, dtype=np.int64)
            train = np.bincount(position, weights=np.where(held_column[rows], 0, counts_column[rows]),
                                minlength=len(unique)).astype(np.int64)
            holdout = np.bincount(position, weights=np.where(held_column[rows], counts_column[rows], 0),
                                  minlength=len(unique)).astype(np.int64)
            out[name] = (unique, train, holdout)
        return out

    def rows(self, split: Split | None, side: str) -> int:
        tables = self.value_tables(split)
        table = next(iter(tables.values()))
        return int({"train": table.train.sum(), "holdout": table.holdout.sum(),
                    "all": table.train.sum() + table.holdout.sum()}[side])

    def batches(self, columns: list[str], split: Split | None, side: str,
                batch_rows: int = BATCH_ROWS) -> Iterator:
        """Arrow record batches of ``columns`` of the rows of ``side``."""
        cursor = self.con.cursor()
        try:
            reader = cursor.sql(f"SELECT {self._columns_sql(columns)} FROM {self.relation} "
                                f"WHERE {self._where(split, side)}").to_arrow_reader(batch_rows)
            for batch in reader:
                yield plain_batch(batch, self.source.display)
        finally:
            cursor.close()

    def digest(self, progress: Progress | None = None) -> bytes:
        """:func:`synthdata.fingerprint.content_digest` of the whole table, out of core."""
        tables = self.value_tables(None)
        hasher = RowHasher(tables)
        total = self.rows(None, "all")
        digest = SortedDigest(self.columns, total, directory=self._temp)
        done = 0
        for hashes in ordered_map(hasher, prefetch(self.batches(self.columns, None, "all")), self.workers):
            digest.add(hashes)
            done += len(hashes)
            _say(progress or self.progress, "fingerprint", done, total)
        return digest.finish()

    def encode(self, kernel: Callable, columns: list[str], split: Split | None, sizes: list[int],
               progress: Progress | None = None) -> LocalCodes:
        """Level codes of the training rows (``kernel`` maps a batch to codes), kept on disk."""
        codes = LocalCodes(width=len(columns), dtype=code_dtype(sizes))
        total = self.rows(split, "train")
        try:
            for block in ordered_map(kernel, prefetch(self.batches(columns, split, "train")), self.workers):
                codes.append(block)
                _say(progress or self.progress, "level codes", codes.rows, total)
        except BaseException:
            codes.close()
            raise
        return codes.finish()

    def sample(self, split: Split | None, side: str, rate: float, salt: int, limit: int | None = None) -> pd.DataFrame:
        """The rows of ``side`` whose salted hash falls below ``rate`` (a sample; all when ``rate`` >= 1)."""
        from ..ingest import _plain_datetimes

        where = self._where(split, side)
        if rate < 1:
            where += f" AND {self._hash(salt)} < {int(round(rate * HASH_BUCKETS))}"
        sql = f"SELECT {self._columns_sql()} FROM {self.relation} WHERE {where}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        frame = plain_table(self._query(sql, "sample", None, quiet=True), self.source.display).to_pandas()
        return _plain_datetimes(frame, self.source.display)

    # ------------------------------------------------------------------ plumbing

    def _query(self, sql: str, what: str, progress: Progress | None, quiet: bool = False):
        """Run ``sql`` to an Arrow table, reporting DuckDB's progress every half second."""
        progress = None if quiet else progress or self.progress
        result: dict = {}

        def work() -> None:
            try:
                result["table"] = self.con.sql(sql).to_arrow_table()
            except BaseException as exc:  # re-raised in the caller's thread
                result["error"] = exc

        thread = threading.Thread(target=work, daemon=True)
        started = time.monotonic()
        thread.start()
        while thread.is_alive():
            thread.join(0.5)
            if progress is not None and thread.is_alive():
                share = self.con.query_progress()
                if share >= 0:
                    progress({"pass": what, "done": float(share), "total": 100.0, "unit": "%",
                              "seconds": time.monotonic() - started})
        if "error" in result:
            error = result["error"]
            import duckdb

            if isinstance(error, duckdb.Error):
                raise DataError(f"{self.source.display}: {str(error).splitlines()[0]}") from None
            raise error
        if progress is not None:
            progress({"pass": what, "done": 100.0, "total": 100.0, "unit": "%",
                      "seconds": time.monotonic() - started})
        return result["table"]

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self._temp, ignore_errors=True)


def _say(progress: Progress | None, what: str, done: int, total: int) -> None:
    if progress is not None:
        progress({"pass": what, "done": done, "total": total, "unit": "rows"})


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_list(items) -> str:
    return "[" + ", ".join(_sql_text(i) for i in items) + "]"
