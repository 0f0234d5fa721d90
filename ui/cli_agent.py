"""Agent commands: `copilot chat` (issue 5). `copilot triage --explain` lives in ui/cli.py.

Import only light modules at the top (typer, ``ui.cli_common``); heavy ones inside the commands.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""
