"""Examiners' signing keys: Ed25519 key pairs, their fingerprints and signatures (Qt-free, no I/O
beyond the key files themselves).

Each examiner has one key pair in their own profile (workstation.identity). The private key signs
the hash of every audit event the examiner writes; the public key is registered in the gallery by
an administrator, in an audited act whose event carries it, so that `audit verify` can rebuild the
registered keys from the chain alone and check every signature.

Ed25519 (RFC 8032): 32-byte public keys, 64-byte deterministic signatures, about 20,000
signatures per second on one core of this machine (benchmarks/signing_cost.py), and no parameters
to get wrong. The `cryptography` package (OpenSSL) implements it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from workstation.errors import KeyFileError

PUBLIC_KEY_PREFIX = "ed25519:"


def fingerprint(public_raw: bytes) -> str:
    """The key's fingerprint: SHA-256 of the 32 raw public-key bytes, in hex (64 characters).

    Shown shortened (`short_fingerprint`) to people, compared in full by the program.
    """
    return hashlib.sha256(public_raw).hexdigest()


def short_fingerprint(value: str) -> str:
    """The first 16 hex digits in groups of four, for people to read aloud and compare."""
    head = value[:16]
    return ":".join(head[i : i + 4] for i in range(0, 16, 4))


def encode_public_key(public_raw: bytes) -> str:
    """The text form of a public key: 'ed25519:' and the 32 bytes in base64 (one line)."""
    return PUBLIC_KEY_PREFIX + base64.b64encode(public_raw).decode("ascii")


def decode_public_key(text: str) -> bytes:
    """The 32 raw bytes of a public key given as text ('ed25519:...' or a PEM block)."""
    text = (text or "").strip()
    if text.startswith(PUBLIC_KEY_PREFIX):
        try:
            raw = base64.b64decode(text[len(PUBLIC_KEY_PREFIX) :], validate=True)
        except ValueError as exc:
            raise KeyFileError(f"not a public key ({exc})") from None
    elif text.startswith("-----BEGIN PUBLIC KEY-----"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except ValueError as exc:
            raise KeyFileError(f"not a public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError("the public key is not an Ed25519 key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raise KeyFileError(
            "not a public key: expected a line starting 'ed25519:' (what `workstation examiners "
            "key` prints) or a PEM public key"
        )
    if len(raw) != 32:
        raise KeyFileError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return raw


def verify_signature(public_raw: bytes, message: bytes, signature_hex: str) -> bool:
    """True when `signature_hex` is the signature of `message` by the key `public_raw`."""
    try:
        signature = bytes.fromhex(signature_hex or "")
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    """An examiner's private key, loaded (see workstation.identity for where it lives)."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_text(self) -> str:
        return encode_public_key(self.public_raw)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_raw)

    def sign(self, message: bytes) -> str:
        """The signature of `message`, in hex (128 characters)."""
        return self.private.sign(message).hex()

    def private_pem(self, passphrase: str | None) -> bytes:
        """The private key as PKCS#8 PEM, encrypted with the passphrase when one is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
            if passphrase
            else serialization.NoEncryption()
        )
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @classmethod
    def from_pem(cls, data: bytes, passphrase: str | None, source: str) -> SigningKey:
        """Load a private key file's content; `source` names the file in errors."""
        try:
            key = serialization.load_pem_private_key(
                data, password=passphrase.encode("utf-8") if passphrase else None
            )
        except TypeError:
            if passphrase:
                raise KeyFileError(
                    f"{source}: this key has no passphrase; none is needed"
                ) from None
            raise KeyFileError(
                f"{source}: this key is protected by a passphrase; give it (the "
                "WORKSTATION_KEY_PASSPHRASE environment variable, or the app's dialog)"
            ) from None
        except ValueError as exc:
            if passphrase:
                raise KeyFileError(f"{source}: wrong passphrase, or a damaged key file") from exc
            raise KeyFileError(f"{source}: not a usable private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{source}: not an Ed25519 key")
        return cls(key)
