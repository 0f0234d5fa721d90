"""Background model calls give way to people (``agent.llm.priority``, ``agent.llm.llamacpp``).

The llamacpp provider is driven here by a stand-in for ``llama_cpp.Llama`` (tokenize, eval,
create_completion with stopping criteria), so its real generation loop, gate and prompt reading
run without a model file. Every hand-over is synchronised with events, never with sleeps.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.llm import FakeLLM
from agent.llm.llamacpp import BACKGROUND_CHUNK, LlamaCppLLM, ModelGate, PrefixStates
from agent.llm.priority import LLMPreempted, background, foreground_calls, in_background, wait_until_idle

WAIT = 10.0  # seconds a test waits for an event before failing (never reached when it passes)
BG = [{"role": "user", "content": "explain " + " ".join(f"fact{i}" for i in range(300))}]
FG = [{"role": "user", "content": "what is blocking SO-100002?"}]


class WatchedGate(ModelGate):
    """The model's gate, telling the test when a foreground call starts waiting for it."""

    def __init__(self) -> None:
        self.someone_waits = threading.Event()
        self._waiting = 0
        super().__init__()

    @property  # type: ignore[override]
    def waiting(self) -> int:
        return self._waiting

    @waiting.setter
    def waiting(self, value: int) -> None:
        self._waiting = value
        if value > 0:
            self.someone_waits.set()


class StandInLlama:
    """What ``LlamaCppLLM._run`` uses of ``llama_cpp.Llama``: one token per word; a completion writes
    ``w0 w1 …`` until ``max_tokens`` or a stopping criterion says stop. ``after_eval`` and
    ``after_token`` are hooks the tests pause in."""

    def __init__(self) -> None:
        self.input_ids = np.zeros(8192, dtype=np.intc)
        self.n_tokens = 0
        self.evals: list[int] = []
        self.completions: list[dict[str, Any]] = []
        self.after_eval = lambda: None
        self.after_token = lambda prompt, i: None

    def tokenize(self, data: bytes, add_bos: bool = True, special: bool = True) -> list[int]:
        return [1 + sum(map(ord, w)) % 5000 for w in data.decode().split()]

    def eval(self, tokens) -> None:
        self.input_ids[self.n_tokens : self.n_tokens + len(tokens)] = tokens
        self.n_tokens += len(tokens)
        self.evals.append(len(tokens))
        self.after_eval()

    def create_completion(self, tokens, *, max_tokens, stopping_criteria, **_kw):
        record: dict[str, Any] = {"prompt": list(tokens), "cached": self.n_tokens, "written": 0}
        self.completions.append(record)
        self.input_ids[: len(tokens)] = tokens
        self.n_tokens = len(tokens)
        for i in range(max_tokens):
            if any(stop(None, None) for stop in stopping_criteria):
                return
            record["written"] += 1
            yield {"choices": [{"text": f"w{i} "}]}
            self.after_token(record, i)


def _model(tmp_path: Path) -> tuple[LlamaCppLLM, StandInLlama, WatchedGate]:
    llm = LlamaCppLLM(tmp_path / "stand-in.gguf", prompt_cache_mb=0, timeout_s=WAIT)
    llama, gate = StandInLlama(), WatchedGate()
    llm._loaded = (llama, gate, PrefixStates(0))
    return llm, llama, gate


def _in_background(llm: LlamaCppLLM, outcome: dict, **kw) -> threading.Thread:
    def run() -> None:
        with background():
            try:
                outcome["text"] = llm.complete(BG, **kw).text
            except LLMPreempted:
                outcome["preempted"] = True

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_foreground_call_stops_a_background_generation_at_its_next_token(tmp_path):
    llm, llama, gate = _model(tmp_path)
    writing = threading.Event()

    def after_token(record, i):
        if len(record["prompt"]) < 100:
            return  # the foreground call's own completion
        if i == 0:
            writing.set()
            assert gate.someone_waits.wait(WAIT)  # the person is waiting now

    llama.after_token = after_token
    outcome: dict = {}
    thread = _in_background(llm, outcome, max_tokens=1000)
    assert writing.wait(WAIT)
    answer = llm.complete(FG, max_tokens=3)  # waits for the model, which the background gives up
    thread.join(WAIT)
    assert answer.text == "w0 w1 w2"
    assert outcome == {"preempted": True}
    background_run, foreground_run = llama.completions
    assert background_run["written"] == 1  # not one token more once the person waited
    assert foreground_run["written"] == 3


