"""The copilot as a deployment of many processes, proven together on loopback (issue: scale-out).

PostgreSQL (running on the machine), a Chroma server (``chroma run`` from the chromadb wheel),
llama-cpp-python's OpenAI-compatible server with the pinned GGUF, RabbitMQ (running on the
machine), two ``copilot serve`` processes (A and B), two ``copilot worker`` processes and one
``copilot events consume``, each its own operating-system process. The scenario:

1. all start at the same moment on a fresh schema (two `copilot db upgrade` at once; the serves
   before the model server: they report it missing, retry their warm-up with backoff, and turn
   ready without a restart once it is up);
2. source-system events go in through RabbitMQ; the exceptions they cause show in the queues;
3. a chat thread started on A is continued on B;
4. one request approved through A and B at the same moment: one execution;
5. another approved through A, which is SIGKILLed after the decision is committed and before the
   execution — made observable by holding the checkpoint table locked, so A's resume waits where
   a slow or dying process would; B carries the request on;
6. ``copilot audit verify`` is green, and nothing is lost: every event stored and applied, the
   broker's queue and its dead letters empty, each request executed once.

Every wait polls a condition with a deadline (``tests.deployment.wait_until``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import uuid
from pathlib import Path

import httpx
import pika
import psycopg
import pytest
from sqlalchemy import func, select

from agent.checkpoint import open_checkpointer
from agent.governance.audit import EVENT_RESUMED
from tests.api_world import HEADERS, ensure_users, token_setting
from tests.deployment import (
    MODEL_ALIAS,
    chroma_ready,
    chroma_server,
    copilot,
    copilot_serve,
    free_port,
    http_status,
    model_ready,
    model_server,
    run_copilot,
    wait_until,
)
from tests.factories import clean_fixture, edit, order
from tools.db import make_engine, scratch_schema, session_factory
from tools.fixtures import load_fixture
from tools.models import ActionRequest, AuditEvent, EventInbox, Execution, Inventory

pytestmark = [pytest.mark.topology, pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.model]

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BROKER = "amqp://guest:guest@127.0.0.1:5672/"
RESUME_AFTER_S = 5  # how long an approved, unexecuted request waits before another process takes it
EVENTS = 12
SOPS = Path(__file__).resolve().parents[1] / "knowledge" / "sops"


def _world() -> dict:
    """SO1 and SO2 each need 10 A at WH1 (500 there now); WH3, same region, has 100."""
    fx = clean_fixture(order("SO1"), order("SO2"))
    edit(fx, "warehouses", "WH3", name="Albany", region="east", country="US")
    edit(fx, "inventory", "A/WH3", on_hand=100)
    return fx


def _events() -> list[dict]:
    """Stock counts of A at WH1 going down; the last leaves 4, short for both orders."""
    start = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
    return [
        {
            "event_id": f"count-{n}",
            "source": "wms",
            "type": "inventory.adjusted",
            "occurred_at": (start + dt.timedelta(minutes=n)).isoformat().replace("+00:00", "Z"),
            "records": {"inventory": [{"sku": "A", "warehouse_id": "WH1", "on_hand": on_hand}]},
        }
        for n, on_hand in enumerate([*range(500, 500 - 40 * (EVENTS - 1), -40), 4])
    ]


@pytest.fixture
def deployment(tmp_path_factory):
    """Everything started; yields a dict of the parts; stops every process it started."""
    from agent.llm.local_model import ensure_model

    base = tmp_path_factory.mktemp("topology")
    logs = base / "logs"
    procs: list = []
    with scratch_schema(PG_URL, "topo", variable="TEST_POSTGRES_URL") as url:
        queue = f"copilot-topology-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            "DATABASE_URL": url,
            "COPILOT_VAR_DIR": str(base / "var"),
            "COPILOT_API_TOKENS": token_setting(),
            "COPILOT_EVENT_WORKER": "off",  # the worker processes apply events
            "COPILOT_RESUME_AFTER_S": str(RESUME_AFTER_S),
            "COPILOT_LOG_LEVEL": "WARNING",
            # no background explanations competing with the measured requests for the model server
            "COPILOT_PREEXPLAIN": "0",
            "LLM_PROVIDER": "openai",
            "LLM_MODEL": MODEL_ALIAS,
            "OPENAI_API_KEY": "sk-local",
            "LLM_TIMEOUT_S": "120",
            "CI": "true",  # no progress bars in the logs
        }
        try:
            chroma, chroma_url = chroma_server(base / "chroma", env=env, logs=logs)
            procs.append(chroma)
            env["CHROMA_URL"] = chroma_url
            # the model server's address is known before it runs: the serves start first, and retry
            gguf: list[Path] = []
            assembling = threading.Thread(target=lambda: gguf.append(ensure_model(base / "models")))
            assembling.start()
            model_port = free_port()
            env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{model_port}/v1"

            engine = make_engine(url)
            migrate = [copilot(f"db-upgrade-{i}", "db", "upgrade", env=env, logs=logs) for i in (1, 2)]
            for p in migrate:  # two operators (or two deploy hooks) migrating at the same moment
                assert p.popen.wait(timeout=300) == 0, p.output()
            with session_factory(engine)() as s:
                load_fixture(s, _world(), case_id="topology")
            ensure_users(engine)

            serves = {name: copilot_serve(f"serve-{name}", env=env, logs=logs) for name in ("A", "B")}
            procs += serves.values()
            workers = [copilot(f"worker-{i}", "worker", "--poll", "0.2", env=env, logs=logs) for i in (1, 2)]
            consumer = copilot(
                "consume", "events", "consume", "--broker", BROKER, "--queue", queue, env=env, logs=logs
            )
            procs += [*workers, consumer]

            wait_until(
                lambda: chroma_ready(chroma_url), what="the Chroma server", timeout=120, watch=[chroma]
            )
            # the SOPs of this world's exceptions (embedding all of them takes minutes on two cores)
            sops = [str(SOPS / name) for name in ("sop-inv-001.md", "sop-inv-002.md")]
            ingest = copilot("ingest", "knowledge", "ingest", *sops, env=env, logs=logs)
            # the serves find no model server: they say so, and keep trying
            for p in serves.values():
                wait_until(
                    lambda p=p: "NOT ready" in p.output() and "model: LLM" in p.output(),
                    what=f"{p.name} to report the model server missing",
                    timeout=240,
                    watch=[p],
                )
            assembling.join(timeout=300)
            assert gguf, "the pinned GGUF did not assemble"
            model, model_url = model_server(gguf[0], env=env, logs=logs, port=model_port)
            procs.append(model)
            assert ingest.popen.wait(timeout=300) == 0, ingest.output()
            wait_until(lambda: model_ready(model_url), what="the model server", timeout=180, watch=[model])
            for p in serves.values():
                wait_until(
                    lambda p=p: http_status(f"{p.url}/ready") == 200,
                    what=f"{p.name} ready",
                    timeout=240,
                    watch=[p],
                )
                assert "trying again in" in p.output() and "every part loaded at attempt" in p.output(), (
                    p.tail()
                )
            yield {
                "url": url,
                "env": env,
                "engine": engine,
                "serves": serves,
                "workers": workers,
                "consumer": consumer,
                "queue": queue,
                "logs": logs,
            }
            engine.dispose()
        finally:
            for p in reversed(procs):
                p.stop()
            with pika.BlockingConnection(pika.URLParameters(BROKER)) as conn:
                ch = conn.channel()
                ch.queue_delete(queue=queue)
                ch.queue_delete(queue=f"{queue}.dead")


def _count(engine, model, *where) -> int:
    with session_factory(engine)() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _publish(queue: str, events: list[dict]) -> None:
    with pika.BlockingConnection(pika.URLParameters(BROKER)) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        for event in events:
            ch.basic_publish(
                exchange="",
                routing_key=queue,
                body=json.dumps(event).encode(),
                properties=pika.BasicProperties(delivery_mode=2),
                mandatory=True,
            )


def _queue_depths(queue: str) -> tuple[int, int]:
    with pika.BlockingConnection(pika.URLParameters(BROKER)) as conn:
        ch = conn.channel()
        main = ch.queue_declare(queue=queue, passive=True).method.message_count
        dead = ch.queue_declare(queue=f"{queue}.dead", passive=True).method.message_count
        return main, dead


def _chat_state(url: str, thread: str) -> dict:
    with open_checkpointer(url) as saver:
        saved = saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
    return dict(saved.checkpoint["channel_values"]) if saved else {}


def test_a_deployment_of_many_processes(deployment):
    d = deployment
    engine, A, B = d["engine"], d["serves"]["A"], d["serves"]["B"]
    everyone = [A, B, *d["workers"], d["consumer"]]
    api = {name: httpx.Client(base_url=p.url, timeout=180) for name, p in d["serves"].items()}

    # --- events in through RabbitMQ; the exceptions they cause in the queues --------------------
    _publish(d["queue"], _events())
    wait_until(
        lambda: _count(engine, EventInbox, EventInbox.status == "applied") == EVENTS,
        what=f"{EVENTS} events applied",
        timeout=90,
        watch=everyone,
    )

    def shortfalls() -> set[str]:
        items = api["B"].get("/api/v1/queue", headers=HEADERS["planner"]).json()["items"]
        return {i["order_id"] for i in items if i["type"] == "INVENTORY_SHORTFALL"}

    wait_until(lambda: shortfalls() >= {"SO1", "SO2"}, what="the shortfalls in the queue", timeout=30)

    # --- a chat thread started on A, continued on B ----------------------------------------------
    first = api["A"].post(
        "/api/v1/chat/t1",
        json={"message": "What is blocking SO1?", "stream": False},
        headers=HEADERS["planner"],
    )
    assert first.status_code == 200, first.text
    second = api["B"].post(
        "/api/v1/chat/t1",
        json={"message": "What do you recommend for it?", "stream": False},
        headers=HEADERS["planner"],
    )
    assert second.status_code == 200, second.text
    state = _chat_state(d["url"], "planner:t1")
    said = [m["content"] for m in state["messages"] if m["role"] == "user"]
    assert said == ["What is blocking SO1?", "What do you recommend for it?"]  # one thread, both turns
    assert state["focus"]["order_id"] == "SO1"  # B answered "it" from what A's turn had settled

    # --- one request, approved through A and B at the same moment: one execution ----------------
    filed = api["A"].post("/api/v1/requests", json={"order_id": "SO1"}, headers=HEADERS["csr"]).json()
    assert filed["status"] == "pending_approval" and filed["action"] == "REALLOCATE_WAREHOUSE", filed
    start, answers = threading.Barrier(2), {}

    def approve(name: str, user: str) -> None:
        start.wait()
        answers[name] = api[name].post(f"/api/v1/requests/{filed['id']}/approve", headers=HEADERS[user])

    both = [threading.Thread(target=approve, args=a) for a in (("A", "planner"), ("B", "planner2"))]
    for t in both:
        t.start()
    for t in both:
        t.join()
    assert sorted(r.status_code for r in answers.values()) == [200, 409], {
        k: v.text for k, v in answers.items()
    }
    assert _count(engine, Execution, Execution.request_id == filed["id"]) == 1

    # --- A killed between the approval and the execution; B carries the request on --------------
    second_req = api["B"].post("/api/v1/requests", json={"order_id": "SO2"}, headers=HEADERS["csr"]).json()
    assert second_req["status"] == "pending_approval", second_req
    rid = second_req["id"]
    hold = psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=False)
    schema = d["url"].rsplit("%3D", 1)[1]
    hold.execute(f'LOCK TABLE "{schema}".checkpoints IN ACCESS EXCLUSIVE MODE')
    died: dict = {}

    def approve_on_a() -> None:
        try:
            died["answer"] = api["A"].post(f"/api/v1/requests/{rid}/approve", headers=HEADERS["planner"])
        except httpx.HTTPError as exc:
            died["error"] = exc

    on_a = threading.Thread(target=approve_on_a)
    on_a.start()

    def decided_not_executed() -> bool:
        with session_factory(engine)() as s:
            req = s.get(ActionRequest, rid)
            ran = s.scalar(select(Execution.id).where(Execution.request_id == rid))
            return req is not None and req.status == "approved" and ran is None

    wait_until(
        decided_not_executed, what="the decision committed, the execution not yet", timeout=60, watch=[A]
    )
    seen = api["B"].get(f"/api/v1/requests/{rid}", headers=HEADERS["planner"]).json()
    assert seen["status"] == "approved" and seen["execution"] is None  # observable from any process
    A.kill()
    hold.rollback()  # A's resume would have gone on from here; A is gone
    hold.close()
    on_a.join(timeout=30)
    assert "error" in died, died  # the planner's call to A died with A
    done = wait_until(
        lambda: (
            (r := api["B"].get(f"/api/v1/requests/{rid}", headers=HEADERS["planner"]).json())["status"]
            == "executed"
            and r
        ),
        what="the request carried on by another process",
        timeout=60,
        watch=[B, *d["workers"]],
    )
    assert done["execution"]["status"] == "executed"
    with session_factory(engine)() as s:
        resumed = s.scalars(
            select(AuditEvent).where(AuditEvent.event_type == EVENT_RESUMED, AuditEvent.request_id == rid)
        ).all()
        # carried on once, by a process alive (B or a worker; on a loaded machine any live process
        # may also have resumed a slow one's request: harmless, its execution still runs once)
        alive = {f"serve@{socket.gethostname()}:{B.pid}"} | {
            f"worker@{socket.gethostname()}:{w.pid}" for w in d["workers"]
        }
        assert len(resumed) == 1 and resumed[0].actor in alive, [e.actor for e in resumed]
        assert s.get(Inventory, ("A", "WH3")).allocated == 20  # both orders moved, each once
    assert _count(engine, Execution) == 2
    assert _count(engine, Execution, Execution.request_id == rid) == 1

    # --- the audit chain is whole, nothing is lost -----------------------------------------------
    verify = run_copilot("audit", "verify", env=d["env"])
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert _count(engine, EventInbox) == EVENTS
    assert _count(engine, EventInbox, EventInbox.status != "applied") == 0
    assert _queue_depths(d["queue"]) == (0, 0)
    for p in [B, *d["workers"], d["consumer"]]:
        assert p.alive(), f"{p.name} exited:\n{p.tail()}"
