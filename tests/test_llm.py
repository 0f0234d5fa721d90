"""The LLM factory and providers: the scripted fake, lenient JSON, the grammar fix, the OpenAI-compatible client."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from pydantic import BaseModel

from agent.llm import (
    FakeLLM,
    LlamaCppLLM,
    LLMError,
    LLMTimeout,
    OpenAILLM,
    get_llm,
    parse_json,
)
from agent.llm.llamacpp import json_gbnf
from agent.settings import Settings

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What blocks SO-100042?"}]


# --- the fake ----------------------------------------------------------------------------------------


def test_fake_answers_in_order_and_records_calls():
    llm = FakeLLM(["first answer", "second"])
    one = llm.complete(MESSAGES, max_tokens=50)
    assert one.text == "first answer" and one.completion_tokens == 2 and one.prompt_tokens > 0
    assert llm.complete(MESSAGES).text == "second"
    assert llm.calls[0]["messages"] == MESSAGES and llm.calls[0]["max_tokens"] == 50
    with pytest.raises(LLMError, match="no scripted response"):
        llm.complete(MESSAGES)


def test_fake_raises_scripted_errors_and_streams():
    llm = FakeLLM([LLMTimeout("too slow"), "Credit hold on SO-100042."])
    with pytest.raises(LLMTimeout, match="too slow"):
        llm.complete(MESSAGES)
    pieces = list(llm.stream(MESSAGES))
    assert len(pieces) == 4 and "".join(pieces) == "Credit hold on SO-100042."


def test_fake_callable_sees_the_messages():
    llm = FakeLLM(lambda messages: messages[-1]["content"].upper())
    assert llm.complete(MESSAGES).text == "WHAT BLOCKS SO-100042?"
    assert llm.provider == "fake" and llm.chat_model is None


def test_messages_accept_langchain_messages_and_reject_unknown_roles():
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    llm = FakeLLM(["ok"])
    llm.complete([SystemMessage("s"), HumanMessage("h"), AIMessage("a")])
    assert [m["role"] for m in llm.calls[0]["messages"]] == ["system", "user", "assistant"]
    with pytest.raises(ValueError, match="role"):
        FakeLLM(["x"]).complete([{"role": "wizard", "content": "hi"}])


def test_factory_follows_settings_without_loading_anything(tmp_path):
    assert isinstance(get_llm(Settings(LLM_PROVIDER="fake")), FakeLLM)
    remote = get_llm(
        Settings(
            LLM_PROVIDER="openai",
            LLM_MODEL="qwen2.5:1.5b",
            OPENAI_BASE_URL="http://127.0.0.1:9/v1",
            OPENAI_API_KEY="k",
            LLM_TIMEOUT_S=7,
        )
    )
    assert isinstance(remote, OpenAILLM) and remote.name == "qwen2.5:1.5b" and remote.chat_model is not None
    assert remote.timeout_s == 7
    local = get_llm(Settings(COPILOT_VAR_DIR=str(tmp_path), LLM_THREADS=1))
    assert isinstance(local, LlamaCppLLM) and local.n_threads == 1 and local.chat_model is None
    assert local.name == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert not (tmp_path / "models").exists(), "the model is assembled at first use, not by the factory"


def test_missing_model_file_is_an_llm_error(tmp_path):
    llm = get_llm(Settings(LLM_MODEL_PATH=str(tmp_path / "nope.gguf")))
    assert llm.name == "nope"
    with pytest.raises(LLMError, match="does not exist"):
        llm.complete(MESSAGES)


# --- JSON output ----------------------------------------------------------------------------------------


class Pick(BaseModel):
    tool: str
    order_id: str | None = None


def test_parse_json_is_lenient_then_validates():
    assert parse_json('```json\n{"tool": "get_order", "order_id": "SO-1"}\n```', Pick) == Pick(
        tool="get_order", order_id="SO-1"
    )
    # a raw newline inside a string (what llama.cpp's stock grammar allows) is accepted
    assert parse_json('Sure: {"tool": "search\nsops"} done')["tool"] == "search\nsops"
    with pytest.raises(LLMError, match="no JSON object"):
        parse_json("I cannot help with that.")
    with pytest.raises(LLMError, match="does not fit Pick"):
        parse_json('{"order_id": "SO-1"}', Pick)
    with pytest.raises(LLMError, match="malformed"):
        parse_json('{"tool": }')


def test_json_grammar_admits_no_raw_control_characters_in_strings():
    from llama_cpp.llama_grammar import LlamaGrammar

    gbnf = json_gbnf(Pick.model_json_schema())
    char_rules = [line for line in gbnf.splitlines() if line.startswith("char ::=")]
    assert char_rules and all("\\x00-\\x1F" in line for line in char_rules), char_rules
    LlamaGrammar.from_string(gbnf, verbose=False)  # still a valid grammar


# --- the OpenAI-compatible provider against a local server ----------------------------------------------------


class _Server:
    """A tiny OpenAI chat-completions endpoint on 127.0.0.1: records requests, answers per ``mode``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.mode = "text"
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if server.mode == "hang":
                    server.release.wait(10)
                    return
                if server.mode == "error":
                    self._json(500, {"error": {"message": "model crashed", "type": "server_error"}})
                    return
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for piece in ["Credit ", "hold ", "on SO-100042."]:
                        chunk = {
                            "id": "c",
                            "object": "chat.completion.chunk",
                            "created": 0,
                            "model": body["model"],
                            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                        }
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                message: dict = {"role": "assistant", "content": "Credit hold on SO-100042."}
                if body.get("tools"):
                    name = body["tools"][0]["function"]["name"]
                    message = {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {
                                    "name": name,
                                    "arguments": json.dumps({"tool": "get_order", "order_id": "SO-7"}),
                                },
                            }
                        ],
                    }
                self._json(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17},
                    },
                )

            def _json(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _remote(server, timeout=5.0):
    return get_llm(
        Settings(
            LLM_PROVIDER="openai",
            LLM_MODEL="local-qwen",
            OPENAI_BASE_URL=server.url,
            OPENAI_API_KEY="sk-test",
            LLM_TIMEOUT_S=timeout,
        )
    )


def test_openai_provider_completes_with_usage(server):
    result = _remote(server).complete(MESSAGES, max_tokens=40)
    assert result.text == "Credit hold on SO-100042."
    assert (result.prompt_tokens, result.completion_tokens) == (11, 6)
    sent = server.requests[0]
    assert (
        sent["path"] == "/v1/chat/completions"
        and sent["model"] == "local-qwen"
        and sent["auth"] == "Bearer sk-test"
    )
    assert sent["messages"] == MESSAGES and sent["temperature"] == 0
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 40


def test_openai_provider_forces_a_function_call_for_json(server):
    result = _remote(server).complete(MESSAGES, json_schema=Pick)
    assert parse_json(result.text, Pick) == Pick(tool="get_order", order_id="SO-7")
    sent = server.requests[0]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "Pick"}}
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["tool"]


