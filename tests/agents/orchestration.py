"""Helpers of the orchestrator tests: pydantic-ai function models and event collection."""

from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agents.orchestrator import Orchestrator


def answering(text: str, calls: list | None = None) -> FunctionModel:
    """A FunctionModel that always answers `text`, streamed or not (and records the
    messages of each call)."""

    def answer(messages, info: AgentInfo) -> ModelResponse:
        if calls is not None:
            calls.append(messages)
        return ModelResponse(parts=[TextPart(text)])

    async def stream(messages, info: AgentInfo):
        if calls is not None:
            calls.append(messages)
        for start in range(0, len(text), 3):
            yield text[start : start + 3]

    return FunctionModel(answer, stream_function=stream)


async def collect(events) -> list:
    return [event async for event in events]


async def decide(orchestrator: Orchestrator, text: str, history=(), **options):
    """detect_intent on the prompt the orchestrator builds for `text` (genkey "K")."""
    prompt = await orchestrator.prompt_for(list(history), text, None)
    return await orchestrator.detect_intent(text, prompt, genkey="K", **options)
