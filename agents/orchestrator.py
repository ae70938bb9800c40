"""The orchestrator: picks an intent (heuristic, intent agent, or fallback), then a profile,
builds the prompt and streams the reply under the runtime watchdog.
"""

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator

from django.conf import settings
from pydantic import ValidationError
from pydantic_ai import messages as m
from pydantic_ai.models import Model

from agents.builder import IntentDecision, build_intent_agent, build_simple_chat_agent
from agents.events import ChatTurn, Finished, IntentDecided, ReplyEvent, TextDelta
from agents.intents import classify, slash_command
from agents.kobold_model import KoboldNativeModel, build_model, find_json_object
from agents.llm_service import LLMService
from agents.profiles import Profile, ReplyOverrides, profile_for
from agents.prompting import Prompt, PromptBuilder
from agents.runtime import watch_stream

__all__ = ["Orchestrator", "ReplyOverrides", "parse_intent_output"]

logger = logging.getLogger(__name__)

SUMMARY_REQUEST = "Summarize our conversation so far."


def parse_intent_output(output: object) -> IntentDecision:
    """An IntentDecision from an agent output: the model itself, a dict, or JSON text
    (bare, inside ``` fences, or with prose around it). Raises ValueError otherwise."""
    if isinstance(output, IntentDecision):
        return output
    if isinstance(output, dict):
        return IntentDecision.model_validate(output)
    if isinstance(output, str):
        found = find_json_object(output)
        if found is None:
            raise ValueError(f"no JSON object in the intent output {output[:80]!r}")
        return IntentDecision.model_validate_json(found)
    raise ValueError(f"unexpected intent output of type {type(output).__name__}")


_builders: "weakref.WeakKeyDictionary[LLMService, PromptBuilder]" = (
    weakref.WeakKeyDictionary()
)


def _shared_service() -> tuple[LLMService, PromptBuilder]:
    """The service of the current settings and its prompt builder, shared by every reply
    so that the context size and the token counts are learnt once."""
    service = LLMService.from_settings()
    builder = _builders.get(service)
    if builder is None:
        builder = _builders[service] = PromptBuilder(service)
    return service, builder


def _as_messages(turns: list[ChatTurn]) -> list[m.ModelMessage]:
    messages: list[m.ModelMessage] = []
    for turn in turns:
        if turn.role == "assistant":
            messages.append(m.ModelResponse(parts=[m.TextPart(content=turn.content)]))
        else:
            messages.append(
                m.ModelRequest(parts=[m.UserPromptPart(content=turn.content)])
            )
    return messages


