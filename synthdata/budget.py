"""The budget ledger: the cumulative privacy spend of every release made from one input.

Several releases from the same data compose: two releases at ε=1 are together a release
at (up to) ε=2. The ledger is one JSON file, by default beside the releases, with one
entry per release: input sha256, ε, δ, time, release path. ``synthdata release``
refuses, before any training, a release that would take an input's cumulative ε above
the limit (ε adds up: basic composition, the safe bound whatever the mechanisms were).

Crash consistency, with no entry ever counted twice or lost:

1. :meth:`BudgetLedger.reserve` checks the limit and records a *reserved* entry (with the
   process id) before the data is read for training, so two releases running at once
   cannot both squeeze under the limit. The reserving process also holds an ``flock`` on
   ``.NAME.partial-ID.lock`` beside the release for as long as it runs: the kernel drops
   it when the process dies, however it dies.
2. The release is built in a staging directory, ``.NAME.partial-ID`` beside the release
   (:func:`staging_path`), renamed into place, and only then is its entry marked
   *released* (:meth:`BudgetLedger.commit`). A failure before the rename removes the
   entry (:meth:`BudgetLedger.cancel`): nothing was published, nothing spent.
3. After a crash, the next reader settles the dead process's reserved entry by the one
   fact that matters: if its release directory is in place, the release happened and
   the entry becomes *released*; if not, it never landed, the entry is dropped and its
   staging directory removed. :func:`cleanup_staging` removes abandoned staging
   directories under a release root even without the ledger that reserved them.
4. A release *refused* after it spent budget on the real data (a DP measurement decided
   that nothing could be released at this ε, and the refusal says so) publishes nothing,
   but the steward's next release is chosen knowing that outcome: adaptive composition
   counts both, so :meth:`BudgetLedger.refuse` keeps the entry, state *refused*, with the
   ε spent before the refusal (at most the reserved ε). Refused entries count in the total.

The ledger is a file someone else may have edited or replaced, so it is read as one:
a regular file (not a FIFO or a link) under a size cap, strict JSON, every entry checked
(fields, types, finite non-negative ε and δ) with a one-line error naming the entry. No
path read from it is ever removed: the staging directory is recomputed from the
release path and the entry's validated id. Every change rewrites the file atomically
(``mkstemp`` + ``os.replace``) under an exclusive ``flock`` on a lock file beside it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import shutil
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import PrivacyError, SynthdataError
from .files import atomic_write, load_json, printable, read_regular_file

__all__ = [
    "DEFAULT_BUDGET_LIMIT",
    "DEFAULT_RELEASES_DIR",
    "LEDGER_FORMAT",
    "LEDGER_NAME",
    "BudgetLedger",
    "LedgerReadOnlyError",
    "Reservation",
    "cleanup_staging",
    "staging_path",
]

LEDGER_FORMAT = "synthdata-budget-ledger/1"
#: Where releases go unless told otherwise; the ledger sits beside them.
DEFAULT_RELEASES_DIR = Path("privacy_reports")
#: File name of the ledger, beside the releases.
LEDGER_NAME = "budget-ledger.json"
#: Cumulative ε allowed per input unless --budget-limit says otherwise. A total of 10 is
#: the upper end of what deployed systems publish per dataset; lower it for sensitive data.
DEFAULT_BUDGET_LIMIT = 10.0
#: Largest ledger read (an entry is about 300 bytes: some 200,000 releases).
MAX_LEDGER_BYTES = 64 * 1024 * 1024
_MAX_DEPTH = 16

_ID = re.compile(r"[0-9a-f]{12}")
_STAGING = re.compile(r"\.(?P<name>.+)\.partial-(?P<id>[0-9a-f]{12})")
_STATES = ("reserved", "released", "refused")
_RECOVER = "restore it from a backup, or choose another file with --ledger (a new ledger forgets earlier spends)"


#: Staging locks this process holds, by entry id: module-wide, so a reservation stays locked
#: until it is committed or cancelled, whatever becomes of the BudgetLedger object.
_HOLDS: dict[str, int] = {}
#: The entries this process reserved and has not settled, by id (commit re-adds a vanished one).
_RESERVED: dict[str, dict[str, Any]] = {}


class LedgerReadOnlyError(SynthdataError):
    """The ledger's folder cannot be written: it can be listed, not changed."""


