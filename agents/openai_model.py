"""pydantic-ai's OpenAI chat model on KoboldCpp's /v1 (or llama-cpp-python), with its
errors translated into agents.errors types at this one place.

pydantic-ai raises its own errors (ModelConnectionError, ModelHTTPError, ...): without
the translation a dead backend would be a generic backend_error.
"""

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from pydantic_ai import messages as m
from pydantic_ai.exceptions import ModelAPIError, ModelConnectionError, ModelHTTPError
from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from agents.conf import conf
from agents.errors import (
    BackendAuthError,
    BackendBusy,
    BackendProtocolError,
    BackendUnreachable,
    LLMError,
)
from agents.http_client import get_llm_http_client


def backend_error(exc: ModelAPIError) -> LLMError:
    """The agents.errors type for a failed request of pydantic-ai's OpenAI model.

    Errors that are not about the backend (output validation, say) are no
    ModelAPIError and pass through as they are.
    """
    if isinstance(exc, ModelHTTPError):
        if exc.status_code == 503:
            return BackendBusy(status=503)
        if exc.status_code == 401:
            return BackendAuthError(status=401)
        return BackendProtocolError(
            f"HTTP {exc.status_code} from /v1: {exc.body!r:.200}",
            status=exc.status_code,
        )
    if isinstance(exc, ModelConnectionError):
        if exc.in_stream or exc.phase == "read":
            return BackendProtocolError(f"the /v1 stream was cut ({exc.message})")
        return BackendUnreachable(f"no answer from the /v1 server ({exc.message})")
    return BackendProtocolError(f"the /v1 server failed: {exc.message}")


class TranslatedErrorsModel(WrapperModel):
    """The wrapped model, raising agents.errors types for the backend's failures."""

    async def request(
        self,
        messages: list[m.ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> m.ModelResponse:
        try:
            return await super().request(
                messages, model_settings, model_request_parameters
            )
        except ModelAPIError as exc:
            raise backend_error(exc) from exc

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[m.ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: Any = None,
    ) -> AsyncGenerator[StreamedResponse]:
        try:
            async with super().request_stream(
                messages, model_settings, model_request_parameters, run_context
            ) as response:
                yield response
        except ModelAPIError as exc:
            raise backend_error(exc) from exc


def openai_model(base_url: str | None = None, password: str | None = None) -> Model:
    """pydantic-ai's OpenAI chat model on {base_url}/v1, through the shared client."""
    # The OpenAI SDK is slow to import; only the /v1 path pays for it.
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    url = (base_url or conf.KOBOLDCPP_URL).rstrip("/")
    key = conf.KOBOLDCPP_PASSWORD if password is None else password
    provider = OpenAIProvider(
        base_url=f"{url}/v1", api_key=key or "none", http_client=get_llm_http_client()
    )
    return TranslatedErrorsModel(OpenAIChatModel("koboldcpp", provider=provider))
