"""What the backend is and how it is doing: KoboldCpp probe, token counts, info.

KoboldCpp answers these without taking its generation lock, so they are cheap.
"""

import asyncio
import time
from dataclasses import dataclass

from agents.backend_transport import Backend
from agents.errors import BackendProtocolError

# llama-cpp-python's default n_ctx; OpenAI-style servers do not publish theirs.
FALLBACK_CONTEXT = 2048
_PROTECTED_MODEL = "koboldcpp/protected-model"


@dataclass
class BackendInfo:
    """A snapshot of the backend for the health view and the context budget."""

    url: str
    api: str
    model: str
    version: str
    protected: bool
    max_context: int
    idle: bool | None
    queue: int | None
    latency_ms: float
    tokens_per_s: float | None = None  # of its last reply (/api/extra/perf)


async def probe_koboldcpp(backend: Backend) -> str | None:
    """KoboldCpp's version ("1.76") when /api/extra/version says "KoboldCpp"; None
    for any other answer. Raises BackendUnreachable when nothing answers at all."""
    try:
        data = await backend.request_json("GET", "/api/extra/version", retry_busy=False)
    except BackendProtocolError:
        return None
    if not isinstance(data, dict) or data.get("result") != "KoboldCpp":
        return None
    return str(data.get("version", ""))


async def model_name(backend: Backend) -> str:
    """The served model ("koboldcpp/<file stem>"), even on a protected KoboldCpp."""
    data = await backend.request_json("GET", "/api/v1/model")
    try:
        name = str(data["result"])  # type: ignore[index]
    except (KeyError, TypeError) as exc:
        raise BackendProtocolError("/api/v1/model answered without a result") from exc
    if name == _PROTECTED_MODEL:
        # /v1/models has no auth check, so it names the model even when protected.
        name = _first_model(await backend.request_json("GET", "/v1/models"))
    return name


async def tokencount(backend: Backend, text: str) -> int:
    """Tokens in `text` without the BOS token, from /api/extra/tokencount."""
    data = await backend.request_json(
        "POST", "/api/extra/tokencount", json={"prompt": text, "special": False}
    )
    try:
        return int(data["value"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendProtocolError("tokencount answered without a value") from exc


async def backend_info(backend: Backend, api: str, *, koboldcpp: bool) -> BackendInfo:
    """Gather the info of a KoboldCpp backend, or of an OpenAI-compatible one."""
    started = time.perf_counter()
    if not koboldcpp:
        models = await backend.request_json("GET", "/v1/models")
        return BackendInfo(
            url=backend.base_url,
            api=api,
            model=_first_model(models),
            version="",
            protected=bool(backend.password),
            max_context=FALLBACK_CONTEXT,
            idle=None,
            queue=None,
            latency_ms=_ms_since(started),
        )
    version = await backend.request_json("GET", "/api/extra/version")
    latency_ms = _ms_since(started)
    name, context, perf = await asyncio.gather(
        model_name(backend),
        backend.request_json("GET", "/api/extra/true_max_context_length"),
        backend.request_json("GET", "/api/extra/perf"),
    )
    try:
        return BackendInfo(
            url=backend.base_url,
            api=api,
            model=name,
            version=str(version.get("version", "")),
            protected=bool(version.get("protected", False)),
            max_context=int(context["value"]),
            idle=bool(perf["idle"]) if "idle" in perf else None,
            queue=int(perf["queue"]) if "queue" in perf else None,
            latency_ms=latency_ms,
            tokens_per_s=_speed(perf.get("last_eval")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BackendProtocolError("unexpected KoboldCpp info answer") from exc


def _speed(ms_per_token: object) -> float | None:
    """Tokens a second from perf's `last_eval` (ms a token; 0 before any reply)."""
    if not isinstance(ms_per_token, int | float) or ms_per_token <= 0:
        return None
    return round(1000 / ms_per_token, 1)


def _first_model(models: object) -> str:
    try:
        return str(models["data"][0]["id"])
    except (KeyError, IndexError, TypeError) as exc:
        raise BackendProtocolError("/v1/models lists no model") from exc


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
