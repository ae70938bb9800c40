"""The health check: the backends (chat/pool/status.py), database and channel layer, each
under its own time limit so that the whole answer comes within two seconds even when
KoboldCpp hangs; ok while one backend answers. One probe serves every caller of the
process for a second: polling the health check cannot load KoboldCpp."""

import asyncio
import logging
import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from chat.pool.status import pool_report

log = logging.getLogger(__name__)

LOCAL_CHECK_SECONDS = 1.0
SHARED_SECONDS = 1.0
_shared: tuple[tuple, float, asyncio.Task] | None = None  # (what, started, the probe)


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
    """The last probe if it started less than SHARED_SECONDS ago (or still runs) for
    the same backend; else a new one."""
    global _shared
    what = (
        asyncio.get_running_loop(),
        settings.KOBOLDCPP_URL,
        tuple(settings.KOBOLDCPP_URLS),
        settings.KOBOLDCPP_API,
        settings.KOBOLDCHAT_BACKEND_LABEL,
    )
    now = time.monotonic()
    if _shared is not None and _shared[0] == what:
        _, started, probe = _shared
        if not probe.done() or now - started < SHARED_SECONDS:
            return dict(await asyncio.shield(probe))
    probe = asyncio.create_task(_probe())
    _shared = (what, now, probe)
    return dict(await asyncio.shield(probe))


async def _probe() -> dict:
    pool, database, layer = await asyncio.gather(
        pool_report(), database_ok(), channel_layer_ok()
    )
    healthy = pool["backend"]["reachable"] and database and layer
    return {"status": "ok" if healthy else "degraded", **pool} | {
        "database": database,
        "channel_layer": layer,
    }
