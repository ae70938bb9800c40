"""KoboldCpp calls: streamed and plain chat replies, abort, token counts, backend info.

Speaks the native API (`/api`, prompt from a chat template) or the OpenAI one (`/v1`).
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from django.conf import settings as django_settings

from agents import backend_probe
from agents.backend_probe import BackendInfo
from agents.backend_transport import Backend
from agents.chat_templates import get_template
from agents.errors import BackendProtocolError, LLMError
from agents.events import ChatTurn, Finished, StreamEvent

logger = logging.getLogger("agents.llm_service")

MAX_STOP_SEQUENCES = 32  # KoboldCpp ignores any beyond this
TOKEN_CACHE_SIZE = 2048
_services: dict[tuple, "LLMService"] = {}


@dataclass
class GenerationSettings:
    """Sampler settings of one reply."""

    max_tokens: int = 400
    temperature: float = 0.7
    top_p: float = 0.92
    top_k: int = 100
    rep_pen: float = 1.1
    stop: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Completion(Finished):
    """The end of a non-streamed reply, with its whole text."""

    text: str = ""


class LLMService:
    """One KoboldCpp (or OpenAI-compatible) backend, reached via the shared client."""

    def __init__(
        self,
        *,
        base_url: str,
        api: str = "auto",
        password: str = "",
        template: str = "chatml",
        busy_retries: int = 4,
    ) -> None:
        if api not in ("auto", "native", "openai"):
            raise ValueError(
                f"KOBOLDCPP_API must be auto, native or openai, not {api!r}"
            )
        self.backend = Backend(base_url.rstrip("/"), password, busy_retries)
        self.api = api
        self.template = get_template(template)
        # None until known: api="openai" may still be a KoboldCpp with a tokencount.
        self.is_koboldcpp: bool | None = True if api == "native" else None
        self.max_context: int | None = None
        self._resolved: str | None = None if api == "auto" else api
        self._token_counts: OrderedDict[str, int] = OrderedDict()

    @classmethod
    def from_settings(cls) -> "LLMService":
        """The service for the KOBOLDCPP_* and LLM_* settings of this moment.

        One instance per configuration, so the API probe, the context size and the token
        counts are learnt once per process rather than once per reply.
        """
        config = dict(
            base_url=django_settings.KOBOLDCPP_URL,
            api=django_settings.KOBOLDCPP_API,
            password=django_settings.KOBOLDCPP_PASSWORD,
            template=django_settings.KOBOLDCPP_CHAT_TEMPLATE,
            busy_retries=django_settings.LLM_BUSY_RETRIES,
        )
        key = tuple(config.values())
        service = _services.get(key)
        if service is None:
            service = _services[key] = cls(**config)
        return service

    @staticmethod
    def forget_all() -> None:
        """Drop the per-configuration instances (tests point at a new server each time)."""
        _services.clear()

    @property
    def base_url(self) -> str:
        return self.backend.base_url

    async def resolve_api(self) -> str:
        """The API in use, "native" or "openai"; "auto" probes once, on first call."""
        if self._resolved is None:
            self.is_koboldcpp = await backend_probe.probe_koboldcpp(self.backend)
            self._resolved = "native" if self.is_koboldcpp else "openai"
            logger.info("%s speaks the %s API", self.base_url, self._resolved)
        return self._resolved

    async def stream_chat(
        self,
        messages: list[ChatTurn],
        *,
        settings: GenerationSettings,
        genkey: str,
    ) -> AsyncIterator[StreamEvent]:
        """Text deltas of the reply, then one Finished.

        Raises BackendProtocolError when the stream ends before a finish: the deltas
        already yielded are the partial reply.
        """
        api = await self.resolve_api()
        path, body = self._request_body(api, messages, settings, genkey, stream=True)
        async for event in self.backend.stream_events(
            path, body, api=api, genkey=genkey
        ):
            yield event

    async def generate(
        self,
        messages: list[ChatTurn],
        *,
        settings: GenerationSettings,
        genkey: str,
    ) -> Completion:
        """The whole reply in one (non-streamed) request.

        KoboldCpp runs a non-streamed generation to its end even when the client leaves,
        so a cancelled call aborts it upstream.
        """
        api = await self.resolve_api()
        path, body = self._request_body(api, messages, settings, genkey, stream=False)
        try:
            data = await self.backend.request_json(
                "POST", path, json=body, genkey=genkey
            )
        except asyncio.CancelledError:
            await asyncio.shield(self.abort(genkey))
            raise
        try:
            return _completion(api, data)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BackendProtocolError(f"unexpected reply from {path}") from exc

    async def abort(self, genkey: str) -> bool:
        """Ask KoboldCpp to stop the generation `genkey`; True if it says it did."""
        try:
            data = await self.backend.request_json(
                "POST",
                "/api/extra/abort",
                json={"genkey": genkey},
                genkey=genkey,
                retry_busy=False,
            )
        except LLMError:
            logger.warning("abort of %s failed", genkey, exc_info=True)
            return False
        success = data.get("success") if isinstance(data, dict) else None
        return success in ("true", True)

    async def count_tokens(self, text: str) -> int:
        """Tokens in `text` per the backend's tokenizer (estimated on non-KoboldCpp)."""
        if text in self._token_counts:
            self._token_counts.move_to_end(text)
            return self._token_counts[text]
        await self.resolve_api()
        count = None
        if self.is_koboldcpp is not False:
            count = await self._tokencount_or_none(text)
        if count is None:
            count = len(text) // 4 + 1  # about four characters a token in English
        self._token_counts[text] = count
        if len(self._token_counts) > TOKEN_CACHE_SIZE:
            self._token_counts.popitem(last=False)
        return count

    async def backend_info(self) -> BackendInfo:
        """Model, version, auth, context size and load of the backend, measured now."""
        api = await self.resolve_api()
        if self.is_koboldcpp is None:
            self.is_koboldcpp = await backend_probe.probe_koboldcpp(self.backend)
        info = await backend_probe.backend_info(
            self.backend, api, koboldcpp=self.is_koboldcpp
        )
        if self.is_koboldcpp:
            self.max_context = info.max_context
        return info

    async def _tokencount_or_none(self, text: str) -> int | None:
        try:
            return await backend_probe.tokencount(self.backend, text)
        except BackendProtocolError as exc:
            if self.is_koboldcpp or exc.status != 404:
                raise
            logger.info("%s has no tokencount endpoint; estimating", self.base_url)
            self.is_koboldcpp = False
            return None

    def _request_body(
        self,
        api: str,
        messages: list[ChatTurn],
        settings: GenerationSettings,
        genkey: str,
        *,
        stream: bool,
    ) -> tuple[str, dict]:
        if api == "openai":
            return "/v1/chat/completions", {
                "messages": [{"role": m.role, "content": m.content} for m in messages],
                "max_tokens": settings.max_tokens,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "stop": settings.stop,
                "stream": stream,
                "genkey": genkey,
            }
        stops = list(dict.fromkeys(self.template.stop + settings.stop))
        body = {
            "prompt": self.template.render(messages),
            "max_length": settings.max_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "top_k": settings.top_k,
            "rep_pen": settings.rep_pen,
            "stop_sequence": stops[:MAX_STOP_SEQUENCES],
            "trim_stop": True,
            "genkey": genkey,
        }
        if self.max_context:
            body["max_context_length"] = self.max_context
        path = "/api/extra/generate/stream" if stream else "/api/v1/generate"
        return path, body


def _completion(api: str, data: dict) -> Completion:
    if api == "openai":
        choice = data["choices"][0]
        return Completion(
            finish_reason=choice.get("finish_reason") or "stop",
            text=choice["message"]["content"] or "",
        )
    result = data["results"][0]
    return Completion(
        finish_reason=result.get("finish_reason") or "stop",
        text=result["text"],
        prompt_tokens=result.get("prompt_tokens"),
        completion_tokens=result.get("completion_tokens"),
    )
