"""A copilot deployment on loopback, for tests that need the real processes: each part as its own
operating-system process, started the way an operator starts it, its output kept in a log file.

- :class:`Process`: one command (``copilot serve``, ``copilot worker``, ``chroma run``,
  ``python -m llama_cpp.server`` ...) in its own session, killable by signal, with its log.
- :func:`wait_until`: poll a condition until a deadline; on timeout (or when a watched process
  died) the error carries the tails of the logs. Never a fixed sleep.
- :func:`chroma_server`, :func:`model_server`: the Chroma server from the chromadb wheel, and
  llama-cpp-python's OpenAI-compatible server with the pinned GGUF (``agent.llm.local_model``).
- :func:`copilot`: a ``copilot`` sub-command of this checkout, with the deployment's environment.

Used by ``tests/test_topology.py``; reusable for any test or benchmark that needs a model server
or a Chroma server on this machine (nothing here downloads anything).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A started command; output (stdout and stderr) in ``log``."""

    def __init__(
        self, name: str, args: list[str], *, env: Mapping[str, str], logs: Path, url: str = ""
    ) -> None:
        self.name, self.args, self.url = name, args, url
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"{name}.log"
        self._out: IO[bytes] = open(self.log, "wb")  # closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=dict(env), stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye — a crash."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL to the whole session if it has not exited within ``timeout``."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=30)
        self._out.close()


class DeploymentError(AssertionError):
    """A condition did not hold in time; the message carries what the processes logged."""


def wait_until(
    condition: Callable[[], Any],
    *,
    what: str,
    timeout: float,
    watch: Iterable[Process] = (),
    every: float = 0.2,
) -> Any:
    """Poll ``condition`` until it returns a truthy value (returned); fail after ``timeout`` seconds
    or as soon as a process in ``watch`` has exited, with the tails of their logs."""
    watch = list(watch)
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        dead = [p for p in watch if not p.alive()]
        if dead or time.monotonic() > deadline:
            why = f"{', '.join(p.name for p in dead)} exited" if dead else f"not within {timeout:g} s"
            logs = "\n".join(f"--- {p.name} (pid {p.pid}) ---\n{p.tail()}" for p in watch)
            raise DeploymentError(f"waiting for {what}: {why}\n{logs}")
        time.sleep(every)


def http_status(url: str, *, timeout: float = 5.0) -> int | None:
    """The HTTP status of GET ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


def chroma_server(path: Path, *, env: Mapping[str, str], logs: Path) -> tuple[Process, str]:
    """``chroma run`` (the chromadb wheel's server) on a free port of 127.0.0.1; (process, URL)."""
    port = free_port()
    proc = Process(
        "chroma",
        [str(BIN / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "ANONYMIZED_TELEMETRY": "False"},
        logs=logs,
    )
    return proc, f"http://127.0.0.1:{port}"


def chroma_ready(url: str) -> bool:
    return http_status(f"{url}/api/v2/heartbeat") == 200


MODEL_ALIAS = "local-qwen"


def model_server(
    gguf: Path,
    *,
    env: Mapping[str, str],
    logs: Path,
    port: int | None = None,
    n_ctx: int = 4096,
    threads: int = 2,
) -> tuple[Process, str]:
    """llama-cpp-python's OpenAI-compatible server with ``gguf`` on ``port`` (default: a free one);
    (process, base URL ending in /v1). Needs the ``llama-cpp-python[server]`` extras (sse-starlette,
    starlette-context)."""
    port = port or free_port()
    args = [PYTHON, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS]
    args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
    args += ["--interrupt_requests", "false"]  # never cut a running answer short for a newer request
    return Process("model-server", args, env=env, logs=logs), f"http://127.0.0.1:{port}/v1"


def model_ready(base_url: str) -> bool:
    return http_status(f"{base_url}/models") == 200


def copilot(name: str, *args: str, env: Mapping[str, str], logs: Path) -> Process:
    """``copilot ARGS`` of this checkout as a process of its own."""
    return Process(name, [PYTHON, "-m", "ui.cli.app", *args], env=env, logs=logs)


def copilot_serve(name: str, *, env: Mapping[str, str], logs: Path) -> Process:
    """``copilot serve`` on a free port of 127.0.0.1; its base URL in ``url``."""
    port = free_port()
    return Process(
        name,
        [PYTHON, "-m", "ui.cli.app", "serve", "--port", str(port)],
        env=env,
        logs=logs,
        url=f"http://127.0.0.1:{port}",
    )


def run_copilot(*args: str, env: Mapping[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """``copilot ARGS`` to completion: (exit code, stdout, stderr) in a CompletedProcess."""
    return subprocess.run(
        [PYTHON, "-m", "ui.cli.app", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
