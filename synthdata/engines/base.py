"""What every engine offers, and the pieces they share (sources, the split, value tables, digests)."""

from __future__ import annotations

import glob
import hashlib
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["CodeSource", "Engine", "EngineView", "Split", "TableSource", "ValueTable", "choose_engine",
           "combine_hashes", "ordered_map", "value_hashes"]

#: The key of the row hashes of :func:`synthdata.fingerprint.content_digest` (same digest, any engine).
ROW_HASH_KEY = "synthdatarows-v1"
#: Resolution of the hash-based split and samples: a row's hash modulo this, against fraction * this.
HASH_BUCKETS = 1 << 24
ENGINES = ("auto", "memory", "duckdb", "spark")

Progress = Callable[[dict], None]


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class TableSource:
    """Where a table's rows are: Parquet files (one, a directory of them, a glob) or CSV files.

    Column names and the file list are public facts (the header, the paths); nothing
    here reads a row.
    """

    display: str
    format: str  # "parquet" | "csv"
    paths: tuple[str, ...]
    size_bytes: int
    delimiter: str | None = None
    encoding: str = "utf-8"
    na_values: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: str | os.PathLike, *, delimiter: str | None = None, encoding: str = "utf-8",
           na_values: Iterable[str] = (), drop: Iterable[str] = ()) -> TableSource:
        """``spec``: a Parquet or CSV file, a directory of Parquet (or CSV) files, or a glob of either."""
        text = os.fspath(spec)
        if "://" in text:  # a cluster's storage (s3a://, hdfs://, abfss://): read by the engine, never here
            kind = "csv" if text.lower().rstrip("/").endswith(".csv") else "parquet"
            return cls(display=text, format=kind, paths=(text,), size_bytes=0, delimiter=delimiter,
                       encoding=encoding, na_values=tuple(na_values), drop=tuple(drop))
        if any(ch in text for ch in "*?["):
            paths = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
            if not paths:
                raise DataError(f"{text}: no file matches this pattern")
        elif os.path.isdir(text):
            paths = sorted(str(p) for p in Path(text).rglob("*") if p.is_file() and not p.name.startswith((".", "_"))
                           and p.suffix.lower() in (".parquet", ".pq", ".csv"))
            if not paths:
                raise DataError(f"{text} is a directory without Parquet or CSV files")
        elif os.path.isfile(text):
            paths = [text]
        else:
            raise DataError(f"{text}: no such file or directory; check the path")
        kinds = {_format_of(p) for p in paths}
        if len(kinds) != 1:
            raise DataError(f"{text} mixes Parquet and CSV files; give one kind")
        return cls(display=text, format=kinds.pop(), paths=tuple(paths),
                   size_bytes=sum(os.path.getsize(p) for p in paths), delimiter=delimiter, encoding=encoding,
                   na_values=tuple(na_values), drop=tuple(drop))

    @property
    def name(self) -> str:
        return Path(self.display.rstrip("/*")).name or "table"

    def pandas_dtypes(self) -> dict[str, str]:
        """Extension types (``boolean``, ``Int64``, …) a Parquet file's pandas metadata records,
        which pandas restores when it reads the file (so the value tables read them so too)."""
        if self.format != "parquet":
            return {}
        import pyarrow.parquet as pq

        try:
            metadata = pq.read_schema(self.paths[0]).pandas_metadata or {}
        except Exception:
            return {}
        out = {}
        for column in metadata.get("columns", []):
            kind = str(column.get("numpy_type") or "")
            if kind in ("boolean", "string") or kind[:1] in ("I", "U", "F") and kind[1:].rstrip("0123456789") in (
                    "nt", "Int", "loat"):
                out[str(column.get("name"))] = kind
        return out


def _format_of(path: str) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4)
    return "parquet" if head == b"PAR1" or path.lower().endswith((".parquet", ".pq")) else "csv"


_TABLE_SUFFIXES = (".parquet", ".pq", ".csv")


