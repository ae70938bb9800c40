"""The orchestrator: builds the prompt start every request about a message shares, picks
an intent (heuristic, intent agent, or fallback), then streams the reply of its profile
under the runtime watchdog.
"""

import asyncio
import logging
import weakref
from collections import Counter
from collections.abc import AsyncIterator

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings

from agents.builder import (
    INTENT_INSTRUCTIONS,
    INTENT_MAX_TOKENS,
    build_intent_agent,
    build_simple_chat_agent,
    with_genkey,
)
from agents.conf import conf
from agents.events import (
    AnswerRetracted,
    ChatTurn,
    Finished,
    IntentDecided,
    ReasoningDelta,
    ReplyEvent,
    StreamEvent,
    TextDelta,
)
from agents.intents import INTENTS, Intent, classify, slash_command
from agents.kobold_model import build_model
from agents.llm_service import LLMService
from agents.profiles import (
    HISTORY_TURNS,
    Profile,
    ReplyOverrides,
    profile_for,
    system_prompt,
)
from agents.prompting import Prompt, PromptBuilder, as_messages
from agents.runtime import watch_stream

__all__ = ["Orchestrator", "ReplyOverrides", "intent_failures"]

logger = logging.getLogger(__name__)

SUMMARY_REQUEST = "Summarize our conversation so far."

intent_failures: Counter[str] = Counter()
"""Intent requests of this process that failed, by cause (the exception's type name);
the heuristic answered each (intent_source "fallback")."""

_builders: "weakref.WeakKeyDictionary[LLMService, PromptBuilder]" = (
    weakref.WeakKeyDictionary()
)


def _with_builder(service: LLMService) -> tuple[LLMService, PromptBuilder]:
    """The service and its prompt builder, shared by every reply on that service so
    that the context size and the token counts are learnt once."""
    builder = _builders.get(service)
    if builder is None:
        builder = _builders[service] = PromptBuilder(service)
    return service, builder


