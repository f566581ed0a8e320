"""The evidence signing key (Ed25519): from DRONEFLEET_EVIDENCE_KEY, else a key kept in the var directory.

DRONEFLEET_EVIDENCE_KEY holds the private key as base64 of the raw 32-byte seed, or as PEM (PKCS#8). Without
it, the controller generates a key once and keeps it in `var/evidence-signing-key.pem` (mode 0600): `make run`
(--dev) prints its public half with the development tokens. A production controller should be given its key,
so that whoever verifies an export can pin the public key in advance.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

ENV = "DRONEFLEET_EVIDENCE_KEY"
KEY_FILE = "evidence-signing-key.pem"


class EvidenceKeyError(ValueError):
    """The configured key cannot be read."""


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint people can compare: SHA-256 of the raw public key, first 16 hex digits."""
    return hashlib.sha256(public_raw(key)).hexdigest()[:16]


def parse_private(text: str | bytes) -> Ed25519PrivateKey:
    data = text.encode() if isinstance(text, str) else text
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise EvidenceKeyError(f"{ENV}: not a readable PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise EvidenceKeyError(f"{ENV}: the PEM key is not an Ed25519 key")
        return key
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceKeyError(f"{ENV}: neither PEM nor base64") from None
    if len(seed) != 32:
        raise EvidenceKeyError(f"{ENV}: base64 decodes to {len(seed)} bytes; an Ed25519 seed is 32")
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_public(data: bytes) -> Ed25519PublicKey:
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
    else:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    #: "env" or the file it was read from / generated into.
    source: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def id(self) -> str:
        return key_id(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def public_pem(self) -> bytes:
        return public_pem(self.public)

    def public_b64(self) -> str:
        return base64.b64encode(public_raw(self.public)).decode()


def resolve_key(var_dir: Path, environ: dict[str, str] | None = None) -> SigningKey:
    env = os.environ if environ is None else environ
    value = env.get(ENV)
    if value:
        return SigningKey(parse_private(value), "env")
    path = var_dir / KEY_FILE
    if path.exists():
        return SigningKey(parse_private(path.read_bytes()), str(path))
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    log.warning("evidence: no %s set; generated a signing key in %s (give production controllers their own)", ENV, path)
    return SigningKey(key, str(path))
