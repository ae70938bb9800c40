"""pydantic-ai models for KoboldCpp: `KoboldNativeModel` over the native API, or the OpenAI one.

`build_model()` picks one by API ("native" | "openai"); both use the shared client.
"""

import json
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from pydantic_ai import messages as m
from pydantic_ai.models import (
    Model,
    ModelRequestParameters,
    StreamedResponse,
    check_allow_model_requests,
)
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage

from agents.backend_transport import Backend
from agents.chat_templates import ChatTemplate, get_template
from agents.errors import BackendProtocolError
from agents.events import Finished, TextDelta
from agents.http_client import get_llm_http_client
from agents.llm_service import MAX_STOP_SEQUENCES, LLMService
from agents.prompting import turns_from_messages

# pydantic-ai setting names and the KoboldCpp field each becomes; other keys of
# model_settings that are not pydantic-ai's own (rep_pen, top_k, ...) pass through as is.
_RENAMED = {
    "max_tokens": "max_length",
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "sampler_seed",
    "presence_penalty": "presence_penalty",
}
_PYDANTIC_AI_KEYS = frozenset(ModelSettings.__annotations__)
_JSON_START = re.compile(r"[{\[]")


def new_genkey() -> str:
    """A fresh KoboldCpp generation key (used to abort exactly this request)."""
    return f"KC{uuid.uuid4().hex[:16]}"


def find_json_object(text: str) -> str | None:
    """The first complete JSON object or array in `text` (fenced or amid prose), or None."""
    decoder = json.JSONDecoder()
    for match in _JSON_START.finditer(text):
        try:
            _, end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        return text[match.start() : end]
    return None


@dataclass
class KoboldStreamedResponse(StreamedResponse):
    """A streamed reply from /api/extra/generate/stream."""

    _model_name: str = "koboldcpp"
    _provider_url: str | None = None
    _events: AsyncIterator[TextDelta | Finished] | None = None
    _timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    async def _get_event_iterator(self) -> AsyncIterator[m.ModelResponseStreamEvent]:
        assert self._events is not None
        async for event in self._events:
            if isinstance(event, TextDelta):
                self._usage += RequestUsage(output_tokens=1)
                for out in self._parts_manager.handle_text_delta(
                    vendor_part_id="content", content=event.text
                ):
                    yield out
            else:
                self.finish_reason = event.finish_reason  # type: ignore[assignment]

    async def close_stream(self) -> None:
        if self._events is not None:
            await self._events.aclose()  # type: ignore[attr-defined]

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def provider_name(self) -> str:
        return "koboldcpp"

    @property
    def provider_url(self) -> str | None:
        return self._provider_url

    @property
    def timestamp(self) -> datetime:
        return self._timestamp


