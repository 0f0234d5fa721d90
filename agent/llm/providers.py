"""The language model behind one factory: a local GGUF (llama.cpp), any OpenAI-compatible server, or a script.

Facts decide, the model only writes language: every caller treats an ``LLMError`` (which includes
``LLMTimeout`` and malformed output) as "fall back to the fact-only text", never as a failed triage.

    llm = get_llm()                       # from settings: LLM_PROVIDER, LLM_MODEL_PATH, LLM_MODEL, ...
    result = llm.complete([{"role": "system", "content": "..."}, {"role": "user", "content": "..."}])
    result.text, result.prompt_tokens, result.completion_tokens, result.seconds
    for piece in llm.stream(messages): ...
    llm.complete(messages, json_schema=ToolChoice)   # schema-constrained JSON; then parse_json(text, ToolChoice)

Messages are ``{"role": "system"|"user"|"assistant", "content": str}`` dicts (LangChain messages are
accepted too). ``llm.chat_model`` is a LangChain chat model for native tool calling (openai), or
None (llamacpp, fake): callers then pick tools through ``json_schema``.
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LLM",
    "FakeLLM",
    "LLMError",
    "LLMResult",
    "LLMTimeout",
    "LlamaCppLLM",
    "OpenAILLM",
    "get_llm",
    "parse_json",
    "schema_of",
]

log = logging.getLogger(__name__)

# llama-cpp-python's wheel is built with OpenMP, whose threads spin while they wait by default: on
# a busy 2-core machine two threads then ran ~9x slower than with passive waiting (0.4 vs 3.5
# tokens/s measured). Set before llama.cpp loads; an explicit environment value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

Message = dict[str, str]


class LLMError(RuntimeError):
    """The model could not give an answer: it failed, is missing, or its output was malformed."""


class LLMTimeout(LLMError):
    """The model did not finish within its deadline (``LLM_TIMEOUT_S``)."""


@dataclass(frozen=True)
class LLMResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


# --- messages and JSON ----------------------------------------------------------------------------

_ROLE = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "user",
    "function": "user",
}


def _normalize(messages: Sequence[Any]) -> list[Message]:
    """Plain ``{"role", "content"}`` dicts from dicts or LangChain messages; an unknown role is an error."""
    out: list[Message] = []
    for message in messages:
        if isinstance(message, dict):
            role, content = message.get("role"), message.get("content")
        else:  # a LangChain BaseMessage
            role, content = getattr(message, "type", None), getattr(message, "content", None)
        if role not in _ROLE:
            raise ValueError(f"unknown message role {role!r}")
        if not isinstance(content, str):
            content = json.dumps(content, default=str)
        out.append({"role": _ROLE[role], "content": content})
    if not out:
        raise ValueError("no messages")
    return out


def schema_of(json_schema: Any) -> dict:
    """A JSON schema dict from a dict or a pydantic model class."""
    if isinstance(json_schema, dict):
        return json_schema
    if hasattr(json_schema, "model_json_schema"):
        return json_schema.model_json_schema()
    raise TypeError("json_schema must be a JSON-schema dict or a pydantic model class")


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_json(text: str, model: Any = None) -> Any:
    """Parse a model's JSON leniently, then validate it.

    Lenient: code fences and text around the outermost object are dropped, raw control characters
    inside strings are accepted (llama.cpp's grammar lets them through). Then, when ``model`` is a
    pydantic model class, the object is validated into it. Anything else raises ``LLMError``.
    """
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end < start:
        raise LLMError(f"malformed model output: no JSON object in {text[:120]!r}")
    try:
        value = json.loads(body[start : end + 1], strict=False)
    except json.JSONDecodeError as exc:
        raise LLMError(f"malformed model output: {exc}") from None
    if model is None:
        return value
    try:
        return model.model_validate(value)
    except Exception as exc:  # pydantic.ValidationError: the message names the field
        raise LLMError(
            f"model output does not fit {getattr(model, '__name__', 'the schema')}: {exc}"
        ) from None


def _approx_tokens(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


# --- the interface -------------------------------------------------------------------------------


class LLM:
    """A language model. Subclasses implement ``_complete`` and ``_stream``."""

    name: str = ""
    provider: str = ""
    chat_model: Any = None

    def __init__(self, *, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self._local = threading.local()

    def complete(
        self,
        messages: Sequence[Any],
        *,
        max_tokens: int = 256,
        json_schema: Any = None,
        timeout: float | None = None,
    ) -> LLMResult:
        """The model's whole answer. With ``json_schema`` (dict or pydantic class) the answer is JSON
        constrained to it where the provider can (grammar, function calling); validate with ``parse_json``."""
        schema = schema_of(json_schema) if json_schema is not None else None
        return self._complete(
            _normalize(messages), max_tokens=max_tokens, json_schema=schema, timeout=timeout or self.timeout_s
        )

    def stream(
        self, messages: Sequence[Any], *, max_tokens: int = 256, timeout: float | None = None
    ) -> Iterator[str]:
        """The answer piece by piece as the model writes it; raises ``LLMTimeout`` past the deadline.

        Once the iterator is exhausted, ``last_usage()`` gives the call's tokens and seconds."""
        return self._counted(_normalize(messages), max_tokens, timeout or self.timeout_s)

    def _counted(self, messages: list[Message], max_tokens: int, timeout: float) -> Iterator[str]:
        self._local.last = None
        counts = {"prompt": 0, "completion": 0}
        started, pieces = time.perf_counter(), []
        for piece in self._stream(messages, max_tokens=max_tokens, timeout=timeout, counts=counts):
            pieces.append(piece)
            yield piece
        self._local.last = LLMResult(
            "".join(pieces), counts["prompt"], counts["completion"], time.perf_counter() - started
        )

    def last_usage(self) -> LLMResult | None:
        """The result of this thread's last completed ``stream`` (text, tokens, seconds), if any."""
        return getattr(self._local, "last", None)

    def _complete(
        self, messages: list[Message], *, max_tokens: int, json_schema: dict | None, timeout: float
    ) -> LLMResult:
        raise NotImplementedError

    def _stream(
        self, messages: list[Message], *, max_tokens: int, timeout: float, counts: dict
    ) -> Iterator[str]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider}:{self.name}>"


