"""Prometheus Alertmanager's webhook (version "4") and Grafana alerting's variant of it.

Alertmanager: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
Grafana (same shape, `version` "1", plus orgId, title, state, message and per alert values,
valueString, silenceURL, dashboardURL, panelURL, imageURL):
https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.intake.formats.common import FormatError, ParsedCommand, Text, Timestamp, build, clip
from shared import events as ev

Severity = ev.Severity

# The `severity` label (trimmed, any case) -> our severity. Absent or not in the table: DEFAULT_SEVERITY.
SEVERITY_BY_LABEL: dict[str, ev.Severity] = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "p1": Severity.CRITICAL,
    "error": Severity.ERROR,
    "high": Severity.ERROR,
    "major": Severity.ERROR,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "medium": Severity.WARNING,
    "minor": Severity.WARNING,
    "info": Severity.INFO,
    "low": Severity.INFO,
    "none": Severity.INFO,
}
DEFAULT_SEVERITY = Severity.ERROR

# The optional `priority` label (trimmed, any case) when it is one of these; any other value is ignored.
PRIORITIES = frozenset({"P1", "P2", "P3", "P4", "P5"})

_MAX_URL = 2048  # ev.Link.href / ev.Image.src / ev.Trigger.client_url

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_LABEL_SEPARATOR = b"\xff"  # never part of UTF-8, so name/value boundaries cannot be forged


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


StrMap = Annotated[dict[Text, Text], BeforeValidator(_none_is_empty)]


class _Lenient(BaseModel):
    # Senders add members over the versions (Grafana especially); unknown ones are ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Lenient):
    """One alert of the group: firing or resolved, identified by its labels."""

    status: Literal["firing", "resolved"]
    labels: StrMap = Field(default_factory=dict, examples=[{"alertname": "HighLatency", "severity": "critical"}])
    annotations: StrMap = Field(default_factory=dict, examples=[{"summary": "p99 above 2 s"}])
    starts_at: Timestamp | None = Field(None, alias="startsAt")
    ends_at: Timestamp | None = Field(None, alias="endsAt", description="0001-01-01T00:00:00Z while firing.")
    generator_url: Text | None = Field(None, alias="generatorURL", description="The rule's page at its source.")
    fingerprint: str | None = Field(None, max_length=255, description="Hash of the labels; the dedup key.")
    # Grafana's additions.
    silence_url: Text | None = Field(None, alias="silenceURL")
    dashboard_url: Text | None = Field(None, alias="dashboardURL")
    panel_url: Text | None = Field(None, alias="panelURL")
    image_url: Text | None = Field(None, alias="imageURL", description="Screenshot of the rule's panel.")
    values: dict[str, Any] | None = None
    value_string: str | None = Field(None, alias="valueString")


class AlertmanagerWebhook(_Lenient):
    """The body of one Alertmanager (or Grafana) webhook notification: a group of alerts."""

    version: str | None = Field(None, examples=["4"], description='"4" from Alertmanager, "1" from Grafana.')
    group_key: str | None = Field(None, alias="groupKey")
    truncated_alerts: int | None = Field(None, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"] | None = None
    receiver: str | None = None
    group_labels: StrMap = Field(default_factory=dict, alias="groupLabels")
    common_labels: StrMap = Field(default_factory=dict, alias="commonLabels")
    common_annotations: StrMap = Field(default_factory=dict, alias="commonAnnotations")
    external_url: Text | None = Field(None, alias="externalURL", description="Backlink to the sender.")
    alerts: list[Alert]
    # Grafana's additions.
    org_id: int | None = Field(None, alias="orgId")
    title: str | None = None
    state: str | None = None
    message: str | None = None


_GRAFANA_BODY_FIELDS = frozenset({"org_id", "title", "state", "message"})
_GRAFANA_ALERT_FIELDS = frozenset({"silence_url", "dashboard_url", "panel_url", "image_url", "values", "value_string"})


def is_grafana(body: AlertmanagerWebhook) -> bool:
    """True when the body carries a member only Grafana sends (Alertmanager sends none of them)."""
    return bool(body.model_fields_set & _GRAFANA_BODY_FIELDS) or any(
        a.model_fields_set & _GRAFANA_ALERT_FIELDS for a in body.alerts
    )


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """Prometheus's fingerprint of a label set, as Alertmanager puts it in `fingerprint`.

    FNV-1a 64 over each label sorted by name: name, 0xFF, value, 0xFF; 16 lower-case hex digits
    (prometheus/common model.LabelSet.Fingerprint). Computing the sender's own hash gives an alert
    the same dedup key whether or not the sender included its fingerprint.
    """
    h = _FNV64_OFFSET
    for name in sorted(labels):  # code point order is UTF-8 byte order, as Go sorts
        for part in (name, labels[name]):
            for byte in part.encode("utf-8", "surrogatepass") + _LABEL_SEPARATOR:
                h = ((h ^ byte) * _FNV64_PRIME) & 0xFFFF_FFFF_FFFF_FFFF
    return f"{h:016x}"


def dedup_key_of(alert: Alert) -> str | None:
    """The alert's fingerprint as sent, else the same hash computed from its labels; None without either."""
    if alert.fingerprint:
        return alert.fingerprint
    return label_fingerprint(alert.labels) if alert.labels else None


