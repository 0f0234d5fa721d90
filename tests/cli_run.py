"""Run the ``copilot`` command line in-process, as a user would type it (shared by the CLI tests)."""

from __future__ import annotations

import sys

import pytest


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``copilot ARGS…`` in this process: (exit code, stdout, stderr)."""
    from ui.cli.app import main

    monkeypatch.setattr(sys, "argv", ["copilot", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    code = info.value.code if isinstance(info.value.code, int) else (0 if info.value.code is None else 1)
    return code, out, err
