"""A local GGUF model run in-process by llama-cpp-python (``LLM_PROVIDER=llamacpp``, the default).

The model file is assembled and checked by ``agent.llm.local_model`` unless ``LLM_MODEL_PATH``
names one. Each file is loaded once per process and serves one generation at a time; the caller's
deadline holds even while llama.cpp evaluates a prompt it cannot interrupt. llama_cpp itself is
imported where the model is loaded, so that a process using another provider never loads its
shared library.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent.llm.base import LLM, LLMError, LLMResult, LLMTimeout, Message
from agent.llm.local_model import default_model, ensure_model

__all__ = ["LlamaCppLLM", "json_gbnf"]

log = logging.getLogger(__name__)

# llama-cpp-python's wheel is built with OpenMP, whose threads spin while they wait by default: on
# a busy 2-core machine two threads then ran ~9x slower than with passive waiting (0.4 vs 3.5
# tokens/s measured). Set before llama.cpp loads; an explicit environment value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_MODELS: dict[tuple, tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()
_CHATML_STOP = ["<|im_end|>", "<|endoftext|>"]


def _load_llama(path: Path, n_threads: int, n_ctx: int) -> tuple[Any, threading.Lock]:
    """One ``Llama`` per (file, threads, context) per process, with the lock that serialises its use
    (a llama.cpp context runs one generation at a time); loading twice would double the memory."""
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
            _MODELS[key] = (llama, threading.Lock())
            log.info("loaded %s in %.1f s (%d threads)", path.name, time.perf_counter() - started, n_threads)
        return _MODELS[key]


def _close_models() -> None:
    """Free the loaded models while the interpreter is still whole: left to ``Llama.__del__`` at
    shutdown, llama-cpp-python's free functions are already gone and every model prints a
    'TypeError: NoneType object is not callable' traceback on exit."""
    with _MODELS_LOCK:
        for llama, lock in _MODELS.values():
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
    ) -> None:
        super().__init__(timeout_s=timeout_s)
        self._explicit_path = Path(model_path) if model_path else None
        self._var_dir = Path(var_dir)
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_ctx = n_ctx
        self._loaded: tuple[Any, threading.Lock] | None = None
        self._template = None  # None: ChatML (Qwen); else the GGUF's own chat template

    @property
    def name(self) -> str:  # type: ignore[override]
        if self._explicit_path is not None:
            return self._explicit_path.stem
        return default_model().name

    @property
    def model_path(self) -> Path:
        if self._explicit_path is not None:
            return self._explicit_path
        return ensure_model(self._var_dir)

    def _model(self) -> tuple[Any, threading.Lock]:
        """The loaded model and its lock (assembled, checked and loaded at the first call)."""
        if self._loaded is None:
            path = self.model_path
            if not path.is_file():
                raise LLMError(f"LLM_MODEL_PATH {path} does not exist")
            loaded = _load_llama(path, self.n_threads, self.n_ctx)
            if self._explicit_path is not None:
                self._template = self._own_template(loaded[0])
            self._loaded = loaded
        return self._loaded

    def load(self) -> None:
        """Assemble, check and load the model now rather than at the first call (start-up, benchmarks)."""
        self._model()

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
        gets ``LLMTimeout`` at once, and the worker stops at its next token."""
        deadline = time.monotonic() + timeout
        pieces: queue.Queue = queue.Queue()
        abandoned = threading.Event()

        def work() -> None:
            try:
                for piece in self._run(
                    messages,
                    max_tokens,
                    json_schema,
                    counts,
                    lambda: abandoned.is_set() or time.monotonic() > deadline,
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
    ) -> Iterator[str]:
        llama, lock = self._model()
        with lock:  # one generation at a time on the shared model
            if expired():
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
                chunks = llama.create_completion(
                    tokens,
                    max_tokens=max_tokens,
                    temperature=0.0,
                    stop=stop,
                    stream=True,
                    grammar=grammar,
                    stopping_criteria=StoppingCriteriaList([lambda _ids, _logits: expired()]),
                )
                for chunk in chunks:
                    counts["completion"] += 1
                    if expired():
                        break
                    if chunk["choices"][0]["text"]:
                        yield chunk["choices"][0]["text"]
            except LLMError:
                raise
            except Exception as exc:  # llama.cpp decode failures surface as RuntimeError
                raise LLMError(f"llama.cpp failed: {exc}") from None

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
