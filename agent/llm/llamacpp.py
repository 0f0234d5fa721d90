"""A local GGUF model run in-process by llama-cpp-python (``LLM_PROVIDER=llamacpp``, the default).

The model file is assembled and checked by ``agent.llm.local_model`` unless ``LLM_MODEL_PATH``
names one. Each file is loaded once per process and serves one generation at a time; the caller's
deadline holds even while llama.cpp evaluates a prompt it cannot interrupt. llama_cpp itself is
imported where the model is loaded, so that a process using another provider never loads its
shared library.

Prompt prefixes are reused. llama.cpp keeps the evaluated tokens of the last call in its KV cache
and evaluates only what follows the common prefix; the copilot alternates between prompts (the
chat's tool choice, its answer, explanations), so each would evict the others' prefix. The model's
``PrefixStates`` keeps the KV cache of recent calls (``LLM_PROMPT_CACHE_MB``, 0 turns it off) and
restores the one sharing the longest prefix with a new prompt before it is evaluated: the static
instructions and SOP passages at the head of every prompt are evaluated once per process.

People come first. A call made inside :func:`agent.llm.priority.background` (the pre-explainer)
gives way to every other call: the model's :class:`ModelGate` counts the foreground calls waiting
for it, and a background generation stops as soon as one is — between two tokens while it writes,
and between chunks of :data:`BACKGROUND_CHUNK` tokens while it reads its prompt (a background prompt
is evaluated in such chunks rather than in one uninterruptible batch) — raising
:class:`~agent.llm.priority.LLMPreempted` in the background thread. The foreground call then waits
at most one chunk or one token for the model.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.llm.base import LLM, LLMError, LLMResult, LLMTimeout, Message, normalize
from agent.llm.priority import LLMPreempted, in_background

__all__ = ["BACKGROUND_CHUNK", "LlamaCppLLM", "ModelGate", "PrefixStates", "json_gbnf"]

log = logging.getLogger(__name__)

# llama-cpp-python's wheel is built with OpenMP, whose threads spin while they wait by default: on
# a busy 2-core machine two threads then ran ~9x slower than with passive waiting (0.4 vs 3.5
# tokens/s measured). Set before llama.cpp loads; an explicit environment value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_MODELS: dict[tuple, tuple[Any, ModelGate, PrefixStates]] = {}
_MODELS_LOCK = threading.Lock()
_CHATML_STOP = ["<|im_end|>", "<|endoftext|>"]
# A saved prefix is restored only when it saves at least this many tokens of evaluation over what the
# context holds already (restoring costs a copy of the KV cache: a few milliseconds per 1,000 tokens).
_MIN_GAIN = 16
# A background prompt is evaluated this many tokens at a time, so that a foreground call waits for
# at most one chunk (about a second on 2 cores) before it has the model.
BACKGROUND_CHUNK = 64


class ModelGate:
    """One generation at a time on a loaded model, and how many foreground calls wait for it.

    :meth:`hold` takes the model; a foreground holder is counted in :attr:`waiting` while it waits,
    which is what a background generation watches (:meth:`wanted`) to give way.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.waiting = 0

    @contextmanager
    def hold(self, *, background: bool = False) -> Iterator[None]:
        if background:
            self._lock.acquire()
        else:
            with self._count_lock:
                self.waiting += 1
            try:
                self._lock.acquire()
            finally:
                with self._count_lock:
                    self.waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    def wanted(self) -> bool:
        """Whether a foreground call is waiting for the model."""
        return self.waiting > 0

    def acquire(self, timeout: float = -1) -> bool:
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PrefixStates:
    """The KV cache of recent generations on one llama.cpp context, keyed by their tokens, within
    ``capacity_bytes`` (least recently used dropped first).

    :meth:`restore` puts back, before a prompt is evaluated, the saved state that shares the longest
    prefix with it when that beats the context's own; llama-cpp-python then evaluates only the rest
    (``Llama.generate`` trims the KV cache to the common prefix). Only llama.cpp's state is saved —
    not llama-cpp-python's logits buffer (``LlamaRAMCache`` copies it: 300 MB a state for this
    vocabulary), which is not needed since the first token after a restored prefix is evaluated anew.
    Used under the model's lock.
    """

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = max(0, int(capacity_bytes))
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        # Prompt heads kept for good (:meth:`keep`), never dropped for a recent call's state; they
        # may take up to half the capacity, the recent calls the rest.
        self._kept: dict[tuple[int, ...], bytes] = {}
        self.hits = 0
        self.saved_tokens = 0  # prompt tokens not evaluated thanks to a restored state

    @property
    def size(self) -> int:
        return sum(len(b) for b in self._states.values()) + self.kept_size

    @property
    def kept_size(self) -> int:
        return sum(len(b) for b in self._kept.values())

    def __len__(self) -> int:
        return len(self._states) + len(self._kept)

    def __contains__(self, tokens: object) -> bool:
        return tokens in self._kept or tokens in self._states

    def restore(self, llama: Any, tokens: Sequence[int]) -> int:
        """Make ``llama`` hold the longest saved prefix of ``tokens`` if that beats its own; the
        number of prompt tokens already evaluated either way."""
        own = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        best, best_key = own, None
        for key in [*self._kept, *self._states]:
            n = _common_prefix(key, tokens)
            if n > best:
                best, best_key = n, key
        if best_key is None or best - own < _MIN_GAIN:
            return own
        import ctypes

        import llama_cpp

        data = self._kept.get(best_key) or self._states[best_key]
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_set_data(llama._ctx.ctx, buffer, len(data)) != len(data):
            log.warning("could not restore a saved prompt state; evaluating the prompt in full")
            self._kept.pop(best_key, None)
            self._states.pop(best_key, None)
            llama.reset()
            return 0
        llama.input_ids[: len(best_key)] = best_key
        llama.n_tokens = len(best_key)
        llama._requires_eval = True  # the logits are not part of the saved state
        if best_key in self._states:
            self._states.move_to_end(best_key)
        self.hits += 1
        self.saved_tokens += best - own
        return best

    @staticmethod
    def _state(llama: Any) -> tuple[tuple[int, ...], int, Callable[[], bytes]]:
        """The context's tokens, the size of its state and a reader of the state's bytes."""
        import ctypes

        import llama_cpp

        key = tuple(int(t) for t in llama.input_ids[: llama.n_tokens])
        size = int(llama_cpp.llama_state_get_size(llama._ctx.ctx))

        def read() -> bytes:
            buffer = (ctypes.c_uint8 * size)()
            written = int(llama_cpp.llama_state_get_data(llama._ctx.ctx, buffer, size))
            return bytes(buffer[:written])

        return key, size, read

    def save(self, llama: Any) -> None:
        """Keep the context's current state (prompt and answer evaluated so far) among the recent
        ones; a recent state whose tokens are a prefix of these is superseded."""
        if not self.capacity_bytes or llama.n_tokens <= 0:
            return
        key, size, read = self._state(llama)
        if key in self._kept or size > self.capacity_bytes - self.kept_size:
            return
        for old in [k for k in self._states if k == key[: len(k)]]:
            del self._states[old]
        self._states[key] = read()
        while self.size > self.capacity_bytes:
            self._states.popitem(last=False)

    def keep(self, llama: Any) -> bool:
        """Keep the context's current state for good (a prompt head many calls share), within half
        the capacity; False when it does not fit."""
        if not self.capacity_bytes or llama.n_tokens <= 0:
            return False
        key, size, read = self._state(llama)
        if key in self._kept:
            return True
        if self.kept_size + size > self.capacity_bytes // 2:
            return False
        self._kept[key] = read()
        self._states.pop(key, None)
        while self.size > self.capacity_bytes and self._states:
            self._states.popitem(last=False)
        return True