def test_a_background_prompt_is_read_in_chunks_and_given_up_between_two(tmp_path):
    llm, llama, gate = _model(tmp_path)
    reading = threading.Event()

    def after_eval():
        if len(llama.evals) == 1:
            reading.set()
            assert gate.someone_waits.wait(WAIT)

    llama.after_eval = after_eval
    outcome: dict = {}
    thread = _in_background(llm, outcome, max_tokens=10)
    assert reading.wait(WAIT)
    answer = llm.complete(FG, max_tokens=2)
    thread.join(WAIT)
    assert outcome == {"preempted": True} and answer.text == "w0 w1"
    assert llama.evals == [BACKGROUND_CHUNK]  # one chunk of the prompt, then the person's turn
    [only] = llama.completions  # the person's: the background never started writing
    assert len(only["prompt"]) < 100


def test_alone_a_background_call_reads_its_prompt_in_chunks_and_finishes(tmp_path):
    llm, llama, _gate = _model(tmp_path)
    outcome: dict = {}
    _in_background(llm, outcome, max_tokens=4).join(WAIT)
    assert outcome == {"text": "w0 w1 w2 w3"}
    n = len(llama.completions[0]["prompt"])
    assert n > 4 * BACKGROUND_CHUNK
    assert all(size <= BACKGROUND_CHUNK for size in llama.evals) and sum(llama.evals) == n - 1
    assert llama.completions[0]["cached"] == n - 1  # create_completion finds all but the last token

    llama.evals.clear()  # a foreground call leaves its prompt to create_completion, in one go
    assert llm.complete(FG, max_tokens=1).text == "w0" and llama.evals == []


def test_a_background_call_that_finds_a_person_waiting_does_not_start(tmp_path):
    llm, llama, gate = _model(tmp_path)
    gate.waiting = 1  # a foreground call is queued for the model
    outcome: dict = {}
    _in_background(llm, outcome, max_tokens=4).join(WAIT)
    assert outcome == {"preempted": True} and llama.evals == [] and llama.completions == []


def test_foreground_calls_are_counted_and_background_ones_are_not():
    inside, release = threading.Event(), threading.Event()
    seen: list[tuple[bool, int]] = []

    def slow(messages):
        seen.append((in_background(), foreground_calls()))
        if messages[-1]["content"] == "person":
            inside.set()
            assert release.wait(WAIT)
        return "ok"

    llm = FakeLLM(slow)
    person = threading.Thread(target=lambda: llm.complete([{"role": "user", "content": "person"}]))
    person.start()
    assert inside.wait(WAIT)
    assert foreground_calls() == 1
    assert not wait_until_idle(timeout=0.05)  # a person's call is in flight
    stop = threading.Event()
    stop.set()
    assert not wait_until_idle(stop=stop)
    with background():
        assert FakeLLM(slow).complete([{"role": "user", "content": "queue"}]).text == "ok"
    release.set()
    person.join(WAIT)
    assert wait_until_idle(timeout=WAIT) and foreground_calls() == 0
    assert seen == [(False, 1), (True, 1)]  # the background call did not count itself


@pytest.mark.parametrize("streamed", [False, True])
def test_a_stream_counts_while_it_is_read(streamed):
    llm = FakeLLM(["one two three"])
    if streamed:
        pieces = llm.stream([{"role": "user", "content": "q"}])
        next(pieces)
        assert foreground_calls() == 1
        list(pieces)
    else:
        llm.complete([{"role": "user", "content": "q"}])
    assert foreground_calls() == 0