@dataclass(frozen=True)
class Reservation:
    """A reserved ledger entry: what :meth:`BudgetLedger.commit` or ``cancel`` settles."""

    id: str
    release: Path
    staging: Path


def staging_path(release: str | os.PathLike, entry_id: str) -> Path:
    """Where the release at ``release`` is built before its rename: ``.NAME.partial-ID`` beside it.

    Computed, never read from a file: ``entry_id`` must be 12 hex digits and ``release`` an
    absolute path with a name, or ValueError.
    """
    release = Path(release)
    if not (isinstance(entry_id, str) and _ID.fullmatch(entry_id)):
        raise ValueError(f"not a ledger entry id: {entry_id!r}")
    if not release.is_absolute() or release.name in ("", ".", ".."):
        raise ValueError(f"not an absolute release path: {str(release)!r}")
    return release.with_name(f".{release.name}.partial-{entry_id}")


def cleanup_staging(release_root: str | os.PathLike) -> list[Path]:
    """Remove abandoned staging directories (``.NAME.partial-ID``) in ``release_root``; return them.

    A staging directory is abandoned when no running process holds its
    ``.NAME.partial-ID.lock`` (its release was killed), or when it has no lock file at all
    (left by a synthdata without staging locks). Only directories of that exact name
    pattern, owned by the current user and not links, are considered; a release being
    built right now is never touched. ``synthdata release`` calls this for its release
    root before starting, so a killed release's synthetic data does not linger.
    """
    root = Path(release_root)
    removed: list[Path] = []
    try:
        children = sorted(os.scandir(root), key=lambda child: child.name)
    except OSError:
        return removed  # no such folder, or not ours to list: nothing of ours to clean
    names = {child.name for child in children}
    for child in children:
        try:
            info = child.stat(follow_symlinks=False)
        except OSError:
            continue
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            continue
        if child.name.endswith(".lock") and _STAGING.fullmatch(child.name[:-5]) and child.name[:-5] not in names:
            # A lock left alone (killed before its staging folder was made): a lock file only
            # ever appears already held, so a free one is stale.
            with _claimed(root / child.name, absent_ok=False):
                pass
            continue
        if not _STAGING.fullmatch(child.name) or not stat.S_ISDIR(info.st_mode):
            continue
        staging = root / child.name
        with _claimed(_lock_path(staging)) as claimed:
            if claimed:
                _remove_tree(staging)
                if not os.path.lexists(staging):
                    removed.append(staging)
    return removed


