"""One home for the files synthdata reads and writes: refuse what was planted, write atomically.

Anything synthdata reads that it did not just write itself (a release's signed report and
envelope, keys, the budget ledger, a saved model) may have been placed there by someone
else, or damaged: a FIFO that blocks a reader forever, a link to ``/dev/zero``, a
multi-gigabyte file, JSON with a key given twice or nested 100,000 deep, a file name that
carries terminal escapes. The helpers here refuse those before reading, each with one
line that names the file and what to do, and write files so that a crash or a planted
link never leaves half a file or a file somewhere else.

- :func:`open_regular_file` / :func:`read_regular_file`: regular files only (never a FIFO,
  device, socket or folder, checked without blocking), no symbolic link unless the
  caller allows one, the size capped before a byte is read.
- :func:`load_json`: strict JSON (no duplicate key, no NaN or Infinity, a depth limit).
- :func:`atomic_writer` / :func:`atomic_write`: a temporary file from ``mkstemp`` in the
  target's folder, flushed, fsynced, renamed over the target, the folder fsynced.
- :func:`sha256_file`: a streamed sha256.
- :func:`printable`: every name shown on a terminal goes through it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from .errors import SynthdataError

__all__ = [
    "atomic_write",
    "atomic_writer",
    "check_free_space",
    "load_json",
    "open_regular_file",
    "os_error_message",
    "printable",
    "read_regular_file",
    "sha256_file",
]

PathLike = str | os.PathLike

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


# --- Names on a terminal -----------------------------------------------------------------


def printable(text: object) -> str:
    """``text`` safe to print on a terminal: every non-printable character shown escaped.

    Escape sequences (ESC), carriage returns, other control characters, bidi overrides,
    zero-width and other invisible characters become ``\\x1b``, ``\\r``, ``\\u202e``…, so a
    crafted file name cannot move the cursor, repaint a line or hide a character.
    Printable text, accents and all, is returned unchanged.

    >>> printable("report\\x1b[2K\\rVerified.csv")
    'report\\\\x1b[2K\\\\rVerified.csv'
    >>> printable("café.csv")
    'café.csv'
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    elif isinstance(text, os.PathLike):
        text = os.fsdecode(text)
    else:
        text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if char in "\t\n\r":
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


# --- Reading -----------------------------------------------------------------------------


@contextmanager
def open_regular_file(path: PathLike, *, what: str, max_bytes: int | None = None, follow_symlinks: bool = False,
                      error: type[SynthdataError] = SynthdataError) -> Iterator[IO[bytes]]:
    """Open ``path`` for binary reading if it is a regular file no larger than ``max_bytes``.

    ``what`` names the file in messages ("public key", "budget ledger"). Refused with
    ``error`` (one line): a missing file; anything that is not a regular file (a FIFO, a
    device, a socket, a folder), checked with ``stat`` before opening and again on the
    open descriptor, so nothing blocks and no device is opened; a symbolic link, unless
    ``follow_symlinks`` (then the file it points to is checked); a file larger than
    ``max_bytes``. Links in the folders above ``path`` are followed, as everywhere.
    """
    shown = printable(path)
    try:
        before = os.stat(path, follow_symlinks=follow_symlinks)
    except FileNotFoundError:
        raise error(f"no {what} at {shown}") from None
    except OSError as exc:
        raise error(f"cannot read the {what} {shown}: {exc.strerror}") from None
    _check_regular(before, shown, what=what, max_bytes=max_bytes, error=error)
    flags = os.O_RDONLY | _NONBLOCK | _CLOEXEC | _BINARY | (0 if follow_symlinks else _NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since the stat
            raise error(f"{shown} is a symbolic link; synthdata does not follow one for the {what}: "
                        "give the file itself") from None
        raise error(f"cannot read the {what} {shown}: {exc.strerror}") from None
    try:
        after = os.fstat(fd)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise error(f"{shown} changed while synthdata opened it; run again, and check who else writes there")
        _check_regular(after, shown, what=what, max_bytes=max_bytes, error=error)
        if _NONBLOCK:
            os.set_blocking(fd, True)  # no effect on a regular file; plain reads from here on
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with file:
        yield file


def read_regular_file(path: PathLike, *, max_bytes: int, what: str, follow_symlinks: bool = False,
                      error: type[SynthdataError] = SynthdataError) -> bytes:
    """The bytes of ``path``, checked as :func:`open_regular_file` says; never more than ``max_bytes``."""
    with open_regular_file(path, what=what, max_bytes=max_bytes, follow_symlinks=follow_symlinks,
                           error=error) as file:
        try:
            data = file.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"cannot read the {what} {printable(path)}: {exc.strerror}") from None
    if len(data) > max_bytes:  # it grew after the size check
        raise error(f"{printable(path)} grew past {_size(max_bytes)} while being read; it is not a {what}")
    return data


