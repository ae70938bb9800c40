"""Who may open the chat socket: a logged-in browser from an allowed Origin (the session
cookie alone would allow cross-site WebSocket hijacking), or a script with an API key."""

import logging
from urllib.parse import urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import validate_host

from chat.models import ApiKey

log = logging.getLogger(__name__)


def origin_allowed(origin: bytes) -> bool:
    try:
        host = urlparse(origin.decode("latin1")).hostname
    except ValueError:
        return False
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)


def bearer_token(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin1")
            if text[:7].lower() == "bearer ":
                return text[7:].strip()
    return None


class _RequireUser:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            log.info("socket refused: not logged in (%s)", scope.get("path"))
            return await WebsocketDenier()(scope, receive, send)
        return await self.inner(scope, receive, send)


class ChatSocketAuth:
    def __init__(self, inner):
        self.inner = inner
        self.session_stack = AuthMiddlewareStack(_RequireUser(inner))

    async def __call__(self, scope, receive, send):
        origin = dict(scope.get("headers", [])).get(b"origin")
        if origin is not None and not origin_allowed(origin):
            log.warning("socket refused: foreign origin %r", origin[:200])
            return await WebsocketDenier()(scope, receive, send)
        token = bearer_token(scope)
        if token is not None:
            user = await database_sync_to_async(ApiKey.user_for)(token)
            if user is None:
                log.info("socket refused: unknown or revoked API key")
                return await WebsocketDenier()(scope, receive, send)
            return await self.inner(
                dict(scope, user=user, auth="api_key"), receive, send
            )
        if (
            origin is None
        ):  # a browser always sends Origin; a cookie alone is not enough
            log.info("socket refused: session without Origin")
            return await WebsocketDenier()(scope, receive, send)
        return await self.session_stack(scope, receive, send)
