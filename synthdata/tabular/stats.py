"""The statistics interface: every private measurement of a table reads the rows through it.

A table release reads the real rows only through exact counts, each then released by
the :class:`~synthdata.privacy.PrivacyLedger` with noise:

==========================  ================================================  ==========================
measurement                 exact counts (before noise)                       consumer
==========================  ================================================  ==========================
DP row count                :attr:`TableStats.rows`                           ``TabularGAN._measure``
column types (schema)       :meth:`TableStats.shape_counts`                   :func:`~synthdata.tabular.inference.infer_schema_private`
1-way histograms            :meth:`TableStats.histograms`                     :meth:`TabularEncoder.fit`
rows as level codes         :meth:`TableStats.encode`                         (input of the next two)
pair / triple tables        :func:`cross_counts`                              :mod:`synthdata.tabular.marginals`
DP-SGD batches              ``codes.real_units`` (engines) / ``poisson_sample``  :func:`synthdata.tabular.training.train`
==========================  ================================================  ==========================

Two implementations: :class:`FrameStats` over a pandas DataFrame in memory (today's
path: the per-row functions of the encoder and the schema inference), and
:class:`EngineStats` over an :class:`~synthdata.engines.EngineView` (DuckDB or Spark),
where each column's *value counts* come from the engine and the same per-value functions
run on the distinct values, weighted by their counts. A cell's shape, its histogram cells
and its level are functions of the cell alone, so both give the same counts (checked by
``tests/test_engines.py`` on several tables); only counts leave the engine.

Encoding rows into levels is the same function on every engine, :class:`EncodeKernel`:
each cell's level is looked up by its value; a value no level holds (a category too rare
to be released, a gap without a missing level) is reassigned to a level drawn in
proportion to the released counts, with a uniform derived from a hash of the row's
content and the fit's seed — the same draw whatever engine, partition or batch the row
is in (the encoder's own :meth:`~TabularEncoder.encode` draws them from a stream, in row
order). Like the stream it replaces, this is preprocessing no privacy rests on: each row
still moves each count by one.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..engines import EngineView, ValueTable
from ..engines.base import Progress, code_dtype, combine_hashes, cross_counts_of, value_hashes
from ..errors import DataError, SynthdataWarning
from ..schema import Column, Schema
from .encoding import (
    TabularEncoder,
    _category_keys,
    _column_levels,
    _ExactCounts,
    _keys,
    _numeric_bounds,
    _public_domain,
    _to_number,
    reassign_weights,
)
from .inference import SHAPES, _distinct, clock_codes, frame_counts, shape_codes

__all__ = ["EncodeKernel", "EngineStats", "FrameStats", "TableStats", "cross_counts", "table_stats"]


def table_stats(data: Any, progress: Progress | None = None) -> TableStats:
    """The statistics of ``data``: a DataFrame (in memory) or an engine's view of a table."""
    if isinstance(data, TableStats):
        return data
    if isinstance(data, EngineView):
        return EngineStats(data, progress=progress)
    if isinstance(data, pd.DataFrame):
        return FrameStats(data)
    raise DataError(f"cannot read data of type {type(data).__name__}; pass a DataFrame or an engine's table")


def cross_counts(codes: Any, groups: Sequence[tuple[int, ...]], maps: Sequence[np.ndarray], sizes: Sequence[int],
                 progress: Progress | None = None, what: str = "contingency tables") -> list[np.ndarray]:
    """Contingency tables of ``groups`` of code columns (each column's levels mapped by ``maps``):
    from codes in memory, or wherever an engine keeps them."""
    if isinstance(codes, np.ndarray):
        return cross_counts_of(codes, groups, [np.asarray(m, dtype=np.int64) for m in maps], sizes)
    return codes.cross_counts(groups, maps, sizes, progress=progress, what=what)


class TableStats:
    """Exact counts of a table's rows (see the module docstring); the ledger adds the noise."""

    engine = "memory"
    frame: pd.DataFrame | None = None

    @property
    def rows(self) -> int:
        raise NotImplementedError

    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    def shape_counts(self, names: Sequence[str]) -> np.ndarray:
        """Per column: the count of cells of each shape (:data:`SHAPES`), the number of distinct values, then
        the time-of-day evidence (cells that read as times, cells no time is written as: :func:`clock_codes`)."""
        raise NotImplementedError

    def histograms(self, schema: Schema) -> Callable:
        """The encoder's exact histograms (``counts`` of :meth:`TabularEncoder.fit`)."""
        raise NotImplementedError

    def encode(self, encoder: TabularEncoder, schema: Schema, seed: int) -> Any:
        """Every row's level codes (rows x columns of ``encoder.codes_``)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- in memory


class FrameStats(TableStats):
    """A pandas DataFrame in memory: the per-row functions, as the fit always used them."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def shape_counts(self, names: Sequence[str]) -> np.ndarray:
        return frame_counts(self.frame, names)

    def histograms(self, schema: Schema) -> Callable:
        from .encoding import _exact_counts

        frame = schema.conform(self.frame[schema.names])

        def counts(columns, resolutions, lattices):
            return [_exact_counts(c, frame[c.name], r, lattice) for c, r, lattice in zip(columns, resolutions, lattices)]

        return counts

    def value_tables(self, names: Sequence[str]) -> dict[str, ValueTable]:
        return {name: ValueTable.from_frame(self.frame[name]) for name in names}

    def encode(self, encoder: TabularEncoder, schema: Schema, seed: int) -> np.ndarray:
        names = [code.name for code in encoder.codes_]
        kernel = EncodeKernel(encoder, schema, self.value_tables(names), seed)
        return kernel(self.frame).astype(np.int64)


