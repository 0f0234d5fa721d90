"""Communications: the customer notices and supplier requests of domain.md §7.

- ``due``: which executed actions make a notice due, and the facts it may state;
- ``grounding``: the check every draft and every approver's edit passes (facts only, nothing internal);
- ``draft``: the language model writes subject and body in the customer's language and the tone of
  ``prompts/notice_tone.txt``; a draft that fails the check twice becomes the fact-only template;
- ``service``: drafts due notices and files them for approval, a planner's own ask, the views;
- ``delivery``: the outbox worker (SMTP, or ``.eml`` files by default), once per approved message.

Modules are imported by their own name: ``agent.governance.requests`` uses ``due`` and ``grounding``
while ``service`` files requests through it.
"""
