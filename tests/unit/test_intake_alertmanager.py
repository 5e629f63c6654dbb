"""Alertmanager and Grafana webhook bodies become one trigger or resolve per alert, keyed by fingerprint.

Samples:
- grafana_webhook.json: the "Webhook JSON payload" of
  https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/
  (source: github.com/grafana/grafana, docs/sources/alerting/configure-notifications/manage-contact-points/
  integrations/webhook-notifier.md), verbatim.
- alertmanager_two_firing_one_resolved.json: written to the body documented at
  https://prometheus.io/docs/alerting/latest/configuration/#webhook_config (whose docs give the shape, not
  values), in the form Alertmanager emits (nanosecond instants, Go's zero endsAt while firing, "\\u0026" in
  URLs), with each fingerprint computed as Alertmanager does.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake.formats.alertmanager import (
    DEFAULT_SEVERITY,
    SEVERITY_BY_LABEL,
    AlertmanagerWebhook,
    label_fingerprint,
    to_commands,
)
from services.intake.formats.common import FormatError, ParsedCommand
from shared import events as ev

SAMPLES = Path(__file__).parent / "samples"
SERVICE = "checkout-api"
SETTINGS = settings(max_examples=300, deadline=None, database=None)
S = ev.Severity


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def _commands(body: Any) -> list[ParsedCommand]:
    return to_commands(AlertmanagerWebhook.model_validate(body), SERVICE)


def _body(*alerts: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "alerts": list(alerts), **members}


def _firing(labels: dict[str, Any] | None, **members: Any) -> dict[str, Any]:
    return {"status": "firing", "labels": labels, **members}


def _trigger(alert: dict[str, Any], **members: Any) -> ev.Trigger:
    payload = _commands(_body(alert, **members))[0].payload
    assert isinstance(payload, ev.Trigger)
    return payload


def test_two_firing_and_one_resolved_alert_become_two_triggers_and_one_resolve() -> None:
    am = "http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"  # "\u0026" decoded
    assert _commands(_sample("alertmanager_two_firing_one_resolved.json")) == [
        ParsedCommand(
            ev.TRIGGER,
            ev.Trigger(
                service=SERVICE,
                dedup_key="153f2adceeadff0b",
                summary="Instance db1.prod.example.com:9100 down",
                severity=S.CRITICAL,
                priority="P1",
                source="db1.prod.example.com:9100",
                event_class="InstanceDown",
                timestamp=datetime(2024, 5, 14, 7, 31, 17, 802305, tzinfo=UTC),  # nanoseconds cut to micro
                custom_details={
                    "labels": {
                        "alertname": "InstanceDown",
                        "instance": "db1.prod.example.com:9100",
                        "job": "node",
                        "priority": "P1",
                        "severity": "critical",
                    },
                    "annotations": {
                        "description": "db1.prod.example.com:9100 of job node has been down for more than 5 minutes.",
                        "runbook_url": "https://runbooks.example.com/InstanceDown",
                        "summary": "Instance db1.prod.example.com:9100 down",
                    },
                },
                links=[
                    ev.Link(href=am, text="Source"),
                    ev.Link(href="https://runbooks.example.com/InstanceDown", text="Runbook"),
                ],
                client="Alertmanager",
                client_url="http://alertmanager.example.com:9093",
                integration="alertmanager",
            ),
            "153f2adceeadff0b",
        ),
        ParsedCommand(
            ev.TRIGGER,
            ev.Trigger(
                service=SERVICE,
                dedup_key="167bc5d108dcef67",
                summary="db2.prod.example.com:9100 of job node has been down for more than 5 minutes.",  # description
                severity=S.WARNING,
                priority=None,  # "urgent" is not P1..P5
                source="db2.prod.example.com:9100",
                event_class="InstanceDown",
                timestamp=datetime(2024, 5, 14, 7, 31, 32, 802305, tzinfo=timezone(timedelta(hours=2))),
                custom_details={
                    "labels": {
                        "alertname": "InstanceDown",
                        "instance": "db2.prod.example.com:9100",
                        "job": "node",
                        "priority": "urgent",
                        "severity": "warning",
                    },
                    "annotations": {
                        "description": "db2.prod.example.com:9100 of job node has been down for more than 5 minutes."
                    },
                },
                links=[ev.Link(href=am, text="Source")],
                client="Alertmanager",
                client_url="http://alertmanager.example.com:9093",
                integration="alertmanager",
            ),
            "167bc5d108dcef67",
        ),
        ParsedCommand(ev.RESOLVE, ev.Resolve(service=SERVICE, dedup_key="d764682f2cdf2826"), "d764682f2cdf2826"),
    ]


def test_the_documented_grafana_body_becomes_two_grafana_triggers() -> None:
    def silence(name: str, zone: str) -> str:
        return (
            "https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
            f"&matchers=alertname%3D{name}%2Cteam%3Dblue%2Czone%3D{zone}"
        )

    def trigger(fingerprint: str, name: str, zone: str, rule: str, minute: int, silence_url: str) -> ev.Trigger:
        annotations = {
            "description": f"The system has high {name.split()[1].lower() if 'CPU' not in name else 'CPU'} usage",
            "runbook_url": "https://myrunbook.com/runbook/1234",
            "summary": f"This alert was triggered for zone {zone}",
        }
        return ev.Trigger(
            service=SERVICE,
            dedup_key=fingerprint,
            summary=f"This alert was triggered for zone {zone}",
            severity=S.ERROR,  # no severity label
            source=None,  # neither instance nor job
            event_class=name,
            timestamp=datetime(2021, 10, 12, 9, minute, 3, 157076, tzinfo=timezone(timedelta(hours=2))),
            custom_details={"labels": {"alertname": name, "team": "blue", "zone": zone}, "annotations": annotations},
            links=[  # dashboardURL and panelURL are "": left out
                ev.Link(href=f"https://play.grafana.org/alerting/{rule}/edit", text="Source"),
                ev.Link(href="https://myrunbook.com/runbook/1234", text="Runbook"),
                ev.Link(href=silence_url, text="Silence"),
            ],
            client="Grafana",
            client_url="https://play.grafana.org/",
            integration="grafana",
        )

    commands = _commands(_sample("grafana_webhook.json"))
    assert [c.type for c in commands] == [ev.TRIGGER, ev.TRIGGER]
    assert [c.dedup_key for c in commands] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]
    assert commands[0].payload == trigger(
        "c6eadffa33fcdf37", "High memory usage", "us-1", "1afz29v7z", 51, silence("T2", "us-1")
    )
    assert commands[1].payload == trigger(
        "bc97ff14869b13e3", "High CPU usage", "eu-1", "d1rdpdv7k", 56, silence("T1", "eu-1")
    )


def test_grafanas_dashboard_panel_and_image_become_links_and_an_image() -> None:
    alert = _sample("grafana_webhook.json")["alerts"][0] | {
        "dashboardURL": "https://grafana.example.com/d/abc",
        "panelURL": "https://grafana.example.com/d/abc?viewPanel=2",
        "imageURL": "https://images.example.com/panel.png",
    }
    trigger = _trigger(alert)
    assert [(link.text, link.href) for link in trigger.links] == [
        ("Source", "https://play.grafana.org/alerting/1afz29v7z/edit"),
        ("Runbook", "https://myrunbook.com/runbook/1234"),
        ("Dashboard", "https://grafana.example.com/d/abc"),
        ("Panel", "https://grafana.example.com/d/abc?viewPanel=2"),
        ("Silence", alert["silenceURL"]),
    ]
    assert trigger.images == [ev.Image(src="https://images.example.com/panel.png")]
    assert (trigger.client, trigger.integration) == ("Grafana", "grafana")


@pytest.mark.parametrize(
    ("members", "alert_members", "client"),
    [
        ({}, {}, "Alertmanager"),
        ({"orgId": 1}, {}, "Grafana"),
        ({"title": "[FIRING:1]"}, {}, "Grafana"),
        ({"state": "alerting"}, {}, "Grafana"),
        ({"message": "**Firing**"}, {}, "Grafana"),
        ({}, {"values": {"B": 1.5}}, "Grafana"),
        ({}, {"valueString": "[ var='B' value=1.5 ]"}, "Grafana"),
        ({}, {"silenceURL": ""}, "Grafana"),
        ({}, {"imageURL": None}, "Grafana"),
        ({"truncatedAlerts": 0, "groupKey": "{}:{}"}, {"fingerprint": "abc"}, "Alertmanager"),
    ],
)
def test_grafana_is_told_by_members_only_it_sends(
    members: dict[str, Any], alert_members: dict[str, Any], client: str
) -> None:
    trigger = _trigger(_firing({"alertname": "A"}, **alert_members), **members)
    assert trigger.client == client
    assert trigger.integration == client.lower()


# --- dedup keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "fingerprint"),
    [
        # prometheus/common model/signature_test.go: LabelsToSignature vectors (uint64 in decimal there).
        ({}, f"{14695981039346656037:016x}"),
        ({"name": "garland, briggs", "fear": "love is not enough"}, f"{5799056148416392346:016x}"),
        # A resolved alert captured from a real Alertmanager (github.com/liamkelly15-maker/pythonwebhook,
        # docker/alert-manager-webhook/testsuites/testcurl7.sh) with its "fingerprint".
        (
            {
                "alertname": "Deployment",
                "app_kubernetes_io_instance": "eric-oss-common-base",
                "app_kubernetes_io_managed_by": "Helm",
                "app_kubernetes_io_name": "eric-pm-kube-state-metrics",
                "app_kubernetes_io_version": "2.1.0_10",
                "chart": "eric-pm-kube-state-metrics-2.1.0_10",
                "deployment": "eric-log-transformer",
                "instance": "192.168.69.53:8080",
                "job": "eric-pm-kube-state-metrics",
                "kubernetes_name": "eric-pm-kube-state-metrics",
                "kubernetes_namespace": "eric-eo-cm-ci406",
                "namespace": "eric-eo-cm-ci406",
                "severity": "Warning",
            },
            "fbab788ec4c1018b",
        ),
    ],
)
def test_the_label_hash_is_alertmanagers_fingerprint(labels: dict[str, str], fingerprint: str) -> None:
    assert label_fingerprint(labels) == fingerprint


def test_without_fingerprint_an_alert_gets_the_key_alertmanager_would_have_sent() -> None:
    body = _sample("alertmanager_two_firing_one_resolved.json")
    for alert in body["alerts"]:
        del alert["fingerprint"]
    keys = [c.dedup_key for c in _commands(body)]
    assert keys == ["153f2adceeadff0b", "167bc5d108dcef67", "d764682f2cdf2826"]
    assert keys == [label_fingerprint(a["labels"]) for a in body["alerts"]]


def test_an_empty_fingerprint_counts_as_absent() -> None:
    assert _commands(_body(_firing({"alertname": "A"}, fingerprint="")))[0].dedup_key == label_fingerprint(
        {"alertname": "A"}
    )


@pytest.mark.parametrize("labels", [{}, None])
def test_an_alert_with_neither_fingerprint_nor_labels_is_refused_by_index(labels: dict[str, str] | None) -> None:
    body = _body(_firing({"alertname": "A"}), {"status": "resolved", "labels": labels})
    with pytest.raises(FormatError) as err:
        _commands(body)
    assert err.value.field == "alerts.1.labels"
    # With a fingerprint the labels are not needed.
    body["alerts"][1]["fingerprint"] = "f1"
    assert _commands(body)[1] == ParsedCommand(ev.RESOLVE, ev.Resolve(service=SERVICE, dedup_key="f1"), "f1")


# --- fields --------------------------------------------------------------------------------------


def test_the_severity_table() -> None:
    assert {name: severity.value for name, severity in SEVERITY_BY_LABEL.items()} == {
        "critical": "critical",
        "page": "critical",
        "p1": "critical",
        "error": "error",
        "high": "error",
        "major": "error",
        "warning": "warning",
        "warn": "warning",
        "medium": "warning",
        "minor": "warning",
        "info": "info",
        "low": "info",
        "none": "info",
    }
    assert DEFAULT_SEVERITY is S.ERROR


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        *((name, severity) for name, severity in SEVERITY_BY_LABEL.items()),
        ("Critical", S.CRITICAL),
        (" WARN ", S.WARNING),
        ("P1", S.CRITICAL),
        ("Warning", S.WARNING),
        ("fatal", S.ERROR),
        ("p2", S.ERROR),
        ("", S.ERROR),
        (None, S.ERROR),
    ],
)
def test_severity_comes_from_the_severity_label(label: str | None, severity: ev.Severity) -> None:
    labels = {"alertname": "A"} | ({} if label is None else {"severity": label})
    assert _trigger(_firing(labels)).severity is severity


@pytest.mark.parametrize(
    ("label", "priority"),
    [("P1", "P1"), ("P5", "P5"), (" p3 ", "P3"), ("P0", None), ("P6", None), ("high", None), ("", None), (None, None)],
)
def test_priority_comes_from_a_p1_to_p5_priority_label(label: str | None, priority: str | None) -> None:
    labels = {"alertname": "A"} | ({} if label is None else {"priority": label})
    assert _trigger(_firing(labels)).priority == priority


@pytest.mark.parametrize(
    ("labels", "annotations", "summary"),
    [
        ({"alertname": "A"}, {"summary": " Disk full ", "description": "d"}, "Disk full"),
        ({"alertname": "A"}, {"summary": "  ", "description": "Disk 95% full"}, "Disk 95% full"),
        ({"alertname": "A"}, {"runbook_url": "https://r"}, "A"),
        (
            {"alertname": "HighLatency", "job": "api", "instance": 'db"1'},
            {},
            'HighLatency {instance="db\\"1", job="api"}',
        ),
        ({"job": "api"}, {}, '{job="api"}'),
        ({"alertname": "A"}, {"summary": "x" * 2000}, "x" * 1023 + "…"),
    ],
)
def test_summary_is_the_summary_else_the_description_else_name_and_labels(
    labels: dict[str, str], annotations: dict[str, str], summary: str
) -> None:
    assert _trigger(_firing(labels, annotations=annotations)).summary == summary


def test_summary_of_an_alert_known_only_by_fingerprint() -> None:
    assert _trigger({"status": "firing", "fingerprint": "f"}).summary == "Alert without labels"


@pytest.mark.parametrize(
    ("labels", "source"),
    [
        ({"instance": "db1:9100", "job": "node"}, "db1:9100"),
        ({"instance": "", "job": "node"}, "node"),
        ({"job": "node"}, "node"),
        ({"alertname": "A"}, None),
        ({"instance": "i" * 300}, "i" * 254 + "…"),
    ],
)
def test_source_is_the_instance_else_the_job(labels: dict[str, str], source: str | None) -> None:
    assert _trigger(_firing(labels)).source == source


def test_go_zero_start_is_no_timestamp_and_long_urls_are_left_out() -> None:
    long_url = "https://p/" + "q" * 2048
    trigger = _trigger(
        _firing({"alertname": "A"}, startsAt="0001-01-01T00:00:00Z", generatorURL=long_url, imageURL=long_url),
        externalURL=long_url,
    )
    assert trigger.timestamp is None
    assert (trigger.links, trigger.images, trigger.client_url) == ([], [], None)


def test_null_maps_and_unknown_members_are_tolerated() -> None:
    body = _body(
        _firing({"alertname": "A"}, annotations=None, extra={"x": 1}),
        groupLabels=None,
        commonLabels=None,
        commonAnnotations=None,
        newMember=[1, 2],
    )
    assert _trigger(body["alerts"][0]).custom_details == {"labels": {"alertname": "A"}, "annotations": {}}
    assert len(_commands(body)) == 1


def test_an_empty_group_is_no_command() -> None:
    assert _commands(_body()) == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"version": "4"}, ("alerts",)),
        (_body(_firing({"a": "\ud800"})), ("alerts", 0, "labels", "a")),  # json.loads('"\\ud800"') makes one
        (_body(_firing({"a": "b"}, generatorURL="http://\ud800")), ("alerts", 0, "generatorURL")),
        (_body(_firing({"a": "b"}), {"status": "pending", "labels": {"a": "b"}}), ("alerts", 1, "status")),
        (_body({"labels": {"a": "b"}}), ("alerts", 0, "status")),
        (_body(_firing({"severity": 2})), ("alerts", 0, "labels", "severity")),
        (_body(_firing({"a": "b"}, annotations={"summary": ["x"]})), ("alerts", 0, "annotations", "summary")),
        (_body(_firing({"a": "b"}, startsAt="yesterday")), ("alerts", 0, "startsAt")),
        (_body(_firing({"a": "b"}, fingerprint="f" * 256)), ("alerts", 0, "fingerprint")),
        (_body(_firing({"a": "b"}), status="pending"), ("status",)),
        (_body(truncatedAlerts=-1), ("truncatedAlerts",)),
        ([_firing({"a": "b"})], ()),
    ],
)
def test_validation_errors_name_the_field_as_sent(body: Any, loc: tuple[int | str, ...]) -> None:
    with pytest.raises(ValidationError) as err:
        AlertmanagerWebhook.model_validate(body)
    assert err.value.errors()[0]["loc"] == loc


def test_a_lone_surrogate_in_a_key_is_refused_at_the_key() -> None:
    with pytest.raises(ValidationError) as err:
        AlertmanagerWebhook.model_validate(_body(_firing({"a": "b"}, annotations={"\udfff": "x"})))
    loc = err.value.errors()[0]["loc"]
    assert (loc[:3], loc[-1]) == (("alerts", 0, "annotations"), "[key]")  # pydantic shows the key as U+FFFD


def test_the_json_schema_uses_the_wire_names() -> None:
    schema = AlertmanagerWebhook.model_json_schema()
    assert {"groupKey", "commonLabels", "externalURL", "alerts", "orgId"} <= set(schema["properties"])
    assert {"startsAt", "generatorURL", "fingerprint", "imageURL"} <= set(schema["$defs"]["Alert"]["properties"])


# --- properties ----------------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates too: json.loads makes them
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _or_json(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes any JSON at all."""
    return st.integers(0, 19).flatmap(lambda n: json_values if n == 0 else plausible)