class Orchestrator:
    """Turns (history, new message) into a stream of reply events.

    Without `service`, the one shared for the current settings is used. `model`
    replaces the pydantic-ai model the agents use (tests pass TestModel or
    FunctionModel); by default it is built per call from the settings.
    """

    def __init__(
        self, service: LLMService | None = None, *, model: Model | None = None
    ):
        if service is None:
            self.service, self.prompts = _shared_service()
        else:
            self.service, self.prompts = service, PromptBuilder(service)
        self.model = model

    async def agent_model(self) -> Model:
        """The model the agents run on: the injected one, or KOBOLDCPP_API's."""
        if self.model is not None:
            return self.model
        return build_model(await self.service.resolve_api(), self.service)

    async def detect_intent(self, text: str, history: list[ChatTurn]) -> IntentDecided:
        """The intent of `text`: heuristic when sure (or configured), else the intent
        agent, else the heuristic again as a fallback (logged with the reason)."""
        mode = getattr(settings, "INTENT_DETECTION", "auto")
        guess = classify(text)
        explicit = slash_command(text) is not None  # a user's command beats any model
        if mode == "heuristic" or explicit or (mode != "llm" and guess.unambiguous):
            return IntentDecided(
                guess.intent, "heuristic", guess.confidence, guess.language
            )
        try:
            decision = await self._intent_from_agent(text, history)
        # Any failure of the model path (timeout, retries exhausted, backend down,
        # unparsable output) falls back, so a reply is never lost to routing.
        except Exception as exc:
            logger.warning(
                "intent agent failed (%s: %s); heuristic fallback -> %s",
                type(exc).__name__,
                exc or "timeout",
                guess.intent,
            )
            return IntentDecided(
                guess.intent, "fallback", guess.confidence, guess.language
            )
        logger.info("intent agent -> %s (%.2f)", decision.intent, decision.confidence)
        return IntentDecided(
            decision.intent, "llm", decision.confidence, decision.language or None
        )

    async def _intent_from_agent(
        self, text: str, history: list[ChatTurn]
    ) -> IntentDecision:
        model = await self.agent_model()
        agent = build_intent_agent(model)
        context = [t for t in history[-2:] if t.role in ("user", "assistant")]
        timeout = float(getattr(settings, "INTENT_TIMEOUT", 30.0))
        try:
            async with asyncio.timeout(timeout):
                result = await agent.run(text, message_history=_as_messages(context))
        except TimeoutError:
            # A non-streamed KoboldCpp generation runs on after the client leaves.
            if isinstance(model, KoboldNativeModel) and model.last_genkey:
                await self.service.abort(model.last_genkey)
            raise TimeoutError(f"no intent within {timeout:g}s") from None
        try:
            return parse_intent_output(result.output)
        except ValidationError as exc:
            raise ValueError(f"invalid intent output: {exc}") from exc

    async def _prepare(
        self, history: list[ChatTurn], text: str, overrides: ReplyOverrides | None
    ) -> tuple[IntentDecided, Profile, Prompt]:
        decided = await self.detect_intent(text, history)
        profile = profile_for(decided.intent, overrides)
        command = slash_command(text)
        message = command[1] if command else text
        if not message and decided.intent == "summarize":
            message = SUMMARY_REQUEST
        prompt = await self.prompts.build(
            system_prompt=profile.system_prompt,
            history=history,
            text=message or text,
            max_tokens=profile.max_tokens,
            history_turns=profile.history_turns,
        )
        return decided, profile, prompt

    async def reply(
        self,
        history: list[ChatTurn],
        text: str,
        *,
        overrides: ReplyOverrides | None = None,
        genkey: str,
    ) -> AsyncIterator[ReplyEvent]:
        """IntentDecided, then the streamed TextDeltas, then Finished with token counts.

        Raises agents.errors types (PromptTooLong before anything is yielded).
        """
        decided, profile, prompt = await self._prepare(history, text, overrides)
        yield decided
        stream = self.service.stream_chat(
            prompt.turns, settings=profile.generation_settings(), genkey=genkey
        )
        parts: list[str] = []
        finish_reason = "stop"
        async for event in watch_stream(
            stream, genkey=genkey, abort=self.service.abort
        ):
            if isinstance(event, TextDelta):
                parts.append(event.text)
                yield event
            elif isinstance(event, Finished):
                finish_reason = event.finish_reason
        yield await self._finished(finish_reason, prompt, "".join(parts))

    async def simple_reply(
        self,
        history: list[ChatTurn],
        text: str,
        *,
        overrides: ReplyOverrides | None = None,
        genkey: str,
    ) -> AsyncIterator[ReplyEvent]:
        """Like reply(), but the text comes from one non-streamed run of the simple
        chat agent, yielded as a single TextDelta."""
        decided, profile, prompt = await self._prepare(history, text, overrides)
        yield decided
        agent = build_simple_chat_agent(await self.agent_model(), profile)
        has_system = prompt.turns[0].role == "system"
        earlier = prompt.turns[1 if has_system else 0 : -1]
        try:
            result = await agent.run(
                prompt.turns[-1].content,
                message_history=_as_messages(earlier),
                # The native model reads "genkey"; /v1 gets it in the body via extra_body.
                model_settings={"genkey": genkey, "extra_body": {"genkey": genkey}},  # type: ignore[typeddict-unknown-key]
            )
        except asyncio.CancelledError:
            await asyncio.shield(self.service.abort(genkey))
            raise
        reply_text = str(result.output)
        if reply_text:
            yield TextDelta(reply_text)
        reason = result.response.finish_reason or "stop"
        yield await self._finished(reason, prompt, reply_text)

    async def _finished(self, reason: str, prompt: Prompt, text: str) -> Finished:
        completion = await self.service.count_tokens(text) if text else 0
        return Finished(
            finish_reason=reason,
            prompt_tokens=await self.prompts.tokens(prompt),
            completion_tokens=completion,
        )
