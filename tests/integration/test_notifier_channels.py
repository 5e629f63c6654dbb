"""Every notifier channel against a real local receiver: an aiohttp server and an aiosmtpd SMTP server.

No Kafka needed. Each receiver records a request before it answers, so when `send` returns the
request is already there to assert on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

from services.notifier.channels import Channel, LinkSigner, Notification, notification_of
from services.notifier.channels.email import EmailChannel, SmtpSettings, message_id
from services.notifier.channels.http import HttpPoster
from services.notifier.channels.opsgenie import OpsgenieChannel
from services.notifier.channels.pagerduty import PagerDutyChannel
from services.notifier.channels.slack import SlackChannel
from services.notifier.channels.teams import TeamsChannel
from services.notifier.channels.templates import Templates
from services.notifier.channels.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignedWebhookChannel,
    sign,
    verify_signature,
)
from services.notifier.delivery import idempotency_key
from shared import events as ev
from shared.envelope import new_envelope
from tests.integration.smtp_server import Mailbox
from tests.support import free_port

pytestmark = pytest.mark.integration

SECRET = b"webhook-secret"
GENIE_KEY = "genie-key-1"
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"
LINKS = LinkSigner(b"link-secret", "http://127.0.0.1:8081", timedelta(hours=4))
INCIDENT = uuid.UUID("0190f3a2-0000-7000-8000-00000000bbbb")


def _note(target: ev.Target, summary: str = "Disk 95% full on db1", step_id: uuid.UUID | None = None) -> Notification:
    step = ev.EscalationStepReached(
        step_id=step_id or uuid.UUID("0190f3a2-0000-7000-8000-00000000aaaa"),
        level=2,
        cycle=0,
        level_name="infrastructure",
        kind="functional",
        targets=[target],
        service="checkout-api",
        summary=summary,
        severity=ev.Severity.CRITICAL,
        priority="P1",
    )
    env = new_envelope(
        ev.ESCALATION_STEP_REACHED,
        step,
        incident_key="checkout-api/db1-disk",
        occurred_at=datetime.now(UTC),
        incident_id=INCIDENT,
    )
    key = idempotency_key(step.step_id, target, target.type)
    return notification_of(env, step, target, key, LINKS, sla_state="acknowledge SLA 80% used")


# --- a real HTTP receiver --------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request the receiver got, with the exact body bytes (signatures are over bytes)."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Plays a webhook endpoint that checks signatures, Slack, Teams, PagerDuty Events v2 and the
    Opsgenie Alert API; `/status/<code>/...` answers that code."""

    hits: list[Hit] = field(default_factory=list)
    base: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.hits.append(Hit(request.path, dict(request.headers), body))
        parts = request.path.strip("/").split("/")
        if parts[0] == "status":
            return web.Response(status=int(parts[1]))
        if parts[0] == "hook":
            ok = verify_signature(
                SECRET,
                request.headers.get(TIMESTAMP_HEADER, ""),
                body,
                request.headers.get(SIGNATURE_HEADER, ""),
                datetime.now(UTC),
            )
            return web.json_response({"ok": ok}, status=200 if ok else 401)
        if parts[0] == "slack":
            return web.Response(text="ok")
        if parts[0] == "teams":
            return web.Response(status=202)
        if request.path == "/pd/v2/enqueue":
            event = json.loads(body)
            payload = event.get("payload", {})
            if event.get("event_action") != "trigger" or not all(
                payload.get(k) for k in ("summary", "source", "severity")
            ):
                return web.json_response({"status": "invalid event"}, status=400)
            return web.json_response({"status": "success", "dedup_key": event["dedup_key"]}, status=202)
        if request.path == "/og/v2/alerts":
            if request.headers.get("Authorization") != f"GenieKey {GENIE_KEY}":
                return web.json_response({"message": "Key format is not valid!"}, status=422)
            return web.json_response({"result": "Request will be processed"}, status=202)
        return web.Response(status=404)

    def last(self) -> Hit:
        assert self.hits, "the receiver got nothing"
        return self.hits[-1]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    recv.base = f"http://127.0.0.1:{port}"
    try:
        yield recv
    finally:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[HttpPoster]:
    async with HttpPoster(timeout=5.0) as http:
        yield http


# --- a real SMTP server ----------------------------------------------------------------------------


def _email_channel(port: int, **settings: Any) -> EmailChannel:
    return EmailChannel(SmtpSettings("127.0.0.1", port, "escalation@notify.example.com", **settings), Templates())


def _parts_of(link: str) -> tuple[str, str, int, str, str]:
    split = urlsplit(link)
    _, incident, action = split.path.rsplit("/", 2)
    query = parse_qs(split.query)
    return action, incident, int(query["expires"][0]), query["by"][0], query["sig"][0]