def is_engine_input(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` needs an engine whatever its size: a directory of table files, a glob, a URL."""
    text = os.fspath(spec)
    return "://" in text or any(ch in text for ch in "*?[") or is_table_directory(text)


def is_table_directory(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` is a directory holding Parquet or CSV files (a partitioned table), not images."""
    path = Path(spec)
    if not path.is_dir():
        return False
    for index, item in enumerate(path.rglob("*")):
        if item.is_file() and item.suffix.lower() in _TABLE_SUFFIXES:
            return True
        if index > 10_000:
            break
    return False


def choose_engine(spec: str | os.PathLike, engine: str = "auto", *, memory_limit: int | None = None) -> str:
    """The engine to read ``spec`` with: ``engine`` unless "auto", then DuckDB for Parquet,
    a directory, a glob or a file larger than ``memory_limit``; pandas for the rest."""
    if engine not in ENGINES:
        raise DataError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
    if engine != "auto":
        if engine == "memory" and is_engine_input(spec):
            raise DataError(f"{os.fspath(spec)} is a directory, a glob or a URL: read it with --engine duckdb or spark")
        return engine
    if is_engine_input(spec):
        return "duckdb"
    text = os.fspath(spec)
    if os.path.isfile(text):
        if _format_of(text) == "parquet":
            return "duckdb"
        from ..ingest import default_memory_limit

        limit = default_memory_limit() if memory_limit is None else memory_limit
        if os.path.getsize(text) > limit:
            return "duckdb"
    return "memory"


# --------------------------------------------------------------------------- the split


@dataclass(frozen=True)
class Split:
    """The holdout split of an engine's table: a row is held out when a salted hash of its
    content falls below ``fraction``.

    Deterministic given the salt (every pass sees the same split), the salt drawn from the
    ledger's CSPRNG-keyed source and kept in memory only. A row's side depends on that
    row alone, so adding or removing one row changes the training set by at most that
    row: the fit's guarantee holds for the whole table. Identical rows go together.
    """

    salt: int
    fraction: float

    @classmethod
    def draw(cls, noise, fraction: float) -> Split:
        return cls(salt=int(noise.generator().integers(1, 2**62)), fraction=float(fraction))

    @property
    def threshold(self) -> int:
        return int(round(self.fraction * HASH_BUCKETS))


@dataclass(frozen=True)
class EngineView:
    """One side of an engine's split ("train", "holdout" or "all"): what a fit or an audit reads."""

    engine: Engine
    split: Split | None
    side: str = "train"

    @property
    def columns(self) -> list[str]:
        return list(self.engine.columns)

    def __len__(self) -> int:  # exact; for the steward's eyes and the DP count's mechanism only
        return self.engine.rows(self.split, self.side)


# --------------------------------------------------------------------------- value tables


@dataclass
class ValueTable:
    """A column's distinct values as pandas reads the column, with their counts per side.

    ``values`` is a pandas Series of the distinct values (the column's dtype); ``train``
    and ``holdout`` count their rows. ``arrow`` (optional) holds the engine's own distinct
    values, and ``merged[k]`` the position in ``values`` of ``arrow[k]`` (engines may keep
    apart what pandas merges: NaN and null). :meth:`positions` maps a batch of cells
    (Arrow or pandas) to positions in ``values``.
    """

    name: str
    values: pd.Series
    train: np.ndarray
    holdout: np.ndarray
    arrow: Any = None
    merged: np.ndarray | None = None
    _lookup: Any = field(default=None, repr=False)

    @classmethod
    def from_frame(cls, series: pd.Series, holdout: np.ndarray | None = None) -> ValueTable:
        counts = series.value_counts(dropna=False, sort=False)
        train = counts.to_numpy(np.int64)
        values = pd.Series(counts.index, dtype=series.dtype if len(counts) else series.dtype, name=series.name)
        return cls(name=str(series.name), values=values.reset_index(drop=True), train=train,
                   holdout=np.zeros_like(train) if holdout is None else holdout)

    @classmethod
    def from_arrow(cls, name: str, values, train: np.ndarray, holdout: np.ndarray,
                   dtype: str | None = None) -> ValueTable:
        """From an engine's distinct values (an Arrow array, -0.0 apart from 0.0); NaN and null
        merged into one missing value, as pandas reads them. ``dtype``: the pandas extension
        type a Parquet file's pandas metadata gives the column (``boolean``, ``Int64``), which
        pandas restores when it reads the file."""
        import pyarrow as pa

        values = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        series = values.to_pandas()
        if isinstance(series, np.ndarray):
            series = pd.Series(series)
        series = series.reset_index(drop=True).rename(name)
        if dtype is not None and str(series.dtype) != dtype:
            try:
                series = series.astype(dtype)
            except (TypeError, ValueError):
                pass
        train, holdout = np.asarray(train, np.int64), np.asarray(holdout, np.int64)
        missing = np.flatnonzero(series.isna().to_numpy())
        merged = np.arange(len(series))
        if len(missing) <= 1:
            return cls(name=name, values=series, train=train, holdout=holdout, arrow=values, merged=merged)
        keep = np.ones(len(series), dtype=bool)
        keep[missing[1:]] = False
        position = np.cumsum(keep) - 1
        merged = position.copy()
        merged[missing[1:]] = position[missing[0]]
        merged_train = np.bincount(merged, weights=train, minlength=int(keep.sum())).astype(np.int64)
        merged_holdout = np.bincount(merged, weights=holdout, minlength=int(keep.sum())).astype(np.int64)
        return cls(name=name, values=series[keep].reset_index(drop=True), train=merged_train, holdout=merged_holdout,
                   arrow=values, merged=merged.astype(np.int64))

    def present(self, side: str = "train") -> tuple[pd.Series, np.ndarray]:
        """(values, counts) of the values held by rows of ``side``."""
        counts = {"train": self.train, "holdout": self.holdout, "all": self.train + self.holdout}[side]
        keep = counts > 0
        return self.values[keep].reset_index(drop=True), counts[keep]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_lookup"] = None
        return state

    def positions(self, cells) -> np.ndarray:
        """The position in :attr:`values` of every cell of ``cells`` (an Arrow array or a pandas Series)."""
        import pyarrow as pa

        if isinstance(cells, pa.ChunkedArray):
            cells = cells.combine_chunks()
        if isinstance(cells, pa.Array):
            if self.arrow is None:
                cells = cells.to_pandas()
            else:
                return self._arrow_positions(cells)
        if self._lookup is None:
            self._lookup = pd.Index(self.values)
        found = self._lookup.get_indexer(pd.Series(cells).reset_index(drop=True))
        return found.astype(np.int64)

    def _arrow_positions(self, cells) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = self.arrow.type
        if pa.types.is_integer(kind) and cells.type == kind:
            lookup = self._integer_lookup()
            if lookup is not None:
                low, table, null_at = lookup
                values = cells.to_numpy(zero_copy_only=False) if not cells.null_count else \
                    pc.fill_null(cells, low).to_numpy(zero_copy_only=False)
                out = table[values.astype(np.int64) - low]
                if cells.null_count:
                    out[np.asarray(cells.is_null())] = null_at
                return out
        found = pc.index_in(cells, value_set=self.arrow, skip_nulls=False)
        if found.null_count:
            found = pc.fill_null(found, -1)
        found = found.to_numpy(zero_copy_only=False).astype(np.int64)
        if self._identity():
            return found
        return np.where(found >= 0, self.merged[np.maximum(found, 0)], -1)

    def _identity(self) -> bool:
        if not hasattr(self, "_is_identity"):
            self._is_identity = self.merged is not None and np.array_equal(self.merged, np.arange(len(self.merged)))
        return self._is_identity

    def _integer_lookup(self):
        """(lowest value, dense position table, position of null) for integers spanning a short range."""
        if self._lookup is None:  # computed whole, then set once (batches are worked on in threads)
            import pyarrow.compute as pc

            lookup = False
            present = self.arrow.drop_null()
            if len(present):
                low, high = pc.min(present).as_py(), pc.max(present).as_py()
                if high - low < 1 << 24:
                    table = np.full(high - low + 1, -1, dtype=np.int64)
                    raw = present.to_numpy()
                    where = np.flatnonzero(np.asarray(self.arrow.is_valid()))
                    table[raw - low] = self.merged[where]
                    nulls = np.flatnonzero(np.asarray(self.arrow.is_null()))
                    null_at = int(self.merged[nulls[0]]) if len(nulls) else -1
                    lookup = (low, table, null_at)
            self._lookup = lookup
        return self._lookup or None


def plain_array(array, where: str = "the table"):
    """An engine's Arrow column as the in-memory reader gives it (``synthdata.ingest``): decimals
    as float64 by the same Arrow cast, binary cells as UTF-8 text (refused otherwise, naming
    the column's source), dictionaries decoded. Other types unchanged."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_dictionary(kind) and (pa.types.is_decimal(kind.value_type) or _binary(kind.value_type)):
        array, kind = array.cast(kind.value_type), kind.value_type
    if pa.types.is_decimal(kind):
        return array.cast(pa.float64(), safe=False)
    if _binary(kind):
        try:
            return array.cast(pa.binary()).cast(pa.string())
        except pa.ArrowInvalid:
            raise DataError(f"{where}: a column holds binary values that are not UTF-8 text; synthdata models text "
                            "and numbers: decode them into a text column, or leave it out with --drop") from None
    return array


def _binary(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)


def _needs_plain(schema) -> bool:
    import pyarrow as pa

    def odd(kind):
        return pa.types.is_decimal(kind) or _binary(kind)

    return any(odd(f.type) or (pa.types.is_dictionary(f.type) and odd(f.type.value_type)) for f in schema)


def plain_batch(batch, where: str = "the table"):
    """:func:`plain_array` over each column of an Arrow record batch."""
    import pyarrow as pa

    if not _needs_plain(batch.schema):
        return batch
    return pa.record_batch([plain_array(c, where) for c in batch.columns], names=batch.schema.names)


def plain_table(table, where: str = "the table"):
    """:func:`plain_array` over each column of an Arrow table."""
    import pyarrow as pa

    if not _needs_plain(table.schema):
        return table
    return pa.table([plain_array(c, where) for c in table.columns], names=table.column_names)


def signed_zeros(values, negative: np.ndarray):
    """``values`` (an Arrow float array whose zeros an engine grouped together) with -0.0 where
    ``negative`` says the group held negative zeros, 0.0 elsewhere."""
    import pyarrow as pa

    raw = values.to_numpy(zero_copy_only=False)
    flags = np.asarray(negative, dtype=object) == True  # noqa: E712 (None: null)
    signed = np.where(raw == 0, np.where(flags, -0.0, 0.0), raw)
    return pa.array(signed, mask=np.asarray(values.is_null()), type=values.type)


def value_hashes(table: ValueTable, *, signed_zero: bool = True) -> np.ndarray:
    """Each distinct value's hash as :func:`synthdata.fingerprint.content_digest` hashes its cells
    (``signed_zero=False``: -0.0 hashed as 0.0)."""
    from ..fingerprint import _canonical

    values = table.values.reset_index(drop=True)
    if not signed_zero and values.dtype.kind == "f":
        values = values + 0.0
    canonical = _canonical(values)
    return pd.util.hash_pandas_object(canonical, index=False, hash_key=ROW_HASH_KEY).to_numpy(np.uint64)


def combine_hashes(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Row hashes from column hashes, as ``pandas.util.hash_pandas_object`` combines a DataFrame's."""
    n = len(arrays)
    out = np.zeros_like(arrays[0]) + np.uint64(0x345678)
    mult = np.uint64(1000003)
    with np.errstate(over="ignore"):
        for i, a in enumerate(arrays):
            inverse = n - i
            out ^= a
            out *= mult
            mult += np.uint64(82520 + inverse + inverse)
        out += np.uint64(97531)
    return out


class RowHasher:
    """Row hashes of batches (content_digest's, bit for bit), from per-value hashes: picklable."""

    def __init__(self, tables: dict[str, ValueTable]) -> None:
        self.names = sorted(tables)
        self.tables = [tables[name] for name in self.names]
        self.hashes = [value_hashes(table) for table in self.tables]

    def __call__(self, batch) -> np.ndarray:
        columns = []
        for name, table, hashes in zip(self.names, self.tables, self.hashes):
            positions = table.positions(_column(batch, name))
            if (positions < 0).any():
                raise DataError(f"column {name!r}: a value changed while the table was read; is the source being "
                                "written to?")
            columns.append(hashes[positions])
        return combine_hashes(columns)


class SortedDigest:
    """content_digest's SHA-256 over row hashes that arrive in any order, out of core.

    The hashes are spilled to files by their top bits (a radix partition sized so each
    part fits easily in memory), then each part is sorted and hashed in order: the same
    bytes as sorting them all at once.
    """

    def __init__(self, names: Sequence[str], rows: int, directory: str | None = None) -> None:
        import tempfile

        self.digest = digest_header(names, rows)
        parts = 1
        while rows / parts > (1 << 22):
            parts *= 2
        self.shift = np.uint64(64 - max(parts.bit_length() - 1, 0)) if parts > 1 else None
        self.parts = parts
        self.directory = tempfile.mkdtemp(prefix="synthdata-digest-", dir=directory)
        self._files: dict[int, Any] = {}

    def add(self, hashes: np.ndarray) -> None:
        hashes = np.asarray(hashes, dtype="<u8")
        if self.shift is None:
            self._file(0).write(hashes.tobytes())
            return
        part = (hashes >> self.shift).astype(np.int64)
        order = np.argsort(part, kind="stable")
        part, hashes = part[order], hashes[order]
        bounds = np.searchsorted(part, np.arange(self.parts + 1))
        for p in np.flatnonzero(np.diff(bounds)):
            self._file(int(p)).write(hashes[bounds[p]:bounds[p + 1]].tobytes())

    def _file(self, part: int):
        handle = self._files.get(part)
        if handle is None:
            handle = self._files[part] = open(os.path.join(self.directory, f"{part}.bin"), "wb")
        return handle

    def finish(self) -> bytes:
        import shutil

        try:
            for handle in self._files.values():
                handle.close()
            for part in range(self.parts):
                path = os.path.join(self.directory, f"{part}.bin")
                if os.path.exists(path):
                    self.digest.update(np.sort(np.fromfile(path, dtype="<u8")).tobytes())
            return self.digest.digest()
        finally:
            self._files = {}
            shutil.rmtree(self.directory, ignore_errors=True)


def prefetch(iterator, depth: int = 2):
    """Iterate ``iterator`` in a background thread, ``depth`` items ahead (the engine reads
    the next batch while this thread works on the current one)."""
    import queue
    import threading

    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as exc:  # handed to the consumer
            items.put(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def ordered_map(function: Callable, items, workers: int | None = None):
    """``function`` over ``items`` in ``workers`` threads (default: the cores), results in the
    items' order, at most one batch per worker waiting. The per-batch work (Arrow compute, numpy gathers) releases the GIL for most
    of its time, so batches are worked on side by side while the engine reads the next ones."""
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, int(workers or os.cpu_count() or 1))
    if workers == 1:
        for item in items:
            yield function(item)
        return
    pending: list = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) > workers:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for future in pending:
                future.cancel()


