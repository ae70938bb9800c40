"""pydantic-ai models for KoboldCpp: `KoboldNativeModel` over the native API, or the OpenAI one.

`build_model()` picks one by API ("native" | "openai"); both use the shared client.
"""

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic_ai import messages as m
from pydantic_ai.models import (
    Model,
    ModelRequestParameters,
    StreamedResponse,
    check_allow_model_requests,
)
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage

from agents.backend_transport import Backend
from agents.chat_templates import ChatTemplate
from agents.conf import conf
from agents.errors import BackendProtocolError, GenerationFailed
from agents.events import BusyRetry, Finished, TextDelta
from agents.llm_service import LLMService
from agents.openai_model import openai_model
from agents.prompting import turns_from_messages
from agents.request_body import (
    NATIVE_PATH,
    NATIVE_STREAM_PATH,
    GenerationSettings,
    native_body,
    new_genkey,
)

# The chat template renders a system turn where it stands: pydantic-ai must not turn a
# later system prompt (the instruction after the history) into <system>-tagged user text.
_PROFILE = ModelProfile(supports_inline_system_prompts=True)


@dataclass
class KoboldStreamedResponse(StreamedResponse):
    """A streamed reply from /api/extra/generate/stream."""

    _model_name: str = "koboldcpp"
    _provider_url: str | None = None
    _events: AsyncIterator[TextDelta | Finished | BusyRetry] | None = None
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
            elif isinstance(event, Finished):
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

    It talks through `service` (an LLMService; by default one for the given options
    and the settings), whose chat template choice it uses, unless `template` names or
    is one. It honours `pydantic_ai.models.ALLOW_MODEL_REQUESTS` like pydantic-ai's own
    models, so a test that means to reach the fake server says so with
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
        service: LLMService | None = None,
    ) -> None:
        super().__init__(settings=settings, profile=_PROFILE)
        if service is None:
            service = LLMService(
                base_url=base_url or conf.KOBOLDCPP_URL,
                api="native",
                password=conf.KOBOLDCPP_PASSWORD if password is None else password,
                template=template if isinstance(template, str) else None,
                busy_retries=busy_retries,
            )
        self.service = service
        self._template = template if isinstance(template, ChatTemplate) else None
        self._model_name = model_name

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def system(self) -> str:
        return "koboldcpp"

    @property
    def backend(self) -> Backend:
        return self.service.backend

    @property
    def base_url(self) -> str:
        return self.backend.base_url

    async def template(self) -> ChatTemplate:
        """The chat template of the prompts (the service chooses it once)."""
        return self._template or (await self.service.resolve_template()).template

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
        template = await self.template()
        body = self.generate_body(messages, model_settings, params, template)
        data = await self.backend.request_json(
            "POST", NATIVE_PATH, json=body, genkey=body["genkey"]
        )
        try:
            result = data["results"][0]  # type: ignore[index]
            text, reason = str(result["text"]), result.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendProtocolError("unexpected body from /api/v1/generate") from exc
        if reason == "error":
            raise GenerationFailed(
                'KoboldCpp ended the reply with finish_reason "error"', text=text
            )
        # Real counts since KoboldCpp 1.82; 1.76 sends none.
        usage = RequestUsage(
            input_tokens=result.get("prompt_tokens") or 0,
            output_tokens=result.get("completion_tokens") or 0,
        )
        return m.ModelResponse(
            parts=[m.TextPart(content=text)],
            usage=usage,
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
        template = await self.template()
        body = self.generate_body(messages, model_settings, params, template)
        events = self.backend.stream_events(
            NATIVE_STREAM_PATH, body, api="native", genkey=body["genkey"]
        )
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

    def generate_body(
        self,
        messages: list[m.ModelMessage],
        model_settings: ModelSettings | None,
        params: ModelRequestParameters,
        template: ChatTemplate,
    ) -> dict:
        """The JSON body of a native generate request (public for tests and logs)."""
        instructions = self._get_instruction_parts(messages, params) or []
        turns = turns_from_messages(messages, [part.content for part in instructions])
        sampler = GenerationSettings.from_model_settings(model_settings)
        # A caller may pass its own key in model_settings to abort this very request.
        genkey = sampler.extra.pop("genkey", None) or new_genkey()
        return native_body(
            template,
            turns,
            sampler,
            genkey=genkey,
            max_context=self.service.max_context,
        )


def build_model(api: str | None = None, service: LLMService | None = None) -> Model:
    """The model for `api` ("native" | "openai"; default KOBOLDCPP_API, "auto" = native).

    Callers that can await pass `await service.resolve_api()`, so "auto" is probed once.
    Call it inside the event loop that will use the model (the shared client is per loop).
    """
    service = service or LLMService.from_settings()
    api = api or conf.KOBOLDCPP_API
    if api == "openai":
        return openai_model(service.base_url, service.backend.password)
    return KoboldNativeModel(service=service)
