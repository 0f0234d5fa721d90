"""The conversation suite through ``LLM_PROVIDER=openai`` against llama-cpp-python's OpenAI-compatible
server running the pinned GGUF on loopback (marked `model`, never skipped: `make install` installs it).

CI runs every thread (66 threads, 125 turns): rules and the router choose the tools of the common
questions and lookups are answered by their facts, so the model is called for the explanations and
the long tail only (a few minutes on two cores). ``CONVERSATION_THREADS=subset`` runs a quick
representative subset of 6 threads (11 turns): what blocks an order, then the customer's other
orders, "why not move it", the sku's stock, an order's shipments, a sku's purchase orders then the
orders waiting on that PO, and a new thread asking "why not split the shipment?". What must hold on
every provider: no invented fact, and the tool each turn needs is the one that ran.
"""

from __future__ import annotations

import json
import os

import pytest

from agent.llm import OpenAILLM
from agent.llm.local_model import ensure_model
from agent.settings import get_settings
from evals.conversation import load_threads, run_conversations
from tests.deployment import MODEL_ALIAS, model_ready, model_server, wait_until

pytestmark = pytest.mark.model

SUBSET = [
    "SO-200002-other-orders",
    "SO-200003-why-not-move",
    "SO-200004-sku-stock",
    "SO-200006-shipments",
    "sku-po-then-waiting",
    "new-thread-why-not-split",
]


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory):
    gguf = ensure_model(get_settings().var_dir)
    logs = tmp_path_factory.mktemp("model-server")
    proc, url = model_server(gguf, env=dict(os.environ), logs=logs)
    try:
        wait_until(lambda: model_ready(url), what="the model server", timeout=300, watch=[proc])
        yield url
    finally:
        proc.stop()


@pytest.mark.timeout(3000)  # a model turn takes 10-60 s on two shared cores
def test_conversations_through_the_openai_provider(openai_server):
    only = SUBSET if os.environ.get("CONVERSATION_THREADS") == "subset" else None
    assert not only or set(only) <= {t.id for t in load_threads()}
    llm = OpenAILLM(MODEL_ALIAS, base_url=openai_server, timeout_s=600)
    result = run_conversations(llm, provider="openai", only=only, echo=print, progress=True)
    s = result["summary"]
    print(json.dumps(s))  # the figures docs/evals.md records
    for t in result["turns"]:
        if not t["correct"]:
            print(f"{t['thread']}#{t['turn']}: {t['problems']} -> {t['answer']!r}")
    assert s["invented_facts"] == 0
    wrong_tools = [
        (t["thread"], t["turn"], t["problems"]) for t in result["turns"] if "tools" in str(t["problems"])
    ]
    assert wrong_tools == []
    assert s["correct_turns"] >= 0.8 * s["turns"]
