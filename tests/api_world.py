"""A small world for the service tests: three orders, users with tokens, the shipped SOPs indexed
with the fake embedding, the fake language model. Shared by the API, panel and browser tests.

- ``SO-100001``: clean (no exception).
- ``SO-100002``: customer C2 is 5 % over its credit limit with nothing overdue → ``CREDIT_HOLD``,
  recommendation ``RELEASE_CREDIT_HOLD`` at medium risk, approver ``credit_analyst``.
- ``SO-100003``: 600 × A at WH1, which has 500 → ``INVENTORY_SHORTFALL`` (C1 allows partial shipments).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from tests.factories import clean_fixture, edit, line, order
from tools.db import make_engine, session_factory, upgrade
from tools.fixtures import load_fixture

TOKENS = {
    "planner": "tok-planner-0123456789abcdef",
    "planner2": "tok-planner2-0123456789abcdef",
    "csr": "tok-csr-0123456789abcdef",
    "credit_analyst": "tok-credit-analyst-0123456789",
    "credit_manager": "tok-credit-manager-0123456789",
    "ops_manager": "tok-ops-manager-0123456789ab",
    "compliance_officer": "tok-compliance-0123456789ab",
    "admin": "tok-admin-0123456789abcdef",
}
ROLES = {
    "planner": "planner",
    "planner2": "planner",
    "csr": "csr",
    "credit_analyst": "credit_analyst",
    "credit_manager": "credit_manager",
    "ops_manager": "ops_manager",
    "compliance_officer": "compliance_officer",
    "admin": "admin",
}


HEADERS = {u: {"Authorization": f"Bearer {t}"} for u, t in TOKENS.items()}


def token_setting() -> str:
    return ",".join(f"{t}={u}" for u, t in TOKENS.items())


def services(monkeypatch, database: Path | str, *, var_dir: Path | None = None, collection=None, llm=None):
    """The service over this world, as the tests run it: the fake model, the world's tokens and
    ``database`` (a path: this world's database is made there; a string: a URL used as it is)."""
    from agent.settings import Settings
    from ui.api.service import Services

    monkeypatch.setenv("LLM_PROVIDER", "fake")
    monkeypatch.setenv("DATABASE_URL", make_database(database) if isinstance(database, Path) else database)
    monkeypatch.setenv("COPILOT_API_TOKENS", token_setting())
    if var_dir is not None:
        monkeypatch.setenv("COPILOT_VAR_DIR", str(var_dir))
    return Services(Settings(), collection=sop_collection() if collection is None else collection, llm=llm)


def fixture() -> dict:
    world = clean_fixture(
        order("SO-100001"),
        order("SO-100002", customer_id="C2", lines=[line(qty=10, unit_price=100)]),
        order("SO-100003", lines=[line(qty=600)]),
    )
    edit(
        world,
        "customers",
        "C2",
        credit_limit=10_000,
        open_balance=9_500,
        overdue_balance=0,
        allow_substitutions=False,
        allow_partial_shipments=False,
        export_license=False,
        email="b@bolt.test",
    )
    return world


def ensure_users(engine: Engine) -> None:
    """The test users (the migration may already hold the demo users named after their roles)."""
    import datetime as dt

    from tools.models import User

    with session_factory(engine)() as session:
        for username, role in ROLES.items():
            if session.get(User, username) is None:
                session.add(
                    User(
                        username=username,
                        role=role,
                        display_name=username,
                        active=True,
                        created_at=dt.datetime.now(dt.UTC),
                    )
                )
        session.commit()


def make_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        load_fixture(session, fixture(), case_id="api-world")
    ensure_users(engine)
    engine.dispose()
    return url


SOP_FILES = ("sop-credit-001.md", "sop-credit-002.md", "sop-inv-001.md", "sop-inv-002.md")
_SHARED: dict[str, object] = {}


def sop_collection(folder: Path | None = None):
    """The SOPs of this world's exceptions (credit, inventory) indexed with the fake (hash) embedding.

    Without ``folder``: one index per test process, built on first use in a temporary folder
    (removed at exit) and shared read-only by the service tests.
    """
    import atexit
    import shutil
    import tempfile

    from knowledge.embeddings import FakeEmbeddingFunction
    from knowledge.ingest import SOP_DIR, ingest
    from knowledge.store import open_collection

    if folder is None:
        if "sops" not in _SHARED:
            tmp = Path(tempfile.mkdtemp(prefix="copilot-test-sops-"))
            atexit.register(shutil.rmtree, tmp, ignore_errors=True)
            _SHARED["sops"] = sop_collection(tmp)
        return _SHARED["sops"]
    col = open_collection(FakeEmbeddingFunction(), var_dir=folder)
    ingest(col, [SOP_DIR / name for name in SOP_FILES], echo=lambda _line: None, progress=False)
    return col


class LiveServer:
    """``app`` served by uvicorn in a thread on a free loopback port (for gradio_client and the browser)."""

    def __init__(self, app) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=1,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:  # uvicorn sets it once the socket listens
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            self.thread.join(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