def severity_of(labels: Mapping[str, str]) -> ev.Severity:
    """Severity from the `severity` label through SEVERITY_BY_LABEL."""
    return SEVERITY_BY_LABEL.get(labels.get("severity", "").strip().lower(), DEFAULT_SEVERITY)


def priority_of(labels: Mapping[str, str]) -> str | None:
    """P1..P5 from the `priority` label, else None."""
    value = labels.get("priority", "").strip().upper()
    return value if value in PRIORITIES else None


def summary_of(alert: Alert) -> str:
    """The summary annotation, else the description, else the alert name and labels; at most 1024 characters."""
    for key in ("summary", "description"):
        text = alert.annotations.get(key, "").strip()
        if text:
            return clip(text, 1024)
    name = alert.labels.get("alertname", "").strip()
    rest = ", ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(alert.labels.items()) if k != "alertname"
    )
    text = " ".join(p for p in (name, f"{{{rest}}}" if rest else "") if p)
    return clip(text or "Alert without labels", 1024)


def _url(value: str | None) -> str | None:
    # An over-long URL would be useless cut; it is left out rather than failing the whole group.
    return value if value and len(value) <= _MAX_URL else None


def _links(alert: Alert) -> list[dict[str, str]]:
    candidates = (
        ("Source", alert.generator_url),
        ("Runbook", alert.annotations.get("runbook_url")),
        ("Dashboard", alert.dashboard_url),
        ("Panel", alert.panel_url),
        ("Silence", alert.silence_url),
    )
    return [{"href": href, "text": text} for text, url in candidates if (href := _url(url))]


def _trigger_fields(alert: Alert, body: AlertmanagerWebhook, grafana: bool) -> dict[str, Any]:
    labels = alert.labels
    source = labels.get("instance") or labels.get("job")
    alertname = labels.get("alertname")
    starts = alert.starts_at if alert.starts_at is not None and alert.starts_at.year > 1 else None  # Go's zero time
    image = _url(alert.image_url)
    return {
        "summary": summary_of(alert),
        "severity": severity_of(labels),
        "priority": priority_of(labels),
        "source": clip(source, 255) if source else None,
        "event_class": clip(alertname, 255) if alertname else None,
        "timestamp": starts,
        "custom_details": {"labels": dict(labels), "annotations": dict(alert.annotations)},
        "links": _links(alert),
        "images": [{"src": image}] if image else [],
        "client": "Grafana" if grafana else "Alertmanager",
        "client_url": _url(body.external_url),
        "integration": "grafana" if grafana else "alertmanager",
    }


def _at(index: int) -> Callable[[str], str]:
    return lambda _: f"alerts.{index}"


def to_commands(body: AlertmanagerWebhook, service: str) -> list[ParsedCommand]:
    """One command per alert, in order: a trigger when firing, a resolve when resolved.

    Keyed by dedup_key_of(alert); FormatError at `alerts.N.labels` for an alert with neither
    fingerprint nor labels (Alertmanager itself refuses alerts without labels).
    """
    grafana = is_grafana(body)
    commands: list[ParsedCommand] = []
    for i, alert in enumerate(body.alerts):
        dedup = dedup_key_of(alert)
        if dedup is None:
            raise FormatError(f"alerts.{i}.labels", "an alert without a fingerprint needs at least one label")
        common = {"service": service, "dedup_key": dedup}
        field_of = _at(i)
        if alert.status == "resolved":
            payload = build(ev.Resolve, {**common, "actor": None}, field_of)
            commands.append(ParsedCommand(ev.RESOLVE, payload, dedup))
        else:
            payload = build(ev.Trigger, {**common, **_trigger_fields(alert, body, grafana)}, field_of)
            commands.append(ParsedCommand(ev.TRIGGER, payload, dedup))
    return commands
