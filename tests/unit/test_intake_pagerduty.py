"""PagerDuty Events API v2 bodies become trigger, acknowledge and resolve commands.

The samples are PagerDuty's own examples:
- pagerduty_trigger.json, pagerduty_acknowledge.json, pagerduty_resolve.json: "Example Request Payloads" of
  https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ (source: github.com/PagerDuty/developer-docs,
  docs/events-API-v2/02-Trigger-Events.md); the trigger example's leading /* comment */ is dropped, JSON has none.
- pagerduty_trigger_openapi.json: the request example of github.com/PagerDuty/api-schema,
  reference/events-v2/openapiv3.json.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake.formats.common import FormatError, ParsedCommand
from services.intake.formats.pagerduty import MAX_BODY_BYTES, PagerDutyEvent, to_command
from shared import events as ev

SAMPLES = Path(__file__).parent / "samples"
SERVICE = "checkout-api"
SETTINGS = settings(max_examples=300, deadline=None, database=None)


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def _never() -> str:
    raise AssertionError("a dedup key was generated although the event carries one")


def _parse(body: Any) -> ParsedCommand:
    return to_command(PagerDutyEvent.model_validate(body), SERVICE, _never)


def _loc(body: Any) -> tuple[int | str, ...]:
    with pytest.raises(ValidationError) as err:
        PagerDutyEvent.model_validate(body)
    return err.value.errors()[0]["loc"]


def _trigger(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": "k" * 32,
        "event_action": "trigger",
        "payload": {"summary": "disk full", "source": "db1", "severity": "critical"},
    }
    body.update(changes)
    return body


def test_the_documented_trigger_maps_to_a_full_trigger() -> None:
    assert _parse(_sample("pagerduty_trigger.json")) == ParsedCommand(
        ev.TRIGGER,
        ev.Trigger(
            service=SERVICE,
            dedup_key="samplekeyhere",
            summary="Example alert on host1.example.com",
            severity=ev.Severity.INFO,
            source="monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003",
            component="postgres",
            group="prod-datapipe",
            event_class="deploy",
            timestamp=datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC),  # "+0000", no colon, is accepted
            custom_details={"ping time": "1500ms", "load avg": 0.75},
            links=[ev.Link(href="https://example.com/", text="Link text")],
            images=[
                ev.Image(
                    src="https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png",
                    href="https://example.com/",
                    alt="Example text",
                )
            ],
            client="Sample Monitoring Service",
            client_url="https://monitoring.example.com",
            integration="pagerduty",
        ),
        "samplekeyhere",
    )


def test_the_openapi_example_trigger_maps_to_a_full_trigger() -> None:
    command = _parse(_sample("pagerduty_trigger_openapi.json"))
    assert command.type == ev.TRIGGER
    assert command.dedup_key == "srv01/mysql"
    assert command.payload == ev.Trigger(
        service=SERVICE,
        dedup_key="srv01/mysql",
        summary="DISK at 99% on machine prod-datapipe03.example.com",
        severity=ev.Severity.CRITICAL,
        source="prod-datapipe03.example.com",
        component="mysql",
        group="prod-datapipe",
        event_class="disk",
        timestamp=datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC),
        custom_details={"free space": "1%", "ping time": "1500ms", "load avg": 0.75},
        links=[ev.Link(href="http://pagerduty.example.com", text="An example link.")],
        images=[
            ev.Image(
                src="https://chart.googleapis.com/chart?chs=600x400&chd=t:6,2,9,5,2,5,7,4,8,2,1&cht=lc&chds=a&chxt=y&chm=D,0033FF,0,0,5,1",
                href="https://google.com",
                alt="An example link with an image",
            )
        ],
        client="Sample Monitoring Service",
        client_url="https://monitoring.service.com",
        integration="pagerduty",
    )


def test_the_documented_acknowledge_and_resolve_map_to_commands() -> None:
    assert _parse(_sample("pagerduty_acknowledge.json")) == ParsedCommand(
        ev.ACKNOWLEDGE, ev.Acknowledge(service=SERVICE, dedup_key="dedupkeyhere", actor=None), "dedupkeyhere"
    )
    assert _parse(_sample("pagerduty_resolve.json")) == ParsedCommand(
        ev.RESOLVE, ev.Resolve(service=SERVICE, dedup_key="dedupkeyhere", actor=None), "dedupkeyhere"
    )


def test_a_trigger_without_dedup_key_gets_one_generated_once() -> None:
    calls: list[str] = []

    def new_key() -> str:
        calls.append("k")
        return f"generated-{len(calls)}"

    for body in (_trigger(), _trigger(dedup_key=""), _trigger(dedup_key=None)):
        command = to_command(PagerDutyEvent.model_validate(body), SERVICE, new_key)
        assert command.dedup_key == f"generated-{len(calls)}"
        assert isinstance(command.payload, ev.Trigger)
        assert command.payload.dedup_key == command.dedup_key
    assert len(calls) == 3


def test_a_minimal_trigger_has_pagerduty_defaults() -> None:
    trigger = _parse(_trigger(dedup_key="d")).payload
    assert trigger == ev.Trigger(
        service=SERVICE,
        dedup_key="d",
        summary="disk full",
        severity=ev.Severity.CRITICAL,
        source="db1",
        integration="pagerduty",
    )


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
@pytest.mark.parametrize("dedup", [{}, {"dedup_key": None}, {"dedup_key": ""}])
def test_acknowledge_and_resolve_need_a_dedup_key(action: str, dedup: dict[str, Any]) -> None:
    event = PagerDutyEvent.model_validate({"routing_key": "k", "event_action": action, **dedup})
    with pytest.raises(FormatError) as err:
        to_command(event, SERVICE, _never)
    assert err.value.field == "dedup_key"
    assert "required" in err.value.message


def test_acknowledge_and_resolve_ignore_what_only_triggers_use() -> None:
    body = {
        "routing_key": "k",
        "event_action": "resolve",
        "dedup_key": "d",
        "payload": {"summary": ""},  # invalid for a trigger; PagerDuty does not read it here
        "links": [{"text": "no href"}],
        "images": "not a list",
        "client": ["x"],
    }
    assert _parse(body) == ParsedCommand(ev.RESOLVE, ev.Resolve(service=SERVICE, dedup_key="d"), "d")


def test_unknown_members_are_ignored_like_pagerduty_does() -> None:
    body = _trigger(dedup_key="d", severity="critical", payload_version=2)
    body["payload"] = {**body["payload"], "unknown": 1}
    body["links"] = [{"href": "https://x", "type": "link"}]
    assert _parse(body).payload == _parse(_trigger(dedup_key="d", links=[{"href": "https://x"}])).payload


def test_a_timestamp_without_offset_is_utc_and_offsets_are_kept() -> None:
    naive = _trigger(dedup_key="d", payload={**_trigger()["payload"], "timestamp": "2024-02-29T23:59:59"})
    offset = _trigger(dedup_key="d", payload={**_trigger()["payload"], "timestamp": "2024-03-01T01:59:59+02:00"})
    naive_trigger, offset_trigger = _parse(naive).payload, _parse(offset).payload
    assert isinstance(naive_trigger, ev.Trigger)
    assert isinstance(offset_trigger, ev.Trigger)
    assert naive_trigger.timestamp == datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    assert offset_trigger.timestamp == naive_trigger.timestamp
    assert offset_trigger.timestamp is not None
    assert offset_trigger.timestamp.utcoffset() == timezone(timedelta(hours=2)).utcoffset(None)


def _payload(**changes: Any) -> dict[str, Any]:
    return {"summary": "s", "source": "db1", "severity": "info", **changes}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"event_action": "trigger"}, ("routing_key",)),
        (_trigger(routing_key=""), ("routing_key",)),
        (_trigger(routing_key="k" * 256), ("routing_key",)),
        (_trigger(event_action="escalate"), ("event_action",)),
        (_trigger(dedup_key="d" * 256), ("dedup_key",)),
        (_trigger(payload=None), ("payload",)),
        ({"routing_key": "k", "event_action": "trigger"}, ("payload",)),
        (_trigger(payload={"source": "db1", "severity": "info"}), ("payload", "summary")),
        (_trigger(payload=_payload(summary="s" * 1025)), ("payload", "summary")),
        (_trigger(payload=_payload(summary="\ud800")), ("payload", "summary")),  # json.loads('"\\ud800"') makes one
        (_trigger(payload=_payload(source="")), ("payload", "source")),
        (_trigger(payload=_payload(severity="fatal")), ("payload", "severity")),
        (_trigger(payload=_payload(severity="CRITICAL")), ("payload", "severity")),
        (_trigger(payload=_payload(**{"class": "c" * 256})), ("payload", "class")),
        (_trigger(payload=_payload(timestamp="soon")), ("payload", "timestamp")),
        (_trigger(payload=_payload(custom_details="x")), ("payload", "custom_details")),
        (_trigger(payload=_payload(custom_details={"k": ["\ud800"]})), ("payload", "custom_details")),
        (_trigger(payload=_payload(custom_details={"\udc00": 1})), ("payload", "custom_details")),
        (_trigger(links=[{"text": "no href"}]), ("links", 0, "href")),
        (_trigger(images=[{"src": "https://x"}, {"alt": "no src"}]), ("images", 1, "src")),
        (_trigger(client_url="u" * 2049), ("client_url",)),
    ],
)
def test_validation_errors_name_the_field(body: dict[str, Any], loc: tuple[int | str, ...]) -> None:
    assert _loc(body) == loc


def test_the_body_limit_is_pagerdutys_512_kb() -> None:
    assert MAX_BODY_BYTES == 524_288


def test_the_json_schema_uses_the_wire_names() -> None:
    schema = PagerDutyEvent.model_json_schema()
    assert {"routing_key", "event_action", "dedup_key", "payload", "links", "images"} <= set(schema["properties"])
    assert "class" in schema["$defs"]["PagerDutyPayload"]["properties"]


# --- properties ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(st.characters(exclude_categories=())),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _or_json(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes any JSON at all."""
    return st.integers(0, 9).flatmap(lambda n: json_values if n == 0 else plausible)