def test_openai_provider_streams(server):
    assert list(_remote(server).stream(MESSAGES)) == ["Credit ", "hold ", "on SO-100042."]
    assert server.requests[0]["stream"] is True


def test_openai_provider_timeouts_and_errors_become_llm_errors(server):
    server.mode = "hang"
    with pytest.raises(LLMTimeout):
        _remote(server, timeout=0.5).complete(MESSAGES)
    server.release.set()
    server.mode = "error"
    with pytest.raises(LLMError, match="500"):
        _remote(server).complete(MESSAGES)
    with pytest.raises(LLMError):
        list(_remote(server).stream(MESSAGES))


def test_a_foreign_gguf_is_prompted_with_its_own_chat_template():
    class Vocab:
        def token_get_text(self, ident):
            return {1: "<s>", 2: "</s>"}[ident]

    class Foreign:
        metadata: ClassVar[dict[str, str]] = {
            "tokenizer.chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}"
            "{{ eos_token }}{% endfor %}[assistant]",
            "tokenizer.ggml.bos_token_id": "1",
            "tokenizer.ggml.eos_token_id": "2",
        }
        _model = Vocab()

    llm = LlamaCppLLM("foreign.gguf")
    llm._template = llm._own_template(Foreign())
    prompt, stop = llm._prompt(MESSAGES)
    assert prompt == "<s>[system] Be brief.</s>[user] What blocks SO-100042?</s>[assistant]" and stop == [
        "</s>"
    ]
    chatml = type("Qwen", (), {"metadata": {"tokenizer.chat_template": "{{ '<|im_start|>' }}"}})()
    assert llm._own_template(chatml) is None  # ChatML: the built-in format
    llm._template = None
    prompt, stop = llm._prompt(MESSAGES)
    assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>\n") and prompt.endswith(
        "<|im_start|>assistant\n"
    )
    assert "<|im_end|>" in stop
