"""The Chat tab: a question to the copilot, the answer streaming as the model writes it, with the
tools it called and the SOPs it cited beside it. Until the answer's first words arrive, its bubble
says what the turn is doing ("Looking up SO-100042…"). Each browser session gets its own thread."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr

from agent.copilot.progress import READING
from ui.api.service import Services
from ui.panel.common import EXPECTED, citation_text, failure_md, md_text, signed_in

__all__ = ["CHAT_CONCURRENCY", "ChatTab"]

CHAT_CONCURRENCY = 4  # chat answers generated at once; the other events have their own slots


def _doing(label: str) -> str:
    """A progress label as the answer's placeholder (escaped: it may quote a customer's name)."""
    return f"_{md_text(label)}_" if label else ""


class ChatTab:
    def __init__(self, services: Services) -> None:
        self.services = services

    def chat(
        self, token: str | None, thread: str | None, message: str, history: list[dict[str, Any]] | None
    ) -> Iterator[tuple[Any, ...]]:
        """Ask the copilot; the answer streams, with the tools it called and the SOPs it cited."""
        history = list(history or [])
        try:
            who = signed_in(self.services, token)
            self.services.limits.take_model(who.username)
        except EXPECTED as exc:
            yield history, failure_md(exc), thread, message, gr.update(visible=False)
            return
        message = (message or "").strip()
        if not message:
            yield history, "Type a question.", thread, "", gr.update(visible=False)
            return
        thread = thread or uuid.uuid4().hex[:16]
        # the question is shown as typed: a pasted e-mail's <img> or Markdown image loads nothing
        history += [
            {"role": "user", "content": md_text(message)},
            {"role": "assistant", "content": _doing(READING)},
        ]
        tools: list[str] = []
        answered = False  # the bubble shows progress labels until the first token or the final answer
        cites: list[str] = []
        notes: list[str] = []
        pending = False  # a proposed approval request waits for the Confirm button (or "yes")

        def side() -> str:
            return (
                f"**Tools called:** {', '.join(tools) or '—'}\n\n**SOP citations:** {', '.join(cites) or '—'}"
            )

        yield history, side(), thread, "", gr.update(visible=False)
        try:
            for event in self.services.chat_stream(f"{who.username}:{thread}", message, who):
                kind = event.get("type")
                if kind == "progress":
                    if answered:
                        continue
                    history[-1]["content"] = _doing(str(event.get("text") or ""))
                elif kind == "token":
                    if not answered:
                        answered, history[-1]["content"] = True, ""
                    history[-1]["content"] += md_text(str(event.get("text", event.get("token", ""))))
                elif kind == "tool":
                    tools.append(str(event.get("name") or event.get("tool") or "?"))
                elif kind == "citation":
                    cites.append(citation_text(event.get("citation", event)))
                elif kind == "proposal":
                    pending = bool((event.get("proposal") or {}).get("ok"))
                elif kind == "request":
                    req = event.get("request") or {}
                    notes.append(f"_Requested #{req.get('id')}: {req.get('action')} ({req.get('status')})_")
                    if not answered:
                        answered, history[-1]["content"] = True, ""
                    history[-1]["content"] += "\n\n" + notes[-1]
                elif kind == "final":  # the answer (streamed tokens of a fallback are superseded)
                    answered = True
                    history[-1]["content"] = "\n\n".join([md_text(str(event.get("answer") or "")), *notes])
                    for c in event.get("citations") or []:
                        if citation_text(c) not in cites:
                            cites.append(citation_text(c))
                    if event.get("fallback"):
                        history[-1]["content"] += "\n\n_(the model was unavailable: fact-only answer)_"
                yield history, side(), thread, "", gr.update(visible=pending)
        except EXPECTED as exc:
            if not answered:
                history[-1]["content"] = ""
            history[-1]["content"] += f"\n\n{failure_md(exc)}"
            yield history, side(), thread, "", gr.update(visible=False)

    def confirm(
        self, token: str | None, thread: str | None, history: list[dict[str, Any]] | None
    ) -> Iterator[tuple[Any, ...]]:
        """The Confirm button: says "yes" on the thread, which files exactly the proposed request."""
        yield from self.chat(token, thread, "yes", history)

    def layout(self, token_state: gr.State) -> None:
        with gr.Tab("Chat", id="chat"):
            thread_state = gr.State(None)
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Copilot", height=420, elem_id="chatbot")
                    chat_box = gr.Textbox(
                        label="Ask", placeholder="What is blocking SO-100042?", elem_id="chat-input"
                    )
                    with gr.Row():
                        send_btn = gr.Button("Send", variant="primary")
                        confirm_btn = gr.Button(
                            "Confirm: file this request", visible=False, elem_id="chat-confirm"
                        )
                with gr.Column(scale=1):
                    chat_side = gr.Markdown(
                        "**Tools called:** —\n\n**SOP citations:** —", elem_id="chat-side"
                    )
            for trigger in (send_btn.click, chat_box.submit):
                trigger(
                    self.chat,
                    [token_state, thread_state, chat_box, chatbot],
                    [chatbot, chat_side, thread_state, chat_box, confirm_btn],
                    api_name="chat" if trigger == send_btn.click else None,
                    api_visibility="public" if trigger == send_btn.click else "private",
                    concurrency_limit=CHAT_CONCURRENCY,
                    concurrency_id="chat",
                )
            confirm_btn.click(
                self.confirm,
                [token_state, thread_state, chatbot],
                [chatbot, chat_side, thread_state, chat_box, confirm_btn],
                api_name="chat_confirm",
                concurrency_limit=CHAT_CONCURRENCY,
                concurrency_id="chat",
            )
