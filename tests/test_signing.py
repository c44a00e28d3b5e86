"""synthdata.signing: keys, the in-toto Statement, DSSE, and a signed release checked from outside."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import sys

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from synthdata.errors import SynthdataError, VerificationError
from synthdata.signing import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    default_key,
    fingerprint,
    generate_keypair,
    load_private_key,
    load_public_key,
    pae,
    sha256_file,
    sign_envelope,
    statement_bytes,
    verify_release,
    write_signed,
)

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")

PREDICATE = {"privacy": {"epsilon": 1.0, "epsilon_spent": 0.97, "delta": 1e-5}, "note": "café"}


# --- DSSE --------------------------------------------------------------------------------


def test_pae_matches_the_dsse_spec_test_vector():
    """protocol.md's example, and its published ECDSA signature verifies over our bytes."""
    encoded = pae("http://example.com/HelloWorld", b"hello world")
    assert encoded == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    x = 46950820868899156662930047687818585632848591499744589407958293238635476079160
    y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
    spec_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raw = base64.b64decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    spec_key.verify(der, encoded, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature if PAE is wrong


def test_pae_lengths_count_bytes_not_characters():
    assert pae("tÿpe", "é €".encode()) == "DSSEv1 5 tÿpe 6 é €".encode()
    assert pae("t", b"") == b"DSSEv1 1 t 0 "


def test_envelope_verifies_with_plain_cryptography():
    key = Ed25519PrivateKey.generate()
    envelope = sign_envelope(b'{"a": 1}\n', key)
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert base64.b64decode(envelope["payload"], validate=True) == b'{"a": 1}\n'
    [signature] = envelope["signatures"]
    assert signature["keyid"] == fingerprint(key.public_key())
    key.public_key().verify(base64.b64decode(signature["sig"]), pae(PAYLOAD_TYPE, b'{"a": 1}\n'))


def test_fingerprint_is_sha256_of_the_raw_public_key():
    key = Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(raw) == 32
    assert fingerprint(key) == "SHA256:" + hashlib.sha256(raw).hexdigest()


# --- Statement ---------------------------------------------------------------------------


def test_statement_bytes_are_deterministic_and_sorted():
    digest_a, digest_b = "a" * 64, "b" * 64
    one = statement_bytes({"synthetic.csv": digest_a, "report.html": digest_b}, PREDICATE)
    reordered = {"note": "café", "privacy": {"delta": 1e-5, "epsilon_spent": 0.97, "epsilon": 1.0}}
    two = statement_bytes({"report.html": digest_b, "synthetic.csv": digest_a}, reordered)
    assert one == two
    assert one.endswith(b"}\n") and "café".encode() in one  # UTF-8, not \\u escapes
    statement = json.loads(one)
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [{"name": "report.html", "digest": {"sha256": digest_b}},
                                    {"name": "synthetic.csv", "digest": {"sha256": digest_a}}]
    assert statement["predicate"] == PREDICATE


@pytest.mark.parametrize("subjects, predicate, fragment", [
    ({"x.csv": "a" * 64}, {"score": float("nan")}, "NaN"),
    ({"../x.csv": "a" * 64}, {}, "plain relative"),
    ({"/etc/passwd": "a" * 64}, {}, "plain relative"),
    ({"x.csv": "A" * 64}, {}, "hex sha256"),
])
def test_statement_bytes_refuses_what_it_cannot_sign_faithfully(subjects, predicate, fragment):
    with pytest.raises(ValueError, match=fragment):
        statement_bytes(subjects, predicate)


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


# --- Keys --------------------------------------------------------------------------------


@posix_only
def test_generated_private_key_is_mode_0600_and_pems_are_standard(tmp_path):
    private_path, public_path = generate_keypair(tmp_path / "keys")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    private, public = load_private_key(private_path), load_public_key(public_path)
    assert fingerprint(private.public_key()) == fingerprint(public)


def test_generate_refuses_to_overwrite_either_key(tmp_path):
    private_path, public_path = generate_keypair(tmp_path)
    before = private_path.read_bytes()
    with pytest.raises(SynthdataError, match="already exists"):
        generate_keypair(tmp_path)
    assert private_path.read_bytes() == before
    private_path.unlink()
    with pytest.raises(SynthdataError, match="signing_key.pub.pem already exists"):
        generate_keypair(tmp_path)
    assert not private_path.exists()


def test_encrypted_key_loads_only_with_its_passphrase(tmp_path):
    private_path, public_path = generate_keypair(tmp_path, passphrase="correct horse")
    assert private_path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(SynthdataError, match="is encrypted; set SYNTHDATA_KEY_PASSPHRASE"):
        load_private_key(private_path)
    with pytest.raises(SynthdataError, match="wrong passphrase"):
        load_private_key(private_path, "battery staple")
    key = load_private_key(private_path, "correct horse")
    assert fingerprint(key.public_key()) == fingerprint(load_public_key(public_path))


def test_key_loading_errors_say_what_is_wrong(tmp_path):
    private_path, public_path = generate_keypair(tmp_path / "k")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cases = [
        (load_private_key, tmp_path / "missing.pem", "no private key at"),
        (load_private_key, text, "not a PEM private key"),
        (load_private_key, public_path, "is a public key"),
        (load_private_key, ec_key, "not Ed25519"),
        (load_private_key, tmp_path, "is a folder"),
        (load_public_key, tmp_path / "missing.pem", "no public key at"),
        (load_public_key, text, "not a PEM public key"),
        (load_public_key, private_path, "holds a private key"),
    ]
    for load, path, fragment in cases:
        with pytest.raises(SynthdataError, match=fragment):
            load(path)


def test_default_key_is_created_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDATA_CONFIG_DIR", str(tmp_path / "config"))
    key, public_path, created = default_key()
    assert created and public_path == tmp_path / "config" / "signing_key.pub.pem"
    if sys.platform != "win32":
        assert stat.S_IMODE((tmp_path / "config" / "signing_key.pem").stat().st_mode) == 0o600
    again, public_again, created_again = default_key()
    assert not created_again and public_again == public_path
    assert fingerprint(again.public_key()) == fingerprint(key.public_key()) == fingerprint(load_public_key(public_path))


def test_default_key_falls_back_to_xdg_and_rewrites_a_deleted_public_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SYNTHDATA_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    key, public_path, _ = default_key()
    assert public_path == tmp_path / "synthdata" / "signing_key.pub.pem"
    public_path.unlink()
    _, public_path, created = default_key()
    assert not created and fingerprint(load_public_key(public_path)) == fingerprint(key.public_key())


def test_default_key_refuses_a_public_key_of_another_pair(tmp_path):
    default_key(tmp_path)
    other = Ed25519PrivateKey.generate().public_key()
    (tmp_path / "signing_key.pub.pem").write_bytes(other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(SynthdataError, match="is not the public half"):
        default_key(tmp_path)


# --- write_signed and verify_release -----------------------------------------------------


def _release(tmp_path, key):
    directory = tmp_path / "release"
    (directory / "images").mkdir(parents=True)
    (directory / "synthetic.csv").write_text("age,city\n31,Oslo\n", encoding="utf-8")
    (directory / "images" / "0001.png").write_bytes(b"\x89PNG fake")
    write_signed(directory, PREDICATE, ["synthetic.csv", "images/0001.png"], key)
    return directory


def test_write_signed_output_is_checkable_without_synthdata(tmp_path):
    key = Ed25519PrivateKey.generate()
    directory = _release(tmp_path, key)
    report = (directory / "report.json").read_bytes()
    envelope = json.loads((directory / "report.dsse.json").read_text(encoding="utf-8"))
    assert base64.b64decode(envelope["payload"]) == report
    key.public_key().verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae(PAYLOAD_TYPE, report))
    subjects = {s["name"]: s["digest"]["sha256"] for s in json.loads(report)["subject"]}
    assert subjects == {"images/0001.png": hashlib.sha256(b"\x89PNG fake").hexdigest(),
                        "synthetic.csv": hashlib.sha256(b"age,city\n31,Oslo\n").hexdigest()}


def test_verify_release_returns_the_predicate_and_subjects(tmp_path):
    key = Ed25519PrivateKey.generate()
    directory = _release(tmp_path, key)
    public = tmp_path / "pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    verified = verify_release(directory, public)
    assert verified["predicate"] == PREDICATE
    assert sorted(verified["subjects"]) == ["images/0001.png", "synthetic.csv"]
    assert verified["keyid"] == fingerprint(key.public_key())
    # DSSE verifiers must accept URL-safe base64 too, padded or not.
    envelope_path = directory / "report.dsse.json"
    envelope = json.loads(envelope_path.read_text(encoding="utf-8"))
    envelope["signatures"][0]["sig"] = base64.urlsafe_b64encode(
        base64.b64decode(envelope["signatures"][0]["sig"])).decode().rstrip("=")
    envelope_path.write_text(json.dumps(envelope), encoding="utf-8")
    assert verify_release(directory, public)["predicate"] == PREDICATE
    (directory / "images" / "0002.png").write_bytes(b"extra")
    with pytest.raises(VerificationError, match="unlisted file images/0002.png"):
        verify_release(directory, public)


@pytest.mark.parametrize("files, fragment", [
    (["synthetic.csv"], "unlisted file notes.txt"),
    (["synthetic.csv", "notes.txt", "../outside.csv"], "plain relative"),
    (["synthetic.csv", "notes.txt", "missing.csv"], "no such file"),
    (["synthetic.csv", "notes.txt", "report.json"], "reserved"),
])
def test_write_signed_refuses_a_release_that_would_not_verify(tmp_path, files, fragment):
    (tmp_path / "synthetic.csv").write_text("a\n1\n")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=fragment):
        write_signed(tmp_path, {}, files, Ed25519PrivateKey.generate())
    assert not (tmp_path / "report.json").exists()
