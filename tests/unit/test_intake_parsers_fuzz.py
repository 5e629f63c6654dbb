"""The intake's parsers on any JSON at all: each returns its result or raises its own error type
(pydantic's ValidationError, the formats' FormatError), never anything else; what it accepts is written
to Kafka exactly as received; valid inputs keep their keys, service and severity."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.intake.app import to_command as native_command
from services.intake.formats import alertmanager, pagerduty
from services.intake.formats.common import FormatError, ParsedCommand, Timestamp, clip
from services.intake.models import AnyEvent, NativeEvent
from shared import events as ev
from shared.envelope import decode, new_envelope
from shared.ids import incident_key

SAMPLES = Path(__file__).parent / "samples"
SERVICE = "checkout-api"
FUZZ = settings(max_examples=200, deadline=None, database=None)
NATIVE: TypeAdapter[AnyEvent] = TypeAdapter(NativeEvent)
TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)

# What json.loads can make: lone surrogates ("\ud800" escapes), NaN and Infinity (Python's literals), big ints.
any_text = st.text(st.characters(exclude_categories=()), max_size=10)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=16,
)
# What JSON carries losslessly: the values a valid event may hold in custom_details.
clean_text = st.text(max_size=10)
clean_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | clean_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(clean_text, inner, max_size=4),
    max_leaves=16,
)


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def _paths(value: Any, at: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in a JSON value (the value itself first)."""
    found = [at]
    if isinstance(value, dict):
        for key, member in value.items():
            found += _paths(member, (*at, key))
    elif isinstance(value, list):
        for i, member in enumerate(value):
            found += _paths(member, (*at, i))
    return found


def _mutate(base: Any) -> st.SearchStrategy[Any]:
    """`base` with up to three places replaced by any JSON-like value, or removed."""

    @st.composite
    def mutations(draw: st.DrawFn) -> Any:
        body = copy.deepcopy(base)
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(_paths(body)))
            if not path:
                return draw(json_like)
            parent = body
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(json_like)
        return body

    return mutations()


def mutated(names: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """A real sample, mutated."""
    return st.sampled_from(names).flatmap(lambda name: _mutate(_sample(name)))


PAGERDUTY_SAMPLES = ("pagerduty_trigger.json", "pagerduty_trigger_openapi.json", "pagerduty_acknowledge.json")
WEBHOOK_SAMPLES = ("alertmanager_two_firing_one_resolved.json", "grafana_webhook.json")


def _as_sent(payload: BaseModel) -> None:
    """The payload survives the envelope's JSON unchanged (no 500 on encoding, nothing rewritten)."""
    env = new_envelope(
        "incident.trigger", payload, incident_key=f"{SERVICE}/k", occurred_at=datetime.now().astimezone()
    )
    assert decode(env.to_json(), check_payload=False).payload == env.payload
    assert type(payload).model_validate_json(payload.model_dump_json()) == payload


def _pagerduty(body: Any) -> ParsedCommand | None:
    """Parse as /v2/enqueue does; None for a refusal of the parser's own kinds."""
    try:
        event = pagerduty.PagerDutyEvent.model_validate(body)
        return pagerduty.to_command(event, SERVICE, lambda: "generated")
    except (ValidationError, FormatError):
        return None


def _webhook(body: Any) -> list[ParsedCommand] | None:
    try:
        return alertmanager.to_commands(alertmanager.AlertmanagerWebhook.model_validate(body), SERVICE)
    except (ValidationError, FormatError):
        return None


def _native(body: Any) -> tuple[str, BaseModel, str, str] | None:
    try:
        return native_command(NATIVE.validate_python(body))
    except ValidationError:
        return None


@FUZZ
@given(json_like | mutated(PAGERDUTY_SAMPLES))
def test_pagerduty_parses_or_refuses_and_writes_what_it_accepts(body: Any) -> None:
    command = _pagerduty(body)
    if command is not None:
        _as_sent(command.payload)


@FUZZ
@given(json_like | mutated(WEBHOOK_SAMPLES))
def test_webhooks_parse_or_refuse_and_write_what_they_accept(body: Any) -> None:
    for command in _webhook(body) or []:
        _as_sent(command.payload)


NATIVE_TRIGGER = {
    "event_action": "trigger",
    "service": SERVICE,
    "dedup_key": "disk-full-db1",
    "summary": "Disk 95% full on db1",
    "severity": "critical",
    "source": "db1",
    "custom_details": {"free": "5%", "mounts": ["/", "/var"], "ratio": 0.95},
}


@FUZZ
@given(json_like | _mutate(NATIVE_TRIGGER))
def test_native_events_parse_or_refuse_and_write_what_they_accept(body: Any) -> None:
    command = _native(body)
    if command is not None:
        _as_sent(command[1])


@FUZZ
@given(st.dictionaries(any_text, json_like, max_size=4))
def test_any_details_are_written_as_sent_or_refused(custom: dict[str, Any]) -> None:
    native = _native({**NATIVE_TRIGGER, "custom_details": custom})
    if native is not None:
        _as_sent(native[1])
    body = _sample("pagerduty_trigger.json")
    body["payload"]["custom_details"] = custom
    command = _pagerduty(body)
    if command is not None:
        _as_sent(command.payload)
    assert (native is None) == (command is None)  # the same rule for both


@FUZZ
@given(any_text)
def test_a_timestamp_is_an_aware_instant_or_a_validation_error(text: str) -> None:
    try:
        instant = TIMESTAMP.validate_python(text)
    except ValidationError:
        return
    assert instant.tzinfo is not None


@FUZZ
@given(any_text, st.integers(1, 12))
def test_clip_keeps_short_text_and_marks_a_cut(text: str, limit: int) -> None:
    clipped = clip(text, limit)
    assert len(clipped) <= limit
    assert clipped == text if len(text) <= limit else clipped == text[: limit - 1] + "…"


# --- valid inputs keep their fields ----------------------------------------------------------------

keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=255)
services = st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=255)
details = st.dictionaries(clean_text, clean_json, max_size=4)
severities = st.sampled_from(list(ev.Severity))


