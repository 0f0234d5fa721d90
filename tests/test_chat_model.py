"""Chat with the real local model (marked `model`, never skipped: `make install` installs it).

"What is blocking SO-…?" is answered from the triage facts with the model's explanation; "request
approval for that" is routed by the model's grammar-constrained JSON (or, should it choose wrongly,
by the deterministic fallback) to a proposed approval request for the action under discussion, which
"yes" files.
"""

from __future__ import annotations

import pytest

from agent.copilot.service import Copilot
from agent.llm import LlamaCppLLM, get_llm
from agent.policy import load_policy
from agent.settings import Settings
from tests.copilot_world import load_world, sop_collection
from tools.db import session_factory


@pytest.fixture(scope="module")
def local_llm(tmp_path_factory) -> LlamaCppLLM:
    llm = get_llm(
        Settings(COPILOT_VAR_DIR=str(tmp_path_factory.getbasetemp() / "llm-var-chat"), LLM_TIMEOUT_S=600)
    )
    assert isinstance(llm, LlamaCppLLM)
    return llm


@pytest.mark.model
def test_real_model_answers_what_is_blocking_and_files_the_request(sqlite_engine, tmp_path, local_llm):
    load_world(sqlite_engine)
    copilot = Copilot(
        session_factory(sqlite_engine), load_policy(), llm=local_llm, collection=sop_collection(tmp_path)
    )
    reply = copilot.chat("m1", "what is blocking SO-100002?", username="planner")
    assert reply["answer"].startswith(
        "SO-100002 (open) is blocked by CREDIT_HOLD. Recommended: RELEASE_CREDIT_HOLD"
    )
    assert "credit" in reply["answer"].split("\n", 1)[1].lower()
    assert set(reply["citations"]) <= {"SOP-CREDIT-001 §3.2"}
    assert copilot.usage()["calls"] in (1, 2)  # the explanation (and its one retry); rules read the question
    asked = copilot.chat("m1", "request approval for that", username="planner")
    assert asked["request"] is None  # shown first
    assert (
        asked["proposal"]["action"] == "RELEASE_CREDIT_HOLD" and asked["proposal"]["order_id"] == "SO-100002"
    )
    assert copilot.usage()["calls"] >= 2  # the model was asked to choose the tool
    filed = copilot.chat("m1", "yes", username="planner")
    assert filed["request"]["action"] == "RELEASE_CREDIT_HOLD" and filed["request"]["order_id"] == "SO-100002"
    assert filed["request"]["approver_role"] == "credit_analyst"
