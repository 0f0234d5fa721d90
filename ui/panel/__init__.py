"""The web panel (Gradio Blocks), mounted on the API's FastAPI app at ``/ui``.

One page, five tabs — Chat, Orders, Approvals, Dashboard (KPIs, model-monitoring warnings, recurring
anomalies), Audit — behind a sign-in with the same bearer tokens as the API: the token is kept in
the browser session's server-side state and checked again on every action, so every request and
decision is made as the signed-in user, and a decision beyond the role is refused and shown as
such. Each handler calls the same :class:`ui.api.service.Services` methods as the API.

``shell`` lays out the sign-in and the tabs; each tab is a module (``chat``, ``orders``,
``approvals``, ``dashboard``, ``audit``) with its handlers and its layout; ``common`` holds how an
expected failure is shown. Responsive while the model writes: chat answers stream from a generator
with their own concurrency limit, and the other events run beside them
(``default_concurrency_limit``). Nothing loads from the internet: system fonts instead of Google
Fonts, analytics off.
"""

from ui.panel.shell import PANEL_PATH, build_panel, mount_panel, theme

__all__ = ["PANEL_PATH", "build_panel", "mount_panel", "theme"]