label_text = st.text(max_size=12)  # valid Unicode; lone surrogates are refused (see above)
label_names = st.sampled_from(["alertname", "instance", "job", "severity", "priority", "team"]) | label_text
label_sets = st.dictionaries(label_names, label_text | st.sampled_from(["critical", "P2", "warn", ""]), max_size=6)
_urls = st.sampled_from(["", "https://x.example/y", "https://p/" + "q" * 2048]) | any_text
_instants = st.sampled_from(["2024-05-14T07:31:17.802305827Z", "0001-01-01T00:00:00Z", "2024-05-14T07:31:17"])
alerts = st.fixed_dictionaries(
    {
        "status": _or_json(st.sampled_from(["firing", "resolved"])),
        "labels": _or_json(label_sets | st.dictionaries(any_text, any_text, max_size=3)),
    },
    optional={
        "annotations": _or_json(
            st.dictionaries(st.sampled_from(["summary", "description", "runbook_url"]), label_text | any_text)
        ),
        "startsAt": _or_json(_instants | st.datetimes().map(datetime.isoformat)),
        "endsAt": _or_json(_instants),
        "generatorURL": _or_json(_urls),
        "fingerprint": _or_json(st.text(max_size=20)),
        "silenceURL": _or_json(_urls),
        "dashboardURL": _or_json(_urls),
        "panelURL": _or_json(_urls),
        "imageURL": _or_json(_urls),
        "values": _or_json(st.none() | st.dictionaries(st.text(max_size=3), st.floats())),
    },
)
webhooks = st.fixed_dictionaries(
    {"alerts": _or_json(st.lists(alerts, max_size=5))},
    optional={
        "version": _or_json(st.sampled_from(["4", "1"])),
        "status": _or_json(st.sampled_from(["firing", "resolved"])),
        "groupKey": _or_json(any_text),
        "truncatedAlerts": _or_json(st.integers(0, 3)),
        "externalURL": _or_json(_urls),
        "commonLabels": _or_json(label_sets),
        "orgId": _or_json(st.integers(1, 3)),
        "unknown": json_values,
    },
)


