"""Communications: the customer notices and supplier requests of domain.md §7.

- (``tools.notices`` records, in the executor's transaction, which notices an executed action makes
  due and the facts each may state; ``tools.outbox`` queues an approved message)
- ``grounding``: the check every draft and every approver's edit passes (facts only, nothing internal);
- ``draft``: the language model writes subject and body in the customer's language and the tone of
  ``prompts/notice_tone.txt``; a draft that fails the check twice becomes the fact-only template;
- ``service``: drafts due notices and files them for approval, a planner's own ask, an approver's
  edit (checked again), the views;
- ``delivery``: the outbox worker (SMTP, or ``.eml`` files by default), once per approved message;
- ``worker``: both of the above in a loop inside ``copilot serve``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.surface import lazy_surface

if TYPE_CHECKING:
    from agent.comms.delivery import deliver_due, transport_from_settings
    from agent.comms.service import ask_notice, draft_due, edit_message, get_message, list_messages
    from agent.comms.worker import CommsWorker

__all__ = [
    "CommsWorker",
    "ask_notice",
    "deliver_due",
    "draft_due",
    "edit_message",
    "get_message",
    "list_messages",
    "transport_from_settings",
]
__getattr__, __dir__ = lazy_surface(
    __name__,
    {
        "CommsWorker": "worker",
        "ask_notice": "service",
        "deliver_due": "delivery",
        "draft_due": "service",
        "edit_message": "service",
        "get_message": "service",
        "list_messages": "service",
        "transport_from_settings": "delivery",
    },
)