# --- fake: scripted and deterministic ---------------------------------------------------------------


class FakeLLM(LLM):
    """A scripted model for tests and evals.

    ``responses`` is a list consumed in order (a string is the answer; an exception instance is
    raised, e.g. ``LLMTimeout("slow")``), or a callable ``messages -> str`` (it may raise too).
    With no script every call raises ``LLMError``, so callers fall back deterministically.
    ``calls`` records the messages of each call (with ``max_tokens`` and ``json_schema``).
    """

    provider = "fake"

    def __init__(
        self,
        responses: Sequence[str | BaseException] | Callable[[list[Message]], str] | None = None,
        *,
        name: str = "fake",
        chat_model: Any = None,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(timeout_s=timeout_s)
        self.name = name
        self.chat_model = chat_model
        self._script = responses if callable(responses) else list(responses or [])
        self._lock = threading.Lock()
        self.calls: list[dict] = []

    def _next(self, messages: list[Message]) -> str:
        with self._lock:
            if callable(self._script):
                answer: Any = self._script(messages)
            elif self._script:
                answer = self._script.pop(0)
            else:
                raise LLMError("fake model: no scripted response left")
        if isinstance(answer, BaseException):
            raise answer
        if not isinstance(answer, str):
            raise LLMError(f"fake model: scripted response is {type(answer).__name__}, not str")
        return answer

    def _complete(self, messages, *, max_tokens, json_schema, timeout):
        started = time.perf_counter()
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "json_schema": json_schema})
        text = self._next(messages)
        prompt = sum(_approx_tokens(m["content"]) for m in messages)
        return LLMResult(text, prompt, _approx_tokens(text), time.perf_counter() - started)

    def _stream(self, messages, *, max_tokens, timeout, counts):
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "json_schema": None})
        text = self._next(messages)
        counts["prompt"] = sum(_approx_tokens(m["content"]) for m in messages)
        counts["completion"] = _approx_tokens(text)
        yield from re.findall(r"\S+\s*|\s+", text)


# --- llamacpp: a local GGUF ------------------------------------------------------------------------

