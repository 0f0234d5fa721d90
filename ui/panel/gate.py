"""Closes the panel framework's file routes: the panel has no file inputs and serves no files.

Gradio mounts, under the panel's path, routes that take uploads from anyone (``gradio_api/upload``)
and serve files back (``gradio_api/file=…``), plus a proxy (``gradio_api/proxy=…``). None of the
panel's components uses them, and Gradio checks no token of ours on them, so an anonymous client
could store files on the server and have it serve them back. :class:`PanelGate` answers 404 to
those paths (in every spelling Gradio accepts: with and without ``gradio_api/``, percent-encoded)
before Gradio sees the request; the rest of the panel is untouched.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from starlette.responses import JSONResponse

__all__ = ["CLOSED_ROUTES", "PanelGate"]

# The route names after the panel's prefix (and an optional "gradio_api/"), as Gradio spells them.
CLOSED_ROUTES = ("upload", "file=", "proxy=")
_CLOSED = re.compile(
    r"^/+(?:gradio_api/+)?(?:" + "|".join(re.escape(r) for r in CLOSED_ROUTES) + r")", re.IGNORECASE
)


class PanelGate:
    """ASGI middleware: 404 for the file routes under ``prefix``; everything else passes."""

    def __init__(self, app, prefix: str = "/ui") -> None:
        self.app, self.prefix = app, prefix.rstrip("/")

    def closed(self, path: str) -> bool:
        path = unquote(unquote(path))
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return False
        rest = path[len(self.prefix) :]
        return bool(_CLOSED.match(rest))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.closed(scope.get("path", "")):
            response = JSONResponse(
                {
                    "error": "not_found",
                    "message": "the panel takes no files and serves none",
                    "details": [],
                },
                status_code=404,
            )
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)
