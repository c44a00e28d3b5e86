"""Sign a release directory and verify it: Ed25519 keys, an in-toto Statement, a DSSE envelope.

A signed release directory holds the released files and two more:

- ``report.json``, an in-toto Statement v1: the sha256 of every released file (its
  *subjects*) and the privacy report (its *predicate*), serialized deterministically;
- ``report.dsse.json``, a DSSE envelope: report.json's exact bytes as its payload and
  one Ed25519 signature over DSSE's pre-authentication encoding (PAE) of them.

Whoever holds the signer's public key runs :func:`verify_release`: the signature, the
payload against report.json, every file's sha256, and that nothing unlisted was added.
The cryptography is the ``cryptography`` package's; this module only frames it.

Specifications: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md and
https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import SynthdataError, VerificationError

__all__ = [
    "CONFIG_DIR_ENV",
    "ENVELOPE_NAME",
    "PASSPHRASE_ENV",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "REPORT_NAME",
    "STATEMENT_TYPE",
    "default_key",
    "fingerprint",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "pae",
    "public_key_pem",
    "sha256_file",
    "sign_envelope",
    "statement_bytes",
    "summary",
    "user_config_dir",
    "verify_release",
    "write_signed",
]

PRIVATE_KEY_NAME = "signing_key.pem"
PUBLIC_KEY_NAME = "signing_key.pub.pem"
PASSPHRASE_ENV = "SYNTHDATA_KEY_PASSPHRASE"
CONFIG_DIR_ENV = "SYNTHDATA_CONFIG_DIR"

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://synthdata.dev/attestation/privacy-report/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
REPORT_NAME = "report.json"
ENVELOPE_NAME = "report.dsse.json"

_MAX_KEY_FILE = 64 * 1024  # a PEM key is a few hundred bytes: anything larger is the wrong file


# --- Keys --------------------------------------------------------------------------------


def generate_keypair(out_dir: Path | str, *, passphrase: str | None = None) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair into ``out_dir``; return (private key path, public key path).

    ``signing_key.pem`` is PKCS8 PEM, encrypted when a passphrase is given, and is created
    with mode 0600 (never readable by others, not even for a moment); ``signing_key.pub.pem``
    is SubjectPublicKeyInfo PEM. An existing key is never overwritten.
    """
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise _exists_error(path)
    if passphrase is not None and not passphrase:
        raise SynthdataError("the passphrase is empty; give a non-empty passphrase, or none for an unencrypted key")
    encryption = (serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase is not None
                  else serialization.NoEncryption())
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    if out_dir.exists() and not out_dir.is_dir():
        raise SynthdataError(f"cannot write keys into {out_dir}: it is a file, not a folder")
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_exclusive(private_path, private_pem, mode=0o600)
        try:
            _create_exclusive(public_path, public_key_pem(key.public_key()), mode=0o644)
        except BaseException:
            private_path.unlink()  # half a key pair is worse than none
            raise
    except FileExistsError as exc:
        raise _exists_error(Path(exc.filename)) from None
    except OSError as exc:
        raise SynthdataError(f"cannot write a key into {out_dir}: {exc.strerror}; "
                             "check the folder is writable") from None
    return private_path, public_path


