"""Email channel: SMTP through aiosmtplib, plain text with an HTML alternative."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from services.notifier.channels.base import Notification
from services.notifier.channels.templates import Templates
from services.notifier.outcome import DeliveryOutcome


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to submit mail."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    implicit_tls: bool = False
    timeout: float = 10.0
    tls_context: ssl.SSLContext | None = None


def message_id(key: str, domain: str) -> str:
    """The Message-ID of a notification: one per idempotency key, so a resent duplicate is recognisable."""
    return f"<{key}@{domain}>"


def smtp_outcome(exc: aiosmtplib.SMTPException) -> DeliveryOutcome:
    """Classify an SMTP failure: 4xx replies and lost connections are transient, 5xx replies final.

    `status_code` carries the SMTP reply code.
    """
    code: int | None = None
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        code = max(codes) if codes else None
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        code = exc.code
    error = f"{type(exc).__name__}: {exc}"
    if code is not None:
        return DeliveryOutcome(False, 400 <= code < 500, status_code=code, error=error)
    # No reply code: refused, reset or timed out connections are worth retrying; an unsupported
    # extension (STARTTLS, AUTH) is a configuration error that will not go away.
    return DeliveryOutcome(False, not isinstance(exc, aiosmtplib.SMTPNotSupported), error=error)


class EmailChannel:
    """Sends one email per notification; the address is the recipient's mailbox."""

    name = "email"

    def __init__(self, settings: SmtpSettings, templates: Templates) -> None:
        self._settings = settings
        self._templates = templates
        self._domain = Address(addr_spec=settings.sender).domain or "escalation.invalid"

    def message(self, address: str, note: Notification) -> EmailMessage:
        """Build the email; equal notifications give equal messages (Date is the step's instant)."""
        content = self._templates.email(note)
        msg = EmailMessage()
        msg["From"] = self._settings.sender
        msg["To"] = address
        msg["Subject"] = content.subject
        msg["Date"] = format_datetime(note.occurred_at)
        msg["Message-ID"] = message_id(note.idempotency_key, self._domain)
        if note.incident_id is not None:
            # Mail clients thread every page of one incident together.
            thread = f"<incident-{note.incident_id}@{self._domain}>"
            msg["In-Reply-To"] = thread
            msg["References"] = thread
        msg["X-Escalation-Idempotency-Key"] = note.idempotency_key
        msg["X-Escalation-Incident-Key"] = " ".join(note.incident_key.split())
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(content.text)
        msg.add_alternative(content.html, subtype="html")
        return msg

    async def send(self, address: str, note: Notification) -> DeliveryOutcome:
        """Submit once; 250 is delivered (to the relay), transient 4xx retryable, 5xx final."""
        s = self._settings
        try:
            message = self.message(address, note)
        except ValueError as exc:  # an address with a line break, say: no retry will mend it
            return DeliveryOutcome(False, False, error=f"invalid message: {exc}")
        try:
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                start_tls=s.starttls,
                use_tls=s.implicit_tls,
                timeout=s.timeout,
                tls_context=s.tls_context,
            )
        except aiosmtplib.SMTPException as exc:
            return smtp_outcome(exc)
        except OSError as exc:
            return DeliveryOutcome(False, True, error=f"{type(exc).__name__}: {exc}")
        return DeliveryOutcome(True, False, status_code=250)