def _check_parse(body: Any) -> None:
    try:
        webhook = AlertmanagerWebhook.model_validate(body)
    except ValidationError:
        return
    try:
        commands = to_commands(webhook, SERVICE)
    except FormatError as exc:
        refused: FormatError | None = exc
    else:
        refused = None
    if refused is not None:
        assert re.fullmatch(r"alerts\.\d+\.labels", refused.field)
        return
    assert len(commands) == len(webhook.alerts)
    for command, alert in zip(commands, webhook.alerts, strict=True):
        expected = (ev.TRIGGER, ev.Trigger) if alert.status == "firing" else (ev.RESOLVE, ev.Resolve)
        assert (command.type, type(command.payload)) == expected
        type(command.payload).model_validate(command.payload.model_dump())  # a valid command, not a half-built one
        command.payload.model_dump_json()  # and one the envelope can write
        assert command.dedup_key == (alert.fingerprint or label_fingerprint(alert.labels))


@SETTINGS
@given(json_values)
def test_any_json_is_a_webhook_or_a_validation_error(body: Any) -> None:
    _check_parse(body)


@SETTINGS
@given(webhooks)
def test_any_webhook_shaped_json_is_commands_a_validation_error_or_a_format_error(body: dict[str, Any]) -> None:
    _check_parse(body)


@SETTINGS
@given(label_sets.filter(bool), st.randoms(use_true_random=False))
def test_the_same_labels_in_any_order_get_the_same_key(labels: dict[str, str], rnd: Any) -> None:
    items = list(labels.items())
    rnd.shuffle(items)
    body = _body(_firing(labels), {"status": "resolved", "labels": dict(items)})
    first, second = _commands(body)
    assert first.dedup_key == second.dedup_key == label_fingerprint(labels)


@SETTINGS
@given(st.lists(label_sets.filter(bool), min_size=2, max_size=20, unique_by=lambda d: tuple(sorted(d.items()))))
def test_distinct_label_sets_get_distinct_keys(sets: list[dict[str, str]]) -> None:
    keys = [c.dedup_key for c in _commands(_body(*(_firing(labels) for labels in sets)))]
    assert len(set(keys)) == len(sets)
