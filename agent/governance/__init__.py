"""Governance: nothing changes an ERP record without its recorded approval, and every step is logged.

- ``requests``: propose an action, decide it, execute it once (``request_action``, ``decide``,
  ``resume_request``; ``write_session`` for one transaction);
- ``intake`` and ``guard``: what a request may carry, and the checks on the records, the approval
  matrix and the requester before it is parked for a decision;
- ``approval``: the durable approval graph (paused in the checkpointer until decided);
- ``impact``: what an action would do to the other open orders (what-if, rolled back);
- ``audit``, ``audit_json``, ``audit_key``, ``audit_checkpoint``: the keyed hash chain, its event
  names, signed checkpoints; ``events``: one payload shape per event;
- ``users``, ``tokens``, ``origin``: who may decide, their API tokens, and who asked through which
  door;
- ``autopilot``: policy auto-approval by rule, shadow mode and the kill switch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.surface import lazy_surface

if TYPE_CHECKING:
    from agent.governance.audit import append_event, list_events, verify_chain
    from agent.governance.impact import whatif
    from agent.governance.origin import Origin, acting, current_origin
    from agent.governance.requests import (
        decide,
        get_request,
        list_requests,
        request_action,
        resume_request,
        write_session,
    )
    from agent.governance.users import add_user, get_user, list_users, require_user

__all__ = [
    "Origin",
    "acting",
    "add_user",
    "append_event",
    "current_origin",
    "decide",
    "get_request",
    "get_user",
    "list_events",
    "list_requests",
    "list_users",
    "request_action",
    "require_user",
    "resume_request",
    "verify_chain",
    "whatif",
    "write_session",
]
__getattr__, __dir__ = lazy_surface(
    __name__,
    {
        "Origin": "origin",
        "acting": "origin",
        "add_user": "users",
        "append_event": "audit",
        "current_origin": "origin",
        "decide": "requests",
        "get_request": "requests",
        "get_user": "users",
        "list_events": "audit",
        "list_requests": "requests",
        "list_users": "users",
        "request_action": "requests",
        "require_user": "users",
        "resume_request": "requests",
        "verify_chain": "audit",
        "whatif": "impact",
        "write_session": "requests",
    },
)
