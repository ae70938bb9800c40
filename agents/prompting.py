"""Prompt building: system prompt + as much recent history as fits + the new user message,
then one instruction turn; chat turns to and from pydantic-ai messages. Token counts:
LLMService.count_tokens (cached).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_ai import messages as m

from agents.errors import PromptTooLong
from agents.events import ChatTurn
from agents.llm_service import LLMService

ROLES = ("system", "user", "assistant")
# The context size is asked again after this long: KoboldCpp may restart with another.
CONTEXT_TTL_S = 60.0
# Tokens a tokenizer may add beyond one per byte (BOS, a leading-space marker).
BOUND_SLACK = 8


@dataclass(frozen=True, slots=True)
class Prompt:
    """The start every request about one message shares (system prompt, history, the
    message), and the tokens it is estimated to take.

    Requests differ only in the instruction turn after it (`ending_with`): KoboldCpp
    reads again only what follows the prefix it already holds.
    """

    turns: list[ChatTurn]
    tokens: (
        int | None
    )  # None: it surely fits, and was not counted (PromptBuilder.tokens)
    dropped: int  # history turns left out (context or turn limit)

    def ending_with(self, instruction: str) -> list[ChatTurn]:
        """The turns of one request: the shared start, then `instruction` (if any)."""
        return self.turns + _instruction_turns(instruction)


def _instruction_turns(instruction: str) -> list[ChatTurn]:
    return [ChatTurn("system", instruction)] if instruction else []


class PromptBuilder:
    """Builds prompts for one backend; remembers its context size after the first ask."""

    def __init__(self, service: LLMService) -> None:
        self.service = service
        self._max_context: int | None = None
        self._asked_at = 0.0
        self._overheads: tuple[int, int] | None = None

    async def max_context(self) -> int:
        """The backend's true context size in tokens (asked once a minute at most)."""
        if (
            self._max_context is None
            or time.monotonic() - self._asked_at > CONTEXT_TTL_S
        ):
            info = await self.service.backend_info()
            self._max_context, self._asked_at = info.max_context, time.monotonic()
        return self._max_context

    async def overheads(self) -> tuple[int, int]:
        """(tokens of one turn's role markers, tokens of BOS + the reply's start marker),
        measured once on the service's chat template."""
        if self._overheads is None:
            count, render = self.service.count_tokens, self.service.template.render
            reply = await count(render([])) + 1  # + the BOS KoboldCpp adds
            markers = [await count(render([ChatTurn(r, "")])) - reply for r in ROLES]
            self._overheads = (max(*markers, 0), reply)
        return self._overheads

    async def cost(self, turn: ChatTurn) -> int:
        """Tokens one turn takes in the prompt."""
        per_turn, _ = await self.overheads()
        # + 1: text counted alone can tokenize one token shorter than where it meets
        # the template's markers in the rendered prompt.
        if turn.tokens is not None:
            return turn.tokens + per_turn + 1
        return await self.service.count_tokens(turn.content) + per_turn + 1

    async def build(
        self,
        *,
        system_prompt: str,
        history: list[ChatTurn],
        text: str,
        endings: Sequence[tuple[str, int]],
        history_turns: int | None = None,
    ) -> Prompt:
        """The shared start of the requests about `text`; the oldest history goes
        first when the context is short.

        `endings` are the (instruction, max_tokens) pairs that may follow it: the
        history kept leaves room for each, so one start serves them all. Raises
        PromptTooLong when the system prompt and `text` alone leave no room for one.
        """
        context = await self.max_context()
        system = ChatTurn("system", system_prompt)
        user = ChatTurn("user", text)
        head = [system] if system_prompt else []
        total = len(history)
        if history_turns is not None:
            history = history[max(len(history) - history_turns, 0) :]
        history = [turn for turn in history if turn.role != "system"]
        everything = head + history + [user]
        longest = max(
            (i for i, _ in endings), key=lambda i: len(i.encode()), default=""
        )
        reply = max((tokens for _, tokens in endings), default=0)
        if self.surely_fits(everything + _instruction_turns(longest), context - reply):
            return Prompt(everything, None, total - len(history))
        ending = max([await self.ending_cost(i) + n for i, n in endings], default=0)
        budget = context - ending
        used = (await self.overheads())[1] + await self.cost(user)
        used += await self.cost(system) if system_prompt else 0
        if used > budget:
            raise PromptTooLong(
                f"The message takes about {used} tokens; the model's context leaves "
                f"room for {max(budget, 0)} with a reply of up to {reply}. "
                "Please shorten it."
            )
        kept: list[ChatTurn] = []
        for turn in reversed(history):
            cost = await self.cost(turn)
            if used + cost > budget:
                break
            used += cost
            kept.append(turn)
        kept.reverse()
        return Prompt(head + kept + [user], used, total - len(kept))

    async def ending_cost(self, instruction: str) -> int:
        """Tokens the instruction turn of a request adds to the shared start."""
        return await self.cost(ChatTurn("system", instruction)) if instruction else 0

    def surely_fits(self, turns: list[ChatTurn], budget: int) -> bool:
        """True when the rendered prompt's UTF-8 size is within the budget: every token
        covers at least one byte, so short conversations need no token counting (and
        no tokencount round trip before the first token)."""
        rendered = self.service.template.render(turns)
        return len(rendered.encode()) + BOUND_SLACK <= budget

    async def tokens(self, prompt: Prompt, instruction: str = "") -> int:
        """The size in tokens of the request `prompt.ending_with(instruction)`, counted
        now if `build` did not need to."""
        if prompt.tokens is not None:
            return prompt.tokens + await self.ending_cost(instruction)
        reply_start = (await self.overheads())[1]
        turns = prompt.ending_with(instruction)
        return reply_start + sum([await self.cost(turn) for turn in turns])


