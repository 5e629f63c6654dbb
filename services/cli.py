"""The `escalation` command: local stack, each service, policy tools and the demo."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from fastapi import FastAPI

from services.audit.cli import audit_app
from services.escalator.core.policy import Catalog
from services.notifier.directory.cli import oncall_app
from shared.yamlconfig import ConfigError

app = typer.Typer(help="Escalation management over Kafka.", no_args_is_help=True, add_completion=False)
stack_app = typer.Typer(help="Run real Kafka and PostgreSQL (and the services) locally, without Docker.")
policy_app = typer.Typer(help="Check escalation policies.")
app.add_typer(stack_app, name="stack")
app.add_typer(policy_app, name="policy")
access_app = typer.Typer(help="Bearer tokens for the APIs.")
app.add_typer(access_app, name="access")
app.add_typer(audit_app, name="audit")
app.add_typer(oncall_app, name="oncall")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


# --- local stack -------------------------------------------------------------------------------


@stack_app.command("up")
def stack_up(
    infra_only: bool = typer.Option(False, "--infra-only", help="Start Kafka and PostgreSQL only."),
    fresh: bool = typer.Option(False, "--fresh", help="Stop everything and delete its data first."),
) -> None:
    """Start Kafka (KRaft), PostgreSQL and the four services; idempotent."""
    from services.stack.errors import StackError
    from services.stack.local import LocalStack

    try:
        timings = LocalStack.from_env().up(with_services=not infra_only, fresh=fresh, echo=typer.echo)
    except StackError as exc:
        _fail(str(exc))
    typer.echo("stack up in " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


@stack_app.command("down")
def stack_down() -> None:
    """Stop what `up` started, by pid."""
    from services.stack.local import LocalStack

    for name, was_running in LocalStack.from_env().down().items():
        typer.echo(f"{name}: {'stopped' if was_running else 'not running'}")


@stack_app.command("status")
def stack_status() -> None:
    """Show what runs, with pids and ports."""
    from services.stack.local import LocalStack

    typer.echo(json.dumps(LocalStack.from_env().status(), indent=2))


@stack_app.command("env")
def stack_env() -> None:
    """Print the environment the services of the local stack get (for `eval`)."""
    from services.stack.local import LocalStack

    for key, value in LocalStack.from_env().service_env().items():
        if key in {
            "KAFKA_BOOTSTRAP_SERVERS",
            "DATABASE_URL",
            "ESCALATION_CONFIG_DIR",
            "AUDIT_SIGNING_KEY",
        } or key.endswith("_PORT"):
            typer.echo(f"export {key}={value}")


# --- services ------------------------------------------------------------------------------------


def serve(asgi: FastAPI, port: int) -> None:
    import uvicorn

    uvicorn.run(asgi, host="0.0.0.0", port=port, log_config=None, timeout_graceful_shutdown=30)  # noqa: S104


@app.command()
def intake() -> None:
    """Run the intake API (HTTP in, Kafka out)."""
    from services.intake.app import create_app
    from shared.logging import configure_logging
    from shared.settings import IntakeSettings

    settings = IntakeSettings()
    configure_logging("intake", settings.log_level)
    if settings.intake_workers == 1:
        serve(create_app(settings, serving=True), settings.intake_port)
        return
    import uvicorn

    # Each worker process builds its own app (producer, incident directory) from the environment.
    uvicorn.run(
        "services.intake.app:app_from_environment",
        factory=True,
        workers=settings.intake_workers,
        host="0.0.0.0",  # noqa: S104 - a container port
        port=settings.intake_port,
        log_config=None,
        timeout_graceful_shutdown=30,
    )


@app.command()
def escalator() -> None:
    """Run the escalator (Faust worker)."""
    import faust

    from services.escalator.app import Escalator
    from services.escalator.config import load_catalog
    from shared.kafka import ensure_topics
    from shared.logging import configure_logging
    from shared.settings import EscalatorSettings

    settings = EscalatorSettings()
    configure_logging("escalator", settings.log_level)
    try:
        catalog = load_catalog(settings.escalation_config_dir)
    except ConfigError as exc:
        _fail(str(exc))
    asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, settings.topic_partitions))
    asyncio.set_event_loop(asyncio.new_event_loop())
    # The worker's own console output (banner, terminal escapes) is not log data: logs go to
    # stdout as JSON through the logging handler configured above; stderr stays for crashes.
    with open(os.devnull, "w") as console:
        worker = faust.Worker(
            Escalator(settings, catalog).app,
            loglevel=settings.log_level,
            override_logging=False,
            quiet=True,
            stdout=console,
            stderr=sys.stderr,  # a crash report must reach the log
        )
        worker.execute_from_commandline()


@app.command()
def notifier() -> None:
    """Run the notifier (escalation events in, deliveries out)."""
    from services.notifier.app import create_app
    from shared.logging import configure_logging
    from shared.settings import NotifierSettings

    settings = NotifierSettings()
    configure_logging("notifier", settings.log_level)
    serve(create_app(settings, serving=True), settings.notifier_port)


# --- policies and demo -------------------------------------------------------------------------


@policy_app.command("check")
def policy_check(
    config_dir: Annotated[Path | None, typer.Argument(help="Folder of YAML; default $ESCALATION_CONFIG_DIR.")] = None,
) -> None:
    """Validate a configuration folder; errors name the file, line and field."""
    from services.notifier.directory.loader import load_directory
    from services.notifier.directory.targets import unknown_targets

    catalog = _catalog(config_dir)
    folder = config_dir or Path(os.environ.get("ESCALATION_CONFIG_DIR", "config"))
    try:
        directory = load_directory(folder)
    except ConfigError as exc:
        _fail(str(exc))
    problems = unknown_targets(folder, directory)
    if problems:
        _fail("\n".join(str(p) for p in problems))
    typer.echo(
        f"{folder}: {len(catalog.services)} services, {len(catalog.policies)} policies, "
        f"{len(catalog.calendars)} calendars, {len(directory.users)} users, {len(directory.teams)} teams, "
        f"{len(directory.schedules)} schedules: ok"
    )


def _catalog(config_dir: Path | None) -> Catalog:
    from services.escalator.config import load_catalog

    folder = config_dir or Path(os.environ.get("ESCALATION_CONFIG_DIR", "config"))
    try:
        return load_catalog(folder)
    except ConfigError as exc:
        _fail(str(exc))


ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Policy folder; default $ESCALATION_CONFIG_DIR.")
]


@policy_app.command("simulate")
def policy_simulate(
    script: Annotated[Path, typer.Argument(help="YAML: start, watch, events [{at: +5m, action: trigger, ...}].")],
    config_dir: ConfigOption = None,
) -> None:
    """Run timed events against the policies on a virtual clock and print who is paged when."""
    from services.escalator.simulation import load_script, simulate, timeline_rows

    catalog = _catalog(config_dir)
    try:
        parsed = load_script(script)
    except ConfigError as exc:
        _fail(str(exc))
    result = simulate(catalog, parsed)
    rows = timeline_rows(result)
    width = max((len(r[1]) for r in rows), default=10)
    typer.echo(f"simulation from {result.start.isoformat()}")
    for offset, key, type_, detail in rows:
        typer.echo(f"{offset:>16}  {key:<{width}}  {type_:<24} {detail}")
    steps = result.sim.steps()
    typer.echo(
        f"{len(result.sim.states)} incidents, {len(steps)} pages, {len(result.sim.events('sla.breached'))} SLA breaches"
    )


@policy_app.command("replay")
def policy_replay(
    history: Annotated[Path, typer.Argument(help="JSONL exported by the audit service (GET /v1/export.jsonl).")],
    config_dir: ConfigOption = None,
) -> None:
    """Show, incident by incident, what a candidate policy would have done with recorded history."""
    from services.escalator.simulation import read_history, replay

    catalog = _catalog(config_dir)
    try:
        with history.open(encoding="utf-8") as lines:
            incidents = read_history(lines, history)
    except OSError as exc:
        _fail(f"{history}: cannot read: {exc}")
    except ConfigError as exc:
        _fail(str(exc))
    changed = 0
    for outcome in replay(catalog, incidents):
        inc = outcome.incident
        start = inc.opened_at or inc.commands[0].occurred_at
        recorded = [(at - start, level, who) for at, level, who in inc.pages]
        candidate = [(at - start, level, who) for at, level, who in outcome.candidate_pages]
        same = recorded == candidate
        changed += not same
        typer.echo(f"incident {inc.incident_id} ({inc.incident_key}): {'same' if same else 'DIFFERENT'}")
        for label, pages in (("recorded ", recorded), ("candidate", candidate)):
            text = "; ".join(f"+{at} L{level} {who}" for at, level, who in pages) or "nobody paged"
            typer.echo(f"  {label}: {text}")
        if inc.acknowledged_at is not None:
            typer.echo(f"  time to acknowledge: {inc.acknowledged_at - start}")
    typer.echo(f"{len(incidents)} incidents replayed, {changed} would page differently")


@app.command("openapi")
def openapi(
    service: Annotated[str, typer.Argument(help="intake or audit.")],
) -> None:
    """Print a service's OpenAPI document (the checked-in copies live in docs/openapi/)."""
    typer.echo(openapi_json(service), nl=False)