# --- generic webhook: signature ----------------------------------------------------------------------


async def test_signed_webhook_verifies_at_the_receiver(receiver: Receiver, client: HttpPoster) -> None:
    target = ev.Target(type="webhook", name="infrastructure", url=f"{receiver.base}/hook/infra")
    note = _note(target)
    outcome = await SignedWebhookChannel(client, Templates(), SECRET).send(f"{receiver.base}/hook/infra", note)
    assert (outcome.delivered, outcome.status_code) == (True, 200)  # the receiver checked the signature
    hit = receiver.last()
    assert hit.headers["Idempotency-Key"] == note.idempotency_key
    assert hit.headers["Content-Type"] == "application/json"
    body = hit.json()
    assert (body["summary"], body["severity"], body["level"]) == ("Disk 95% full on db1", "critical", 2)
    assert body["links"] == {"acknowledge": note.ack_url, "resolve": note.resolve_url}
    timestamp, header = hit.headers[TIMESTAMP_HEADER], hit.headers[SIGNATURE_HEADER]
    now = datetime.fromtimestamp(int(timestamp), UTC)
    assert header == sign(SECRET, int(timestamp), hit.body)
    assert verify_signature(SECRET, timestamp, hit.body, header, now)
    assert not verify_signature(b"wrong-secret", timestamp, hit.body, header, now)
    assert not verify_signature(SECRET, timestamp, hit.body.replace(b"critical", b"info"), header, now)
    assert not verify_signature(SECRET, str(int(timestamp) + 1), hit.body, header, now)  # timestamp is signed
    assert not verify_signature(SECRET, timestamp, hit.body, header.removeprefix("sha256="), now)
    assert not verify_signature(SECRET, timestamp, hit.body, header, now + timedelta(seconds=301))  # stale
    assert verify_signature(SECRET, timestamp, hit.body, header, now + timedelta(seconds=300))
    assert not verify_signature(SECRET, timestamp, hit.body, header, now - timedelta(seconds=301))  # future
    assert not verify_signature(SECRET, "not-a-number", hit.body, header, now)


async def test_receiver_refuses_a_stale_timestamp(receiver: Receiver, client: HttpPoster) -> None:
    url = f"{receiver.base}/hook/infra"
    note = _note(ev.Target(type="webhook", url=url))
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    channel = SignedWebhookChannel(client, Templates(), SECRET, clock=lambda: ten_minutes_ago)
    outcome = await channel.send(url, note)
    assert (outcome.delivered, outcome.retryable, outcome.status_code) == (False, False, 401)


async def test_per_target_secret_overrides_the_global_one(receiver: Receiver, client: HttpPoster) -> None:
    own, shared = f"{receiver.base}/hook/own", f"{receiver.base}/hook/shared"
    channel = SignedWebhookChannel(client, Templates(), SECRET, secrets={own: b"own-secret"})
    refused = await channel.send(own, _note(ev.Target(type="webhook", url=own)))
    hit = receiver.last()
    # The receiver only knows the global secret: it refuses, and the header is signed with the target's.
    assert (refused.delivered, refused.retryable, refused.status_code) == (False, False, 401)
    assert verify_signature(
        b"own-secret", hit.headers[TIMESTAMP_HEADER], hit.body, hit.headers[SIGNATURE_HEADER], datetime.now(UTC)
    )
    accepted = await channel.send(shared, _note(ev.Target(type="webhook", url=shared)))
    assert accepted.delivered


# --- Slack, Teams, PagerDuty, Opsgenie: their formats -------------------------------------------------


async def test_slack_gets_block_kit_with_a_text_fallback(receiver: Receiver, client: HttpPoster) -> None:
    url = f"{receiver.base}/slack/T000/B000/XXXX"
    note = _note(ev.Target(type="slack", url=url), summary="<!channel> db1 disk")
    outcome = await SlackChannel(client, Templates()).send(url, note)
    assert (outcome.delivered, outcome.status_code) == (True, 200)
    hit = receiver.last()
    assert hit.path == "/slack/T000/B000/XXXX"
    body = hit.json()
    assert body["text"] == "[CRITICAL] P1 checkout-api: &lt;!channel&gt; db1 disk (level 2)"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context", "actions"]
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert "*Level*\n2 infrastructure, functional, cycle 0" in fields
    assert "*SLA*\nacknowledge SLA 80% used" in fields
    buttons = body["blocks"][3]["elements"]
    assert [(b["type"], b["action_id"], b["url"]) for b in buttons] == [
        ("button", "acknowledge", note.ack_url),
        ("button", "resolve", note.resolve_url),
    ]


