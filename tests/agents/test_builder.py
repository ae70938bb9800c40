"""Agent factories, run on pydantic-ai's TestModel/FunctionModel (no backend reachable)."""

import pytest
from pydantic_ai import ModelRetry
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from agents.builder import (
    INTENT_GRAMMAR,
    INTENT_MAX_TOKENS,
    build_intent_agent,
    build_simple_chat_agent,
    intent_label,
    with_genkey,
)
from agents.kobold_model import KoboldNativeModel
from agents.profiles import PROFILES


def _reply(text: str, calls: list | None = None) -> FunctionModel:
    def answer(messages, info: AgentInfo) -> ModelResponse:
        if calls is not None:
            calls.append(info)
        return ModelResponse(parts=[TextPart(text)])

    return FunctionModel(answer)


async def test_intent_agent_returns_a_label():
    """The intent agent's output is the intent its bare label names."""
    assert (await build_intent_agent(_reply("code\n")).run("my loop")).output == "code"


async def test_intent_agent_asks_a_grammar_of_the_labels_and_few_tokens():
    """Its settings: the labels' GBNF (native field and /v1 extra_body), a few
    tokens, greedy sampling; no instructions of its own."""
    calls: list[AgentInfo] = []
    await build_intent_agent(_reply("chat", calls)).run("hello?")
    sent = calls[0].model_settings
    assert INTENT_GRAMMAR == (
        'root ::= "smalltalk" | "chat" | "code" | "creative" | "summarize"'
    )
    assert (sent["grammar"], sent["extra_body"]["grammar"]) == (INTENT_GRAMMAR,) * 2
    assert sent["max_tokens"] == sent["extra_body"]["max_tokens"] == INTENT_MAX_TOKENS
    assert sent["temperature"] == 0.0
    assert calls[0].instructions is None


async def test_intent_agent_does_not_retry_a_reply_that_is_no_label():
    """A reply of the wrong shape is a ValueError at once: one model call, no retry."""
    calls: list = []
    agent = build_intent_agent(_reply('{"intent": "weather"}', calls))
    with pytest.raises(ValueError, match="not an intent label"):
        await agent.run("rain tomorrow?")
    assert len(calls) == 1


async def test_intent_agent_can_be_overridden_with_test_model():
    """agent.override swaps the model, as the tests of the app do."""
    agent = build_intent_agent(_reply("not a label"))
    with agent.override(model=TestModel(custom_output_text="smalltalk")):
        assert (await agent.run("coucou")).output == "smalltalk"


@pytest.mark.parametrize(
    ("text", "intent"),
    [("chat", "chat"), (" Summarize", "summarize"), ("summ", "summarize"),
     ("sm", "smalltalk"), ("cr", "creative"), ("co", "code")],
)  # fmt: skip
def test_intent_label_reads_a_label_or_the_start_only_one_has(text, intent):
    """A label, or a start the token limit left that only one label has."""
    assert intent_label(text) == intent


@pytest.mark.parametrize("text", ["", "c", "s", "weather", "chatty", "code: yes"])
def test_intent_label_refuses_anything_else(text):
    """Empty, ambiguous or other text is a ValueError."""
    with pytest.raises(ValueError):
        intent_label(text)


def test_with_genkey_merges_into_extra_body():
    """The genkey goes at the top and into extra_body, keeping extra_body's keys."""
    merged = with_genkey({"max_tokens": 4, "extra_body": {"grammar": "g"}}, "K")
    assert merged == {
        "max_tokens": 4,
        "genkey": "K",
        "extra_body": {"grammar": "g", "genkey": "K"},
    }
    assert with_genkey(None, "K") == {"genkey": "K", "extra_body": {"genkey": "K"}}


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


async def test_simple_chat_agent_uses_the_profile_settings_and_no_instructions():
    """Plain text, the profile's sampler values; the prompt comes in the history."""
    calls: list[AgentInfo] = []
    profile = PROFILES["smalltalk"]
    agent = build_simple_chat_agent(_reply("Coucou !", calls), profile)
    assert (await agent.run("coucou")).output == "Coucou !"
    assert calls[0].model_settings["temperature"] == profile.temperature
    assert calls[0].instructions is None


def test_factories_build_the_settings_model_when_none_is_given(settings):
    """Without a model, the factories build KOBOLDCPP_API's model at call time."""
    settings.KOBOLDCPP_API = "native"
    assert isinstance(build_intent_agent().model, KoboldNativeModel)
