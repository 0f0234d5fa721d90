"""Chat (server-sent events per thread) and free-text triage through the API, with the fake model;
the service keeps answering while the model writes."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient

from agent.llm import FakeLLM
from agent.settings import Settings
from tests import api_world
from ui.api.models import MAX_ORDER_IDS, MAX_TEXT_LINES
from ui.api.service import Services
from ui.server import create_app

H = api_world.HEADERS


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDER", "fake")
    monkeypatch.setenv("DATABASE_URL", api_world.make_database(tmp_path / "chat.db"))
    monkeypatch.setenv("COPILOT_API_TOKENS", api_world.token_setting())


def _client(llm=None) -> TestClient:
    return TestClient(
        create_app(services=Services(Settings(), collection=api_world.sop_collection(), llm=llm), panel=False)
    )


def _events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_chat_streams_events_per_thread_and_user(world):
    with _client() as c:
        resp = c.post(
            "/api/v1/chat/t1", json={"message": "What is blocking SO-100002?"}, headers=H["planner"]
        )
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        events = _events(resp.text)
        kinds = [k for k, _ in events]
        assert kinds[-1] == "final" and "tool" in kinds
        final = events[-1][1]
        assert "SO-100002" in final["answer"] and final["thread_id"] == "planner:t1"
        assert any(
            t["name"] == "triage_order" and t["args"] == {"order_id": "SO-100002"}
            for t in final["tool_calls"]
        )

        again = c.post(
            "/api/v1/chat/t1", json={"message": "and SO-100003?", "stream": False}, headers=H["planner"]
        )
        assert again.status_code == 200 and "SO-100003" in again.json()["answer"]
        assert again.json()["fallback"] is True  # the fake model has no script: the facts answer, and say so


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/api/v1/chat/t1", {"message": ""}, 422),
        ("/api/v1/chat/t1", {"message": " \n\t "}, 422),
        ("/api/v1/chat/t1", {"message": " \n\t ", "stream": False}, 422),
        ("/api/v1/chat/t1", {"message": "x" * 4_001}, 422),
        ("/api/v1/chat/t1", {"message": "hi", "extra": 1}, 422),
        ("/api/v1/chat/bad%20thread", {"message": "hi"}, 422),
        ("/api/v1/chat/" + "t" * 65, {"message": "hi"}, 422),
    ],
)
def test_malformed_chat_is_422(world, path, body, status):
    with _client() as c:
        resp = c.post(path, json=body, headers=H["planner"])
        assert resp.status_code == status and resp.json()["error"] == "invalid", resp.text


def test_chat_needs_a_token(world):
    with _client() as c:
        assert c.post("/api/v1/chat/t1", json={"message": "hi"}).status_code == 401


def test_text_triage_lists_unknown_orders_and_triages_the_rest(world):
    email = "Hello,\nwhere are SO-100002 and SO-404 and SO-100003? Please ship a substitute.\nThanks, Bolt"
    with _client() as c:
        body = c.post("/api/v1/triage/text", json={"text": email}, headers=H["csr"]).json()
        assert body["order_ids"] == ["SO-100002", "SO-100003"] and body["not_found"] == ["SO-404"]
        triaged = {r["order_id"]: r for r in body["results"]}
        assert [o for o, r in triaged.items() if not r.get("error")] == ["SO-100002", "SO-100003"]
        assert "not found" in triaged["SO-404"]["error"]
        assert triaged["SO-100002"]["recommendation"]["action"] == "RELEASE_CREDIT_HOLD"
        none = c.post("/api/v1/triage/text", json={"text": "no numbers here"}, headers=H["csr"]).json()
        assert none["results"] == [] and none["order_ids"] == []


def test_a_10000_line_paste_is_refused_with_the_limit_named(world):
    paste = "\n".join(f"SO-{100000 + i}" for i in range(10_000))
    with _client() as c:
        resp = c.post("/api/v1/triage/text", json={"text": paste}, headers=H["csr"])
    assert resp.status_code == 413, resp.text
    assert (
        resp.json()["message"] == f"the pasted text has 10,000 lines; the limit is {MAX_TEXT_LINES:,} lines"
    )


def test_service_answers_while_the_model_writes(world):
    """A chat turn blocked inside the model does not hold up health checks, triage or other chats."""
    import httpx

    entered, release = threading.Event(), threading.Event()

    def slow_model(_messages):
        entered.set()
        release.wait(30)
        return "Order SO-100002 waits for a credit release."

    svc = Services(Settings(), collection=api_world.sop_collection(), llm=FakeLLM(slow_model))
    with api_world.LiveServer(create_app(services=svc, panel=False)) as live:
        result: dict = {}

        def ask():
            with httpx.Client(base_url=live.url, headers=H["planner"], timeout=60) as client:
                result["chat"] = client.post(
                    "/api/v1/chat/slow", json={"message": "What is blocking SO-100002?"}
                )

        chat = threading.Thread(target=ask)
        chat.start()
        try:
            assert entered.wait(30), "the chat never reached the model"
            with httpx.Client(base_url=live.url, headers=H["csr"], timeout=10) as client:
                assert client.get("/health").status_code == 200
                triaged = client.post("/api/v1/triage", json={"order_ids": ["SO-100003"]})
                assert triaged.status_code == 200 and not release.is_set()
        finally:
            release.set()
            chat.join(60)
    assert result["chat"].status_code == 200 and "final" in result["chat"].text


@pytest.mark.parametrize(
    "text",
    [
        "order" + " " * 1200 + "x",  # once seconds of backtracking with the GIL held
        "order " * 16_000,
        "(#:[-/#]) " * 9_000,
        "SO" + "-" * 90_000 + "1",
    ],
)
def test_adversarial_pastes_are_read_and_answered(world, text):
    with _client() as c:
        body = c.post("/api/v1/triage/text", json={"text": text}, headers=H["csr"]).json()
        assert body["results"] == [] and body["order_ids"] == [] and "Which order" in body["answer"]
        ids = c.post("/api/v1/triage", json={"order_ids": [text]}, headers=H["csr"]).json()
        assert ids["results"][0]["error"] == "order not found"


def test_order_numbers_as_customers_write_them_through_the_api(world):
    email = "Hi, is S0-100002 on its way? And SO-10003, SO-999999?"
    with _client() as c:
        body = c.post("/api/v1/triage/text", json={"text": email}, headers=H["csr"]).json()
        assert body["order_ids"] == ["SO-100002"] and body["not_found"] == ["SO-10003", "SO-999999"]
        assert body["near_misses"] == {"SO-10003": ["SO-100003"]}
        assert body["notes"] == [
            "S0-100002 read as SO-100002",
            "SO-10003 not found; did you mean SO-100003?",
            "SO-999999 not found",
        ]
        assert {r["order_id"]: r.get("error") for r in body["results"]} == {
            "SO-100002": None,
            "SO-10003": "order not found; did you mean SO-100003?",
            "SO-999999": "order not found",
        }
        only_wrong = c.post(
            "/api/v1/triage/text", json={"text": "status of SO-10003?"}, headers=H["csr"]
        ).json()
        assert only_wrong["answer"].startswith("SO-10003 not found; did you mean SO-100003? Which order")
        ids = c.post("/api/v1/triage", json={"order_ids": ["so 100002", "SO-10003"]}, headers=H["csr"]).json()
        assert [r["order_id"] for r in ids["results"]] == ["SO-100002", "SO-10003"]
        assert ids["results"][1]["error"] == "order not found; did you mean SO-100003?"
        assert ids["not_found"] == ["SO-10003"]


def test_chat_proposes_a_request_and_the_next_yes_files_it(world):
    with _client() as c:
        ask = {"message": "please request approval for SO-100002", "stream": False}
        shown = c.post("/api/v1/chat/t-9", json=ask, headers=H["csr"]).json()
        assert shown["request"] is None and shown["proposal"]["action"] == "RELEASE_CREDIT_HOLD"
        assert c.get("/api/v1/requests", headers=H["csr"]).json()["items"] == []
        events = _events(c.post("/api/v1/chat/t-9", json={"message": "confirm"}, headers=H["csr"]).text)
        kinds = [k for k, _ in events]
        assert "request" in kinds and kinds[-1] == "final"
        filed = events[-1][1]["request"]
        assert filed["action"] == "RELEASE_CREDIT_HOLD" and filed["requested_by"] == "csr"
        listed = c.get("/api/v1/requests", headers=H["csr"]).json()["items"]
        assert [r["id"] for r in listed] == [filed["id"]]
        # another user's "yes" on a thread of the same name is a thread of its own: nothing to file
        c.post("/api/v1/chat/t-9", json=ask, headers=H["csr"])
        other = c.post(
            "/api/v1/chat/t-9", json={"message": "yes", "stream": False}, headers=H["planner"]
        ).json()
        assert other["request"] is None
        assert len(c.get("/api/v1/requests", headers=H["csr"]).json()["items"]) == 1


def test_a_paste_naming_too_many_orders_is_refused_before_anything_is_triaged(world):
    paste = "\n".join(f"SO-{100000 + i}" for i in range(MAX_ORDER_IDS + 1))
    with _client() as c:
        resp = c.post("/api/v1/triage/text", json={"text": paste}, headers=H["csr"])
        assert resp.status_code == 413, resp.text
        assert (
            resp.json()["message"] == f"the text names 201 orders; the limit is {MAX_ORDER_IDS} per request"
        )
        events = c.get("/api/v1/audit?event_type=triage", headers=H["ops_manager"]).json()
    assert [e for e in events["items"] if e["event_type"] == "triage"] == []


def test_progress_labels_stream_before_the_answer(world):
    """The first event says the question is being read; the tool's label ("Looking up SO-…") comes
    before the tool runs and before any word of the answer, so no empty bubble waits."""
    with _client() as c:
        resp = c.post(
            "/api/v1/chat/t9", json={"message": "What is blocking SO-100002?"}, headers=H["planner"]
        )
        events = _events(resp.text)
    kinds = [k for k, _ in events]
    assert events[0] == ("progress", {"type": "progress", "text": "Reading the question…"})
    looking = kinds.index("progress", 1)
    assert events[looking][1]["text"] == "Looking up SO-100002…"
    assert looking < kinds.index("tool") < kinds.index("token") < kinds.index("final")
    assert (
        kinds.count("progress") == 3 and events[kinds.index("tool") + 1][1]["text"] == "Writing the answer…"
    )
