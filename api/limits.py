"""Request body limits, enforced before the body is read.

A request whose ``Content-Length`` is over its route's limit gets ``413`` at once, its body
unread; a body sent without a length (chunked) is counted as it arrives and refused with
``413`` as soon as it passes the limit. Limits: invoice batches (JSON or CSV) and counter
claim batches ``ZEROCLAIM_MAX_UPLOAD_BYTES``, photos ``ZEROCLAIM_MAX_IMAGE_BYTES``, every
other request ``ZEROCLAIM_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from api.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOADS = (
    "/api/v1/invoices/batches",
    "/api/v1/invoices/batches.csv",
    "/api/v1/office/claims/batch",
)
IMAGES = ("/api/v1/verify/image", "/api/v1/claims/photo")


def limit_for(settings: Settings, path: str) -> tuple[int, str]:
    """The body limit of a path and the error code its refusal carries."""
    if path in UPLOADS:
        return settings.max_upload_bytes, "upload_too_large"
    if path in IMAGES:
        return settings.max_image_bytes, "image_too_large"
    return settings.max_body_bytes, "body_too_large"


class BodyLimit:
    """ASGI middleware: the limits above."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, code = limit_for(self.settings, scope["path"])
        message = f"the request body may be at most {limit:,} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _refuse(send, code, message, limit)
            return
        received = 0
        over = refused = False

        async def counted() -> Message:
            # Past the limit the application sees the client go away; whatever it answers
            # then is replaced by the 413 below.
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return event

        async def guarded(event: Message) -> None:
            nonlocal refused
            if not over:
                await send(event)
            elif not refused:
                refused = True
                await _refuse(send, code, message, limit)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over and not refused:
            await _refuse(send, code, message, limit)


async def _refuse(send: Send, code: str, message: str, limit: int) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "limit": limit}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