_MODELS: dict[tuple, tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()
_CHATML_STOP = ["<|im_end|>", "<|endoftext|>"]


def _load_llama(path: Path, n_threads: int, n_ctx: int) -> tuple[Any, threading.Lock]:
    """One ``Llama`` per (file, threads, context) per process, with the lock that serialises its use
    (a llama.cpp context runs one generation at a time); loading twice would double the memory."""
    key = (str(path.resolve()), n_threads, n_ctx)
    with _MODELS_LOCK:
        if key not in _MODELS:
            try:
                from llama_cpp import Llama
            except ImportError as exc:  # pragma: no cover - llama-cpp-python is a declared dependency
                raise LLMError(f"llama-cpp-python is not installed: {exc}") from None
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


def _json_gbnf(schema: dict) -> str:
    """The llama.cpp grammar (GBNF) for ``schema``, with strings that admit no raw control characters.

    llama-cpp-python 0.3.36's converter lets any character but ``"`` and ``\\`` into a string, so
    the model can emit a raw newline inside a JSON string (invalid JSON); the rule is tightened here.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(schema))
    return re.sub(r'^char ::= \[\^"\\\\\]', r'char ::= [^"\\\\\\x00-\\x1F\\x7F]', gbnf, flags=re.M)


def _json_grammar(schema: dict):
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_string(_json_gbnf(schema), verbose=False)


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
        from agent.llm.local_model import default_model

        return default_model().name

    @property
    def model_path(self) -> Path:
        if self._explicit_path is not None:
            return self._explicit_path
        from agent.llm.local_model import ensure_model

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


# --- openai: any OpenAI-compatible server ------------------------------------------------------------


class OpenAILLM(LLM):
    """OpenAI or any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server) through langchain-openai."""

    provider = "openai"

    def __init__(self, model: str, *, base_url: str = "", api_key: str = "", timeout_s: float = 60.0) -> None:
        super().__init__(timeout_s=timeout_s)
        from langchain_openai import ChatOpenAI

        self.name = model
        self.chat_model = ChatOpenAI(
            model=model,
            base_url=base_url or None,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=0,
            temperature=0,
        )

    @staticmethod
    def _errors(exc: Exception, timeout: float) -> LLMError:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return LLMTimeout(f"the model server did not answer within {timeout:g} s")
        if isinstance(exc, openai.APIStatusError):
            return LLMError(f"the model server answered {exc.status_code}: {str(exc)[:200]}")
        if isinstance(exc, openai.APIError):
            return LLMError(f"the model server failed: {str(exc)[:200]}")
        return LLMError(f"the model call failed: {type(exc).__name__}: {str(exc)[:200]}")

    def _complete(self, messages, *, max_tokens, json_schema, timeout):
        started = time.perf_counter()
        model = self.chat_model.bind(max_tokens=max_tokens, timeout=timeout)
        try:
            if json_schema is not None:
                # Function calling with a forced tool works on OpenAI and on llama.cpp's server,
                # where response_format json_schema does not.
                name = re.sub(r"[^A-Za-z0-9_-]", "_", str(json_schema.get("title") or "answer"))[:64]
                tool = {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": str(json_schema.get("description") or "Give the answer."),
                        "parameters": json_schema,
                    },
                }
                reply = model.bind(
                    tools=[tool], tool_choice={"type": "function", "function": {"name": name}}
                ).invoke(messages)
                calls = getattr(reply, "tool_calls", None) or []
                text = json.dumps(calls[0]["args"]) if calls else str(reply.content)
            else:
                reply = model.invoke(messages)
                text = str(reply.content)
        except Exception as exc:
            raise self._errors(exc, timeout) from None
        usage = getattr(reply, "usage_metadata", None) or {}
        return LLMResult(
            text.strip(),
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
            time.perf_counter() - started,
        )

    def _stream(self, messages, *, max_tokens, timeout, counts):
        deadline = time.monotonic() + timeout
        model = self.chat_model.bind(max_tokens=max_tokens, timeout=timeout)
        try:
            pieces = 0
            for chunk in model.stream(messages):
                if time.monotonic() > deadline:
                    raise LLMTimeout(f"{self.name} did not finish within {timeout:g} s")
                usage = getattr(chunk, "usage_metadata", None) or {}
                counts["prompt"] += int(usage.get("input_tokens", 0))
                counts["completion"] += int(usage.get("output_tokens", 0))
                if chunk.content:
                    pieces += 1
                    yield str(chunk.content)
            counts["completion"] = (
                counts["completion"] or pieces
            )  # servers that send no usage: one token a chunk
        except LLMError:
            raise
        except Exception as exc:
            raise self._errors(exc, timeout) from None


# --- the factory -------------------------------------------------------------------------------------


def get_llm(settings=None) -> LLM:
    """The model the settings name: ``LLM_PROVIDER`` llamacpp (default), openai or fake.

    Cheap: the local model is assembled, checked and loaded at its first call, once per process.
    """
    if settings is None:
        from agent.settings import get_settings

        settings = get_settings()
    if settings.llm_provider == "fake":
        return FakeLLM(timeout_s=settings.llm_timeout_s)
    if settings.llm_provider == "openai":
        return OpenAILLM(
            settings.llm_model,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout_s=settings.llm_timeout_s,
        )
    return LlamaCppLLM(
        settings.llm_model_path,
        var_dir=settings.var_dir,
        n_threads=settings.llm_threads,
        timeout_s=settings.llm_timeout_s,
    )
