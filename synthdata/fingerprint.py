"""Dataset identity without publishing a hash anyone can test guesses against.

A plain SHA-256 of the input in a public report lets someone who knows every cell but
one try candidate values until the hash matches. So:

* :func:`content_digest` identifies a table by its *parsed content*, unchanged by row
  order, column order, delimiter, quoting or number formatting (``39`` and ``39.0``), so a
  re-export of the same data is the same dataset to the budget ledger;
* the public report carries only :func:`keyed_fingerprint`: an HMAC-SHA256 of that digest
  under the steward's secret (:func:`steward_secret`, 32 random bytes kept beside the
  default signing key, mode 0600) and a fresh random salt. Outsiders can neither test
  guesses nor link two releases; the steward recomputes it
  (:func:`matches`) to tell which data a release came from;
* the ledger keys a dataset by ``--dataset-id`` when given, else by
  :func:`ledger_key` (the unsalted HMAC of the digest), which stays on the steward's
  machine.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .errors import SynthdataError
from .files import atomic_write, read_regular_file

__all__ = ["SECRET_NAME", "content_digest", "image_digest", "keyed_fingerprint", "ledger_key", "matches",
           "steward_secret"]

SECRET_NAME = "fingerprint.key"
ALGORITHM = "HMAC-SHA256(steward secret, salt || content digest)"
_SECRET_BYTES = 32


def steward_secret(config_dir: str | os.PathLike | None = None) -> bytes:
    """The steward's fingerprint secret, created (mode 0600) on first use."""
    from .signing import user_config_dir

    directory = Path(config_dir) if config_dir is not None else user_config_dir()
    path = directory / SECRET_NAME
    if not os.path.lexists(path):
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(path, secrets.token_bytes(_SECRET_BYTES), mode=0o600, overwrite=False)
        except FileExistsError:
            pass  # another process made it meanwhile
        except OSError as exc:
            raise SynthdataError(f"cannot create the fingerprint secret in {directory}: {exc.strerror}") from None
    secret = read_regular_file(path, max_bytes=1024, what="fingerprint secret")
    if len(secret) != _SECRET_BYTES:
        raise SynthdataError(f"{path} is not a synthdata fingerprint secret ({_SECRET_BYTES} bytes); restore it from "
                             "a backup (without it, earlier releases cannot be matched to their data)")
    return secret


def content_digest(frame: pd.DataFrame) -> bytes:
    """SHA-256 of a table's parsed content, whatever its row order, column order or file format.

    Columns are taken in name order; each value is canonical (numbers as float64, dates
    as nanoseconds, text as UTF-8, booleans as text, missing as one marker); each row is
    hashed and the row hashes sorted before hashing them together.
    """
    names = sorted(str(name) for name in frame.columns)
    canonical = pd.DataFrame({name: _canonical(frame[name]) for name in names})
    row_hashes = np.sort(pd.util.hash_pandas_object(canonical, index=False, hash_key="synthdatarows-v1"
                                                    ).to_numpy(dtype=np.uint64))
    digest = hashlib.sha256()
    digest.update("\x1f".join(names).encode("utf-8"))
    digest.update(len(frame).to_bytes(8, "little"))
    digest.update(row_hashes.tobytes())
    return digest.digest()


def _canonical(series: pd.Series) -> pd.Series:
    if ptypes.is_bool_dtype(series.dtype):
        return series.astype(object).where(series.notna(), None).map(lambda v: None if v is None else str(bool(v)))
    if ptypes.is_datetime64_any_dtype(series.dtype):
        return series.astype("datetime64[ns]").astype("int64").where(series.notna(), None).astype(object)
    if ptypes.is_numeric_dtype(series.dtype):
        return series.astype(float).astype(object).where(series.notna(), None)
    return series.astype(object).where(series.notna(), None).map(lambda v: v if v is None or isinstance(v, str)
                                                                  else repr(float(v)) if isinstance(v, (int, float))
                                                                  else str(v))


def keyed_fingerprint(digest: bytes, secret: bytes, *, salt: bytes | None = None) -> dict[str, Any]:
    """The report's fingerprint of a dataset: a salted HMAC only the steward can recompute."""
    salt = secrets.token_bytes(16) if salt is None else salt
    mac = hmac.new(secret, salt + digest, hashlib.sha256).hexdigest()
    return {"algorithm": ALGORITHM, "salt": salt.hex(), "mac": mac}


def matches(fingerprint: dict[str, Any], digest: bytes, secret: bytes) -> bool:
    """Whether a report's fingerprint was made from ``digest`` under ``secret``."""
    try:
        salt = bytes.fromhex(fingerprint["salt"])
        expected = keyed_fingerprint(digest, secret, salt=salt)["mac"]
        return hmac.compare_digest(expected, str(fingerprint["mac"]))
    except (KeyError, TypeError, ValueError):
        return False


def ledger_key(digest: bytes, secret: bytes, dataset_id: str | None = None) -> str:
    """How the budget ledger names a dataset: ``id:<dataset id>`` or ``content:<keyed digest>``."""
    if dataset_id is not None:
        return f"id:{dataset_id}"
    return "content:" + hmac.new(secret, b"ledger" + digest, hashlib.sha256).hexdigest()


def image_digest(images) -> bytes:
    """SHA-256 of an image set's content (pixels and class names), whatever the file order or layout."""
    pixels = np.ascontiguousarray(images.images)
    per_image = sorted(hashlib.sha256(pixels[i].tobytes() + (b"" if images.labels is None else
                                      str(images.class_names[int(images.labels[i])]).encode("utf-8"))).digest()
                       for i in range(len(pixels)))
    digest = hashlib.sha256()
    digest.update(repr(pixels.shape[1:]).encode())
    for item in per_image:
        digest.update(item)
    return digest.digest()
