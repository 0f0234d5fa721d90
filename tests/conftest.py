"""Shared fixtures: databases on both backends, isolated from the developer's environment.

PostgreSQL tests run against ``TEST_POSTGRES_URL`` (default: the local server CI starts), each in a
fresh schema that is dropped afterwards. They fail, not skip, when the server is unreachable: CI
must prove the PostgreSQL path. ``COPILOT_SKIP_POSTGRES=1`` skips them on a laptop without one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from agent.governance.origin import set_origin, unset_origin
from agent.settings import apply_offline_defaults, get_settings
from tools.db import make_engine, scratch_schema, session_factory, upgrade

apply_offline_defaults()

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_SETTINGS_VARS = (
    "DATABASE_URL",
    "COPILOT_VAR_DIR",
    "COPILOT_LOG_LEVEL",
    "COPILOT_POLICY",
    "CHROMA_URL",
    "LLM_PROVIDER",
    "LLM_MODEL_PATH",
    "LLM_MODEL",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "LLM_TIMEOUT_S",
    "LLM_THREADS",
    "COPILOT_EVENT_SECRETS",
    "COPILOT_EVENT_WINDOW_S",
    "COPILOT_EVENT_WORKER",
    "COPILOT_RESUME_AFTER_S",
    "COPILOT_AUTOPILOT",
    "COPILOT_AUDIT_KEY",
    "COPILOT_API_RATE_PER_MINUTE",
    "COPILOT_API_MODEL_RATE_PER_MINUTE",
    "COPILOT_LOG_FORMAT",
    "COPILOT_DB_POOL_SIZE",
    "COPILOT_DB_MAX_OVERFLOW",
    "COPILOT_METRICS_TOKEN",
    "COPILOT_SHUTDOWN_GRACE_S",
    "PROMETHEUS_MULTIPROC_DIR",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:
    """No test sees the developer's settings, .env file or var/ folder."""
    for name in _SETTINGS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COPILOT_VAR_DIR", str(tmp_path / "var"))
    # The API's per-user limits are tested on their own (tests/test_trust_api.py); elsewhere a
    # test may send as many requests as it needs.
    monkeypatch.setenv("COPILOT_API_RATE_PER_MINUTE", "1000000")
    monkeypatch.setenv("COPILOT_API_MODEL_RATE_PER_MINUTE", "1000000")
    # Pre-explaining the queues (a background thread calling the model) is tested on its own
    # (tests/test_preexplain.py); elsewhere no model call happens that a test did not make.
    monkeypatch.setenv("COPILOT_PREEXPLAIN", "0")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    # A panel handler called directly (not through Gradio's thread pool, which copies the context)
    # sets the audit origin in the test's own context; no later test may inherit it.
    token = set_origin(None)
    # `copilot serve` / `worker` run in-process configure the root logger for a process's life; a
    # test's command must not leave it configured for the next test.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    unset_origin(token)
    get_settings.cache_clear()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema (dropped after the test)."""
    if os.environ.get("COPILOT_SKIP_POSTGRES") == "1":
        pytest.skip("COPILOT_SKIP_POSTGRES=1")
    with scratch_schema(PG_URL, "t", variable="TEST_POSTGRES_URL") as url:
        yield url


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, variable="TEST_POSTGRES_URL")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on SQLite and on PostgreSQL, schema at head."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)


@pytest.fixture
def world(sqlite_engine: Engine):
    """A session factory on the copilot's test world (``tests/copilot_world.py``) on SQLite."""
    from tests.copilot_world import load_world

    load_world(sqlite_engine)
    return session_factory(sqlite_engine)


@pytest.fixture
def world_sops(tmp_path):
    """The world's SOPs indexed with the fake embedding, in this test's folder."""
    from tests.copilot_world import sop_collection

    return sop_collection(tmp_path)


@pytest.fixture
def session(sqlite_engine: Engine) -> Iterator[Session]:
    with session_factory(sqlite_engine)() as s:
        yield s
