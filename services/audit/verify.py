"""`escalation audit verify`: check the chains, the recorded heads and the signed checkpoints.

Input is a stream of tagged items, the same from PostgreSQL (`AuditStore.evidence`) and from an
evidence pack file: optional `header`, then `checkpoint`s, then `heads`, then `row`s chain by chain.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.chain import ChainChecker
from services.audit.signing import (
    Checkpoint,
    SigningKeyError,
    check_checkpoints,
    first_problems,
    key_id,
    load_public_key,
    public_key_text,
    wanted_rows,
)

PACK_FORMAT = "escalation-evidence-pack"


class PackError(ValueError):
    """An evidence pack that cannot be read, with the file and line at fault."""


@dataclass
class Report:
    """What verification found."""

    rows: int = 0
    chains: int = 0
    checkpoints: int = 0
    key: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.problems

    def text(self) -> str:
        """Human-readable summary; problems first."""
        lines = [f"FAIL: {p}" for p in self.problems]
        lines += [f"note: {n}" for n in self.notes]
        verdict = "OK" if self.ok else "TAMPERED"
        key = f", key {self.key}" if self.key else ""
        lines.append(f"{verdict}: {self.rows} rows in {self.chains} chains, {self.checkpoints} checkpoints{key}")
        return "\n".join(lines)


class Verifier:
    """Consumes tagged items one by one and reports at the end."""

    def __init__(self, public_key: Ed25519PublicKey | None) -> None:
        self.public_key = public_key
        self.checkpoints: list[Checkpoint] = []
        self.heads: dict[str, Any] | None = None
        self.checker: ChainChecker | None = None
        self.pack_key: str | None = None

    def feed(self, item: dict[str, Any]) -> None:
        """Take one item."""
        kind = item.get("kind")
        if kind == "header":
            self.pack_key = item.get("public_key")
        elif kind == "checkpoint":
            self.checkpoints.append(Checkpoint(str(item["body"]).encode(), str(item["signature"])))
        elif kind == "heads":
            self.heads = dict(item["chains"])
        elif kind == "row":
            if self.checker is None:
                self.checker = ChainChecker(wanted_rows(self.checkpoints))
            self.checker.feed(item)
        else:
            raise PackError(f"unknown item kind {kind!r}")

    def report(self) -> Report:
        """Check what was fed: chains, heads, checkpoints."""
        checker = self.checker or ChainChecker(wanted_rows(self.checkpoints))
        report = Report(rows=checker.rows, chains=len(checker.chains), checkpoints=len(self.checkpoints))
        report.problems += [str(p) for p in first_problems(checker)]
        for chain, head in sorted((self.heads or {}).items()):
            if chain in checker.problems:
                continue
            have = checker.chains.get(chain)
            seq = have.seq if have else 0
            if seq != int(head["seq"]) or (have is not None and have.hash != head["hash"]):
                report.problems.append(
                    f"chain {chain}: ends at row {seq} but its recorded head is row {head['seq']} "
                    "(rows were removed from or added to its end)"
                )
        for chain in sorted(set(checker.chains) - set(self.heads or {})):
            if self.heads is not None and chain not in checker.problems:
                report.problems.append(f"chain {chain}: has rows but no recorded head (rows were added)")
        key = self.public_key
        if key is None and self.pack_key:
            key = load_public_key(self.pack_key)
            report.notes.append("public key taken from the pack itself; pass --public-key to pin the one you trust")
        if key is None and self.checkpoints:
            report.notes.append("no public key given: checkpoint signatures not checked")
        if not self.checkpoints:
            report.notes.append("no signed checkpoints: a rewrite of whole chains would not be detected")
        report.key = key_id(key) if key is not None else None
        report.problems += check_checkpoints(self.checkpoints, key, checker)
        return report


async def verify_items(items: AsyncIterable[dict[str, Any]], public_key: Ed25519PublicKey | None) -> Report:
    """Verify a stream of tagged items (PostgreSQL)."""
    verifier = Verifier(public_key)
    async for item in items:
        verifier.feed(item)
    return verifier.report()


def read_pack(path: Path) -> Iterator[dict[str, Any]]:
    """Items of an evidence pack file; a bad line raises PackError naming file and line."""
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise PackError(f"{path}:{number}: not JSON: {exc.msg}") from exc
                if not isinstance(item, dict) or "kind" not in item:
                    raise PackError(f"{path}:{number}: an item needs a 'kind'")
                if number == 1 and (item.get("kind") != "header" or item.get("format") != PACK_FORMAT):
                    raise PackError(f"{path}:1: not an evidence pack (expected a {PACK_FORMAT} header)")
                yield item
    except OSError as exc:
        raise PackError(f"{path}: cannot read: {exc.strerror}") from exc


def verify_pack(path: Path, public_key: Ed25519PublicKey | None) -> Report:
    """Verify an evidence pack offline."""
    verifier = Verifier(public_key)
    for number, item in enumerate(read_pack(path), start=1):
        try:
            verifier.feed(item)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PackError | SigningKeyError):
                raise PackError(f"{path}:{number}: {exc}") from exc
            raise PackError(f"{path}:{number}: malformed {item.get('kind')} item: {exc!r}") from exc
    try:
        return verifier.report()
    except SigningKeyError as exc:
        raise PackError(f"{path}:1: {exc}") from exc


async def pack_lines(
    items: AsyncIterable[dict[str, Any]], public_key: Ed25519PublicKey | None, created_at: str
) -> AsyncIterable[bytes]:
    """An evidence pack: a header naming the format and the public key, then the items, one JSON per line."""
    header = {
        "kind": "header",
        "format": PACK_FORMAT,
        "version": 1,
        "created_at": created_at,
        "public_key": public_key_text(public_key) if public_key is not None else None,
        "key_id": key_id(public_key) if public_key is not None else None,
        "hash": "sha256(prev_hash + canonical JSON of the row without its hash); see services/audit/chain.py",
    }
    yield json.dumps(header, separators=(",", ":")).encode() + b"\n"
    async for item in items:
        yield json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
