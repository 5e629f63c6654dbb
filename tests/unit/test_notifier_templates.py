"""Message templates: every channel shows the incident, and no summary can break out of its format."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.channels import LinkSigner, Notification, notification_of
from services.notifier.channels.templates import Templates, context_of, pagerduty_dedup_key
from services.notifier.delivery import idempotency_key, webhook_body
from shared import events as ev
from shared.envelope import new_envelope

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LINKS = LinkSigner(b"link-secret", "https://intake.example.com", timedelta(hours=4))
TARGET = ev.Target(type="webhook", name="infrastructure", url="https://hooks.example.com/infra")


def _step(summary: str = "Disk 95% full on db1") -> ev.EscalationStepReached:
    return ev.EscalationStepReached(
        step_id=uuid.UUID("0190f3a2-0000-7000-8000-00000000aaaa"),
        level=2,
        cycle=1,
        level_name="infrastructure",
        kind="hierarchical",
        reason="timeout",
        targets=[TARGET],
        service="checkout-api",
        summary=summary,
        severity=ev.Severity.CRITICAL,
        priority="P1",
    )


INCIDENT = uuid.UUID("0190f3a2-0000-7000-8000-00000000bbbb")


def _note(
    summary: str = "Disk 95% full on db1",
    sla_state: str | None = "acknowledge SLA 80% used",
    links: LinkSigner | None = LINKS,
    incident_id: uuid.UUID | None = INCIDENT,
) -> Notification:
    step = _step(summary)
    env = new_envelope(
        ev.ESCALATION_STEP_REACHED, step, incident_key="checkout-api/db1-disk", occurred_at=AT, incident_id=incident_id
    )
    key = idempotency_key(step.step_id, TARGET, "webhook")
    return notification_of(env, step, TARGET, key, links, sla_state=sla_state)


def _strings(value: Any) -> str:
    """Every string in a JSON value, joined: what a reader of the message can see."""
    if isinstance(value, dict):
        return "\n".join(_strings(v) for v in value.values())
    if isinstance(value, list):
        return "\n".join(_strings(v) for v in value)
    return str(value)


def test_notification_carries_the_step_and_signed_links() -> None:
    note = _note()
    assert (note.level, note.level_name, note.severity, note.priority) == (2, "infrastructure", "critical", "P1")
    # Signed for the target itself: an endpoint has no person behind it.
    assert note.ack_url == LINKS.link("acknowledge", "0190f3a2-0000-7000-8000-00000000bbbb", AT, "infrastructure")
    assert note.resolve_url == LINKS.link("resolve", "0190f3a2-0000-7000-8000-00000000bbbb", AT, "infrastructure")


def test_links_are_signed_for_the_person_paged() -> None:
    step = _step()
    incident = uuid.uuid4()
    env = new_envelope(ev.ESCALATION_STEP_REACHED, step, incident_key="k/k", occurred_at=AT, incident_id=incident)
    team = ev.Target(type="team", id="infrastructure")
    note = notification_of(env, step, team, "key", LINKS, recipient="alice")
    assert note.ack_url == LINKS.link("acknowledge", incident, AT, "alice")
    assert "by=alice" in (note.resolve_url or "")


def test_no_links_without_a_signer() -> None:
    step = _step()
    env = new_envelope(ev.ESCALATION_STEP_REACHED, step, incident_key="k/k", occurred_at=AT, incident_id=uuid.uuid4())
    note = notification_of(env, step, TARGET, "key", None)
    assert note.ack_url is None
    assert note.resolve_url is None
    assert Templates().webhook(note)["links"] == {"acknowledge": None, "resolve": None}
    assert "actions" not in [b["type"] for b in Templates().slack(note)["blocks"]]


def test_webhook_body_keeps_every_field_of_the_current_webhook() -> None:
    step = _step()
    env = new_envelope(ev.ESCALATION_STEP_REACHED, step, incident_key="checkout-api/db1-disk", occurred_at=AT)
    key = idempotency_key(step.step_id, TARGET, "webhook")
    body = Templates().webhook(notification_of(env, step, TARGET, key, LINKS))
    legacy = webhook_body(env, step, TARGET, key)
    assert {k: body[k] for k in legacy} == legacy
    assert set(body) - set(legacy) == {"links", "sla_state"}


@pytest.mark.parametrize("channel", ["email_text", "email_html", "slack", "teams", "pagerduty", "opsgenie"])
def test_every_channel_shows_summary_severity_level_sla_and_links(channel: str) -> None:
    note, templates = _note(), Templates()
    rendered = {
        "email_text": lambda: templates.email(note).text,
        "email_html": lambda: templates.email(note).html.replace("&amp;", "&"),
        "slack": lambda: _strings(templates.slack(note)),
        "teams": lambda: _strings(templates.teams(note)),
        "pagerduty": lambda: _strings(templates.pagerduty(note, "routing")),
        "opsgenie": lambda: _strings(templates.opsgenie(note, "ops")),
    }[channel]()
    assert note.ack_url is not None
    assert note.resolve_url is not None
    for shown in ("Disk 95% full on db1", "critical", "P1", "2", "infrastructure", "checkout-api"):
        assert shown in rendered
    for shown in ("acknowledge SLA 80% used", note.ack_url, note.resolve_url):
        assert shown in rendered


def test_email_subject_is_one_line_with_severity_priority_and_level() -> None:
    subject = Templates().email(_note("Disk full\r\nBcc: victim@example.com")).subject
    assert subject == "[CRITICAL] P1 checkout-api: Disk full Bcc: victim@example.com (level 2 infrastructure)"


def test_email_text_lists_every_field() -> None:
    text = Templates().email(_note()).text
    for line in (
        "Service:   checkout-api",
        "Severity:  critical",
        "Priority:  P1",
        "Level:     2 (infrastructure), hierarchical escalation, cycle 1",
        "Reason:    timeout",
        "SLA:       acknowledge SLA 80% used",
        "Incident:  checkout-api/db1-disk (0190f3a2-0000-7000-8000-00000000bbbb)",
        f"Since:     {AT.isoformat()}",
    ):
        assert line in text.splitlines()


def test_no_sla_line_without_sla_state() -> None:
    note = _note(sla_state=None)
    assert "SLA" not in Templates().email(note).text
    assert note.sla_state is None


def test_html_escapes_a_script_in_the_summary() -> None:
    content = Templates().email(_note('<script>alert("x")</script> & co'))
    assert "<script>" not in content.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co" in content.html
    assert '<script>alert("x")</script> & co' in content.text  # plain text is not HTML: left as is
    assert "&amp;expires=" not in content.text


@pytest.mark.parametrize("channel", ["webhook", "slack", "teams", "pagerduty", "opsgenie"])
def test_json_cannot_be_injected_through_the_summary(channel: str) -> None:
    summary = 'x", "injected": true, "y": "\\" \n {{ 7*7 }}'
    templates, note = Templates(), _note(summary)
    body = {
        "webhook": lambda: templates.webhook(note),
        "slack": lambda: templates.slack(note),
        "teams": lambda: templates.teams(note),
        "pagerduty": lambda: templates.pagerduty(note, "routing"),
        "opsgenie": lambda: templates.opsgenie(note, None),
    }[channel]()
    assert "injected" not in json.dumps(list(_keys(body)))
    assert "{{ 7*7 }}" in _strings(body)  # shown as written, never evaluated
    if channel == "webhook":
        assert body["summary"] == summary


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def test_slack_escapes_mentions_and_links_in_mrkdwn() -> None:
    body = Templates().slack(_note("<!channel> see <https://evil.example|here> & run"))
    assert "<!channel>" not in body["text"]
    assert "&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; run" in body["text"]
    section = body["blocks"][1]
    assert "<!channel>" not in section["text"]["text"]


def test_slack_block_kit_shape() -> None:
    note = _note("x" * 400)
    body = Templates().slack(note)
    header, section, context, actions = body["blocks"]
    assert header["type"] == "header"
    assert len(header["text"]["text"]) == 150  # Block Kit's limit for header text
    assert (section["type"], context["type"], actions["type"]) == ("section", "context", "actions")
    buttons = {e["action_id"]: e["url"] for e in actions["elements"]}
    assert buttons == {"acknowledge": note.ack_url, "resolve": note.resolve_url}


def test_teams_adaptive_card_shape() -> None:
    note = _note()
    body = Templates().teams(note)
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Level"] == "2 infrastructure, hierarchical, cycle 1"
    assert facts["SLA"] == "acknowledge SLA 80% used"
    assert [(a["type"], a["url"]) for a in card["actions"]] == [
        ("Action.OpenUrl", note.ack_url),
        ("Action.OpenUrl", note.resolve_url),
    ]


def test_pagerduty_dedup_key_fits_events_v2() -> None:
    assert pagerduty_dedup_key("svc/key") == "svc/key"
    long = pagerduty_dedup_key("s" * 200 + "/" + "k" * 200)
    assert long.startswith("sha256:")
    assert len(long) <= 255


def test_an_override_directory_replaces_one_template(tmp_path: Path) -> None:
    (tmp_path / "email_subject.txt.j2").write_text("PAGE {{ service }} L{{ level }}")
    templates = Templates(override_dir=tmp_path)
    assert templates.email(_note()).subject == "PAGE checkout-api L2"
    assert templates.slack(_note())["blocks"][0]["type"] == "header"  # others still the defaults


def test_an_override_that_is_not_json_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "slack.json.j2").write_text('{"text": {{ summary }}')
    with pytest.raises(ValueError, match=r"slack\.json\.j2"):
        Templates(override_dir=tmp_path).slack(_note())


@given(
    summary=st.text(max_size=80),
    sla_state=st.none() | st.text(max_size=40),
    with_links=st.booleans(),
    with_incident=st.booleans(),
)
def test_the_webhook_body_built_directly_equals_the_shipped_templates(
    summary: str, sla_state: str | None, with_links: bool, with_incident: bool
) -> None:
    """The default webhook body skips Jinja2 (a tenth of the notifier's CPU); it must be the very
    object the shipped webhook.json.j2 renders, for any summary and with or without links."""
    note = _note(summary, sla_state, LINKS if with_links else None, INCIDENT if with_incident else None)
    templates = Templates()
    built = templates.webhook(note)
    rendered = templates.json("webhook.json.j2", context_of(note))
    assert json.dumps(built) == json.dumps(rendered)  # same keys, same order, same values


def test_an_overridden_webhook_template_is_rendered(tmp_path: Path) -> None:
    (tmp_path / "webhook.json.j2").write_text('{"text": {{ summary }}, "severity": {{ severity }}}')
    assert Templates(tmp_path).webhook(_note()) == {"text": "Disk 95% full on db1", "severity": "critical"}