def load_private_key(path: Path | str, passphrase: str | None = None) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path``, decrypted with ``passphrase`` if it is encrypted."""
    path = Path(path)
    data = _read_key_file(path, "private key")
    if b"-----BEGIN PUBLIC KEY-----" in data:
        raise SynthdataError(f"{path} is a public key; signing needs the private key ({PRIVATE_KEY_NAME})")
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
    if encrypted and passphrase is None:
        raise SynthdataError(f"{path} is encrypted; set {PASSPHRASE_ENV} to its passphrase")
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode("utf-8") if encrypted else None)
    except ValueError:
        if encrypted:
            raise SynthdataError(f"cannot decrypt {path}: wrong passphrase (or the file is damaged)") from None
        raise _not_pem_error(path, "private key") from None
    except TypeError:  # an encrypted key in a format whose header we did not recognise
        raise SynthdataError(f"{path} is encrypted in a format synthdata does not read; "
                             "make a key with `synthdata keygen`") from None
    except UnsupportedAlgorithm:
        raise _not_pem_error(path, "private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise _not_ed25519_error(path, key)
    return key


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM file ``path`` (SubjectPublicKeyInfo, as keygen writes it)."""
    path = Path(path)
    data = _read_key_file(path, "public key")
    if b"PRIVATE KEY-----" in data:
        raise SynthdataError(f"{path} holds a private key; give the public key ({PUBLIC_KEY_NAME}) "
                             "and keep the private key secret")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise _not_pem_error(path, "public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise _not_ed25519_error(path, key)
    return key


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """``public_key`` as SubjectPublicKeyInfo PEM: the bytes of ``signing_key.pub.pem``."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:`` and the hex sha256 of the raw 32-byte public key: the DSSE keyid."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def user_config_dir() -> Path:
    """The user's synthdata folder: $SYNTHDATA_CONFIG_DIR, $XDG_CONFIG_HOME/synthdata or ~/.config/synthdata."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative path
        return Path(xdg) / "synthdata"
    return Path.home() / ".config" / "synthdata"


def default_key(config_dir: Path | str | None = None, *,
                passphrase: str | None = None) -> tuple[Ed25519PrivateKey, Path, bool]:
    """The user's default signing key; return (private key, public key path, whether it was just created).

    The key pair lives in ``config_dir`` (default: :func:`user_config_dir`) and is made there,
    unencrypted with mode 0600, on first use. ``passphrase`` is needed only if the user
    replaced it with an encrypted key.
    """
    directory = Path(config_dir) if config_dir is not None else user_config_dir()
    private_path, public_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    created = not private_path.exists()
    if created:
        generate_keypair(directory)
    key = load_private_key(private_path, passphrase)
    if not public_path.exists():  # deleted by hand: it is derived from the private key
        try:
            _create_exclusive(public_path, public_key_pem(key.public_key()), mode=0o644)
        except FileExistsError:
            pass  # another process wrote it meanwhile; checked below
        except OSError as exc:
            raise SynthdataError(f"cannot write {public_path}: {exc.strerror}") from None
    if fingerprint(load_public_key(public_path)) != fingerprint(key.public_key()):
        raise SynthdataError(f"{public_path} is not the public half of {private_path}; "
                             "delete it and synthdata writes the right one")
    return key, public_path, created


# --- in-toto Statement -------------------------------------------------------------------


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, read in chunks (never the whole file in memory)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def statement_bytes(subjects: Mapping[str, str], predicate: Mapping[str, Any]) -> bytes:
    """The in-toto Statement v1 for ``subjects`` (file name -> hex sha256) and ``predicate``, as bytes.

    Deterministic: keys sorted, subjects sorted by name, 2-space indent, UTF-8, a final
    newline; the same input always gives the same bytes. NaN and infinity are refused
    (JSON has no such numbers): store None for a figure that could not be computed.
    """
    for name, digest in subjects.items():
        if not _is_plain_name(name):
            raise ValueError(f"subject {name!r} is not a plain relative file name (no '..', no absolute path)")
        if not _is_sha256_hex(digest):
            raise ValueError(f"the digest of subject {name!r} is not a hex sha256: {digest!r}")
    document = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    try:
        text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"the report holds a number JSON cannot carry; store None instead of NaN or "
                         f"infinity ({exc})") from None
    return (text + "\n").encode("utf-8")


