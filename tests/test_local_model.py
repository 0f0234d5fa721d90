"""The local language model: assembled once from its PyPI chunks, SHA-256-checked, and (marked `model`)
loaded for real to explain a seeded order with a valid citation."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import pytest
from pydantic import BaseModel

from agent.llm import LlamaCppLLM, LLMTimeout, get_llm, parse_json
from agent.llm import local_model as models_local
from agent.llm.local_model import LocalModel, ModelUnavailable, ensure_model, part_paths
from agent.settings import Settings

# --- assembling and verifying, on small stand-in chunks (files of an installed package) -------------------


def _stand_in(sha: str | None = None) -> LocalModel:
    """A 'model' whose chunks are two files of the installed pyyaml distribution."""
    dist = metadata.distribution("pyyaml")
    files = ["yaml/__init__.py", "yaml/parser.py"]
    blob = b"".join(Path(dist.locate_file(f)).read_bytes() for f in files)
    return LocalModel(
        name="stand-in",
        filename="stand-in.gguf",
        about="test",
        parts=tuple(("pyyaml", dist.version, f) for f in files),
        size=len(blob),
        sha256=sha or hashlib.sha256(blob).hexdigest(),
    )


def test_chunks_assemble_in_order_and_verify(tmp_path):
    model = _stand_in()
    path = ensure_model(tmp_path, model)
    assert path == tmp_path / "models" / "stand-in.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256
    assert not list((tmp_path / "models").glob("*.partial"))


def test_a_tampered_file_is_rebuilt_from_the_chunks(tmp_path):
    model = _stand_in()
    path = ensure_model(tmp_path, model)
    path.write_bytes(b"GGUF" + b"\0" * (model.size - 4))
    models_local._VERIFIED.clear()
    assert hashlib.sha256(ensure_model(tmp_path, model).read_bytes()).hexdigest() == model.sha256


def test_chunks_that_do_not_match_the_pinned_hash_are_refused(tmp_path):
    with pytest.raises(ModelUnavailable, match="not the pinned"):
        ensure_model(tmp_path, _stand_in(sha="0" * 64))
    assert not (tmp_path / "models" / "stand-in.gguf").exists()
    assert not (tmp_path / "models" / "stand-in.gguf.partial").exists()


def test_missing_package_names_the_fix(tmp_path):
    model = LocalModel(
        name="x",
        filename="x.gguf",
        parts=(("no-such-model-part1", "1.0", "x/part01.bin"),),
        size=1,
        sha256="0" * 64,
        about="",
    )
    with pytest.raises(ModelUnavailable, match=r"no-such-model-part1==1\.0.*make install.*LLM_MODEL_PATH"):
        part_paths(model)


def test_python_m_local_model_runs_without_a_runpy_warning():
    """The README's `python -m agent.llm.local_model`: the package must not import the module
    before runpy runs it as __main__ (it printed "RuntimeWarning: 'agent.llm.local_model' found in
    sys.modules after import of package 'agent.llm'" to every new user)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "agent.llm.local_model", "--help"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" not in done.stderr
    assert "usage: python -m agent.llm.local_model" in done.stdout


def test_pinned_models_match_requirements_models():
    text = (Path(__file__).resolve().parents[1] / "requirements-models.txt").read_text()
    for model in models_local.MODELS.values():
        for dist, version, _ in model.parts:
            assert f"\n{dist}=={version} --hash=sha256:" in text, dist
    assert models_local.DEFAULT_MODEL in models_local.MODELS


# --- the real model (marked, never skipped: make install installs it) ------------------------------------

needs_model = pytest.mark.model


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("llm-var")


@pytest.fixture(scope="module")
def local_llm(models_dir) -> LlamaCppLLM:
    llm = get_llm(Settings(COPILOT_VAR_DIR=str(models_dir), LLM_TIMEOUT_S=300))
    assert isinstance(llm, LlamaCppLLM)
    return llm


@needs_model
def test_installed_chunks_assemble_to_the_pinned_default(models_dir, local_llm):
    path = local_llm.model_path
    assert path.stat().st_size == models_local.default_model().size
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"
    again = get_llm(Settings(COPILOT_VAR_DIR=str(models_dir)))
    assert again._model() is local_llm._model(), "one loaded model (and one lock) per file and process"


@needs_model
def test_real_model_explains_a_seeded_order_with_a_valid_citation(sqlite_engine, local_llm):
    from agent.copilot.explain import explain_order, grounding_errors
    from agent.policy import load_policy
    from agent.triage.service import triage_order
    from knowledge.retrieve import Passage
    from tests.factories import clean_fixture, edit
    from tools.db import session_factory
    from tools.fixtures import load_fixture

    fixture = clean_fixture()
    edit(fixture, "customers", "C1", open_balance=99500)
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, fixture, case_id="t")
        result = triage_order(s, "SO1", load_policy(), record=False)
    passage = Passage(
        citation="SOP-CREDIT-001 §3.2",
        score=0.8,
        doc_id="SOP-CREDIT-001",
        section="3.2",
        title="Credit holds and release of held orders",
        heading="Calculating the overage",
        text="Overage = open_balance + order value − credit_limit. A release with an overage up to 10 % of the "
        "credit limit and no overdue balance is medium risk and is approved by a credit analyst.",
        source="knowledge/sops/sop-credit-001.md",
    )
    pieces: list[str] = []
    out = explain_order(result, [passage], local_llm, on_token=pieces.append)
    assert out["fallback"] is False, out
    assert out["citations"] == ["SOP-CREDIT-001 §3.2"]
    assert grounding_errors(out["text"], result, [passage]) == []
    assert "credit" in out["text"].lower()
    assert out["usage"]["calls"] in (1, 2) and out["usage"]["prompt_tokens"] > 50


