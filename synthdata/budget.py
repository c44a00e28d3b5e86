"""The budget ledger: the cumulative privacy spend of every release made from one input.

Several releases from the same data compose: two releases at ε=1 are together a release
at (up to) ε=2. The ledger is one JSON file, by default beside the releases, with one
entry per release: input sha256, ε, δ, time, release path. ``synthdata release``
refuses, before any training, a release that would take an input's cumulative ε above
the limit (ε adds up: basic composition, the safe bound whatever the mechanisms were).

Crash consistency, with no entry ever counted twice or lost:

1. :meth:`BudgetLedger.reserve` checks the limit and records a *reserved* entry (with the
   process id) before the data is read for training, so two releases running at once
   cannot both squeeze under the limit.
2. The release is built in a temporary directory, renamed into place, and only then is
   its entry marked *released* (:meth:`BudgetLedger.commit`). A failure before the rename
   removes the entry (:meth:`BudgetLedger.cancel`): nothing was published, nothing spent.
3. After a crash (the process died, so nothing could clean up), the next reader settles
   the dead process's reserved entry by the one fact that matters: if its release
   directory is in place, the release happened and the entry becomes *released*; if not,
   it never landed, the entry is dropped and its temporary directory removed.

Every change rewrites the file atomically (temporary file + ``os.replace``) under an
exclusive ``flock`` on a lock file beside it.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import PrivacyError, SynthdataError

__all__ = ["DEFAULT_BUDGET_LIMIT", "DEFAULT_RELEASES_DIR", "LEDGER_FORMAT", "LEDGER_NAME", "BudgetLedger", "Reservation"]

LEDGER_FORMAT = "synthdata-budget-ledger/1"
#: Where releases go unless told otherwise; the ledger sits beside them.
DEFAULT_RELEASES_DIR = Path("privacy_reports")
#: File name of the ledger, beside the releases.
LEDGER_NAME = "budget-ledger.json"
#: Cumulative ε allowed per input unless --budget-limit says otherwise. A total of 10 is
#: the upper end of what deployed systems publish per dataset; lower it for sensitive data.
DEFAULT_BUDGET_LIMIT = 10.0


@dataclass(frozen=True)
class Reservation:
    """A reserved ledger entry: what :meth:`BudgetLedger.commit` or ``cancel`` settles."""

    id: str
    release: Path
    staging: Path


class BudgetLedger:
    """The ledger file at ``path`` (created on first write)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ reading

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, crashed releases settled (see the module docstring)."""
        with self._locked():
            entries = self._read()
            settled = self._settle(entries)
            if settled != entries:
                self._write(settled)
            return settled

    def spent(self, input_sha256: str) -> float:
        """Cumulative ε of the input's released and in-progress releases."""
        return _total(self.entries(), input_sha256)

    # ------------------------------------------------------------------ changing

    def reserve(self, *, input_sha256: str, epsilon: float, delta: float | None, release: Path,
                limit: float) -> Reservation:
        """Record a release about to be made, or refuse it if it would pass ``limit``.

        Raises :class:`PrivacyError` (nothing recorded) when the input's cumulative ε
        plus ``epsilon`` exceeds ``limit``.
        """
        if not (isinstance(limit, (int, float)) and math.isfinite(limit) and limit > 0):
            raise PrivacyError(f"the budget limit must be a positive number, got {limit!r}")
        release = Path(os.path.abspath(release))
        entry_id = uuid.uuid4().hex[:12]
        staging = release.with_name(f".{release.name}.partial-{entry_id}")
        with self._locked():
            entries = self._settle(self._read())
            spent = _total(entries, input_sha256)
            if spent + epsilon > limit * (1 + 1e-9):
                count = sum(1 for e in entries if e["input_sha256"] == input_sha256)
                raise PrivacyError(
                    f"this release would take the cumulative epsilon of this input to {spent + epsilon:g}, over "
                    f"the budget limit {limit:g} ({count} earlier release(s) spent {spent:g}; ledger {self.path}). "
                    f"Release with a smaller --epsilon, or raise --budget-limit if your policy allows"
                )
            entries.append({
                "id": entry_id,
                "state": "reserved",
                "input_sha256": input_sha256,
                "epsilon": float(epsilon),
                "delta": None if delta is None else float(delta),
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "release": str(release),
                "staging": str(staging),
                "pid": os.getpid(),
                "host": socket.gethostname(),
            })
            self._write(entries)
        return Reservation(id=entry_id, release=release, staging=staging)

    def commit(self, reservation: Reservation, *, delta: float | None = None) -> None:
        """Mark a reserved entry released (its directory is in place); ``delta`` as spent."""
        with self._locked():
            entries = self._read()
            for entry in entries:
                if entry["id"] == reservation.id:
                    entry["state"] = "released"
                    if delta is not None:
                        entry["delta"] = float(delta)
                    for key in ("staging", "pid", "host"):
                        entry.pop(key, None)
            self._write(entries)

    def cancel(self, reservation: Reservation) -> None:
        """Remove a reserved entry whose release did not happen."""
        with self._locked():
            entries = self._read()
            kept = [entry for entry in entries if entry["id"] != reservation.id]
            if kept != entries:
                self._write(kept)

    # ------------------------------------------------------------------ internals

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != LEDGER_FORMAT or not isinstance(data.get("entries"), list):
                raise ValueError("not a synthdata budget ledger")
            for entry in data["entries"]:
                if not isinstance(entry.get("input_sha256"), str) or not isinstance(entry.get("epsilon"), (int, float)):
                    raise ValueError("an entry lacks input_sha256 or epsilon")
            return data["entries"]
        except (OSError, ValueError, AttributeError) as exc:
            raise SynthdataError(
                f"{self.path}: the budget ledger cannot be read ({exc}); restore it from a backup, or choose "
                f"another file with --ledger (a new ledger forgets earlier spends)"
            ) from None

    def _write(self, entries: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        text = json.dumps({"format": LEDGER_FORMAT, "entries": entries}, indent=2, allow_nan=False) + "\n"
        try:
            with tmp.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise SynthdataError(f"cannot write the budget ledger {self.path}: {exc.strerror}") from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path.with_name(f".{self.path.name}.lock"), "a")
        except OSError as exc:
            raise SynthdataError(f"cannot use the budget ledger {self.path}: {exc.strerror}") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _settle(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Settle reserved entries of processes that died (a crash): released or dropped."""
        settled = []
        for entry in entries:
            if entry.get("state") != "reserved" or _alive(entry):
                settled.append(entry)
                continue
            if (Path(entry["release"]) / "report.dsse.json").exists():
                entry = {k: v for k, v in entry.items() if k not in ("staging", "pid", "host")}
                settled.append({**entry, "state": "released"})
            else:  # it never landed: nothing was published
                staging = entry.get("staging")
                if staging:
                    shutil.rmtree(staging, ignore_errors=True)
        return settled


def _alive(entry: dict[str, Any]) -> bool:
    """Whether the process that reserved ``entry`` may still be running it."""
    if entry.get("host") != socket.gethostname():
        return True  # another machine's process: we cannot tell, so it counts
    try:
        os.kill(int(entry.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


def _total(entries: list[dict[str, Any]], input_sha256: str) -> float:
    return float(sum(entry["epsilon"] for entry in entries if entry["input_sha256"] == input_sha256))