class BudgetLedger:
    """The ledger file at ``path`` (created on first write)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ reading

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, crashed releases settled (see the module docstring).

        Raises :class:`LedgerReadOnlyError` when the ledger's folder cannot be written (the
        lock cannot be made); :meth:`snapshot` lists such a ledger without settling it.
        """
        with self._locked():
            entries = self._read()
            settled, _ = self._settle(entries)
            if settled != entries:
                self._write(settled)
            return settled

    def snapshot(self) -> list[dict[str, Any]]:
        """Every entry as the file holds it, checked but not settled; needs no write access.

        Consistent without the lock: writers replace the file in one rename.
        """
        return self._read()

    def spent(self, input_sha256: str) -> float:
        """Cumulative ε of the input's released and in-progress releases."""
        return _total(self.entries(), input_sha256)

    # ------------------------------------------------------------------ changing

    def reserve(self, *, input_sha256: str, epsilon: float, delta: float | None, release: Path,
                limit: float) -> Reservation:
        """Record a release about to be made, or refuse it if it would pass ``limit``.

        Raises :class:`PrivacyError` (nothing recorded) when the input's cumulative ε
        plus ``epsilon`` exceeds ``limit``. The calling process holds the staging lock
        until :meth:`commit` or :meth:`cancel`.
        """
        if not (isinstance(limit, (int, float)) and math.isfinite(limit) and limit > 0):
            raise PrivacyError(f"the budget limit must be a positive number, got {limit!r}")
        if not (isinstance(epsilon, (int, float)) and not isinstance(epsilon, bool) and math.isfinite(epsilon)
                and epsilon > 0):
            raise PrivacyError(f"epsilon must be a positive number, got {epsilon!r}")
        if delta is not None and not (isinstance(delta, (int, float)) and math.isfinite(delta) and 0 <= delta < 1):
            raise PrivacyError(f"delta must be a number in [0, 1), got {delta!r}")
        if not (isinstance(input_sha256, str) and 0 < len(input_sha256) <= 256 and input_sha256.isprintable()):
            # What the reader refuses is never written: one such entry made the whole ledger unreadable.
            raise SynthdataError(f"the dataset name {printable(input_sha256)[:80]!r} cannot go in the budget ledger: "
                                 "give --dataset-id as printable text of at most 250 characters")
        release = Path(os.path.abspath(release))
        entry_id = uuid.uuid4().hex[:12]
        staging = staging_path(release, entry_id)
        with self._locked():
            entries = self._settle(self._read())[0]
            spent = _total(entries, input_sha256)
            if spent + epsilon > limit * (1 + 1e-9):
                count = sum(1 for e in entries if e["input_sha256"] == input_sha256)
                raise PrivacyError(
                    f"this release would take the cumulative epsilon of this input to {spent + epsilon:g}, over "
                    f"the budget limit {limit:g} ({count} earlier release(s) spent {spent:g}; ledger "
                    f"{printable(self.path)}). Release with a smaller --epsilon, or raise --budget-limit if your "
                    "policy allows"
                )
            entry = {
                "id": entry_id,
                "state": "reserved",
                "input_sha256": input_sha256,
                "epsilon": float(epsilon),
                "delta": None if delta is None else float(delta),
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "release": str(release),
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
            self._hold(entry_id, _lock_path(staging))  # before the entry exists: never seen unlocked
            try:
                self._write([*entries, entry])
            except BaseException:
                self._release_hold(entry_id, _lock_path(staging))
                raise
            _RESERVED[entry_id] = entry
        return Reservation(id=entry_id, release=release, staging=staging)

    def commit(self, reservation: Reservation, *, delta: float | None = None) -> None:
        """Mark a reserved entry released (its directory is in place); ``delta`` as spent.

        If the entry vanished meanwhile (the file edited by hand), it is recorded again:
        a release that landed is never forgotten.
        """
        self._finish(reservation, "released", delta=delta)

    def refuse(self, reservation: Reservation, *, epsilon: float, delta: float | None = None) -> None:
        """Mark a reserved entry *refused*: its release stopped after spending ``epsilon`` (at most
        the reserved ε) on the real data; the entry keeps counting (see the module docstring)."""
        if not (_is_number(epsilon) and math.isfinite(epsilon) and epsilon >= 0):
            raise PrivacyError(f"epsilon must be a finite number, 0 or more, got {epsilon!r}")
        self._finish(reservation, "refused", epsilon=epsilon, delta=delta)

    def _finish(self, reservation: Reservation, state: str, *, epsilon: float | None = None,
                delta: float | None = None) -> None:
        """Give a reserved entry its final ``state`` (re-recording it if it vanished), and release its hold."""
        with self._locked():
            entries = self._read()
            found = [entry for entry in entries if entry["id"] == reservation.id]
            if not found and reservation.id in _RESERVED:
                found = [dict(_RESERVED[reservation.id])]
                entries.append(found[0])
            for entry in found:
                _settle_entry(entry, state)
                if epsilon is not None:
                    entry["epsilon"] = float(min(epsilon, entry["epsilon"]))
                if delta is not None:
                    entry["delta"] = float(delta)
            self._write(entries)
        self._release_hold(reservation.id, _lock_path(reservation.staging))

    def cancel(self, reservation: Reservation) -> None:
        """Remove a reserved entry whose release did not happen."""
        with self._locked():
            entries = self._read()
            kept = [entry for entry in entries if entry["id"] != reservation.id]
            if kept != entries:
                self._write(kept)
        self._release_hold(reservation.id, _lock_path(reservation.staging))

    def settle(self) -> list[str]:
        """Settle the reservations of releases that crashed; return one line per thing done.

        What every read does anyway (see the module docstring), said out loud.
        """
        with self._locked():
            entries = self._read()
            settled, actions = self._settle(entries)
            if settled != entries:
                self._write(settled)
        return actions

    def repair(self) -> list[str]:
        """``synthdata budget --repair``: settle what can be settled, say what was done and what was left.

        Beyond :meth:`settle`: a reservation made on another machine is settled too when
        no process holds its staging lock any more, and abandoned staging directories in
        the ledger's folder (the default release root) are removed.
        """
        with self._locked():
            entries = self._read()
            settled, actions = self._settle(entries, thorough=True)
            if settled != entries:
                self._write(settled)
        for staging in cleanup_staging(self.path.parent):
            actions.append(f"removed the abandoned staging folder {printable(staging)}")
        return actions

    # ------------------------------------------------------------------ internals

    def _read(self) -> list[dict[str, Any]]:
        if not os.path.lexists(self.path):
            return []
        data = read_regular_file(self.path, max_bytes=MAX_LEDGER_BYTES, what="budget ledger")
        shown = printable(self.path)
        try:
            document = load_json(data, what=f"the budget ledger {shown}", max_depth=_MAX_DEPTH)
        except SynthdataError as exc:
            raise SynthdataError(f"{shown}: the budget ledger cannot be read ({exc.reason}); {_RECOVER}") from None
        if not isinstance(document, dict) or document.get("format") != LEDGER_FORMAT \
                or not isinstance(document.get("entries"), list):
            raise SynthdataError(f"{shown}: the budget ledger cannot be read (not a synthdata budget ledger: "
                                 f"no format {LEDGER_FORMAT!r} with a list of entries); {_RECOVER}")
        entries = document["entries"]
        seen: set[str] = set()
        for number, entry in enumerate(entries, start=1):
            _check_entry(entry, number, shown)
            if entry["id"] in seen:
                raise SynthdataError(f"{shown}: the budget ledger cannot be read (entry #{number} repeats the id "
                                     f"{entry['id']}); {_RECOVER}")
            seen.add(entry["id"])
        return entries

    def _write(self, entries: list[dict[str, Any]]) -> None:
        text = json.dumps({"format": LEDGER_FORMAT, "entries": entries}, indent=2, allow_nan=False) + "\n"
        try:
            mode = stat.S_IMODE(os.lstat(self.path).st_mode) & ~0o002
        except OSError:
            mode = 0o644
        try:
            atomic_write(self.path, text, mode=mode)
        except SynthdataError as exc:
            if os.access(self.path.parent, os.W_OK):
                raise
            raise LedgerReadOnlyError(f"cannot write the budget ledger {printable(self.path)}: its folder "
                                      f"{printable(self.path.parent)} is not writable; synthdata records every "
                                      "release there, so make the folder writable or choose another --ledger") \
                from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The ledger's exclusive lock (``.NAME.lock`` beside it; made if absent, never through a link)."""
        shown = printable(self.path)
        lock = self.path.with_name(f".{self.path.name}.lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise LedgerReadOnlyError(
                    f"cannot lock the budget ledger {shown}: its folder {printable(self.path.parent)} is not "
                    f"writable ({exc.strerror}); synthdata records every release there, so make the folder "
                    "writable or choose another --ledger") from None
            if exc.errno == errno.ELOOP:
                raise SynthdataError(f"the ledger's lock file {printable(lock)} is a symbolic link; synthdata "
                                     "does not follow one: remove it") from None
            raise SynthdataError(f"cannot use the budget ledger {shown}: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SynthdataError(f"the ledger's lock file {printable(lock)} is not a regular file; remove it")
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _settle(self, entries: list[dict[str, Any]], *,
                thorough: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
        """Settle reserved entries of processes that died (a crash): released or dropped.

        Returns (the entries, one line per settlement). Removes only the staging path
        recomputed from each entry's release path and id.
        """
        settled, actions = [], []
        for entry in entries:
            if entry["state"] != "reserved":
                settled.append(entry)
                continue
            label = f"entry {entry['id']} (epsilon {entry['epsilon']:g}, input {printable(entry['input_sha256'][:12])})"
            if _running(entry, thorough=thorough):
                settled.append(entry)
                if thorough:
                    actions.append(f"left {label}: its release is still running (pid {entry['pid']} on "
                                   f"{printable(entry['host'])})")
                continue
            release = Path(entry["release"])
            staging = staging_path(release, entry["id"])
            self._release_hold(entry["id"], None)
            if _landed(release):
                entry = dict(entry)
                _settle_entry(entry, "released")
                settled.append(entry)
                actions.append(f"settled {label}: its release {printable(release)} is in place, so it counts "
                               "as spent")
            else:  # it never landed: nothing was published
                _remove_tree(staging)
                actions.append(f"settled {label}: its release never landed, so the reservation was dropped"
                               + (f" and its staging folder {printable(staging)} removed"
                                  if not os.path.lexists(staging) else
                                  f"; its staging folder {printable(staging)} could not be removed"))
            with suppress(OSError):
                os.unlink(_lock_path(staging))
        return settled, actions

    def _hold(self, entry_id: str, lock: Path) -> None:
        """Create ``lock`` already flocked: made under a temporary name, locked, then renamed into place."""
        temporary = None
        try:
            fd, temporary = tempfile.mkstemp(dir=lock.parent, prefix=f"{lock.name}.", suffix=".tmp")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.replace(temporary, lock)  # the id is new: nothing is there to replace
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            if temporary is not None:
                with suppress(OSError):
                    os.unlink(temporary)
            raise SynthdataError(f"cannot create the staging lock {printable(lock)}: {exc.strerror}; check that "
                                 "the release folder exists and is writable") from None
        _HOLDS[entry_id] = fd

    @staticmethod
    def _release_hold(entry_id: str, lock: Path | None) -> None:
        _RESERVED.pop(entry_id, None)
        fd = _HOLDS.pop(entry_id, None)
        if fd is None:
            return
        if lock is not None:
            with suppress(OSError):
                os.unlink(lock)  # unlinked while still held: nobody sees it free and ours
        os.close(fd)


# --- Entries -----------------------------------------------------------------------------


def _check_entry(entry: Any, number: int, shown: str) -> None:
    """Raise a one-line SynthdataError naming entry ``number`` if it is not a well-formed entry."""
    label = f"entry #{number}"
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and _ID.fullmatch(entry["id"]):
        label += f" (id {entry['id']})"

    def bad(problem: str) -> SynthdataError:
        return SynthdataError(f"{shown}: the budget ledger cannot be read ({label} {problem}); {_RECOVER}")

    if not isinstance(entry, dict):
        raise bad("is not an object")
    for field in ("input_sha256", "epsilon", "id", "state", "time", "release"):
        if field not in entry:
            raise bad(f"lacks {field}")
    sha = entry["input_sha256"]
    if not (isinstance(sha, str) and 0 < len(sha) <= 256 and sha.isprintable()):
        raise bad("has an input_sha256 that is not a short printable string")
    if not _is_number(entry["epsilon"]) or not math.isfinite(entry["epsilon"]) or entry["epsilon"] < 0:
        raise bad(f"has epsilon {_clip(entry['epsilon'])}: it must be a finite number, 0 or more")
    delta = entry.get("delta")
    if delta is not None and (not _is_number(delta) or not math.isfinite(delta) or not 0 <= delta < 1):
        raise bad(f"has delta {_clip(delta)}: it must be empty (null) or a number in [0, 1)")
    if not (isinstance(entry["id"], str) and _ID.fullmatch(entry["id"])):
        raise bad(f"has id {_clip(entry['id'])}: it must be 12 hex digits")
    if entry["state"] not in _STATES:
        raise bad(f"has state {_clip(entry['state'])}: it must be 'reserved', 'released' or 'refused'")
    if not (isinstance(entry["time"], str) and len(entry["time"]) <= 64):
        raise bad("has a time that is not a short string")
    release = entry["release"]
    if not (isinstance(release, str) and 0 < len(release) <= 4096 and "\x00" not in release):
        raise bad("has a release that is not a path")
    try:
        staging_path(release, entry["id"])
    except ValueError:
        raise bad(f"has release {_clip(release)}: it must be an absolute path to a folder") from None
    if entry["state"] == "reserved":
        if not (_is_integer(entry.get("pid")) and 0 < entry["pid"] < 2**31):
            raise bad("is reserved but has no valid pid")
        if not (isinstance(entry.get("host"), str) and len(entry["host"]) <= 256):
            raise bad("is reserved but has no host name")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _clip(value: Any, width: int = 40) -> str:
    text = repr(printable(value)) if isinstance(value, str) else printable(repr(value))
    return text if len(text) <= width else text[: width - 3] + "..."


def _settle_entry(entry: dict[str, Any], state: str) -> None:
    entry["state"] = state
    for key in ("staging", "pid", "host"):
        entry.pop(key, None)


def _total(entries: list[dict[str, Any]], input_sha256: str) -> float:
    return float(sum(entry["epsilon"] for entry in entries if entry["input_sha256"] == input_sha256))


# --- Processes, locks and folders --------------------------------------------------------


def _lock_path(staging: Path) -> Path:
    return staging.with_name(f"{staging.name}.lock")


def _running(entry: dict[str, Any], *, thorough: bool) -> bool:
    """Whether the process that reserved ``entry`` may still be running it.

    On this machine: not if its pid is gone; if the pid is in use, the staging lock
    decides when there is one (a free lock means the pid was reused). On another machine
    the pid says nothing: the entry counts as running unless ``thorough`` and its staging
    lock is free.
    """
    lock = _lock_path(staging_path(entry["release"], entry["id"]))
    if entry["host"] == socket.gethostname():
        if not _pid_alive(entry["pid"]):
            return False
        return _lock_state(lock) != "free"
    return not (thorough and _lock_state(lock) == "free")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _lock_state(lock: Path) -> str:
    """"absent", "held" (a process holds it, or we cannot tell) or "free"."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return "absent"
    except OSError:
        return "held"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "held"
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return "held"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return "free"
    finally:
        os.close(fd)


@contextmanager
def _claimed(lock: Path, *, absent_ok: bool = True) -> Iterator[bool]:
    """Whether the staging guarded by ``lock`` is abandoned; if so, hold its lock (if any) meanwhile.

    True when there is no lock file (and ``absent_ok``), or when this call could take it
    (its owner is dead); a lock file taken is removed after the block.
    """
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        yield absent_ok
        return
    except OSError:
        yield False
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
        with suppress(OSError):
            os.unlink(lock)
    finally:
        os.close(fd)


def _landed(release: Path) -> bool:
    """Whether the release directory is in place (a signed envelope in a real folder)."""
    try:
        return stat.S_ISDIR(os.lstat(release).st_mode) and stat.S_ISREG(os.lstat(release / "report.dsse.json").st_mode)
    except OSError:
        return False


def _remove_tree(path: Path) -> None:
    """Remove a staging directory; never a link, never what a link points to."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return
    except OSError:
        return
    shutil.rmtree(path, ignore_errors=True)
