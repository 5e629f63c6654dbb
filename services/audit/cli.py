"""`escalation audit`: run the service, or verify, export and report on the history."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.reports import GroupBy, incident_facts, summarize
from services.audit.signing import (
    SigningKeyError,
    key_id,
    load_private_key,
    load_public_key,
    new_private_key_text,
    public_key_text,
)
from services.audit.verify import PackError, Report, pack_lines, verify_items, verify_pack

audit_app = typer.Typer(
    help="Run the audit service (no subcommand), or verify, export and report on the history.",
    invoke_without_command=True,
)
T = TypeVar("T")

DatabaseOption = Annotated[str | None, typer.Option("--database-url", help="PostgreSQL DSN; default $DATABASE_URL.")]
KeyOption = Annotated[
    str | None,
    typer.Option("--public-key", help="Ed25519 public key (base64 or PEM) that signed the checkpoints."),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@audit_app.callback()
def audit(ctx: typer.Context) -> None:
    """Without a subcommand: run the audit service (every topic into PostgreSQL, auditor API)."""
    if ctx.invoked_subcommand is not None:
        return
    from services.audit.app import create_app
    from services.cli import serve
    from shared.logging import configure_logging
    from shared.settings import AuditSettings

    settings = AuditSettings()
    configure_logging("audit", settings.log_level)
    try:
        application = create_app(settings)
    except SigningKeyError as exc:
        _fail(f"AUDIT_SIGNING_KEY: {exc}")
    serve(application, settings.audit_port)


def _settings_key(public_key: str | None) -> Ed25519PublicKey | None:
    """The key to check signatures with: the one given, else the configured signing key's."""
    from shared.settings import AuditSettings

    try:
        if public_key:
            return load_public_key(public_key)
        secret = AuditSettings().audit_signing_key
        return load_private_key(secret.get_secret_value()).public_key() if secret else None
    except SigningKeyError as exc:
        _fail(f"{'--public-key' if public_key else 'AUDIT_SIGNING_KEY'}: {exc}")


async def _with_store(database_url: str | None, work: Callable[..., Awaitable[T]]) -> T:
    import asyncpg

    from services.audit.store import AuditStore
    from shared.settings import AuditSettings

    url = database_url or AuditSettings().database_url
    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    except (OSError, asyncpg.PostgresError) as exc:
        _fail(f"cannot connect to {url}: {exc}")
    try:
        return await work(AuditStore(pool), pool)
    finally:
        await pool.close()


def _print(report: Report) -> NoReturn:
    typer.echo(report.text())
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("verify")
def verify(
    pack: Annotated[Path | None, typer.Option("--pack", help="Check an evidence pack file offline instead.")] = None,
    public_key: KeyOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Check every chain, head and signed checkpoint; exit 1 naming the first bad row of each chain."""
    key = _settings_key(public_key)
    if pack is not None:
        try:
            _print(verify_pack(pack, key))
        except PackError as exc:
            _fail(str(exc))

    async def run(store: object, _: object) -> Report:
        from services.audit.store import AuditStore

        assert isinstance(store, AuditStore)
        return await verify_items(store.evidence(), key)

    _print(asyncio.run(_with_store(database_url, run)))


@audit_app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="File to write; '-' for standard output.")],
    evidence: Annotated[bool, typer.Option("--evidence", help="An evidence pack (rows, checkpoints, key).")] = False,
    csv_format: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON lines.")] = False,
    public_key: KeyOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write the whole history (JSONL or CSV), or an evidence pack that `verify --pack` checks offline."""
    from services.audit.csv_export import CSV_COLUMNS, csv_line, csv_row

    key = _settings_key(public_key)

    async def run(store: object, _: object) -> int:
        from services.audit.store import AuditStore

        assert isinstance(store, AuditStore)
        count = 0
        handle = sys.stdout.buffer if str(out) == "-" else out.open("wb")
        try:
            if evidence:
                async for line in pack_lines(store.evidence(), key, datetime.now(UTC).isoformat()):
                    handle.write(line)
                    count += 1
                return count - 1
            if csv_format:
                handle.write(csv_line(list(CSV_COLUMNS)))
            async for row in store.export():
                handle.write(csv_line(csv_row(row)) if csv_format else json.dumps(row).encode() + b"\n")
                count += 1
            return count
        finally:
            if handle is not sys.stdout.buffer:
                handle.close()

    written = asyncio.run(_with_store(database_url, run))
    typer.echo(f"{written} lines written to {out}", err=True)


@audit_app.command("report")
def report(
    by: Annotated[GroupBy, typer.Option("--by", help="Group by service, team or priority.")] = GroupBy.SERVICE,
    since: Annotated[datetime | None, typer.Option(help="Incidents opened from (UTC when no zone).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Incidents opened before (UTC when no zone).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Incidents, MTTA, MTTR, escalations per level, SLA compliance and who acknowledged."""
    end = (until or datetime.now(UTC)).replace(tzinfo=(until.tzinfo if until and until.tzinfo else UTC))
    start = (since or end - timedelta(days=30)).replace(tzinfo=(since.tzinfo if since and since.tzinfo else UTC))
    if start >= end:
        _fail("--since must be before --until")

    async def run(_: object, pool: object) -> list[dict[str, object]]:
        import asyncpg

        assert isinstance(pool, asyncpg.Pool)
        return [line.as_dict() for line in summarize(await incident_facts(pool, start, end), by)]

    lines = asyncio.run(_with_store(database_url, run))
    if as_json:
        typer.echo(json.dumps({"by": by.value, "since": start.isoformat(), "until": end.isoformat(), "lines": lines}))
        return
    typer.echo(f"{by.value:<24} {'incidents':>9} {'acked':>6} {'MTTA s':>8} {'MTTR s':>8} {'SLA ok':>7}  levels")
    for line in lines:
        mtta, mttr, sla = line["mtta_seconds"], line["mttr_seconds"], line["sla_compliance"]
        typer.echo(
            f"{line['group']!s:<24} {line['incidents']!s:>9} {line['acknowledged']!s:>6} "
            f"{'-' if mtta is None else f'{mtta:.0f}':>8} {'-' if mttr is None else f'{mttr:.0f}':>8} "
            f"{'-' if sla is None else f'{sla:.0%}':>7}  {line['escalations_by_level']}"
        )


@audit_app.command("keygen")
def keygen() -> None:
    """Make an Ed25519 key pair for checkpoint signatures: the private key for AUDIT_SIGNING_KEY."""
    private = new_private_key_text()
    public = load_private_key(private).public_key()
    typer.echo(f"AUDIT_SIGNING_KEY={private}")
    typer.echo(f"# public key (give auditors this one): {public_key_text(public)}  key id {key_id(public)}")