def _user_text(content: str | Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(item for item in content if isinstance(item, str))


def _request_turns(message: m.ModelRequest) -> list[ChatTurn]:
    turns: list[ChatTurn] = []
    for part in message.parts:
        if isinstance(part, m.SystemPromptPart):
            turns.append(ChatTurn("system", part.content))
        elif isinstance(part, m.UserPromptPart):
            turns.append(ChatTurn("user", _user_text(part.content)))
        elif hasattr(part, "model_response_str"):
            turns.append(ChatTurn("user", part.model_response_str()))
        elif hasattr(part, "model_response"):
            turns.append(ChatTurn("user", part.model_response()))
    return turns


def _response_turn(message: m.ModelResponse) -> ChatTurn:
    texts = [p.content for p in message.parts if isinstance(p, m.TextPart)]
    texts += [
        p.args_as_json_str() for p in message.parts if isinstance(p, m.ToolCallPart)
    ]
    return ChatTurn("assistant", "\n\n".join(texts))


def turns_from_messages(
    messages: list[m.ModelMessage], instructions: list[str] | None = None
) -> list[ChatTurn]:
    """pydantic-ai messages as chat turns: instructions and the leading system prompts
    as one system turn first, later system prompts where they are."""
    turns = [ChatTurn("system", text) for text in instructions or []]
    for message in messages:
        if isinstance(message, m.ModelRequest):
            turns.extend(_request_turns(message))
        elif isinstance(message, m.ModelResponse):
            turns.append(_response_turn(message))
    return _merge_leading_systems(turns)


def _merge_leading_systems(turns: list[ChatTurn]) -> list[ChatTurn]:
    # Templates expect one system turn first. A later one (a Prompt's instruction
    # turn) stays in place, so the request renders as LLMService renders the same turns.
    lead = next((i for i, t in enumerate(turns) if t.role != "system"), len(turns))
    system = "\n\n".join(t.content for t in turns[:lead])
    return ([ChatTurn("system", system)] if system else []) + turns[lead:]


def as_messages(turns: list[ChatTurn]) -> list[m.ModelMessage]:
    """Chat turns as pydantic-ai messages, which `turns_from_messages` turns back into
    the same turns: a system turn is a system prompt where it stands."""
    messages: list[m.ModelMessage] = []
    for turn in turns:
        if turn.role == "assistant":
            messages.append(m.ModelResponse(parts=[m.TextPart(content=turn.content)]))
        elif turn.role == "system":
            messages.append(m.ModelRequest(parts=[m.SystemPromptPart(turn.content)]))
        else:
            messages.append(m.ModelRequest(parts=[m.UserPromptPart(turn.content)]))
    return messages
