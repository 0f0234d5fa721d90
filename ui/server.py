"""The HTTP service: the JSON API (``ui.api``) and the web panel (``ui.panel``) on one port.

``create_app`` is what ``copilot serve`` runs and what the tests start: the API around one
:class:`ui.api.service.Services`, with the panel mounted at ``/ui`` on the same services. The API
knows nothing of the panel; the panel calls the API's services, never its routes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Response

from agent.settings import Settings, apply_offline_defaults, get_settings
from agent.telemetry import configure_logging
from ui.api.app import create_api
from ui.api.service import Services
from ui.panel import PANEL_PATH, mount_panel
from ui.panel.gate import PanelGate

__all__ = ["api_process", "create_app"]


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    panel: bool = True,
    warm_up: bool = False,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> FastAPI:
    """The API (and, with ``panel``, the Gradio panel at ``/ui``) around one set of services.

    ``services``: a prepared :class:`Services` (tests pass one with the fake embedding and model).
    ``warm_up``: load the SOP index and the model at start-up (``copilot serve`` does), while the
    app and the panel are built; ``on_ready(checks)``: called with the readiness checks once
    start-up is done.
    """
    apply_offline_defaults()
    services = services or Services(settings or get_settings())
    app = create_api(
        services=services,
        warm_up=warm_up,
        on_ready=on_ready,
        mounted=(PANEL_PATH,) if panel else (),
    )
    if panel:
        mount_panel(app, services)
        # the panel's page asks the site root for its icon; a 404 there is an error in every
        # browser console that opens the panel: answer "no icon" instead
        app.add_api_route(
            "/favicon.ico",
            lambda: Response(status_code=204),
            methods=["GET"],
            include_in_schema=False,
        )
        app.add_middleware(PanelGate, prefix=PANEL_PATH)  # no anonymous uploads or file serving
    return app


def api_process() -> FastAPI:
    """One of ``copilot serve --workers N``'s processes: the API (no panel), warmed up, its readiness
    logged with its process id. Settings come from the environment, as for ``copilot serve``."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("copilot.serve")

    def ready(checks: dict[str, Any]) -> None:
        bad = {k: v["detail"] for k, v in checks.items() if not v["ok"]}
        if bad:
            log.warning(
                "process %s NOT ready: %s", os.getpid(), "; ".join(f"{k}: {v}" for k, v in bad.items())
            )
        else:
            log.info("process %s ready", os.getpid())

    return create_app(settings, panel=False, warm_up=True, on_ready=ready)