class ToolPick(BaseModel):
    tool: str
    order_id: str


@needs_model
def test_real_model_json_output_fits_the_schema_and_deadline_is_honoured(local_llm):
    messages = [
        {"role": "system", "content": "Pick a tool. Tools: get_order, search_sops."},
        {"role": "user", "content": "Show me order SO-100042.\nIt has two lines."},
    ]
    result = local_llm.complete(messages, json_schema=ToolPick, max_tokens=60)
    pick = parse_json(result.text, ToolPick)
    assert pick.order_id == "SO-100042" and pick.tool in {"get_order", "search_sops"}
    json.loads(result.text)  # strict JSON: no raw control characters inside strings
    with pytest.raises(LLMTimeout):
        local_llm.complete(
            [{"role": "user", "content": "Count from 1 to 500, one number a line."}],
            max_tokens=600,
            timeout=1.0,
        )


@needs_model
def test_saved_prompt_prefixes_are_restored_and_change_no_answer(local_llm):
    """Two prompts with different heads take turns on the one context: the second time, the first's
    head is restored from its saved state instead of evaluated again, and greedy decoding writes
    exactly what it wrote from the fresh evaluation."""
    from prompts import load

    chat = [
        {"role": "system", "content": load("chat_system").render()},
        {"role": "user", "content": "Repeat this order number and nothing else: SO-100042"},
    ]
    other = [
        {"role": "system", "content": "You translate English into French. " * 8},
        {"role": "user", "content": "Good morning."},
    ]
    first = local_llm.complete(chat, max_tokens=12).text
    local_llm.complete(other, max_tokens=4)  # the context now holds the other head
    before = local_llm.prefix_stats()
    again = local_llm.complete(chat, max_tokens=12).text
    after = local_llm.prefix_stats()
    assert again == first
    assert after["hits"] == before["hits"] + 1
    assert after["saved_tokens"] - before["saved_tokens"] > 60  # the system prompt's tokens, at least
    assert 0 < after["bytes"] <= local_llm.prompt_cache_bytes


class _Context:
    """What PrefixStates reads of a llama.cpp context: its evaluated tokens."""

    def __init__(self, tokens: list[int]) -> None:
        import numpy as np

        self.input_ids = np.array(tokens, dtype=np.intc)
        self.n_tokens = len(tokens)


def test_kept_heads_stay_while_recent_states_come_and_go(monkeypatch):
    """A head kept for good takes at most half the capacity and is never dropped for a recent call's
    state; the recent states share what is left, least recently saved dropped first."""
    from agent.llm.llamacpp import PrefixStates

    monkeypatch.setattr(
        PrefixStates,
        "_state",
        staticmethod(lambda c: (tuple(c.input_ids), 100 * c.n_tokens, lambda: b"s" * (100 * c.n_tokens))),
    )
    states = PrefixStates(2_000)
    head = _Context([1, 2, 3, 4, 5])  # 500 bytes
    assert states.keep(head) and tuple(head.input_ids) in states
    assert states.keep(head)  # kept once
    assert not states.keep(_Context([9] * 6))  # 600 more would pass half the capacity
    for n in range(6):  # recent states of 4 tokens (400 bytes) each: three fit beside the head
        states.save(_Context([7, n, n, n]))
    assert states.size <= 2_000 and len(states) == 4 and tuple(head.input_ids) in states
    assert [(7, n, n, n) in states for n in range(6)] == [False] * 3 + [True] * 3
    states.save(_Context([1, 2, 3, 4, 5]))  # the kept head is not saved again as a recent state
    assert len(states) == 4