def _load_llama(
    path: Path, n_threads: int, n_ctx: int, cache_bytes: int = 0
) -> tuple[Any, ModelGate, PrefixStates]:
    """One ``Llama`` per (file, threads, context) per process, with the lock that serialises its use
    (a llama.cpp context runs one generation at a time) and its saved prompt prefixes; loading twice
    would double the memory."""
    key = (str(path.resolve()), n_threads, n_ctx)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from llama_cpp import Llama

            started = time.perf_counter()
            try:
                llama = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    n_threads_batch=n_threads,
                    verbose=False,
                    seed=0,
                )
            except Exception as exc:  # a corrupt or foreign file: llama.cpp raises ValueError
                raise LLMError(f"cannot load the model {path}: {exc}") from None
            if not _MODELS:
                atexit.register(_close_models)
            _MODELS[key] = (llama, ModelGate(), PrefixStates(cache_bytes))
            log.info("loaded %s in %.1f s (%d threads)", path.name, time.perf_counter() - started, n_threads)
        return _MODELS[key]


def _close_models() -> None:
    """Free the loaded models while the interpreter is still whole: left to ``Llama.__del__`` at
    shutdown, llama-cpp-python's free functions are already gone and every model prints a
    'TypeError: NoneType object is not callable' traceback on exit."""
    with _MODELS_LOCK:
        for llama, lock, _states in _MODELS.values():
            if not lock.acquire(timeout=5):  # a timed-out generation still running: leave it be
                continue
            try:
                llama.close()
            except Exception:
                pass
            finally:
                lock.release()
        _MODELS.clear()