def openapi_json(service: str) -> str:
    """The OpenAPI document of the intake or the audit API, as stable JSON."""
    if service == "intake":
        from services.intake.app import create_app as intake_app

        document = intake_app().openapi()
    elif service == "audit":
        from services.audit.app import create_app as audit_app

        document = audit_app().openapi()
    else:
        _fail("the services with an API are intake and audit")
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


@access_app.command("token")
def access_token(
    name: Annotated[str, typer.Argument(help="Name of the token's holder, e.g. jane-auditor.")],
    role: Annotated[str, typer.Option(help="responder, auditor, admin or integration.")] = "auditor",
    service: Annotated[str | None, typer.Option(help="The service an integration key reports for.")] = None,
) -> None:
    """Make a new token or integration key: give the holder the token, put the YAML lines in the config folder."""
    from shared.auth import Role, new_token, token_hash

    if role not in {r.value for r in Role}:
        _fail(f"--role must be one of {', '.join(r.value for r in Role)}")
    if (role == Role.INTEGRATION.value) != (service is not None):
        _fail("--service goes with --role integration, and only with it")
    token = new_token()
    typer.echo(f"token (shown once, give it to {name}): {token}")
    typer.echo(f"# add to a YAML file of the config folder:\naccess:\n  {name}:\n    role: {role}")
    if service is not None:
        typer.echo(f"    service: {service}")
    typer.echo(f"    token_sha256: {token_hash(token)}")


