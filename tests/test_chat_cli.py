"""`copilot triage --explain` and `copilot chat` on the command line (the scripted fake provider).

``LLM_PROVIDER=fake`` with no script: every model call fails, so these show the product working on
facts alone and saying so. The model's side is covered in test_copilot.py and test_chat.py.
"""

from __future__ import annotations

import json
import sys

import pytest

from knowledge.embeddings import FakeEmbeddingFunction
from knowledge.ingest import ingest
from tests.cli_run import run
from tests.copilot_world import SOPS, load_world
from ui.cli import common as cli_common


@pytest.fixture
def world(sqlite_engine, monkeypatch, tmp_path):
    load_world(sqlite_engine)
    monkeypatch.setenv("DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("LLM_PROVIDER", "fake")
    monkeypatch.setattr(cli_common, "knowledge_embedding", FakeEmbeddingFunction)
    docs = tmp_path / "sops"
    docs.mkdir()
    for name, text in SOPS.items():
        (docs / name).write_text(text, encoding="utf-8")
    ingest(cli_common.knowledge_collection(), [docs], echo=lambda _: None)


def test_triage_explain_json(world, monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "triage", "SO-100002", "SO-100001", "--explain", "--json")
    assert code == 0
    held, clean = json.loads(out)
    assert held["explanation"]["fallback"] is True  # the fake model has no script: fact-only, said so
    assert held["explanation"]["citations"] == ["SOP-CREDIT-001 §3.2"]
    assert "CREDIT_HOLD" in held["explanation"]["text"] and held["explanation"]["reason"]
    assert clean["explanation"]["fallback"] is False and clean["explanation"]["citations"] == []


def test_triage_explain_prints_the_explanation_under_each_order(world, monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "triage", "SO-100002", "SO-404", "--explain")
    assert code == 2  # the unknown order
    assert out.index("SO-100002") < out.index("explanation (fact-only") < out.index("SO-404")
    assert "[SOP-CREDIT-001 §3.2]" in out


def test_chat_answers_and_remembers_the_thread(world, monkeypatch, capsys):
    code, out, err = run(
        monkeypatch, capsys, "chat", "--thread", "cli-1", "-m", "what is blocking SO-100003?"
    )
    assert code == 0, err
    assert "[triage_order(order_id=SO-100003)]" in out
    assert "SO-100003 (open) is blocked by INVENTORY_SHORTFALL (line 1)" in out and "fact-only" in out
    assert "thread cli-1" in err
    code, out, err = run(monkeypatch, capsys, "chat", "--thread", "cli-1", "-m", "why not split it?")
    assert code == 0 and "(2 messages so far)" in err
    assert "SPLIT_SHIPMENT is the recommended action" in out


def test_chat_reads_questions_from_stdin(world, monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\nwhat is blocking SO-100002?\nexit\nnever asked\n"))
    code, out, _ = run(monkeypatch, capsys, "chat", "--as", "csr")
    assert code == 0
    assert "Which order do you mean?" in out and "CREDIT_HOLD" in out and "never asked" not in out


def test_chat_shows_a_request_first_and_yes_files_it(world, monkeypatch, capsys):
    ask = "please request approval for SO-100003"
    code, out, err = run(monkeypatch, capsys, "chat", "--thread", "cli-2", "-m", ask, "-m", "no thanks")
    assert code == 0, err
    assert "I can file this approval request: SPLIT_SHIPMENT on SO-100003" in out
    assert 'type "yes" to file this request' in out and "Not filed: SPLIT_SHIPMENT on SO-100003" in out
    assert "approval request 1" not in out
    code, out, err = run(monkeypatch, capsys, "chat", "--thread", "cli-2", "-m", ask, "-m", "yes")
    assert code == 0, err
    assert (
        "Requested SPLIT_SHIPMENT on SO-100003 (request 1" in out
        and "approval request 1: pending_approval" in out
    )
    code, out, _ = run(monkeypatch, capsys, "actions", "list", "--json")
    assert [r["action"] for r in json.loads(out)] == ["SPLIT_SHIPMENT"]


@pytest.mark.parametrize("thread", ["my thread", "../x", "-m", "x" * 65, ""])
def test_a_thread_id_the_api_would_refuse_is_refused_here_too(world, monkeypatch, capsys, thread):
    """`copilot chat --thread "my thread"` started a thread the panel and the API (ids of 1-64
    letters, digits, '.', '_', '-') could never continue; now one line, exit 2, nothing asked."""
    code, out, err = run(monkeypatch, capsys, "chat", "--thread", thread, "-m", "what is blocking SO-100003?")
    assert code == 2 and out == "", out
    assert err.startswith("copilot: --thread must be 1-64 letters") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_a_blank_message_is_refused_not_skipped(world, monkeypatch, capsys, blank):
    """`copilot chat -m "  "` printed the thread line and exited 0 with no answer; the API answers 422."""
    code, out, err = run(monkeypatch, capsys, "chat", "-m", blank)
    assert code == 2 and out == "", out
    assert err.strip().splitlines()[-1] == "copilot: --message is blank: ask a question"


def test_the_cli_takes_the_thread_ids_the_api_takes():
    from ui.api.routes import ThreadIdPath
    from ui.cli.agent import THREAD_ID

    path = ThreadIdPath.__metadata__[0]
    pattern = next(m.pattern for m in path.metadata if hasattr(m, "pattern"))
    assert pattern == r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
    assert next(m.max_length for m in path.metadata if hasattr(m, "max_length")) == 64
    for ok in ("cli-1", "a", "T.1_x-2", "x" * 64):
        assert THREAD_ID.fullmatch(ok)