@FUZZ
@given(keys, keys, severities, details)
def test_a_valid_pagerduty_trigger_keeps_its_key_service_severity_and_details(
    routing_key: str, dedup: str, severity: ev.Severity, custom: dict[str, Any]
) -> None:
    payload = {"summary": "s", "source": "h", "severity": severity.value, "custom_details": custom}
    body = {"routing_key": routing_key, "event_action": "trigger", "dedup_key": dedup, "payload": payload}
    command = _pagerduty(body)
    assert command is not None
    trigger = command.payload
    assert isinstance(trigger, ev.Trigger)
    assert (command.dedup_key, trigger.dedup_key, trigger.service) == (dedup, dedup, SERVICE)
    assert (trigger.severity, trigger.custom_details) == (severity, custom)
    _as_sent(trigger)


@FUZZ
@given(
    st.dictionaries(clean_text, clean_text, min_size=1, max_size=5),
    st.sampled_from([*alertmanager.SEVERITY_BY_LABEL, "", "bogus"]),
    st.sampled_from(["firing", "resolved"]),
)
def test_a_valid_alert_is_keyed_by_its_label_fingerprint_with_the_mapped_severity(
    labels: dict[str, str], severity: str, status: str
) -> None:
    labels = {**labels, "severity": f" {severity.upper()} "}
    commands = _webhook({"alerts": [{"status": status, "labels": labels}]})
    assert commands is not None
    [command] = commands
    assert command.dedup_key == alertmanager.label_fingerprint(labels)
    assert command.type == (ev.TRIGGER if status == "firing" else ev.RESOLVE)
    if isinstance(command.payload, ev.Trigger):
        expected = alertmanager.SEVERITY_BY_LABEL.get(severity, alertmanager.DEFAULT_SEVERITY)
        assert command.payload.severity == expected
        assert command.payload.custom_details["labels"] == labels
    _as_sent(command.payload)


@FUZZ
@given(services, keys, severities, details)
def test_a_valid_native_trigger_keeps_its_key_severity_and_details(
    service: str, dedup: str, severity: ev.Severity, custom: dict[str, Any]
) -> None:
    body = {"event_action": "trigger", "service": service, "dedup_key": dedup, "summary": "s"}
    command = _native({**body, "severity": severity.value, "custom_details": custom})
    assert command is not None
    type_, trigger, got_service, got_dedup = command
    assert isinstance(trigger, ev.Trigger)
    assert (type_, got_service, got_dedup, incident_key(service, dedup)) == (
        ev.TRIGGER,
        service,
        dedup,
        f"{service}/{dedup}",
    )
    assert (trigger.severity, trigger.custom_details) == (severity, custom)
    _as_sent(trigger)


# --- details JSON cannot carry are refused at the field -------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


UNWRITABLE = [
    pytest.param({"a": "\ud800"}, id="lone-surrogate"),
    pytest.param({"a": {"\udfff": 1}}, id="lone-surrogate-key"),
    pytest.param({"a": [math.nan]}, id="nan"),
    pytest.param({"a": -math.inf}, id="infinity"),
    pytest.param({"a": _nested(ev.MAX_JSON_DEPTH)}, id="too-deep"),
    pytest.param({"a": _nested(300)}, id="deeper-than-pydantic-writes"),
]


@pytest.mark.parametrize("custom", UNWRITABLE)
def test_unwritable_details_are_refused_at_custom_details(custom: dict[str, Any]) -> None:
    body = {"event_action": "trigger", "service": SERVICE, "summary": "s", "custom_details": custom}
    with pytest.raises(ValidationError) as native:
        native_command(NATIVE.validate_python(body))
    assert native.value.errors()[0]["loc"] == ("custom_details",)
    payload = {"summary": "s", "source": "h", "severity": "info", "custom_details": custom}
    with pytest.raises(ValidationError) as pd:
        pagerduty.PagerDutyEvent.model_validate({"routing_key": "k", "event_action": "trigger", "payload": payload})
    assert pd.value.errors()[0]["loc"] == ("payload", "custom_details")
    json.dumps(pd.value.errors()[0]["msg"], ensure_ascii=False).encode()  # the message itself can be sent


def test_details_just_within_the_depth_limit_are_kept() -> None:
    custom = {"a": _nested(ev.MAX_JSON_DEPTH - 2)}
    trigger = ev.Trigger(service=SERVICE, dedup_key="k", summary="s", custom_details=custom)
    assert trigger.custom_details == custom
    _as_sent(trigger)


halves = st.text(st.characters(codec="utf-8"), max_size=100)


@FUZZ
@given(st.tuples(halves, halves).map("/".join))
def test_a_service_id_with_a_slash_is_refused(service: str) -> None:
    """'/' begins the dedup key in an incident key: such a service would read back as another."""
    assert _native({"event_action": "trigger", "service": service, "dedup_key": "k", "summary": "s"}) is None
