"""Issue 17: files an attacker or an accident can plant, early refusals, and no "unexpected … bug".

Each test plants what an adversary (or a crash) could leave: a FIFO or a link to
/dev/zero where a report, key or ledger is expected, a ledger entry naming a folder to
delete, a link at a temporary file's name, a file name carrying terminal escapes, keys
others can read. Every case must end quickly in one ``Error:`` line (or succeed), never
hang, never touch what it was not asked to, never raise anything but a SynthdataError.
Hypothesis adds generated ledgers and DSSE envelopes.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthdata.budget import (
    LEDGER_FORMAT,
    BudgetLedger,
    LedgerReadOnlyError,
    cleanup_staging,
    staging_path,
)
from synthdata.errors import ModelError, SynthdataError
from synthdata.files import (
    atomic_write,
    atomic_writer,
    load_json,
    printable,
    read_regular_file,
    sha256_file,
)
from synthdata.signing import (
    default_key,
    generate_keypair,
    load_private_key,
    load_public_key,
    public_key_pem,
    sign_envelope,
    verify_release,
    write_signed,
)

from .conftest import assert_one_line_error

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX files: FIFOs, modes, links")
pytestmark = posix_only

A = "a" * 64
ROOT = os.name == "posix" and os.geteuid() == 0


def _within(seconds: float, function, *args, **kwargs):
    """Run ``function`` in a thread; fail (instead of hanging the suite) if it blocks past ``seconds``."""
    box: dict = {}

    def run():
        try:
            box["value"] = function(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(function, '__name__', function)} blocked for more than {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert isinstance(exc, SynthdataError), repr(exc)
    assert "\n" not in message and "\r" not in message and message.isprintable(), repr(message)
    return message


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --- files.py ----------------------------------------------------------------------------


def _plant(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero_link":
        os.symlink("/dev/zero", path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    else:
        raise ValueError(kind)


@pytest.mark.parametrize("kind, fragment", [
    ("fifo", "is a FIFO"),
    ("dev_zero_link", "is a device"),
    ("folder", "is a folder"),
    ("socket", "is a socket"),
])
def test_read_regular_file_refuses_what_is_not_a_regular_file_without_blocking(tmp_path, kind, fragment):
    path = tmp_path / "thing"
    _plant(kind, path)
    with pytest.raises(SynthdataError, match=fragment) as caught:
        _within(5, read_regular_file, path, max_bytes=1024, what="thing", follow_symlinks=True)
    assert str(path) in _one_line(caught.value)


def test_read_regular_file_refuses_a_link_unless_allowed_and_caps_the_size(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(SynthdataError, match="is a symbolic link.*give the file itself"):
        read_regular_file(link, max_bytes=100, what="report")
    assert read_regular_file(link, max_bytes=100, what="report", follow_symlinks=True) == b"{}"
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:
        handle.truncate(8 << 30)  # sparse: 8 GiB declared, nothing on disk
    with pytest.raises(SynthdataError, match="8 GiB, more than a report can be") as caught:
        _within(5, read_regular_file, huge, max_bytes=1 << 20, what="report")
    _one_line(caught.value)


def test_sha256_file_refuses_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(SynthdataError, match="FIFO"):
        _within(5, sha256_file, tmp_path / "pipe")


@pytest.mark.parametrize("text, fragment", [
    ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
    ('{"x": NaN}', "NaN is not a JSON number"),
    ('[Infinity]', "Infinity is not a JSON number"),
    ('[1e999]', "too large"),
    ("[" * 200_000 + "]" * 200_000, "nested more than 64 levels"),
    ("[" * 65 + "]" * 65, "nested more than 64 levels"),
    ('{"a": [' + "{}," * 10 + '{"b": {"c": 1}}]}', None),  # fine
    (b'{"a": "\xff"}', "not UTF-8"),
    ("[" + "9" * 5000 + "]", "too many digits"),
    ("{not json", "line 1 column 2"),
])
def test_load_json_is_strict_and_never_raises_recursion_error(text, fragment):
    if fragment is None:
        assert load_json(text, what="doc")["a"][-1] == {"b": {"c": 1}}
        return
    with pytest.raises(SynthdataError, match=fragment) as caught:
        load_json(text, what="doc.json")
    assert _one_line(caught.value).startswith("doc.json is not valid JSON")


def test_atomic_write_never_follows_a_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    target = tmp_path / "out" / "ledger.json"
    target.parent.mkdir()
    # Links at every name an older, predictable scheme used, and at the target itself.
    for name in (".ledger.json.tmp", "ledger.json.tmp", ".ledger.json.partial", "ledger.json~"):
        (target.parent / name).symlink_to(victim)
    target.symlink_to(victim)
    atomic_write(target, "new\n")
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    leftovers = sorted(p.name for p in target.parent.iterdir() if not p.is_symlink())
    assert leftovers == ["ledger.json"]


def test_atomic_writer_removes_its_temporary_file_on_failure_and_can_refuse_to_overwrite(tmp_path):
    target = tmp_path / "report.json"
    with pytest.raises(RuntimeError, match="boom"), atomic_writer(target, text=True) as handle:
        handle.write("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    atomic_write(target, b"one", overwrite=False, mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        atomic_write(target, b"two", overwrite=False)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        atomic_write(dangling, b"two", overwrite=False)
    assert target.read_bytes() == b"one" and not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "report.json"]


def test_atomic_write_into_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(SynthdataError, match="cannot write .*no such file or folder") as caught:
        atomic_write(tmp_path / "missing" / "x.json", "{}")
    _one_line(caught.value)


def test_printable_escapes_terminal_controls_and_keeps_text():
    assert printable("plain name.csv") == "plain name.csv"
    assert printable("café ε.csv") == "café ε.csv"
    shown = printable("x\x1b[1A\x1b[2K\rVerified\u202egpj.exe\x00\x07\u200b\n")
    assert shown == "x\\x1b[1A\\x1b[2K\\rVerified\\u202egpj.exe\\x00\\x07\\u200b\\n"
    assert shown.isprintable()
    assert printable(Path("/tmp/a\tb")) == "/tmp/a\\tb"
    assert printable(b"bad\xffbyte") == "bad\\udcffbyte"


# --- The budget ledger -------------------------------------------------------------------


def _entry(root: Path, **fields) -> dict:
    entry = {"id": "0123456789ab", "state": "released", "input_sha256": A, "epsilon": 1.0, "delta": 1e-6,
             "time": "2026-01-01T00:00:00+00:00", "release": str(root / "r1")}
    entry.update(fields)
    return {k: v for k, v in entry.items() if v is not _DROP}


_DROP = object()


def _write_ledger(path: Path, entries, *, raw: str | None = None) -> None:
    path.write_text(raw if raw is not None else json.dumps({"format": LEDGER_FORMAT, "entries": entries}))


def test_budget_never_deletes_a_folder_named_in_a_ledger_entry(invoke, tmp_path):
    """The reproduced attack: a reserved entry with a dead pid and "staging" naming a folder."""
    victim = tmp_path / "important"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work\n")
    ledger = tmp_path / "budget-ledger.json"
    crashed = {"state": "reserved", "pid": _dead_pid(), "host": socket.gethostname(), "staging": str(victim)}
    _write_ledger(ledger, [
        _entry(tmp_path, id="0123456789ab", **crashed),
        _entry(tmp_path, id="ba9876543210", release=str(victim), **crashed),  # names the victim itself
    ])
    result = invoke("budget", "--ledger", ledger)
    assert result.exit_code == 0, result.output
    assert (victim / "thesis.tex").read_text() == "years of work\n"
    assert BudgetLedger(ledger).entries() == []  # both settled as never landed


def test_budget_repair_settles_crashed_reservations_and_says_what_it_did(invoke, tmp_path):
    ledger_path = tmp_path / "budget-ledger.json"
    dead, host = _dead_pid(), socket.gethostname()
    landed, lost = tmp_path / "landed", tmp_path / "lost"
    landed.mkdir()
    (landed / "report.dsse.json").write_text("{}")
    lost_staging = staging_path(lost, "bbbbbbbbbbbb")
    lost_staging.mkdir()
    (lost_staging / "synthetic.csv").write_text("the full synthetic data\n")
    orphan = tmp_path / ".older.partial-cccccccccccc"  # a killed release whose ledger was elsewhere
    orphan.mkdir()
    _write_ledger(ledger_path, [
        _entry(tmp_path, id="aaaaaaaaaaaa", state="reserved", release=str(landed), epsilon=2.0, pid=dead, host=host),
        _entry(tmp_path, id="bbbbbbbbbbbb", state="reserved", release=str(lost), epsilon=3.0, pid=dead, host=host),
    ])
    result = invoke("budget", "--ledger", ledger_path, "--repair")
    assert result.exit_code == 0, result.output
    assert "settled entry aaaaaaaaaaaa (epsilon 2" in result.output and "counts as spent" in result.output
    assert "settled entry bbbbbbbbbbbb (epsilon 3" in result.output and "dropped" in result.output
    assert f"staging folder {lost_staging} removed" in result.output
    assert f"removed the abandoned staging folder {orphan}" in result.output
    assert not lost_staging.exists() and not orphan.exists() and landed.exists()
    assert [(e["id"], e["state"]) for e in BudgetLedger(ledger_path).entries()] == [("aaaaaaaaaaaa", "released")]
    again = invoke("budget", "--ledger", ledger_path, "--repair")
    assert "Repair: nothing to settle" in again.output


def test_repair_settles_a_reservation_whose_pid_was_reused(tmp_path):
    """Same machine, the pid belongs to a live process, but nobody holds the staging lock."""
    ledger = BudgetLedger(tmp_path / "ledger.json")
    release = tmp_path / "r1"
    (tmp_path / f".r1.partial-{'d' * 12}.lock").write_text("")  # left by the killed release
    _write_ledger(ledger.path, [_entry(tmp_path, id="d" * 12, state="reserved", release=str(release),
                                       pid=os.getpid(), host=socket.gethostname())])
    assert any("dropped" in line for line in ledger.repair())
    assert ledger.entries() == []


_BAD_ENTRIES = [
    ({"epsilon": -100}, "entry #1 (id 0123456789ab) has epsilon -100"),
    ({"epsilon": "1"}, "has epsilon '1'"),
    ({"epsilon": True}, "has epsilon True"),
    ({"epsilon": None}, "has epsilon None"),
    ({"delta": 2}, "has delta 2"),
    ({"delta": -1e-9}, "has delta"),
    ({"input_sha256": _DROP}, "lacks input_sha256"),
    ({"epsilon": _DROP}, "lacks epsilon"),
    ({"id": _DROP}, "lacks id"),
    ({"state": _DROP}, "lacks state"),
    ({"release": _DROP}, "lacks release"),
    ({"time": _DROP}, "lacks time"),
    ({"input_sha256": ["a"]}, "input_sha256"),
    ({"input_sha256": "a\x1b[2J"}, "input_sha256"),
    ({"id": "../../etc"}, "has id '../../etc': it must be 12 hex digits"),
    ({"state": "gone"}, "has state 'gone'"),
    ({"release": "relative/path"}, "must be an absolute path"),
    ({"release": "/"}, "must be an absolute path"),
    ({"release": 7}, "release that is not a path"),
    ({"state": "reserved"}, "is reserved but has no valid pid"),
    ({"state": "reserved", "pid": 12, "host": ["x"]}, "no host name"),
    ({"state": "reserved", "pid": -5, "host": "h"}, "no valid pid"),
]


@pytest.mark.parametrize("fields, fragment", _BAD_ENTRIES, ids=[f for _, f in _BAD_ENTRIES])
def test_ledger_entries_are_validated_with_one_line_naming_the_entry(invoke, tmp_path, fields, fragment):
    path = tmp_path / "budget-ledger.json"
    _write_ledger(path, [_entry(tmp_path, **fields)])
    with pytest.raises(SynthdataError, match="budget ledger cannot be read") as caught:
        BudgetLedger(path).spent(A)
    assert fragment in _one_line(caught.value) and "--ledger" in str(caught.value)
    assert_one_line_error(invoke("budget", "--ledger", path), fragment)


_FORMAT = f'"format": "{LEDGER_FORMAT}"'


@pytest.mark.parametrize("raw, fragment", [
    (f'{{{_FORMAT}, "entries": [{{"epsilon": NaN}}]}}', "NaN is not a JSON number"),
    (f'{{{_FORMAT}, "entries": [{{"epsilon": 1e999}}]}}', "too large"),
    (f'{{{_FORMAT}, "entries": {"[" * 5000 + "]" * 5000}}}', "nested more than"),
    (f'{{{_FORMAT}, "format": "x", "entries": []}}', "appears twice"),
    (f'{{{_FORMAT}, "entries": {{}}}}', "not a synthdata budget ledger"),
    ("[]", "not a synthdata budget ledger"),
])
def test_a_malformed_ledger_file_is_one_line(tmp_path, raw, fragment):
    path = tmp_path / "ledger.json"
    _write_ledger(path, None, raw=raw)
    with pytest.raises(SynthdataError, match=fragment) as caught:
        BudgetLedger(path).entries()
    _one_line(caught.value)


def test_duplicate_entry_ids_are_refused(tmp_path):
    path = tmp_path / "ledger.json"
    _write_ledger(path, [_entry(tmp_path), _entry(tmp_path, release=str(tmp_path / "r2"))])
    with pytest.raises(SynthdataError, match="entry #2 repeats the id 0123456789ab"):
        BudgetLedger(path).entries()


def test_a_negative_epsilon_cannot_let_a_release_past_the_limit(tmp_path):
    path = tmp_path / "ledger.json"
    _write_ledger(path, [_entry(tmp_path, epsilon=9.0), _entry(tmp_path, id="fedcba987654", epsilon=-100)])
    with pytest.raises(SynthdataError, match="epsilon -100"):
        BudgetLedger(path).reserve(input_sha256=A, epsilon=5.0, delta=None, release=tmp_path / "r9", limit=10)
    assert not (tmp_path / "r9").exists() and "r9" not in path.read_text()


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link", "symlink_to_a_ledger"])
def test_a_fifo_or_linked_ledger_is_refused_without_hanging(invoke, tmp_path, kind):
    path = tmp_path / "budget-ledger.json"
    if kind == "symlink_to_a_ledger":
        real = tmp_path / "elsewhere.json"
        _write_ledger(real, [])
        path.symlink_to(real)
        fragment = "symbolic link"
    else:
        _plant(kind, path)
        fragment = "symbolic link" if kind == "dev_zero_link" else "FIFO"
    result = _within(5, invoke, "budget", "--ledger", path)
    assert_one_line_error(result, fragment, "budget ledger")
    with pytest.raises(SynthdataError, match=fragment):
        _within(5, BudgetLedger(path).reserve, input_sha256=A, epsilon=1.0, delta=None, release=tmp_path / "r",
                limit=10)


def test_the_ledger_is_written_without_following_links_at_temporary_or_lock_names(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = tmp_path / "releases"
    folder.mkdir()
    ledger = BudgetLedger(folder / "budget-ledger.json")
    for name in (".budget-ledger.json.tmp", "budget-ledger.json.tmp", ".budget-ledger.json.new"):
        (folder / name).symlink_to(victim)
    reservation = ledger.reserve(input_sha256=A, epsilon=1.0, delta=None, release=folder / "r1", limit=10)
    ledger.cancel(reservation)
    assert victim.read_text() == "precious\n"
    assert json.loads(ledger.path.read_text())["entries"] == []
    # A link planted at the ledger's lock: refused in one line, nothing written through it.
    lock = folder / ".budget-ledger.json.lock"
    lock.unlink()
    lock.symlink_to(victim)
    with pytest.raises(SynthdataError, match="lock file .* is a symbolic link") as caught:
        ledger.entries()
    _one_line(caught.value)
    assert victim.read_text() == "precious\n"


def _deny_lock_files(monkeypatch, folder: Path) -> None:
    """Make ``folder`` behave as read-only for new files (root ignores chmod, so tests inject it)."""
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(os.fsdecode(path)).parent == folder:
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)


def test_budget_on_a_read_only_ledger_folder_lists_with_a_note_and_refuses_changes(invoke, tmp_path, monkeypatch):
    path = tmp_path / "budget-ledger.json"
    _write_ledger(path, [_entry(tmp_path, epsilon=1.5)])
    _deny_lock_files(monkeypatch, tmp_path)
    result = invoke("budget", "--ledger", path)
    assert result.exit_code == 0, result.output
    assert "cumulative epsilon 1.5" in result.output
    assert "is not writable: the ledger is listed as it is" in result.stderr
    with pytest.raises(LedgerReadOnlyError, match="not writable.*choose another --ledger") as caught:
        BudgetLedger(path).reserve(input_sha256=A, epsilon=1.0, delta=None, release=tmp_path / "r", limit=10)
    _one_line(caught.value)
    assert_one_line_error(invoke("budget", "--ledger", path, "--repair"), "not writable")


def test_budget_on_a_read_only_folder_whose_lock_exists_still_lists(invoke, tmp_path, monkeypatch):
    """The lock was made while the folder was writable; now a crashed entry needs settling and cannot be."""
    path = tmp_path / "budget-ledger.json"
    _write_ledger(path, [_entry(tmp_path, state="reserved", pid=_dead_pid(), host=socket.gethostname())])
    (tmp_path / ".budget-ledger.json.lock").write_text("")
    real_mkstemp, real_access = tempfile.mkstemp, os.access

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path else real_access(p, mode))
    result = invoke("budget", "--ledger", path)
    assert result.exit_code == 0, result.output
    assert "reserved" in result.output and "listed as it is" in result.stderr
    assert_one_line_error(invoke("budget", "--ledger", path, "--repair"), "is not writable", "--ledger")


@pytest.mark.skipif(ROOT, reason="root ignores folder permissions; the injected case above covers it")
def test_budget_on_a_really_read_only_folder(invoke, tmp_path):
    path = tmp_path / "ro" / "budget-ledger.json"
    path.parent.mkdir()
    _write_ledger(path, [_entry(tmp_path)])
    path.parent.chmod(0o555)
    try:
        result = invoke("budget", "--ledger", path)
        assert result.exit_code == 0 and "listed as it is" in result.stderr
    finally:
        path.parent.chmod(0o755)


_HOLDER = """
import sys, time
from pathlib import Path
from synthdata.budget import BudgetLedger
root = Path(sys.argv[1])
ledger = BudgetLedger(root / "budget-ledger.json")
reservation = ledger.reserve(input_sha256="a" * 64, epsilon=1.0, delta=None, release=root / "rel", limit=10)
reservation.staging.mkdir()
(reservation.staging / "synthetic.csv").write_text("the full synthetic data\\n")
print(reservation.staging, flush=True)
time.sleep(120)
"""


def test_a_killed_release_staging_folder_is_cleaned_up_by_the_next_run(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                               cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        staging = Path(process.stdout.readline().strip())
        assert staging.is_dir(), "the helper process did not start"
        # Unrelated folders that look alike, and a release running in this process.
        lookalikes = [tmp_path / ".rel.partial-xyz", tmp_path / "rel.partial-0123456789ab", tmp_path / "data"]
        for folder in lookalikes:
            folder.mkdir()
        (tmp_path / ".link.partial-0123456789ab").symlink_to(tmp_path / "data")
        ours = BudgetLedger(tmp_path / "other-ledger.json")
        running = ours.reserve(input_sha256=A, epsilon=1.0, delta=None, release=tmp_path / "mine", limit=10)
        running.staging.mkdir()
        assert cleanup_staging(tmp_path) == []  # both still running
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert cleanup_staging(tmp_path) == [staging]
        assert not staging.exists() and not Path(f"{staging}.lock").exists()
        assert running.staging.is_dir() and all(folder.is_dir() for folder in lookalikes)
        assert (tmp_path / "data").is_dir()
        assert BudgetLedger(tmp_path / "budget-ledger.json").entries() == []  # its reservation dropped
        ours.cancel(running)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_plain_budget_removes_abandoned_staging_and_stale_locks_but_not_a_running_release(invoke, tmp_path):
    ledger = BudgetLedger(tmp_path / "budget-ledger.json")
    _write_ledger(ledger.path, [])
    abandoned = tmp_path / ".old.partial-aaaaaaaaaaaa"
    abandoned.mkdir()
    (abandoned / "synthetic.csv").write_text("data\n")
    stale_lock = tmp_path / ".gone.partial-bbbbbbbbbbbb.lock"
    stale_lock.write_text("")
    running = BudgetLedger(tmp_path / "elsewhere.json").reserve(input_sha256=A, epsilon=1.0, delta=None,
                                                                  release=tmp_path / "live", limit=10)
    running.staging.mkdir()
    result = invoke("budget", "--ledger", ledger.path)
    assert result.exit_code == 0, result.output
    assert f"Note: removed the abandoned staging folder {abandoned}" in result.stderr
    assert not abandoned.exists() and not stale_lock.exists()
    assert running.staging.is_dir() and Path(f"{running.staging}.lock").exists()


# Hypothesis: any ledger file gives its entries or one clean error, and never removes a folder.

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
_FIELDS = ["id", "state", "input_sha256", "epsilon", "delta", "time", "release", "pid", "host", "staging"]


@st.composite
def _ledger_entries(draw):
    entry = {
        "id": draw(st.sampled_from(["0123456789ab", "aaaaaaaaaaaa", "bbbbbbbbbbbb", "x"])),
        "state": draw(st.sampled_from(["reserved", "released"])),
        "input_sha256": draw(st.sampled_from([A, "b" * 64])),
        "epsilon": draw(st.floats(min_value=0, max_value=20)),
        "delta": draw(st.none() | st.floats(min_value=0, max_value=0.5)),
        "time": "2026-01-01T00:00:00+00:00",
        "release": draw(st.sampled_from(["ROOT/r1", "ROOT/victim", "ROOT", "/", "relative", "ROOT/../ROOT/r2"])),
        "pid": draw(st.sampled_from([_DEAD_PID, os.getpid(), 1, 0])),
        "host": draw(st.sampled_from([socket.gethostname(), "elsewhere"])),
        "staging": "ROOT/victim",
    }
    for field in draw(st.lists(st.sampled_from(_FIELDS), max_size=2)):
        if draw(st.booleans()):
            entry.pop(field, None)
        else:
            entry[field] = draw(_json)
    return entry


_DEAD_PID = _dead_pid() if os.name == "posix" else 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=st.one_of(
    _json,
    st.fixed_dictionaries({"format": st.just(LEDGER_FORMAT) | _json,
                           "entries": st.lists(_ledger_entries() | _json, max_size=4)}),
    st.fixed_dictionaries({"format": st.just(LEDGER_FORMAT), "entries": st.lists(_ledger_entries(), max_size=4)}),
))
def test_any_ledger_yields_entries_or_one_line_error_and_never_removes_a_folder(document):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        victim = root / "victim"
        victim.mkdir()
        (victim / "keep.txt").write_text("keep\n")
        text = json.dumps(document).replace("ROOT", folder)
        ledger = BudgetLedger(root / "ledger.json")
        ledger.path.write_text(text)
        for action in (ledger.entries, lambda: ledger.spent(A), ledger.repair,
                       lambda: ledger.reserve(input_sha256=A, epsilon=0.5, delta=None, release=root / "new",
                                              limit=1e9)):
            try:
                action()
            except SynthdataError as exc:
                _one_line(exc)
        assert (victim / "keep.txt").read_text() == "keep\n"


# --- verify ------------------------------------------------------------------------------


@pytest.fixture
def signed(tmp_path):
    """(release directory, public key path)."""
    private_path, public_path = generate_keypair(tmp_path / "keys")
    directory = tmp_path / "release"
    directory.mkdir()
    (directory / "synthetic.csv").write_text("age,city\n31,Oslo\n", encoding="utf-8")
    write_signed(directory, {"privacy": {"epsilon": 1.0}}, ["synthetic.csv"], load_private_key(private_path))
    return directory, public_path


@pytest.mark.parametrize("target", ["report.dsse.json", "report.json", "public key"])
@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link"])
def test_verify_refuses_a_planted_fifo_or_device_fast(invoke, signed, tmp_path, target, kind):
    directory, public_path = signed
    path = public_path if target == "public key" else directory / target
    path.unlink()
    _plant(kind, path)
    result = _within(5, invoke, "verify", directory, "--public-key", public_path)
    fragment = "symbolic link" if kind == "dev_zero_link" and target != "public key" else (
        "FIFO" if kind == "fifo" else "device")
    assert_one_line_error(result, fragment)


def test_verify_refuses_an_oversized_envelope_before_reading_it(invoke, signed):
    directory, public_path = signed
    with open(directory / "report.dsse.json", "r+b") as handle:
        handle.truncate(4 << 30)  # sparse
    result = _within(5, invoke, "verify", directory, "--public-key", public_path)
    assert_one_line_error(result, "report.dsse.json is 4 GiB, more than a signed envelope")


def test_verify_shows_terminal_escapes_in_file_names_escaped(invoke, signed):
    directory, public_path = signed
    evil = "x\x1b[1A\x1b[2K\r\u202eVerified release: nothing altered"
    (directory / evil).write_text("planted\n")
    result = invoke("verify", directory, "--public-key", public_path)
    error = assert_one_line_error(result, "unlisted file x\\x1b[1A\\x1b[2K\\r\\u202eVerified")
    assert "\x1b" not in result.output and "\r" not in result.output and "\u202e" not in result.output
    assert error.isprintable()


def test_verify_refuses_a_folder_it_cannot_list(invoke, tmp_path, monkeypatch):
    """os.walk skips a folder it cannot read, and whatever was added there: refuse instead."""
    private_path, public_path = generate_keypair(tmp_path / "keys")
    directory = tmp_path / "release"
    (directory / "images").mkdir(parents=True)
    (directory / "images" / "0001.png").write_bytes(b"png")
    write_signed(directory, {}, ["images/0001.png"], load_private_key(private_path))
    assert invoke("verify", directory, "--public-key", public_path).exit_code == 0
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("images"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert_one_line_error(invoke("verify", directory, "--public-key", public_path), "cannot list",
                          "images: Permission denied")


def test_verify_refuses_duplicate_keys_in_the_envelope(invoke, signed):
    """Last-wins here, first-wins elsewhere: two verifiers could see different payloads. Refuse."""
    directory, public_path = signed
    envelope = (directory / "report.dsse.json").read_text()
    forged = base64.b64encode(b'{"forged": true}').decode()
    doubled = envelope.replace('"payload":', f'"payload": "{forged}", "payload":', 1)
    (directory / "report.dsse.json").write_text(doubled)
    assert_one_line_error(invoke("verify", directory, "--public-key", public_path),
                          "report.dsse.json is not valid JSON", "the key 'payload' appears twice")


@pytest.mark.parametrize("where", ["top", "signature"])
def test_verify_refuses_unsigned_extra_fields_in_the_envelope(invoke, signed, where):
    directory, public_path = signed
    envelope = json.loads((directory / "report.dsse.json").read_text())
    target = envelope if where == "top" else envelope["signatures"][0]
    target["note"] = "epsilon was really 0.1"
    (directory / "report.dsse.json").write_text(json.dumps(envelope))
    assert_one_line_error(invoke("verify", directory, "--public-key", public_path), "field 'note'",
                          "DSSE does not define")


def test_verify_refuses_deep_nesting_without_recursion_error(invoke, signed):
    directory, public_path = signed
    (directory / "report.dsse.json").write_text('{"payloadType": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_one_line_error(invoke("verify", directory, "--public-key", public_path), "nested more than")


def test_verify_refuses_a_signed_statement_with_duplicate_keys(invoke, tmp_path):
    key = Ed25519PrivateKey.generate()
    public = tmp_path / "key.pub.pem"
    public.write_bytes(public_key_pem(key.public_key()))
    directory = tmp_path / "r"
    directory.mkdir()
    payload = (b'{"_type": "https://in-toto.io/Statement/v1", "_type": "x", "subject": [], '
               b'"predicateType": "p", "predicate": {}}\n')
    (directory / "report.json").write_bytes(payload)
    (directory / "report.dsse.json").write_text(json.dumps(sign_envelope(payload, key)))
    assert_one_line_error(invoke("verify", directory, "--public-key", public), "report.json is not valid JSON",
                          "appears twice")


@st.composite
def _envelopes(draw, valid: dict):
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return json.dumps(draw(_json)).encode()
    if choice == 1:
        return draw(st.binary(max_size=200))
    envelope = json.loads(json.dumps(valid))
    target = envelope if choice == 2 else envelope["signatures"][0]
    field = draw(st.sampled_from([*target, "extra"]))
    if draw(st.booleans()):
        target.pop(field, None)
    else:
        target[field] = draw(_json | st.text(alphabet="ABCabc+/=-_\x1b\r", max_size=40))
    return json.dumps(envelope).encode()


def test_any_envelope_verifies_or_fails_in_one_line(tmp_path):
    private_path, public_path = generate_keypair(tmp_path / "keys")
    directory = tmp_path / "release"
    directory.mkdir()
    (directory / "synthetic.csv").write_text("a\n1\n")
    write_signed(directory, {"privacy": {"epsilon": 1.0}}, ["synthetic.csv"], load_private_key(private_path))
    valid = json.loads((directory / "report.dsse.json").read_text())
    original = (directory / "report.dsse.json").read_bytes()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=_envelopes(valid))
    def check(data):
        (directory / "report.dsse.json").write_bytes(data)
        try:
            verified = verify_release(directory, public_path)
        except SynthdataError as exc:
            _one_line(exc)
        else:  # only an envelope that still carries the same signed payload may pass
            assert json.loads(data)["payload"].rstrip("=") == valid["payload"].rstrip("=")
            assert verified["subjects"].keys() == {"synthetic.csv"}

    check()
    (directory / "report.dsse.json").write_bytes(original)
    assert verify_release(directory, public_path)["predicate"] == {"privacy": {"epsilon": 1.0}}


# --- Keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601])
def test_a_private_key_others_can_access_is_refused_with_the_fix(tmp_path, mode):
    private_path, _ = generate_keypair(tmp_path / "keys")
    private_path.chmod(mode)
    with pytest.raises(SynthdataError, match=f"mode {mode:04o}.*chmod 600") as caught:
        load_private_key(private_path)
    assert str(private_path) in _one_line(caught.value)
    private_path.chmod(0o600)
    load_private_key(private_path)


def test_a_symlinked_private_key_is_refused(tmp_path):
    private_path, _ = generate_keypair(tmp_path / "keys")
    link = tmp_path / "keys" / "link.pem"
    link.symlink_to(private_path)
    with pytest.raises(SynthdataError, match="is a symbolic link.*give the file itself"):
        load_private_key(link)


@pytest.mark.parametrize("mode, who", [(0o777, "everyone"), (0o1777, "everyone"), (0o775, "its group")])
def test_a_key_in_a_folder_others_can_write_is_refused(tmp_path, mode, who):
    private_path, _ = generate_keypair(tmp_path / "keys")
    private_path.parent.chmod(mode)
    try:
        with pytest.raises(SynthdataError, match=f"writable by {who}.*chmod go-w") as caught:
            load_private_key(private_path)
        _one_line(caught.value)
    finally:
        private_path.parent.chmod(0o700)


def test_keygen_into_an_existing_writable_folder_is_refused_and_left_as_it_was(invoke, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert_one_line_error(invoke("keygen", "--out", shared), "writable by everyone", "chmod go-w")
    assert list(shared.iterdir()) == [] and stat.S_IMODE(shared.stat().st_mode) == 0o777
    result = invoke("keygen", "--out", tmp_path / "fresh")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700


def test_default_key_honours_the_passphrase_variable(tmp_path, monkeypatch):
    config = tmp_path / "config"
    generate_keypair(config, passphrase="s3cret")
    monkeypatch.delenv("SYNTHDATA_KEY_PASSPHRASE", raising=False)
    with pytest.raises(SynthdataError, match="is encrypted; set SYNTHDATA_KEY_PASSPHRASE"):
        default_key(config)
    monkeypatch.setenv("SYNTHDATA_KEY_PASSPHRASE", "s3cret")
    _, public_path, created = default_key(config)
    assert not created and public_path == config / "signing_key.pub.pem"
    monkeypatch.setenv("SYNTHDATA_KEY_PASSPHRASE", "wrong")
    with pytest.raises(SynthdataError, match="wrong passphrase"):
        default_key(config)


@pytest.mark.skipif(not ROOT, reason="only root can give a file to another user")
def test_a_private_key_of_another_user_is_refused(tmp_path):
    private_path, _ = generate_keypair(tmp_path / "keys")
    os.chown(private_path, 65534, 65534)
    with pytest.raises(SynthdataError, match="belongs to another user"):
        load_private_key(private_path)


def test_key_files_are_written_whole_and_never_through_a_link(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / "signing_key.pem").symlink_to(tmp_path / "stolen.pem")
    with pytest.raises(SynthdataError, match="already exists"):
        generate_keypair(keys)
    assert not (tmp_path / "stolen.pem").exists()
    (keys / "signing_key.pem").unlink()
    generate_keypair(keys)
    assert sorted(p.name for p in keys.iterdir()) == ["signing_key.pem", "signing_key.pub.pem"]


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link"])
def test_a_planted_private_key_is_refused_without_hanging(tmp_path, kind):
    path = tmp_path / "k.pem"
    _plant(kind, path)
    with pytest.raises(SynthdataError, match="FIFO|symbolic link"):
        _within(5, load_private_key, path)
    with pytest.raises(SynthdataError, match="FIFO|device"):
        _within(5, load_public_key, path)


# --- Saved models ------------------------------------------------------------------------


def _saved_model(path: Path) -> dict:
    import torch

    from synthdata.files import sha256_file as digest

    path.mkdir()
    torch.save({"w": torch.zeros(3)}, path / "generator.pt")
    meta = {"format": "test-model/1", "params": {}, "state": {"n": 1},
            "generator": {"sha256": digest(path / "generator.pt")}}
    (path / "model.json").write_text(json.dumps(meta))
    return meta


def _meta_text(meta) -> str:
    return json.dumps(meta)


_MODEL_CASES = [
    ("not json", lambda m: "{oops", "not valid JSON"),
    ("a list", lambda m: "[]", "not a test-model/1 model"),
    ("generator a list", lambda m: _meta_text({**m, "generator": ["x"]}), "no generator object"),
    ("params a list", lambda m: _meta_text({**m, "params": []}), "no params object"),
    ("state missing", lambda m: _meta_text({k: v for k, v in m.items() if k != "state"}), "no state object"),
    ("sha256 missing", lambda m: _meta_text({**m, "generator": {}}), "records no checksum"),
    ("sha256 a number", lambda m: _meta_text({**m, "generator": {"sha256": 5}}), "records no checksum"),
    ("deep", lambda m: '{"format": "test-model/1", "params": ' + "[" * 50_000 + "]" * 50_000 + "}",
     "nested more than"),
    ("duplicate keys", lambda m: '{"format": "test-model/1", "format": "x"}', "appears twice"),
    ("NaN", lambda m: _meta_text(m).replace('"n": 1', '"n": NaN'), "NaN"),
]


@pytest.mark.parametrize("name, meta_text, fragment", _MODEL_CASES, ids=[c[0] for c in _MODEL_CASES])
def test_a_malformed_model_json_is_one_model_error(tmp_path, name, meta_text, fragment):
    from synthdata.models.persistence import read_model

    meta = _saved_model(tmp_path / "m")
    assert read_model(tmp_path / "m", "test-model/1")[0] == meta  # the untouched model loads
    (tmp_path / "m" / "model.json").write_text(meta_text(meta))
    with pytest.raises(ModelError, match=fragment) as caught:
        read_model(tmp_path / "m", "test-model/1")
    _one_line(caught.value)


@pytest.mark.parametrize("file", ["model.json", "generator.pt"])
@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link", "huge"])
def test_planted_model_files_are_refused_without_reading_them(tmp_path, monkeypatch, file, kind):
    from synthdata.models import persistence

    _saved_model(tmp_path / "m")
    path = tmp_path / "m" / file
    if kind == "huge":
        monkeypatch.setattr(persistence, "MAX_META_BYTES", 1 << 20)
        monkeypatch.setattr(persistence, "MAX_WEIGHTS_BYTES", 1 << 20)
        with open(path, "r+b") as handle:
            handle.truncate(8 << 30)
        fragment = "8 GiB, more than"
    else:
        path.unlink()
        _plant(kind, path)
        fragment = "FIFO" if kind == "fifo" else "symbolic link"
    with pytest.raises(ModelError, match=fragment) as caught:
        _within(5, persistence.read_model, tmp_path / "m", "test-model/1")
    _one_line(caught.value)


def test_pickled_weights_and_tampered_weights_are_refused(tmp_path):
    import pickle

    from synthdata.files import sha256_file as digest
    from synthdata.models.persistence import read_model

    meta = _saved_model(tmp_path / "m")
    weights = tmp_path / "m" / "generator.pt"
    weights.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(ModelError, match="does not match the checksum"):
        read_model(tmp_path / "m", "test-model/1")
    weights.write_bytes(pickle.dumps(os.system))
    meta["generator"]["sha256"] = digest(weights)
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="not a plain tensor file"):
        read_model(tmp_path / "m", "test-model/1")


def test_model_errors_turns_what_a_malformed_meta_raises_into_one_line(tmp_path):
    from synthdata.models.persistence import model_errors

    for problem in (lambda: [].items(), lambda: {}["x"], lambda: int("x"), lambda: list("")[1]):
        with pytest.raises(ModelError, match="incomplete or inconsistent") as caught, model_errors(tmp_path / "m"):
            problem()
        _one_line(caught.value)
    with pytest.raises(ZeroDivisionError), model_errors(tmp_path):  # a real bug stays a bug
        _ = 1 / 0


# --- main(): file-system errors are the user's, bugs are bugs ------------------------------


def _run_main(*args):
    from synthdata.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code


@pytest.mark.parametrize("error, fragments", [
    (PermissionError(errno.EACCES, "Permission denied", "/srv/releases/out"),
     ["cannot use /srv/releases/out: permission denied"]),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"), ["/mnt/ro/out", "read-only"]),
    (OSError(errno.ENOSPC, "No space left on device", "/data/x.csv"), ["/data/x.csv", "no space left"]),
    (PermissionError(errno.EACCES, "Permission denied", "/tmp/evil\x1b[2Kname"), ["evil\\x1b[2Kname"]),
])
def test_main_turns_a_file_system_error_into_one_line_naming_the_path(tmp_path, monkeypatch, capsys, error,
                                                                      fragments):
    ledger = tmp_path / "budget-ledger.json"
    _write_ledger(ledger, [])

    def fail(self):
        raise error

    monkeypatch.setattr(BudgetLedger, "entries", fail)
    monkeypatch.delenv("SYNTHDATA_DEBUG", raising=False)
    assert _run_main("budget", "--ledger", ledger) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "bug" not in lines[0], lines
    assert "\x1b" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("error", [KeyError("x"), OSError(errno.EBADF, "Bad file descriptor"), RecursionError()])
def test_main_still_reports_real_bugs_as_bugs(tmp_path, monkeypatch, capsys, error):
    ledger = tmp_path / "budget-ledger.json"
    _write_ledger(ledger, [])

    def fail(self):
        raise error

    monkeypatch.setattr(BudgetLedger, "entries", fail)
    monkeypatch.delenv("SYNTHDATA_DEBUG", raising=False)
    assert _run_main("budget", "--ledger", ledger) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"unexpected {type(error).__name__}" in lines[0] and "this is a bug" in lines[0]


def test_release_into_a_read_only_folder_is_one_line_before_any_training(invoke, tmp_path, monkeypatch):
    """--out in a folder the user cannot write: refused at the ledger reservation, in one line."""
    import pandas as pd

    data = tmp_path / "data.csv"
    pd.DataFrame({"a": range(300), "b": ["x", "y", "z"] * 100}).to_csv(data, index=False)
    readonly = tmp_path / "ro"
    readonly.mkdir()
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    _deny_lock_files(monkeypatch, readonly)
    result = _within(60, invoke, "release", data, "--epsilon", "1", "--out", readonly / "rel", "--quiet")
    assert_one_line_error(result, "not writable", str(readonly))
    assert list(readonly.iterdir()) == []


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_files_are_written_without_following_a_planted_link(tmp_path):
    """The old temporary names were predictable (.setup.json.tmp): a link there was written through."""
    import torch

    from synthdata.checkpoint import Checkpointer

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name in (".setup.json.tmp", ".training.pt.tmp"):
        (folder / name).symlink_to(victim)
    checkpoint = Checkpointer(folder)
    checkpoint.save_setup({"rows": 12.0})
    checkpoint.save_training({"step": 3, "weights": torch.zeros(2)})
    assert victim.read_text() == "precious"
    assert checkpoint.load_setup() == {"rows": 12.0}
    assert checkpoint.load_training()["step"] == 3
    assert stat.S_IMODE((folder / "setup.json").stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["setup.json", "training.pt"])
@pytest.mark.parametrize("kind", ["fifo", "device", "link"])
def test_a_planted_checkpoint_file_is_refused_without_blocking(tmp_path, name, kind):
    from synthdata.checkpoint import Checkpointer

    folder = tmp_path / "ckpt"
    folder.mkdir()
    checkpoint = Checkpointer(folder)
    checkpoint.save_setup({"rows": 12.0})
    (folder / name).unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(folder / name)
    elif kind == "device":
        (folder / name).symlink_to("/dev/zero")
    else:
        (folder / "elsewhere").write_text("{}")
        (folder / name).symlink_to(folder / "elsewhere")
    load = checkpoint.load_setup if name == "setup.json" else checkpoint.load_training
    with pytest.raises(ModelError, match="FIFO|symbolic link|device"):
        _within(10, load)


# --------------------------------------------------------------------------- schema files


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_planted_schema_file_is_refused_without_blocking(invoke, tmp_path, kind):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n" + "".join(f"{i % 4},{'xy'[i % 2]}\n" for i in range(30)))
    schema = tmp_path / "schema.json"
    if kind == "fifo":
        os.mkfifo(schema)
    else:
        schema.symlink_to("/dev/zero")
    result = _within(20, invoke, "inspect", data, "--schema", schema)
    assert_one_line_error(result, "schema", "FIFO" if kind == "fifo" else "device")


def test_schema_save_never_writes_through_a_planted_link(tmp_path):
    from synthdata.schema import Schema

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".s.json.tmp").symlink_to(victim)  # the old, predictable temporary name
    Schema.from_dict({"columns": [{"name": "a", "type": "numerical"}]}).save(tmp_path / "s.json")
    assert victim.read_text() == "precious"
    assert Schema.load(tmp_path / "s.json").names == ["a"]


# --------------------------------------------------------------------------- audits of what did not survive


def test_the_audit_of_a_synthetic_table_whose_target_is_all_missing_is_a_note(invoke, tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2)

    def table(n, target):
        return pd.DataFrame({"a": rng.normal(size=n).round(2), "b": rng.choice(["x", "y", "z"], n), "t": target})

    paths = {}
    for name, frame in (("train", table(300, rng.choice(["p", "q"], 300))), ("holdout", table(100, rng.choice(
            ["p", "q"], 100))), ("synthetic", table(300, [None] * 300)), ("other", table(300, rng.choice(["r", "s"],
                                                                                                    300)))):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    for synthetic, fragment in (("synthetic", "missing in every row"), ("other", "holds a class")):
        result = invoke("audit", paths["train"], paths[synthetic], "--holdout", paths["holdout"], "--target", "t",
                        "--max-rows", "200")
        assert result.exit_code == 0, result.output
        assert "ML utility was not measured" in result.output and fragment in result.output
