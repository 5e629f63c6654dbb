"""Signed acknowledge/resolve links against the real broker: the GET only confirms, the POST acts as
the person the link was sent to, anything altered or expired is refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from shared import events as ev
from shared.auth import token_hash
from shared.envelope import Envelope, decode
from shared.links import LinkSigner
from shared.settings import IntakeSettings
from shared.topics import INCIDENT_COMMANDS
from tests.support import eventually, intake_client, publish_opened

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
SERVICE = f"links-{RUN}"
RESPONDER = f"responder-{RUN}"
SECRET = f"link-secret-{RUN}"
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("links-access")
    (folder / "access.yaml").write_text(
        f"access:\n  ops-bot:\n    role: responder\n    token_sha256: {token_hash(RESPONDER)}\n"
    )
    return folder


@pytest.fixture(scope="module")
async def intake(config: Path, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    """An intake with tokens and a link secret."""
    settings = IntakeSettings(
        kafka_bootstrap_servers=kafka_bootstrap, escalation_config_dir=config, link_secret=SecretStr(SECRET)
    )
    async for client in intake_client(settings):
        yield client


async def _open_incident(bootstrap: str, dedup: str) -> uuid.UUID:
    """Publish an incident.opened as the escalator would; return the incident id."""
    opened = await publish_opened(bootstrap, SERVICE, dedup, summary="db down", priority="P1")
    assert opened.incident_id is not None
    return opened.incident_id


async def _commands(bootstrap: str, key: str, count: int) -> list[Envelope]:
    """The first `count` commands of one incident key."""
    consumer = AIOKafkaConsumer(INCIDENT_COMMANDS, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[Envelope] = []
    try:
        async for record in consumer:
            if record.key == key.encode():
                found.append(decode(record.value))
                if len(found) == count:
                    return found
    finally:
        await consumer.stop()
    raise AssertionError("unreachable")


def _path(url: str) -> str:
    split = urlsplit(url)
    return f"{split.path}?{split.query}"


async def test_link_confirms_on_get_and_acts_on_post_as_its_recipient(
    intake: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    dedup = f"db-{RUN}"
    incident = await _open_incident(kafka_bootstrap, dedup)
    signer = LinkSigner(SECRET.encode(), "http://intake", timedelta(hours=1))
    ack = _path(signer.link("acknowledge", incident, datetime.now(UTC), "alice"))
    resolve = _path(signer.link("resolve", incident, datetime.now(UTC), "bob"))

    async def confirmation() -> httpx.Response | None:
        page = await intake.get(ack, headers=HTML)
        return None if page.status_code in (404, 503) else page

    page = await eventually(confirmation, timeout=30, what="the directory to learn the incident")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text
    assert f"{SERVICE}/{dedup}" in page.text
    assert "alice" in page.text
    assert (await intake.get(ack, headers=HTML)).status_code == 200  # opening it again changes nothing either

    clicked = await intake.post(ack, headers=HTML)  # the page's button: no token, the signed query
    assert clicked.status_code == 202
    assert "acknowledged" in clicked.text
    as_api = await intake.post(resolve)  # an API client following the link gets JSON
    assert as_api.status_code == 202
    assert as_api.json()["incident_key"] == f"{SERVICE}/{dedup}"

    commands = await _commands(kafka_bootstrap, f"{SERVICE}/{dedup}", 2)
    assert [c.type for c in commands] == [ev.ACKNOWLEDGE, ev.RESOLVE]  # the GETs sent nothing
    assert [c.payload["actor"] for c in commands] == ["alice (signed link)", "bob (signed link)"]


async def test_altered_expired_or_misused_links_are_refused(intake: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    incident = await _open_incident(kafka_bootstrap, f"refused-{RUN}")
    signer = LinkSigner(SECRET.encode(), "http://intake", timedelta(hours=1))
    good = signer.link("acknowledge", incident, datetime.now(UTC), "alice")
    split = urlsplit(good)
    as_mallory = _path(good).replace("by=alice", "by=mallory")
    expired = _path(signer.link("acknowledge", incident, datetime.now(UTC) - timedelta(hours=2), "alice"))
    other_action = f"{split.path.rsplit('/', 1)[0]}/resolve?{split.query}"
    foreign = _path(
        LinkSigner(b"not-our-secret", "http://intake").link("acknowledge", incident, datetime.now(UTC), "a")
    )
    for url, field in ((as_mallory, "sig"), (expired, "expires"), (other_action, "sig"), (foreign, "sig")):
        refused = await intake.post(url)
        assert refused.status_code == 403, url
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == field
        page = await intake.get(url, headers=HTML)
        assert page.status_code == 403
        assert page.headers["content-type"].startswith("text/html")
    missing = await intake.get(f"/v1/incidents/{incident}/acknowledge?by=alice&sig=00")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "expires"
    no_token = await intake.post(f"/v1/incidents/{incident}/acknowledge")
    assert no_token.status_code == 401

    async def by_token() -> httpx.Response | None:
        url = f"/v1/incidents/{incident}/acknowledge"
        response = await intake.post(url, headers={"Authorization": f"Bearer {RESPONDER}"})
        return None if response.status_code in (404, 503) else response

    with_token = await eventually(by_token, timeout=30, what="the directory to learn the incident")
    assert with_token.status_code == 202  # the bearer path is unchanged


async def test_without_a_link_secret_links_are_refused_by_name(kafka_bootstrap: str) -> None:
    incident = uuid.uuid4()
    url = _path(LinkSigner(b"s", "http://intake").link("acknowledge", incident, datetime.now(UTC), "alice"))
    async for client in intake_client(IntakeSettings(kafka_bootstrap_servers=kafka_bootstrap)):
        refused = await client.post(url)
        assert refused.status_code == 403
        assert "LINK_SECRET" in refused.json()["detail"]


async def test_an_incident_opened_a_moment_ago_is_found_at_once(
    intake: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    """The directory reads in batches; a lookup that misses reads up to the topic's end first."""
    headers = {"Authorization": f"Bearer {RESPONDER}"}
    first = await _open_incident(kafka_bootstrap, "found-first")

    async def ready() -> httpx.Response | None:
        response = await intake.post(f"/v1/incidents/{first}/acknowledge", headers=headers)
        return None if response.status_code == 503 else response  # 503 while the history loads

    assert (await eventually(ready, timeout=30, what="the directory to load")).status_code == 202
    # Opened just now, acknowledged at once (a responder acting on the page that just arrived).
    fresh = await _open_incident(kafka_bootstrap, "found-at-once")
    answer = await intake.post(f"/v1/incidents/{fresh}/acknowledge", headers=headers)
    assert answer.status_code == 202, answer.text
    unknown = await intake.post(f"/v1/incidents/{uuid.uuid4()}/acknowledge", headers=headers)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
