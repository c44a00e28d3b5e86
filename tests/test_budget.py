"""The budget ledger: cumulative ε per input, refusals before training, crash consistency."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from synthdata.budget import LEDGER_FORMAT, BudgetLedger
from synthdata.errors import PrivacyError, SynthdataError

A, B = "a" * 64, "b" * 64


@pytest.fixture
def ledger(tmp_path) -> BudgetLedger:
    return BudgetLedger(tmp_path / "ledger.json")


def _released(ledger: BudgetLedger, sha: str, epsilon: float, release) -> None:
    reservation = ledger.reserve(input_sha256=sha, epsilon=epsilon, delta=1e-6, release=release, limit=10)
    release.mkdir()
    (release / "report.dsse.json").write_text("{}")
    ledger.commit(reservation, delta=2e-6)


def test_releases_add_up_per_input(ledger, tmp_path):
    _released(ledger, A, 1.0, tmp_path / "r1")
    _released(ledger, A, 2.5, tmp_path / "r2")
    _released(ledger, B, 4.0, tmp_path / "r3")
    assert ledger.spent(A) == pytest.approx(3.5)
    assert ledger.spent(B) == pytest.approx(4.0)
    entries = ledger.entries()
    assert [e["state"] for e in entries] == ["released"] * 3
    assert entries[0]["delta"] == 2e-6 and entries[0]["release"] == str(tmp_path / "r1")
    assert {"input_sha256", "epsilon", "delta", "time", "release"} <= set(entries[0])
    assert not list(tmp_path.glob(".ledger.json.tmp"))  # written atomically, nothing left over


def test_a_release_over_the_limit_is_refused_and_nothing_recorded(ledger, tmp_path):
    _released(ledger, A, 6.0, tmp_path / "r1")
    with pytest.raises(PrivacyError, match=r"to 11.*over the budget limit 10.*--budget-limit"):
        ledger.reserve(input_sha256=A, epsilon=5.0, delta=None, release=tmp_path / "r2", limit=10)
    assert len(ledger.entries()) == 1
    # Another input has its own budget; exactly reaching the limit is allowed.
    ledger.reserve(input_sha256=B, epsilon=10.0, delta=None, release=tmp_path / "r3", limit=10)
    ledger.reserve(input_sha256=A, epsilon=4.0, delta=None, release=tmp_path / "r4", limit=10)


def test_a_running_release_counts_against_the_limit(ledger, tmp_path):
    """Two releases at once cannot both squeeze under the limit."""
    ledger.reserve(input_sha256=A, epsilon=6.0, delta=None, release=tmp_path / "r1", limit=10)
    with pytest.raises(PrivacyError):
        ledger.reserve(input_sha256=A, epsilon=6.0, delta=None, release=tmp_path / "r2", limit=10)


def test_cancel_forgets_a_release_that_did_not_happen(ledger, tmp_path):
    reservation = ledger.reserve(input_sha256=A, epsilon=3.0, delta=None, release=tmp_path / "r1", limit=10)
    ledger.cancel(reservation)
    assert ledger.entries() == [] and ledger.spent(A) == 0


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("landed", [True, False])
def test_a_crashed_release_is_settled_by_whether_its_directory_is_in_place(ledger, tmp_path, landed):
    reservation = ledger.reserve(input_sha256=A, epsilon=2.0, delta=None, release=tmp_path / "r1", limit=10)
    reservation.staging.mkdir()
    if landed:  # crashed after the rename, before the ledger was updated
        reservation.staging.rename(reservation.release)
        (reservation.release / "report.dsse.json").write_text("{}")
    data = json.loads(ledger.path.read_text())
    data["entries"][0]["pid"] = _dead_pid()  # the releasing process died
    ledger.path.write_text(json.dumps(data))
    entries = ledger.entries()
    if landed:
        assert [(e["state"], e["epsilon"]) for e in entries] == [("released", 2.0)]
        assert "pid" not in entries[0]
    else:
        assert entries == []
        assert not reservation.staging.exists()  # its half-built release is cleaned up
    assert ledger.entries() == entries  # settled once, stable after


def test_an_unreadable_ledger_is_one_clear_error(ledger):
    ledger.path.write_text("{not json")
    with pytest.raises(SynthdataError, match="budget ledger cannot be read.*--ledger"):
        ledger.entries()
    ledger.path.write_text(json.dumps({"format": LEDGER_FORMAT, "entries": [{"epsilon": 1}]}))
    with pytest.raises(SynthdataError, match="lacks input_sha256"):
        ledger.spent(A)


def test_limit_must_be_positive(ledger, tmp_path):
    with pytest.raises(PrivacyError, match="budget limit"):
        ledger.reserve(input_sha256=A, epsilon=1.0, delta=None, release=tmp_path / "r", limit=0)


def test_a_refused_release_keeps_its_spend_as_a_refused_entry_that_counts(ledger, tmp_path):
    reservation = ledger.reserve(input_sha256="a" * 64, epsilon=2.0, delta=1e-6, release=tmp_path / "r1", limit=10)
    ledger.refuse(reservation, epsilon=0.7, delta=1e-6)
    [entry] = ledger.entries()
    assert entry["state"] == "refused" and entry["epsilon"] == pytest.approx(0.7)
    assert "pid" not in entry and not (tmp_path / "r1").exists()
    assert ledger.spent("a" * 64) == pytest.approx(0.7)
    # never more than what was reserved
    second = ledger.reserve(input_sha256="a" * 64, epsilon=1.0, delta=None, release=tmp_path / "r2", limit=10)
    ledger.refuse(second, epsilon=5.0)
    assert ledger.spent("a" * 64) == pytest.approx(1.7)
    # the file stays readable and a refused entry is not settled away as a crashed reservation
    assert BudgetLedger(ledger.path).entries() == ledger.entries()
    with pytest.raises(PrivacyError, match="over the budget limit 2"):
        ledger.reserve(input_sha256="a" * 64, epsilon=0.5, delta=None, release=tmp_path / "r3", limit=2)
