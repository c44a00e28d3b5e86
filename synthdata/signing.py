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
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import SynthdataError, VerificationError
from .files import atomic_write, load_json, open_regular_file, printable, read_regular_file, sha256_file

__all__ = [
    "CONFIG_DIR_ENV",
    "ENVELOPE_NAME",
    "PASSPHRASE_ENV",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "PREDICATE_TYPES",
    "STEWARD_PREDICATE_TYPE",
    "verify_steward_audit",
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
PREDICATE_TYPE = "https://synthdata.dev/attestation/privacy-report/v2"
#: The steward's exact audit: signed like a release, kept outside the shareable directory.
STEWARD_PREDICATE_TYPE = "https://synthdata.dev/attestation/steward-audit/v1"
PREDICATE_TYPES = (PREDICATE_TYPE, STEWARD_PREDICATE_TYPE)
PAYLOAD_TYPE = "application/vnd.in-toto+json"
REPORT_NAME = "report.json"
ENVELOPE_NAME = "report.dsse.json"

_MAX_KEY_FILE = 64 * 1024  # a PEM key is a few hundred bytes: anything larger is the wrong file
#: Largest report.json verify reads (checked before reading); a real one is far smaller.
MAX_REPORT_BYTES = 32 * 1024 * 1024
#: Largest report.dsse.json: the report in base64 and a signature.
MAX_ENVELOPE_BYTES = MAX_REPORT_BYTES * 4 // 3 + 64 * 1024
#: Deepest nesting verify accepts in the envelope and the statement.
MAX_JSON_DEPTH = 64
#: The fields of a DSSE envelope and of its signature entry; anything else is unsigned and refused.
_ENVELOPE_FIELDS = frozenset({"payloadType", "payload", "signatures"})
_SIGNATURE_FIELDS = frozenset({"keyid", "sig"})


# --- Keys --------------------------------------------------------------------------------
#
# Key files are held to ssh's rules: a private key must be a regular file (never a link),
# owned by the user (or root), with no permission for group or others; its folder must
# not be writable by group or others, who could otherwise replace the key. A public key
# is the verifier's own input: it may be a link, but must lead to a small regular file.


def generate_keypair(out_dir: Path | str, *, passphrase: str | None = None) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair into ``out_dir``; return (private key path, public key path).

    ``signing_key.pem`` is PKCS8 PEM, encrypted when a passphrase is given, and is created
    with mode 0600 (never readable by others, not even for a moment); ``signing_key.pub.pem``
    is SubjectPublicKeyInfo PEM. Each is written whole or not at all, and an existing key
    is never overwritten. ``out_dir`` is created with mode 0700; an existing folder that
    group or others may write to is refused (they could replace the key).
    """
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise _exists_error(path)
    if passphrase is not None and not passphrase:
        raise SynthdataError("the passphrase is empty; give a non-empty passphrase, or none for an unencrypted key")
    if out_dir.exists() and not out_dir.is_dir():
        raise SynthdataError(f"cannot write keys into {printable(out_dir)}: it is a file, not a folder")
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthdataError(f"cannot create the key folder {printable(out_dir)}: {exc.strerror}; "
                             "check the folder above it is writable") from None
    _check_key_folder(out_dir)
    encryption = (serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase is not None
                  else serialization.NoEncryption())
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    try:
        atomic_write(private_path, private_pem, mode=0o600, overwrite=False)
        try:
            atomic_write(public_path, public_key_pem(key.public_key()), mode=0o644, overwrite=False)
        except BaseException:
            private_path.unlink()  # half a key pair is worse than none
            raise
    except FileExistsError as exc:
        raise _exists_error(Path(exc.filename)) from None
    return private_path, public_path


def load_private_key(path: Path | str, passphrase: str | None = None) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path``, decrypted with ``passphrase`` if it is encrypted.

    Refused, like ssh refuses them: a link, a file others may read or write (fix with
    ``chmod 600``), a file of another user, a folder others may write to.
    """
    path = Path(path)
    data, info = _read_key_file(path, "private key", follow_symlinks=False)
    if b"-----BEGIN PUBLIC KEY-----" in data:
        raise SynthdataError(f"{printable(path)} is a public key; signing needs the private key ({PRIVATE_KEY_NAME})")
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
    if encrypted and passphrase is None:
        raise SynthdataError(f"{printable(path)} is encrypted; set {PASSPHRASE_ENV} to its passphrase")
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode("utf-8") if encrypted else None)
    except ValueError:
        if encrypted:
            raise SynthdataError(f"cannot decrypt {printable(path)}: wrong passphrase (or the file is damaged)") \
                from None
        raise _not_pem_error(path, "private key") from None
    except TypeError:  # an encrypted key in a format whose header we did not recognise
        raise SynthdataError(f"{printable(path)} is encrypted in a format synthdata does not read; "
                             "make a key with `synthdata keygen`") from None
    except UnsupportedAlgorithm:
        raise _not_pem_error(path, "private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise _not_ed25519_error(path, key)
    _check_private_key_file(path, info)  # once it is known to be a key: other files get the plainer message
    return key


def load_public_key(path: Path | str, *, error: type[SynthdataError] = SynthdataError) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM file ``path`` (SubjectPublicKeyInfo, as keygen writes it).

    A link is followed (the key is the verifier's own input), but only to a regular file
    of at most 64 KiB: a FIFO or a device is refused without reading it.
    """
    path = Path(path)
    data, _ = _read_key_file(path, "public key", follow_symlinks=True, error=error)
    if b"PRIVATE KEY-----" in data:
        raise error(f"{printable(path)} holds a private key; give the public key ({PUBLIC_KEY_NAME}) "
                    "and keep the private key secret")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise _not_pem_error(path, "public key", error) from None
    if not isinstance(key, Ed25519PublicKey):
        raise _not_ed25519_error(path, key, error)
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
    unencrypted with mode 0600, on first use. If the user replaced it with an encrypted
    key, ``passphrase`` (default: $SYNTHDATA_KEY_PASSPHRASE) decrypts it.
    """
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
    directory = Path(config_dir) if config_dir is not None else user_config_dir()
    private_path, public_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME
    created = not os.path.lexists(private_path)
    if created:
        generate_keypair(directory)
    key = load_private_key(private_path, passphrase)
    if not os.path.lexists(public_path):  # deleted by hand: it is derived from the private key
        try:
            atomic_write(public_path, public_key_pem(key.public_key()), mode=0o644, overwrite=False)
        except FileExistsError:
            pass  # another process wrote it meanwhile; checked below
    if fingerprint(load_public_key(public_path)) != fingerprint(key.public_key()):
        raise SynthdataError(f"{printable(public_path)} is not the public half of {printable(private_path)}; "
                             "delete it and synthdata writes the right one")
    return key, public_path, created


# --- in-toto Statement -------------------------------------------------------------------


def statement_bytes(subjects: Mapping[str, str], predicate: Mapping[str, Any], *,
                    predicate_type: str = PREDICATE_TYPE) -> bytes:
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
        "predicateType": predicate_type,
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
                 private_key: Ed25519PrivateKey, *, predicate_type: str = PREDICATE_TYPE) -> None:
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
    subjects = {name: sha256_file(directory / name, follow_symlinks=False) for name in names}
    payload = statement_bytes(subjects, predicate, predicate_type=predicate_type)
    envelope = json.dumps(sign_envelope(payload, private_key), indent=2) + "\n"
    atomic_write(directory / REPORT_NAME, payload)
    atomic_write(directory / ENVELOPE_NAME, envelope)


# --- Verification ------------------------------------------------------------------------


def verify_release(directory: Path | str, public_key_path: Path | str) -> dict[str, Any]:
    """Check that ``directory`` is exactly the release its signer made; raise VerificationError if not.

    In order: the envelope is well formed and holds one signature, made by the key in
    ``public_key_path``; report.json is the signed payload, byte for byte; the statement is
    ours; every subject is present with its sha256; no other file or folder is there.
    Returns ``{"predicate": the privacy report, "subjects": {name: sha256}, "keyid": ...}``.

    Nothing in ``directory`` is trusted before the signature: report.dsse.json and
    report.json must be regular files (not links, FIFOs or devices) under a size cap,
    checked before reading; their JSON must have no duplicate key and limited depth; the
    envelope may hold only the fields DSSE defines (an unsigned extra field is refused).
    """
    directory, public_key_path = Path(directory), Path(public_key_path)
    public_key = load_public_key(public_key_path)
    if not directory.is_dir():
        where = "is not a folder" if directory.exists() else "does not exist"
        raise VerificationError(f"no release directory: {printable(directory)} {where}")
    payload = _verified_payload(directory / ENVELOPE_NAME, public_key, public_key_path)
    _check_report_is_payload(directory / REPORT_NAME, payload)
    predicate, subjects, predicate_type = _parse_statement(payload)
    problem = _unlisted_entry(directory, set(subjects) | {REPORT_NAME, ENVELOPE_NAME})
    if problem is not None:
        raise VerificationError(f"{problem} in {printable(directory)}: it is not among report.json's subjects")
    for name, expected in subjects.items():
        path, shown = directory / name, printable(name)
        if not os.path.lexists(path):
            raise VerificationError(f"{shown} is listed in report.json but missing from {printable(directory)}")
        if not stat.S_ISREG(path.lstat().st_mode):
            raise VerificationError(f"{shown} in {printable(directory)} is not a file, though report.json lists "
                                    "it as one")
        actual = sha256_file(path, what="released file", follow_symlinks=False, error=VerificationError)
        if actual != expected:
            raise VerificationError(f"{shown} was altered: its sha256 is {actual}, report.json says {expected}")
    return {"predicate": predicate, "subjects": subjects, "keyid": fingerprint(public_key),
            "predicate_type": predicate_type}


#: Suffix of the steward's audit folder beside a release (see synthdata.release).
STEWARD_SUFFIX = ".steward-audit"


def verify_steward_audit(release_dir: Path | str, public_key_path: Path | str) -> dict[str, Any] | None:
    """Verify the steward's audit kept beside a verified release, if it is there; None if not.

    It must be signed by the same key, be a steward's audit, and be bound to this
    release: its ``release.report_sha256`` is the sha256 of the release's report.json.
    """
    release_dir = Path(release_dir)
    steward = release_dir.with_name(release_dir.name + STEWARD_SUFFIX)
    if not os.path.lexists(steward):
        return None
    verified = verify_release(steward, public_key_path)
    if verified["predicate_type"] != STEWARD_PREDICATE_TYPE:
        raise VerificationError(f"{printable(steward)} is not a steward's audit (its predicateType is "
                                f"{_clip(verified['predicate_type'])})")
    bound = _lookup(verified["predicate"], "release.report_sha256")
    actual = sha256_file(release_dir / REPORT_NAME, what="report", follow_symlinks=False, error=VerificationError)
    if bound != actual:
        raise VerificationError(f"{printable(steward)} was made for another release: it names report.json sha256 "
                                f"{_clip(bound)}, this release's is {actual}")
    return verified


def summary(verified: Mapping[str, Any]) -> list[str]:
    """One screen about a verified release (what :func:`verify_release` returned), line by line.

    Reads the predicate's keys when present (nested ``{"privacy": {"epsilon": ...}}`` or
    flat ``{"privacy.epsilon": ...}``) and says "not reported" for those absent. Every
    value is shown through :func:`~synthdata.files.printable`.
    """
    predicate = verified["predicate"]

    def get(key: str) -> str:
        return _show(_lookup(predicate, key))

    if verified.get("predicate_type") == STEWARD_PREDICATE_TYPE:
        return [
            f"  signed by   {verified['keyid']}",
            f"  document    {get('label')}",
            f"  release     {get('release.directory')} (its report.json sha256 {get('release.report_sha256')})",
            f"  privacy     epsilon spent {get('privacy.epsilon_spent')} (target {get('privacy.epsilon')})",
            f"  software    synthdata {get('software.synthdata_version')}",
        ]
    return [
        f"  signed by   {verified['keyid']}",
        f"  files       {len(verified['subjects'])} released files, each matching its sha256 in report.json",
        f"  privacy     epsilon spent {get('privacy.epsilon_spent')} (target {get('privacy.epsilon')}), "
        f"delta {get('privacy.delta')}; unit: {get('privacy.unit')}",
        f"  leakage     {get('audit.verdict')}",
        f"  data        {get('data.input_name')}: about {get('data.rows_train_dp')} training rows (a DP count); "
        f"{get('data.rows_synthetic')} synthetic",
        f"  software    synthdata {get('software.synthdata_version')}",
    ]


# --- Helpers -----------------------------------------------------------------------------


def _verified_payload(envelope_path: Path, public_key: Ed25519PublicKey, public_key_path: Path) -> bytes:
    """The payload of the DSSE envelope at ``envelope_path``, once its one signature verifies."""
    name = envelope_path.name
    if not os.path.lexists(envelope_path):
        raise VerificationError(f"{printable(envelope_path.parent)} has no {name}: the release is not signed")
    data = read_regular_file(envelope_path, max_bytes=MAX_ENVELOPE_BYTES, what=f"signed envelope {name}",
                             error=VerificationError)
    try:
        envelope = load_json(data, what=name, max_depth=MAX_JSON_DEPTH, error=VerificationError)
    except VerificationError as exc:
        raise VerificationError(f"{name} is not valid JSON ({exc.reason}): it is damaged or not a DSSE "
                                "envelope") from None
    if not isinstance(envelope, dict):
        raise VerificationError(f"{name} is not a DSSE envelope (a JSON object with payloadType, payload, signatures)")
    # DSSE signs only payloadType and payload: any other field would travel unsigned, and
    # a reader could take it for part of the release. Refuse it rather than ignore it.
    extra = sorted(set(envelope) - _ENVELOPE_FIELDS)
    if extra:
        raise VerificationError(f"{name} has a field {_clip(extra[0])} that DSSE does not define and no signature "
                                "covers; refusing the envelope")
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
    extra = sorted(set(entry) - _SIGNATURE_FIELDS)
    if extra:
        raise VerificationError(f"{name}'s signature has a field {_clip(extra[0])} that DSSE does not define; "
                                "refusing the envelope")
    payload = _b64decode(envelope.get("payload"), f"{name}'s payload")
    signature = _b64decode(entry["sig"], f"{name}'s signature")
    keyid, claimed = fingerprint(public_key), _clip(entry["keyid"], 100, quote=False)
    shown_key = printable(public_key_path)
    try:
        public_key.verify(signature, pae(payload_type, payload))
    except InvalidSignature:
        # The keyid is an unauthenticated hint: it only chooses which message to give.
        if entry["keyid"] != keyid:
            raise VerificationError(f"{name} is signed by another key (keyid {claimed}), "
                                    f"not by {shown_key} ({keyid})") from None
        raise VerificationError(f"the signature in {name} does not verify with {shown_key}: "
                                "the envelope was altered") from None
    if entry["keyid"] != keyid:
        raise VerificationError(f"{name} names keyid {claimed}, not {shown_key}'s ({keyid}), although "
                                "its signature verifies: the envelope was edited")
    return payload


def _check_report_is_payload(report_path: Path, payload: bytes) -> None:
    if not os.path.lexists(report_path):
        raise VerificationError(f"{printable(report_path.parent)} has no {report_path.name}, the signed report")
    report = read_regular_file(report_path, max_bytes=MAX_REPORT_BYTES, what=f"signed report {report_path.name}",
                               error=VerificationError)
    if report != payload:
        offset = next((i for i, (a, b) in enumerate(zip(report, payload)) if a != b), min(len(report), len(payload)))
        raise VerificationError(f"{report_path.name} differs from the payload signed in {ENVELOPE_NAME} "
                                f"(first difference at byte {offset}): {report_path.name} was altered")


def _parse_statement(payload: bytes) -> tuple[dict[str, Any], dict[str, str], str]:
    """(predicate, {subject name: sha256}, predicate type) of the signed statement, each part checked."""
    if len(payload) > MAX_REPORT_BYTES:
        raise VerificationError(f"the signed {REPORT_NAME} is larger than {MAX_REPORT_BYTES} bytes; refusing it")
    try:
        statement = load_json(payload, what=REPORT_NAME, max_depth=MAX_JSON_DEPTH, error=VerificationError)
    except VerificationError as exc:
        raise VerificationError(f"{REPORT_NAME} is not valid JSON ({exc.reason}), though it is signed") from None
    if not isinstance(statement, dict):
        raise VerificationError(f"{REPORT_NAME} is not an in-toto Statement (a JSON object)")
    if statement.get("_type") != STATEMENT_TYPE:
        raise VerificationError(f"{REPORT_NAME} has _type {_clip(statement.get('_type'))}, expected {STATEMENT_TYPE!r}")
    if statement.get("predicateType") not in PREDICATE_TYPES:
        raise VerificationError(f"{REPORT_NAME} has predicateType {_clip(statement.get('predicateType'))}, expected "
                                f"{PREDICATE_TYPE!r} (a release) or {STEWARD_PREDICATE_TYPE!r} (a steward's audit)")
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
            raise VerificationError(f"{REPORT_NAME} lists subject {_clip(name)} twice")
        subjects[name] = sha256
    return predicate, subjects, statement["predicateType"]


def _unlisted_entry(directory: Path, allowed: set[str]) -> str | None:
    """The first entry of ``directory`` (recursively) that ``allowed`` does not name, described; else None.

    Folders are allowed only as parents of allowed files; links are never allowed, since
    what they point at can change after signing. Names are shown escaped: a file name
    may carry terminal escapes.
    """
    folders = {str(parent) for name in allowed for parent in PurePosixPath(name).parents if str(parent) != "."}

    def unreadable(exc: OSError) -> None:  # os.walk would skip a folder it cannot list, and what it holds
        raise VerificationError(f"cannot list {printable(exc.filename)}: {exc.strerror}; every folder of a "
                                "release must be readable to check that nothing was added")

    for root, dirnames, filenames in os.walk(directory, onerror=unreadable):
        base = PurePosixPath(Path(root).relative_to(directory).as_posix())
        dirnames.sort()
        for name in dirnames:
            relative = str(base / name)
            if (Path(root) / name).is_symlink():
                return f"a symbolic link {printable(relative)}"
            if relative not in folders:
                return f"unlisted folder {printable(relative)}"
        for name in sorted(filenames):
            relative = str(base / name)
            if (Path(root) / name).is_symlink():
                return f"a symbolic link {printable(relative)}"
            if relative not in allowed:
                return f"unlisted file {printable(relative)}"
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


def _read_key_file(path: Path, what: str, *, follow_symlinks: bool,
                   error: type[SynthdataError] = SynthdataError) -> tuple[bytes, os.stat_result]:
    """The bytes of a key file and its stat, read only if it is a small regular file."""
    if not os.path.lexists(path):
        raise error(f"no {what} at {printable(path)}; make a key pair with `synthdata keygen --out DIR`")
    with open_regular_file(path, what=what, max_bytes=_MAX_KEY_FILE, follow_symlinks=follow_symlinks,
                           error=error) as file:
        info = os.fstat(file.fileno())
        try:
            data = file.read(_MAX_KEY_FILE + 1)
        except OSError as exc:
            raise error(f"cannot read the {what} {printable(path)}: {exc.strerror}") from None
    if len(data) > _MAX_KEY_FILE:
        raise error(f"{printable(path)} is too large to be a {what}; give the PEM file that keygen wrote")
    return data, info


def _check_private_key_file(path: Path, info: os.stat_result) -> None:
    """ssh's rules for a private key file (POSIX only): the user's own, private, in a folder others cannot write."""
    if os.name != "posix":
        return
    if info.st_uid not in (os.geteuid(), 0):
        raise SynthdataError(f"{printable(path)} belongs to another user (uid {info.st_uid}); use a private key "
                             "file of your own")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise SynthdataError(f"{printable(path)} is accessible by group or others (mode {mode:04o}); a private key "
                             f"must be private: run `chmod 600 {printable(path)}`")
    _check_key_folder(path.parent)


def _check_key_folder(folder: Path) -> None:
    """Refuse a key folder that group or others may write to (they could replace the key), or another user's."""
    if os.name != "posix":
        return
    try:
        info = os.stat(folder)
    except OSError as exc:
        raise SynthdataError(f"cannot check the key folder {printable(folder)}: {exc.strerror}") from None
    if info.st_uid not in (os.geteuid(), 0):
        raise SynthdataError(f"the key folder {printable(folder)} belongs to another user (uid {info.st_uid}), "
                             "who could replace the key; keep keys in a folder of your own")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        who = "everyone" if mode & 0o002 else "its group"
        raise SynthdataError(f"the key folder {printable(folder)} is writable by {who} (mode {mode:04o}), who could "
                             f"replace the key; run `chmod go-w {printable(folder)}` or choose a private folder")


def _exists_error(path: Path) -> SynthdataError:
    return SynthdataError(f"{printable(path)} already exists; refusing to overwrite a key: move it away or choose "
                          "another folder")


def _not_pem_error(path: Path, what: str, error: type[SynthdataError] = SynthdataError) -> SynthdataError:
    return error(f"{printable(path)} is not a PEM {what}; give the file that `synthdata keygen` wrote")


def _not_ed25519_error(path: Path, key: object, error: type[SynthdataError] = SynthdataError) -> SynthdataError:
    kind = type(key).__name__.lstrip("_").replace("PrivateKey", "").replace("PublicKey", "") or "another"
    return error(f"{printable(path)} holds an {kind} key, not Ed25519; make one with `synthdata keygen`")


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
    text = repr(printable(value)) if quote or not isinstance(value, str) else printable(value)
    return text if len(text) <= width else text[: width - 3] + "..."
