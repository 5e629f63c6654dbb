"""Screenshots of every console page at desktop and phone width, light and dark, into docs/screenshots/.

Run by `scripts/screenshots` on a local stack of its own (Kafka and PostgreSQL already up, their
variables in the environment): starts the four services with the example config, a webhook receiver
standing in for the example's targets, 30 days of seeded, resolved history (for the report charts)
and a few live incidents triggered through the intake, then drives the system's Chromium.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from playwright.async_api import Page, ViewportSize, async_playwright, expect
from pydantic import BaseModel

from services.audit.migrate import migrate
from services.audit.store import AuditStore, Record
from services.webhook_receiver import WebhookReceiver
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from tests.e2e.console_support import EXAMPLES, ROOT, chromium, running_services, token, write_config

OUT = ROOT / "docs" / "screenshots"
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
ADMIN = "ada-admin"
# (service, team reached at level 1, priority) of the seeded history.
HISTORY = [
    ("checkout-api", "frontline", "P1"),
    ("web-servers", "infrastructure", "P2"),
    ("customer-portal", "application-support", "P3"),
    ("core-network", "network-operations", "P2"),
]
LIVE = [
    ("checkout-api", "payments-5xx", "Checkout answers 502 for 12% of requests", "critical"),
    ("web-servers", "web-03-down", "web-03 does not answer health checks", "critical"),
    ("customer-portal", "login-slow", "Portal login p95 above 4 s", "error"),
    ("core-network", "uplink-b", "Uplink B packet loss 3%", "warning"),
]


def _history(days: int = 30, seed: int = 8) -> list[Envelope]:
    """Resolved incidents of the last `days` days: opened, level 1 reached, acknowledged, resolved."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    out: list[Envelope] = []
    for day in range(days, 0, -1):
        for service, team, priority in HISTORY:
            for n in range(rng.randint(0, 2)):
                opened_at = now - timedelta(days=day, hours=rng.randint(0, 20), minutes=rng.randint(0, 59))
                key = f"{service}/seed-{day}-{n}"
                incident = uuid.uuid4()
                summary = f"{service}: seeded incident {day}-{n}"
                severity = ev.Severity.CRITICAL if priority == "P1" else ev.Severity.ERROR
                ack = opened_at + timedelta(minutes=rng.uniform(1, 25) * (1 + (priority == "P3")))
                resolved = ack + timedelta(minutes=rng.uniform(10, 180))

                def emit(
                    type_: str, payload: BaseModel, at: datetime, key: str = key, incident: uuid.UUID = incident
                ) -> Envelope:
                    return new_envelope(type_, payload, incident_key=key, occurred_at=at, incident_id=incident)

                out += [
                    emit(
                        ev.INCIDENT_OPENED,
                        ev.IncidentOpened(
                            service=service,
                            dedup_key=key.split("/")[1],
                            summary=summary,
                            severity=severity,
                            policy_id="seeded",
                            policy_hash="seeded",
                            priority=priority,
                        ),
                        opened_at,
                    ),
                    emit(
                        ev.ESCALATION_STEP_REACHED,
                        ev.EscalationStepReached(
                            step_id=uuid.uuid4(),
                            level=1,
                            cycle=0,
                            targets=[ev.Target(type="team", id=team, name=team)],
                            service=service,
                            summary=summary,
                            severity=severity,
                            priority=priority,
                        ),
                        opened_at,
                    ),
                    emit(
                        ev.INCIDENT_ACKNOWLEDGED,
                        ev.IncidentAcknowledged(actor=rng.choice(["alice", "bob", "carol", "dave"])),
                        ack,
                    ),
                    emit(ev.INCIDENT_RESOLVED, ev.IncidentResolved(actor="alice"), resolved),
                ]
    return out


async def _seed_history(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)  # a fresh stack: the audit service has not run yet
        rows = [Record("escalations.events", 0, n, env) for n, env in enumerate(_history())]
        await AuditStore(pool).write_batch("screenshots-seed", rows, {})
    finally:
        await pool.close()


async def _live(http: httpx.AsyncClient, intake: str) -> dict[str, str]:
    """Trigger the live incidents; acknowledge one, snooze one, add a note; return ids by dedup key."""
    auth = {"Authorization": f"Bearer {token(ADMIN)}"}
    ids: dict[str, str] = {}
    for service, dedup, summary, severity in LIVE:
        body = {"event_action": "trigger", "service": service, "dedup_key": dedup, "summary": summary}
        answer = await http.post(f"{intake}/v1/events", json={**body, "severity": severity}, headers=auth)
        answer.raise_for_status()
        ids[dedup] = answer.json()["event_id"]
    return ids