# --------------------------------------------------------------------------- on an engine


class EngineStats(TableStats):
    """An engine's view of a table (DuckDB, Spark): value counts from the engine, the same
    per-value functions weighted by them; level codes kept by the engine."""

    def __init__(self, view: EngineView, progress: Progress | None = None) -> None:
        self.view = view
        self.engine = view.engine.name
        self.progress = progress
        self._tables: dict[str, ValueTable] | None = None

    @property
    def tables(self) -> dict[str, ValueTable]:
        if self._tables is None:
            self._tables = self.view.engine.value_tables(self.view.split, progress=self.progress)
        return self._tables

    @property
    def rows(self) -> int:
        self.tables  # the value counts' pass (with its progress) gives the row count too
        return self.view.engine.rows(self.view.split, self.view.side)

    @property
    def columns(self) -> list[str]:
        return list(self.view.engine.columns)

    def _present(self, name: str) -> tuple[pd.Series, np.ndarray]:
        return self.tables[name].present(self.view.side)

    def shape_counts(self, names: Sequence[str]) -> np.ndarray:
        shapes = len(SHAPES)
        counts = np.zeros((len(names), shapes + 3), dtype=np.int64)
        for j, name in enumerate(names):
            values, weights = self._present(name)
            counts[j, :shapes] = _weighted_bincount(shape_codes(values), weights, shapes)
            counts[j, shapes] = _distinct(values)
            counts[j, shapes + 1:] = _weighted_bincount(clock_codes(values), weights, 3)[1:]
        return counts

    def histograms(self, schema: Schema) -> Callable:
        def counts(columns, resolutions, lattices):
            out = []
            for column, resolution, lattice in zip(columns, resolutions, lattices):
                values, weights = self._present(column.name)
                conformed = conform_values(column, values, weights)
                out.append(exact_counts_weighted(column, conformed, weights, resolution, lattice))
            return out

        return counts

    def encode(self, encoder: TabularEncoder, schema: Schema, seed: int):
        names = [code.name for code in encoder.codes_]
        kernel = EncodeKernel(encoder, schema, {name: self.tables[name] for name in names}, seed)
        engine = self.view.engine
        return engine.encode(kernel, names, self.view.split, [code.size for code in encoder.codes_],
                             progress=self.progress)


# --------------------------------------------------------------------------- per-value functions, weighted


