"""The model the endpoint serves: the backend's own name, asked once in a while (a
request names it, or the alias `koboldcpp`; anything else is 404 model_not_found)."""

import time

from agents import backend_probe
from agents.llm_service import LLMService
from chat.errors import ChatError

ALIAS = "koboldcpp"
KEEP_SECONDS = 30.0
_known: dict[str, tuple[float, str]] = {}  # backend URL -> (when asked, model name)


async def served_model() -> tuple[str, int]:
    """The backend's model name and when it was learnt (Unix time); raises the LLM
    layer's errors when the backend does not answer."""
    service = LLMService.from_settings()
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


async def model_check(requested: str) -> None:
    """Raise ChatError("model_not_found") unless `requested` is the served model."""
    name, _ = await served_model()
    if requested not in (name, ALIAS):
        raise ChatError(
            "model_not_found",
            f"The model {requested!r} does not exist; this server has {name!r}.",
        )
