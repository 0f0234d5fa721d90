"""The SOP index is never silently empty: commands that retrieve index the shipped SOPs on first use
(a fresh var dir), and an explanation made without any SOP passage says so."""

from __future__ import annotations

import json

import pytest

from agent.copilot.explain import NO_SOP_WARNING, explain_order
from agent.settings import get_settings
from knowledge.embeddings import FakeEmbeddingFunction
from knowledge.ingest import EMPTY_INDEX, ensure_index
from tests.cli_run import run
from tests.copilot_world import load_world
from ui.cli import common as cli_common


@pytest.fixture
def fresh(sqlite_engine, monkeypatch, tmp_path):
    load_world(sqlite_engine)
    monkeypatch.setenv("DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("LLM_PROVIDER", "fake")
    monkeypatch.setenv("COPILOT_VAR_DIR", str(tmp_path / "fresh-var"))
    get_settings.cache_clear()
    monkeypatch.setattr(cli_common, "knowledge_embedding", FakeEmbeddingFunction)
    return tmp_path / "fresh-var"


def test_explain_on_a_fresh_var_dir_indexes_the_shipped_sops_first(fresh, monkeypatch, capsys) -> None:
    assert cli_common.knowledge_collection().count() == 0
    code, out, err = run(monkeypatch, capsys, "triage", "SO-100002", "--explain", "--json")
    assert code == 0, err
    assert "the SOP index is empty: indexing the shipped SOPs (first use)" in err
    explanation = json.loads(out)[0]["explanation"]
    assert explanation["citations"] and explanation["warning"] is None
    assert cli_common.knowledge_collection().count() > 0
    # the second command finds the index filled and says nothing about it
    code, _, err = run(monkeypatch, capsys, "knowledge", "search", "credit hold release", "--json")
    assert code == 0 and "indexing the shipped SOPs" not in err


class _NeverFilled:
    def count(self) -> int:
        return 0

    def get(self, **_):
        return {"metadatas": []}

    def add(self, **_) -> None:  # a store that drops what it is given
        return None

    def delete(self, **_) -> None:
        return None


def test_an_index_that_stays_empty_is_refused_with_the_command_that_fixes_it() -> None:
    with pytest.raises(RuntimeError) as caught:
        ensure_index(_NeverFilled(), echo=lambda _: None)
    assert str(caught.value) == EMPTY_INDEX and "copilot knowledge ingest" in EMPTY_INDEX


def test_an_explanation_without_any_sop_passage_carries_a_warning() -> None:
    result = {"order_id": "SO1", "status": "open", "exceptions": [{"type": "CREDIT_HOLD", "evidence": ["x"]}]}
    explanation = explain_order(result, [], None)
    assert explanation["warning"] == NO_SOP_WARNING and "copilot knowledge ingest" in NO_SOP_WARNING


def test_knowledge_ingest_of_a_missing_path_exits_2_and_indexes_the_rest(
    fresh, monkeypatch, capsys, tmp_path
):
    """`copilot knowledge ingest sops/ typo.md`: the typo was printed as 'skipped' among the other
    lines and the command exited 0, so a script or cron job never noticed. The rest is still
    indexed; the exit code is 2."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Returns\n\nCustomers may return unopened goods within 30 days.\n")
    code, out, err = run(monkeypatch, capsys, "knowledge", "ingest", str(docs), str(tmp_path / "nowhere.md"))
    assert code == 2, out + err
    assert "nowhere.md: no such file or folder" in out
    assert "1 added" in out
    code, out, err = run(monkeypatch, capsys, "knowledge", "ingest", str(docs))
    assert code == 0 and "1 unchanged" in out, out + err
