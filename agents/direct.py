"""Stateless replies for the OpenAI-compatible endpoint: the caller's messages (or plain
prompt) sent as given, with its sampler settings, under the same watchdog as a page reply.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from agents.events import (
    AnswerRetracted,
    ChatTurn,
    Finished,
    IntentDecided,
    ReasoningDelta,
    ReplyEvent,
    TextDelta,
)
from agents.llm_service import LLMService
from agents.request_body import (
    NATIVE_STREAM_PATH,
    GenerationSettings,
    native_body,
    openai_body,
)
from agents.runtime import watch_stream

OPENAI_TEXT_PATH = "/v1/completions"
DIRECT_INTENT = IntentDecided("chat", "api")  # no profile chosen: the caller's own


@dataclass(frozen=True)
class DirectRequest:
    """What an API caller asked for: chat `turns` (system included) or a plain `prompt`
    to carry on, and the sampler settings to use."""

    settings: GenerationSettings
    turns: tuple[ChatTurn, ...] = ()
    prompt: str | None = None


def text_request(
    api: str, service: LLMService, prompt: str, settings: GenerationSettings, genkey
) -> tuple[str, dict]:
    """The path and body of a streamed plain completion of `prompt` (no template)."""
    if api == "openai":
        body = openai_body([], settings, genkey=genkey, stream=True)
        del body["messages"]
        return OPENAI_TEXT_PATH, {"prompt": prompt, **body}
    body = native_body(
        service.template, [], settings, genkey=genkey, max_context=service.max_context
    )
    body["prompt"] = prompt
    body["stop_sequence"] = settings.stop  # the template's stops are a chat's
    return NATIVE_STREAM_PATH, body


async def _stream(service: LLMService, request: DirectRequest, genkey: str):
    if request.prompt is None:
        return service.stream_chat(
            list(request.turns), settings=request.settings, genkey=genkey
        )
    api = await service.resolve_api()
    path, body = text_request(api, service, request.prompt, request.settings, genkey)
    return service.backend.stream_events(path, body, api=api, genkey=genkey)


async def _prompt_tokens(service: LLMService, request: DirectRequest) -> int:
    if request.prompt is not None:
        return await service.count_tokens(request.prompt)
    await service.resolve_template()
    return await service.count_tokens(service.template.render(list(request.turns)))


async def direct_reply(
    service: LLMService, request: DirectRequest, *, genkey: str
) -> AsyncIterator[ReplyEvent]:
    """DIRECT_INTENT, the streamed deltas (reasoning apart), then Finished with the
    token counts: the backend's when it gave them, else counted at the end. Raises
    agents.errors types like Orchestrator.reply."""
    yield DIRECT_INTENT
    stream = await _stream(service, request, genkey)
    parts: list[str] = []
    thinking: list[str] = []
    last = Finished("stop")
    async for event in watch_stream(stream, genkey=genkey, abort=service.abort):
        if isinstance(event, Finished):
            last = event
            continue
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, ReasoningDelta):
            thinking.append(event.text)
        elif isinstance(event, AnswerRetracted):
            parts.clear()  # it was thinking: a ReasoningDelta with it follows
        yield event
    completion = last.completion_tokens
    if completion is None:
        text = "".join(thinking) + "".join(parts)
        completion = await service.count_tokens(text) if text else 0
    prompt_tokens = last.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = await _prompt_tokens(service, request)
    yield Finished(
        finish_reason=last.finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        reasoning_unclosed=last.reasoning_unclosed,
    )