_text = st.text(min_size=1, max_size=40)
_timestamps = st.sampled_from(["2015-07-17T08:42:58.315+0000", "2024-01-01T00:00:00", "0001-01-01T00:00:00Z", "x"])
pd_payloads = st.fixed_dictionaries(
    {
        "summary": _or_json(_text),
        "source": _or_json(_text),
        "severity": _or_json(st.sampled_from(["critical", "error", "warning", "info", "fatal"])),
    },
    optional={
        "timestamp": _or_json(_timestamps | st.datetimes().map(datetime.isoformat)),
        "component": _or_json(_text),
        "group": _or_json(_text),
        "class": _or_json(_text),
        "custom_details": _or_json(st.dictionaries(_text, json_values, max_size=3)),
    },
)
pd_events = st.fixed_dictionaries(
    {
        "routing_key": _or_json(_text),
        "event_action": _or_json(st.sampled_from(["trigger", "acknowledge", "resolve", "snooze"])),
        "payload": _or_json(pd_payloads),
    },
    optional={
        "dedup_key": _or_json(_text),
        "links": _or_json(st.lists(st.fixed_dictionaries({"href": _or_json(_text)}, optional={"text": _text}))),
        "images": _or_json(st.lists(st.fixed_dictionaries({"src": _or_json(_text)}, optional={"alt": _text}))),
        "client": _or_json(_text),
        "client_url": _or_json(_text),
        "unknown": json_values,
    },
)


