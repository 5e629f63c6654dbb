"""Signed checkpoints of the audit chains (Ed25519): what the chain heads were, and who vouched for it.

A checkpoint's body is canonical JSON `{"created_at", "chains": {chain: {"seq", "hash"}}, "prev",
"key_id"}`: the head of every chain at that moment, the SHA-256 of the previous checkpoint's body
(64 zeros for the first) and the id of the signing key (first 16 hex digits of the SHA-256 of its
raw public key). The signature is Ed25519 over the body's bytes. A superuser who rewrites rows and
recomputes every hash after them still cannot make the heads match a signed checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.audit.chain import GENESIS, ChainChecker, Problem, canonical, timestamp


class SigningKeyError(ValueError):
    """A key in the configuration could not be read."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """Short, stable name of a public key."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as base64 of its 32 raw bytes (what `verify --public-key` takes)."""
    return base64.b64encode(_raw_public(key)).decode()


def load_private_key(text: str) -> Ed25519PrivateKey:
    """Read a private key: base64 of the 32-byte seed, or a PKCS#8 PEM."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise SigningKeyError("the PEM key is not an Ed25519 key")
            return key
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise SigningKeyError(f"not an Ed25519 private key (base64 of 32 bytes or PEM): {exc}") from exc


def load_public_key(text: str) -> Ed25519PublicKey:
    """Read a public key: base64 of its 32 raw bytes, or a PEM."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise SigningKeyError("the PEM key is not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise SigningKeyError(f"not an Ed25519 public key (base64 of 32 bytes or PEM): {exc}") from exc


def new_private_key_text() -> str:
    """A fresh private key as base64 of its seed (for `escalation audit keygen`)."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def body_digest(body: bytes) -> str:
    """SHA-256 of a checkpoint body: the next checkpoint's `prev`."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint as stored: its exact body bytes and the base64 signature."""

    body: bytes
    signature: str

    @property
    def fields(self) -> dict[str, Any]:
        """The parsed body."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


def make_checkpoint(
    key: Ed25519PrivateKey, heads: Mapping[str, tuple[int, str]], prev: Checkpoint | None, now: datetime
) -> Checkpoint:
    """Sign the current chain heads, linked to the previous checkpoint."""
    body = canonical(
        {
            "created_at": timestamp(now),
            "chains": {chain: {"seq": seq, "hash": digest} for chain, (seq, digest) in sorted(heads.items())},
            "prev": body_digest(prev.body) if prev is not None else GENESIS,
            "key_id": key_id(key.public_key()),
        }
    )
    return Checkpoint(body, base64.b64encode(key.sign(body)).decode())


def wanted_rows(checkpoints: list[Checkpoint]) -> dict[str, set[int]]:
    """The (chain, seq) pairs whose hashes the checkpoints vouch for."""
    wanted: dict[str, set[int]] = {}
    for cp in checkpoints:
        for chain, head in cp.fields["chains"].items():
            wanted.setdefault(chain, set()).add(int(head["seq"]))
    return wanted


def check_checkpoints(
    checkpoints: list[Checkpoint], public_key: Ed25519PublicKey | None, checker: ChainChecker
) -> list[str]:
    """Problems with the checkpoints, given rows already fed to `checker`; empty when all hold."""
    problems: list[str] = []
    prev_digest = GENESIS
    for number, cp in enumerate(checkpoints, start=1):
        fields = cp.fields
        name = f"checkpoint {number} ({fields.get('created_at')})"
        if fields.get("prev") != prev_digest:
            problems.append(f"{name}: does not follow the checkpoint before it (one was removed or changed)")
        prev_digest = body_digest(cp.body)
        if public_key is not None:
            try:
                public_key.verify(base64.b64decode(cp.signature), cp.body)
            except (InvalidSignature, ValueError, binascii.Error):
                problems.append(f"{name}: signature does not verify with key {key_id(public_key)}")
                continue
        for chain, head in fields["chains"].items():
            seq = int(head["seq"])
            if chain in checker.problems and checker.problems[chain].chain_seq <= seq:
                continue  # the chain's own first bad row is the finding
            got = checker.hash_at(chain, seq)
            if got is None:
                have = checker.chains[chain].seq if chain in checker.chains else 0
                problems.append(f"{name}: chain {chain} row {seq} is missing (the chain ends at row {have})")
            elif got != head["hash"]:
                problems.append(
                    f"{name}: chain {chain} row {seq} hash differs from the signed one (rows were rewritten)"
                )
    return problems


def first_problems(checker: ChainChecker) -> list[Problem]:
    """Each broken chain's first bad row, chains in name order."""
    return [checker.problems[c] for c in sorted(checker.problems)]