@app.command()
def demo(
    receiver_port: int = typer.Option(9999, help="Port of the demo webhook receiver."),
    timeout: float = typer.Option(120.0, help="Seconds to wait for the escalation."),
) -> None:
    """Trigger an incident on the running stack and show it escalate to a local webhook."""
    from services.demo import run_demo

    sys.exit(asyncio.run(run_demo(receiver_port, timeout, typer.echo)))


@app.command()
def chaos(
    duration: float = typer.Option(300.0, help="Seconds of load at least (longer while faults still run)."),
    rate: float = typer.Option(100.0, help="Events per second sent through the intakes."),
    seed: int = typer.Option(7, help="Seed of the load's mix (duplicates, acknowledgements, resolutions)."),
    workers: int = typer.Option(2, min=1, help="Workers of each service side by side."),
    faults: str = typer.Option("full", help="'full', 'short', or a comma-separated list of fault names."),
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Write the run's facts and checks here.")] = None,
) -> None:
    """Kill, restart and starve the services under steady load on a fresh stack; check the invariants."""
    from services.chaos import faults as fault_sets
    from services.chaos.run import Options, run, stack_from_env, write_json
    from services.stack.errors import StackError

    names = {"full": fault_sets.FULL, "short": fault_sets.SHORT}.get(faults) or tuple(faults.split(","))
    opts = Options(duration=duration, rate=rate, seed=seed, workers=workers, fault_names=names)
    try:
        result = asyncio.run(run(opts, stack_from_env(), typer.echo))
    except (StackError, ValueError) as exc:
        _fail(str(exc))
    except asyncio.CancelledError:
        _fail("stopped by SIGTERM; the workers it started are stopped")
    typer.echo(result.table())
    if json_out is not None:
        write_json(result, json_out)
    typer.echo("chaos: all invariants hold" if result.ok else "chaos: INVARIANTS BROKEN")
    raise typer.Exit(0 if result.ok else 1)


BENCH_OUT = Path("bench/results")


@app.command()
def bench(
    rate: float = typer.Option(5000.0, help="Events per second offered in the sustained phase."),
    duration: float = typer.Option(300.0, help="Seconds of the sustained phase."),
    latency_rate: float = typer.Option(1000.0, help="Events per second in the latency phase."),
    latency_seconds: float = typer.Option(30.0, help="Seconds of the latency phase."),
    workers: int = typer.Option(1, min=1, help="Workers of each service side by side."),
    out: Annotated[Path, typer.Option(help="Folder of e2e.json, e2e.md and e2e-latency.png.")] = BENCH_OUT,
) -> None:
    """Measure the whole pipeline on a fresh stack beside raw baselines of the same run; print one table."""
    from services.benchmark.report import markdown
    from services.benchmark.run import Options, run, stack_from_env
    from services.stack.errors import StackError

    opts = Options(
        rate=rate,
        duration=duration,
        latency_rate=latency_rate,
        latency_seconds=latency_seconds,
        workers=workers,
        out=out,
    )
    try:
        result = asyncio.run(run(opts, stack_from_env(), typer.echo))
    except (StackError, ValueError) as exc:
        _fail(str(exc))
    except asyncio.CancelledError:
        _fail("stopped by SIGTERM; the workers it started are stopped")
    typer.echo(markdown(result))
    typer.echo("written: " + ", ".join(result["files"]))


def main() -> None:
    """Entry point of the `escalation` command."""
    app()


if __name__ == "__main__":
    main()