async def _act(http: httpx.AsyncClient, intake: str, incident: str, action: str, body: dict[str, object]) -> None:
    auth = {"Authorization": f"Bearer {token(ADMIN)}"}
    for _ in range(100):  # the intake learns an incident's id from the escalator's events
        answer = await http.post(f"{intake}/v1/incidents/{incident}/{action}", json=body, headers=auth)
        if answer.status_code == 202:
            return
        await asyncio.sleep(0.3)
    answer.raise_for_status()


async def _sign_in(page: Page, audit: str) -> None:
    await page.goto(f"{audit}/console/")
    await page.get_by_label("Bearer token").fill(token(ADMIN))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_contain_text(ADMIN, timeout=30_000)


async def _shoot(audit: str, ids: dict[str, str]) -> list[Path]:
    path = chromium()
    if path is None:
        raise SystemExit("no chromium on PATH: ./scripts/bootstrap installs Debian's chromium package")
    OUT.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            for theme in ("light", "dark"):
                context = await browser.new_context(viewport=viewport, color_scheme=theme, device_scale_factor=1)
                page = await context.new_page()
                await _sign_in(page, audit)

                async def snap(name: str, page: Page = page, width_name: str = width_name, theme: str = theme) -> None:
                    target = OUT / f"{name}-{width_name}{'-dark' if theme == 'dark' else ''}.png"
                    await page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-page
                    await page.screenshot(path=str(target), full_page=True)
                    written.append(target)

                await page.goto(f"{audit}/console/#/incidents")
                await expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=30_000)
                await expect(page.locator("#incident-rows tr[data-incident-id]")).to_have_count(
                    len(LIVE) - 1, timeout=30_000
                )
                await snap("incidents")
                await page.goto(f"{audit}/console/#/incidents/{ids['web-03-down']}")
                await expect(page.locator("#incident-state")).to_have_text("acknowledged", timeout=30_000)
                await expect(page.locator("#next-escalation")).to_be_visible()
                await snap("incident")
                if theme == "dark":
                    await context.close()
                    continue  # the other pages in the light theme only
                await page.goto(f"{audit}/console/#/oncall")
                await expect(page.locator(".oncall-now").first).to_be_visible(timeout=30_000)
                await snap("oncall")
                await page.goto(f"{audit}/console/#/policies")
                await page.get_by_role("button", name="Run simulation").click()
                await expect(page.locator("#sim-result svg")).to_be_visible(timeout=30_000)
                await snap("policies")
                await page.goto(f"{audit}/console/#/audit?incident={ids['payments-5xx']}")
                await expect(page.locator("#verify-status [data-ok]")).to_be_visible(timeout=30_000)
                await expect(page.locator("#report svg").first).to_be_visible(timeout=30_000)
                await expect(page.locator("#audit-timeline li").first).to_be_visible(timeout=30_000)
                await snap("audit")
                await context.close()
        await browser.close()
    return written


async def main() -> None:
    """Start everything, seed, shoot, stop."""
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        # In the stack's folder, so the services' logs stay for a look after a failed run.
        root = Path(os.environ.get("ESCALATION_STACK_DIR", ".stack/screenshots")) / "console-shots"
        shutil.rmtree(root, ignore_errors=True)
        config = root / "config"
        write_config(config, "console-demo", 600, receiver.url("console"), sorted(EXAMPLES.glob("*.yaml")))
        for path in config.glob("*.yaml"):  # the examples' targets point at a demo receiver on :9999
            path.write_text(path.read_text().replace("http://127.0.0.1:9999", receiver.url("").rstrip("/")))
        await _seed_history(os.environ["DATABASE_URL"])
        with running_services(root, dict(os.environ), config) as services:
            async with httpx.AsyncClient(timeout=15) as http:
                ids = await _live(http, services.url("intake"))
                await _act(http, services.url("intake"), ids["web-03-down"], "acknowledge", {})
                await _act(http, services.url("intake"), ids["web-03-down"], "notes", {"text": "Rebooting web-03"})
                await _act(http, services.url("intake"), ids["uplink-b"], "resolve", {})
            written = await _shoot(services.url("audit"), ids)
    finally:
        await receiver.stop()
    for path in written:
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