def _weighted_bincount(index: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    if not len(index):
        return np.zeros(size, dtype=np.int64)
    return np.bincount(index, weights=weights.astype(np.float64), minlength=size).round().astype(np.int64)


def conform_values(column: Column, values: pd.Series, weights: np.ndarray) -> pd.Series:
    """``values`` read as ``column``'s type (:meth:`Schema.conform`, value by value), warning with
    the number of *rows* whose value does not fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SynthdataWarning)
        conformed = Schema(columns=(column,)).conform(pd.DataFrame({column.name: values.reset_index(drop=True)}))
    series = conformed[column.name]
    lost = int(weights[(series.isna() & values.reset_index(drop=True).notna()).to_numpy()].sum())
    if lost:
        warnings.warn(f"column {column.name!r}: {lost:,} value(s) do not fit its type ({column.type}) and are "
                      "read as missing", SynthdataWarning, stacklevel=4)
    return series


def exact_counts_weighted(column: Column, series: pd.Series, weights: np.ndarray, resolutions: list,
                          lattice) -> _ExactCounts:
    """The encoder's exact histograms of a column whose value ``series[k]`` is held by
    ``weights[k]`` rows: the same counts as :func:`~synthdata.tabular.encoding._exact_counts`
    on the rows themselves."""
    weights = np.asarray(weights, dtype=np.int64)
    if column.type in ("numerical", "datetime"):
        values = _to_number(column, series)
        if column.bounds is not None:
            values = np.where(np.isnan(values), np.nan, np.clip(values, *_numeric_bounds(column)))
        absent = np.isnan(values)
        missing = int(weights[absent].sum())
        present = lattice.to_units(values[~absent])
        held = weights[~absent]
        keys, counts = [], []
        for resolution in resolutions:
            cells = _keys(resolution, present, lattice)
            if len(cells):
                unique, inverse = np.unique(cells, axis=0, return_inverse=True)
                count = _weighted_bincount(inverse.ravel(), held, len(unique))
                keep = count > 0
                unique, count = unique[keep], count[keep]
            else:
                unique, count = np.zeros((0, cells.shape[1])), np.zeros(0, dtype=np.int64)
            keys.append([tuple(row) for row in unique.tolist()])
            counts.append(np.asarray(count, dtype=np.int64))
        return _ExactCounts(keys, counts, missing)
    cells = _category_keys(column, series)
    missing = int(sum(w for k, w in zip(cells, weights) if k is None))
    observed: dict = {}
    for key, w in zip(cells, weights):
        if key is not None:
            observed[key] = observed.get(key, 0) + int(w)
    if _public_domain(column):
        domain = [True, False] if column.type == "boolean" else list(column.categories)
        return _ExactCounts([domain], [np.asarray([observed.get(v, 0) for v in domain], dtype=np.int64)], missing)
    return _ExactCounts([list(observed)], [np.asarray(list(observed.values()), dtype=np.int64)], missing)


# --------------------------------------------------------------------------- encoding, on any engine


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a well-mixed 64-bit function of ``x`` (vectorised)."""
    with np.errstate(over="ignore"):
        z = (x + _GOLDEN).astype(np.uint64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class EncodeKernel:
    """Rows (a pandas DataFrame or an Arrow batch) -> level codes, the same on every engine.

    Built once from the encoder and each column's value table: every distinct value's level
    is computed by the encoder's own rules (``-1`` where no level holds it), so a batch
    only looks values up. Picklable: Spark ships it to the executors.
    """

    def __init__(self, encoder: TabularEncoder, schema: Schema, tables: dict[str, ValueTable], seed: int) -> None:
        self.names = [code.name for code in encoder.codes_]
        self.sizes = [code.size for code in encoder.codes_]
        self.dtype = code_dtype(self.sizes)
        self.tables = [tables[name] for name in self.names]
        self.levels = []
        for code, table in zip(encoder.codes_, self.tables):
            column = schema[code.name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SynthdataWarning)
                conformed = Schema(columns=(column,)).conform(pd.DataFrame({code.name: table.values}))[code.name]
            self.levels.append(_column_levels(code, column, conformed).astype(np.int64))
        self.cdfs = []
        for code in encoder.codes_:
            cdf = np.cumsum(reassign_weights(code))
            cdf[-1] = 1.0
            self.cdfs.append(cdf)
        self.order = sorted(range(len(self.names)), key=lambda j: self.names[j])
        self.hashes: list[np.ndarray] | None = None
        word = hashlib.sha256(f"synthdata-encode-{int(seed)}".encode()).digest()[:8]
        self.key = np.frombuffer(word, dtype="<u8")[0]

    def __call__(self, batch) -> np.ndarray:
        from ..engines.base import _column

        rows = len(batch) if isinstance(batch, pd.DataFrame) else batch.num_rows
        positions = [table.positions(_column(batch, name)) for name, table in zip(self.names, self.tables)]
        out = np.empty((rows, len(self.names)), dtype=self.dtype)
        pending = np.zeros(rows, dtype=bool)
        levels = []
        for j, (position, lookup) in enumerate(zip(positions, self.levels)):
            if (position < 0).any():
                raise DataError(f"column {self.names[j]!r}: a value changed while the table was read; is the source "
                                "being written to?")
            level = lookup[position]
            levels.append(level)
            pending |= level < 0
        if pending.any():
            uniforms = self._uniforms(positions, pending)
            for j, level in enumerate(levels):
                todo = level[pending] < 0
                if todo.any():
                    drawn = np.searchsorted(self.cdfs[j], uniforms[j][todo], side="right")
                    sub = level[pending]
                    sub[todo] = np.minimum(drawn, self.sizes[j] - 1)
                    level[pending] = sub
        for j, level in enumerate(levels):
            out[:, j] = level
        return out

    def _uniforms(self, positions: list[np.ndarray], rows: np.ndarray) -> list[np.ndarray]:
        """Per column, a uniform in [0, 1) for each row of ``rows``, from the row's content hash."""
        if self.hashes is None:
            self.hashes = [value_hashes(table, signed_zero=False) for table in self.tables]
        content = combine_hashes([self.hashes[j][positions[j][rows]] for j in self.order])
        return [(_mix(content ^ _mix(np.full(1, self.key ^ np.uint64(j + 1), dtype=np.uint64)))
                 >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
                for j in range(len(self.names))]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["hashes"] = None
        return state


def marginal_maps(encoder: TabularEncoder) -> tuple[list[np.ndarray], list[int]]:
    """Each column's level -> coarse group map, and the number of groups (2-way marginals' cells)."""
    return ([np.asarray(code.coarse, dtype=np.int64) for code in encoder.codes_],
            [code.coarse_size for code in encoder.codes_])


def cells(sizes: Sequence[int], group: tuple[int, ...]) -> int:
    return int(math.prod(sizes[c] for c in group))
