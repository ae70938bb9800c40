"""The health check: backend, database and channel layer, each under its own time limit so
that the whole answer comes within two seconds even when KoboldCpp hangs."""

import asyncio
import logging
from urllib.parse import urlsplit, urlunsplit

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from agents.errors import LLMError
from agents.llm_service import LLMService

log = logging.getLogger(__name__)

BACKEND_SECONDS = 1.5
LOCAL_CHECK_SECONDS = 1.0


def public_url(url: str) -> str:
    """The URL without user:password, so that it can be shown to anyone."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def backend_label() -> str:
    return settings.KOBOLDCHAT_BACKEND_LABEL or (
        f"KoboldCpp at {public_url(settings.KOBOLDCPP_URL)}"
    )


async def backend_health() -> dict:
    url = public_url(settings.KOBOLDCPP_URL)
    report = {"reachable": False, "label": backend_label(), "url": url}
    try:
        async with asyncio.timeout(BACKEND_SECONDS):
            info = await LLMService.from_settings().backend_info()
    except TimeoutError:
        return report | {"error": f"no answer within {BACKEND_SECONDS} s"}
    except LLMError as exc:
        return report | {"error": exc.code}
    return report | {
        "reachable": True,
        "api": info.api,
        "model": info.model,
        "version": info.version,
        "max_context": info.max_context,
        "idle": info.idle,
        "queue": info.queue,
        "latency_ms": info.latency_ms,
    }


def _select_one() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


async def database_ok() -> bool:
    try:
        async with asyncio.timeout(LOCAL_CHECK_SECONDS):
            return await sync_to_async(_select_one)()
    except Exception:
        # Any failure at all is the answer "unhealthy", but it must be visible in logs.
        log.exception("health: the database check failed")
        return False


async def channel_layer_ok() -> bool:
    """Send one message to a fresh channel and read it back."""
    try:
        async with asyncio.timeout(LOCAL_CHECK_SECONDS):
            layer = get_channel_layer()
            channel = await layer.new_channel()
            await layer.send(channel, {"type": "health.ping"})
            message = await layer.receive(channel)
            return message.get("type") == "health.ping"
    except Exception:
        log.exception("health: the channel layer check failed")
        return False


async def health_report() -> dict:
    backend, database, layer = await asyncio.gather(
        backend_health(), database_ok(), channel_layer_ok()
    )
    healthy = backend["reachable"] and database and layer
    return {
        "status": "ok" if healthy else "degraded",
        "backend": backend,
        "database": database,
        "channel_layer": layer,
    }
