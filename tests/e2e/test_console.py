"""The web console in headless Chromium (the system's) against the real services: an incident triggered
through the intake appears live, is acknowledged by a click, the acknowledgement and who did it show
in the audit timeline, and the exported evidence pack verifies; roles, bad tokens, the simulator."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from services.stack import processes
from shared.yamlconfig import yaml_files
from tests.e2e.conftest import Stack
from tests.e2e.console_support import EXAMPLES, chromium, token, write_config

pytestmark = pytest.mark.e2e

# Level 2 comes much later than any test waits: incidents stay triggered until somebody clicks.
LEVEL_2_DELAY = 3600
WAIT_MS = 45_000  # the longest wait for something the services do (Kafka, escalator, audit, stream)


def _restart(stack: Stack, name: str, env: dict[str, str]) -> None:
    proc = stack.process(name)
    processes.stop(proc)
    processes.start(proc, env)
    processes.wait_healthy(proc, timeout=120)


@pytest.fixture(scope="module")
def console(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """The session's stack with access tokens, the directory and a console test service; restored after.

    One escalator group at a time (see test_mission_timelines): the session's processes are restarted
    with this config rather than a second set started beside them.
    """
    config = tmp_path_factory.mktemp("console") / "config"
    service = f"{stack.service}-console"
    base = [*yaml_files(Path(stack.env["ESCALATION_CONFIG_DIR"])), EXAMPLES / "directory.yaml"]
    write_config(config, service, LEVEL_2_DELAY, stack.receiver.url("console"), base)
    env = {**stack.env, "ESCALATION_CONFIG_DIR": str(config), "CONSOLE_INTAKE_URL": stack.url("intake")}
    changed = ("escalator", "intake", "audit")
    try:
        for name in changed:
            _restart(stack, name, env)
        yield stack, service
    finally:
        for name in changed:
            _restart(stack, name, stack.env)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from the system's package (browser downloads are not possible here)."""
    path = chromium()
    if path is None:
        pytest.fail("no chromium on PATH: ./scripts/bootstrap installs Debian's chromium package")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh browser tab (its own session storage) that accepts downloads."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


async def _sign_in(page: Page, stack: Stack, who: str) -> None:
    await page.goto(f"{stack.url('audit')}/console/")
    await page.get_by_label("Bearer token").fill(token(who))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_contain_text(who, timeout=WAIT_MS)


async def _trigger(stack: Stack, service: str, summary: str, severity: str = "critical") -> str:
    body = {"event_action": "trigger", "service": service, "dedup_key": uuid.uuid4().hex[:10], "summary": summary}
    body["severity"] = severity
    async with httpx.AsyncClient(timeout=15) as http:
        answer = await http.post(
            f"{stack.url('intake')}/v1/events", json=body, headers={"Authorization": f"Bearer {token('ada-admin')}"}
        )
    assert answer.status_code == 202, answer.text
    incident_id: str = answer.json()["event_id"]  # the trigger's event id becomes the incident's id
    return incident_id


async def test_without_tokens_the_console_is_open_and_records_the_name_given(
    stack: Stack, page: Page, http: httpx.AsyncClient
) -> None:
    # First in the module: the session's stack as it is, without the access tokens `console` adds.
    # A link to an incident not in the audit log yet (just triggered) waits for it instead of failing.
    await page.goto(f"{stack.url('audit')}/console/#/incidents/{uuid.uuid4()}")
    await expect(page.locator("#incident-waiting")).to_contain_text("not in the audit log yet", timeout=WAIT_MS)
    answer = await http.post(
        f"{stack.url('intake')}/v1/events",
        json={
            "event_action": "trigger",
            "service": stack.service,
            "dedup_key": uuid.uuid4().hex[:10],
            "summary": "Open",
        },
    )
    incident_id = answer.json()["event_id"]
    await page.goto(f"{stack.url('audit')}/console/#/incidents/{incident_id}")
    await expect(page.locator("#who")).to_have_text("authentication off")
    await expect(page.locator("#incident-state")).to_have_text("triggered", timeout=WAIT_MS)
    await page.get_by_label("Your name (recorded as who acted; authentication is off)").fill("olga")
    await page.get_by_role("button", name="Acknowledge").click()
    await expect(page.locator("#incident-state")).to_have_text("acknowledged", timeout=WAIT_MS)
    await expect(page.locator("li[data-type='incident.acknowledged']")).to_contain_text("by olga")


