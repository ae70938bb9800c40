"""Agent factories, run on pydantic-ai's TestModel/FunctionModel (no backend reachable)."""

import pytest
from pydantic_ai import ModelRetry
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from agents.builder import (
    IntentDecision,
    build_chat_agent,
    build_intent_agent,
    build_simple_chat_agent,
)
from agents.kobold_model import KoboldNativeModel
from agents.profiles import PROFILES


def _reply(text: str) -> FunctionModel:
    def answer(messages, info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart(text)])

    return FunctionModel(answer)


async def test_intent_agent_returns_an_intent_decision():
    """The intent agent's output is a validated IntentDecision."""
    agent = build_intent_agent(_reply('{"intent": "code", "confidence": 0.9}'))
    result = await agent.run("my loop never ends")
    assert result.output == IntentDecision(intent="code", confidence=0.9, language="en")


async def test_intent_agent_prompts_the_json_schema():
    """Prompted output: the schema and the routing instructions reach the model."""
    seen: list[str] = []

    def answer(messages, info: AgentInfo) -> ModelResponse:
        seen.append(info.instructions or "")
        return ModelResponse(parts=[TextPart('{"intent": "chat"}')])

    await build_intent_agent(FunctionModel(answer)).run("hello?")
    assert "smalltalk" in seen[0] and '"confidence"' in seen[0]


async def test_intent_agent_can_be_overridden_with_test_model():
    """agent.override swaps the model, as the tests of the app do."""
    agent = build_intent_agent(_reply("not json"))
    fake = TestModel(custom_output_text='{"intent": "smalltalk", "language": "fr"}')
    with agent.override(model=fake):
        result = await agent.run("coucou")
    assert result.output == IntentDecision(intent="smalltalk", language="fr")


async def test_intent_agent_rejects_an_unknown_intent():
    """An intent outside the list fails validation (then retries run out)."""
    agent = build_intent_agent(_reply('{"intent": "weather"}'))
    with pytest.raises(UnexpectedModelBehavior):
        await agent.run("rain tomorrow?")


async def test_simple_chat_agent_retries_output_five_times():
    """5 output retries: 6 model calls, then 'Exceeded maximum output retries'."""
    calls: list[int] = []

    def answer(messages, info: AgentInfo) -> ModelResponse:
        calls.append(1)
        return ModelResponse(parts=[TextPart("meh")])

    agent = build_simple_chat_agent(FunctionModel(answer))

    @agent.output_validator
    def never_good(output: str) -> str:
        raise ModelRetry("try again")

    with pytest.raises(
        UnexpectedModelBehavior, match="Exceeded maximum output retries"
    ):
        await agent.run("hi")
    assert len(calls) == 6


async def test_simple_chat_agent_returns_plain_text():
    """Plain text output, unvalidated."""
    agent = build_simple_chat_agent(_reply("Coucou !"), PROFILES["smalltalk"])
    assert (await agent.run("coucou")).output == "Coucou !"


async def test_chat_agent_uses_the_profile_prompt_and_settings():
    """build_chat_agent sends the profile's system prompt and sampler values."""
    seen: list[AgentInfo] = []

    def answer(messages, info: AgentInfo) -> ModelResponse:
        seen.append(info)
        return ModelResponse(parts=[TextPart("def f(): ...")])

    profile = PROFILES["code"]
    await build_chat_agent(profile, FunctionModel(answer)).run("write f")
    assert seen[0].instructions == profile.system_prompt
    assert seen[0].model_settings["temperature"] == profile.temperature


def test_factories_build_the_settings_model_when_none_is_given(settings):
    """Without a model, the factories build KOBOLDCPP_API's model at call time."""
    settings.KOBOLDCPP_API = "native"
    assert isinstance(build_intent_agent().model, KoboldNativeModel)


def test_intent_decision_fields_are_documented():
    """The output model's fields carry descriptions the prompted schema shows."""
    schema = IntentDecision.model_json_schema()
    assert all(field.get("description") for field in schema["properties"].values())