class KoboldNativeModel(Model):
    """A pydantic-ai model over KoboldCpp's native generate endpoints.

    It honours `pydantic_ai.models.ALLOW_MODEL_REQUESTS` like pydantic-ai's own models,
    so a test that means to reach the fake server says so with
    `override_allow_model_requests(True)`. It never closes the shared HTTP client.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        password: str | None = None,
        template: str | ChatTemplate | None = None,
        busy_retries: int | None = None,
        model_name: str = "koboldcpp",
        settings: ModelSettings | None = None,
    ) -> None:
        super().__init__(settings=settings)
        self.backend = Backend(
            (base_url or _setting("KOBOLDCPP_URL")).rstrip("/"),
            _setting("KOBOLDCPP_PASSWORD") if password is None else password,
            _setting("LLM_BUSY_RETRIES", 4) if busy_retries is None else busy_retries,
        )
        if template is None:
            template = _setting("KOBOLDCPP_CHAT_TEMPLATE", "chatml")
        self.template = (
            get_template(template) if isinstance(template, str) else template
        )
        self._model_name = model_name
        self.last_genkey: str | None = None

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def system(self) -> str:
        return "koboldcpp"

    @property
    def base_url(self) -> str:
        return self.backend.base_url

    async def request(
        self,
        messages: list[m.ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> m.ModelResponse:
        check_allow_model_requests()
        model_settings, params = self.prepare_request(
            model_settings, model_request_parameters
        )
        body = self.generate_body(messages, model_settings, params)
        data = await self.backend.request_json(
            "POST", "/api/v1/generate", json=body, genkey=body["genkey"]
        )
        try:
            result = data["results"][0]  # type: ignore[index]
            text, reason = str(result["text"]), result.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendProtocolError("unexpected body from /api/v1/generate") from exc
        if params.output_mode == "prompted":
            # Small models wrap the JSON in prose or fences; hand pydantic-ai the JSON.
            text = find_json_object(text) or text
        return m.ModelResponse(
            parts=[m.TextPart(content=text)],
            model_name=self._model_name,
            provider_name="koboldcpp",
            provider_url=self.base_url,
            provider_response_id=body["genkey"],
            finish_reason=reason if reason in ("stop", "length") else None,
        )

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[m.ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: Any = None,
    ) -> AsyncGenerator[StreamedResponse]:
        check_allow_model_requests()
        model_settings, params = self.prepare_request(
            model_settings, model_request_parameters
        )
        body = self.generate_body(messages, model_settings, params)
        events = self._stream_events(body)
        response = KoboldStreamedResponse(
            model_request_parameters=params,
            _model_name=self._model_name,
            _provider_url=self.base_url,
            _events=events,
        )
        response.provider_response_id = body["genkey"]
        try:
            yield response
        finally:
            await events.aclose()

    def _stream_events(self, body: dict) -> AsyncIterator[TextDelta | Finished]:
        return self.backend.stream_events(
            "/api/extra/generate/stream", body, api="native", genkey=body["genkey"]
        )

    def generate_body(
        self,
        messages: list[m.ModelMessage],
        model_settings: ModelSettings | None,
        params: ModelRequestParameters,
    ) -> dict:
        """The JSON body of a native generate request (public for tests and logs)."""
        instructions = self._get_instruction_parts(messages, params) or []
        turns = turns_from_messages(messages, [part.content for part in instructions])
        sampler = dict(model_settings or {})
        stops = list(
            dict.fromkeys(self.template.stop + sampler.pop("stop_sequences", []))
        )
        body: dict[str, Any] = {
            "prompt": self.template.render(turns),
            "stop_sequence": stops[:MAX_STOP_SEQUENCES],
            "trim_stop": True,
        }
        for key, value in sampler.items():
            if key in _RENAMED:
                body[_RENAMED[key]] = value
            elif key not in _PYDANTIC_AI_KEYS:
                body[key] = value
        # A caller may pass its own key in model_settings to abort this very request.
        body.setdefault("genkey", new_genkey())
        self.last_genkey = body["genkey"]
        return body


def _setting(name: str, default: Any = "") -> Any:
    return getattr(settings, name, default)


def openai_model(base_url: str | None = None, password: str | None = None) -> Model:
    """pydantic-ai's OpenAI chat model on KoboldCpp's /v1, through the shared client."""
    # The OpenAI SDK is slow to import; only the /v1 path pays for it.
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    url = (base_url or _setting("KOBOLDCPP_URL")).rstrip("/")
    key = _setting("KOBOLDCPP_PASSWORD") if password is None else password
    provider = OpenAIProvider(
        base_url=f"{url}/v1", api_key=key or "none", http_client=get_llm_http_client()
    )
    return OpenAIChatModel("koboldcpp", provider=provider)


def build_model(api: str | None = None, service: LLMService | None = None) -> Model:
    """The model for `api` ("native" | "openai"; default KOBOLDCPP_API, "auto" = native).

    Callers that can await pass `await service.resolve_api()`, so "auto" is probed once.
    Call it inside the event loop that will use the model (the shared client is per loop).
    """
    service = service or LLMService.from_settings()
    api = api or _setting("KOBOLDCPP_API", "auto")
    if api == "openai":
        return openai_model(service.base_url, service.backend.password)
    return KoboldNativeModel(
        base_url=service.base_url,
        password=service.backend.password,
        template=service.template,
        busy_retries=service.backend.busy_retries,
    )
