"""Signed acknowledge / resolve links: valid until they expire, worthless once anything is changed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.links import Action, LinkSigner

SECRET = b"link-secret"
ISSUED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=4)
INCIDENT = uuid.UUID("0190f3a2-7b6c-7d4e-8f00-112233445566")
BY = "user:alice"


def _parts(url: str) -> tuple[str, str, str, int, str, str]:
    """(path prefix, incident id, action, expires, by, sig) of a signed link."""
    split = urlsplit(url)
    prefix, incident, action = split.path.rsplit("/", 2)
    query = parse_qs(split.query)
    return prefix, incident, action, int(query["expires"][0]), query["by"][0], query["sig"][0]


def test_link_points_at_the_operator_api_and_verifies() -> None:
    signer = LinkSigner(SECRET, "https://intake.example.com/", TTL)
    url = signer.link("acknowledge", INCIDENT, ISSUED, BY)
    assert url.startswith(f"https://intake.example.com/v1/incidents/{INCIDENT}/acknowledge?expires=")
    _, incident, action, expires, by, sig = _parts(url)
    assert expires == int((ISSUED + TTL).timestamp())
    assert signer.verify(action, incident, expires, by, sig, ISSUED)
    assert signer.verify(action, INCIDENT, expires, by, sig, ISSUED + TTL)  # valid up to the instant itself


def test_same_step_gives_the_same_link() -> None:
    signer = LinkSigner(SECRET, "https://intake.example.com", TTL)
    assert signer.link("resolve", INCIDENT, ISSUED, BY) == signer.link("resolve", INCIDENT, ISSUED, BY)


def test_expired_link_is_refused() -> None:
    signer = LinkSigner(SECRET, "https://intake.example.com", TTL)
    _, incident, action, expires, by, sig = _parts(signer.link("resolve", INCIDENT, ISSUED, BY))
    assert not signer.verify(action, incident, expires, by, sig, ISSUED + TTL + timedelta(seconds=1))


@pytest.mark.parametrize("tamper", ["action", "incident", "expires", "by", "sig", "secret"])
def test_tampered_link_is_refused(tamper: str) -> None:
    signer = LinkSigner(SECRET, "https://intake.example.com", TTL)
    _, incident, action, expires, by, sig = _parts(signer.link("acknowledge", INCIDENT, ISSUED, BY))
    checker = signer
    if tamper == "action":
        action = "resolve"
    elif tamper == "incident":
        incident = str(uuid.UUID(int=INCIDENT.int + 1))
    elif tamper == "expires":
        expires += 86400  # extend the lifetime
    elif tamper == "by":
        by = "user:mallory"  # act in somebody else's name
    elif tamper == "sig":
        sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    else:
        checker = LinkSigner(b"another-secret", "https://intake.example.com", TTL)
    assert not checker.verify(action, incident, expires, by, sig, ISSUED)


@pytest.mark.parametrize("sig", ["", "zz", "é" * 64, "\udcff"])
def test_garbage_signature_is_refused_without_raising(sig: str) -> None:
    signer = LinkSigner(SECRET, "https://intake.example.com", TTL)
    assert not signer.verify("acknowledge", INCIDENT, int(ISSUED.timestamp()) + 60, BY, sig, ISSUED)


def test_unknown_action_is_refused_even_when_signed() -> None:
    signer = LinkSigner(SECRET, "https://intake.example.com", TTL)
    expires = int((ISSUED + TTL).timestamp())
    signed = signer.signature("escalate", INCIDENT, expires, BY)
    assert not signer.verify("escalate", INCIDENT, expires, BY, signed, ISSUED)


@pytest.mark.parametrize(("secret", "ttl"), [(b"", TTL), (SECRET, timedelta(0))])
def test_empty_secret_or_no_lifetime_is_a_configuration_error(secret: bytes, ttl: timedelta) -> None:
    with pytest.raises(ValueError, match="link"):
        LinkSigner(secret, "https://intake.example.com", ttl)


@given(
    secret=st.binary(min_size=1, max_size=64),
    incident=st.uuids(),
    action=st.sampled_from(["acknowledge", "resolve"]),
    issued=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    ttl_seconds=st.integers(1, 30 * 86400),
    late=st.integers(1, 10**6),
    recipient=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
)
def test_round_trip_until_expiry(
    secret: bytes, incident: uuid.UUID, action: Action, issued: datetime, ttl_seconds: int, late: int, recipient: str
) -> None:
    signer = LinkSigner(secret, "http://127.0.0.1:8081", timedelta(seconds=ttl_seconds))
    url = signer.link(action, incident, issued, recipient)
    _, got_incident, got_action, expires, by, sig = _parts(url)
    assert (got_incident, got_action, by) == (str(incident), action, recipient)
    assert signer.verify(got_action, got_incident, expires, by, sig, issued)
    assert not signer.verify(got_action, got_incident, expires, by, sig, datetime.fromtimestamp(expires + late, UTC))
    other = "resolve" if action == "acknowledge" else "acknowledge"
    assert not signer.verify(other, got_incident, expires, by, sig, issued)