def sha256_file(path: PathLike, *, what: str = "file", follow_symlinks: bool = True,
                error: type[SynthdataError] = SynthdataError) -> str:
    """Hex sha256 of a regular file's bytes, streamed (never the whole file in memory).

    A FIFO, device or folder is refused (hashing one would block or never end); a link
    is followed unless ``follow_symlinks`` is false.
    """
    with open_regular_file(path, what=what, follow_symlinks=follow_symlinks, error=error) as file:
        try:
            return hashlib.file_digest(file, "sha256").hexdigest()
        except OSError as exc:
            raise error(f"cannot read the {what} {printable(path)}: {exc.strerror}") from None


def _check_regular(info: os.stat_result, shown: str, *, what: str, max_bytes: int | None,
                   error: type[SynthdataError]) -> None:
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        raise error(f"{shown} is a symbolic link; synthdata does not follow one for the {what}: give the file itself")
    if stat.S_ISDIR(mode):
        raise error(f"{shown} is a folder; give the {what} file inside it")
    if not stat.S_ISREG(mode):
        raise error(f"{shown} is {_kind(mode)}, not a regular file; refusing to read it as the {what}")
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(f"{shown} is {_size(info.st_size)}, more than a {what} can be ({_size(max_bytes)} at most); "
                    "it is not the right file")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def _size(count: int) -> str:
    for unit, scale in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


# --- JSON --------------------------------------------------------------------------------


class _Refused(ValueError):
    """Raised inside the JSON parser's hooks; turned into the caller's one-line error."""