def json_gbnf(schema: dict) -> str:
    """The llama.cpp grammar (GBNF) for ``schema``, with strings that admit no raw control characters.

    llama-cpp-python 0.3.36's converter lets any character but ``"`` and ``\\`` into a string, so
    the model can emit a raw newline inside a JSON string (invalid JSON); the rule is tightened here.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(schema))
    return re.sub(r'^char ::= \[\^"\\\\\]', r'char ::= [^"\\\\\\x00-\\x1F\\x7F]', gbnf, flags=re.M)


def _json_grammar(schema: dict):
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_string(json_gbnf(schema), verbose=False)


class LlamaCppLLM(LLM):
    """A GGUF model run in-process by llama-cpp-python; loaded once at first use, one call at a time."""

    provider = "llamacpp"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        var_dir: Path = Path("var"),
        n_threads: int = 0,
        n_ctx: int = 4096,
        timeout_s: float = 60.0,
        prompt_cache_mb: int = 384,
    ) -> None:
        super().__init__(timeout_s=timeout_s)
        self._explicit_path = Path(model_path) if model_path else None
        self._var_dir = Path(var_dir)
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_ctx = n_ctx
        self.prompt_cache_bytes = max(0, int(prompt_cache_mb)) << 20
        self._loaded: tuple[Any, ModelGate, PrefixStates] | None = None
        self._template = None  # None: ChatML (Qwen); else the GGUF's own chat template

    @property
    def name(self) -> str:  # type: ignore[override]
        if self._explicit_path is not None:
            return self._explicit_path.stem
        from agent.llm.local_model import default_model  # imported here: see model_path

        return default_model().name

    @property
    def model_path(self) -> Path:
        if self._explicit_path is not None:
            return self._explicit_path
        # Imported here, not at the top: ``python -m agent.llm.local_model`` imports this package
        # first, and a module already imported under its own name makes runpy warn.
        from agent.llm.local_model import ensure_model

        return ensure_model(self._var_dir)

    def _model(self) -> tuple[Any, ModelGate, PrefixStates]:
        """The loaded model, its lock and its saved prompt prefixes (assembled, checked and loaded at
        the first call)."""
        if self._loaded is None:
            path = self.model_path
            if not path.is_file():
                raise LLMError(f"LLM_MODEL_PATH {path} does not exist")
            loaded = _load_llama(path, self.n_threads, self.n_ctx, self.prompt_cache_bytes)
            if self._explicit_path is not None:
                self._template = self._own_template(loaded[0])
            self._loaded = loaded
        return self._loaded

    def load(self) -> None:
        """Assemble, check and load the model now rather than at the first call (start-up, benchmarks)."""
        self._model()

    def prefix_stats(self) -> dict[str, int]:
        """Saved prompt prefixes of the loaded model: how many (of them kept for good), their bytes,
        how often one was restored and the prompt tokens that saved evaluating."""
        if self._loaded is None:
            return {"states": 0, "kept": 0, "bytes": 0, "hits": 0, "saved_tokens": 0}
        states = self._loaded[2]
        return {
            "states": len(states),
            "kept": len(states._kept),
            "bytes": states.size,
            "hits": states.hits,
            "saved_tokens": states.saved_tokens,
        }

    def keep_prefix(self, messages: Sequence[Any], upto: str) -> int:
        """Evaluate now the head of the prompt ``messages`` make — its text before the first
        ``upto`` — and keep its KV cache for good (:meth:`PrefixStates.keep`): a later prompt that
        starts with the same head evaluates only what follows it. The head's tokens; 0 when nothing
        was kept (``LLM_PROMPT_CACHE_MB=0``, or the kept heads fill half the cache). Inside
        :func:`agent.llm.priority.background` it gives way to a person between chunks of
        :data:`BACKGROUND_CHUNK` tokens (``LLMPreempted``)."""
        llama, gate, states = self._model()
        if not states.capacity_bytes:
            return 0
        prompt, _ = self._prompt(normalize(messages))
        at = prompt.find(upto) if upto else -1
        if at <= 0:
            raise ValueError(f"the prompt has no text before {upto!r}")
        head = prompt[:at]
        background = in_background()
        with gate.hold(background=background):
            bos = getattr(self._template, "bos_token", "")
            tokens = llama.tokenize(
                head.encode("utf-8"), add_bos=not (bos and head.startswith(bos)), special=True
            )
            if tuple(tokens) in states:
                return len(tokens)
            try:
                evaluated = states.restore(llama, tokens)
                # The whole head, and at least its last token again: eval drops the KV cache past
                # ``n_tokens`` before it appends, so the state kept holds the head and nothing after
                # it (a longer state restored, or the context's own, may have held more).
                read = self._read_prompt(
                    llama,
                    tokens,
                    evaluated,
                    lambda: background and gate.wanted(),
                    upto=len(tokens),
                    chunk=BACKGROUND_CHUNK if background else len(tokens),
                )
                if not read:
                    raise LLMPreempted("a foreground call is waiting for the model")
            except LLMPreempted:
                raise
            except Exception as exc:  # llama.cpp decode failures surface as RuntimeError
                raise LLMError(f"llama.cpp failed: {exc}") from None
            return len(tokens) if states.keep(llama) else 0

    @staticmethod
    def _own_template(llama):
        """A foreign GGUF's own chat template (Jinja, from its metadata); None means ChatML."""
        template = (llama.metadata or {}).get("tokenizer.chat_template")
        if not template or "<|im_start|>" in template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def token(key: str) -> str:
            ident = (llama.metadata or {}).get(key)
            return llama._model.token_get_text(int(ident)) if ident is not None else ""

        return Jinja2ChatFormatter(
            template=template,
            eos_token=token("tokenizer.ggml.eos_token_id"),
            bos_token=token("tokenizer.ggml.bos_token_id"),
        )

    def _prompt(self, messages: list[Message]) -> tuple[str, list[str]]:
        if self._template is None:
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
            return text + "<|im_start|>assistant\n", list(_CHATML_STOP)
        formatted = self._template(messages=messages)
        stop = (
            formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
        )
        return formatted.prompt, stop

    def _generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        timeout: float,
        json_schema: dict | None,
        counts: dict,
    ) -> Iterator[str]:
        """The model's pieces, produced by a worker thread so that the caller's deadline holds even
        while llama.cpp evaluates the prompt (which it cannot interrupt): past the deadline the caller
        gets ``LLMTimeout`` at once, and the worker stops at its next token. A background call
        (:func:`agent.llm.priority.background`, looked up in the caller's thread) raises
        ``LLMPreempted`` when a foreground call takes the model from it."""
        deadline = time.monotonic() + timeout
        pieces: queue.Queue = queue.Queue()
        abandoned = threading.Event()
        background = in_background()

        def work() -> None:
            try:
                for piece in self._run(
                    messages,
                    max_tokens,
                    json_schema,
                    counts,
                    lambda: abandoned.is_set() or time.monotonic() > deadline,
                    background=background,
                ):
                    pieces.put(("piece", piece))
                pieces.put(("done", None))
            except BaseException as exc:  # handed to the caller's thread
                pieces.put(("error", exc))

        threading.Thread(target=work, name=f"llama-{self.name}", daemon=True).start()
        try:
            while True:
                try:
                    kind, value = pieces.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise LLMTimeout(f"{self.name} did not finish within {timeout:g} s") from None
                if kind == "done":
                    if time.monotonic() > deadline:
                        raise LLMTimeout(f"{self.name} did not finish within {timeout:g} s")
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            abandoned.set()

    def _run(
        self,
        messages: list[Message],
        max_tokens: int,
        json_schema: dict | None,
        counts: dict,
        expired: Callable[[], bool],
        *,
        background: bool = False,
    ) -> Iterator[str]:
        llama, gate, states = self._model()
        preempted = False

        def should_stop() -> bool:  # the deadline passed, the caller left, or a person needs the model
            nonlocal preempted
            preempted = preempted or (background and gate.wanted())
            return preempted or expired()

        with gate.hold(background=background):  # one generation at a time on the shared model
            if should_stop():
                if preempted:
                    raise LLMPreempted("a foreground call is waiting for the model")
                return
            prompt, stop = self._prompt(messages)
            bos = getattr(self._template, "bos_token", "")  # a template that writes BOS itself
            tokens = llama.tokenize(
                prompt.encode("utf-8"), add_bos=not (bos and prompt.startswith(bos)), special=True
            )
            counts["prompt"] = len(tokens)
            if len(tokens) + max_tokens > self.n_ctx:
                raise LLMError(
                    f"prompt of {len(tokens)} tokens leaves no room for {max_tokens} in a "
                    f"context of {self.n_ctx}"
                )
            from llama_cpp import StoppingCriteriaList

            grammar = _json_grammar(json_schema) if json_schema is not None else None
            try:
                counts["cached"] = states.restore(llama, tokens) if states.capacity_bytes else 0
                if background and not self._read_prompt(llama, tokens, counts["cached"], should_stop):
                    if preempted:
                        raise LLMPreempted("a foreground call is waiting for the model")
                    return  # past the deadline: the caller has its LLMTimeout
                chunks = llama.create_completion(
                    tokens,
                    max_tokens=max_tokens,
                    temperature=0.0,
                    stop=stop,
                    stream=True,
                    grammar=grammar,
                    stopping_criteria=StoppingCriteriaList([lambda _ids, _logits: should_stop()]),
                )
                for chunk in chunks:
                    counts["completion"] += 1
                    if should_stop():
                        break
                    if chunk["choices"][0]["text"]:
                        yield chunk["choices"][0]["text"]
                if preempted:  # what was written is discarded: the caller tries again later
                    raise LLMPreempted("a foreground call took the model")
                if not background:  # a pre-explaining round would evict the prefixes people reuse
                    states.save(llama)
            except (LLMError, LLMPreempted):
                raise
            except Exception as exc:  # llama.cpp decode failures surface as RuntimeError
                raise LLMError(f"llama.cpp failed: {exc}") from None

    @staticmethod
    def _read_prompt(
        llama: Any,
        tokens: Sequence[int],
        evaluated: int,
        stop: Callable[[], bool],
        *,
        upto: int | None = None,
        chunk: int = BACKGROUND_CHUNK,
    ) -> bool:
        """Evaluate ``tokens[:upto]`` — by default the prompt but its last token, which
        ``create_completion`` evaluates for the first logits — ``chunk`` tokens at a time from the
        ``evaluated`` ones on (never past the last token but one: that one is evaluated again),
        looking at ``stop`` before each chunk; False when stopped. ``create_completion`` then finds
        the prompt in the KV cache and evaluates only its last token; :meth:`keep_prefix` reads a
        whole head (``upto=len(tokens)``)."""
        upto = len(tokens) - 1 if upto is None else upto
        own = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        done = min(max(evaluated, own), len(tokens) - 1)
        if done >= upto:
            return True
        llama.n_tokens = done  # eval drops the KV cache past this point and appends from there
        while done < upto:
            if stop():
                return False
            end = min(done + chunk, upto)
            llama.eval(tokens[done:end])
            done = end
        return True

    def _complete(self, messages, *, max_tokens, json_schema, timeout):
        started = time.perf_counter()
        counts = {"prompt": 0, "completion": 0}
        text = "".join(
            self._generate(
                messages, max_tokens=max_tokens, timeout=timeout, json_schema=json_schema, counts=counts
            )
        )
        return LLMResult(text.strip(), counts["prompt"], counts["completion"], time.perf_counter() - started)

    def _stream(self, messages, *, max_tokens, timeout, counts):
        yield from self._generate(
            messages, max_tokens=max_tokens, timeout=timeout, json_schema=None, counts=counts
        )
