"""Start-up is safe to run concurrently: processes started at the same moment on one fresh
PostgreSQL schema all create or migrate it without a deadlock (they take turns under an advisory
lock), and a service whose warm-up failed tries again, with backoff, until it is ready."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import text

from tools.db import current_revision, head_revision, make_engine

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = 4

# Each process waits at the start line (a line on its stdin), then sets up the schema.
_SETUP = """
import sys
from agent.checkpoint import open_checkpointer
from tools.db import make_engine, upgrade
url = sys.argv[1]
sys.stdin.readline()
if sys.argv[2] == "upgrade":
    upgrade(make_engine(url))
with open_checkpointer(url) as saver:
    saver.get_tuple({"configurable": {"thread_id": "none", "checkpoint_ns": ""}})
print("ok")
"""


def _start_together(args: list[list[str]], env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SETUP, *a],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in args
    ]
    for p in procs:  # the imports are done by now or soon: all go at once
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p, a in zip(procs, args, strict=True):
        out, err = p.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(a, p.returncode, out, err))
    return results


@pytest.mark.postgres
@pytest.mark.parametrize("step", ["upgrade", "checkpoints"])
def test_processes_started_at_once_set_up_a_fresh_schema_once(pg_url, step):
    """Four processes on a fresh schema at the same moment: the migrations (``upgrade``: from nothing)
    or LangGraph's checkpoint tables (``checkpoints``: schema at head, no checkpoint tables yet)."""
    engine = make_engine(pg_url)
    if step == "checkpoints":
        from tools.db import upgrade

        upgrade(engine)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results = _start_together([[pg_url, step] for _ in range(PROCESSES)], env)
    for r in results:
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT v FROM checkpoint_migrations ORDER BY v")).scalars().all()
    assert versions == sorted(set(versions)) and versions[0] == 0  # each migration recorded once
    engine.dispose()


@pytest.mark.postgres
def test_db_upgrade_also_prepares_the_checkpoint_tables(pg_url, monkeypatch, capsys):
    from tests.cli_run import run

    monkeypatch.setenv("DATABASE_URL", pg_url)
    code, out, err = run(monkeypatch, capsys, "db", "upgrade")
    assert "at schema revision" in out
    assert code == 0, err
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM checkpoint_migrations")).scalar() > 0
    engine.dispose()


# --- a warm-up that failed is tried again ----------------------------------------------------------------


class _ModelServer:
    """An OpenAI-compatible chat endpoint on a given port of 127.0.0.1, started when the test says."""

    def __init__(self, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "OK"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _remote_model(port: int):
    """The OpenAI-compatible provider aimed at ``port`` of this machine (nothing listens there yet)."""
    from agent.llm import get_llm
    from agent.settings import Settings

    return get_llm(
        Settings(
            LLM_PROVIDER="openai",
            LLM_MODEL="local-qwen",
            OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
            OPENAI_API_KEY="sk-local",
            LLM_TIMEOUT_S=2,
        )
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_model_server_that_comes_up_late_makes_the_service_ready_without_a_restart(
    tmp_path, monkeypatch, caplog
):
    from tests.api_world import services as world_services

    port = _free_port()
    svc = world_services(monkeypatch, tmp_path / "w.db", llm=_remote_model(port))
    svc.warm_up()
    model = svc.readiness()["model"]
    assert model["ok"] is False and model["detail"].startswith("LLM"), model
    ready: list[dict] = []
    retry = threading.Thread(
        target=svc.retry_warm_up, args=(ready.append,), kwargs={"first_delay_s": 0.05, "max_delay_s": 0.2}
    )
    with caplog.at_level("WARNING", logger="copilot.api"):
        retry.start()
        deadline = time.monotonic() + 5
        while svc.warm_up_attempts < 3:  # it keeps trying while the model server is down
            assert time.monotonic() < deadline and retry.is_alive()
            time.sleep(0.01)
        server = _ModelServer(port)
        try:
            retry.join(timeout=30)
            assert not retry.is_alive()
            checks = svc.readiness()
            assert checks["model"]["ok"] is True, checks
            assert ready and ready[0]["model"]["ok"] is True  # `copilot serve` prints "ready"
        finally:
            server.close()
            svc.close()
    assert "trying again in" in caplog.text and "every part loaded at attempt" in caplog.text


def test_a_closing_service_stops_retrying(tmp_path, monkeypatch):
    from tests.api_world import services as world_services

    svc = world_services(monkeypatch, tmp_path / "w.db", llm=_remote_model(_free_port()))
    svc.warm_up()
    outcome: list[bool] = []
    retry = threading.Thread(target=lambda: outcome.append(svc.retry_warm_up(first_delay_s=60)))
    retry.start()
    svc.close()
    retry.join(timeout=10)
    assert outcome == [False]