class Orchestrator:
    """Turns (history, new message) into a stream of reply events.

    Without `service` (one backend of the pool, `LLMService.for_backend`), the one
    shared for the current settings is used. `model`
    replaces the pydantic-ai model the agents use (tests pass TestModel or
    FunctionModel); by default it is built per call from the settings.
    """

    def __init__(
        self, service: LLMService | None = None, *, model: Model | None = None
    ):
        self.service, self.prompts = _with_builder(
            service or LLMService.from_settings()
        )
        self.model = model

    async def agent_model(self) -> Model:
        """The model the agents run on: the injected one, or KOBOLDCPP_API's."""
        if self.model is not None:
            return self.model
        return build_model(await self.service.resolve_api(), self.service)

    async def prompt_for(
        self, history: list[ChatTurn], text: str, overrides: ReplyOverrides | None
    ) -> Prompt:
        """The start shared by the intent request and the reply of every profile: the
        conversation's system prompt, the history that leaves room for any of them,
        and the message (a slash command's rest)."""
        command = slash_command(text)
        message = command[1] if command else text
        if not message and command and command[0] == "summarize":
            message = SUMMARY_REQUEST
        profiles = [profile_for(intent, overrides) for intent in INTENTS]
        endings = [(p.instructions, p.max_tokens) for p in profiles]
        return await self.prompts.build(
            system_prompt=system_prompt(overrides),
            history=history,
            text=message or text,
            endings=[*endings, (INTENT_INSTRUCTIONS, INTENT_MAX_TOKENS)],
            history_turns=HISTORY_TURNS,
        )

    async def detect_intent(
        self, text: str, prompt: Prompt, *, genkey: str, contended: bool = False
    ) -> IntentDecided:
        """The intent of `text`: the heuristic when sure (or configured, or when other
        replies wait for the backend), else the intent agent on `prompt`, else the
        heuristic again as a fallback (logged and counted in `intent_failures`).

        The intent request's genkey is `genkey` + "-intent".
        """
        mode = conf.INTENT_DETECTION
        guess = classify(text)
        explicit = slash_command(text) is not None  # a user's command beats any model
        sure = mode != "llm" and guess.unambiguous
        if mode == "heuristic" or explicit or contended or sure:
            return IntentDecided(guess.intent, "heuristic")
        key = f"{genkey}-intent"
        try:
            intent = await self._intent_from_agent(prompt, key)
        # Any failure of the model path (timeout, backend down or busy, a reply that
        # is no label) falls back, so a reply is never lost to routing.
        except Exception as exc:
            cause = type(exc).__name__
            intent_failures[cause] += 1
            logger.warning(
                "intent request %s failed (%s: %s); heuristic fallback -> %s",
                key, cause, exc, guess.intent,
            )  # fmt: skip
            return IntentDecided(guess.intent, "fallback")
        logger.info("intent request %s -> %s", key, intent)
        return IntentDecided(intent, "llm")

    async def _intent_from_agent(self, prompt: Prompt, genkey: str) -> Intent:
        agent = build_intent_agent(await self.agent_model())
        messages = as_messages(prompt.ending_with(INTENT_INSTRUCTIONS))
        timeout = float(conf.INTENT_TIMEOUT)
        try:
            async with asyncio.timeout(timeout):
                result = await agent.run(
                    message_history=messages,
                    model_settings=with_genkey(agent.model_settings, genkey),
                )
        # A non-streamed KoboldCpp generation runs on after its client leaves.
        except TimeoutError:
            await self.service.abort(genkey)
            raise TimeoutError(f"no intent within {timeout:g}s") from None
        except asyncio.CancelledError:
            await asyncio.shield(self.service.abort(genkey))
            raise
        return result.output

    async def _prepare(
        self,
        history: list[ChatTurn],
        text: str,
        overrides: ReplyOverrides | None,
        genkey: str,
        contended: bool,
    ) -> tuple[IntentDecided, Profile, Prompt]:
        prompt = await self.prompt_for(history, text, overrides)
        decided = await self.detect_intent(
            text, prompt, genkey=genkey, contended=contended
        )
        return decided, profile_for(decided.intent, overrides), prompt

    async def reply(
        self,
        history: list[ChatTurn],
        text: str,
        *,
        overrides: ReplyOverrides | None = None,
        genkey: str,
        contended: bool = False,
        prefix: str = "",
    ) -> AsyncIterator[ReplyEvent]:
        """IntentDecided, then the streamed TextDeltas, then Finished with token counts.

        `contended`: other replies wait for the backend, so no generation is spent on
        the intent (the heuristic decides); nor on a `prefix`, the start of the answer
        that the model carries on from. Raises agents.errors types (PromptTooLong
        before anything is yielded; StreamStalled, StreamTimeout from the watchdog).
        """
        decided, profile, prompt = await self._prepare(
            history, text, overrides, genkey, contended or bool(prefix)
        )
        yield decided
        opened = [ChatTurn("assistant", prefix)] if prefix else []
        stream = self.service.stream_chat(
            prompt.ending_with(profile.instructions) + opened,
            settings=profile.generation_settings(),
            genkey=genkey,
        )
        async for event in self._watched(stream, prompt, profile, genkey):
            yield event

    async def simple_reply(
        self,
        history: list[ChatTurn],
        text: str,
        *,
        overrides: ReplyOverrides | None = None,
        genkey: str,
        contended: bool = False,
    ) -> AsyncIterator[ReplyEvent]:
        """Like reply(), but the text comes from the simple chat agent, yielded whole
        as one TextDelta. The agent streams, under the same watchdog as reply()."""
        decided, profile, prompt = await self._prepare(
            history, text, overrides, genkey, contended
        )
        yield decided
        agent = build_simple_chat_agent(await self.agent_model(), profile)
        stream = _agent_events(
            agent,
            as_messages(prompt.ending_with(profile.instructions)),
            with_genkey(agent.model_settings, genkey),
        )
        parts: list[str] = []
        async for event in self._watched(stream, prompt, profile, genkey):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, AnswerRetracted):
                parts.clear()
            elif isinstance(event, Finished):
                finished = event
            else:
                yield event  # reasoning streams as it comes
        if parts:
            yield TextDelta("".join(parts))
        yield finished

    async def _watched(
        self,
        stream: AsyncIterator[StreamEvent],
        prompt: Prompt,
        profile: Profile,
        genkey: str,
    ) -> AsyncIterator[ReplyEvent]:
        """The deltas of `stream` under the watchdog (reasoning and answer apart; an
        AnswerRetracted means the answer so far was thinking), then Finished with the
        token counts: the backend's when it gave them, else counted once at the end."""
        parts: list[str] = []
        thinking: list[str] = []
        last = Finished("stop")
        async for event in watch_stream(
            stream, genkey=genkey, abort=self.service.abort
        ):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, ReasoningDelta):
                thinking.append(event.text)
            elif isinstance(event, AnswerRetracted):
                parts.clear()
            if isinstance(event, Finished):
                last = event
            else:
                yield event
        text = "".join(thinking) + "".join(parts)
        completion = last.completion_tokens
        if completion is None:
            completion = await self.service.count_tokens(text) if text else 0
        prompt_tokens = last.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = await self.prompts.tokens(prompt, profile.instructions)
        yield Finished(
            finish_reason=last.finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion,
            reasoning_unclosed=last.reasoning_unclosed,
        )


async def _agent_events(
    agent: Agent[None, str],
    messages: list[ModelMessage],
    model_settings: ModelSettings,
) -> AsyncIterator[TextDelta | Finished]:
    """A streamed run of `agent` on `messages`, as the LLM service's events."""
    async with agent.run_stream(
        message_history=messages, model_settings=model_settings
    ) as result:
        async for text in result.stream_text(delta=True, debounce_by=None):
            yield TextDelta(text)
        reason = result.response.finish_reason
    yield Finished(reason or "stop")
