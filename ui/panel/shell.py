"""The panel's shell: the sign-in row above the six tabs, the event queue, the mount on the API app.

The token is kept in the browser session's server-side state (``gr.State``) and every tab's handler
checks it again, so each request and decision is made as the signed-in user.
"""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from ui.api.auth import AuthError
from ui.api.service import Services
from ui.panel.approvals import ApprovalsTab
from ui.panel.audit import AuditTab
from ui.panel.chat import ChatTab
from ui.panel.common import EXPECTED, NO_TOKEN, failure_md, md_text
from ui.panel.dashboard import DashboardTab
from ui.panel.orders import OrdersTab
from ui.panel.queue import QueueTab

__all__ = ["DEFAULT_CONCURRENCY", "PANEL_PATH", "build_panel", "mount_panel", "theme"]

PANEL_PATH = "/ui"
DEFAULT_CONCURRENCY = 16
_SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif")
_MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")


def theme() -> gr.themes.Base:
    """The default look with the operating system's fonts (Gradio's default fetches Google Fonts)."""
    return gr.themes.Default(font=list(_SYSTEM_FONTS), font_mono=list(_MONO_FONTS))


def build_panel(services: Services) -> gr.Blocks:
    """The Blocks of the panel, its handlers bound to ``services``."""

    def sign_in(token: str):
        """Check a token; remember it for this browser session."""
        if not (token or "").strip():
            return None, failure_md(AuthError(NO_TOKEN))
        try:
            who = services.authenticate(token)
        except EXPECTED as exc:
            return None, failure_md(exc)
        roles = services.may_decide_for(who)
        return token.strip(), (
            f"Signed in as **{who.username}** (role **{who.role}**; decides for: {', '.join(roles) or 'nothing'}"
            + ("" if who.scope.unrestricted else f"; sites: {md_text(who.scope.describe())}")
            + ")"
        )

    def sign_out():
        return None, "Signed out."

    # No file inputs: whatever lands in Gradio's cache is deleted hourly once an hour old.
    with gr.Blocks(
        title="Fulfillment-exception copilot", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as blocks:
        token_state = gr.State(None)
        gr.Markdown("## Fulfillment-exception copilot")
        with gr.Row():
            token_box = gr.Textbox(
                label="API token",
                type="password",
                scale=4,
                elem_id="token",
                placeholder="paste your token (copilot demo prints the demo users' tokens)",
            )
            sign_in_btn = gr.Button("Sign in", variant="primary", scale=1, elem_id="sign-in")
            sign_out_btn = gr.Button("Sign out", scale=1)
        who_md = gr.Markdown("Not signed in.", elem_id="who")
        sign_in_btn.click(sign_in, [token_box], [token_state, who_md], api_name="sign_in")
        token_box.submit(sign_in, [token_box], [token_state, who_md], api_visibility="private")
        sign_out_btn.click(sign_out, None, [token_state, who_md], api_name="sign_out")

        with gr.Tabs():
            for tab in (ChatTab, OrdersTab, QueueTab, ApprovalsTab, DashboardTab, AuditTab):
                tab(services).layout(token_state)

    blocks.queue(default_concurrency_limit=DEFAULT_CONCURRENCY)
    return blocks


def mount_panel(app: FastAPI, services: Services) -> FastAPI:
    """Mount the panel on ``app`` at :data:`PANEL_PATH` (same process, same port as the API)."""
    blocks = build_panel(services)
    # The file routes are closed in front of Gradio (ui.panel.gate); the size cap and the blocked
    # var folder hold should one be reopened.
    return gr.mount_gradio_app(
        app,
        blocks,
        path=PANEL_PATH,
        theme=theme(),
        show_error=True,
        max_file_size="1mb",
        blocked_paths=[str(services.settings.var_dir)],
    )
