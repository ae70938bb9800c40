"""The pool as the health check reports it: each enabled backend (whether it answers,
its model, its slots busy of all, its last speed) and one summary for the page's
badge. Every backend is asked at once, each under the same time limit."""

import asyncio
import logging
from urllib.parse import urlsplit, urlunsplit

from channels.db import database_sync_to_async
from django.conf import settings

from agents.errors import LLMError
from chat.models import Backend
from chat.pool import registry
from chat.replies.queue import get_backend_queue

log = logging.getLogger(__name__)

BACKEND_SECONDS = 1.5
ROWS_SECONDS = 1.0


def public_url(url: str) -> str:
    """The URL without user:password, so that it can be shown to anyone."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def _rows() -> list[Backend]:
    """The enabled backends; without the database, the one of the settings (so the
    check still says whether KoboldCpp answers)."""
    try:
        async with asyncio.timeout(ROWS_SECONDS):
            return await database_sync_to_async(registry.backends_seed)()
    except Exception:
        log.exception("health: the backend rows could not be read")
        url = settings.KOBOLDCPP_URL
        return [Backend(name=url, url=url, api=settings.KOBOLDCPP_API, slots=1)]


async def _backend(row: Backend, busy: int) -> dict:
    report = {
        "name": row.name,
        "url": public_url(row.url),
        "reachable": False,
        "slots": row.slots,
        "busy": busy,
    }
    try:
        async with asyncio.timeout(BACKEND_SECONDS):
            info = await registry.service_for(row).backend_info()
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
        "tokens_per_s": info.tokens_per_s,
    }


def _summary(backends: list[dict], waiting: int) -> dict:
    """One backend: itself. Several: whether any answers, the models they serve, and
    whether all are busy."""
    label = settings.KOBOLDCHAT_BACKEND_LABEL
    if len(backends) == 1:
        (only,) = backends
        return only | {"label": label or f"KoboldCpp at {only['url']}"}
    up = [b for b in backends if b["reachable"]]
    models = list(dict.fromkeys(b["model"] for b in up))
    return {
        "reachable": bool(up),
        "label": label or f"{len(up)} of {len(backends)} KoboldCpp servers",
        "model": ", ".join(models),
        "idle": any(b["busy"] < b["slots"] and b.get("idle") is not False for b in up),
        "queue": waiting + sum(b.get("queue") or 0 for b in up),
        "error": "" if up else "backend_unreachable",
    }


async def pool_report() -> dict:
    """{"backend": the summary, "backends": each one, "waiting": replies in line}."""
    rows = await _rows()
    busy, waiting = await get_backend_queue().loads()
    backends = list(
        await asyncio.gather(*(_backend(row, busy.get(row.key, 0)) for row in rows))
    )
    changed = registry.models_changed(rows, [b.get("model") for b in backends])
    if changed:  # what the model picker offers, and where each model is
        await database_sync_to_async(registry.models_note)(changed)
    if not backends:
        backends = [{"name": "", "url": "", "reachable": False, "slots": 0, "busy": 0}]
        backends[0]["error"] = "no backend is enabled"
    return {
        "backend": _summary(backends, waiting),
        "backends": backends,
        "waiting": waiting,
    }