def digest_header(names: Sequence[str], rows: int) -> hashlib._Hash:
    """A SHA-256 started as content_digest starts it; the sorted row hashes follow."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(sorted(names)).encode("utf-8"))
    digest.update(int(rows).to_bytes(8, "little"))
    return digest


def _column(batch, name: str):
    """A column of a batch (Arrow RecordBatch/Table or pandas DataFrame)."""
    if isinstance(batch, pd.DataFrame):
        return batch[name]
    return batch.column(batch.schema.get_field_index(name))


# --------------------------------------------------------------------------- engines and code sources


class CodeSource(Protocol):
    """Level codes of the training rows, kept where the engine keeps them."""

    rows: int
    width: int

    def cross_counts(self, groups: Sequence[tuple[int, ...]], maps: Sequence[np.ndarray], sizes: Sequence[int],
                     progress: Progress | None = None) -> list[np.ndarray]: ...

    def real_units(self, *, offsets: np.ndarray, device, noise, rate: float, steps: int,
                   progress: Progress | None = None): ...


class Engine(Protocol):
    """An engine over one table (see the package docstring)."""

    name: str
    columns: list[str]
    source: TableSource

    def value_tables(self, split: Split | None, progress: Progress | None = None) -> dict[str, ValueTable]: ...
    def rows(self, split: Split | None, side: str) -> int: ...
    def digest(self, progress: Progress | None = None) -> bytes: ...
    def encode(self, kernel: Callable, columns: list[str], split: Split | None, width: int,
               progress: Progress | None = None) -> CodeSource: ...
    def sample(self, split: Split | None, side: str, rate: float, salt: int) -> pd.DataFrame: ...
    def close(self) -> None: ...


def code_dtype(sizes: Sequence[int]) -> np.dtype:
    return np.dtype(np.uint8) if max(sizes, default=1) <= 256 else np.dtype(np.uint16)


def flat_index(mapped: dict[int, np.ndarray], group: tuple[int, ...], sizes: Sequence[int]) -> tuple[np.ndarray, int]:
    """Each row's cell of the contingency table of ``group``, from its columns' mapped codes."""
    index = None
    for column in group:
        index = mapped[column].astype(np.int64) if index is None else index * sizes[column] + mapped[column]
    return index, int(math.prod(sizes[c] for c in group))


def mapped_columns(codes: np.ndarray, groups: Sequence[tuple[int, ...]], maps: Sequence[np.ndarray]) -> dict:
    """The code columns ``groups`` use, each mapped once (levels -> groups)."""
    return {c: np.asarray(maps[c])[codes[:, c]] for c in sorted({c for g in groups for c in g})}


def cross_counts_of(codes: np.ndarray, groups: Sequence[tuple[int, ...]], maps: Sequence[np.ndarray],
                    sizes: Sequence[int]) -> list[np.ndarray]:
    """Contingency tables (flattened, row-major) of ``groups`` of code columns, each column's
    levels mapped to ``sizes[c]`` groups by ``maps[c]``."""
    mapped = mapped_columns(codes, groups, maps)
    out = []
    for group in groups:
        index, cells = flat_index(mapped, group, sizes)
        out.append(np.bincount(index, minlength=cells).astype(np.int64))
    return out
