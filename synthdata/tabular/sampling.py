"""Sampling a fitted model to a file, in chunks: memory stays flat however many rows.

The file is written beside its destination under a temporary name and renamed at the
end, so an interrupted run leaves no half-written CSV.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
from pyarrow import csv as pa_csv

from ..errors import SynthdataError

__all__ = ["write_csv"]

DEFAULT_CHUNK_ROWS = 50_000


def write_csv(model, n: int, path: str | os.PathLike, *, chunk_size: int = DEFAULT_CHUNK_ROWS,
              seed: int | None = None, progress: Callable[[int], None] | None = None,
              overwrite: bool = False) -> Path:
    """Write ``n`` synthetic rows of ``model`` to ``path`` as CSV; returns the path."""
    path = Path(path)
    if n < 1:
        raise SynthdataError(f"the number of rows must be at least 1, got {n}")
    if path.exists() and not overwrite:
        raise SynthdataError(f"{path} already exists; choose another output file or remove it")
    if not path.parent.exists():
        raise SynthdataError(f"{path.parent} does not exist; create the folder first")
    tmp = path.with_name(f".{path.name}.partial")

    def write(handle, chunk: pa.Table, header: bool) -> int:
        if header:  # as pandas writes it: Arrow would quote every column name
            line = io.StringIO()
            csv.writer(line, lineterminator="\n").writerow(chunk.column_names)
            handle.write(line.getvalue().encode("utf-8"))
        # pyarrow's CSV writer is C++: pandas' to_csv alone would cap us near 100k rows/s.
        pa_csv.write_csv(chunk, handle, pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
        return chunk.num_rows

    try:
        # One chunk is written (mostly outside the GIL) while the next is generated.
        with tmp.open("wb") as handle, ThreadPoolExecutor(max_workers=1) as writer:
            pending = None
            for number, chunk in enumerate(model.sample_arrow_chunks(n, chunk_size=chunk_size, seed=seed)):
                if pending is not None:
                    done = pending.result()
                    if progress is not None:
                        progress(done)
                pending = writer.submit(write, handle, chunk, number == 0)
            if pending is not None:
                done = pending.result()
                if progress is not None:
                    progress(done)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
