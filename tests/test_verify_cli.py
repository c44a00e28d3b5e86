"""`synthdata keygen` and `synthdata verify`: a signed release passes, any tampering fails by name.

The release directory is built by hand (a small CSV and an HTML page, signed with
write_signed), so these tests run in well under a second each and need no training.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from synthdata.signing import (
    fingerprint,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_envelope,
    statement_bytes,
    write_signed,
)

from .conftest import assert_one_line_error

PREDICATE = {
    "privacy": {"epsilon": 1.0, "epsilon_spent": 0.9731, "delta": 1e-05, "unit": "one row of the input"},
    "audit": {"verdict": "no violation detected: membership attack AUC 0.502"},
    "data": {"input_name": "people.csv", "rows_train_dp": 24012, "rows_synthetic": 24012},
    "software": {"synthdata_version": "0.1.0"},
}


@pytest.fixture
def keys(tmp_path):
    """(private key, its public key file, another pair's public key file)."""
    private_path, public_path = generate_keypair(tmp_path / "keys")
    _, other_public = generate_keypair(tmp_path / "other")
    return load_private_key(private_path), public_path, other_public


@pytest.fixture
def release(tmp_path, keys):
    directory = tmp_path / "release"
    directory.mkdir()
    (directory / "synthetic.csv").write_text("age,city,smoker\n31,Oslo,no\n47,Lima,yes\n", encoding="utf-8")
    (directory / "report.html").write_text("<!doctype html><title>Report</title><p>ok</p>\n", encoding="utf-8")
    write_signed(directory, PREDICATE, ["synthetic.csv", "report.html"], keys[0])
    return directory


def test_verify_passes_and_summarises(invoke, release, keys):
    result = invoke("verify", release, "--public-key", keys[1])
    assert result.exit_code == 0, result.output
    assert "epsilon spent 0.9731 (target 1), delta 1e-05; unit: one row of the input" in result.output
    assert "no violation detected: membership attack AUC 0.502" in result.output
    assert "people.csv: about 24,012 training rows (a DP count); 24,012 synthetic" in result.output
    assert "synthdata 0.1.0" in result.output
    assert "2 released files" in result.output
    assert fingerprint(load_public_key(keys[1])) in result.output
    assert len(result.output.splitlines()) <= 20


def test_verify_tolerates_a_sparse_predicate(invoke, tmp_path, keys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "synthetic.csv").write_text("a\n1\n")
    write_signed(tmp_path / "r", {"privacy": {"epsilon": 2.0}}, ["synthetic.csv"], keys[0])
    result = invoke("verify", tmp_path / "r", "--public-key", keys[1])
    assert result.exit_code == 0, result.output
    assert "epsilon spent not reported (target 2)" in result.output


# --- Tampering: each edit below must make verify exit 1 and name what failed ---------------


def _flip_byte(path, offset=0):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _envelope(directory):
    return json.loads((directory / "report.dsse.json").read_text(encoding="utf-8"))


def _write_envelope(directory, envelope):
    (directory / "report.dsse.json").write_text(json.dumps(envelope, indent=2), encoding="utf-8")


def _sign_statement(directory, payload, key, *, report_too=True):
    """Sign ``payload`` as the release's statement: a signer who is honest about the bytes it signs."""
    _write_envelope(directory, sign_envelope(payload, key))
    if report_too:
        (directory / "report.json").write_bytes(payload)


def change_csv_byte(directory, keys):
    _flip_byte(directory / "synthetic.csv", 5)


def change_report_byte(directory, keys):
    report = directory / "report.json"
    report.write_bytes(report.read_bytes().replace(b"0.9731", b"0.1731"))


def change_report_and_resign_with_another_key(directory, keys):
    report = directory / "report.json"
    forged = report.read_bytes().replace(b"0.9731", b"0.1731")
    _sign_statement(directory, forged, Ed25519PrivateKey.generate())


def flip_signature_byte(directory, keys):
    envelope = _envelope(directory)
    signature = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    signature[10] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()
    _write_envelope(directory, envelope)


def add_file(directory, keys):
    (directory / "extra.csv").write_text("a\n1\n")


def add_folder(directory, keys):
    (directory / "plots").mkdir()


def delete_subject(directory, keys):
    (directory / "report.html").unlink()


def payload_differs_from_report(directory, keys):
    """A validly signed statement in the envelope, but report.json left as it was."""
    other = statement_bytes({"synthetic.csv": "0" * 64, "report.html": "1" * 64}, PREDICATE)
    _sign_statement(directory, other, keys[0], report_too=False)


def subject_escapes_the_directory(directory, keys):
    (directory.parent / "x").write_text("outside\n")
    statement = json.loads((directory / "report.json").read_bytes())
    statement["subject"].append({"name": "../x", "digest": {"sha256": "2" * 64}})
    payload = (json.dumps(statement, indent=2, sort_keys=True) + "\n").encode()
    _sign_statement(directory, payload, keys[0])


def wrong_statement_type(directory, keys):
    statement = json.loads((directory / "report.json").read_bytes())
    statement["_type"] = "https://in-toto.io/Statement/v0.1"
    _sign_statement(directory, (json.dumps(statement) + "\n").encode(), keys[0])


def wrong_payload_type(directory, keys):
    envelope = _envelope(directory)
    envelope["payloadType"] = "application/json"
    _write_envelope(directory, envelope)


def two_signatures(directory, keys):
    envelope = _envelope(directory)
    envelope["signatures"].append(dict(envelope["signatures"][0]))
    _write_envelope(directory, envelope)


def delete_envelope(directory, keys):
    (directory / "report.dsse.json").unlink()


def delete_report(directory, keys):
    (directory / "report.json").unlink()


def damage_envelope_json(directory, keys):
    (directory / "report.dsse.json").write_text("{not json", encoding="utf-8")


def subject_replaced_by_a_link(directory, keys):
    (directory.parent / "same.csv").write_bytes((directory / "synthetic.csv").read_bytes())
    (directory / "synthetic.csv").unlink()
    os.symlink(directory.parent / "same.csv", directory / "synthetic.csv")


TAMPERING = [
    (change_csv_byte, ["synthetic.csv was altered", "sha256"]),
    (change_report_byte, ["report.json differs from the payload signed in report.dsse.json"]),
    (change_report_and_resign_with_another_key, ["signed by another key (keyid SHA256:", "signing_key.pub.pem"]),
    (flip_signature_byte, ["signature in report.dsse.json does not verify"]),
    (add_file, ["unlisted file extra.csv"]),
    (add_folder, ["unlisted folder plots"]),
    (delete_subject, ["report.html is listed in report.json but missing"]),
    (payload_differs_from_report, ["report.json differs from the payload"]),
    (subject_escapes_the_directory, ["'../x'", "not a plain relative file name"]),
    (wrong_statement_type, ["_type", "https://in-toto.io/Statement/v1"]),
    (wrong_payload_type, ["payloadType 'application/json'"]),
    (two_signatures, ["holds 2 signatures"]),
    (delete_envelope, ["has no report.dsse.json"]),
    (delete_report, ["has no report.json"]),
    (damage_envelope_json, ["report.dsse.json is not valid JSON"]),
    pytest.param(subject_replaced_by_a_link, ["symbolic link synthetic.csv"],
                 marks=pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")),
]


@pytest.mark.parametrize("tamper, fragments", TAMPERING, ids=lambda value: getattr(value, "__name__", None))
def test_tampering_fails_naming_the_reason(invoke, release, keys, tamper, fragments):
    assert invoke("verify", release, "--public-key", keys[1]).exit_code == 0
    tamper(release, keys)
    assert_one_line_error(invoke("verify", release, "--public-key", keys[1]), *fragments)


def test_another_public_key_fails(invoke, release, keys):
    error = assert_one_line_error(invoke("verify", release, "--public-key", keys[2]), "signed by another key")
    assert fingerprint(load_public_key(keys[2])) in error and str(keys[2]) in error


def test_verify_names_a_missing_directory_or_key(invoke, release, keys, tmp_path):
    assert_one_line_error(invoke("verify", tmp_path / "nowhere", "--public-key", keys[1]),
                          "no release directory", "does not exist")
    assert_one_line_error(invoke("verify", release, "--public-key", tmp_path / "nokey.pem"), "no public key at")


def test_a_copied_release_still_verifies(invoke, release, keys, tmp_path):
    """Nothing in a release depends on where it lies."""
    copy = shutil.copytree(release, tmp_path / "elsewhere" / "copy")
    assert invoke("verify", copy, "--public-key", keys[1]).exit_code == 0


# --- keygen ------------------------------------------------------------------------------


def test_keygen_writes_a_pair_and_refuses_to_overwrite(invoke, tmp_path):
    out = tmp_path / "new" / "keys"
    result = invoke("keygen", "--out", out)
    assert result.exit_code == 0, result.output
    private_path, public_path = out / "signing_key.pem", out / "signing_key.pub.pem"
    assert str(private_path) in result.output and str(public_path) in result.output
    assert fingerprint(load_public_key(public_path)) in result.output
    if sys.platform != "win32":
        assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    before = private_path.read_bytes()
    assert_one_line_error(invoke("keygen", "--out", out), "already exists", "refusing to overwrite")
    assert private_path.read_bytes() == before


def test_keygen_encrypts_with_a_prompted_passphrase(runner, tmp_path, monkeypatch):
    from synthdata.cli import cli

    monkeypatch.delenv("SYNTHDATA_KEY_PASSPHRASE", raising=False)
    result = runner.invoke(cli, ["keygen", "--out", str(tmp_path), "--encrypt"], input="s3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output  # hidden input
    with pytest.raises(Exception, match="is encrypted"):
        load_private_key(tmp_path / "signing_key.pem")
    load_private_key(tmp_path / "signing_key.pem", "s3cret")


def test_keygen_takes_the_passphrase_from_the_environment(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_KEY_PASSPHRASE", "from env")
    assert invoke("keygen", "--out", tmp_path, "--encrypt").exit_code == 0
    with pytest.raises(Exception, match="wrong passphrase"):
        load_private_key(tmp_path / "signing_key.pem", "guess")
    load_private_key(tmp_path / "signing_key.pem", "from env")
