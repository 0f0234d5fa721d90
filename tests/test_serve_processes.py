"""`copilot serve` and `copilot worker` as real processes: `serve --workers 2` on PostgreSQL (both
processes answer on one port, their metrics add up), graceful SIGTERM (a request in flight is
answered, the listener closes first, exit 0), and a worker that stops between events on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests import api_world
from tests.deployment import Process, copilot, copilot_serve, free_port, http_status, wait_until
from tools.db import session_factory
from tools.fixtures import load_fixture

TOKEN = api_world.TOKENS["planner"]


def _env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COPILOT_", "LLM_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=database_url,
        LLM_PROVIDER="fake",
        COPILOT_VAR_DIR=str(tmp_path / "var"),
        COPILOT_API_TOKENS=api_world.token_setting(),
        COPILOT_AUDIT_KEY="k" * 40,
        **extra,
    )
    return env


def _get(url: str, *, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read().decode()


@pytest.mark.postgres
def test_serve_with_two_workers_answers_from_both_and_sums_their_metrics(tmp_path, pg_engine, pg_url):
    with session_factory(pg_engine)() as session:
        load_fixture(session, api_world.fixture(), case_id="api-world")
    api_world.ensure_users(pg_engine)
    port = free_port()
    env = _env(tmp_path, pg_url, COPILOT_LOG_FORMAT="json")
    serve = Process(
        "serve2",
        [sys.executable, "-m", "ui.cli.app", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        logs=tmp_path / "logs",
        url=f"http://127.0.0.1:{port}",
    )
    try:
        ready = re.compile(r"process (\d+) (NOT )?ready")
        wait_until(
            lambda: len(set(ready.findall(serve.output()))) >= 2,
            what="both API processes to finish warming up",
            timeout=180,
            watch=[serve],
        )
        statuses: list[int] = []

        def hit() -> None:  # a connection of its own each: the kernel spreads them over the processes
            statuses.append(_get(f"{serve.url}/api/v1/me", token=TOKEN)[0])

        threads = [threading.Thread(target=hit) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert statuses == [200] * 40
        lines = [json.loads(line) for line in serve.output().splitlines() if line.startswith("{")]
        served = {
            ln["process"]
            for ln in lines
            if ln["logger"] == "copilot.access" and "/api/v1/me" in ln["message"]
        }
        assert len(served) == 2, served  # both processes answered
        assert all(ln.get("request_id") for ln in lines if ln["logger"] == "copilot.access")
        body = _get(f"{serve.url}/metrics")[1]  # loopback: no token needed
        count = re.search(
            r'copilot_http_request_duration_seconds_count\{method="GET",route="/api/v1/me",status="200"\} (\S+)',
            body,
        )
        assert count and float(count.group(1)) == 40  # the two processes' samples, summed
        metrics_dir = Path(env["COPILOT_VAR_DIR"]) / "metrics" / f"serve-{serve.pid}"
        assert metrics_dir.is_dir()
        serve.popen.send_signal(signal.SIGTERM)
        assert serve.popen.wait(timeout=60) in (0, -signal.SIGTERM), serve.tail()
        assert not metrics_dir.exists()  # this run's metric files are removed with it
    finally:
        serve.stop()


def test_sigterm_lets_the_request_in_flight_finish_and_exits_cleanly(tmp_path):
    url = api_world.make_database(tmp_path / "world.db")
    serve = copilot_serve("serve", env=_env(tmp_path, url), logs=tmp_path / "logs")
    try:
        wait_until(
            lambda: http_status(f"{serve.url}/health") == 200, what="serve", timeout=120, watch=[serve]
        )
        body = json.dumps({"order_ids": ["SO-100002"]}).encode()
        port = int(serve.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(
                (
                    "POST /api/v1/triage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
                ).encode()
            )
            # The server asks for the body only once the app reads it: the request is in flight.
            assert conn.recv(1024).startswith(b"HTTP/1.1 100")
            serve.popen.send_signal(signal.SIGTERM)
            # It stops accepting new connections first ...
            wait_until(
                lambda: http_status(f"{serve.url}/health", timeout=1) is None,
                what="the listener to close",
                timeout=30,
            )
            assert serve.alive()
            conn.sendall(body)  # ... and still answers the request it had
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b"SO-100002" in payload
        # uvicorn re-raises the signal it caught once it has shut down cleanly: the exit status says
        # "stopped by SIGTERM" (what an init system expects), after the application's shutdown ran.
        assert serve.popen.wait(timeout=60) in (0, -signal.SIGTERM), serve.tail()
        assert "Application shutdown complete" in serve.output()
    finally:
        serve.stop()


def test_a_worker_stops_between_events_on_sigterm(tmp_path):
    url = api_world.make_database(tmp_path / "world.db")
    worker = copilot("worker", "worker", env=_env(tmp_path, url), logs=tmp_path / "logs")
    try:
        wait_until(
            lambda: "worker: applying events" in worker.output(), what="worker", timeout=120, watch=[worker]
        )
        worker.popen.send_signal(signal.SIGTERM)
        assert worker.popen.wait(timeout=60) == 0, worker.tail()
        assert "worker: stopped" in worker.output()
    finally:
        worker.stop()
