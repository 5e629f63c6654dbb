"""Per-channel Jinja2 message templates: email (text and HTML), Slack, Teams, webhook, PagerDuty, Opsgenie.

Three environments, one per output kind:
- `*.txt.j2`: plain text, no escaping (email subject and body, Opsgenie description);
- `*.html.j2`: HTML, autoescaped, so a summary cannot inject markup;
- `*.json.j2`: JSON, where every `{{ expression }}` is written as a JSON literal (a string is quoted
  and escaped, None becomes null); a template therefore cannot produce broken or injected JSON and
  must not use `tojson` itself. The rendered text is parsed back, so a template error fails loudly.

An operator may override any template by putting a file of the same name in `override_dir`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notifier.channels.base import Notification

TEMPLATE_DIR = Path(__file__).parent / "templates"
PAGERDUTY_DEDUP_KEY_MAX = 255
# The fields of the shipped webhook.json.j2, in its order (its `links` object comes last).
WEBHOOK_FIELDS = (
    "type",
    "event_id",
    "incident_id",
    "incident_key",
    "occurred_at",
    "step_id",
    "level",
    "cycle",
    "service",
    "summary",
    "severity",
    "target",
    "level_name",
    "kind",
    "priority",
    "reason",
    "idempotency_key",
    "sla_state",
)


@dataclass(frozen=True)
class EmailContent:
    """An email's subject and bodies."""

    subject: str
    text: str
    html: str


def _json_literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _slack_escape(value: object) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(value: object) -> str:
    """Collapse whitespace, so a summary cannot add lines to a header or a subject."""
    return " ".join(str(value).split())


def context_of(note: Notification, **extra: Any) -> dict[str, Any]:
    """Return the template variables of a notification: its fields as JSON-ready values, plus `links`."""
    links = [
        {"action": action, "text": text, "url": url}
        for action, text, url in (
            ("acknowledge", "Acknowledge", note.ack_url),
            ("resolve", "Resolve", note.resolve_url),
        )
        if url is not None
    ]
    return {
        "type": note.event_type,
        "event_id": str(note.event_id),
        "incident_id": str(note.incident_id) if note.incident_id else None,
        "incident_key": note.incident_key,
        "occurred_at": note.occurred_at.isoformat(),
        "step_id": str(note.step_id),
        "level": note.level,
        "cycle": note.cycle,
        "service": note.service,
        "summary": note.summary,
        "severity": note.severity.value,
        "target": note.target,
        "level_name": note.level_name,
        "kind": note.kind,
        "priority": note.priority,
        "reason": note.reason,
        "idempotency_key": note.idempotency_key,
        "sla_state": note.sla_state,
        "ack_url": note.ack_url,
        "resolve_url": note.resolve_url,
        "links": links,
        **extra,
    }


def pagerduty_dedup_key(incident_key: str) -> str:
    """The incident key, or its SHA-256 when longer than the 255 characters Events v2 accepts."""
    if len(incident_key) <= PAGERDUTY_DEDUP_KEY_MAX:
        return incident_key
    return "sha256:" + hashlib.sha256(incident_key.encode()).hexdigest()


class Templates:
    """Renders a notification for each channel from its templates."""

    def __init__(self, override_dir: Path | None = None) -> None:
        dirs = [str(override_dir)] if override_dir is not None else []
        loader = FileSystemLoader([*dirs, str(TEMPLATE_DIR)])
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": False,
        }
        self._text = Environment(autoescape=False, **common)  # noqa: S701 - plain text, never HTML
        self._html = Environment(autoescape=select_autoescape(default=True), **common)
        self._json = Environment(autoescape=False, finalize=_json_literal, **common)  # noqa: S701 - JSON, see module doc
        for env in (self._text, self._html, self._json):
            env.filters["slack"] = _slack_escape
            env.filters["one_line"] = _one_line
        self._webhook_overridden = override_dir is not None and (override_dir / "webhook.json.j2").exists()

    def text(self, name: str, context: dict[str, Any]) -> str:
        """Render a plain-text template."""
        return self._text.get_template(name).render(context)

    def html(self, name: str, context: dict[str, Any]) -> str:
        """Render an autoescaped HTML template."""
        return self._html.get_template(name).render(context)

    def json(self, name: str, context: dict[str, Any]) -> dict[str, Any]:
        """Render a JSON template and return the object it describes."""
        rendered = self._json.get_template(name).render(context)
        try:
            value = json.loads(rendered)
        except json.JSONDecodeError as exc:
            raise ValueError(f"template {name} did not render JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError(f"template {name} rendered {type(value).__name__}, not a JSON object")
        return value

    def email(self, note: Notification) -> EmailContent:
        """Subject (one line), plain-text body and HTML body of the email."""
        context = context_of(note)
        return EmailContent(
            subject=_one_line(self.text("email_subject.txt.j2", context)),
            text=self.text("email_body.txt.j2", context),
            html=self.html("email_body.html.j2", context),
        )

    def webhook(self, note: Notification) -> dict[str, Any]:
        """The generic webhook's JSON: the fields of `delivery.webhook_body`, plus `links` and `sla_state`.

        Unless an operator overrides `webhook.json.j2`, the object is built directly (the same
        object the shipped template renders; a test compares them): rendering and parsing it back
        was a tenth of the notifier's CPU per delivery.
        """
        context = context_of(note)
        if not self._webhook_overridden:
            return {name: context[name] for name in WEBHOOK_FIELDS} | {
                "links": {"acknowledge": context["ack_url"], "resolve": context["resolve_url"]}
            }
        return self.json("webhook.json.j2", context)

    def slack(self, note: Notification) -> dict[str, Any]:
        """A Slack incoming-webhook message: Block Kit blocks with a `text` fallback."""
        return self.json("slack.json.j2", context_of(note))

    def teams(self, note: Notification) -> dict[str, Any]:
        """A Teams incoming-webhook (or Workflows) message carrying an Adaptive Card."""
        return self.json("teams.json.j2", context_of(note))

    def pagerduty(self, note: Notification, routing_key: str) -> dict[str, Any]:
        """A PagerDuty Events v2 `trigger` event, deduplicated on the incident key."""
        context = context_of(note, routing_key=routing_key, dedup_key=pagerduty_dedup_key(note.incident_key))
        return self.json("pagerduty.json.j2", context)

    def opsgenie(self, note: Notification, responder: str | None) -> dict[str, Any]:
        """An Opsgenie Alert API create-alert request, aliased to the incident key."""
        context = context_of(note, responder=responder or None)
        context["description"] = self.text("opsgenie_description.txt.j2", context)
        return self.json("opsgenie.json.j2", context)
