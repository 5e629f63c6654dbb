"""A real SMTP server for tests (aiosmtpd) that records what it accepts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from tests.support import free_port


@dataclass(frozen=True)
class Mail:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: bytes | None


@dataclass
class Mailbox:
    """aiosmtpd handler: `busy@` recipients get 451 (transient), `nobody@` 550 (permanent)."""

    mails: list[Mail] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("busy@"):
            return "451 4.3.0 Mailbox busy, try again later"
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message, login))
        return "250 Message accepted for delivery"


def _authenticate(server: SMTP, session: Session, envelope: SmtpEnvelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"notifier", b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


@asynccontextmanager
async def smtp_server() -> AsyncIterator[tuple[Mailbox, int]]:
    """Serve on a free loopback port; yields the mailbox and the port."""
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    port = free_port()
    server = await loop.create_server(
        lambda: SMTP(mailbox, hostname="mx.test", authenticator=_authenticate, auth_require_tls=False),
        "127.0.0.1",
        port,
    )
    try:
        yield mailbox, port
    finally:
        server.close()
        await server.wait_closed()