async def test_teams_gets_an_adaptive_card(receiver: Receiver, client: HttpPoster) -> None:
    url = f"{receiver.base}/teams/workflows/abc"
    note = _note(ev.Target(type="msteams", url=url))
    outcome = await TeamsChannel(client, Templates()).send(url, note)
    assert (outcome.delivered, outcome.status_code) == (True, 202)
    body = receiver.last().json()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"] == "Disk 95% full on db1"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert (facts["Severity"], facts["Priority"], facts["SLA"]) == ("critical", "P1", "acknowledge SLA 80% used")
    assert [a["url"] for a in card["actions"]] == [note.ack_url, note.resolve_url]


async def test_pagerduty_gets_an_events_v2_trigger(receiver: Receiver, client: HttpPoster) -> None:
    note = _note(ev.Target(type="webhook", url="http://unused"))
    outcome = await PagerDutyChannel(client, Templates(), f"{receiver.base}/pd/").send(ROUTING_KEY, note)
    assert (outcome.delivered, outcome.status_code) == (True, 202)  # the receiver validated the event
    hit = receiver.last()
    assert hit.path == "/pd/v2/enqueue"
    assert hit.headers["Idempotency-Key"] == note.idempotency_key
    event = hit.json()
    assert (event["routing_key"], event["event_action"], event["dedup_key"]) == (
        ROUTING_KEY,
        "trigger",
        "checkout-api/db1-disk",
    )
    payload = event["payload"]
    assert (payload["summary"], payload["source"], payload["severity"]) == (
        "Disk 95% full on db1",
        "checkout-api",
        "critical",
    )
    assert datetime.fromisoformat(payload["timestamp"]) == note.occurred_at
    assert payload["custom_details"]["level"] == 2
    assert event["links"] == [
        {"href": note.ack_url, "text": "Acknowledge"},
        {"href": note.resolve_url, "text": "Resolve"},
    ]


async def test_opsgenie_gets_an_alert_with_its_key(receiver: Receiver, client: HttpPoster) -> None:
    note = _note(ev.Target(type="team", id="ops"))
    outcome = await OpsgenieChannel(client, Templates(), GENIE_KEY, f"{receiver.base}/og").send("ops", note)
    assert (outcome.delivered, outcome.status_code) == (True, 202)
    hit = receiver.last()
    assert (hit.path, hit.headers["Authorization"]) == ("/og/v2/alerts", f"GenieKey {GENIE_KEY}")
    alert = hit.json()
    assert (alert["message"], alert["alias"], alert["priority"]) == ("P1 Disk 95% full on db1", note.incident_key, "P1")
    assert alert["responders"] == [{"name": "ops", "type": "team"}]
    assert all(isinstance(v, str) for v in alert["details"].values())  # Opsgenie takes string details only
    assert alert["details"]["acknowledge_url"] == note.ack_url
    assert "Level: 2 (infrastructure)" in alert["description"]


async def test_opsgenie_wrong_key_is_final(receiver: Receiver, client: HttpPoster) -> None:
    note = _note(ev.Target(type="team", id="ops"))
    outcome = await OpsgenieChannel(client, Templates(), "wrong", f"{receiver.base}/og").send("", note)
    assert (outcome.delivered, outcome.retryable, outcome.status_code) == (False, False, 422)
    assert receiver.last().json()["responders"] == []


# --- outcomes: retryable or final, for every HTTP channel ----------------------------------------------

HttpChannelFactory = Callable[[HttpPoster, str], tuple[Channel, str]]

HTTP_CHANNELS: dict[str, HttpChannelFactory] = {
    "webhook": lambda c, base: (SignedWebhookChannel(c, Templates(), SECRET), base),
    "slack": lambda c, base: (SlackChannel(c, Templates()), base),
    "teams": lambda c, base: (TeamsChannel(c, Templates()), base),
    "pagerduty": lambda c, base: (PagerDutyChannel(c, Templates(), base), ROUTING_KEY),
    "opsgenie": lambda c, base: (OpsgenieChannel(c, Templates(), GENIE_KEY, base), "ops"),
}


@pytest.mark.parametrize("name", list(HTTP_CHANNELS))
@pytest.mark.parametrize(("code", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)])
async def test_http_status_decides_retry(
    receiver: Receiver, client: HttpPoster, name: str, code: int, retryable: bool
) -> None:
    channel, address = HTTP_CHANNELS[name](client, f"{receiver.base}/status/{code}")
    outcome = await channel.send(address, _note(ev.Target(type="webhook", url="http://unused")))
    assert (outcome.delivered, outcome.retryable, outcome.status_code) == (False, retryable, code)
    assert outcome.error == f"HTTP {code}"
    assert receiver.last().path.startswith(f"/status/{code}")


