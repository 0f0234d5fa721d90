"""`copilot serve`: the FastAPI service with the Gradio panel mounted; the demo's tokens.

Import only light modules at the top (typer, ``ui.cli.common``); heavy ones inside the commands.
"""

from __future__ import annotations

import socket
import time
from typing import Annotated

import typer

from ui.cli.common import CliError


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): is another server running? "
                "pass --port"
            ) from None


def demo_tokens(echo=typer.echo) -> dict[str, str]:
    """Give each demo user (one per role) a fresh random API token in <COPILOT_VAR_DIR>/api_tokens.json
    and print them; with COPILOT_API_TOKENS set, say that those tokens are used instead."""
    from agent.settings import get_settings
    from tools.db import session_factory
    from ui.api.auth import write_demo_tokens
    from ui.cli.common import engine as make_engine

    settings = get_settings()
    if settings.api_tokens.strip():
        echo("API tokens: COPILOT_API_TOKENS is set, so the service uses those (no demo tokens written)")
        return {}
    from agent.governance.users import list_users

    with session_factory(make_engine())() as session:
        users = [u for u in list_users(session) if u.get("active", True)]
    if not users:
        echo("no users in the database: no API tokens written")
        return {}
    tokens = write_demo_tokens(settings.var_dir, [u["username"] for u in users])
    roles = {u["username"]: u["role"] for u in users}
    echo(f"demo users and their API tokens (valid 30 days; in {settings.var_dir / 'api_tokens.json'}):")
    for username, token in tokens.items():
        echo(f"  {username:<22} {roles[username]:<22} {token}")
    return tokens


def _start_feed(application, rate: float, count: int) -> None:
    """A simulated event feed on a daemon thread beside the server; its worker applies the events."""
    import threading

    from tools.events.simulate import run_feed

    services, worker = application.state.services, application.state.event_worker
    if worker is None:
        typer.echo(
            "copilot serve: no event worker here (COPILOT_EVENT_WORKER): run `copilot worker` beside it"
        )
    stop = threading.Event()
    threading.Thread(
        target=run_feed,
        kwargs={
            "rate": rate,
            "count": count,
            "stop": stop,
            "factory": services.factory,
            "on_event": worker.wake if worker is not None else None,
        },
        name="copilot-simulated-feed",
        daemon=True,
    ).start()
    typer.echo(f"copilot serve: simulating {count:,} source-system events at {rate:g}/s")


def _serve_processes(uvicorn, settings, workers: int, url: str, common: dict) -> None:
    """``workers`` uvicorn processes on one socket, each a stateless API (``ui.server:api_process``):
    everything they share is in PostgreSQL. Their metrics are summed through files in a directory
    of this run (prometheus-client's multiprocess mode), removed when the server stops."""
    import os
    import shutil

    metrics_dir = settings.var_dir / "metrics" / f"serve-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # read by each process at start
    typer.echo(
        f"copilot serve: {workers} API processes at {url}/api/v1 (docs {url}/docs); no web panel with "
        "--workers; each says when it is ready; Ctrl+C stops"
    )
    try:
        uvicorn.run("ui.server:api_process", factory=True, workers=workers, **common)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""

    @app.command("serve")
    def serve(
        host: Annotated[
            str, typer.Option(help="Interface to listen on (127.0.0.1: this machine only).")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
        simulate: Annotated[
            float | None,
            typer.Option(
                min=0.1,
                max=100,
                help="Also feed simulated ERP/WMS/TMS events at this rate a second (the demo: watch "
                "exceptions arrive in the queues); stops after --simulate-count or with the server.",
            ),
        ] = None,
        simulate_count: Annotated[int, typer.Option(min=1, help="Simulated events in all.")] = 3_600,
        workers: Annotated[
            int,
            typer.Option(
                min=1,
                max=64,
                help="API processes on the one port (PostgreSQL only; with more than one the web panel "
                "is not served: run it from a `copilot serve` of its own). docs/deploy.md sizes them.",
            ),
        ] = 1,
    ) -> None:
        """Serve the API (/api/v1, docs at /docs) and the web panel (/ui) in one process, or the API
        in --workers N processes.

        Loads the SOP index (indexing the shipped SOPs on first use) and the language model before
        it reports ready; GET /ready is green only when the database, the SOP index and the model
        are. SIGTERM (or Ctrl+C) lets requests
        in flight finish (COPILOT_SHUTDOWN_GRACE_S) and stops the background workers between two
        units of work; /metrics serves Prometheus metrics to loopback (or COPILOT_METRICS_TOKEN).
        """
        started = time.monotonic()

        import uvicorn

        from agent.settings import get_settings
        from agent.telemetry import configure_logging
        from ui.cli.common import engine

        settings = get_settings()
        checked = engine()  # one-line errors: unreachable database, schema not at head
        if workers > 1:
            if checked.dialect.name == "sqlite":
                raise CliError(
                    "--workers needs PostgreSQL (DATABASE_URL=postgresql+psycopg://…): SQLite takes one "
                    "writer at a time, so more processes would only queue behind each other"
                )
            if simulate is not None:
                raise CliError(
                    "--simulate runs beside one process: drop --workers or run `copilot events simulate`"
                )
        checked.dispose()
        _check_port(host, port)
        configure_logging(settings.log_level, settings.log_format)  # after the one-line refusals
        from agent.governance.audit_key import current_key

        if current_key() is None:  # after the checks: a refusal stays one line
            typer.echo(
                "copilot serve: WARNING the audit chain is not keyed: whoever can write the database "
                "could rewrite it; set COPILOT_AUDIT_KEY (docs/security.md)",
                err=True,
            )
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{shown}:{port}"

        def ready(checks: dict) -> None:
            bad = {k: v["detail"] for k, v in checks.items() if not v["ok"]}
            state = (
                "ready" if not bad else "NOT ready (" + "; ".join(f"{k}: {v}" for k, v in bad.items()) + ")"
            )
            loaded = ", ".join(f"{k} {v:g} s" for k, v in application.state.services.load_seconds.items())
            typer.echo(
                f"copilot serve: {state} in {time.monotonic() - started:.1f} s ({loaded}) — panel {url}/ui , "
                f"API {url}/api/v1 (docs {url}/docs); Ctrl+C stops"
            )

        # The access log (ui.api.observe) holds method, path, status and the request id; tokens travel
        # in headers, never logged. uvicorn's own log configuration is off: its loggers go to ours.
        common: dict = {
            "host": host,
            "port": port,
            "log_level": settings.log_level.lower(),
            "log_config": None,
            "access_log": False,
            "timeout_keep_alive": 30,
            "timeout_graceful_shutdown": settings.shutdown_grace_s,
        }
        if workers > 1:
            from ui.cli.common import retrieval_collection

            retrieval_collection()  # first use: the shipped SOPs indexed once, before N processes open it
            _serve_processes(uvicorn, settings, workers, url, common)
            return
        from ui.server import create_app

        application = create_app(settings, warm_up=True, on_ready=ready)
        if simulate is not None:
            _start_feed(application, simulate, simulate_count)
        uvicorn.run(application, **common)