# --- DSSE --------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, the bytes that are signed.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths in bytes as ASCII decimal.

    >>> pae("http://example.com/HelloWorld", b"hello world")
    b'DSSEv1 29 http://example.com/HelloWorld 11 hello world'
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def sign_envelope(payload: bytes, private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A DSSE envelope of ``payload`` (an in-toto Statement) with one Ed25519 signature."""
    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError(f"signing needs an Ed25519PrivateKey, not {type(private_key).__name__}")
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": fingerprint(private_key.public_key()),
                        "sig": base64.b64encode(signature).decode("ascii")}],
    }


def write_signed(directory: Path | str, predicate: Mapping[str, Any], files: Iterable[str],
                 private_key: Ed25519PrivateKey) -> None:
    """Sign the release being built in ``directory``: write report.json and report.dsse.json there.

    ``files`` names every released file, relative to ``directory``, all already written;
    nothing else may be there (verification refuses unlisted files). The caller then
    renames the directory into place, so a crash never leaves a half-signed release.
    """
    directory = Path(directory)
    names = list(files)
    for name in names:
        if not _is_plain_name(name):
            raise ValueError(f"cannot sign {name!r}: not a plain relative file name (no '..', no absolute path)")
        if name in (REPORT_NAME, ENVELOPE_NAME):
            raise ValueError(f"cannot sign {name!r}: the name is reserved for the signed report")
        path = directory / name
        if path.is_symlink() or not path.is_file():
            raise ValueError(f"cannot sign {name!r}: no such file in {directory}")
    if len(set(names)) != len(names):
        raise ValueError(f"files names a file twice: {sorted(names)}")
    problem = _unlisted_entry(directory, set(names) | {REPORT_NAME, ENVELOPE_NAME})
    if problem is not None:
        raise ValueError(f"cannot sign {directory}: it holds {problem}; pass it in files or remove it")
    subjects = {name: sha256_file(directory / name) for name in names}
    payload = statement_bytes(subjects, predicate)
    envelope = json.dumps(sign_envelope(payload, private_key), indent=2) + "\n"
    try:
        (directory / REPORT_NAME).write_bytes(payload)
        (directory / ENVELOPE_NAME).write_text(envelope, encoding="utf-8")
    except OSError as exc:
        raise SynthdataError(f"cannot write the signed report into {directory}: {exc.strerror}") from None


# --- Verification ------------------------------------------------------------------------


def verify_release(directory: Path | str, public_key_path: Path | str) -> dict[str, Any]:
    """Check that ``directory`` is exactly the release its signer made; raise VerificationError if not.

    In order: the envelope is well formed and holds one signature, made by the key in
    ``public_key_path``; report.json is the signed payload, byte for byte; the statement is
    ours; every subject is present with its sha256; no other file or folder is there.
    Returns ``{"predicate": the privacy report, "subjects": {name: sha256}, "keyid": ...}``.
    """
    directory, public_key_path = Path(directory), Path(public_key_path)
    public_key = load_public_key(public_key_path)
    if not directory.is_dir():
        where = "is not a folder" if directory.exists() else "does not exist"
        raise VerificationError(f"no release directory: {directory} {where}")
    payload = _verified_payload(directory / ENVELOPE_NAME, public_key, public_key_path)
    _check_report_is_payload(directory / REPORT_NAME, payload)
    predicate, subjects = _parse_statement(payload)
    problem = _unlisted_entry(directory, set(subjects) | {REPORT_NAME, ENVELOPE_NAME})
    if problem is not None:
        raise VerificationError(f"{problem} in {directory}: it is not among report.json's subjects")
    for name, expected in subjects.items():
        path = directory / name
        if not path.exists():
            raise VerificationError(f"{name} is listed in report.json but missing from {directory}")
        if not path.is_file():
            raise VerificationError(f"{name} in {directory} is not a file, though report.json lists it as one")
        actual = sha256_file(path)
        if actual != expected:
            raise VerificationError(f"{name} was altered: its sha256 is {actual}, report.json says {expected}")
    return {"predicate": predicate, "subjects": subjects, "keyid": fingerprint(public_key)}


def summary(verified: Mapping[str, Any]) -> list[str]:
    """One screen about a verified release (what :func:`verify_release` returned), line by line.

    Reads the predicate's keys when present (nested ``{"privacy": {"epsilon": ...}}`` or
    flat ``{"privacy.epsilon": ...}``) and says "not reported" for those absent.
    """
    predicate = verified["predicate"]

    def get(key: str) -> str:
        return _show(_lookup(predicate, key))

    return [
        f"  signed by   {verified['keyid']}",
        f"  files       {len(verified['subjects'])} released files, each matching its sha256 in report.json",
        f"  privacy     epsilon spent {get('privacy.epsilon_spent')} (target {get('privacy.epsilon')}), "
        f"delta {get('privacy.delta')}",
        f"  leakage     verdict {get('leakage.verdict')}, leak detected: {get('leakage.leak_detected')}",
        f"  quality     SDMetrics score {get('quality.sdmetrics_score')}",
        f"  input       sha256 {get('data.input_sha256')}; training rows {get('data.rows_train')}, "
        f"holdout rows {get('data.rows_holdout')}",
        f"  software    synthdata {get('software.synthdata_version')}",
    ]


# --- Helpers -----------------------------------------------------------------------------


def _verified_payload(envelope_path: Path, public_key: Ed25519PublicKey, public_key_path: Path) -> bytes:
    """The payload of the DSSE envelope at ``envelope_path``, once its one signature verifies."""
    name = envelope_path.name
    if not envelope_path.exists():
        raise VerificationError(f"{envelope_path.parent} has no {name}: the release is not signed")
    try:
        envelope = json.loads(envelope_path.read_bytes())
    except OSError as exc:
        raise VerificationError(f"cannot read {envelope_path}: {exc.strerror}") from None
    except ValueError:  # includes a JSONDecodeError and bytes that are not UTF-8
        raise VerificationError(f"{name} is not valid JSON: it is damaged or not a DSSE envelope") from None
    if not isinstance(envelope, dict):
        raise VerificationError(f"{name} is not a DSSE envelope (a JSON object with payloadType, payload, signatures)")
    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"{name} has payloadType {_clip(payload_type)}, expected {PAYLOAD_TYPE!r}")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        count = len(signatures) if isinstance(signatures, list) else "no list of"
        raise VerificationError(f"{name} holds {count} signatures; a synthdata release has exactly one")
    entry = signatures[0]
    if not (isinstance(entry, dict) and isinstance(entry.get("sig"), str) and isinstance(entry.get("keyid"), str)):
        raise VerificationError(f"{name}'s signature is malformed: it needs a keyid and a sig, both strings")
    payload = _b64decode(envelope.get("payload"), f"{name}'s payload")
    signature = _b64decode(entry["sig"], f"{name}'s signature")
    keyid, claimed = fingerprint(public_key), _clip(entry["keyid"], 100, quote=False)
    try:
        public_key.verify(signature, pae(payload_type, payload))
    except InvalidSignature:
        # The keyid is an unauthenticated hint: it only chooses which message to give.
        if entry["keyid"] != keyid:
            raise VerificationError(f"{name} is signed by another key (keyid {claimed}), "
                                    f"not by {public_key_path} ({keyid})") from None
        raise VerificationError(f"the signature in {name} does not verify with {public_key_path}: "
                                "the envelope was altered") from None
    if entry["keyid"] != keyid:
        raise VerificationError(f"{name} names keyid {claimed}, not {public_key_path}'s ({keyid}), although "
                                "its signature verifies: the envelope was edited")
    return payload


def _check_report_is_payload(report_path: Path, payload: bytes) -> None:
    if not report_path.exists():
        raise VerificationError(f"{report_path.parent} has no {report_path.name}, the signed report")
    try:
        report = report_path.read_bytes()
    except OSError as exc:
        raise VerificationError(f"cannot read {report_path}: {exc.strerror}") from None
    if report != payload:
        offset = next((i for i, (a, b) in enumerate(zip(report, payload)) if a != b), min(len(report), len(payload)))
        raise VerificationError(f"{report_path.name} differs from the payload signed in {ENVELOPE_NAME} "
                                f"(first difference at byte {offset}): {report_path.name} was altered")


def _parse_statement(payload: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """(predicate, {subject name: sha256}) of the signed statement, each part checked."""
    try:
        statement = json.loads(payload)
    except ValueError:
        raise VerificationError(f"{REPORT_NAME} is not valid JSON, though it is signed") from None
    if not isinstance(statement, dict):
        raise VerificationError(f"{REPORT_NAME} is not an in-toto Statement (a JSON object)")
    for field, expected in (("_type", STATEMENT_TYPE), ("predicateType", PREDICATE_TYPE)):
        if statement.get(field) != expected:
            raise VerificationError(f"{REPORT_NAME} has {field} {_clip(statement.get(field))}, expected {expected!r}")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise VerificationError(f"{REPORT_NAME} has no predicate object (the privacy report)")
    entries = statement.get("subject")
    if not isinstance(entries, list) or not entries:
        raise VerificationError(f"{REPORT_NAME} lists no subjects (the released files)")
    subjects: dict[str, str] = {}
    for number, entry in enumerate(entries, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        digest = entry.get("digest") if isinstance(entry, dict) else None
        sha256 = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(name, str) or not _is_sha256_hex(sha256):
            raise VerificationError(f"{REPORT_NAME}'s subject #{number} is malformed: it needs a name and a "
                                    "digest.sha256 of 64 hex digits")
        if not _is_plain_name(name):
            raise VerificationError(f"{REPORT_NAME} lists subject {_clip(name)}, which is not a plain relative "
                                    "file name (no '..', no absolute path); refusing it")
        if name in (REPORT_NAME, ENVELOPE_NAME):
            raise VerificationError(f"{REPORT_NAME} lists {name} among its subjects; that name is the report's own")
        if name in subjects:
            raise VerificationError(f"{REPORT_NAME} lists subject {name} twice")
        subjects[name] = sha256
    return predicate, subjects


def _unlisted_entry(directory: Path, allowed: set[str]) -> str | None:
    """The first entry of ``directory`` (recursively) that ``allowed`` does not name, described; else None.

    Folders are allowed only as parents of allowed files; links are never allowed, since
    what they point at can change after signing.
    """
    folders = {str(parent) for name in allowed for parent in PurePosixPath(name).parents if str(parent) != "."}
    for root, dirnames, filenames in os.walk(directory):
        base = PurePosixPath(Path(root).relative_to(directory).as_posix())
        dirnames.sort()
        for name in dirnames:
            relative = str(base / name)
            if (Path(root) / name).is_symlink():
                return f"a symbolic link {relative}"
            if relative not in folders:
                return f"unlisted folder {relative}"
        for name in sorted(filenames):
            relative = str(base / name)
            if (Path(root) / name).is_symlink():
                return f"a symbolic link {relative}"
            if relative not in allowed:
                return f"unlisted file {relative}"
    return None


def _is_plain_name(name: object) -> bool:
    """A relative path of plain parts separated by '/': no '..', '.', empty part, drive or backslash."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        return False
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _is_sha256_hex(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _b64decode(text: object, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not: DSSE verifiers must accept both."""
    if not isinstance(text, str):
        raise VerificationError(f"{what} is missing or not a string")
    normal = text.translate(str.maketrans("-_", "+/"))
    try:
        return base64.b64decode(normal + "=" * (-len(normal) % 4), validate=True)
    except ValueError:  # binascii.Error, and non-ASCII text
        raise VerificationError(f"{what} is not valid base64") from None


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > _MAX_KEY_FILE:
            raise SynthdataError(f"{path} is too large to be a {what}; give the PEM file that keygen wrote")
        return path.read_bytes()
    except FileNotFoundError:
        raise SynthdataError(f"no {what} at {path}; make a key pair with `synthdata keygen --out DIR`") from None
    except IsADirectoryError:
        raise SynthdataError(f"{path} is a folder; give the {what} file inside it") from None
    except OSError as exc:
        raise SynthdataError(f"cannot read {what} {path}: {exc.strerror}") from None


def _create_exclusive(path: Path, data: bytes, *, mode: int) -> None:
    """Write a new file with ``mode`` from its creation; FileExistsError if anything is at ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _exists_error(path: Path) -> SynthdataError:
    return SynthdataError(f"{path} already exists; refusing to overwrite a key: move it away or choose another folder")


def _not_pem_error(path: Path, what: str) -> SynthdataError:
    return SynthdataError(f"{path} is not a PEM {what}; give the file that `synthdata keygen` wrote")


def _not_ed25519_error(path: Path, key: object) -> SynthdataError:
    kind = type(key).__name__.lstrip("_").replace("PrivateKey", "").replace("PublicKey", "") or "another"
    return SynthdataError(f"{path} holds an {kind} key, not Ed25519; make one with `synthdata keygen`")


def _lookup(mapping: Mapping[str, Any], dotted: str) -> Any:
    """``mapping["a"]["b"]`` for "a.b", or ``mapping["a.b"]``; None when neither is there."""
    node: Any = mapping
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return mapping.get(dotted)
        node = node[part]
    return node


def _show(value: Any) -> str:
    if value is None:
        return "not reported"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return _clip(value, quote=False)


def _clip(value: object, width: int = 80, *, quote: bool = True) -> str:
    """A value from an untrusted file, printable and short enough for a one-line message."""
    text = repr(value) if quote or not isinstance(value, str) or not value.isprintable() else value
    return text if len(text) <= width else text[: width - 3] + "..."
