"""The models the endpoint serves: each enabled backend's own model name, asked once in
a while. A request names one of them, or the alias `koboldcpp` (any backend); anything
else is 404 model_not_found."""

import asyncio
import logging
import time

from channels.db import database_sync_to_async

from agents import backend_probe
from agents.errors import LLMError
from chat.errors import ChatError
from chat.models import Backend
from chat.pool import registry

log = logging.getLogger(__name__)

ALIAS = "koboldcpp"
KEEP_SECONDS = 30.0
_known: dict[str, tuple[float, str]] = {}  # backend URL -> (when asked, model name)


async def _model_of(row: Backend) -> tuple[str, int]:
    service = registry.service_for(row)
    now = time.time()
    asked, name = _known.get(service.base_url, (0.0, ""))
    if now - asked > KEEP_SECONDS:
        if await service.resolve_api() == "native":
            name = await backend_probe.model_name(service.backend)
        else:
            name = (await service.backend_info()).model
        asked = now
        _known[service.base_url] = (asked, name)
    return name, int(asked)


async def served_models() -> dict[str, int]:
    """Each model an enabled backend serves, and when it was learnt (Unix time); raises
    the LLM layer's error when no backend answers."""
    rows = await database_sync_to_async(registry.backends_seed)()
    found = await asyncio.gather(
        *(_model_of(row) for row in rows), return_exceptions=True
    )
    models: dict[str, int] = {}
    failures = []
    for row, got in zip(rows, found, strict=True):
        if isinstance(got, LLMError):
            failures.append(got)
            log.info("models: backend %s did not answer (%s)", row.name, got.code)
        elif isinstance(got, BaseException):
            raise got
        else:
            models.setdefault(got[0], got[1])
    if not models and failures:
        raise failures[0]
    await database_sync_to_async(registry.models_note)(
        {row.pk: got[0] for row, got in zip(rows, found, strict=True)
         if not isinstance(got, BaseException)}
    )  # fmt: skip
    return models


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