def _check_parse(body: Any) -> None:
    try:
        event = PagerDutyEvent.model_validate(body)
    except ValidationError:
        return
    try:
        command = to_command(event, SERVICE, lambda: "generated")
    except FormatError as exc:
        refused: FormatError | None = exc
    else:
        refused = None
    if refused is not None:
        assert (refused.field, event.event_action in ("acknowledge", "resolve")) == ("dedup_key", True)
        return
    expected = {"trigger": (ev.TRIGGER, ev.Trigger), "acknowledge": (ev.ACKNOWLEDGE, ev.Acknowledge)}.get(
        event.event_action, (ev.RESOLVE, ev.Resolve)
    )
    assert (command.type, type(command.payload)) == expected
    type(command.payload).model_validate(command.payload.model_dump())  # a valid command, not a half-built one
    command.payload.model_dump_json()  # and one the envelope can write
    assert command.dedup_key == (event.dedup_key or "generated")


@SETTINGS
@given(json_values)
def test_any_json_is_an_event_or_a_validation_error(body: Any) -> None:
    _check_parse(body)


@SETTINGS
@given(pd_events)
def test_any_pagerduty_shaped_json_is_a_command_a_validation_error_or_a_format_error(body: dict[str, Any]) -> None:
    _check_parse(body)


@SETTINGS
@given(
    st.sampled_from(["trigger", "acknowledge", "resolve"]),
    st.text(min_size=1, max_size=255),
    st.text(min_size=1, max_size=1024),
    st.sampled_from(list(ev.Severity)),
)
def test_valid_events_keep_their_key_and_text(action: str, dedup: str, summary: str, severity: ev.Severity) -> None:
    body = {
        "routing_key": "k",
        "event_action": action,
        "dedup_key": dedup,
        "payload": {"summary": summary, "source": "s", "severity": severity.value},
    }
    command = _parse(body)
    assert command.dedup_key == dedup
    assert command.payload.model_dump()["dedup_key"] == dedup
    if isinstance(command.payload, ev.Trigger):
        assert (command.payload.summary, command.payload.severity) == (summary, severity)