async def test_triggered_incident_appears_live_is_acknowledged_by_click_and_audited(
    console: tuple[Stack, str], page: Page, tmp_path: Path
) -> None:
    stack, service = console
    await _sign_in(page, stack, "ada-admin")
    await expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    await page.evaluate("window.__notReloaded = true")

    incident_id = await _trigger(stack, service, "Checkout latency above 2 s")
    row = page.locator(f'tr[data-incident-id="{incident_id}"]')
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await expect(row).to_contain_text("Checkout latency above 2 s")
    await expect(row).to_contain_text("triggered")
    await expect(row).to_contain_text("frontline", timeout=WAIT_MS)  # level 1 reached: its team shows
    assert await page.evaluate("window.__notReloaded === true"), "the list reloaded the page"

    await row.get_by_role("link").click()
    await expect(page.locator("#incident-state")).to_have_text("triggered", timeout=WAIT_MS)
    await expect(page.locator("#next-escalation")).to_contain_text("level 2")
    await expect(page.locator(".sla[data-clock=acknowledge]")).to_contain_text("of 15m")
    await page.get_by_role("button", name="Acknowledge").click()
    await expect(page.locator("#incident-state")).to_have_text("acknowledged", timeout=WAIT_MS)
    await expect(page.locator("#timeline-title ~ ol li[data-type='incident.acknowledged']")).to_contain_text(
        "by ada-admin"
    )

    await page.get_by_role("link", name="Open in the audit log").click()
    entry = page.locator("#audit-timeline li[data-type='incident.acknowledged']")
    await expect(entry).to_contain_text("by ada-admin", timeout=WAIT_MS)
    await expect(page.locator("#verify-status [data-ok]")).to_have_attribute("data-ok", "true", timeout=WAIT_MS)

    async with page.expect_download() as jsonl_download:
        await page.get_by_role("button", name="Export JSONL").click()
    jsonl = tmp_path / "export.jsonl"
    await (await jsonl_download.value).save_as(jsonl)
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {(r["type"], r["actor"]) for r in rows} >= {("incident.acknowledged", "ada-admin")}
    assert {r["incident_id"] for r in rows} == {incident_id}  # the export follows the search filters

    async with page.expect_download() as pack_download:
        await page.get_by_role("button", name="Evidence pack").click()
    pack = tmp_path / "evidence.jsonl"
    await (await pack_download.value).save_as(pack)
    escalation = Path(sys.executable).with_name("escalation")
    checked = subprocess.run(  # noqa: ASYNC221 - the CLI, as an auditor would run it on the file
        [str(escalation), "audit", "verify", "--pack", str(pack)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK:" in checked.stdout


async def test_an_auditor_reads_but_may_not_act_and_is_told_why(console: tuple[Stack, str], page: Page) -> None:
    stack, service = console
    incident_id = await _trigger(stack, service, "Queue backlog growing", severity="error")
    await _sign_in(page, stack, "audrey-auditor")
    await page.goto(f"{stack.url('audit')}/console/#/incidents/{incident_id}")
    await expect(page.locator("#incident-state")).to_have_text("triggered", timeout=WAIT_MS)
    acknowledge = page.get_by_role("button", name="Acknowledge")
    await expect(acknowledge).to_be_disabled()
    await expect(page.locator("#action-why")).to_contain_text("need the responder role")


async def test_a_responder_acts_but_the_audit_page_explains_the_missing_role(
    console: tuple[Stack, str], page: Page
) -> None:
    stack, _ = console
    await _sign_in(page, stack, "rita-responder")
    await page.get_by_role("link", name="Audit").click()
    await expect(page.get_by_role("alert")).to_contain_text("need the auditor role")


async def test_an_unknown_token_is_refused_with_a_clear_message(console: tuple[Stack, str], page: Page) -> None:
    stack, _ = console
    await page.goto(f"{stack.url('audit')}/console/")
    await page.get_by_label("Bearer token").fill("not-a-token")
    await page.keyboard.press("Enter")
    await expect(page.locator("#login-error")).to_contain_text("Unknown or revoked token", timeout=WAIT_MS)


async def test_the_simulator_runs_by_keyboard_and_draws_its_timeline(console: tuple[Stack, str], page: Page) -> None:
    stack, service = console
    await _sign_in(page, stack, "rita-responder")
    await page.get_by_role("link", name="Policies").click()
    await expect(page.locator(f'[data-policy="console-{service}"]')).to_contain_text("infrastructure")
    script = page.get_by_label("Script (YAML)")
    await script.fill(
        "start: 2026-11-27T22:00:00Z\nwatch: 2h\nevents:\n"
        f"  - {{at: +0m, action: trigger, service: {service}, dedup_key: sim, summary: Disk full,"
        " severity: critical}\n"
    )
    await script.focus()
    await page.keyboard.press("Tab")  # to the run button
    await page.keyboard.press("Enter")
    chart = page.locator("#sim-result svg[role=img]")
    await expect(chart).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#sim-events")).to_contain_text("escalation.step_reached")
    await expect(page.locator("#sim-result")).to_contain_text("2 page(s)")  # level 1 at once, level 2 after 1 h

    await script.fill("start: 2026-11-27T22:00:00Z\nevents:\n  - {at: soon, action: trigger}\n")
    await page.get_by_role("button", name="Run simulation").click()
    await expect(page.locator("#sim-error")).to_contain_text("events.0.at")


async def test_every_page_fits_a_360_px_screen_in_both_themes(console: tuple[Stack, str], browser: Browser) -> None:
    stack, service = console
    incident_id = await _trigger(stack, service, "Narrow screens need love too", severity="warning")
    context = await browser.new_context(viewport={"width": 360, "height": 740}, color_scheme="dark")
    page = await context.new_page()
    try:
        await _sign_in(page, stack, "ada-admin")
        theme = page.get_by_role("button", name="Dark theme")
        await expect(theme).to_have_attribute("aria-pressed", "true")  # the system's preference
        await theme.click()
        await expect(page.locator("html")).to_have_attribute("data-theme", "light")
        await page.reload()  # the choice is kept
        await expect(page.locator("html")).to_have_attribute("data-theme", "light")
        for route, ready in (
            ("#/incidents", f'tr[data-incident-id="{incident_id}"]'),
            (f"#/incidents/{incident_id}", "#timeline-title"),
            ("#/oncall", ".oncall-now"),
            ("#/policies", "#sim-run"),
            ("#/audit", "#report-table"),
        ):
            await page.goto(f"{stack.url('audit')}/console/{route}")
            await expect(page.locator(ready).first).to_be_visible(timeout=WAIT_MS)
            overflow = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{route} is {overflow} px wider than a 360 px screen"
    finally:
        await context.close()