def load_json(text: str | bytes, *, what: str, max_depth: int = 64,
              error: type[SynthdataError] = SynthdataError) -> Any:
    """Parse strict JSON from a file synthdata did not write itself; ``error`` (one line) if refused.

    Refused: bytes that are not UTF-8; invalid JSON (with line and column); an object
    with a key given twice (JSON parsers differ on which one counts, so a signature
    checker and a reader could see different documents); ``NaN``, ``Infinity`` and numbers
    too large for a float (``1e999``, or an integer of 10**400); nesting deeper than
    ``max_depth`` (checked without ever raising RecursionError). A leading UTF-8 byte-order
    mark is skipped. The error carries the short reason as ``.reason`` for callers that
    rephrase it.
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        # A UTF-8 byte-order mark (Windows editors write one) is not content: RFC 8259 lets a
        # parser ignore it, and what is signed is the payload inside, never the envelope's bytes.
        value = json.loads(text.removeprefix("\ufeff"), object_pairs_hook=_unique_keys,
                           parse_constant=_no_constant, parse_float=_finite_float, parse_int=_float_sized_int)
    except UnicodeDecodeError as exc:
        raise _json_error(error, what, f"byte {exc.start} is not UTF-8") from None
    except _Refused as exc:
        raise _json_error(error, what, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise _json_error(error, what, f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # the C parser guards its own recursion: this is deep nesting
        raise _json_error(error, what, f"nested more than {max_depth} levels deep") from None
    except ValueError:  # an integer with more digits than Python converts (sys.get_int_max_str_digits)
        raise _json_error(error, what, "a number has too many digits") from None
    if _depth_exceeds(value, max_depth):
        raise _json_error(error, what, f"nested more than {max_depth} levels deep")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"the key {_quoted(key)} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float_sized_int(text: str) -> int:
    """An integer a float could hold (magnitude under 1.8e308), like every number a reader compares."""
    value = int(text)
    if len(text) > 300 and abs(value) > sys.float_info.max:
        raise _Refused(f"the number {text[:40]}... is too large")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999: valid JSON, but no float holds it
        raise _Refused(f"the number {text[:40]} is too large")
    return value


def _json_error(error: type[SynthdataError], what: str, reason: str) -> SynthdataError:
    exc = error(f"{what} is not valid JSON: {reason}")
    exc.reason = reason
    return exc


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether ``value`` nests lists and dicts more than ``max_depth`` deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _quoted(text: str, width: int = 60) -> str:
    shown = printable(text)
    return repr(shown if len(shown) <= width else shown[: width - 3] + "...")


# --- Writing -----------------------------------------------------------------------------


@contextmanager
def atomic_writer(path: PathLike, *, mode: int = 0o644, overwrite: bool = True, text: bool = False,
                  encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO[Any]]:
    """A handle whose content becomes ``path`` whole, or not at all.

    Writes go to a temporary file made by :func:`tempfile.mkstemp` in ``path``'s folder
    (an unpredictable name, created exclusively, so a link planted at any name is never
    followed). When the block ends, the file is flushed, fsynced, given ``mode``
    (exactly: the umask does not apply) and renamed to ``path``, and the folder is
    fsynced; any failure removes the temporary file. With ``overwrite=False`` an existing
    ``path`` is never replaced: :class:`FileExistsError` (the check and the placing are one
    step where the file system has hard links). A link at ``path`` itself is replaced by
    the new file, never written through.

    An OSError of the file system (no space, read-only, permission) becomes one
    :class:`SynthdataError` line naming ``path``; the block's own exceptions pass unchanged.
    """
    path = Path(path)
    folder = path.parent
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise SynthdataError(os_error_message(exc, path=path, writing=True)) from None
    placed = False
    try:
        handle = os.fdopen(fd, "w" if text else "wb", **({"encoding": encoding, "newline": newline} if text else {}))
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            _set_mode(handle.fileno(), temporary, mode)
        _place(temporary, path, overwrite=overwrite)
        placed = True
        _fsync_folder(folder)
    except FileExistsError:
        raise
    except OSError as exc:
        # A write into the handle carries no file name; any other OSError is the block's own.
        if exc.filename is None or exc.filename in (temporary, str(path), path):
            raise SynthdataError(os_error_message(exc, path=path, writing=True)) from None
        raise
    finally:
        if not placed:
            with suppress(OSError):
                os.unlink(temporary)


def atomic_write(path: PathLike, data: bytes | str, *, mode: int = 0o644, overwrite: bool = True) -> None:
    """Write ``data`` (str as UTF-8) to ``path`` atomically; see :func:`atomic_writer`."""
    with atomic_writer(path, mode=mode, overwrite=overwrite) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def _set_mode(fd: int, name: str, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # Windows: only the read-only bit exists
        os.chmod(name, mode)


def _place(temporary: str, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)  # fails if anything, even a dangling link, is at path
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EXDEV):
            raise
        # No hard links on this file system: check, then rename (two steps, the best it allows).
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.rename(temporary, path)
        return
    os.unlink(temporary)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; some file systems (and Windows) cannot fsync a folder: skipped there."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- Operating-system errors as one line -------------------------------------------------


def check_free_space(folder: PathLike, needed: float, *, what: str, fix: str,
                     error: type[SynthdataError] = SynthdataError) -> None:
    """Refuse, in one line, to start writing at least ``needed`` bytes into ``folder`` when its
    file system has less free: before the work, not when the disk fills hours later.

    ``needed`` is a lower bound (public facts only, such as rows x columns x 2 bytes), so
    only what surely cannot fit is refused. A folder that cannot be measured is let
    through: the write itself then says what is wrong.
    """
    try:
        free = shutil.disk_usage(folder).free
    except (OSError, ValueError):
        return
    if needed > free:
        raise error(f"{what} takes at least {_size(int(min(needed, 2**62)))}, but {printable(folder)} has "
                    f"{_size(free)} free; {fix}")


def os_error_message(exc: OSError, *, path: PathLike | None = None, writing: bool = False) -> str:
    """One line for an OSError the user can act on, naming the file (``path``, else the error's own)."""
    name = path if path is not None else exc.filename
    shown = printable(name) if name is not None else None
    other = f" -> {printable(exc.filename2)}" if path is None and exc.filename2 is not None else ""
    where = f"{shown}{other}" if shown is not None else "a file"
    verb = "write" if writing else "use"
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM):
        return (f"cannot {verb} {where}: permission denied; check the permissions of the file and its folder, "
                "or choose another path")
    if code == errno.EROFS:
        return f"cannot {verb} {where}: the file system is read-only; choose a writable folder"
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"cannot {verb} {where}: no space left on the device (or quota exceeded); free some space"
    if code == errno.ENOENT:
        return f"cannot {verb} {where}: no such file or folder; check the path exists"
    if code == errno.EEXIST:
        return f"{where} already exists; move it away or choose another path"
    if code == errno.ENOTDIR:
        return f"cannot {verb} {where}: a part of the path is a file, not a folder"
    if code == errno.EISDIR:
        return f"cannot {verb} {where}: it is a folder"
    reason = exc.strerror or type(exc).__name__
    return f"cannot {verb} {where}: {reason}"
