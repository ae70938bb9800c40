"""Prompt building: system prompt + as much recent history as fits + the new user message.

Token counts come from the backend's tokenizer (LLMService.count_tokens, cached per text).
"""

from dataclasses import dataclass

from agents.errors import PromptTooLong
from agents.events import ChatTurn
from agents.llm_service import LLMService

# Role markers of a chat template cost a few tokens per turn (ChatML: about 5).
TURN_OVERHEAD = 8
# The assistant start marker the prompt ends with, and the BOS token.
REPLY_OVERHEAD = 8


@dataclass(frozen=True, slots=True)
class Prompt:
    """The turns to send and the tokens they are estimated to take."""

    turns: list[ChatTurn]
    tokens: int
    dropped: int  # history turns left out to fit


class PromptBuilder:
    """Builds prompts for one backend; remembers its context size after the first ask."""

    def __init__(self, service: LLMService) -> None:
        self.service = service
        self._max_context: int | None = None

    async def max_context(self) -> int:
        """The backend's true context size in tokens (asked once)."""
        if self._max_context is None:
            info = await self.service.backend_info()
            self._max_context = info.max_context
        return self._max_context

    async def cost(self, turn: ChatTurn) -> int:
        """Tokens one turn takes in the prompt."""
        return await self.service.count_tokens(turn.content) + TURN_OVERHEAD

    async def build(
        self,
        *,
        system_prompt: str,
        history: list[ChatTurn],
        text: str,
        max_tokens: int,
        history_turns: int | None = None,
    ) -> Prompt:
        """The prompt for `text`; oldest history goes first when the context is short.

        Raises PromptTooLong when the system prompt and `text` alone leave no room for
        a reply of `max_tokens`.
        """
        budget = await self.max_context() - max_tokens
        system = ChatTurn("system", system_prompt)
        user = ChatTurn("user", text)
        used = REPLY_OVERHEAD + await self.cost(user)
        used += await self.cost(system) if system_prompt else 0
        if used > budget:
            raise PromptTooLong(
                f"The message takes about {used} tokens; the model's context leaves "
                f"room for {max(budget, 0)} with a reply of {max_tokens}. "
                "Please shorten it."
            )
        if history_turns is not None:
            history = history[max(len(history) - history_turns, 0) :]
        kept: list[ChatTurn] = []
        for turn in reversed(history):
            if turn.role == "system":
                continue
            cost = await self.cost(turn)
            if used + cost > budget:
                break
            used += cost
            kept.append(turn)
        kept.reverse()
        head = [system] if system_prompt else []
        return Prompt(head + kept + [user], used, len(history) - len(kept))