@pytest.mark.parametrize("name", list(HTTP_CHANNELS))
async def test_connection_refused_is_retryable(client: HttpPoster, name: str) -> None:
    channel, address = HTTP_CHANNELS[name](client, f"http://127.0.0.1:{free_port()}/nobody")
    outcome = await channel.send(address, _note(ev.Target(type="webhook", url="http://unused")))
    assert (outcome.delivered, outcome.retryable, outcome.status_code) == (False, True, None)
    assert outcome.error is not None
    assert "Cannot connect" in outcome.error


# --- email over SMTP ---------------------------------------------------------------------------------


async def test_email_arrives_with_the_incident_and_a_signed_ack_link(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    note = _note(ev.Target(type="email", id="alice@example.com"), summary="Disk <b>95%</b> full on db1")
    outcome = await _email_channel(port).send("alice@example.com", note)
    assert (outcome.delivered, outcome.status_code) == (True, 250)
    (mail,) = mailbox.mails
    assert (mail.mail_from, mail.rcpt_tos) == ("escalation@notify.example.com", ["alice@example.com"])
    msg = mail.message
    assert msg["Subject"] == "[CRITICAL] P1 checkout-api: Disk <b>95%</b> full on db1 (level 2 infrastructure)"
    assert msg["Message-ID"] == f"<{note.idempotency_key}@notify.example.com>"
    assert msg["X-Escalation-Idempotency-Key"] == note.idempotency_key
    assert msg["References"] == f"<incident-{INCIDENT}@notify.example.com>"
    text_part, html_part = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text_part is not None
    assert html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    for shown in ("Disk <b>95%</b> full on db1", "Severity:  critical", "Level:     2 (infrastructure)", "SLA:"):
        assert shown in text
    assert "Disk &lt;b&gt;95%&lt;/b&gt; full on db1" in html
    assert note.ack_url is not None
    assert f"Acknowledge: {note.ack_url}" in text
    action, incident, expires, by, sig = _parts_of(note.ack_url)
    assert (action, incident) == ("acknowledge", str(INCIDENT))
    assert LINKS.verify(action, incident, expires, by, sig, datetime.now(UTC))


async def test_message_id_is_stable_per_idempotency_key(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    channel = _email_channel(port)
    target = ev.Target(type="email", id="alice@example.com")
    first, again = _note(target), _note(target)
    other = _note(target, step_id=uuid.UUID("0190f3a2-0000-7000-8000-00000000cccc"))
    for note in (first, again, other):
        assert (await channel.send("alice@example.com", note)).delivered
    ids = [m.message["Message-ID"] for m in mailbox.mails]
    assert ids[0] == ids[1] == message_id(first.idempotency_key, "notify.example.com")
    assert ids[2] != ids[0]


async def test_email_with_smtp_auth(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    note = _note(ev.Target(type="email", id="alice@example.com"))
    ok = await _email_channel(port, username="notifier", password="s3cret").send("alice@example.com", note)
    assert ok.delivered
    assert mailbox.mails[-1].login == b"notifier"
    refused = await _email_channel(port, username="notifier", password="wrong").send("alice@example.com", note)
    assert (refused.delivered, refused.retryable, refused.status_code) == (False, False, 535)
    assert len(mailbox.mails) == 1


@pytest.mark.parametrize(
    ("recipient", "code", "retryable"), [("busy@example.com", 451, True), ("nobody@example.com", 550, False)]
)
async def test_smtp_reply_code_decides_retry(
    smtp: tuple[Mailbox, int], recipient: str, code: int, retryable: bool
) -> None:
    mailbox, port = smtp
    outcome = await _email_channel(port).send(recipient, _note(ev.Target(type="email", id=recipient)))
    assert (outcome.delivered, outcome.retryable, outcome.status_code) == (False, retryable, code)
    assert mailbox.mails == []


async def test_smtp_connection_refused_is_retryable() -> None:
    outcome = await _email_channel(free_port(), timeout=5.0).send(
        "alice@example.com", _note(ev.Target(type="email", id="alice@example.com"))
    )
    assert (outcome.delivered, outcome.retryable, outcome.status_code) == (False, True, None)


async def test_a_recipient_with_a_line_break_is_final(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    address = "alice@example.com\r\nBcc: mallory@example.com"
    outcome = await _email_channel(port).send(address, _note(ev.Target(type="email", id="alice@example.com")))
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert mailbox.mails == []
