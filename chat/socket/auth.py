"""Who may open the chat socket: a logged-in browser from an allowed Origin (the session
cookie alone would allow cross-site WebSocket hijacking), or a script with an API key."""

import logging

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier

from chat.local_user import local_user_for
from chat.models import ApiKey
from chat.socket.origin import origin_allowed

log = logging.getLogger(__name__)


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
        if origin is not None and not origin_allowed(origin, scope):
            log.warning("socket refused: foreign origin %r", origin[:200])
            return await WebsocketDenier()(scope, receive, send)
        token = bearer_token(scope)
        if token is not None:
            key = await database_sync_to_async(ApiKey.active_key_for)(token)
            if key is None:
                log.info("socket refused: unknown or revoked API key")
                return await WebsocketDenier()(scope, receive, send)
            # The key's id: revoking it closes this socket (chat.socket.revocation).
            scope = dict(scope, user=key.user, auth="api_key", api_key_id=key.pk)
            return await self.inner(scope, receive, send)
        if (
            origin is None
        ):  # a browser always sends Origin; a cookie alone is not enough
            user = await database_sync_to_async(local_user_for)(
                (scope.get("client") or [None])[0],
                {k.decode("latin1"): v.decode("latin1") for k, v in scope["headers"]},
            )
            if user is not None:  # KOBOLDCHAT_LOCAL_USER: a script on this machine
                scope = dict(scope, user=user, auth="local_user")
                return await self.inner(scope, receive, send)
            log.info("socket refused: session without Origin")
            return await WebsocketDenier()(scope, receive, send)
        return await self.session_stack(scope, receive, send)