def test_the_prompt_cache_setting_reaches_the_model():
    llm = get_llm(Settings(LLM_PROVIDER="llamacpp", LLM_PROMPT_CACHE_MB=3))
    assert isinstance(llm, LlamaCppLLM) and llm.prompt_cache_bytes == 3 << 20
    assert LlamaCppLLM(prompt_cache_mb=0).prefix_stats() == {
        "states": 0,
        "kept": 0,
        "bytes": 0,
        "hits": 0,
        "saved_tokens": 0,
    }


@needs_model
def test_a_background_call_reads_its_prompt_in_chunks_and_writes_the_same_answer(local_llm, monkeypatch):
    """The pre-explainer's calls evaluate their prompt in chunks a person's call can interrupt; the
    model then writes exactly what it writes from a prompt evaluated in one batch."""
    from agent.llm.llamacpp import BACKGROUND_CHUNK
    from agent.llm.priority import background
    from prompts import load

    ask = [
        {"role": "system", "content": load("chat_system").render()},
        {"role": "user", "content": "Repeat this order number and nothing else: SO-100077"},
    ]
    other = [{"role": "user", "content": "Say hello in French."}]
    foreground = local_llm.complete(ask, max_tokens=12).text
    llama, _gate, states = local_llm._model()
    local_llm.complete(other, max_tokens=2)  # the context now holds another prompt
    states._states.clear()  # and no saved state holds this one: it is read from the start
    evaluated: list[int] = []
    real_eval = llama.eval
    monkeypatch.setattr(llama, "eval", lambda tokens: (evaluated.append(len(tokens)), real_eval(tokens))[1])
    with background():
        assert local_llm.complete(ask, max_tokens=12).text == foreground
    chunks = [n for n in evaluated if n > 1]  # generation evaluates one token at a time
    assert len(chunks) >= 2 and max(chunks) <= BACKGROUND_CHUNK


@needs_model
def test_a_kept_explanation_head_is_restored_for_a_new_order(sqlite_engine, local_llm):
    """The head of an explanation prompt (instructions, the lead passage, its label) is evaluated once
    and kept; an order explained afterwards, with a different head in the context meanwhile,
    restores it instead of evaluating it: only its facts are evaluated, and the text is grounded."""
    from agent.copilot.explain import _FACTS_SLOT, _messages, build_messages, explain_order, grounding_errors
    from agent.policy import load_policy
    from agent.triage.service import triage_order
    from knowledge.retrieve import Passage
    from tests.factories import clean_fixture, edit
    from tools.db import session_factory
    from tools.fixtures import load_fixture

    fixture = clean_fixture()
    edit(fixture, "customers", "C1", open_balance=99731)  # facts no earlier prompt of this process had
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, fixture, case_id="t")
        result = triage_order(s, "SO1", load_policy(), record=False)
    passage = Passage(
        citation="SOP-CREDIT-001 §3.3",
        score=0.8,
        doc_id="SOP-CREDIT-001",
        section="3.3",
        title="Credit holds and release of held orders",
        heading="Who may approve a release",
        text="A release with an overage up to 10 % of the credit limit and no overdue balance is approved "
        "by a credit analyst; above that, or with an overdue balance, by the credit manager.",
        source="knowledge/sops/sop-credit-001.md",
        applies_to=("CREDIT_HOLD",),
    )
    kept = local_llm.keep_prefix(_messages(_FACTS_SLOT, [passage], "CREDIT_HOLD"), _FACTS_SLOT)
    prompt = local_llm._prompt(build_messages(result, [passage]))[0]
    llama = local_llm._model()[0]
    assert kept > 100 and kept < len(llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
    assert local_llm.prefix_stats()["kept"] >= 1
    local_llm.complete([{"role": "user", "content": "Say OK."}], max_tokens=1)  # another head meanwhile
    before = local_llm.prefix_stats()
    out = explain_order(result, [passage], local_llm)
    after = local_llm.prefix_stats()
    assert after["hits"] == before["hits"] + 1 and after["saved_tokens"] - before["saved_tokens"] >= kept - 5
    assert out["fallback"] is False, out
    assert grounding_errors(out["text"], result, [passage]) == []
