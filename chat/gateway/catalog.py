"""The models the endpoint serves: each enabled backend's own model name, asked once in
a while. A request names one of them, or the alias `koboldcpp` (any backend); anything
else is 404 model_not_found."""

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings

from agents import backend_probe
from agents.errors import LLMError
from chat.errors import ChatError
from chat.models import Backend
from chat.pool import registry

log = logging.getLogger(__name__)

ALIAS = "koboldcpp"
KEEP_SECONDS = 30.0
# (asked when, the settings it was for, {model: created}): one answer for every request
# of the next KEEP_SECONDS, so a request's model check costs no round trip.
_known: tuple[float, tuple, dict[str, int]] | None = None


async def _model_of(row: Backend) -> str:
    service = registry.service_for(row)
    if await service.resolve_api() == "native":
        return await backend_probe.model_name(service.backend)
    return (await service.backend_info()).model


async def _ask_every_backend() -> dict[str, int]:
    rows = await database_sync_to_async(registry.backends_seed)()
    found = await asyncio.gather(
        *(_model_of(row) for row in rows), return_exceptions=True
    )
    now, models, failures = int(time.time()), {}, []
    for row, got in zip(rows, found, strict=True):
        if isinstance(got, LLMError):
            failures.append(got)
            log.info("models: backend %s did not answer (%s)", row.name, got.code)
        elif isinstance(got, BaseException):
            raise got
        else:
            models.setdefault(got, now)
    if not models and failures:
        raise failures[0]
    if changed := registry.models_changed(rows, found):
        await database_sync_to_async(registry.models_note)(changed)
    return models


async def served_models() -> dict[str, int]:
    """Each model an enabled backend serves, and when it was learnt (Unix time); raises
    the LLM layer's error when no backend answers."""
    global _known
    wanted = (settings.KOBOLDCPP_URL, tuple(settings.KOBOLDCPP_URLS))
    if _known is None or _known[1] != wanted or time.time() - _known[0] > KEEP_SECONDS:
        _known = (time.time(), wanted, await _ask_every_backend())
    return _known[2]


async def model_check(requested: str) -> str:
    """The model a request is routed to ("" for the alias: any backend); raises
    ChatError("model_not_found") for a model no backend serves."""
    models = await served_models()
    if requested == ALIAS:
        return ""
    if requested not in models:
        names = ", ".join(repr(name) for name in models)
        raise ChatError(
            "model_not_found",
            f"The model {requested!r} does not exist; this server has {names}.",
        )
    return requested if len(models) > 1 else ""
